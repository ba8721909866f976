"""Network exposure: the people around the parties at as_of and how violent they are.

Ties are household co-residence, relations on record, and co-involvement in an
earlier incident (the counterparties). The first ring is everyone one tie away
from a party; the second ring goes one step further through relations and
counterparties (not households, which the household family already covers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .common import households_at, unique_parties
from .index import OFF, HistoryIndex
from .points import PointSet
from .registry import Feature, REGISTRY

FAMILY = "network"


def register() -> None:
    REGISTRY.add(
        Feature("net_size", FAMILY, "the parties' circle counts {v} people", "当事人关系圈共 {v} 人"),
        Feature("net_criminal", FAMILY, "{v} people close to the parties have criminal records",
                "当事人身边有 {v} 人有刑事案件记录"),
        Feature("net_violent", FAMILY, "{v} people close to the parties have a history of violence",
                "当事人身边有 {v} 人有暴力记录"),
        Feature("net2_criminal", FAMILY, "{v} people two steps from the parties have criminal records",
                "当事人二度关系中有 {v} 人有刑事案件记录"),
    )


def _ties(idx: HistoryIndex, person: np.ndarray, t: np.ndarray, households: bool) -> pd.DataFrame:
    """(row, other) for every tie of each query person known at its t."""
    parts = []
    for tl in (idx.relations, idx.counterparties):
        o, pos = tl.expand(person, np.full(len(person), -OFF), t)
        parts.append(pd.DataFrame({"row": o, "other": tl.payload["other"][pos]}))
    if households:
        hh = households_at(idx, person, t)
        h_row = hh["row"].to_numpy()
        h_id = hh["household"].to_numpy()
        mem = idx.members
        mo, mpos = mem.expand(h_id, np.full(len(h_id), -OFF), t[h_row])
        live = mem.payload["end"][mpos] > t[h_row][mo]
        parts.append(pd.DataFrame({"row": h_row[mo][live], "other": mem.payload["person"][mpos][live]}))
    return pd.concat(parts, ignore_index=True)


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    n = len(P)
    pt, person = unique_parties(P)
    t = P.t[pt]
    ring1 = _ties(idx, person, t, households=True)
    ring1 = pd.DataFrame({"pt": pt[ring1["row"].to_numpy()], "p": ring1["other"].to_numpy()})
    parties = pd.DataFrame({"pt": pt, "p": person})
    ring1 = _minus(ring1.drop_duplicates(), parties)
    r_pt = ring1["pt"].to_numpy(np.int64)
    r_p = ring1["p"].to_numpy(np.int64)
    r_t = P.t[r_pt]
    crim = idx.person_events["crime_suspect"].count(r_p, np.full(len(r_p), -OFF), r_t) > 0
    violent = idx.person_events["violent_suspect"].count(r_p, np.full(len(r_p), -OFF), r_t) > 0
    fo, fpos = idx.flags.expand(r_p, np.full(len(r_p), -OFF), r_t)
    violent[fo[idx.flags.payload["flag"][fpos] == "prior_violence"]] = True
    out = {"net_size": np.bincount(r_pt, minlength=n)[:n].astype(float),
           "net_criminal": np.bincount(r_pt[crim], minlength=n)[:n].astype(float),
           "net_violent": np.bincount(r_pt[violent], minlength=n)[:n].astype(float)}

    ring2 = _ties(idx, r_p, r_t, households=False)
    ring2 = pd.DataFrame({"pt": r_pt[ring2["row"].to_numpy()], "p": ring2["other"].to_numpy()}).drop_duplicates()
    ring2 = _minus(_minus(ring2, parties), ring1)
    s_pt = ring2["pt"].to_numpy(np.int64)
    s_p = ring2["p"].to_numpy(np.int64)
    crim2 = idx.person_events["crime_suspect"].count(s_p, np.full(len(s_p), -OFF), P.t[s_pt]) > 0
    out["net2_criminal"] = np.bincount(s_pt[crim2], minlength=n)[:n].astype(float)
    return out


def _minus(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows (pt, p) of ``a`` not in ``b``."""
    m = a.merge(b[["pt", "p"]].assign(_in=True), on=["pt", "p"], how="left")
    return m[m["_in"].isna()][["pt", "p"]]
