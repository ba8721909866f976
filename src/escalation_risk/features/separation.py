"""Separation: parties who stopped living together, and a party who just moved out.

The risk-assessment literature names the months after two people stop sharing a home
as the most dangerous of a conflict between them (DASH's "recently separated", the
Danger Assessment's separation after living together, domestic-homicide reviews). The
pair family says whether the parties live together now and what their tie is; it
does not say that they lived together until recently. So, through the household
memberships (a membership counts from its start, and its end is known from the moment
it happens: :func:`escalation_risk.known.known_members`):

- days since two parties of the dispute stopped living together: unknown when they live
  together at as_of (``pair_cohabit``'s rule, :func:`.common.living_together`) or never
  shared a household at the same time; else the latest end, at or before as_of, of a
  time they shared one (the earlier of their two memberships' ends); the most recent
  over the dispute's pairs;
- days since a party moved out of a household: the latest end, at or before as_of, of a
  party's membership of a household where they lived with others, where they did not
  stay on (no membership of theirs in the same household running just after the end or
  starting within a day of it: a role change or a re-registration is not a move), and
  none of whom they lived with there just before shares a household with them at as_of
  (moving with the people one lived with is not moving out); the most recent over the
  parties.

Only memberships started by as_of are read, so a re-registration after as_of does not
undo a move that as_of saw. Neither reads the scored dispute's own records, so batch and
online agree.
"""

from __future__ import annotations

import numpy as np

from .common import group_max, living_together, members_at, pack, unique_parties
from .index import HistoryIndex
from .pair import party_pairs
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY, join_on

FAMILY = "separation"
STAY_ON_DAYS = 1  # a membership of the same household starting this soon after an end continues it


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    REGISTRY.add(
        Feature("sep_pair_days_apart", FAMILY, "the parties stopped living together {v} days ago",
                "双方 {v} 天前不再同住", "number",
                note="not living together now; the latest end of a time both were members of one household"),
        Feature("sep_moved_out_days", FAMILY, "a party moved away from the people they lived with {v} days ago",
                "有一方当事人 {v} 天前离开同住者迁出", "number",
                note="a party left a household where they lived with others, none of whom lives with them now"),
    )


def _memberships(idx: HistoryIndex, person: np.ndarray,
                 t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(query row, household, start, end) of each membership of ``person`` started by ``t``."""
    ms = idx.memberships
    row, pos = ms.expand(person, None, t)
    return row, ms.payload["household"][pos], np.asarray(ms.t[pos], dtype=np.int64), \
        np.asarray(ms.payload["end"][pos], dtype=np.int64)


def moves_out(idx: HistoryIndex, person: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query row, time) of each move out of a household by ``person`` at or before ``t``
    (the module's definition: left people behind, did not stay on, did not move with them)."""
    row, h, s, e = _memberships(idx, person, t)
    ended = np.flatnonzero(e <= t[row])
    # Stayed on: the same person's membership of the same household runs on past the end
    # (an overlap) or starts within STAY_ON_DAYS of it (a role change, a re-registration).
    key = pack(row, h)
    i, j = join_on(key[ended], key)
    on = (s[j] <= e[ended[i]] + STAY_ON_DAYS * DAY) & (e[j] > e[ended[i]])
    stayed = np.zeros(len(ended), bool)
    stayed[i[on]] = True
    left = ended[~stayed]
    # Whom they lived with there the moment before, and whether any of them lives with them now.
    q, other = members_at(idx, np.arange(len(left)), h[left], e[left] - 1)
    mover = person[row[left]]
    keep = other != mover[q]
    q, other = q[keep], other[keep]
    with_others = np.zeros(len(left), bool)
    with_others[q] = True
    still = living_together(idx, mover[q], other, t[row[left]][q])
    moved_with = np.zeros(len(left), bool)
    moved_with[q[still]] = True
    out = left[with_others & ~moved_with]
    return row[out], e[out]


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The separation features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    out: dict[str, np.ndarray] = {}

    # A party's latest move out, by as_of.
    pt, person = unique_parties(P)
    t = P.t[pt]
    row, when = moves_out(idx, person, t)
    last = group_max(len(person), row, when.astype(float), empty=-np.inf)
    days = np.where(np.isfinite(last), (t - last) / DAY, np.inf)
    most_recent = np.full(n, np.inf)
    np.minimum.at(most_recent, pt, days)
    out["sep_moved_out_days"] = np.where(np.isinf(most_recent), np.nan, most_recent)

    # Two parties who shared a household at the same time and do not live together at as_of.
    ppt, a, b = party_pairs(P)
    pt_t = P.t[ppt]
    ra, ha, sa, ea = _memberships(idx, a, pt_t)
    rb, hb, sb, eb = _memberships(idx, b, pt_t)
    ia, ib = join_on(pack(ra, ha), pack(rb, hb))  # every (a's, b's) membership of the same pair and household
    apart = np.minimum(ea[ia], eb[ib])
    together = np.maximum(sa[ia], sb[ib]) < apart
    done = together & (apart <= pt_t[ra[ia]])
    last_pair = group_max(len(a), ra[ia][done], apart[done].astype(float), empty=-np.inf)
    last_pair[living_together(idx, a, b, pt_t)] = -np.inf
    pair_days = np.where(np.isfinite(last_pair), (pt_t - last_pair) / DAY, np.inf)
    most_recent = np.full(n, np.inf)
    np.minimum.at(most_recent, ppt, pair_days)
    out["sep_pair_days_apart"] = np.where(np.isinf(most_recent), np.nan, most_recent)
    return out
