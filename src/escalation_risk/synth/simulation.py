"""What episodes do week by week: follow-ups, mediations, heat, and escalation to a crime."""

from __future__ import annotations

import numpy as np

from escalation_risk.contract import DISPUTE_CATEGORIES

from .draws import _rows_choice, _sig
from .params import _B0, _CAT_PARAMS, _DISPUTE_SOURCES, _MEDIATORS, _OFFENCE_MIX, VISIT_WEEKS
from .records import _Acc
from .vocab import _DC, _K, _MO, _OC, _PR, _S


def _simulate(rng: np.random.Generator, p: dict, g: dict, o: dict, e: dict, acc: _Acc, T: float) -> dict:
    """Run the episodes in weekly steps: follow-ups, mediations, heat, escalation."""
    E = e["E"]
    cat = e["cat"]
    par = np.array([_CAT_PARAMS[c] for c in DISPUTE_CATEGORIES])
    a, bp = e["a"], e["bp"]
    tr = p["tr"]
    tr_b = np.where(bp >= 0, tr[np.maximum(bp, 0)], -np.inf)
    tr_max = np.maximum(tr[a], tr_b)
    if len(e["g_ep"]):
        np.maximum.at(tr_max, e["g_ep"], tr[e["g_pid"]])
    gsize = 2 + np.bincount(e["g_ep"], minlength=E)
    pv = p["pv0"][a] | np.where(bp >= 0, p["pv0"][np.maximum(bp, 0)], False)
    amt = np.nan_to_num(np.log1p(e["amount"] / 1e4), nan=0.0)
    fam = cat == _DC["marriage_family"]
    u_e = rng.normal(0, 0.4, E)
    lin = (_B0 + par[cat, 2] + 1.1 * tr_max + 0.9 * pv + 0.7 * (fam & e["cores"]) + 0.25 * amt
           + 0.35 * np.log(gsize / 2.0) + u_e)
    h = rng.normal(0, 0.7, E) + 0.35 * tr_max + par[cat, 1] + 0.15 * amt
    e["h0"] = h.copy()
    e["lin"] = lin
    # the dispute record
    src = _rows_choice(rng, np.array([_DISPUTE_SOURCES[c] for c in DISPUTE_CATEGORIES])[cat])
    lag = np.minimum(rng.lognormal(np.log(0.25), 1.3, E), 20.0)
    lag = np.where(src == _S["police_110"], rng.uniform(0.005, 0.08, E), lag)
    e["lag"] = lag
    t_rep = e["t0"] + lag
    e["inc"] = acc.add_incidents(kind=_K["dispute"], cat=cat, t=e["t0"], lag=lag, place=e["place"], source=src,
                                 amount=e["amount"], heat=h, ep=np.arange(E), who=a)
    # closing: lognormal duration, longer when hot; some never close
    dur = rng.lognormal(np.log(30), 1.1, E) * np.exp(0.25 * h)
    never = rng.random(E) < 0.95 * par[cat, 3] * np.exp(0.2 * np.clip(h, -2, 2))
    tc = np.where(never, np.inf, t_rep + dur)
    agreed = np.zeros(E, bool)
    failed_last = np.zeros(E, bool)
    n_med = np.zeros(E, np.int64)
    alive = np.ones(E, bool)
    t_esc = np.full(E, np.nan)
    n_fu = np.zeros(E, np.int64)
    kind_p = np.array([  # follow-up kind mix (police_call, complaint, petition) per category
        [0.75, 0.15, 0.10], [0.55, 0.35, 0.10], [0.40, 0.30, 0.30], [0.20, 0.40, 0.40], [0.25, 0.30, 0.45],
        [0.10, 0.65, 0.25], [0.60, 0.25, 0.15], [0.25, 0.40, 0.35], [0.05, 0.70, 0.25], [0.20, 0.50, 0.30],
        [0.50, 0.30, 0.20]])
    fu_kinds = np.array([_K["police_call"], _K["complaint"], _K["petition"]])
    med_p = np.array([_MEDIATORS[c] for c in DISPUTE_CATEGORIES])
    S = 30
    h_visit = np.zeros((E, len(VISIT_WEEKS)), np.float32)
    for s in range(S):
        ws = e["t0"] + 7.0 * s
        lo = np.maximum(ws, t_rep)  # nothing of the episode is recorded before the dispute itself
        decay = np.exp(-s / 6.0)
        is_open = lo < tc
        # follow-up records
        rate = 0.09 * np.exp(np.clip(0.7 * h, -5, 3)) * decay * np.where(is_open, 1.0, 0.3) * alive
        nf = rng.poisson(rate)
        nf = np.minimum(nf, 3)
        for j in range(1, 4):
            ids = np.flatnonzero(nf >= j)
            if not len(ids):
                break
            kk = fu_kinds[_rows_choice(rng, kind_p[cat[ids]])]
            tt = lo[ids] + rng.uniform(0.01, 7.0, len(ids))
            fk_src = np.where(kk == _K["police_call"], _S["police_110"],
                              np.where(kk == _K["complaint"], np.where(rng.random(len(ids)) < 0.8, _S["hotline_12345"], _S["grid_worker"]),
                                       _S["petition_office"]))
            flag = rng.random(len(ids)) < np.where(kk == _K["police_call"], 0.4, np.where(kk == _K["complaint"], 0.55, 0.5))
            lg = np.where(kk == _K["police_call"], rng.uniform(0.003, 0.05, len(ids)),
                          np.where(kk == _K["complaint"], rng.lognormal(np.log(0.3), 1.0, len(ids)), rng.uniform(0.5, 5, len(ids))))
            acc.add_incidents(kind=kk, cat=cat[ids], t=tt, lag=lg, place=e["place"][ids], source=fk_src,
                              amount=np.where(rng.random(len(ids)) < 0.5, e["amount"][ids], np.nan),
                              heat=h[ids] + 0.35 * n_fu[ids] / 2, related=np.where(flag, e["inc"][ids], -1),
                              ep=ids, who=np.where((rng.random(len(ids)) < 0.3) & (bp[ids] >= 0), bp[ids], a[ids]))
            n_fu[ids] += 1
        h = h + 0.35 * nf + rng.normal(0, 0.1, E) * (nf > 0)
        # mediation sessions
        pm = np.where(s == 0, 0.55, np.where(s < 4, 0.22, 0.06)) * is_open * alive
        mids = np.flatnonzero(rng.random(E) < pm)
        if len(mids):
            tm = lo[mids] + rng.uniform(0.1, 7.0, len(mids))
            hm = h[mids]
            p_ag = _sig(0.9 - 0.9 * hm - 0.3 * tr_max[mids])
            u = rng.random(len(mids))
            out = np.where(u < 0.05, _MO["pending"], np.where(u < 0.20, _MO["partial"],
                           np.where(rng.random(len(mids)) < p_ag, _MO["agreement"], _MO["failed"])))
            acc.med["inc"].append(e["inc"][mids]); acc.med["t"].append(tm)
            acc.med["mtype"].append(_rows_choice(rng, med_p[cat[mids]])); acc.med["outcome"].append(out)
            d = np.where(out == _MO["agreement"], -1.0, np.where(out == _MO["failed"], 0.6,
                         np.where(out == _MO["partial"], -0.3, 0.0)))
            h[mids] += d + rng.normal(0, 0.2, len(mids))
            ag_t = tm[(out == _MO["agreement"])]
            ag_ids = mids[out == _MO["agreement"]]
            # a never-closed record stays open in the system even after an agreement
            close_now = (rng.random(len(ag_ids)) < 0.8) & ~never[ag_ids]
            tc[ag_ids[close_now]] = np.minimum(tc[ag_ids[close_now]], ag_t[close_now] + rng.uniform(0, 5, close_now.sum()))
            agreed[ag_ids] = True
            failed_last[mids] = out == _MO["failed"]
            n_med[mids] += 1
        # heat relaxes; escalation hazard
        h = np.clip(0.88 * h + rng.normal(0, 0.25, E), -4.0, 5.0)
        if s in VISIT_WEEKS:  # the heat a return visit at the end of this week would find
            h_visit[:, VISIT_WEEKS.index(s)] = h
        lam = np.exp(np.minimum(lin + 0.8 * h, 3.0)) * np.exp(-s / 12.0) * np.where(lo < tc, 1.0, 0.3)
        fire = alive & (rng.random(E) < -np.expm1(-lam))
        t_esc[fire] = lo[fire] + rng.uniform(0.05, 7.0, fire.sum())
        alive &= ~fire
    e.update(tc=tc, agreed=agreed, failed_last=failed_last, n_med=n_med, t_esc=t_esc, t_rep=t_rep,
             n_fu=n_fu, h_end=h, gsize=gsize, tr_max=tr_max, h_visit=h_visit)
    return e


