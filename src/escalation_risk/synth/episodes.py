"""Conflict episodes: who is in conflict with whom, over what, where and when it starts."""

from __future__ import annotations

from typing import Any

import numpy as np

from .draws import _choice_p
from .params import _CAT_PARAMS
from .vocab import _DC, _PT, _R


def _episodes(rng: np.random.Generator, p: dict, g: dict, o: dict, n: int, T: float) -> dict:
    """Draw all episodes: primary parties, group members, place, amount, start day."""
    yrs = T / 365.25
    prop = p["prop"]
    parts = []

    def pairs_w(a, b):
        return prop[a] * prop[b] + 1e-9

    def draw_pairs(pairs, k):
        if len(pairs[0]) == 0 or k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        i = _choice_p(rng, pairs_w(*pairs), k)
        return pairs[0][i], pairs[1][i]

    def draw_persons(w, k):
        return _choice_p(rng, w + 1e-12, k)

    adults = p["adult"].astype(float)

    def ep(cat, a, bp=None, bo=None, sub=0, cores=False, amount=np.nan, place=None):
        m = len(a)
        parts.append(dict(cat=np.full(m, _DC[cat]), a=a,
                          bp=np.full(m, -1) if bp is None else bp, bo=np.full(m, -1) if bo is None else bo,
                          sub=np.broadcast_to(sub, (m,)).copy(), cores=np.broadcast_to(cores, (m,)).copy(),
                          amount=np.broadcast_to(amount, (m,)).astype(float).copy(),
                          place=p["place"][a] if place is None else place))

    def count(cat):
        return rng.poisson(1.25 * _CAT_PARAMS[cat][0] * n * yrs)

    # marriage and family
    k = count("marriage_family")
    ks = rng.multinomial(k, [0.55, 0.15, 0.20, 0.10])
    a, b = draw_pairs(p["couples"], ks[0]); ep("marriage_family", a, b, sub=0, cores=True)
    a, b = draw_pairs(p["ex_pairs"], ks[1]); ep("marriage_family", a, b, sub=1, cores=False)
    a, b = draw_pairs(p["pc_pairs"], ks[2]); ep("marriage_family", a, b, sub=2, cores=p["hh"][a] == p["hh"][b])
    a, b = draw_pairs(p["sib_pairs"], ks[3]); ep("marriage_family", a, b, sub=3, cores=p["hh"][a] == p["hh"][b])
    # neighbours (rural plot neighbours fight over homesteads: land_housing)
    na, nb = p["nb_pairs"]
    rural = g["pl_type"][p["place"][na]] == _PT["rural_village"]
    k = count("neighbor")
    a, b = draw_pairs((na, nb), k)
    ep("neighbor", a, b, sub=rng.integers(0, 3, k))
    k = count("land_housing")
    ks = rng.multinomial(k, [0.5, 0.35, 0.15])
    a, b = draw_pairs((na[rural], nb[rural]), ks[0])
    ep("land_housing", a, b, sub=0, amount=np.where(rng.random(len(a)) < 0.5, np.nan, rng.lognormal(np.log(8e4), 0.9, len(a))))
    ri = rng.integers(0, max(len(o["rented_hh"]), 1), ks[1]) if len(o["rented_hh"]) else np.zeros(0, int)
    ten = p["head_of"][o["rented_hh"][ri]]
    ep("land_housing", ten, o["ll_person"][ri], o["ll_org"][ri], sub=1,
       amount=rng.lognormal(np.log(3000), 0.7, len(ri)))
    # villagers against the town government: a group of plot holders of one village
    vil_heads = np.flatnonzero((p["role"] == _R["head"]) & (p["htype"] == 1))
    k3 = ks[2] if len(vil_heads) else 0
    lead = vil_heads[rng.integers(0, max(len(vil_heads), 1), k3)]
    ep("land_housing", lead, None, o["gov_of_town"][g["grid_town"][p["grid"][lead]]], sub=2,
       amount=rng.lognormal(np.log(2e5), 0.8, k3))
    # debt: debtors weighted by financial stress; creditor in the same grid 40% of the time
    k = count("debt")
    deb = draw_persons(adults * np.exp(0.8 * p["fin"] + 0.3 * p["aggr"]), k)
    cred = np.where(rng.random(k) < 0.4, p["grid_adults"].pick(rng, p["grid"][deb]), draw_persons(adults, k))
    cred = np.where(cred == deb, draw_persons(adults, k), cred)
    ep("debt", cred, deb, amount=rng.lognormal(np.log(3e4), 1.0, k))
    # labour: group wage arrears against one enterprise, plus single workers
    k = count("labor_wage")
    k_grp = int(k * 0.35)
    wk = o["workers"]
    has_w = np.flatnonzero(wk.count > 0)
    ent_g = has_w[_choice_p(rng, (wk.count[has_w] ** 0.8) * o["ent_w"][has_w] ** 0.3, k_grp)] if len(has_w) else np.zeros(0, int)
    gsize = np.minimum(np.clip(rng.lognormal(np.log(8), 0.7, len(ent_g)).astype(int), 3, 60), wk.count[ent_g])
    off0 = (rng.random(len(ent_g)) * wk.count[ent_g]).astype(int)
    lead = wk.members[wk.start[ent_g] + off0]
    gparts = []
    ep_base = sum(len(x["a"]) for x in parts)
    for j in range(1, 60):  # loop over group-member slots, not over episodes
        mm = gsize > j
        if not mm.any():
            break
        pos = wk.start[ent_g[mm]] + (off0[mm] + j) % wk.count[ent_g[mm]]
        gparts.append((ep_base + np.flatnonzero(mm), wk.members[pos]))
    ep("labor_wage", lead, np.where(rng.random(len(ent_g)) < 0.5, o["owner"][ent_g], -1), ent_g, sub=1,
       amount=gsize * rng.lognormal(np.log(9000), 0.6, len(ent_g)))
    k_one = k - len(ent_g)
    wkr = np.flatnonzero(p["employer"] >= 0)
    one = wkr[_choice_p(rng, prop[wkr] * np.exp(0.5 * p["fin"][wkr]), k_one)] if len(wkr) else np.zeros(0, int)
    ep("labor_wage", one, None, p["employer"][one], sub=0, amount=rng.lognormal(np.log(12000), 0.8, len(one)))
    # residents against property management: sometimes a group from one building
    k = count("property_management")
    urb = np.flatnonzero((p["role"] == _R["head"]) & (g["pl_type"][p["place"]] == _PT["residential"]))
    res = urb[_choice_p(rng, prop[urb], k)] if len(urb) else np.zeros(0, int)
    pm = o["build_pm"][np.minimum(p["place"][res], len(o["build_pm"]) - 1)]
    ep_base = sum(len(x["a"]) for x in parts)
    grp_sz = np.where(rng.random(len(res)) < 0.3, rng.integers(2, 7, len(res)), 1)
    srt = urb[np.argsort(p["place"][urb], kind="stable")]
    pos_of = np.empty(n, np.int64)
    pos_of[srt] = np.arange(len(srt))
    for j in range(1, 6):
        mm = grp_sz > j
        q = np.minimum(pos_of[res[mm]] + j, len(srt) - 1)
        same = p["place"][srt[q]] == p["place"][res[mm]]
        gparts.append((ep_base + np.flatnonzero(mm)[same], srt[q][same]))
    ep("property_management", res, None, pm, amount=rng.lognormal(np.log(3000), 0.8, len(res)))
    # customers against banks and insurers
    k = count("consumer_finance")
    cu = draw_persons(adults * np.exp(0.9 * p["fin"]), k)
    bk = o["banks"][rng.integers(0, len(o["banks"]), k)]
    ep("consumer_finance", cu, None, bk, amount=rng.lognormal(np.log(2e4), 1.0, k), place=o["place"][bk])
    # traffic: two strangers at a public or commercial place
    k = count("traffic")
    a = draw_persons(adults * (1 + 0.5 * p["male"]), k)
    b = draw_persons(adults, k)
    tp = np.where(rng.random(k) < 0.5, g["off_c"] + rng.integers(0, g["n_com"], k), g["off_p"] + rng.integers(0, g["n_pub"], k))
    ep("traffic", a, np.where(a == b, -1, b), amount=rng.lognormal(np.log(5000), 1.0, k), place=tp)
    # medical: patient (or family) against a hospital
    k = count("medical")
    a = draw_persons(adults * (1 + (p["age"] > 50)), k)
    hs = o["hosp"][rng.integers(0, len(o["hosp"]), k)]
    ep("medical", a, None, hs, amount=rng.lognormal(np.log(5e4), 1.0, k), place=o["place"][hs])
    # contract: person against an enterprise or another person
    k = count("contract")
    a = draw_persons(adults * np.exp(0.3 * p["fin"]), k)
    to_org = rng.random(k) < 0.6
    b = np.where(to_org, -1, draw_persons(adults, k))
    ep("contract", a, np.where(b == a, -1, b), np.where(to_org, rng.integers(0, o["n_ent"], k), -1),
       amount=rng.lognormal(np.log(5e4), 1.2, k))
    # other: two people in one grid
    k = count("other")
    a = draw_persons(prop, k)
    b = p["grid_adults"].pick(rng, p["grid"][a])
    ep("other", a, np.where(b == a, -1, b))

    e: dict[str, Any] = {key: np.concatenate([x[key] for x in parts]) for key in parts[0]}
    # an episode with no counterpart at all gets an acquaintance in the grid
    none = (e["bp"] < 0) & (e["bo"] < 0)
    e["bp"][none] = p["grid_adults"].pick(rng, p["grid"][e["a"][none]])
    gp = [x for x in gparts if len(x[0])]
    e["g_ep"] = np.concatenate([x[0] for x in gp]) if gp else np.zeros(0, np.int64)
    e["g_pid"] = np.concatenate([x[1] for x in gp]) if gp else np.zeros(0, np.int64)
    keep = e["g_pid"] != e["a"][e["g_ep"]]
    e["g_ep"], e["g_pid"] = e["g_ep"][keep], e["g_pid"][keep]
    E = len(e["a"])
    e["E"] = E
    e["t0"] = rng.uniform(0, T, E)
    return e
