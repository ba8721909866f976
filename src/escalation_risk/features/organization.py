"""Organisations: for disputes against an employer, a bank or a property manager,
how many other disputes against the same organisation are open right now (the
early shape of a group incident, 群体性事件)."""

from __future__ import annotations

import numpy as np

from ..known import open_at
from .common import group_max
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY

FAMILY = "organization"


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    REGISTRY.add(
        Feature("org_open_disputes_30d", FAMILY,
                "{v} other open disputes against the same organisation reported in the last 30 days",
                "近30天针对同一单位另有 {v} 起未结纠纷"),
        Feature("org_disputes_365d", FAMILY, "{v} other disputes against the same organisation in the last year",
                "近一年针对同一单位另有 {v} 起纠纷"),
    )


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The organisation features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    pt, org = P.op_pt, P.op_org
    t = P.t[pt]
    own = P.d[pt]
    od = idx.org_disputes
    o, pos = od.expand(org, t - 30 * DAY, t)
    # Still open at t (known.open_at: reported, here as an organisation's dispute, and not closed by t).
    open_ = open_at(od.t[pos], od.payload["closed"][pos], t[o]) & (od.payload["inc"][pos] != own[o])
    recent = np.bincount(o[open_], minlength=len(org))[:len(org)].astype(float)
    year = od.count(org, t - 365 * DAY, t).astype(float)
    yo, ypos = od.expand(org, t - 365 * DAY, t)
    year -= np.bincount(yo[od.payload["inc"][ypos] == own[yo]], minlength=len(org))[:len(org)]
    return {"org_open_disputes_30d": group_max(n, pt, recent), "org_disputes_365d": group_max(n, pt, year)}
