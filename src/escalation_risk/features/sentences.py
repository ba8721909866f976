"""Reasons a mediator can read: one plain sentence per feature, in English and Chinese.

A reason is a sentence about the dispute with the real figure in it: whole numbers
for counts (``3``, never ``3.0``), money in yuan rather than its logarithm, codes in
words in both languages (纠纷类别：债务纠纷, never ``debt`` inside Chinese text), a
zero said as such ("the police have not been called") and a missing value said in
words ("there has been no mediation yet") rather than a dash.

Counts over several parties say what they count: with two parties, each party's own
figure ("the two parties have 33 and 29 other disputes in the last year"); with more,
the total and the largest share. A sentence may therefore read other features of the
same dispute (``row``), not only its own value.

:func:`render` is the one entry point; a feature without a sentence of its own here
(one added to the registry later) falls back to its registry template with the same
number formatting, and ``tests/test_sentences.py`` fails until it gets one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .history import EVENTS, WINDOW_EN, WINDOW_ZH
from .lexicon import load_lexicon
from .people import FLAG_TEXT

Lang = Literal["en", "zh"]
Renderer = Callable[[Any, Mapping[str, Any], Lang], str]

__all__ = ["render", "has_sentence", "SENTENCES", "missing"]


# --------------------------------------------------------------------------- formatting

def missing(v: Any) -> bool:
    """None, NaN, NaT or pandas NA."""
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN and NaT are not equal to themselves
    except (TypeError, ValueError):  # pd.NA refuses a truth value
        return True


def _int(v: Any) -> int:
    return int(round(float(v)))


def _num(v: float) -> str:
    """One decimal at most and never a trailing ``.0``."""
    text = f"{float(v):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _en(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _zh(text: str) -> str:
    return text if text.endswith("。") else text + "。"


# --------------------------------------------------------------------------- counts

@dataclass(frozen=True)
class Count:
    """A count: English for one, many ({n}), none; Chinese for some ({n}) and none; and
    what is counted (for a missing value)."""

    one: str
    many: str
    zero: str
    topic: str
    zh: str
    zh_zero: str
    zh_topic: str

    def __call__(self, v: Any, row: Mapping[str, Any], lang: Lang) -> str:
        if missing(v):
            return _en(f"the number of {self.topic} is not known") if lang == "en" else _zh(f"{self.zh_topic}不详")
        n = _int(v)
        if lang == "zh":
            return _zh(self.zh_zero if n == 0 else self.zh.format(n=n))
        return _en(self.zero if n == 0 else self.one if n == 1 else self.many.format(n=f"{n:,}"))


@dataclass(frozen=True)
class PartyTotal:
    """A total over the dispute's person parties, told per party where it can be: the
    two parties' own figures, or the total and the largest share."""

    max_feature: str
    noun: tuple[str, str]  # English singular, plural
    window: str
    zh_noun: str
    zh_window: str
    has: tuple[str, str] = ("has", "have")
    zh_unit: str = "次"

    def _n(self, k: int) -> str:
        return f"{k:,} {self.noun[0] if k == 1 else self.noun[1]}"

    def __call__(self, v: Any, row: Mapping[str, Any], lang: Lang) -> str:
        w, zw, noun, u = self.window, self.zh_window, self.zh_noun, self.zh_unit
        if missing(v):
            return _en(f"the number of {self.noun[1]} {w} is not known") if lang == "en" else \
                _zh(f"当事人{zw}{noun}的数量不详")
        total = _int(v)
        top = row.get(self.max_feature)
        parties = row.get("n_person_parties")
        top_n = None if missing(top) else _int(top)
        n = None if missing(parties) else _int(parties)
        if total == 0:
            return _en(f"none of the parties {self.has[0]} any {self.noun[1]} {w}") if lang == "en" else \
                _zh(f"各方当事人{zw}均无{noun}")
        if n == 1:
            return _en(f"the party {self.has[0]} {self._n(total)} {w}") if lang == "en" else \
                _zh(f"当事人{zw}有 {total} {u}{noun}")
        if n == 2 and top_n is not None and top_n <= total:
            a, b = top_n, total - top_n
            if lang == "zh":
                if b == 0:
                    return _zh(f"双方当事人中一方{zw}有 {a} {u}{noun}，另一方没有")
                return _zh(f"双方当事人{zw}分别有 {a} {u}和 {b} {u}{noun}")
            if b == 0:
                return _en(f"one of the two parties {self.has[0]} {self._n(a)} {w}, the other none")
            if a == b:
                return _en(f"the two parties {self.has[1]} {self._n(a)} {w} each")
            return _en(f"the two parties {self.has[1]} {a:,} and {self._n(b)} {w}")
        if lang == "zh":
            who = f"{n} 名当事人" if n else "各方当事人"
            most = f"，其中一人最多 {top_n} {u}" if top_n is not None else ""
            return _zh(f"{who}{zw}共有 {total} {u}{noun}{most}")
        who = f"the {n} parties" if n else "the parties"
        most = f", at most {top_n:,} for one party" if top_n is not None else ""
        return _en(f"{who} {self.has[1]} {self._n(total)} {w} between them{most}")


