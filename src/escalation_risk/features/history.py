"""Each party's own history: what they were involved in before, over several windows,
how recently, whether it is speeding up, and with how many different people.

Counted per canonical person (all source ids of one person together), then
aggregated over the dispute's person parties as the maximum and the sum.

The scored dispute's own records are never part of its parties' history: not the
dispute itself (``hist_dispute_*``, ``hist_danger_text_*``, the trend, the days
since the last record), not its mediations (``hist_failed_mediation_*``: those are
the dispute family's ``mediations_failed``), not the ties it creates between its
own parties (``hist_counterparties_*``). So a dispute scores the same whether it
is already in the history (the batch) or arrives as a service call's dicts that
the history has never seen (``score_dispute``).
"""

from __future__ import annotations

import numpy as np

from .common import WINDOWS, group_max, group_min, group_sum, unique_parties
from .id_index import positions
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY, OFF, SHIFT, ragged

FAMILY = "party_history"

# event type -> (windows, English noun, Chinese noun)
EVENTS = {
    "dispute": (("30d", "90d", "365d", "all"), "other disputes", "其他纠纷"),
    "police_call": (("30d", "90d", "365d", "all"), "police calls", "报警"),
    "complaint": (("90d", "365d", "all"), "complaints", "投诉"),
    "petition": (("90d", "365d", "all"), "petitions", "信访"),
    "crime_suspect": (("90d", "365d", "all"), "criminal cases as suspect", "作为嫌疑人的刑事案件"),
    "crime_victim": (("365d", "all"), "criminal cases as victim", "作为被害人的刑事案件"),
    "violent_suspect": (("all",), "violent offences as suspect", "作为嫌疑人的暴力犯罪"),
    "danger_text": (("90d", "all"), "records with threats, weapons or violence", "含威胁、凶器或暴力描述的记录"),
    "failed_mediation": (("365d", "all"), "failed mediations", "调解失败"),
}
WINDOW_EN = {"30d": "in the last 30 days", "90d": "in the last 90 days", "365d": "in the last year",
             "all": "on record"}
WINDOW_ZH = {"30d": "近30天", "90d": "近90天", "365d": "近一年", "all": "历史累计"}
TREND_KINDS = ("dispute", "police_call", "complaint", "petition")
# The records that make a person's "latest record" (:func:`last_record`).
RECORD_KINDS = ("dispute", "police_call", "complaint", "petition", "criminal_case")
OWN_NOTE = "the scored dispute's own records (itself, its mediations, the ties it creates) are not counted"


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    R = REGISTRY.add
    for ev, (wins, en, zh) in EVENTS.items():
        for w in wins:
            R(Feature(f"hist_{ev}_{w}_max", FAMILY, f"a party has {{v}} {en} {WINDOW_EN[w]}",
                      f"当事人{WINDOW_ZH[w]}有 {{v}} 次{zh}", note=OWN_NOTE),
              Feature(f"hist_{ev}_{w}_sum", FAMILY, f"the parties have {{v}} {en} {WINDOW_EN[w]} together",
                      f"各方当事人{WINDOW_ZH[w]}共有 {{v}} 次{zh}", note=OWN_NOTE))
    R(Feature("hist_days_since_last", FAMILY, "a party's previous record was {v} days ago",
              "当事人上一次记录距今 {v} 天", "number", note=OWN_NOTE),
      Feature("hist_days_since_offence", FAMILY, "a party's last criminal case as suspect was {v} days ago",
              "当事人上一次作为嫌疑人的刑事案件距今 {v} 天", "number"),
      Feature("hist_trend_max", FAMILY, "a party's records are speeding up (last 30 days vs the 90 before: x{v})",
              "当事人近期记录明显增多（近30天对比之前90天：{v} 倍）", "number", note=OWN_NOTE),
      Feature("hist_counterparties_max", FAMILY, "a party has been in conflict with {v} different people",
              "当事人曾与 {v} 个不同的人发生冲突",
              note="people met in other records only: a co-party of the scored dispute counts when an "
                   "earlier or other record ties them"),
      Feature("hist_counterparties_sum", FAMILY, "the parties' conflicts involve {v} different people in all",
              "各方当事人共与 {v} 人发生过冲突",
              note="people met in other records only: a co-party of the scored dispute counts when an "
                   "earlier or other record ties them"))