def _escalations(rng: np.random.Generator, p: dict, o: dict, e: dict, acc: _Acc) -> None:
    """Turn fired escalations into criminal cases with suspects and victims."""
    ids = np.flatnonzero(~np.isnan(e["t_esc"]))
    cat = e["cat"][ids]
    mix = np.array([_OFFENCE_MIX[c] for c in DISPUTE_CATEGORIES])
    off = _rows_choice(rng, mix[cat])
    a, bp, bo = e["a"][ids], e["bp"][ids], e["bo"][ids]
    tr = p["tr"]
    b_person = bp >= 0
    a_susp = np.where(b_person, rng.random(len(ids)) < _sig(2.0 * (tr[a] - tr[np.maximum(bp, 0)])), True)
    susp = np.where(a_susp, a, bp)
    vict = np.where(a_susp, bp, a)
    ent = (bo >= 0) & (bo < o["n_ent"])
    vict = np.where((vict < 0) & ent & (rng.random(len(ids)) < 0.7), o["owner"][np.where(ent, bo, 0)], vict)
    rel = np.where(rng.random(len(ids)) < 0.5, e["inc"][ids], -1)
    lag = np.where(rng.random(len(ids)) < 0.85, rng.uniform(0.01, 0.5, len(ids)), rng.uniform(0.5, 20, len(ids)))
    place = np.where(rng.random(len(ids)) < 0.7, e["place"][ids], p["place"][susp])
    inc = acc.add_incidents(kind=_K["criminal_case"], cat=off, t=e["t_esc"][ids], lag=lag, place=place,
                            source=np.where(rng.random(len(ids)) < 0.9, _S["police_110"], _S["other"]),
                            heat=e["h_end"][ids] + 2.0, related=rel, ep=ids, who=susp)
    acc.add_parties(inc, susp, 0, _PR["suspect"])
    acc.add_parties(inc, vict, 0, _PR["victim"])
    org_victim = (bo >= 0) & ((off == _OC["property_damage"]) | (rng.random(len(ids)) < 0.3))
    acc.add_parties(inc, np.where(org_victim, bo, -1), 1, _PR["victim"])
    # group fights and detentions pull in group members as co-suspects
    if len(e["g_ep"]):
        pos = np.full(e["E"], -1)
        pos[ids] = np.arange(len(ids))
        gi = pos[e["g_ep"]]
        m = (gi >= 0) & (rng.random(len(gi)) < 0.35)
        acc.add_parties(inc[gi[m]], e["g_pid"][m], 0, _PR["suspect"])
    wit = rng.random(len(ids)) < 0.25
    hh_mate = p["grid_adults"].pick(rng, p["grid"][vict.clip(0)])
    acc.add_parties(inc, np.where(wit & (vict >= 0), hh_mate, -1), 0, _PR["witness"])
    e["crime_inc"] = inc
    e["crime_susp"] = susp


