"""Escalation velocity: how fast things are happening to the parties, not how much.

The risk-assessment literature (stalking and domestic-violence escalation, repeat
victimisation) reads acceleration: the gaps between successive incidents shrinking,
a burst in the last week against the usual pace (the last month against the 90 days
before is :mod:`.history`'s ``hist_trend_max``, not repeated here), and an intensity that decays with
time, so five calls this month weigh more than five calls two years ago (a
self-exciting process, here as an exponentially decayed count at a few half-lives).

Per canonical person, over their disputes, police calls, complaints and petitions
(the records that precede an escalation; criminal cases are the label's business),
and per pair of parties over the records they share. The scored dispute's own
record is never part of it (as in :mod:`.history`), so batch and online agree.
"""

from __future__ import annotations

import numpy as np

from .common import group_max, group_min, unique_parties
from .history import TREND_KINDS
from .id_index import positions
from .index import HistoryIndex
from .pair import party_pairs
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY, SHIFT

FAMILY = "velocity"
HALF_LIVES = (7, 30, 180)  # days: a burst, a month, a season
OWN_NOTE = "the scored dispute's own record is not counted"


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    R = REGISTRY.add
    R(Feature("vel_7d_max", FAMILY, "a party has {v} records in the last 7 days", "当事人近7天有 {v} 条记录",
              note=OWN_NOTE),
      Feature("vel_burst_7d_max", FAMILY,
              "a party's last 7 days run at x{v} their pace of the 90 days before",
              "当事人近7天的记录频率是此前90天的 {v} 倍", "number", note=OWN_NOTE),
      Feature("vel_last_gap_min", FAMILY, "a party's last two records were {v} days apart",
              "当事人最近两条记录相隔 {v} 天", "number", note=OWN_NOTE),
      Feature("vel_gap_shrink_min", FAMILY,
              "a party's last gap between records is x{v} their earlier average gap",
              "当事人最近一次记录间隔是此前平均间隔的 {v} 倍", "number", note=OWN_NOTE))
    for h in HALF_LIVES:
        R(Feature(f"vel_intensity_{h}d_max", FAMILY,
                  f"a party's recent records weigh {{v}} (half-life {h} days)",
                  f"当事人近期记录强度 {{v}}（半衰期{h}天）", "number", note=OWN_NOTE))
    R(Feature("vel_pair_last_gap_min", FAMILY, "the same parties' last two records were {v} days apart",
              "双方最近两条冲突记录相隔 {v} 天", "number", note=OWN_NOTE),
      Feature("vel_pair_intensity_30d_max", FAMILY,
              "the same parties' recent records weigh {v} (half-life 30 days)",
              "双方近期冲突强度 {v}（半衰期30天）", "number", note=OWN_NOTE))


def _gaps(n_rows: int, owner: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the last gap between its events ``(owner, times)`` and the mean of the
    gaps before it, in days (NaN with too few events)."""
    order = np.lexsort((times, owner))
    o, tt = owner[order], times[order]
    count = np.bincount(o, minlength=n_rows)[:n_rows]
    end = np.cumsum(count)
    start = end - count
    last_gap = np.full(n_rows, np.nan)
    prev_mean = np.full(n_rows, np.nan)
    two = count >= 2
    last_gap[two] = (tt[end[two] - 1] - tt[end[two] - 2]) / DAY
    three = count >= 3
    prev_mean[three] = (tt[end[three] - 2] - tt[start[three]]) / DAY / (count[three] - 2)
    return last_gap, prev_mean


def _intensity(n_rows: int, owner: np.ndarray, age_days: np.ndarray, half_life: float) -> np.ndarray:
    return np.bincount(owner, weights=0.5 ** (age_days / half_life), minlength=n_rows)[:n_rows]


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The velocity features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    pt, person = unique_parties(P)
    t = P.t[pt]
    d = P.d[pt]
    k = len(person)
    owners, times = [], []
    for ev in TREND_KINDS:
        tl = idx.person_events[ev]
        o, pos = tl.expand(person, None, t)
        keep = tl.payload["inc"][pos] != d[o]  # never the scored dispute itself
        owners.append(o[keep])
        times.append(tl.t[pos][keep])
    owner, tm = np.concatenate(owners), np.concatenate(times)
    age = (t[owner] - tm) / DAY
    c7 = np.bincount(owner[age < 7], minlength=k)[:k].astype(float)
    prev90 = np.bincount(owner[(age >= 7) & (age < 97)], minlength=k)[:k].astype(float)
    last_gap, prev_mean = _gaps(k, owner, tm)
    out: dict[str, np.ndarray] = {
        "vel_7d_max": group_max(n, pt, c7),
        # The last week against the week the 90 days before would predict, both smoothed by
        # one record, so a quiet party reads 1 and a single call is no great burst.
        "vel_burst_7d_max": group_max(n, pt, (c7 + 1.0) / (prev90 * 7 / 90 + 1.0), empty=1.0),
        "vel_last_gap_min": group_min(n, pt, np.nan_to_num(last_gap, nan=np.inf)),
        # A gap of a day or less counts as a day: two records the same day are one burst.
        "vel_gap_shrink_min": group_min(n, pt, np.nan_to_num((np.maximum(last_gap, 1.0)) /
                                                             np.maximum(prev_mean, 1.0), nan=np.inf)),
    }
    for name in ("vel_last_gap_min", "vel_gap_shrink_min"):
        out[name][np.isinf(out[name])] = np.nan
    for h in HALF_LIVES:
        out[f"vel_intensity_{h}d_max"] = group_max(n, pt, _intensity(k, owner, age, h))

    # The pair: records shared by two parties of the dispute (its own record left out).
    ppt, a, b = party_pairs(P)
    pid = positions(idx.pairs, a * SHIFT + b)
    pev = idx.pair_events
    pt_t = P.t[ppt]
    po, ppos = pev.expand(pid, None, pt_t)
    keep = pev.payload["inc"][ppos] != P.d[ppt][po]
    po, ptm = po[keep], pev.t[ppos][keep]
    m = len(pid)
    pair_gap, _ = _gaps(m, po, ptm)
    out["vel_pair_last_gap_min"] = group_min(n, ppt, np.nan_to_num(pair_gap, nan=np.inf))
    out["vel_pair_last_gap_min"][np.isinf(out["vel_pair_last_gap_min"])] = np.nan
    out["vel_pair_intensity_30d_max"] = group_max(n, ppt, _intensity(m, po, (pt_t[po] - ptm) / DAY, 30))
    return out
