"""Records: incidents, parties and mediations, accumulated while episodes run and as the export night sees them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .texts import _incident_descriptions
from .vocab import _K, _ST


class _Acc:
    """Accumulates incidents, parties and mediations as arrays of internal indices."""

    def __init__(self):
        self.inc = {k: [] for k in ("kind", "cat", "t", "lag", "place", "source", "amount", "heat",
                                    "related", "ep", "who")}
        self.n = 0
        self.par = {k: [] for k in ("inc", "pid", "ptype", "role")}
        self.med = {k: [] for k in ("inc", "t", "mtype", "outcome")}

    def add_incidents(self, **cols) -> np.ndarray:
        m = len(cols["t"])
        idx = np.arange(self.n, self.n + m)
        self.n += m
        defaults = {"amount": np.nan, "heat": 0.0, "related": -1, "ep": -1, "who": -1, "place": -1}
        for k in self.inc:
            v = cols.get(k, defaults.get(k))
            self.inc[k].append(np.broadcast_to(np.asarray(v), (m,)).copy())
        return idx

    def add_parties(self, inc, pid, ptype, role):
        m = (pid >= 0)
        inc = np.broadcast_to(inc, pid.shape)[m]
        self.par["inc"].append(inc)
        self.par["pid"].append(pid[m])
        self.par["ptype"].append(np.broadcast_to(ptype, pid.shape)[m].astype(np.int8))
        self.par["role"].append(np.broadcast_to(role, pid.shape)[m].astype(np.int8))


@dataclass
class Records:
    """What the export holds: incidents reported before it, in report order, with their parties
    and mediations; internal indices (persons, organisations, places, codes), times in days."""

    new_of: np.ndarray  # export position of each accumulated incident; -1: reported after the export
    kind: np.ndarray
    cat: np.ndarray
    occ: np.ndarray
    rep: np.ndarray
    ep_of: np.ndarray
    related: np.ndarray
    place: np.ndarray
    source: np.ndarray
    amount: np.ndarray
    closed: np.ndarray  # NaN: open on the export night
    status: np.ndarray
    description: np.ndarray
    pinc: np.ndarray  # parties: export position of the incident, party index, type (0 person, 1 org), role
    ppid: np.ndarray
    ptype: np.ndarray
    prole: np.ndarray
    med_inc: np.ndarray  # mediations, in session order
    med_t: np.ndarray
    med_type: np.ndarray
    med_out: np.ndarray


def _export_records(rng: np.random.Generator, acc: _Acc, e: dict, p: dict, T: float) -> Records:
    """The accumulated records as exported: what is reported after the export is dropped,
    incidents are ordered by report time, closed or not, and described."""
    inc = {k: np.concatenate(v) for k, v in acc.inc.items()}
    occ = inc["t"]
    rep = occ + inc["lag"]
    keep = rep < T
    N0 = len(occ)
    order = np.flatnonzero(keep)[np.argsort(rep[keep], kind="stable")]
    new_of = np.full(N0, -1)
    new_of[order] = np.arange(len(order))
    kind, cat = inc["kind"][order], inc["cat"][order]
    occ, rep = occ[order], rep[order]
    ep_of = inc["ep"][order]
    related = inc["related"][order]
    related = np.where(related >= 0, new_of[np.maximum(related, 0)], -1)
    closed, status = _closing(rng, kind, rep, ep_of, e, T)
    desc = _incident_descriptions(rng, p, kind, cat, inc["heat"][order], inc["amount"][order], inc["who"][order],
                                  ep_of, rep)
    pinc, ppid, ptype, prole = _parties_at_export(acc, new_of)
    med_inc, med_t, med_type, med_out = _mediations_at_export(acc, new_of, rep, T)
    return Records(new_of=new_of, kind=kind, cat=cat, occ=occ, rep=rep, ep_of=ep_of, related=related,
                   place=inc["place"][order], source=inc["source"][order], amount=inc["amount"][order],
                   closed=closed, status=status, description=desc, pinc=pinc, ppid=ppid, ptype=ptype, prole=prole,
                   med_inc=med_inc, med_t=med_t, med_type=med_type, med_out=med_out)


def _closing(rng: np.random.Generator, kind: np.ndarray, rep: np.ndarray, ep_of: np.ndarray, e: dict,
             T: float) -> tuple[np.ndarray, np.ndarray]:
    """When each exported incident closed (NaN: still open at the export) and its status then."""
    N = len(kind)
    closed = np.full(N, np.nan)
    status = np.full(N, _ST["closed"])
    is_d = kind == _K["dispute"]
    de = ep_of[is_d]
    tc = e["tc"][de].copy()
    esc = ~np.isnan(e["t_esc"][de])
    transfer = esc & (rng.random(len(de)) < 0.6)
    tr_t = e["t_esc"][de] + rng.uniform(1, 10, len(de))
    tc = np.where(transfer, np.minimum(tc, tr_t), tc)
    st = np.where(transfer & (tc == tr_t), _ST["transferred"],
                  np.where(e["agreed"][de], _ST["resolved"], np.where(e["failed_last"][de], _ST["failed"], _ST["closed"])))
    open_ = ~(tc < T)
    st = np.where(open_, np.where(e["n_med"][de] > 0, _ST["mediating"], _ST["open"]), st)
    closed[is_d] = np.where(open_, np.nan, tc)
    status[is_d] = st
    for kname, lo, hi, p_open, st_open, st_closed in (
            ("police_call", 0.02, 0.3, 0.0, "open", "closed"),
            ("complaint", 0.5, 20, 0.08, "open", "resolved"),
            ("petition", 10, 60, 0.25, "open", "closed"),
            ("criminal_case", 20, 300, 0.15, "open", "transferred")):
        m = np.flatnonzero(kind == _K[kname])
        c = rep[m] + rng.uniform(lo, hi, len(m))
        c = np.where(rng.random(len(m)) < p_open, np.nan, c)
        c = np.where(c < T, c, np.nan)
        closed[m] = c
        status[m] = np.where(np.isnan(c), _ST[st_open], _ST[st_closed])
    return closed, status


def _parties_at_export(acc: _Acc, new_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parties of the exported incidents: (incident, party, party type, role), one row per
    (incident, party)."""
    par = {k: np.concatenate(v) for k, v in acc.par.items()}
    pinc = new_of[par["inc"]]
    pk = pinc >= 0
    pinc, ppid, ptype, prole = pinc[pk], par["pid"][pk], par["ptype"][pk], par["role"][pk]
    # one row per (incident, party): a person can't be both complainant and respondent
    dedup = pd.DataFrame({"i": pinc, "p": ppid, "t": ptype}).duplicated().to_numpy()
    pinc, ppid, ptype, prole = pinc[~dedup], ppid[~dedup], ptype[~dedup], prole[~dedup]
    return pinc, ppid, ptype, prole


def _mediations_at_export(acc: _Acc, new_of: np.ndarray, rep: np.ndarray,
                          T: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mediations held before the export on exported incidents, in session order:
    (incident, day, mediator type, outcome)."""
    med = {k: np.concatenate(v) if v else np.zeros(0) for k, v in acc.med.items()}
    minc = new_of[med["inc"].astype(np.int64)] if len(med["inc"]) else np.zeros(0, np.int64)
    mk = (minc >= 0) & (med["t"] < T)
    med_t = np.maximum(med["t"][mk], rep[minc[mk]] + 0.01)
    mo = np.argsort(med_t, kind="stable")
    med_inc, med_t = minc[mk][mo], med_t[mo]
    med_type, med_out = med["mtype"][mk][mo], med["outcome"][mk][mo]
    return med_inc, med_t, med_type, med_out
