"""Each party's own history: what they were involved in before, over several windows,
how recently, whether it is speeding up, and with how many different people.

Counted per canonical person (all source ids of one person together), then
aggregated over the dispute's person parties as the maximum and the sum. The
dispute being scored is never part of its own parties' history.
"""

from __future__ import annotations

import numpy as np

from .common import WINDOWS, group_max, group_min, group_sum, lo_of, unique_parties
from .index import DAY, OFF, SHIFT, HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature

FAMILY = "party_history"

# event type -> (windows, English noun, Chinese noun)
EVENTS = {
    "dispute": (("30d", "90d", "365d", "all"), "other disputes", "其他纠纷"),
    "police_call": (("30d", "90d", "365d", "all"), "police calls", "报警"),
    "complaint": (("90d", "365d", "all"), "complaints", "投诉"),
    "petition": (("90d", "365d", "all"), "petitions", "信访"),
    "crime_suspect": (("365d", "all"), "criminal cases as suspect", "作为嫌疑人的刑事案件"),
    "crime_victim": (("365d", "all"), "criminal cases as victim", "作为被害人的刑事案件"),
    "violent_suspect": (("all",), "violent offences as suspect", "作为嫌疑人的暴力犯罪"),
    "danger_text": (("90d", "all"), "records with threats, weapons or violence", "含威胁、凶器或暴力描述的记录"),
    "failed_mediation": (("365d", "all"), "failed mediations", "调解失败"),
}
WINDOW_EN = {"30d": "in the last 30 days", "90d": "in the last 90 days", "365d": "in the last year",
             "all": "on record"}
WINDOW_ZH = {"30d": "近30天", "90d": "近90天", "365d": "近一年", "all": "历史累计"}
TREND_KINDS = ("dispute", "police_call", "complaint", "petition")


def register() -> None:
    R = REGISTRY.add
    for ev, (wins, en, zh) in EVENTS.items():
        for w in wins:
            R(Feature(f"hist_{ev}_{w}_max", FAMILY, f"a party has {{v}} {en} {WINDOW_EN[w]}",
                      f"当事人{WINDOW_ZH[w]}有 {{v}} 次{zh}"),
              Feature(f"hist_{ev}_{w}_sum", FAMILY, f"the parties have {{v}} {en} {WINDOW_EN[w]} together",
                      f"各方当事人{WINDOW_ZH[w]}共有 {{v}} 次{zh}"))
    R(Feature("hist_days_since_last", FAMILY, "a party's previous record was {v} days ago",
              "当事人上一次记录距今 {v} 天", "number"),
      Feature("hist_trend_max", FAMILY, "a party's records are speeding up (last 30 days vs the 90 before: x{v})",
              "当事人近期记录明显增多（近30天对比之前90天：{v} 倍）", "number"),
      Feature("hist_counterparties_max", FAMILY, "a party has been in conflict with {v} different people",
              "当事人曾与 {v} 个不同的人发生冲突"),
      Feature("hist_counterparties_sum", FAMILY, "the parties' conflicts involve {v} different people in all",
              "各方当事人共与 {v} 人发生过冲突"))


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    n = len(P)
    pt, person = unique_parties(P)
    t = P.t[pt]
    d = P.d[pt]
    # Is the scored dispute itself in this person's dispute history? Then leave it out.
    at = idx.inc_person.get_indexer(d * SHIFT + person)
    own = (d >= 0) & (at >= 0)
    # The scored dispute is in a party's timelines from the party's arrival on it (added_at).
    own_rep = np.where(own, idx.inc_person_t[np.maximum(at, 0)], P.rep[pt])
    # The scored dispute sits in its parties' dispute timeline, and in their danger-text
    # timeline when its own text has danger words; either way it is not "history".
    own_in: dict[str, np.ndarray] = {"dispute": own, "danger_text": own & idx.inc_danger[np.clip(d, 0, None)]}
    out: dict[str, np.ndarray] = {}
    for ev, (wins, _, _) in EVENTS.items():
        tl = idx.person_events[ev]
        for w in wins:
            c = tl.count(person, lo_of(t, WINDOWS[w]), t).astype(float)
            if ev in own_in:
                days = WINDOWS[w]
                c = c - (own_in[ev] & ((days is None) | (own_rep > t - (days or 0) * DAY)))
            out[f"hist_{ev}_{w}_max"] = group_max(n, pt, c)
            out[f"hist_{ev}_{w}_sum"] = group_sum(n, pt, c)

    # Days since the party's previous record of any kind, the scored dispute excluded.
    last = np.full(len(person), -OFF)
    for ev in ("dispute", "police_call", "complaint", "petition", "criminal_case"):
        tl = idx.person_events[ev]
        start, stop = tl.bounds(person, None, t)
        has = stop > start
        i = np.where(has, stop - 1, 0)
        if ev == "dispute" and len(tl):
            # Skip the scored dispute if it is the latest record (equal times: step back once).
            is_own = has & (tl.payload["inc"][i] == d)
            i = np.where(is_own, i - 1, i)
            has = has & (~is_own | (i >= start))
        if len(tl):
            last = np.where(has, np.maximum(last, tl.t[np.clip(i, 0, None)]), last)
    since = np.where(last > -OFF, (t - last) / DAY, np.nan)
    out["hist_days_since_last"] = group_min(n, pt, np.where(np.isnan(since), np.inf, since), empty=np.nan)
    out["hist_days_since_last"][np.isinf(out["hist_days_since_last"])] = np.nan

    recent = np.zeros(len(person))
    before = np.zeros(len(person))
    for ev in TREND_KINDS:
        tl = idx.person_events[ev]
        r = tl.count(person, t - 30 * DAY, t).astype(float)
        if ev == "dispute":
            r = r - (own & (own_rep > t - 30 * DAY))
        recent += r
        b = tl.count(person, t - 120 * DAY, t - 30 * DAY).astype(float)
        if ev == "dispute":
            b = b - (own & (own_rep > t - 120 * DAY) & (own_rep <= t - 30 * DAY))
        before += b
    out["hist_trend_max"] = group_max(n, pt, (recent + 1.0) / (before / 3.0 + 1.0), empty=1.0)

    cp = idx.counterparties.count(person, None, t).astype(float)
    out["hist_counterparties_max"] = group_max(n, pt, cp)
    out["hist_counterparties_sum"] = group_sum(n, pt, cp)
    return out