def _episode_parties(e: dict, acc: _Acc, rng: np.random.Generator) -> None:
    """Parties of the dispute and of its follow-ups: the same people in the same roles."""
    inc = np.concatenate(acc.inc["ep"])
    kinds = np.concatenate(acc.inc["kind"])
    sel = np.flatnonzero((inc >= 0) & (kinds != _K["criminal_case"]))
    ep = inc[sel]
    acc.add_parties(sel, e["a"][ep], 0, _PR["complainant"])
    acc.add_parties(sel, e["bp"][ep], 0, _PR["respondent"])
    acc.add_parties(sel, e["bo"][ep], 1, _PR["respondent"])
    if len(e["g_ep"]):
        # group members on the dispute always, on each follow-up sometimes
        order = np.argsort(ep, kind="stable")
        ep_s, sel_s = ep[order], sel[order]
        start = np.searchsorted(ep_s, e["g_ep"], side="left")
        end = np.searchsorted(ep_s, e["g_ep"], side="right")
        reps = end - start
        gi = np.repeat(np.arange(len(e["g_ep"])), reps)
        pos = np.repeat(start, reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        incs = sel_s[pos]
        is_disp = kinds[incs] == _K["dispute"]
        keep = is_disp | (rng.random(len(incs)) < 0.4)
        acc.add_parties(incs[keep], e["g_pid"][gi[keep]], 0, _PR["complainant"])
