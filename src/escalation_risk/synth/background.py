"""Background events: police calls, complaints and crimes that belong to no recorded dispute."""

from __future__ import annotations

import numpy as np

from .draws import _choice_p, _Groups
from .records import _Acc
from .vocab import _DC, _K, _PR, _S


def _background(rng: np.random.Generator, p: dict, g: dict, o: dict, acc: _Acc, n: int, T: float) -> None:
    """Police calls, complaints and crimes that belong to no recorded dispute."""
    yrs = T / 365.25
    adults = p["adult"].astype(float)
    grid_adults = p["grid_adults"]
    # police calls about a volatile person
    k = rng.poisson(0.075 * n * yrs)
    w = adults * np.exp(0.6 * p["aggr"] + 0.6 * p["alco"] + 0.3 * p["ment"])
    resp = _choice_p(rng, w, k)
    cat = _choice_p(rng, [0.3, 0.3, 0.04, 0.0, 0.0, 0.0, 0.14, 0.0, 0.0, 0.02, 0.2], k)
    hh_members = _Groups(p["hh"], np.arange(n), p["H"])
    hhm = hh_members.pick(rng, p["hh"][resp])
    comp = np.where(cat == _DC["marriage_family"], hhm, grid_adults.pick(rng, p["grid"][resp]))
    comp = np.where(comp == resp, -1, comp)
    inc = acc.add_incidents(kind=_K["police_call"], cat=cat, t=rng.uniform(0, T, k), lag=rng.uniform(0.003, 0.05, k),
                            place=p["place"][resp], source=_S["police_110"],
                            heat=rng.normal(-0.3, 0.8, k) + 0.4 * p["aggr"][resp], who=resp)
    acc.add_parties(inc, comp, 0, _PR["complainant"])
    acc.add_parties(inc, resp, 0, _PR["respondent"])
    # complaints against organisations
    k = rng.poisson(0.025 * n * yrs)
    who = _choice_p(rng, adults * np.exp(0.3 * p["fin"]), k)
    u = rng.random(k)
    urb_pm = o["build_pm"][np.minimum(p["place"][who], len(o["build_pm"]) - 1)]
    org = np.where(u < 0.4, urb_pm, np.where(u < 0.7, o["banks"][rng.integers(0, len(o["banks"]), k)],
                                             rng.integers(0, o["n_ent"], k)))
    cat = np.where(u < 0.4, _DC["property_management"], np.where(u < 0.7, _DC["consumer_finance"],
                   np.where(rng.random(k) < 0.5, _DC["labor_wage"], _DC["contract"])))
    inc = acc.add_incidents(kind=_K["complaint"], cat=cat, t=rng.uniform(0, T, k), lag=rng.lognormal(np.log(0.3), 1.0, k),
                            place=p["place"][who], source=_S["hotline_12345"], heat=rng.normal(-0.5, 0.7, k), who=who)
    acc.add_parties(inc, who, 0, _PR["complainant"])
    acc.add_parties(inc, org, 1, _PR["respondent"])
    # crime with no dispute behind it, committed mostly by aggressive drinkers
    k = rng.poisson(0.0085 * n * yrs)
    susp = _choice_p(rng, adults * np.exp(1.1 * p["aggr"] + 0.5 * p["alco"]), k)
    vict = np.where(rng.random(k) < 0.25, hh_members.pick(rng, p["hh"][susp]), grid_adults.pick(rng, p["grid"][susp]))
    vict = np.where(rng.random(k) < 0.15, _choice_p(rng, adults, k), vict)
    vict = np.where(vict == susp, -1, vict)
    off = _choice_p(rng, [0.30, 0.10, 0.004, 0.006, 0.16, 0.10, 0.18, 0.01, 0.14], k)
    inc = acc.add_incidents(kind=_K["criminal_case"], cat=off, t=rng.uniform(0, T, k), lag=rng.uniform(0.01, 1.0, k),
                            place=np.where(rng.random(k) < 0.5, p["place"][susp],
                                           g["off_c"] + rng.integers(0, g["n_com"], k)),
                            source=_S["police_110"], heat=rng.normal(1.0, 1.0, k) + 0.3 * p["aggr"][susp], who=susp)
    acc.add_parties(inc, susp, 0, _PR["suspect"])
    acc.add_parties(inc, vict, 0, _PR["victim"])
