"""Person flags, point in time: recorded before the data, after a first incident, after a crime."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .draws import _sig
from .records import Records
from .vocab import _FL, _K, _PR


@dataclass
class Flags:
    """Flags recorded before the export, one per (person, flag): person, flag code, day."""

    fp: np.ndarray
    ff: np.ndarray
    ftt: np.ndarray
    cs_p: np.ndarray  # every criminal suspect and their case's report day: late facts start from them
    cs_t: np.ndarray


def _flags(rng: np.random.Generator, p: dict, rec: Records, n: int, T: float) -> Flags:
    """Prior violence, mental health and substance flags predating the data or following a
    first incident; prior violence and community correction after a crime; key persons
    after a second petition."""
    kind, rep, pinc, ppid, ptype, prole = rec.kind, rec.rep, rec.pinc, rec.ppid, rec.ptype, rec.prole
    fl_p, fl_f, fl_t = [], [], []

    def flag(pid, f, t):
        fl_p.append(pid); fl_f.append(np.full(len(pid), _FL[f])); fl_t.append(t)

    pv0 = np.flatnonzero(p["pv0"])
    flag(pv0, "prior_violence", -rng.uniform(30, 2500, len(pv0)))
    person_rows = ptype == 0
    first_seen = np.full(n, np.inf)
    np.minimum.at(first_seen, ppid[person_rows], rep[pinc[person_rows]])
    for f, trait in (("mental_health", p["ment"]), ("substance", p["alco"])):
        who_f = np.flatnonzero(rng.random(n) < _sig(-5.2 + 1.5 * trait) * p["adult"])
        after = np.isfinite(first_seen[who_f]) & (rng.random(len(who_f)) < 0.5)
        t_f = np.where(after, first_seen[who_f] + rng.uniform(1, 60, len(who_f)),
                       np.where(rng.random(len(who_f)) < 0.6, -rng.uniform(30, 2000, len(who_f)), rng.uniform(0, T, len(who_f))))
        flag(who_f, f, t_f)
    cc0 = np.flatnonzero(rng.random(n) < _sig(-6.5 + 1.0 * p["aggr"]) * p["adult"])
    flag(cc0, "community_correction", -rng.uniform(30, 1000, len(cc0)))
    crime_susp = person_rows & (prole == _PR["suspect"])
    cs_p, cs_t = ppid[crime_susp], rep[pinc[crime_susp]]
    sel = rng.random(len(cs_p)) < 0.7
    flag(cs_p[sel], "prior_violence", cs_t[sel] + rng.uniform(1, 30, sel.sum()))
    sel = rng.random(len(cs_p)) < 0.3
    flag(cs_p[sel], "community_correction", cs_t[sel] + rng.uniform(60, 300, sel.sum()))
    pet_rows = person_rows & (kind[pinc] == _K["petition"])
    pp, pt_ = ppid[pet_rows], rep[pinc[pet_rows]]
    o2 = np.lexsort((pt_, pp))
    pp, pt_ = pp[o2], pt_[o2]
    second = np.r_[False, pp[1:] == pp[:-1]] & ~np.r_[False, False, (pp[2:] == pp[:-2])]
    flag(pp[second], "key_person", pt_[second] + rng.uniform(1, 30, second.sum()))
    kp0 = np.flatnonzero(rng.random(n) < 0.002 * p["adult"])
    flag(kp0, "key_person", -rng.uniform(30, 1500, len(kp0)))
    ot = np.flatnonzero(rng.random(n) < 0.003 * p["adult"])
    flag(ot, "other", rng.uniform(-1000, T, len(ot)))
    fp, ff, ftt = np.concatenate(fl_p), np.concatenate(fl_f), np.concatenate(fl_t)
    fk = ftt < T
    fp, ff, ftt = fp[fk], ff[fk], ftt[fk]
    fdup = pd.DataFrame({"p": fp, "f": ff}).duplicated().to_numpy()
    fp, ff, ftt = fp[~fdup], ff[~fdup], ftt[~fdup]
    return Flags(fp=fp, ff=ff, ftt=ftt, cs_p=cs_p, cs_t=cs_t)