def last_record(idx: HistoryIndex, person: np.ndarray, t: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per query: the time of ``person``'s latest record of any of :data:`RECORD_KINDS` at
    or before ``t``, the scored dispute ``d`` left out (-OFF: none).

    Leaving ``d`` out keeps batch and online equal: a dispute the history never saw has no
    record in its parties' timelines, one it saw has one (at each party's arrival on it).
    """
    last = np.full(len(person), -OFF)
    for ev in RECORD_KINDS:
        tl = idx.person_events[ev]
        if not len(tl):
            continue
        start, stop = tl.bounds(person, None, t)
        has = stop > start
        i = np.where(has, stop - 1, 0)
        if ev == "dispute":
            # A party is on a dispute once, so the scored dispute, when it is the latest
            # record, is left out by stepping back once (equal times included).
            is_own = has & (tl.payload["inc"][i] == d)
            i = np.where(is_own, i - 1, i)
            has = has & (~is_own | (i >= start))
        last = np.where(has, np.maximum(last, tl.t[np.clip(i, 0, None)]), last)
    return last


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The party-history features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    pt, person = unique_parties(P)
    t = P.t[pt]
    d = P.d[pt]
    # Is the scored dispute itself in this person's dispute history? Then leave it out.
    at = positions(idx.inc_person, d * SHIFT + person)
    own = (d >= 0) & (at >= 0)
    # The scored dispute is in a party's timelines from the party's arrival on it (added_at).
    own_rep = np.where(own, idx.inc_person_t[np.maximum(at, 0)], P.rep[pt])
    # The scored dispute sits in its parties' dispute timeline, and in their danger-text
    # timeline when its own text has danger words; either way it is not "history".
    danger = np.asarray(idx.inc_danger)[np.clip(d, 0, None)]
    own_in: dict[str, np.ndarray] = {"dispute": own, "danger_text": own & danger}
    # Its failed mediations sit in each of its parties' failed-mediation timeline (from the
    # outcome, or the party's arrival): found there by incident, whatever their time.
    fm = idx.person_events["failed_mediation"]
    own_rows = np.flatnonzero(own)
    fo, fpos = fm.expand(person[own_rows], None, t[own_rows])
    mine = fm.payload["inc"][fpos] == d[own_rows][fo]
    own_failed_row, own_failed_t = own_rows[fo[mine]], fm.t[fpos][mine]
    out: dict[str, np.ndarray] = {}
    k = len(person)
    for ev, (wins, _, _) in EVENTS.items():
        tl = idx.person_events[ev]
        # Every window in one look-up (a window "all" starts at -OFF, before any record).
        counts = tl.count(np.tile(person, len(wins)), np.concatenate([
            np.full(k, -OFF) if WINDOWS[w] is None else t - WINDOWS[w] * DAY for w in wins]), np.tile(t, len(wins)))
        for j, w in enumerate(wins):
            c = counts[j * k:(j + 1) * k].astype(float)
            days = WINDOWS[w]
            if ev in own_in:
                c = c - (own_in[ev] & ((days is None) | (own_rep > t - (days or 0) * DAY)))
            elif ev == "failed_mediation" and len(own_failed_row):
                inside = own_failed_t > (t[own_failed_row] - days * DAY) if days else \
                    np.ones(len(own_failed_row), bool)
                c = c - np.bincount(own_failed_row[inside], minlength=k)[:k]
            out[f"hist_{ev}_{w}_max"] = group_max(n, pt, c)
            out[f"hist_{ev}_{w}_sum"] = group_sum(n, pt, c)

    # Days since the party's previous record of any kind, the scored dispute excluded.
    last = last_record(idx, person, t, d)
    since = np.where(last > -OFF, (t - last) / DAY, np.nan)
    out["hist_days_since_last"] = group_min(n, pt, np.where(np.isnan(since), np.inf, since), empty=np.nan)
    out["hist_days_since_last"][np.isinf(out["hist_days_since_last"])] = np.nan

    # Prior offences by recency: a record of a year ago weighs differently from one of ten,
    # and data sets with little else (ages, priors, charges) still carry this.
    tl = idx.person_events["crime_suspect"]
    start, stop = tl.bounds(person, None, t)
    has = stop > start
    last_off = np.where(has, (t - tl.t[np.clip(stop - 1, 0, None)]) / DAY, np.inf) if len(tl) else \
        np.full(len(person), np.inf)
    out["hist_days_since_offence"] = group_min(n, pt, last_off, empty=np.nan)

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

    cp = idx.counterparties.count(person, None, t).astype(float) - _ties_only_from_own(idx, P, pt, person, own)
    out["hist_counterparties_max"] = group_max(n, pt, cp)
    out["hist_counterparties_sum"] = group_sum(n, pt, cp)
    return out


def _ties_only_from_own(idx: HistoryIndex, P: PointSet, pt: np.ndarray, person: np.ndarray,
                        own: np.ndarray) -> np.ndarray:
    """Per (point, person) row: co-parties this person is tied to, by as_of, only through
    the scored dispute itself (no other shared record). Zero for a dispute the history
    does not hold, which creates no tie there."""
    out = np.zeros(len(pt))
    rows = np.flatnonzero(own)
    if len(rows) < 2:
        return out
    r_pt = pt[rows]
    size = np.searchsorted(r_pt, r_pt, side="right") - np.searchsorted(r_pt, r_pt, side="left")
    # Every pair of a big dispute too: early arrivals of a large group may still be tied.
    rows = rows[size >= 2]
    if len(rows) < 2:
        return out
    r_pt = pt[rows]
    # Rows are sorted by (point, person): every i < j of one point is a pair (a < b).
    i, j = ragged(np.arange(len(rows)) + 1, np.searchsorted(r_pt, r_pt, side="right"))
    i, j = rows[i], rows[j]
    pid = positions(idx.pairs, person[i] * SHIFT + person[j])
    ev = idx.pair_events
    owner, pos = ev.expand(pid, None, P.t[pt[i]])
    is_own = ev.payload["inc"][pos] == P.d[pt[i]][owner]
    n_all = np.bincount(owner, minlength=len(i))[:len(i)]
    n_own = np.bincount(owner[is_own], minlength=len(i))[:len(i)]
    only = (n_own > 0) & (n_all == n_own)
    np.add.at(out, i[only], 1.0)
    np.add.at(out, j[only], 1.0)
    return out
