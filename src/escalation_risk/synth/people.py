"""People and households: who lives where, their latent traits, names and identifiers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .draws import _choice_p, _pick
from .vocab import _R, GIVEN, LOCAL_REGION, MIGRANT_REGIONS, PHONE_PREFIXES, SURNAMES


def _people(rng: np.random.Generator, n: int, year0: int) -> dict:
    """Households and their members (ages, sexes, roles), hukou, employment, latent traits and names."""
    H = int(n / 2.4) + 20
    while True:
        htype = _choice_p(rng, [0.45, 0.25, 0.25, 0.05], H)  # urban family, rural family, rented, dorm
        fam = htype <= 1
        head_age = np.where(fam, rng.integers(24, 78, H), np.where(htype == 2, rng.integers(19, 58, H),
                                                                  rng.integers(18, 50, H)))
        has_sp = np.where(fam, rng.random(H) < 0.82, np.where(htype == 2, rng.random(H) < 0.45, False))
        max_ch = np.clip((head_age - 20) // 4, 0, 3)
        n_ch = np.where(fam, np.minimum(rng.poisson(1.2, H), max_ch),
                        np.where((htype == 2) & has_sp, np.minimum(rng.poisson(0.6, H), max_ch), 0))
        p_par = np.where(htype == 1, 0.45, 0.22)
        n_par = np.where(fam & (head_age < 62) & (rng.random(H) < p_par), rng.integers(1, 3, H), 0)
        n_ten = np.where(htype == 3, rng.integers(3, 10, H),
                         np.where((htype == 2) & (rng.random(H) < 0.25), rng.integers(1, 4, H), 0))
        total = H + has_sp.sum() + n_ch.sum() + n_par.sum() + n_ten.sum()
        if total >= n:
            break
        H = int(H * 1.3) + 10

    hh_list, role_l, age_l, gen_l, slot_l = [], [], [], [], []
    head_male = rng.random(H) < np.where(fam, 0.74, np.where(htype == 2, 0.62, 0.68))

    def add(hh, role, age, male, slot):
        hh_list.append(hh); role_l.append(np.full(len(hh), role) if np.isscalar(role) else role)
        age_l.append(age); gen_l.append(male); slot_l.append(np.full(len(hh), slot))

    hh = np.arange(H)
    add(hh, _R["head"], head_age, head_male, 0)
    s = np.flatnonzero(has_sp)
    sp_role = np.where(htype[s] == 2, np.where(rng.random(len(s)) < 0.4, _R["partner"], _R["spouse"]), _R["spouse"])
    add(s, sp_role, np.clip(head_age[s] + np.round(rng.normal(-1.5, 3, len(s))), 18, 95).astype(int), ~head_male[s], 1)
    for k in range(3):
        c = np.flatnonzero(n_ch > k)
        age = np.maximum(0, head_age[c] - 22 - 3 * k - rng.integers(0, 9, len(c)))
        add(c, _R["child"], age, rng.random(len(c)) < 0.52, 2 + k)
    for k in range(2):
        par = np.flatnonzero(n_par > k)
        age = np.minimum(96, head_age[par] + 24 + rng.integers(0, 9, len(par)))
        male = np.full(len(par), k == 0) if k == 0 else np.zeros(len(par), bool)
        male = np.where(n_par[par] == 1, rng.random(len(par)) < 0.45, male)
        add(par, _R["parent"], age, male, 5 + k)
    for k in range(9):
        t = np.flatnonzero(n_ten > k)
        role = np.where(htype[t] == 3, _R["other"], _R["tenant"])
        add(t, role, rng.integers(18, 52, len(t)), rng.random(len(t)) < 0.64, 7 + k)

    phh = np.concatenate(hh_list)
    order = np.lexsort((np.concatenate(slot_l), phh))[:n]
    p: dict[str, Any] = {
        "hh": phh[order],
        "role": np.concatenate(role_l)[order],
        "age": np.concatenate(age_l)[order].astype(np.int64),
        "male": np.concatenate(gen_l)[order].astype(bool),
    }
    H = int(p["hh"].max()) + 1
    htype = htype[:H]
    p["htype"] = htype[p["hh"]]
    n_ = n
    age, male, pt = p["age"], p["male"], p["htype"]
    p["birth_year"] = year0 - age
    # hukou: local families, migrant tenants and dorm workers
    p_mig = np.array([0.2, 0.03, 0.75, 0.92])[pt]
    u = rng.random(n_)
    p["hukou"] = np.where(u < 0.01, 2, np.where(u < 0.01 + p_mig, 1, 0))
    # employment by age
    u = rng.random(n_)
    emp = np.full(n_, 4)
    emp = np.where(age < 16, 3, emp)
    emp = np.where((age >= 16) & (age < 23), np.where(u < 0.6, 3, np.where(u < 0.9, 0, 1)), emp)
    emp = np.where((age >= 23) & (age < 60), np.where(u < 0.80, 0, np.where(u < 0.92, 1, 4)), emp)
    emp = np.where(age >= 60, np.where(u < 0.85, 2, np.where(u < 0.95, 0, 4)), emp)
    emp = np.where((pt == 3) & (age >= 16), np.where(u < 0.97, 0, 1), emp)
    p["employment"] = emp
    # latent traits
    young_m = (male & (age >= 18) & (age < 40)).astype(float)
    adult = age >= 18
    alco = rng.normal(size=n_) + 0.5 * male + 0.2 * ((age >= 30) & (age < 60)) - 0.8 * ~adult
    aggr = rng.normal(size=n_) + 0.35 * male + 0.3 * young_m + 0.3 * alco - 0.6 * ~adult
    ment = rng.normal(size=n_)
    fin = rng.normal(size=n_) + 0.6 * (emp == 1) + 0.3 * (p["hukou"] == 1)
    p.update(aggr=aggr, alco=alco, ment=ment, fin=fin)
    p["tr"] = 0.55 * aggr + 0.30 * alco + 0.25 * ment + 0.15 * fin
    p["prop"] = np.exp(0.45 * aggr + 0.30 * alco + 0.25 * fin + 0.20 * ment) * adult
    p["adult"] = adult
    # names: household surname for head, children and head's father
    hs = _choice_p(rng, 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9, H)
    own_sn = _choice_p(rng, 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9, n_)
    r = p["role"]
    inherit = (r == _R["head"]) | (r == _R["child"]) | ((r == _R["parent"]) & male)
    sn = np.where(inherit, hs[p["hh"]], own_sn)
    g_w = 1.0 / np.arange(1, len(GIVEN) + 1) ** 0.5
    g1 = _choice_p(rng, g_w, n_)
    g2 = _choice_p(rng, g_w, n_)
    two = rng.random(n_) < 0.7
    p["name"] = SURNAMES[sn] + GIVEN[g1] + np.where(two, GIVEN[g2], "")
    p["H"] = H
    p["hh_type"] = htype
    return p


def _id_numbers(rng: np.random.Generator, birth_year: np.ndarray, male: np.ndarray, local: np.ndarray) -> np.ndarray:
    """18-character resident id numbers with a valid ISO 7064 MOD 11-2 check digit."""
    n = len(birth_year)
    region = np.where(local, LOCAL_REGION, _pick(rng, MIGRANT_REGIONS, n))
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    born = (pd.Series(region.astype(str)) + pd.Series(birth_year).astype(str).str.zfill(4)
            + pd.Series(month).astype(str).str.zfill(2) + pd.Series(day).astype(str).str.zfill(2))
    # Real id numbers are unique: people born the same day in the same region and of the
    # same sex take consecutive sequence numbers from a random start.
    nth = pd.DataFrame({"b": born, "m": male}).groupby(["b", "m"]).cumcount().to_numpy()
    seq = ((_start_of(born, male, rng) + nth) % 500) * 2 + male.astype(int)
    body = born + pd.Series(seq).astype(str).str.zfill(3)
    digits = np.frombuffer("".join(body.tolist()).encode("ascii"), dtype=np.uint8).reshape(n, 17) - 48
    w = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    chk = np.array(list("10X98765432"), dtype=object)[(digits.astype(np.int64) @ w) % 11]
    return (body + pd.Series(chk).astype(str)).to_numpy(dtype=object)


def _start_of(born: pd.Series, male: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random sequence start per (region and birth date, sex) group."""
    codes = pd.factorize(born.to_numpy(dtype=object) + np.where(male, "m", "f"))[0]
    return rng.integers(0, 500, codes.max() + 1 if len(codes) else 0)[codes]


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mobile numbers: a real prefix and eight random digits."""
    tail = pd.Series(rng.integers(0, 10**8, n)).astype(str).str.zfill(8)
    return (pd.Series(_pick(rng, PHONE_PREFIXES, n).astype(str)) + tail).to_numpy(dtype=object)
