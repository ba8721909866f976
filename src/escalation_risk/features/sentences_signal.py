"""Reason sentences of the escalation families: velocity, what followed a failed
mediation, the family circle, activity, separation and the text model (split from :mod:`.sentences`, which
merges them into ``SENTENCES``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .after_mediation import REPEAT_DAYS
from .velocity import HALF_LIVES


def build(C, Flag, missing: Callable[[Any], bool], en: Callable[[str], str], zh: Callable[[str], str],
          num: Callable[[float], str], days: Callable[[int], str]) -> dict[str, Callable]:
    """The sentences, built from :mod:`.sentences`' pieces (Count, Flag and formatting)."""
    S: dict[str, Callable] = {}

    def number(unknown: tuple[str, str], low: tuple[str, str], high: tuple[str, str], quiet: float = 0.05,
               above: bool = True) -> Callable:
        """A figure told with its value when it is notable (above ``quiet``, or below it
        with ``above=False``), otherwise the plain sentence ``low``."""
        def render(v: Any, row: Mapping[str, Any], lang: str) -> str:
            if missing(v):
                return en(unknown[0]) if lang == "en" else zh(unknown[1])
            x = float(v)
            notable = x > quiet if above else x < quiet
            if not notable:  # ``low`` may tell the figure too ({x})
                return en(low[0].format(x=num(x))) if lang == "en" else zh(low[1].format(x=num(x)))
            return en(high[0].format(x=num(x))) if lang == "en" else zh(high[1].format(x=num(x)))
        return render

    def in_days(unknown: tuple[str, str], same_day: tuple[str, str] | None, some: tuple[str, str]) -> Callable:
        """A number of days in words (en, zh): not known, under a day (``same_day``; without
        it, as ``some``), or some (``{d}`` the days in English words, ``{k}`` the number)."""
        def render(v: Any, row: Mapping[str, Any], lang: str) -> str:
            if missing(v):
                return en(unknown[0]) if lang == "en" else zh(unknown[1])
            k = int(round(float(v)))
            if k == 0 and same_day is not None:
                return en(same_day[0]) if lang == "en" else zh(same_day[1])
            return en(some[0].format(d=days(k))) if lang == "en" else zh(some[1].format(k=k))
        return render

    def gap(who_en: str, who_zh: str, none_en: str, none_zh: str) -> Callable:
        return in_days((none_en, none_zh),
                       (f"{who_en} last two records were on the same day", f"{who_zh}最近两条记录在同一天"),
                       (f"{who_en} last two records were {{d}} apart", f"{who_zh}最近两条记录相隔 {{k}} 天"))

    S["vel_7d_max"] = C("one party has had 1 record in the last 7 days",
                        "one party has had {n} records in the last 7 days",
                        "no party has had any record in the last 7 days", "records of any one party in the last 7 days",
                        "有一方当事人近7天有 {n} 条记录", "各方当事人近7天均无记录", "当事人近7天的记录数")
    S["vel_burst_7d_max"] = number(
        ("whether a party's last week was busier than usual is not known", "当事人近7天是否比平时频繁不详"),
        ("no party's last week was busier than usual", "各方当事人近7天的记录频率均不高于平时"),
        ("a party's last 7 days were {x} times as busy as the 90 days before would suggest",
         "有一方当事人近7天的记录频率是此前90天的 {x} 倍"), quiet=1.05)
    S["vel_last_gap_min"] = gap("a party's", "有一方当事人", "no party has two earlier records to compare",
                                "各方当事人此前均不足两条记录")
    S["vel_gap_shrink_min"] = number(
        ("no party has enough earlier records to tell whether they are coming faster",
         "当事人此前记录太少，无法判断是否越来越频繁"),
        ("no party's records are coming faster: the shortest last gap was {x} times the earlier average",
         "各方当事人的记录间隔没有缩短：最近一次间隔最短为此前平均间隔的 {x} 倍"),
        ("a party's records are coming faster: the last gap was {x} times the earlier average",
         "有一方当事人的记录越来越频繁：最近一次间隔仅为此前平均间隔的 {x} 倍"), quiet=0.95, above=False)
    for h in HALF_LIVES:
        S[f"vel_intensity_{h}d_max"] = number(
            ("how recent the parties' records are is not known", "当事人近期记录强度不详"),
            ("no party has recent records", "各方当事人近期均无记录"),
            (f"a party's recent records weigh {{x}} (each counts half after {h} days)",
             f"有一方当事人近期记录强度为 {{x}}（每 {h} 天减半）"))
    S["vel_pair_last_gap_min"] = gap("the same parties'", "双方",
                                     "the parties do not have two earlier records together", "双方此前共同记录不足两条")
    S["vel_pair_intensity_30d_max"] = number(
        ("how recent the parties' shared records are is not known", "双方近期冲突强度不详"),
        ("the parties have no recent records together", "双方近期没有共同记录"),
        ("the same parties' recent records weigh {x} (each counts half after 30 days)",
         "双方近期冲突强度为 {x}（每 30 天减半）"))

    def since_failed(v: Any, row: Mapping[str, Any], lang: str) -> str:
        if missing(v):
            return en("no mediation of this dispute has failed") if lang == "en" else zh("该纠纷没有失败的调解")
        k = int(round(float(v)))
        if k == 0:
            return en("a mediation of this dispute failed today") if lang == "en" else zh("该纠纷今天调解失败")
        return en(f"the last failed mediation was {days(k)} ago") if lang == "en" else zh(f"距上次调解失败已 {k} 天")

    S["am_days_since_failed"] = since_failed
    S["am_danger_after_failed"] = C(
        "1 record since the last failed mediation mentions threats, weapons or violence",
        "{n} records since the last failed mediation mention threats, weapons or violence",
        "no record since the last failed mediation mentions threats, weapons or violence",
        "records since the last failed mediation that mention threats, weapons or violence",
        "上次调解失败后有 {n} 条记录提到威胁、凶器或暴力", "上次调解失败后没有记录提到威胁、凶器或暴力",
        "上次调解失败后提到威胁、凶器或暴力的记录数")
    S["am_threat_after_failed"] = Flag("threats or revenge were mentioned after the last failed mediation",
                                       "no threat or revenge was mentioned after the last failed mediation",
                                       "上次调解失败后有人扬言威胁或报复", "上次调解失败后没有威胁或报复的言语",
                                       "whether threats followed the last failed mediation is not known",
                                       "上次调解失败后是否有威胁不详")
    S["am_weapon_after_failed"] = Flag("a weapon was mentioned after the last failed mediation",
                                       "no weapon was mentioned after the last failed mediation",
                                       "上次调解失败后记录中提到凶器", "上次调解失败后记录中没有提到凶器",
                                       "whether a weapon was mentioned after the last failed mediation is not known",
                                       "上次调解失败后是否提到凶器不详")
    S["am_repeat_7d"] = C(f"1 record about this dispute came within {REPEAT_DAYS} days of the last failed mediation",
                          f"{{n}} records about this dispute came within {REPEAT_DAYS} days of the last failed "
                          "mediation",
                          f"nothing about this dispute came within {REPEAT_DAYS} days of a failed mediation",
                          f"records within {REPEAT_DAYS} days of the last failed mediation",
                          f"上次调解失败后 {REPEAT_DAYS} 天内该纠纷又有 {{n}} 条记录",
                          f"调解失败后 {REPEAT_DAYS} 天内该纠纷没有新记录",
                          f"调解失败后 {REPEAT_DAYS} 天内的新记录数")

    S["circle_family"] = C("the parties have 1 household member or relative on record",
                           "the parties have {n} household members and relatives on record",
                           "the parties have no household member or relative on record",
                           "household members and relatives of the parties",
                           "当事人身边共有 {n} 名家庭成员和亲属", "当事人没有登记的家庭成员或亲属",
                           "当事人的家庭成员和亲属人数")
    for name, what_en, what_zh in (("circle_crime_recent", "criminal cases", "刑事案件"),
                                   ("circle_violence_recent", "violence", "暴力记录"),
                                   ("circle_flags_recent", "concerns on record", "关注记录")):
        S[name] = number((f"recent {what_en} in the parties' families are not known", f"当事人家人近期{what_zh}不详"),
                         (f"nobody in the parties' families has recent {what_en}", f"当事人家人近期没有{what_zh}"),
                         (f"the parties' families have recent {what_en}, weighing {{x}} (each counts half after a "
                          "year)", f"当事人家人近期有{what_zh}，强度为 {{x}}（每年减半）"))
    S["circle_counterparts_offended"] = C(
        "1 of a party's earlier counterparts later became a suspect in a criminal case",
        "{n} of a party's earlier counterparts later became suspects in criminal cases",
        "none of the parties' earlier counterparts later became a suspect in a criminal case",
        "earlier counterparts who later offended",
        "有一方当事人此前的冲突对象中有 {n} 人后来涉嫌犯罪", "当事人此前的冲突对象后来均未涉嫌犯罪",
        "当事人此前冲突对象中后来涉嫌犯罪的人数")

    def share(v: Any, row: Mapping[str, Any], lang: str) -> str:
        if missing(v):
            return en("no party has earlier counterparts") if lang == "en" else zh("各方当事人此前没有冲突对象")
        pct = int(round(float(v)))  # the feature is a percentage
        if pct == 0:
            return en("none of the parties' earlier counterparts later offended") if lang == "en" else \
                zh("当事人此前的冲突对象后来均未涉嫌犯罪")
        return en(f"{pct}% of a party's earlier counterparts later became suspects in criminal cases") \
            if lang == "en" else zh(f"有一方当事人此前的冲突对象中 {pct}% 后来涉嫌犯罪")

    S["circle_counterparts_offended_share"] = share

    def text_score(v: Any, row: Mapping[str, Any], lang: str) -> str:
        if missing(v):
            return en("the wording of the dispute's text was not scored") if lang == "en" else zh("纠纷文字未评分")
        x = num(float(v))
        return en(f"the text model rates the wording of the description and notes at {x} (log-odds)") \
            if lang == "en" else zh(f"文字模型对纠纷描述和走访记录的评分为 {x}（对数几率）")

    S["text_model_score"] = text_score

    def quiet(who_en: str, who_zh: str) -> Callable:
        return in_days((f"when {who_en} was last on record is not known", f"{who_zh}最近一条记录的时间不详"),
                       (f"there was a record on {who_en} within the last day", f"{who_zh}最近一天内有新记录"),
                       (f"the latest record on {who_en} was {{d}} ago", f"{who_zh}的最近一条记录在 {{k}} 天前"))

    S["act_days_since_contact"] = quiet("this dispute or any of its parties", "该纠纷及各方当事人")
    S["act_days_since_dispute_contact"] = quiet("this dispute", "该纠纷")
    S["act_age_vs_category"] = number(
        ("how long disputes of its category usually stay open is not known", "同类纠纷通常的结案用时不详"),
        ("it has been open for {x} of the time its category's disputes usually take to close",
         "已持续时间为同类纠纷通常结案用时的 {x} 倍"),
        ("it has been open {x} times as long as its category's disputes usually take to close",
         "已持续时间是同类纠纷通常结案用时的 {x} 倍"), quiet=1.0)

    # Living together now is "no separation"; moving out is leaving the people one lived with
    # (not a role change, not a move together with them): features/separation.py.
    S["sep_pair_days_apart"] = in_days(
        ("no record shows the parties living apart after living together", "无双方曾同住、现已分开居住的记录"), None,
        ("the parties stopped living together {d} ago", "双方 {k} 天前不再同住"))
    S["sep_moved_out_days"] = in_days(
        ("no party is on record as having moved away from the people they lived with",
         "无当事人离开同住者迁出的记录"), None,
        ("a party moved away from the people they lived with {d} ago", "有一方当事人 {k} 天前离开同住者迁出"))
    return S
