"""Match weights: u from random pairs, m learnt by EM on the blocked pairs, term frequencies.

- **u** (how often two different people show a level) is counted on a seeded sample of
  random pairs, with one pseudo-observation at the model's prior ``u0`` so a level the
  sample never saw keeps a small, non-zero u.
- **m** (how often one person's two records show it) is learnt by expectation-maximisation
  on the candidate pairs, as Splink does: one training session per blocking rule, each
  leaving out the fields its rule made agree (pairs found by the same name and birth year
  say nothing about how often a true duplicate keeps its name), u held fixed, the share of
  matches estimated. A field's m is the mean over the sessions that estimated it; where no
  session had enough pairs, the model's starting values stand.
- **term frequencies**: an exact id number, name or phone weighs by how many records hold
  it (a common name is weak evidence), and a shared graph item by how many records hold
  the rarest one shared (a counterpart shared by hundreds counts for little).

The trained parameters travel with the linkage (:attr:`Linkage.parameters`) and are shown
by :func:`~escalation_risk.linking.linkage_parameters`: levels and weights, never values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .comparisons import _compare
from .keys import _Keys
from .model import _MODES, _TF_GRAPH, _TF_LEVEL, FIELDS, GRAPH_FIELDS, LEVELS, LinkageModel

# Training sessions: the blocking rule, and the fields it made agree (left out of the session).
SESSIONS = {"id_number": ("id_number",), "fuzzy_pinyin+birth_year": ("name", "birth"), "phone": ("phone",)}
_M_FLOOR = 1e-6  # a level never seen among matches is rare, not impossible (EM's logs need it)


@dataclass
class _Weights:
    m: dict[str, np.ndarray]          # per level code (index 0, missing, unused)
    u: dict[str, np.ndarray]
    table: dict[str, np.ndarray]      # log2(m/u) per level code (missing = 0)
    tf: dict[str, np.ndarray]         # per-record log2 u of the agreed value, for TF levels
    holders: dict[str, int]           # records holding any graph item, per kind
    m_from: dict[str, str] = field(default_factory=dict)  # field -> "em" or "default"
    lam: dict[str, float] = field(default_factory=dict)   # share of matches per session


def _m_default(model: LinkageModel) -> dict[str, np.ndarray]:
    return {f: np.array([0.0] + [model.m[f][lv] for lv in LEVELS[f][1:]]) for f in FIELDS}


def _random_pairs(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n < 2:
        return np.array([], np.int64), np.array([], np.int64)
    if n * (n - 1) // 2 <= size:
        si, sj = np.triu_indices(n, 1)
        return si.astype(np.int64), sj.astype(np.int64)
    rng = np.random.default_rng(seed)
    si = rng.integers(0, n, size)
    sj = rng.integers(0, n - 1, size)
    return si, sj + (sj >= si)  # never a record with itself


def estimate_u(levels: dict[str, np.ndarray], model: LinkageModel) -> dict[str, np.ndarray]:
    """u per level code from the levels of random pairs (within each mode of a field)."""
    us = {}
    for f in FIELDS:
        names = LEVELS[f]
        counts = np.bincount(levels[f], minlength=len(names)).astype(float)
        u = np.ones(len(names))
        for mode in _MODES[f]:
            total = counts[list(mode)].sum()
            for lv in mode:
                u[lv] = (counts[lv] + 1.0) / (total + 1.0 / model.u0[f][names[lv]])
        us[f] = u
    return us


def _log_table(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    w = np.log2(np.maximum(m, _M_FLOOR) / u)
    w[0] = 0.0
    return w


def em_m(levels: dict[str, np.ndarray], u: dict[str, np.ndarray], m0: dict[str, np.ndarray],
         fields: tuple[str, ...], lam0: float = 0.1, iterations: int = 25, tol: float = 1e-5
         ) -> tuple[dict[str, np.ndarray], float]:
    """m per level of ``fields`` by EM on pairs' ``levels``, u held fixed; (m, share of matches).

    E step: each pair's match probability from the prior share and the weights of its
    levels (a missing level weighs nothing). M step: m of a level is the expected number
    of matches showing it over the matches with the field present (within each mode), with
    one pseudo-observation at the starting value; the share is the mean probability.
    """
    m = {f: m0[f].astype(float).copy() for f in fields}
    lam = float(np.clip(lam0, 1e-6, 1 - 1e-6))
    lv = {f: levels[f].astype(np.intp) for f in fields}
    npairs = len(next(iter(lv.values()))) if lv else 0
    if npairs == 0:
        return m, lam
    for _ in range(iterations):
        s = np.full(npairs, np.log2(lam / (1 - lam)))
        for f in fields:
            s += _log_table(m[f], u[f])[lv[f]]
        p = 1.0 / (1.0 + np.exp2(-np.clip(s, -200, 200)))
        change = 0.0
        for f in fields:
            sums = np.bincount(lv[f], weights=p, minlength=len(m[f]))
            new = m[f].copy()
            for mode in _MODES[f]:
                idx = list(mode)
                denom = sums[idx].sum()
                new[idx] = (sums[idx] + m0[f][idx] / max(m0[f][idx].sum(), 1e-12)) / (denom + 1.0)
            change = max(change, float(np.abs(new - m[f]).max()))
            m[f] = new
        new_lam = float(np.clip(p.mean(), 1e-6, 1 - 1e-6))
        change = max(change, abs(new_lam - lam))
        lam = new_lam
        if change < tol:
            break
    return m, lam


def _train_m(levels: dict[str, np.ndarray], rule: np.ndarray, rule_names: list[str], u: dict[str, np.ndarray],
             model: LinkageModel) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, float]]:
    """m per field from the EM sessions (one per blocking rule in :data:`SESSIONS`)."""
    m0 = _m_default(model)
    graph_fields = GRAPH_FIELDS if model.graph else ()
    estimates: dict[str, list[np.ndarray]] = {f: [] for f in FIELDS}
    lam: dict[str, float] = {}
    if model.em:
        rng = np.random.default_rng(model.seed + 1)
        for name, held in SESSIONS.items():
            if name not in rule_names:
                continue
            rows = np.flatnonzero(rule == rule_names.index(name))
            if len(rows) < model.em_min_pairs:
                continue
            if len(rows) > model.em_sample:
                rows = np.sort(rng.choice(rows, model.em_sample, replace=False))
            fields = tuple(f for f in FIELDS if f not in held and (f not in GRAPH_FIELDS or f in graph_fields))
            m, share = em_m({f: levels[f][rows] for f in fields}, u, m0, fields, iterations=model.em_iterations)
            lam[name] = share
            for f in fields:
                # A session whose pairs never show the field present learnt nothing about it.
                if (levels[f][rows] != 0).sum() >= model.em_min_pairs:
                    estimates[f].append(m[f])
    out, source = {}, {}
    for f in FIELDS:
        if estimates[f]:
            out[f], source[f] = np.mean(estimates[f], axis=0), "em"
        else:
            out[f], source[f] = m0[f], "default"
        out[f][0] = 0.0
    return out, source, lam


def _estimate(k: _Keys, model: LinkageModel, levels: dict[str, np.ndarray], rule: np.ndarray,
              rule_names: list[str]) -> _Weights:
    """u from random pairs, m by EM on the candidate pairs (``levels``, ``rule``), term frequencies."""
    si, sj = _random_pairs(k.n, model.u_sample, model.seed)
    u = estimate_u(_compare(k, si, sj, graph=model.graph), model)
    m, source, lam = _train_m(levels, rule, rule_names, u, model)
    table = {f: _log_table(m[f], u[f]) for f in FIELDS}
    pop = max(k.n, model.population or 0, model.min_population)
    tf = {}
    for f, arr in (("id_number", k.idn), ("name", k.name), ("phone", k.phone)):
        present = arr != 0
        codes = pd.factorize(arr[present])[0]
        c = np.ones(k.n)
        c[present] = np.bincount(codes)[codes]
        # Others holding the same value, over the population: the pair itself is not chance.
        tf[f] = np.log2(np.maximum(c - 1.0, 1.0) / pop)
    holders = dict(k.graph.holders) if k.graph is not None else {}
    return _Weights(m=m, u=u, table=table, tf=tf, holders=holders, m_from=source, lam=lam)


def _score(levels: dict[str, np.ndarray], wt: _Weights, i: np.ndarray,
           graph_counts: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Summed match weight of each pair, term-frequency adjusted where a value is shared."""
    total = np.zeros(len(i), dtype=np.float64)
    for f in FIELDS:
        w = wt.table[f][levels[f]]
        if f in _TF_LEVEL:
            hit = levels[f] == _TF_LEVEL[f]
            w = np.where(hit, np.log2(max(wt.m[f][_TF_LEVEL[f]], _M_FLOOR)) - wt.tf[f][i], w)
        total += w
    for (f, lv), kind in _TF_GRAPH.items():
        if not graph_counts or kind not in graph_counts:
            continue
        hit = levels[f] == lv
        if not hit.any():
            continue
        # u of sharing this item by chance: the other records holding it, among the holders.
        holders = max(wt.holders.get(kind, 2), 2)
        u_tf = np.maximum(graph_counts[kind][hit] - 1.0, 1.0) / holders
        total[hit] += np.log2(max(wt.m[f][lv], _M_FLOOR)) - np.log2(u_tf) - wt.table[f][lv]
    return total


def parameters_table(wt: _Weights) -> pd.DataFrame:
    """The trained parameters: one row per field and level (m, u, weight in bits, where m
    came from). Levels and weights only, never a value."""
    rows = []
    for f in FIELDS:
        for code, name in enumerate(LEVELS[f]):
            if code == 0:
                continue
            rows.append({"field": f, "level": name, "m": float(wt.m[f][code]), "u": float(wt.u[f][code]),
                         "weight": float(wt.table[f][code]),
                         "term_frequency": (f in _TF_LEVEL and code == _TF_LEVEL[f]) or (f, code) in _TF_GRAPH,
                         "m_from": wt.m_from.get(f, "default")})
    return pd.DataFrame(rows)
