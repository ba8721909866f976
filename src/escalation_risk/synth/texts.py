"""What records say: Chinese and English description templates, and the descriptions drawn from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from escalation_risk.contract import DISPUTE_CATEGORIES, INCIDENT_KINDS, OFFENCE_CATEGORIES

from .draws import _sig
from .vocab import _DC, _K

_ZH_BODY = {
    "marriage_family": ["夫妻因家庭琐事发生争吵", "双方因离婚财产分割产生矛盾", "子女抚养问题引发家庭纠纷",
                        "婆媳关系紧张，多次争执", "赡养老人问题兄弟姐妹之间产生纠纷", "男方长期不顾家，夫妻矛盾激化"],
    "neighbor": ["楼上住户夜间噪音扰民，邻里发生口角", "楼上卫生间漏水致楼下天花板受损", "邻居车辆长期占用车位引发争执",
                 "因宅前屋后排水问题邻里纠纷", "邻居在楼道堆放杂物影响通行", "宠物狗扰民引发邻里矛盾"],
    "debt": ["借款到期未还，双方发生纠纷", "民间借贷纠纷，债务人拒不还款", "合伙做生意欠款未结清", "亲戚间借款纠纷"],
    "labor_wage": ["工人反映公司拖欠工资", "多名工人集体讨薪", "工地包工头拖欠农民工工资", "员工被辞退后要求经济补偿",
                   "工伤赔偿问题劳资双方争议"],
    "land_housing": ["村民因宅基地边界发生纠纷", "土地承包经营权纠纷", "租客与房东因押金退还发生争执",
                     "征地拆迁补偿问题村民有意见", "房东要求提前收房，租户不同意"],
    "property_management": ["业主对物业收费有异议", "小区电梯长期故障业主不满物业", "物业停水停电业主投诉",
                            "业主拒交物业费与物业公司纠纷"],
    "traffic": ["两车剐蹭双方对赔偿有争议", "电动车与行人相撞引发赔偿纠纷", "交通事故后对方拒绝赔偿"],
    "medical": ["患者家属对治疗结果不满与医院发生纠纷", "手术后出现并发症家属要求赔偿", "患者对医疗费用有异议"],
    "consumer_finance": ["客户对银行贷款逾期催收方式不满", "保险理赔被拒引发纠纷", "信用卡催收电话骚扰投诉",
                         "理财产品亏损客户要求银行赔偿"],
    "contract": ["装修合同纠纷，双方对工程质量有争议", "买卖合同货款未付", "承包合同履约纠纷"],
    "other": ["双方因琐事发生口角", "因言语冲突引发纠纷", "生活琐事引发矛盾"],
}
_EN_BODY = {
    "marriage_family": ["Couple quarrelled over household matters", "Dispute over property after divorce",
                        "Family conflict over child custody", "Siblings in conflict over care of elderly parent"],
    "neighbor": ["Noise from upstairs flat at night, neighbours argued", "Water leak from upstairs damaged ceiling",
                 "Neighbour's car blocking parking space", "Neighbours in conflict over drainage"],
    "debt": ["Loan overdue and unpaid, parties in dispute", "Private lending dispute, debtor refuses to pay"],
    "labor_wage": ["Workers report unpaid wages", "Group of workers demanding back pay", "Dismissed employee claims compensation"],
    "land_housing": ["Villagers disputing homestead boundary", "Tenant and landlord disagree over deposit",
                     "Villagers unhappy with land compensation"],
    "property_management": ["Residents dispute property management fees", "Lift broken for weeks, residents complain"],
    "traffic": ["Minor collision, parties disagree on compensation", "E-bike hit pedestrian, compensation dispute"],
    "medical": ["Patient's family unhappy with treatment outcome", "Complication after surgery, family demands compensation"],
    "consumer_finance": ["Customer complains about bank debt collection", "Insurance claim rejected"],
    "contract": ["Renovation contract dispute over quality", "Goods delivered but not paid"],
    "other": ["Argument over a trivial matter", "Verbal conflict between parties"],
}
_ZH_OFFENCE = {
    "assault": ["双方发生肢体冲突，一方被打伤", "嫌疑人殴打他人致轻微伤"],
    "intentional_injury": ["嫌疑人持械伤人致被害人受伤住院", "故意伤害致人轻伤"],
    "homicide": ["发生命案，被害人经抢救无效死亡"],
    "arson": ["嫌疑人纵火烧毁对方财物"],
    "property_damage": ["嫌疑人砸毁对方门窗财物", "故意损毁他人车辆"],
    "threat_intimidation": ["嫌疑人多次上门威胁恐吓", "嫌疑人发送恐吓信息"],
    "affray": ["双方纠集多人互殴", "聚众斗殴，多人受伤"],
    "illegal_detention": ["嫌疑人限制对方人身自由索要钱款", "讨债人员非法拘禁债务人"],
    "other": ["寻衅滋事", "扰乱公共秩序"],
}
_EN_OFFENCE = {
    "assault": ["Physical fight, one party injured"], "intentional_injury": ["Suspect injured victim with a weapon"],
    "homicide": ["Victim died of injuries"], "arson": ["Suspect set fire to victim's property"],
    "property_damage": ["Suspect smashed victim's property"], "threat_intimidation": ["Suspect repeatedly threatened victim"],
    "affray": ["Group fight, several injured"], "illegal_detention": ["Suspect held victim against their will over money"],
    "other": ["Public order offence"],
}
_ZH_PREFIX = {"dispute": ["", "当事人申请调解：", "网格员上报：", ""], "police_call": ["接110报警：", "民警出警：", "报警称："],
              "complaint": ["群众来电反映：", "12345热线投诉：", "投诉："], "petition": ["信访人反映：", "来访群众反映："],
              "criminal_case": ["立案：", "刑事案件：", ""]}
_EN_PREFIX = {"dispute": ["", "Mediation request: "], "police_call": ["110 call: ", "Police attended: "],
              "complaint": ["Hotline complaint: "], "petition": ["Petitioner states: "], "criminal_case": ["Case filed: "]}
# keyword phrases: threat, weapon, drinking, self-harm, repeated petition, calm threat-like noise
_ZH_KW = {
    "threat": ["，一方扬言要报复", "，对方放话要他好看", "，当事人扬言要让对方付出代价", "，扬言“不给钱就弄死他”"],
    "weapon": ["，现场有人持刀", "，当事人拿菜刀威胁", "，扬言要泼汽油", "，手持棍棒"],
    "drink": ["，当事人酒后滋事", "，一方醉酒", "，喝酒后情绪激动"],
    "selfharm": ["，当事人扬言要跳楼", "，一方称要自杀", "，有轻生念头"],
    "petition": ["，当事人多次上访", "，反复信访未果", "，曾多次到镇政府上访"],
    "calm": ["，一方扬言要报警处理", "，双方情绪尚平稳", "，经劝说后离开"],
}
_EN_KW = {
    "threat": ["; one party threatened revenge", "; said he would make them pay"],
    "weapon": ["; a knife was seen at the scene", "; threatened to use petrol"],
    "drink": ["; party was drunk", "; had been drinking"],
    "selfharm": ["; threatened suicide", "; said he would jump from the roof"],
    "petition": ["; has petitioned repeatedly", "; multiple petitions without result"],
    "calm": ["; said they would call the police", "; parties calm"],
}


# templates of the notes recorded later (contract 1.1): return visits, and the note after an escalation
_ZH_VISIT = {"calm": ["回访：双方情绪平稳", "回访：已按协议履行", "回访：矛盾基本化解", "回访：双方未再发生争执"],
             "open": ["回访：矛盾仍未化解", "回访：双方仍有争执", "回访：当事人情绪激动，拒不接受调解",
                      "回访：双方僵持不下"]}
_EN_VISIT = {"calm": ["Return visit: parties calm", "Return visit: the agreement is being kept"],
             "open": ["Return visit: conflict unresolved", "Return visit: parties still arguing, hostile"]}
_ZH_AFTER_CRIME = {
    "assault": "当事人因殴打他人被公安机关立案", "intentional_injury": "当事人因持刀伤人被刑事立案",
    "homicide": "当事人持刀致人死亡，已被刑事拘留", "arson": "当事人泼汽油纵火，已被刑事拘留",
    "property_damage": "当事人因故意毁坏财物被立案", "threat_intimidation": "当事人因威胁恐吓他人被立案",
    "affray": "双方发生斗殴，已移送公安机关", "illegal_detention": "当事人因非法拘禁被刑事立案",
    "other": "当事人涉嫌违法犯罪，已移送公安机关",
}
_EN_AFTER_CRIME = "Party now under criminal investigation (case opened by the police)"


def _descriptions(rng: np.random.Generator, kind: np.ndarray, cat: np.ndarray, heat: np.ndarray,
                  alco: np.ndarray, ment: np.ndarray, amount: np.ndarray, n_prior: np.ndarray) -> np.ndarray:
    """Template text: risk phrases appear more often the hotter the record."""
    N = len(kind)
    en = rng.random(N) < 0.10
    out = np.empty(N, dtype=object)
    out[:] = ""
    is_crime = kind == _K["criminal_case"]
    for _lang, mask_l, body_d, off_d, pre_d in ((0, ~en, _ZH_BODY, _ZH_OFFENCE, _ZH_PREFIX), (1, en, _EN_BODY, _EN_OFFENCE, _EN_PREFIX)):
        for ki, kname in enumerate(INCIDENT_KINDS):
            m = mask_l & (kind == ki)
            if not m.any():
                continue
            idx = np.flatnonzero(m)
            pre = np.array(pre_d[kname], dtype=object)
            text = pre[rng.integers(0, len(pre), len(idx))]
            codes = OFFENCE_CATEGORIES if kname == "criminal_case" else DISPUTE_CATEGORIES
            src = off_d if kname == "criminal_case" else body_d
            body = np.empty(len(idx), dtype=object)
            for ci, cname in enumerate(codes):
                cm = cat[idx] == ci
                if cm.any():
                    opts = np.array(src[cname], dtype=object)
                    body[cm] = opts[rng.integers(0, len(opts), cm.sum())]
            out[idx] = text + body
    h = np.clip(heat, -4, 6)
    kw_d = (_ZH_KW, _EN_KW)
    probs = {
        "threat": _sig(-3.0 + 1.1 * h),
        "weapon": _sig(-4.4 + 1.0 * h),
        "drink": _sig(-3.4 + 0.8 * alco + 0.35 * h),
        "selfharm": _sig(-4.8 + 0.8 * ment + 0.45 * h),
        "petition": np.where(kind == _K["petition"], _sig(-2.0 + 0.9 * n_prior), _sig(-5.0 + 0.5 * n_prior + 0.3 * h)),
        "calm": np.where(cat == _DC["neighbor"], 0.12, 0.04) * (~is_crime),
    }
    for key, pr in probs.items():
        m = rng.random(N) < pr
        for li, lm in ((0, ~en), (1, en)):
            mm = np.flatnonzero(m & lm)
            if len(mm):
                opts = np.array(kw_d[li][key], dtype=object)
                out[mm] = out[mm] + opts[rng.integers(0, len(opts), len(mm))]
    has_amt = ~np.isnan(amount) & (rng.random(N) < 0.6)
    if has_amt.any():
        idx = np.flatnonzero(has_amt)
        a = pd.Series(np.round(amount[idx]).astype(np.int64)).astype(str).to_numpy(dtype=object)
        out[idx] = out[idx] + np.where(en[idx], "; amount about " + a + " yuan", "，涉及金额约" + a + "元")
    out = out + np.where(en, ".", "。")
    return out


def _incident_descriptions(rng: np.random.Generator, p: dict, kind: np.ndarray, cat: np.ndarray, heat: np.ndarray,
                           amount: np.ndarray, who: np.ndarray, ep_of: np.ndarray, rep: np.ndarray) -> np.ndarray:
    """Descriptions of the exported incidents: they need who is speaking (their drinking and
    mental strain) and how many petitions of the episode came before."""
    N = len(kind)
    n_prior = np.zeros(N)
    pet = kind == _K["petition"]
    if pet.any():
        pe = ep_of[pet]
        ordp = np.lexsort((rep[pet], pe))
        pes = pe[ordp]
        first = np.r_[True, pes[1:] != pes[:-1]]
        grp_start = np.maximum.accumulate(np.where(first, np.arange(len(pes)), 0))
        cnt = np.empty(len(pes))
        cnt[ordp] = np.arange(len(pes)) - grp_start
        n_prior[pet] = cnt
    w_ok = who >= 0
    alco = np.where(w_ok, p["alco"][np.maximum(who, 0)], 0.0)
    ment = np.where(w_ok, p["ment"][np.maximum(who, 0)], 0.0)
    return _descriptions(rng, kind, cat, heat, alco, ment, amount, n_prior)
