"""Activity: how recently anything happened around a dispute, and how long it has been
open against what is usual for its kind.

The other families count records in windows (30, 90, 365 days); a count of one in the
last 30 days reads the same whether the call came yesterday or four weeks ago, and a
night scores a dispute on any day of its life. Case-management practice reads the
silence instead: a dispute whose parties and workers have all gone quiet differs from
one with a call last night, and a dispute still open long after most of its kind are
settled is one the usual remedies have not closed. So:

- days since the latest record of any kind on the dispute or on any of its parties
  (its report, follow-ups, notes, mediation sessions, and every other incident a party is in);
- days since the latest record on the dispute itself;
- its age against the median time to closure of its category's disputes closed in the
  year before (``CLOSED_WINDOW_DAYS``, at least ``MIN_CLOSED`` of them; else unknown).

Point-in-time: every record is read through the history index at ``as_of``; a closure
counts only before the start of ``as_of``'s day (``closed_at <= t`` is when it is known,
:func:`escalation_risk.known.open_at`; the day keeps the medians few).
"""

from __future__ import annotations

import weakref

import numpy as np

from .common import group_max, unique_parties
from .delta import DeltaTimeline
from .dispute import mediations_known, notes_known
from .history import last_record
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY, NEVER, OFF, Timeline

FAMILY = "activity"
CLOSED_WINDOW_DAYS = 365
MIN_CLOSED = 20


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    R = REGISTRY.add
    R(Feature("act_days_since_contact", FAMILY,
              "{v} days since the latest record on this dispute or any of its parties",
              "距该纠纷或任一当事人的最近一条记录已 {v} 天", "number",
              note="its report, follow-ups, notes and mediation sessions, and every other incident a party is in"),
      Feature("act_days_since_dispute_contact", FAMILY, "{v} days since the latest record on this dispute",
              "距该纠纷的最近一条记录（报告、后续、回访、调解）已 {v} 天", "number",
              note="its report, follow-ups, notes and mediation sessions"),
      Feature("act_age_vs_category", FAMILY,
              "open x{v} as long as its category's disputes usually take to close",
              "已持续时间是同类纠纷通常结案用时的 {v} 倍", "number",
              note=f"the median over its category's disputes closed in the {CLOSED_WINDOW_DAYS} days before "
                   f"(unknown with fewer than {MIN_CLOSED})"))


def _last_before(tl: Timeline | DeltaTimeline, ent: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per query: the time of the latest event of ``ent`` at or before ``t`` (-inf: none)."""
    start, stop = tl.bounds(ent, None, t)
    out = np.full(len(t), -np.inf)
    has = stop > start
    out[has] = np.asarray(tl.t[stop[has] - 1], dtype=float)
    return out


# Per index: each category's closed disputes (closing times in order, days to close), so a
# night's slices and a server's requests do not re-read every incident (0.4 s a call at a
# million). Weak keys: an index appended to is a new object, and a dropped one leaves.
_CLOSED: weakref.WeakKeyDictionary[HistoryIndex, dict[str, tuple[np.ndarray, np.ndarray]]] = \
    weakref.WeakKeyDictionary()


def _closed_by_category(idx: HistoryIndex) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Category -> (closing times in order, days from report to closure in that order) of
    the index's closed disputes."""
    got = _CLOSED.get(idx)
    if got is None:
        closed = np.asarray(idx.inc_closed)
        done = np.flatnonzero((np.asarray(idx.inc_kind) == "dispute") & (closed < NEVER))
        cats = np.asarray(idx.inc_category, dtype=object)[done].astype(str)
        dur = (closed[done] - np.asarray(idx.inc_rep)[done]) / DAY
        got = {}
        for c in np.unique(cats):
            m = cats == c
            order = np.argsort(closed[done][m], kind="stable")
            got[str(c)] = (closed[done][m][order], dur[m][order].astype(float))
        _CLOSED[idx] = got
    return got


def category_median_days(idx: HistoryIndex, category: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per point: the median days from report to closure of the disputes of ``category``
    closed in the ``CLOSED_WINDOW_DAYS`` before the start of ``t``'s day (NaN: fewer than
    ``MIN_CLOSED``)."""
    out = np.full(len(t), np.nan)
    by_cat = _closed_by_category(idx)
    empty = (np.zeros(0, np.int64), np.zeros(0))
    mine = np.asarray(category, dtype=object).astype(str)
    day = (np.asarray(t, np.int64) // DAY) * DAY
    for c in np.unique(mine):
        at = np.flatnonzero(mine == c)
        ct, dur = by_cat.get(str(c), empty)
        days, inv = np.unique(day[at], return_inverse=True)
        lo = np.searchsorted(ct, days - CLOSED_WINDOW_DAYS * DAY, side="left")
        hi = np.searchsorted(ct, days, side="left")  # closed before the day starts
        med = np.full(len(days), np.nan)
        for i in np.flatnonzero(hi - lo >= MIN_CLOSED):
            med[i] = np.median(dur[lo[i]:hi[i]])
        out[at] = med[inv]
    return out


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The activity features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    t = P.t
    tf = t.astype(float)
    # The dispute itself: its report, the follow-ups naming it, notes and sessions known at as_of.
    own = np.asarray(P.rep, dtype=float)
    own = np.maximum(own, _last_before(idx.followups, P.d, t))
    n_pt, n_t, _ = notes_known(idx, P)
    own = np.maximum(own, group_max(n, n_pt, n_t.astype(float), empty=-np.inf))
    m_pt, m_t, _ = mediations_known(idx, P)
    own = np.maximum(own, group_max(n, m_pt, m_t.astype(float), empty=-np.inf))
    # Its parties: the latest incident of any kind each is in, this dispute left out (its
    # report is in ``own``; a party's arrival on it is no contact a new dispute could show).
    pt, person = unique_parties(P)
    last = last_record(idx, person, t[pt], P.d[pt])
    last = np.where(last > -OFF, last, -np.inf).astype(float)
    anyone = np.maximum(own, group_max(n, pt, last, empty=-np.inf))
    days_open = (tf - np.asarray(P.rep, dtype=float)) / DAY
    typical = category_median_days(idx, P.category, t)
    return {
        "act_days_since_contact": np.maximum(tf - anyone, 0.0) / DAY,
        "act_days_since_dispute_contact": np.maximum(tf - own, 0.0) / DAY,
        # A day's floor on the median: a category that closes the same day would divide by zero.
        "act_age_vs_category": days_open / np.maximum(typical, 1.0),
    }
