"""What followed a failed mediation on the dispute.

A failed session is a known turning point: a party who leaves it with threats, who
comes back within days with another call or complaint, is a different case from one
who goes quiet. These features read the dispute's last failed session as known at
as_of (held by then, its outcome recorded by then: :func:`.dispute.mediations_known`)
and what was recorded on the dispute after it: notes and later records mentioning
threats, revenge, weapons or violence, and how soon the dispute came back.
"""

from __future__ import annotations

import numpy as np

from .common import group_max, group_sum
from .dispute import mediations_known, notes_known
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY

FAMILY = "after_mediation"
REPEAT_DAYS = 7


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    REGISTRY.add(
        Feature("am_days_since_failed", FAMILY, "the last failed mediation was {v} days ago",
                "距上次调解失败 {v} 天", "number"),
        Feature("am_danger_after_failed", FAMILY,
                "{v} records since the last failed mediation mention threats, weapons or violence",
                "上次调解失败后有 {v} 条记录提到威胁、凶器或暴力"),
        Feature("am_threat_after_failed", FAMILY, "threats or revenge were mentioned after the last failed mediation",
                "上次调解失败后有人扬言威胁或报复", "flag"),
        Feature("am_weapon_after_failed", FAMILY, "a weapon was mentioned after the last failed mediation",
                "上次调解失败后记录中提到凶器", "flag"),
        Feature("am_repeat_7d", FAMILY,
                f"{{v}} records about this dispute came within {REPEAT_DAYS} days of the last failed mediation",
                f"上次调解失败后 {REPEAT_DAYS} 天内该纠纷又有 {{v}} 条记录"),
    )


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """What followed the latest failed mediation, for each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    t = P.t
    m_pt, m_t, m_failed = mediations_known(idx, P)
    failed_at = group_max(n, m_pt[m_failed], m_t[m_failed], empty=np.nan)
    has = ~np.isnan(failed_at)
    f_at = np.where(has, failed_at, np.inf)
    out: dict[str, np.ndarray] = {"am_days_since_failed": (t - failed_at) / DAY}

    sig = idx.lexicon.signals
    danger_cols = idx.danger_columns()
    threat_cols = [sig.index(s) for s in ("threat", "revenge") if s in sig]
    weapon_cols = [sig.index(s) for s in ("weapon",) if s in sig]
    # Texts recorded on the dispute after the failed session: its notes and the later
    # records about it (calls, complaints, petitions), each with its signals.
    n_pt, n_t, n_sig = notes_known(idx, P)
    fu = idx.followups
    fo, fpos = fu.expand(P.d, None, t)
    f_t = fu.t[fpos]
    f_sig = idx.inc_signals[fu.payload["inc"][fpos]]
    r_pt = np.concatenate([n_pt, fo])
    r_t = np.concatenate([n_t, f_t]).astype(float)
    r_sig = np.concatenate([n_sig.reshape(len(n_pt), len(sig)), f_sig.reshape(len(fo), len(sig))])
    after = r_t > f_at[r_pt]

    def any_of(cols: list[int]) -> np.ndarray:
        return np.asarray(r_sig[:, cols].any(axis=1)) if cols else np.zeros(len(r_pt), bool)

    out["am_danger_after_failed"] = group_sum(n, r_pt, after & any_of(danger_cols))
    out["am_threat_after_failed"] = group_max(n, r_pt, after & any_of(threat_cols))
    out["am_weapon_after_failed"] = group_max(n, r_pt, after & any_of(weapon_cols))
    soon = (f_t > f_at[fo]) & (f_t <= f_at[fo] + REPEAT_DAYS * DAY)
    out["am_repeat_7d"] = group_sum(n, fo, soon)
    for name in ("am_danger_after_failed", "am_threat_after_failed", "am_weapon_after_failed", "am_repeat_7d"):
        out[name][~has] = 0.0
    return out