# --------------------------------------------------------------------------- flags, categories, numbers

@dataclass(frozen=True)
class Flag:
    """A yes/no fact: what it means when true, when false, and in Chinese."""

    yes: str
    no: str
    zh_yes: str
    zh_no: str
    unknown: str
    zh_unknown: str

    def __call__(self, v: Any, row: Mapping[str, Any], lang: Lang) -> str:
        if missing(v):
            return _en(self.unknown) if lang == "en" else _zh(self.zh_unknown)
        on = float(v) > 0
        if lang == "zh":
            return _zh(self.zh_yes if on else self.zh_no)
        return _en(self.yes if on else self.no)


@dataclass(frozen=True)
class Category:
    """A code in words: English sentence around the label, Chinese label after a heading."""

    en: str  # with {label}
    zh: str  # with {label}
    labels: Mapping[str, tuple[str, str]]
    unknown: str
    zh_unknown: str
    special: Mapping[str, tuple[str, str]] | None = None  # code -> whole sentences

    def __call__(self, v: Any, row: Mapping[str, Any], lang: Lang) -> str:
        code = None if missing(v) else str(v)
        if code is None or (code not in self.labels and not (self.special and code in self.special)):
            return _en(self.unknown) if lang == "en" else _zh(self.zh_unknown)
        if self.special and code in self.special:
            en, zh = self.special[code]
            return _en(en) if lang == "en" else _zh(zh)
        en_label, zh_label = self.labels[code]
        return _en(self.en.format(label=en_label)) if lang == "en" else _zh(self.zh.format(label=zh_label))


def _days(k: int) -> str:
    return f"{k:,} day" if k == 1 else f"{k:,} days"


