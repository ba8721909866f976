"""Household membership over the period: tenants moving in and out, babies born, and divorces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .draws import _sig
from .vocab import _DC, _PT, _R


@dataclass
class Memberships:
    """Who belonged to which household when (days; NaN: throughout), with the households
    divorces opened, and the divorces themselves, which become ex-spouse relations."""

    hh: np.ndarray
    pid: np.ndarray
    role: np.ndarray
    start: np.ndarray
    end: np.ndarray
    hh_place: np.ndarray  # place of each household, the new ones of divorced spouses last
    tenure: np.ndarray
    divorces: tuple[np.ndarray, np.ndarray, np.ndarray]  # (spouse who stays, spouse who leaves, day)


def _memberships(rng: np.random.Generator, p: dict, g: dict, e: dict, n: int, T: float) -> Memberships:
    """Membership rows of every person; a divorce after a marriage conflict ends one
    membership and starts a new household."""
    H = p["H"]
    mem_hh = p["hh"].copy()
    mem_pid = np.arange(n)
    mem_role = p["role"].copy()
    ht = p["hh_type"]
    # tenants move in and out
    hh_start = np.where((ht == 2) & (rng.random(H) < 0.6), rng.uniform(-200, T, H),
                        np.where(rng.random(H) < 0.1, rng.uniform(0, T, H), np.nan))
    hh_start = np.where(hh_start < 0, np.nan, hh_start)
    base = np.where(np.isnan(hh_start), 0.0, hh_start)
    hh_end = np.where((ht >= 2) & (rng.random(H) < 0.3), base + rng.lognormal(np.log(400), 0.6, H), np.nan)
    hh_end = np.where(hh_end < T, hh_end, np.nan)
    mem_start = hh_start[mem_hh]
    mem_end = hh_end[mem_hh]
    child_later = (mem_role == _R["child"]) & (p["age"] < 4) & (rng.random(n) < 0.5)
    born_by = np.where(np.isnan(mem_end), T, mem_end)  # a baby joins before the family moves out
    mem_start = np.where(child_later & np.isnan(mem_start), rng.uniform(0, 1, n) * born_by, mem_start)
    d_ep = np.flatnonzero((e["cat"] == _DC["marriage_family"]) & (e["sub"] == 0) & (rng.random(e["E"]) < 0.04 + 0.10 * _sig(e["h0"])))
    t_div = e["t0"][d_ep] + rng.uniform(60, 400, len(d_ep))
    spouse_p = np.where(p["role"][e["bp"][d_ep]] == _R["head"], e["a"][d_ep], e["bp"][d_ep])
    ok = (t_div < T) & np.isnan(mem_end[spouse_p]) & ~(mem_start[spouse_p] >= t_div)
    spouse_p, t_div, d_ep = spouse_p[ok], t_div[ok], d_ep[ok]
    _, first = np.unique(spouse_p, return_index=True)
    spouse_p, t_div, d_ep = spouse_p[first], t_div[first], d_ep[first]
    mem_end[spouse_p] = t_div
    n_new = len(spouse_p)
    new_hh = H + np.arange(n_new)
    res_places = np.flatnonzero(g["pl_type"] == _PT["residential"])
    new_place = res_places[rng.integers(0, max(len(res_places), 1), n_new)] if len(res_places) else g["hh_place"][p["hh"][spouse_p]]
    hh_place = np.concatenate([g["hh_place"], new_place])
    tenure = np.concatenate([np.array([_tenure for _tenure in (0, 0, 1, 2)])[ht], np.full(n_new, 1)])
    tenure = np.where(rng.random(len(tenure)) < 0.01, 3, tenure)
    mem_hh = np.concatenate([mem_hh, new_hh])
    mem_pid = np.concatenate([mem_pid, spouse_p])
    mem_role = np.concatenate([mem_role, np.full(n_new, _R["head"])])
    mem_start = np.concatenate([mem_start, t_div + rng.uniform(0, 30, n_new)])
    mem_end = np.concatenate([mem_end, np.full(n_new, np.nan)])
    other_p = np.where(e["a"][d_ep] == spouse_p, e["bp"][d_ep], e["a"][d_ep])
    return Memberships(hh=mem_hh, pid=mem_pid, role=mem_role, start=mem_start, end=mem_end, hh_place=hh_place,
                       tenure=tenure, divorces=(other_p, spouse_p, t_div))
