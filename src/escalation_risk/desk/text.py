"""The desk's words, Chinese first and English by a switch."""

from __future__ import annotations

LANGS: tuple[str, ...] = ("zh", "en")

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "app": "矛盾纠纷预警工作台", "login": "登录", "username": "用户名", "password": "密码",
        "logout": "退出", "my_alerts": "我的预警", "supervisor": "主管视图", "switch": "English",
        "open": "在办", "overdue": "已逾期", "none": "没有在办预警。", "level": "等级", "trend": "趋势",
        "probability": "风险概率", "due": "办结时限", "status": "状态", "owner": "负责人", "grid": "网格",
        "reasons": "预警理由", "plan": "处置方案", "audit": "办理记录", "similar": "相似的既往案例",
        "no_similar": "暂无相似案例。", "take": "我来接手", "assign": "指派给", "assign_btn": "指派",
        "follow_up": "记录跟进", "next_status": "下一步状态", "note": "情况说明（简短）", "save": "保存",
        "close": "办结", "outcome": "办结结果", "escalated": "是否已转为刑事案件", "yes": "是", "no": "否",
        "unknown": "不清楚", "close_btn": "办结此预警", "at": "时间", "who": "办理人", "event": "事项",
        "bad_login": "用户名或密码不正确。", "limited": "登录尝试过多，请稍后再试。",
        "forbidden": "无权查看此预警：它不在您负责的网格内。", "not_found": "没有这个预警。",
        "csrf": "表单已失效，请返回重新提交。", "refused": "操作未被接受：", "done": "已保存。",
        "district": "辖区", "by_grid": "各网格在办与逾期", "overdue_by_owner": "逾期预警（按负责人）",
        "governance": "本期治理指数", "briefing": "最新日报", "indicator": "指标", "score": "得分",
        "change": "变化", "count": "数量", "alert": "预警", "dispute": "纠纷", "raised": "发起",
        "escalated_to_crime": "转为刑事", "category": "类别", "reported": "上报时间", "outcome_past": "结果",
        "no_briefing": "尚无日报。", "not_enough": "数据不足", "overdue_since": "逾期",
        "prev": "上一页", "next": "下一页", "note_chars": "（已记录说明 %d 字，不在页面显示）",
    },
    "en": {
        "app": "Dispute early-warning desk", "login": "Sign in", "username": "User name", "password": "Password",
        "logout": "Sign out", "my_alerts": "My alerts", "supervisor": "Supervisor", "switch": "中文",
        "open": "Open", "overdue": "Overdue", "none": "No open alerts.", "level": "Level", "trend": "Trend",
        "probability": "Probability", "due": "Due", "status": "Status", "owner": "Owner", "grid": "Grid",
        "reasons": "Reasons", "plan": "Plan", "audit": "Audit trail", "similar": "Similar past cases",
        "no_similar": "No similar cases yet.", "take": "Take it", "assign": "Assign to", "assign_btn": "Assign",
        "follow_up": "Record a follow-up", "next_status": "Next status", "note": "Short note", "save": "Save",
        "close": "Close", "outcome": "Outcome", "escalated": "Did it turn into a crime?", "yes": "Yes", "no": "No",
        "unknown": "Not known", "close_btn": "Close this alert", "at": "When", "who": "By", "event": "Event",
        "bad_login": "Wrong user name or password.", "limited": "Too many sign-in attempts; try again later.",
        "forbidden": "Not yours: this alert is outside your grids.", "not_found": "No such alert.",
        "csrf": "The form expired; go back and submit it again.", "refused": "Not accepted: ", "done": "Saved.",
        "district": "District", "by_grid": "Open and overdue by grid", "overdue_by_owner": "Overdue alerts by owner",
        "governance": "Governance index this period", "briefing": "Latest briefing", "indicator": "Indicator",
        "score": "Score", "change": "Change", "count": "Count", "alert": "Alert", "dispute": "Dispute",
        "raised": "Raised", "escalated_to_crime": "Became a crime", "category": "Category",
        "reported": "Reported", "outcome_past": "Outcome", "no_briefing": "No briefing yet.",
        "not_enough": "not enough data", "overdue_since": "overdue", "prev": "Previous", "next": "Next",
        "note_chars": "(a note of %d characters is on record; not shown)",
    },
}

LEVEL_NAMES = {"zh": {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"},
               "en": {"red": "red", "orange": "orange", "yellow": "yellow", "blue": "blue"}}
TREND_NAMES = {"zh": {"rising": "上升", "steady": "平稳", "falling": "下降", "new": "新发"},
               "en": {"rising": "rising", "steady": "steady", "falling": "falling", "new": "new"}}
STATUS_NAMES = {
    "zh": {"raised": "待接手", "assigned": "已指派", "in_progress": "办理中", "resolved": "已化解",
           "escalated": "已移交", "follow_up": "回访中", "closed": "已办结"},
    "en": {"raised": "raised", "assigned": "assigned", "in_progress": "in progress", "resolved": "resolved",
           "escalated": "escalated", "follow_up": "follow-up", "closed": "closed"},
}
EVENT_NAMES = {
    "zh": {"raised": "发起", "updated": "评分更新", "assigned": "指派/接手", "status": "状态变更", "closed": "办结"},
    "en": {"raised": "raised", "updated": "score updated", "assigned": "assigned", "status": "status",
           "closed": "closed"},
}
OUTCOME_NAMES = {
    "zh": {"settled_by_mediation": "调解达成协议", "settled_by_parties": "当事人自行和解",
           "referred_to_court": "移交法院/仲裁", "referred_to_police": "移交公安",
           "referred_to_authority": "移交其他部门",
           "withdrawn": "撤回", "parties_moved_away": "当事人已迁离"},
    "en": {"settled_by_mediation": "settled in mediation", "settled_by_parties": "settled by the parties",
           "referred_to_court": "referred to a court or arbitration", "referred_to_police": "referred to the police",
           "referred_to_authority": "referred to another authority", "withdrawn": "withdrawn",
           "parties_moved_away": "the parties moved away"},
}
