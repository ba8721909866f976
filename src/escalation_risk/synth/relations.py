"""Relations between people: the static ones (family, landlords, employers, neighbours,
acquaintances) and those the export knows after the period's divorces and episodes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .draws import _Groups
from .vocab import _DC, _PT, _R, _REL


def _static_relations(rng: np.random.Generator, p: dict, g: dict, o: dict, n: int, T: float) -> dict:
    """Relations that hold from the start, and the pairs episodes are drawn from (set on ``p``)."""
    hh, role, age = p["hh"], p["role"], p["age"]
    head_of = np.full(p["H"], -1)
    is_head = role == _R["head"]
    head_of[hh[is_head]] = np.flatnonzero(is_head)
    p["head_of"] = head_of
    rel_a, rel_b, rel_t, rel_s = [], [], [], []

    def add(a, b, t, since):
        m = (a >= 0) & (b >= 0) & (a != b)
        rel_a.append(a[m]); rel_b.append(b[m]); rel_t.append(np.full(m.sum(), _REL[t]))
        rel_s.append(np.broadcast_to(since, a.shape)[m].astype(float))

    sp = np.flatnonzero((role == _R["spouse"]) | (role == _R["partner"]))
    couple = (head_of[hh[sp]], sp)
    p["couples"] = couple
    since_m = -365.25 * rng.uniform(0.5, np.maximum(age[sp] - 21, 1.0))
    since_m = np.where(rng.random(len(sp)) < 0.3, np.nan, since_m)
    is_sp = role[sp] == _R["spouse"]
    add(couple[0][is_sp], couple[1][is_sp], "spouse", since_m[is_sp])
    add(couple[0][~is_sp], couple[1][~is_sp], "partner", since_m[~is_sp])
    ch = np.flatnonzero(role == _R["child"])
    add(head_of[hh[ch]], ch, "parent_child", np.nan)
    spouse_of_hh = np.full(p["H"], -1)
    spouse_of_hh[hh[sp]] = sp
    add(spouse_of_hh[hh[ch]], ch, "parent_child", np.nan)
    par = np.flatnonzero(role == _R["parent"])
    add(par, head_of[hh[par]], "parent_child", np.nan)
    pc_pairs = (np.concatenate([head_of[hh[ch]], par]), np.concatenate([ch, head_of[hh[par]]]))
    adult_pc = p["adult"][pc_pairs[0]] & p["adult"][pc_pairs[1]]
    p["pc_pairs"] = (pc_pairs[0][adult_pc], pc_pairs[1][adult_pc])
    # siblings: consecutive children of one household
    nxt = ch[1:][hh[ch[1:]] == hh[ch[:-1]]]
    prv = ch[:-1][hh[ch[1:]] == hh[ch[:-1]]]
    add(prv, nxt, "sibling", np.nan)
    sib_adult = p["adult"][prv] & p["adult"][nxt]
    p["sib_pairs"] = (prv[sib_adult], nxt[sib_adult])
    # ex-spouses from before the data: single tenant heads of opposite sex
    singles = np.flatnonzero(is_head & (p["htype"] == 2) & (age >= 28))
    singles = singles[np.bincount(hh, minlength=p["H"])[hh[singles]] == 1]
    m_s, f_s = singles[p["male"][singles]], singles[~p["male"][singles]]
    k = min(len(m_s), len(f_s)) // 2
    ex = (rng.permutation(m_s)[:k], rng.permutation(f_s)[:k])
    add(ex[0], ex[1], "ex_spouse", -365.25 * rng.uniform(0.3, 8, k))
    p["ex_pairs"] = ex
    # landlord-tenant
    ll_p = o["ll_person"]
    ten = head_of[o["rented_hh"]]
    add(ll_p, ten, "landlord_tenant", np.where(rng.random(len(ten)) < 0.5, np.nan, -rng.uniform(30, 1500, len(ten))))
    # employer-employee for small enterprises: owner with each worker
    emp = p["employer"]
    wk = np.flatnonzero(emp >= 0)
    size = np.bincount(emp[wk], minlength=o["n_ent"])
    small = size[emp[wk]] <= 30
    add(o["owner"][emp[wk[small]]], wk[small], "employer_employee", -rng.uniform(30, 3000, small.sum()))
    # neighbours: consecutive households in one building or village
    heads = np.flatnonzero(is_head)
    hp = g["hh_place"][hh[heads]]
    key = np.where(g["pl_type"][hp] == _PT["rural_village"], -1 - g["pl_grid"][hp], hp)
    o_ = np.argsort(key, kind="stable")
    hs, ks = heads[o_], key[o_]
    same = ks[1:] == ks[:-1]
    na, nb = hs[:-1][same], hs[1:][same]
    p["nb_pairs"] = (na, nb)
    sel = rng.random(len(na)) < 0.25
    add(na[sel], nb[sel], "neighbor", np.where(rng.random(sel.sum()) < 0.5, np.nan, -rng.uniform(100, 3000, sel.sum())))
    # acquaintances inside a grid
    adults = np.flatnonzero(p["adult"])
    grp = _Groups(p["grid"][adults], adults, g["n_grid"])
    a = adults[rng.random(len(adults)) < 0.15]
    b = grp.pick(rng, p["grid"][a])
    add(a, b, "acquaintance", np.where(rng.random(len(a)) < 0.6, np.nan, -rng.uniform(100, 5000, len(a))))
    p["grid_adults"] = grp
    rel = {"a": rel_a, "b": rel_b, "t": rel_t, "s": rel_s}
    return rel


def _relations_at_export(rng: np.random.Generator, e: dict, rel: dict,
                         divorces: tuple[np.ndarray, np.ndarray, np.ndarray],
                         T: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every relation known at the export, one row per (pair, relation): (person a, person b,
    relation, since). Adds to ``rel`` the ex-spouses of the period's divorces and the ties
    learnt from episodes."""
    other_p, spouse_p, t_div = divorces
    rel["a"].append(other_p); rel["b"].append(spouse_p); rel["t"].append(np.full(len(spouse_p), _REL["ex_spouse"]))
    rel["s"].append(t_div)
    # ties learnt from episodes: debts and neighbours become known relations
    dm = np.flatnonzero((e["cat"] == _DC["debt"]) & (rng.random(e["E"]) < 0.6))
    rel["a"].append(e["a"][dm]); rel["b"].append(e["bp"][dm]); rel["t"].append(np.full(len(dm), _REL["creditor_debtor"]))
    rel["s"].append(e["t0"][dm] - rng.uniform(30, 700, len(dm)))
    nm = np.flatnonzero((e["cat"] == _DC["neighbor"]) & (rng.random(e["E"]) < 0.5))
    rel["a"].append(e["a"][nm]); rel["b"].append(e["bp"][nm]); rel["t"].append(np.full(len(nm), _REL["neighbor"]))
    rel["s"].append(np.full(len(nm), np.nan))
    ra, rb = np.concatenate(rel["a"]), np.concatenate(rel["b"])
    rt, rs = np.concatenate(rel["t"]), np.concatenate(rel["s"])
    rok = (ra >= 0) & (rb >= 0) & (ra != rb)
    ra, rb, rt, rs = ra[rok], rb[rok], rt[rok], rs[rok]
    rs = np.where(rs < T, rs, np.nan)
    lo_, hi_ = np.minimum(ra, rb), np.maximum(ra, rb)
    rdup = pd.DataFrame({"a": lo_, "b": hi_, "t": rt}).duplicated().to_numpy()
    ra, rb, rt, rs = ra[~rdup], rb[~rdup], rt[~rdup], rs[~rdup]
    return ra, rb, rt, rs