def _money(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
    if missing(v):
        return _en("no amount of money is recorded") if lang == "en" else _zh("未登记涉及金额")
    yuan = _int(math.expm1(float(v)))  # the feature is log1p(amount)
    if yuan <= 0:
        return _en("no money is at stake") if lang == "en" else _zh("不涉及金额")
    return _en(f"the money at stake is {yuan:,} yuan") if lang == "en" else _zh(f"涉及金额 {yuan} 元")


def _days_open(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
    if missing(v):
        return _en("how long the dispute has been open is not known") if lang == "en" else _zh("纠纷持续时间不详")
    k = _int(v)
    if k == 0:
        return _en("the dispute was reported less than a day ago") if lang == "en" else _zh("纠纷报告不到一天")
    return _en(f"the dispute has been open for {_days(k)}") if lang == "en" else _zh(f"纠纷已持续 {k} 天")


def _report_lag(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
    if missing(v):
        return _en("when it happened is not known") if lang == "en" else _zh("事发时间不详")
    k = _int(v)
    if k == 0:
        return _en("it was reported on the day it happened") if lang == "en" else _zh("事发当天即报告")
    return _en(f"it was reported {_days(k)} after it happened") if lang == "en" else _zh(f"事发 {k} 天后才报告")


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _month(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
    if missing(v) or not 1 <= _int(v) <= 12:
        return _en("the month is not known") if lang == "en" else _zh("月份不详")
    m = _int(v)
    return _en(f"it is {_MONTHS[m - 1]}") if lang == "en" else _zh(f"时值 {m} 月")


def _since_mediation(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
    if missing(v):
        return _en("there has been no mediation yet") if lang == "en" else _zh("尚未调解")
    k = _int(v)
    if k == 0:
        return _en("the last mediation was today") if lang == "en" else _zh("今天刚调解过")
    return _en(f"the last mediation was {_days(k)} ago") if lang == "en" else _zh(f"距上次调解已 {k} 天")


def _since_last(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
    if missing(v):
        return _en("no party has an earlier record") if lang == "en" else _zh("各方当事人此前均无记录")
    k = _int(v)
    if k == 0:
        return _en("a party had another record today") if lang == "en" else _zh("当事人今天另有记录")
    return _en(f"a party's previous record was {_days(k)} ago") if lang == "en" else \
        _zh(f"当事人上一次记录在 {k} 天前")


def _since_offence(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
    if missing(v):
        return _en("no party has a criminal case as suspect on record") if lang == "en" else \
            _zh("各方当事人均无作为嫌疑人的刑事案件记录")
    k = _int(v)
    if k == 0:
        return _en("a party was a suspect in a criminal case today") if lang == "en" else \
            _zh("当事人今天涉及一起刑事案件（嫌疑人）")
    return _en(f"a party's last criminal case as suspect was {_days(k)} ago") if lang == "en" else \
        _zh(f"当事人上一次作为嫌疑人的刑事案件在 {k} 天前")


def _trend(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
    if missing(v):
        return _en("whether a party's records are speeding up is not known") if lang == "en" else \
            _zh("当事人近期记录是否增多不详")
    x = float(v)
    if x <= 1.05:
        return _en("no party's records are speeding up") if lang == "en" else _zh("当事人近期记录没有增多")
    return _en(f"a party's records are speeding up: {_num(x)} times their earlier pace in the last 30 days") \
        if lang == "en" else _zh(f"当事人近30天的记录是此前平均水平的 {_num(x)} 倍")


def _age(which: str, zh_which: str) -> Renderer:
    def render(v: Any, row: Mapping[str, Any], lang: Lang) -> str:
        if missing(v):
            return _en("the parties' ages are not recorded") if lang == "en" else _zh("当事人年龄未登记")
        k = _int(v)
        return _en(f"the {which} party is {k} years old") if lang == "en" else _zh(f"{zh_which}的当事人 {k} 岁")
    return render


# --------------------------------------------------------------------------- the words for codes

CATEGORY_WORDS = {
    "marriage_family": ("marriage and family", "婚姻家庭纠纷"), "neighbor": ("a quarrel between neighbours",
    "邻里纠纷"),
    "debt": ("a debt", "债务纠纷"), "labor_wage": ("labour and unpaid wages", "劳资纠纷"),
    "land_housing": ("land or housing", "土地房屋纠纷"), "property_management": ("property management", "物业纠纷"),
    "traffic": ("a traffic accident", "交通事故纠纷"), "medical": ("medical care", "医疗纠纷"),
    "consumer_finance": ("consumer credit", "消费金融纠纷"), "contract": ("a contract", "合同纠纷"),
    "other": ("another matter", "其他纠纷"),
}
SOURCE_WORDS = {
    "police_110": ("the 110 police line", "110报警"), "grid_worker": ("a grid worker", "网格员上报"),
    "mediation_center": ("the mediation centre", "调解中心"), "hotline_12345": ("the 12345 hotline", "12345热线"),
    "petition_office": ("the petition office", "信访部门"), "court": ("a court", "法院"),
    "walk_in": ("a walk-in visit", "当事人上门"), "other": ("another channel", "其他渠道"),
}
RELATION_WORDS = {
    "spouse": ("spouses", "配偶"), "ex_spouse": ("former spouses", "前配偶"), "partner": ("partners", "伴侣"),
    "parent_child": ("parent and child", "父母子女"), "sibling": ("siblings", "兄弟姐妹"),
    "relative": ("relatives", "亲属"), "neighbor": ("neighbours", "邻居"),
    "landlord_tenant": ("landlord and tenant", "房东与租客"), "employer_employee": ("employer and employee",
    "雇主与雇员"),
    "creditor_debtor": ("creditor and debtor", "债权人与债务人"), "acquaintance": ("acquaintances", "熟人"),
    "other": ("otherwise related", "其他关系"),
}
PLACE_WORDS = {
    "residential": ("a residential address", "住宅"), "rural_village": ("a village plot", "农村宅基地"),
    "commercial": ("a commercial place", "商业场所"), "industrial": ("an industrial site", "工业场所"),
    "public": ("a public place", "公共场所"), "other": ("another kind of place", "其他场所"),
}
# Text signals: what the words point to (English noun phrase, Chinese noun phrase).
SIGNAL_WORDS = {
    "threat": ("threats", "威胁言语"), "revenge": ("revenge", "报复言语"), "weapon": ("a weapon or fuel", "凶器或汽油"),
    "drinking": ("drinking or drunkenness", "饮酒或醉酒"), "self_harm": ("self-harm or suicide", "自伤或轻生"),
    "violence": ("physical violence", "肢体冲突"), "repeated_petition": ("repeated petitions or complaints",
    "反复上访投诉"),
    "agitation": ("strong agitation or a stalemate", "情绪激烈或僵持"), "group": ("a crowd or group action",
    "聚集或群体行为"),
}
# Concerns on record: (English noun phrase for "no party has ...", Chinese for "当事人均无...").
FLAG_WORDS = {
    "mental_health": ("a mental-health concern on record", "精神健康方面的记录"),
    "substance": ("a substance-use concern on record", "涉酒涉毒记录"),
    "community_correction": ("a record of community correction", "社区矫正记录"),
    "prior_violence": ("prior violence on record", "暴力前科记录"),
    "key_person": ("a key-person designation", "重点关注人员登记"),
    "other": ("another concern on record", "其他关注记录"),
}
# history event -> (English singular, plural)
EVENT_NOUNS = {
    "dispute": ("other dispute", "other disputes"), "police_call": ("police call", "police calls"),
    "complaint": ("complaint", "complaints"), "petition": ("petition", "petitions"),
    "crime_suspect": ("criminal case as suspect", "criminal cases as suspect"),
    "crime_victim": ("criminal case as victim", "criminal cases as victim"),
    "violent_suspect": ("violent offence as suspect", "violent offences as suspect"),
    "danger_text": ("record with threats, weapons or violence", "records with threats, weapons or violence"),
    "failed_mediation": ("failed mediation", "failed mediations"),
}
WINDOW_ZH_WORDS = {**WINDOW_ZH, "all": "历史上"}


# --------------------------------------------------------------------------- the sentences

def _build() -> dict[str, Renderer]:
    S: dict[str, Renderer] = {}
    C = Count
    S["category"] = Category("the dispute is about {label}", "纠纷类别：{label}", CATEGORY_WORDS,
                             "the dispute's category is not recorded", "纠纷类别未登记")
    S["source"] = Category("it was reported through {label}", "来源：{label}", SOURCE_WORDS,
                           "how it was reported is not recorded", "来源未登记")
    S["log_amount"] = _money
    S["days_open"] = _days_open
    S["report_lag_days"] = _report_lag
    S["as_of_month"] = _month
    S["n_person_parties"] = C("1 person is a party to the dispute", "{n} people are parties to the dispute",
                              "no person is a party to the dispute", "people in the dispute",
                              "纠纷涉及 {n} 人", "纠纷不涉及个人", "纠纷涉及人数")
    S["n_org_parties"] = C("1 organisation is a party to the dispute", "{n} organisations are parties to the dispute",
                           "no organisation is a party to the dispute", "organisations in the dispute",
                           "纠纷涉及 {n} 个单位", "纠纷不涉及单位", "纠纷涉及单位数")
    S["followups"] = C("there has been 1 later record (a call, complaint or petition) about this dispute",
                       "there have been {n} later records (calls, complaints or petitions) about this dispute",
                       "there has been no later call, complaint or petition about this dispute",
                       "later records about this dispute",
                       "该纠纷后续已有 {n} 条报警、投诉或信访记录", "该纠纷后续没有报警、投诉或信访记录",
                       "该纠纷后续记录")
    S["followups_30d"] = C("1 record about this dispute came in the last 30 days",
                           "{n} records about this dispute came in the last 30 days",
                           "no record about this dispute came in the last 30 days",
                           "records about this dispute in the last 30 days",
                           "近30天该纠纷新增 {n} 条记录", "近30天该纠纷没有新增记录", "近30天该纠纷新增记录")
    S["followup_police_calls"] = C("the police have been called once about this dispute",
                                   "the police have been called {n} times about this dispute",
                                   "the police have not been called about this dispute",
                                   "police calls about this dispute",
                                   "该纠纷已报警 {n} 次", "该纠纷尚未报警", "该纠纷报警次数")
    S["followup_complaints"] = C("1 complaint has been made about this dispute",
                                 "{n} complaints have been made about this dispute",
                                 "no complaint has been made about this dispute", "complaints about this dispute",
                                 "该纠纷已投诉 {n} 次", "该纠纷尚无投诉", "该纠纷投诉次数")
    S["followup_petitions"] = C("1 petition has been made about this dispute",
                                "{n} petitions have been made about this dispute",
                                "no petition has been made about this dispute", "petitions about this dispute",
                                "该纠纷已信访 {n} 次", "该纠纷尚无信访", "该纠纷信访次数")
    S["mediations"] = C("there has been 1 mediation attempt so far", "there have been {n} mediation attempts so far",
                        "there has been no mediation yet", "mediation attempts",
                        "已调解 {n} 次", "尚未调解", "调解次数")
    S["mediations_failed"] = C("1 mediation has failed", "{n} mediations have failed", "no mediation has failed",
                               "failed mediations", "调解失败 {n} 次", "没有失败的调解", "调解失败次数")
    S["last_mediation_failed"] = Flag("the last mediation failed",
                                      "the last mediation did not fail, or there has been none",
                                      "最近一次调解失败", "最近一次调解未失败或尚未调解",
                                      "whether the last mediation failed is not known", "最近一次调解是否失败不详")
    S["days_since_mediation"] = _since_mediation
    S["notes"] = C("1 note has been written on this dispute so far (a visit or progress)",
                   "{n} notes have been written on this dispute so far (visits, progress)",
                   "no note has been written on this dispute yet", "notes on this dispute",
                   "该纠纷已有 {n} 条走访或进展记录", "该纠纷尚无走访或进展记录", "该纠纷走访或进展记录数")
    S["notes_danger"] = C("1 note on this dispute mentions threats, weapons or violence",
                          "{n} notes on this dispute mention threats, weapons or violence",
                          "no note on this dispute mentions threats, weapons or violence",
                          "notes on this dispute that mention threats, weapons or violence",
                          "该纠纷有 {n} 条记录提到威胁、凶器或暴力", "该纠纷的记录中没有提到威胁、凶器或暴力",
                          "该纠纷提到威胁、凶器或暴力的记录数")
    S["latest_note_danger"] = Flag("the latest note on this dispute mentions threats, weapons or violence",
                                   "the latest note on this dispute does not mention threats, weapons or violence",
                                   "该纠纷最新一条记录提到威胁、凶器或暴力",
                                   "该纠纷最新一条记录未提到威胁、凶器或暴力",
                                   "there is no note on this dispute yet", "该纠纷尚无走访或进展记录")
    for sig in load_lexicon().signals:
        en, zh = SIGNAL_WORDS.get(sig, (sig.replace("_", " "), ""))
        zh = zh or load_lexicon().labels[sig][1]
        # The text is the description as first recorded plus the notes written by as_of.
        S[f"text_{sig}"] = Flag(f"the description or notes of the dispute mention {en}",
                                f"the description and notes of the dispute do not mention {en}",
                                f"纠纷描述或走访记录中提到{zh}", f"纠纷描述和走访记录中未提到{zh}",
                                f"whether the dispute's text mentions {en} is not known", f"纠纷记录是否提到{zh}不详")
        S[f"followup_text_{sig}"] = C(f"1 later record about this dispute mentions {en}",
                                      f"{{n}} later records about this dispute mention {en}",
                                      f"no later record about this dispute mentions {en}",
                                      f"later records about this dispute that mention {en}",
                                      f"该纠纷后续有 {{n}} 条记录提到{zh}", f"该纠纷后续记录中没有提到{zh}",
                                      f"该纠纷后续提到{zh}的记录")

    for ev, (wins, _en_noun, zh_noun) in EVENTS.items():
        one, many = EVENT_NOUNS.get(ev, (_en_noun, _en_noun))
        for w in wins:
            win, zwin = WINDOW_EN[w], WINDOW_ZH_WORDS[w]
            S[f"hist_{ev}_{w}_max"] = C(f"one party has 1 {one} {win}", f"one party has {{n}} {many} {win}",
                                        f"no party has any {many} {win}", f"{many} {win} of any one party",
                                        f"有一方当事人{zwin}有 {{n}} 次{zh_noun}", f"各方当事人{zwin}均无{zh_noun}",
                                        f"当事人{zwin}{zh_noun}的次数")
            S[f"hist_{ev}_{w}_sum"] = PartyTotal(f"hist_{ev}_{w}_max", (one, many), win, zh_noun, zwin)
    S["hist_days_since_last"] = _since_last
    S["hist_days_since_offence"] = _since_offence
    S["hist_trend_max"] = _trend
    S["hist_counterparties_max"] = C("one party has been in conflict with 1 other person before",
                                     "one party has been in conflict with {n} different people before",
                                     "no party has been in conflict with anyone else before",
                                     "people the parties have been in conflict with",
                                     "有一方当事人曾与 {n} 个不同的人发生冲突", "各方当事人此前均未与他人发生冲突",
                                     "当事人曾发生冲突的人数")
    S["hist_counterparties_sum"] = PartyTotal("hist_counterparties_max", ("different person", "different people"),
                                              "before", "发生冲突的对象", "此前",
                                              has=("has been in conflict with", "have been in conflict with"),
                                              zh_unit="个")

    S["pair_prior_conflicts"] = C("there is 1 earlier record between the same parties",
                                  "there are {n} earlier records between the same parties",
                                  "there is no earlier record between the same parties",
                                  "earlier records between the same parties",
                                  "双方此前已有 {n} 条冲突记录", "双方此前没有冲突记录", "双方此前的冲突记录")
    S["pair_conflicts_365d"] = C("there is 1 record between the same parties in the last year",
                                 "there are {n} records between the same parties in the last year",
                                 "there is no record between the same parties in the last year",
                                 "records between the same parties in the last year",
                                 "双方近一年有 {n} 条冲突记录", "双方近一年没有冲突记录", "双方近一年的冲突记录")
    S["pair_police_calls_30d"] = C("the police were called once between the same parties in the last 30 days",
                                   "the police were called {n} times between the same parties in the last 30 days",
                                   "the police were not called between the same parties in the last 30 days",
                                   "police calls between the same parties in the last 30 days",
                                   "双方近30天报警 {n} 次", "双方近30天没有报警", "双方近30天报警次数")
    S["pair_cohabit"] = Flag("the parties live in the same household", "the parties do not live in the same household",
                             "双方同住一户", "双方不同住一户", "whether the parties live together is not known",
                             "双方是否同住不详")
    S["pair_relation"] = Category("the parties are recorded as {label}", "双方关系：{label}", RELATION_WORDS,
                                  "the parties' tie is not known", "双方关系不详",
                                  special={"none": ("the parties have no recorded tie", "双方没有登记的关系")})
    S["pair_intimate"] = Flag("the parties are or were partners", "the parties are not recorded as partners",
                              "双方为（前）配偶或伴侣", "双方不是登记的（前）配偶或伴侣",
                              "whether the parties are or were partners is not known", "双方是否为（前）配偶或伴侣不详")

    S["age_max"] = _age("oldest", "最年长")
    S["age_min"] = _age("youngest", "最年轻")
    S["n_male"] = C("1 of the parties is a man", "{n} of the parties are men", "none of the parties is a man",
                    "men among the parties", "男性当事人 {n} 人", "当事人中没有男性", "男性当事人人数")
    S["n_female"] = C("1 of the parties is a woman", "{n} of the parties are women", "none of the parties is a woman",
                      "women among the parties", "女性当事人 {n} 人", "当事人中没有女性", "女性当事人人数")
    S["n_migrant"] = C("1 party has no local hukou", "{n} parties have no local hukou",
                       "every party has local hukou", "parties without local hukou",
                       "外来人口当事人 {n} 人", "当事人均为本地户籍", "外来人口当事人人数")
    S["n_unemployed"] = C("1 party is unemployed", "{n} parties are unemployed", "no party is unemployed",
                          "unemployed parties", "无业当事人 {n} 人", "当事人中没有无业人员", "无业当事人人数")
    S["n_flags"] = C("the parties have 1 concern on record", "the parties have {n} concerns on record",
                     "the parties have no concern on record", "concerns on record for the parties",
                     "当事人共有 {n} 条关注记录", "当事人没有关注记录", "当事人关注记录")
    for flag, (yes_en, yes_zh) in FLAG_TEXT.items():
        noun_en, noun_zh = FLAG_WORDS.get(flag, (flag.replace("_", " "), yes_zh))
        S[f"flag_{flag}"] = Flag(yes_en, f"no party has {noun_en}", yes_zh, f"当事人均无{noun_zh}",
                                 f"whether a party has {noun_en} is not known", f"当事人是否有{noun_zh}不详")

    S["hh_coresidents"] = C("1 other person lives with the parties", "{n} other people live with the parties",
                            "nobody else lives with the parties", "people living with the parties",
                            "与当事人同住的其他人有 {n} 人", "没有其他人与当事人同住", "与当事人同住的人数")
    S["hh_coresident_flags"] = C("1 person living with the parties has a concern on record",
                                 "{n} people living with the parties have concerns on record",
                                 "nobody living with the parties has a concern on record",
                                 "people living with the parties with concerns on record",
                                 "同住人员中有 {n} 人有关注记录", "同住人员中没有人有关注记录",
                                 "同住人员中有关注记录的人数")
    S["hh_coresident_criminal"] = C("1 person living with the parties has a criminal record",
                                    "{n} people living with the parties have criminal records",
                                    "nobody living with the parties has a criminal record",
                                    "people living with the parties with criminal records",
                                    "同住人员中有 {n} 人有刑事案件记录", "同住人员中没有人有刑事案件记录",
                                    "同住人员中有刑事案件记录的人数")
    S["hh_domestic_disputes"] = C("the parties' households have had 1 earlier family dispute",
                                  "the parties' households have had {n} earlier family disputes",
                                  "the parties' households have had no earlier family dispute",
                                  "earlier family disputes in the parties' households",
                                  "当事人家庭此前有 {n} 起婚姻家庭纠纷", "当事人家庭此前没有婚姻家庭纠纷",
                                  "当事人家庭此前的婚姻家庭纠纷")
    S["hh_rented"] = Flag("a party lives in rented housing", "no party is recorded as renting", "当事人租房居住",
                          "当事人均无租房记录", "whether a party rents is not known", "当事人是否租房不详")

    S["place_type"] = Category("it happened at {label}", "地点类型：{label}", PLACE_WORDS,
                               "the kind of place is not recorded", "地点类型未登记")
    for w, win, zwin in (("90d", "in the last 90 days", "近90天"), ("365d", "in the last year", "近一年")):
        S[f"place_incidents_{w}"] = C(f"there has been 1 other record at this address {win}",
                                      f"there have been {{n}} other records at this address {win}",
                                      f"there has been no other record at this address {win}",
                                      f"other records at this address {win}",
                                      f"该地址{zwin}有 {{n}} 条其他记录", f"该地址{zwin}没有其他记录",
                                      f"该地址{zwin}的其他记录")
        S[f"place_violent_{w}"] = C(f"1 violent crime happened at this address {win}",
                                    f"{{n}} violent crimes happened at this address {win}",
                                    f"no violent crime happened at this address {win}",
                                    f"violent crimes at this address {win}",
                                    f"该地址{zwin}发生 {{n}} 起暴力犯罪", f"该地址{zwin}没有发生暴力犯罪",
                                    f"该地址{zwin}的暴力犯罪")
        S[f"grid_incidents_{w}"] = C(f"there has been 1 record in this grid {win}",
                                     f"there have been {{n}} records in this grid {win}",
                                     f"there has been no record in this grid {win}", f"records in this grid {win}",
                                     f"所在网格{zwin}有 {{n}} 条记录", f"所在网格{zwin}没有记录",
                                     f"所在网格{zwin}的记录")
        S[f"grid_violent_{w}"] = C(f"1 violent crime happened in this grid {win}",
                                   f"{{n}} violent crimes happened in this grid {win}",
                                   f"no violent crime happened in this grid {win}",
                                   f"violent crimes in this grid {win}",
                                   f"所在网格{zwin}发生 {{n}} 起暴力犯罪", f"所在网格{zwin}没有发生暴力犯罪",
                                   f"所在网格{zwin}的暴力犯罪")
    S["place_repeat_disputes"] = C("there has been 1 other dispute at this address in the last year",
                                   "there have been {n} other disputes at this address in the last year",
                                   "there has been no other dispute at this address in the last year",
                                   "other disputes at this address in the last year",
                                   "该地址近一年另有 {n} 起纠纷", "该地址近一年没有其他纠纷", "该地址近一年的其他纠纷")

    S["net_size"] = C("the parties' circle counts 1 person", "the parties' circle counts {n} people",
                      "the parties have no recorded circle", "people in the parties' circle",
                      "当事人关系圈共 {n} 人", "当事人没有登记的关系圈", "当事人关系圈人数")
    S["net_criminal"] = C("1 person close to the parties has a criminal record",
                          "{n} people close to the parties have criminal records",
                          "nobody close to the parties has a criminal record",
                          "people close to the parties with criminal records",
                          "当事人身边有 {n} 人有刑事案件记录", "当事人身边没有人有刑事案件记录",
                          "当事人身边有刑事案件记录的人数")
    S["net_violent"] = C("1 person close to the parties has a history of violence",
                         "{n} people close to the parties have a history of violence",
                         "nobody close to the parties has a history of violence",
                         "people close to the parties with a history of violence",
                         "当事人身边有 {n} 人有暴力记录", "当事人身边没有人有暴力记录", "当事人身边有暴力记录的人数")
    S["net2_criminal"] = C("1 person two steps from the parties has a criminal record",
                           "{n} people two steps from the parties have criminal records",
                           "nobody two steps from the parties has a criminal record",
                           "people two steps from the parties with criminal records",
                           "当事人二度关系中有 {n} 人有刑事案件记录", "当事人二度关系中没有人有刑事案件记录",
                           "当事人二度关系中有刑事案件记录的人数")
    S["org_open_disputes_30d"] = C(
        "1 other open dispute against the same organisation was reported in the last 30 days",
        "{n} other open disputes against the same organisation were reported in the last 30 days",
        "no other open dispute against the same organisation was reported in the last 30 days",
        "other open disputes against the same organisation in the last 30 days",
        "近30天针对同一单位另有 {n} 起未结纠纷", "近30天没有针对同一单位的其他未结纠纷",
        "近30天针对同一单位的其他未结纠纷")
    S["org_disputes_365d"] = C("there has been 1 other dispute against the same organisation in the last year",
                               "there have been {n} other disputes against the same organisation in the last year",
                               "there has been no other dispute against the same organisation in the last year",
                               "other disputes against the same organisation in the last year",
                               "近一年针对同一单位另有 {n} 起纠纷", "近一年没有针对同一单位的其他纠纷",
                               "近一年针对同一单位的其他纠纷")
    from .sentences_signal import build as _signal  # the escalation families, in their own module
    S.update(_signal(C, Flag, missing, _en, _zh, _num, _days))
    return S


SENTENCES: dict[str, Renderer] = _build()


def has_sentence(name: str) -> bool:
    """Whether ``name`` has a sentence of its own (not the registry fallback)."""
    return name in SENTENCES


def _fallback(name: str, value: Any, lang: Lang) -> str:
    """The registry template with readable numbers, for a feature without its own sentence."""
    from .registry import REGISTRY
    f = REGISTRY[name]
    template = f.en if lang == "en" else f.zh
    if missing(value):
        v = "not recorded" if lang == "en" else "未登记"
    elif f.kind == "category":
        v = str(value)
    elif f.kind in ("count", "flag"):
        v = f"{_int(value)}"
    else:
        v = _num(float(value))
    text = template.format(v=v)
    return _en(text) if lang == "en" else _zh(text)


def render(name: str, row: Mapping[str, Any], lang: Lang = "en") -> str:
    """The reason sentence of feature ``name`` for one dispute, whose feature values
    are ``row`` (a mapping of feature name to value; at least ``name`` itself)."""
    value = row.get(name)
    fn = SENTENCES.get(name)
    return fn(value, row, lang) if fn is not None else _fallback(name, value, lang)
