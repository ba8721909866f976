"""Separation: parties who stopped living together, and a party who just moved out.

The risk-assessment literature names the months after two people stop sharing a home
as the most dangerous of a conflict between them (DASH's "recently separated", the
Danger Assessment's separation after living together, domestic-homicide reviews). The
pair family says whether the parties live together now and what their tie is; it
does not say that they lived together until recently. So, through the household
memberships (a membership counts from its start, and its end is known from the moment
it happens: :func:`escalation_risk.known.known_members`):

- days since two parties of the dispute last stopped sharing a household: the earlier
  of their two memberships' ends, at or before as_of, over the households both lived
  in at the same time (unknown when they never shared one, or still share every one
  they shared); the most recent over the dispute's pairs;
- days since a party's latest household membership ended (any household: a party who
  has just moved out, whoever they left); the most recent over the parties.

Neither reads the scored dispute's own records, so batch and online agree.
"""

from __future__ import annotations

import numpy as np

from .common import group_max, pack, unique_parties
from .index import HistoryIndex
from .pair import party_pairs
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY, ragged

FAMILY = "separation"


def register() -> None:
    REGISTRY.add(
        Feature("sep_pair_days_apart", FAMILY, "the parties stopped living together {v} days ago",
                "双方 {v} 天前不再同住", "number",
                note="households both parties lived in at the same time, the earlier of their two moves out"),
        Feature("sep_moved_out_days", FAMILY, "a party moved out of a household {v} days ago",
                "有一方当事人 {v} 天前迁出住户", "number",
                note="the end of a party's latest household membership, whoever else lived there"),
    )


def _memberships(idx: HistoryIndex, person: np.ndarray,
                 t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(query row, household, start, end) of each membership of ``person`` started by ``t``."""
    ms = idx.memberships
    row, pos = ms.expand(person, None, t)
    return row, ms.payload["household"][pos], np.asarray(ms.t[pos], dtype=np.int64), \
        np.asarray(ms.payload["end"][pos], dtype=np.int64)


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    n = len(P)
    out: dict[str, np.ndarray] = {}

    # A party's latest move out of any household, by as_of.
    pt, person = unique_parties(P)
    t = P.t[pt]
    row, _, _, end = _memberships(idx, person, t)
    ended = end <= t[row]
    last = group_max(len(person), row[ended], end[ended].astype(float), empty=-np.inf)
    days = np.where(np.isfinite(last), (t - last) / DAY, np.inf)
    most_recent = np.full(n, np.inf)
    np.minimum.at(most_recent, pt, days)
    out["sep_moved_out_days"] = np.where(np.isinf(most_recent), np.nan, most_recent)

    # Two parties who shared a household at the same time, one of them (or both) gone by as_of.
    ppt, a, b = party_pairs(P)
    pt_t = P.t[ppt]
    ra, ha, sa, ea = _memberships(idx, a, pt_t)
    rb, hb, sb, eb = _memberships(idx, b, pt_t)
    ka, kb = pack(ra, ha), pack(rb, hb)
    order = np.argsort(kb, kind="stable")
    lo = np.searchsorted(kb[order], ka, side="left")
    hi = np.searchsorted(kb[order], ka, side="right")
    ia, j = ragged(lo, hi)  # every (a's membership, b's membership) of the same pair and household
    ib = order[j]
    apart = np.minimum(ea[ia], eb[ib])
    together = np.maximum(sa[ia], sb[ib]) < apart
    done = together & (apart <= pt_t[ra[ia]])
    last_pair = group_max(len(a), ra[ia][done], apart[done].astype(float), empty=-np.inf)
    pair_days = np.where(np.isfinite(last_pair), (pt_t - last_pair) / DAY, np.inf)
    most_recent = np.full(n, np.inf)
    np.minimum.at(most_recent, ppt, pair_days)
    out["sep_pair_days_apart"] = np.where(np.isinf(most_recent), np.nan, most_recent)
    return out
