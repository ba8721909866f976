"""Match weights: u from random pairs, m learnt by EM on the blocked pairs, term frequencies.

- **u** (how often two different people show a level) is counted on a seeded sample of
  random pairs, with one pseudo-observation at the model's prior ``u0`` so a level the
  sample never saw keeps a small, non-zero u.
- **m** (how often one person's two records show it) is learnt by expectation-maximisation
  on the candidate pairs, as Splink does: one training session per blocking rule, each
  leaving out the fields its rule made agree (pairs found by the same name and birth year
  say nothing about how often a true duplicate keeps its name), u held fixed, the share of
  matches estimated. A field's m is the mean over the sessions that estimated it, weighted
  by the matches each found; where no session had enough, the model's starting values
  stand. An id number missing on one side weighs log2(m/u) too (:data:`MISSING_TELLS`),
  its m the share of matches EM found without one. The graph levels' m is read on the
  pairs with one id number (one person by the law's identifier), as their u is read among
  namesakes with two valid ids; EM on all candidate pairs (the graph left out of the E
  step) is the fallback when too few pairs share an id.
- **term frequencies**: an exact id number, name or phone weighs by how many records hold
  it (a common name is weak evidence), and a shared graph item by how many records hold
  the rarest one shared (a counterpart shared by hundreds counts for little), scaled by
  how many items the two records hold (someone seen in six grids shares one by chance far
  more easily than someone seen in one).

The trained parameters travel with the linkage (:attr:`Linkage.parameters`) and are shown
by :func:`~escalation_risk.linking.linkage_parameters`: levels and weights, never values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .blocking import _block_rules
from .comparisons import _compare, _compare_graph
from .keys import TF_FIELDS, _Keys, _term_counts
from .model import (
    _IMPLIED,
    _M_AS,
    _MODES,
    _TF_GRAPH,
    _TF_LEVELS,
    ATTRIBUTE_FIELDS,
    FIELDS,
    GRAPH_FIELDS,
    ID_CONFLICT,
    ID_EXACT,
    LEVELS,
    MISSING_TELLS,
    NAME_DIFFERENT,
    LinkageModel,
)

# Training sessions: the blocking rule, and the fields it made agree (left out of the session).
SESSIONS = {"id_number": ("id_number",), "fuzzy_pinyin+birth_year": ("name", "birth"), "phone": ("phone",)}
#: The term-frequency fields whose value is a blocking rule's key (same name): how many records
#: hold each value is read from the blocks' sort (:func:`~.blocking._block_pairs`' ``holders``),
#: where that rule's key is the field's array itself (:func:`_estimate` checks; else it counts).
TF_FROM_BLOCKING = ("id_number", "phone")
_M_FLOOR = 1e-6  # a level never seen among matches is rare, not impossible (EM's logs need it)


@dataclass
class _Weights:
    m: dict[str, np.ndarray]          # per level code (index 0, missing, unused)
    u: dict[str, np.ndarray]
    table: dict[str, np.ndarray]      # log2(m/u) per level code (missing = 0)
    tf: dict[str, np.ndarray]         # per-record log2 u of the agreed value, for TF levels
    holders: dict[str, int]           # records holding any graph item, per kind
    mean_items: dict[str, float] = field(default_factory=dict)  # items a holder holds, on average, per kind
    present_adj: dict[str, float] = field(default_factory=dict)  # bits on every present level (MISSING_TELLS)
    m_from: dict[str, str] = field(default_factory=dict)  # field -> "em" or "default"
    lam: dict[str, float] = field(default_factory=dict)   # share of matches per session
    # graph (field, level) -> u among namesakes over u among random pairs (scales the TF u)
    ratio: dict[tuple[str, int], float] = field(default_factory=dict)
    namesakes: int = 0  # namesake pairs known to be two people, that the graph u was read on


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
    return _u_from_counts(_level_counts(levels), model)


def _level_counts(levels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """How many pairs show each level of each field (a field :data:`_IMPLIED` by another's level:
    among the pairs where it is not)."""
    return {f: np.bincount(levels[f][_informative(levels, f)], minlength=len(LEVELS[f])) for f in FIELDS}


def _informative(levels: dict[str, np.ndarray], f: str,
                 rows: np.ndarray | slice = slice(None)) -> np.ndarray | slice:
    """The ``rows`` (all pairs by default) where field ``f`` is not implied by another field's
    level: ``rows`` themselves when nothing implies it (indexing by them then takes no copy)."""
    if f not in _IMPLIED or _IMPLIED[f][0] not in levels:
        return rows
    other, lv = _IMPLIED[f]
    r = np.arange(len(levels[f]))[rows]
    return r[levels[other][r] != lv]


def _u_from_counts(level_counts: dict[str, np.ndarray], model: LinkageModel) -> dict[str, np.ndarray]:
    """u per level code from how many random pairs show each level (within each mode of a field)."""
    us = {}
    for f in FIELDS:
        names = LEVELS[f]
        counts = np.asarray(level_counts[f], dtype=float)
        u = np.ones(len(names))
        for mode in _MODES[f]:
            total = counts[list(mode)].sum()
            for lv in mode:
                u[lv] = (counts[lv] + 1.0) / (total + 1.0 / model.u0[f][names[lv]])
        us[f] = u
    return us


def _log_table(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    w = np.zeros(len(m))
    # Level 0 (missing) weighs nothing, whatever its u (which may be 0 where nothing is missing).
    w[1:] = np.log2(np.maximum(m[1:], _M_FLOOR) / u[1:])
    return w


def em_m(levels: dict[str, np.ndarray], u: dict[str, np.ndarray], m0: dict[str, np.ndarray],
         fields: tuple[str, ...], lam0: float = 0.1, iterations: int = 25, tol: float = 1e-5,
         update: tuple[str, ...] | None = None) -> tuple[dict[str, np.ndarray], float]:
    """m per level by EM on pairs' ``levels``, u held fixed; returns (m, share of matches).

    E step: each pair's match probability from the share of matches and the weights of
    its levels in ``fields`` (a missing level weighs nothing). M step: the m of each level
    of the ``update`` fields (default: ``fields``; a field outside ``fields`` is learnt
    from the others' posteriors without feeding back) is the expected number of matches
    showing it over the matches with the field present (within each mode), with one
    pseudo-observation at the starting value; the share is the mean probability. ``m[f][0]``
    is the share of matches with the field missing (it weighs nothing in the E step).
    """
    update = fields if update is None else update
    m = {f: m0[f].astype(float).copy() for f in set(fields) | set(update)}
    lam = float(np.clip(lam0, 1e-6, 1 - 1e-6))
    lv = {f: levels[f].astype(np.intp) for f in m}
    npairs = len(next(iter(lv.values()))) if lv else 0
    if npairs == 0:
        return m, lam
    # A field implied by another's level (a shared household implies its holding and its
    # counterparts) is learnt where it is not implied, as its weight is applied.
    read = {f: _informative(levels, f) for f in update}
    for _ in range(iterations):
        s = np.full(npairs, np.log2(lam / (1 - lam)))
        for f in fields:
            s += _log_table(m[f], u[f])[lv[f]]
        p = 1.0 / (1.0 + np.exp2(-np.clip(s, -200, 200)))
        change = 0.0
        for f in update:
            r = read[f]
            sums = np.bincount(lv[f][r], weights=p[r], minlength=len(m[f]))
            new = m[f].copy()
            for mode in _MODES[f]:
                idx = list(mode)
                denom = sums[idx].sum()
                new[idx] = (sums[idx] + m0[f][idx] / max(m0[f][idx].sum(), 1e-12)) / (denom + 1.0)
            new[0] = sums[0] / max(float(p[r].sum()), 1e-12)  # matches with the field missing (never fed back)
            change = max(change, float(np.abs(new - m[f]).max()))
            m[f] = new
        new_lam = float(np.clip(p.mean(), 1e-6, 1 - 1e-6))
        change = max(change, abs(new_lam - lam))
        lam = new_lam
        if change < tol:
            break
    return m, lam


def _train_m(levels: dict[str, np.ndarray], sessions: dict[str, np.ndarray], u: dict[str, np.ndarray],
             model: LinkageModel) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, float]]:
    """m per field: the identifiers' by EM sessions (one per blocking rule in :data:`SESSIONS`),
    then the graph levels' from the identifiers' posteriors on all candidate pairs.

    The graph fields stay out of every E step: a household's members share a phone, a home
    and a grid, and EM left free would take "one family" for "one person"."""
    m0 = _m_default(model)
    ident = tuple(f for f in FIELDS if f not in GRAPH_FIELDS)
    estimates: dict[str, list[tuple[np.ndarray, float]]] = {f: [] for f in FIELDS}
    lam: dict[str, float] = {}
    rng = np.random.default_rng(model.seed + 1)

    def sample(rows: np.ndarray) -> np.ndarray:
        return np.sort(rng.choice(rows, model.em_sample, replace=False)) if len(rows) > model.em_sample else rows

    if model.em:
        for name, held in SESSIONS.items():
            rows = sessions.get(name, np.array([], np.int64))
            if len(rows) < model.em_min_pairs:
                continue
            rows = sample(rows)
            fields = tuple(f for f in ident if f not in held)
            m, share = em_m({f: levels[f][rows] for f in fields}, u, m0, fields, iterations=model.em_iterations)
            lam[name] = share
            for f in fields:
                # A session whose pairs never show the field present learnt nothing about it.
                # Weighted by the matches the session found: one that found none (pairs sharing a
                # family phone) says how non-matches look, not matches.
                matches = share * float((levels[f][rows] != 0).sum())
                if matches >= model.em_min_matches:
                    estimates[f].append((m[f], matches))
    out, source = {}, {}
    for f in ident:
        if estimates[f]:
            w = np.array([e[1] for e in estimates[f]])
            out[f], source[f] = (np.stack([e[0] for e in estimates[f]]) * w[:, None]).sum(axis=0) / w.sum(), "em"
        else:
            out[f], source[f] = m0[f], "default"
    for f in GRAPH_FIELDS:
        out[f], source[f] = m0[f], "default"
    # The graph levels' m is read where the identifiers settle who is who: pairs with one id
    # number (the law's identifier: one person; the names not differing outright), the
    # counterpart of the graph u read among namesakes with two valid ids. EM on every candidate
    # pair cannot learn it: the pairs lacking an id are mostly namesakes whose identifiers look
    # alike, and two valid, different ids weigh -20 bits against the name and birth year's +19
    # in an E step without term frequencies; their posteriors taught EM that one person's two
    # records seldom share anything (measured at 1M: m of "no place shared" 0.70 by EM against
    # 0.02 among the pairs with one id). EM on all candidate pairs stays the fallback when too
    # few pairs share an id.
    one = np.flatnonzero((levels["id_number"] == ID_EXACT) & (levels["name"] != NAME_DIFFERENT))
    rows = sample(np.arange(len(levels[FIELDS[0]])))
    for f in GRAPH_FIELDS:
        lv = levels[f][_informative(levels, f, one)]
        counts = np.bincount(lv, minlength=len(LEVELS[f])).astype(float)
        for (field_, code), like in _M_AS.items():
            if field_ == f:
                counts[code] = counts[like]
        if counts[1:].sum() >= model.em_min_matches:
            new = m0[f].astype(float).copy()
            for mode in _MODES[f]:
                idx = list(mode)
                # One pseudo-observation at the starting values: a level never seen is rare.
                new[idx] = (counts[idx] + m0[f][idx] / max(m0[f][idx].sum(), 1e-12)) / (counts[idx].sum() + 1.0)
            out[f], source[f] = new, "same_id"
    rest = tuple(f for f in GRAPH_FIELDS if source[f] != "same_id")
    if model.em and model.graph and rest and len(rows) >= model.em_min_pairs:
        m, share = em_m({f: levels[f][rows] for f in FIELDS}, u, {**m0, **out}, ident, lam0=0.5,
                        iterations=model.em_iterations, update=rest)
        lam["all_candidates"] = share
        for f in rest:
            if share * float((levels[f][rows] != 0).sum()) >= model.em_min_matches:
                out[f], source[f] = m[f], "em"
    for f in FIELDS:
        if f not in MISSING_TELLS or source[f] != "em":
            out[f][0] = 0.0
    return out, source, lam


def _estimate(k: _Keys, model: LinkageModel, levels: dict[str, np.ndarray], i: np.ndarray, j: np.ndarray,
              compared: np.ndarray | None = None, rule_keys: dict[str, np.ndarray] | None = None,
              holders: dict[str, np.ndarray] | None = None) -> _Weights:
    """u from random pairs, m by EM on the candidate pairs (``i``, ``j``; their ``levels``),
    term frequencies. A session takes every candidate pair its blocking rule's key agrees
    on, whichever rule proposed it first (as Splink's training sessions do). ``compared``:
    the pairs whose graph levels were compared (all when None); ``rule_keys``: the records'
    blocking keys by rule, when already made (:func:`~.blocking._block_rules`); ``holders``:
    per term-frequency field, how many records hold each record's value (1 where missing),
    when the blocking has counted them (:data:`TF_FROM_BLOCKING`)."""
    si, sj = _random_pairs(k.n, model.u_sample, model.seed)
    sample = _compare(k, si, sj, graph=False)
    if model.graph and k.graph is not None:
        # Graph levels are dearer to compare: a fifth of the pairs tells their u well enough.
        few = max(len(si) // 5, min(len(si), 1000))
        sample.update(_compare_graph(k.graph, si[:few], sj[:few], sample["id_number"][:few] == 0)[0])
    rule_keys = dict(_block_rules(k)) if rule_keys is None else rule_keys
    sessions = _sessions(rule_keys, i, j)
    tf = {}
    for f, col in TF_FIELDS.items():
        arr = getattr(k, col)
        # The blocking counted the values of the key of the rule named ``f``: they are this
        # field's only when that key is this very array (a rule renamed, or its key combined
        # with another, would hand over counts of something else).
        c = holders.get(f) if holders is not None and rule_keys.get(f) is arr else None
        tf[f] = _tf_log_u(_term_counts(arr) if c is None else c, k.n, model)
    graph = model.graph and k.graph is not None
    return _weights(_level_counts(sample), levels, sessions, tf, model, graph=graph,
                    holders=dict(k.graph.holders) if k.graph is not None else {},
                    mean_items=k.graph.mean_items() if k.graph is not None else {}, compared=compared)


def _sessions(rule_keys: dict[str, np.ndarray], i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """The pairs of each training session: those whose session rule's key agrees."""
    return {name: np.flatnonzero((rule_keys[name][i] == rule_keys[name][j]) & (rule_keys[name][i] != 0))
            for name in SESSIONS if name in rule_keys}


def _tf_log_u(count: np.ndarray, n: int, model: LinkageModel) -> np.ndarray:
    """log2 u of agreeing on a value ``count`` records hold, among ``n`` records."""
    pop = max(n, model.population or 0, model.min_population)
    # Others holding the same value, over the population: the pair itself is not chance.
    return np.log2(np.maximum(count - 1.0, 1.0) / pop)


def _weights(u_counts: dict[str, np.ndarray], levels: dict[str, np.ndarray], sessions: dict[str, np.ndarray],
             tf: dict[str, np.ndarray], model: LinkageModel, *, graph: bool = False,
             holders: dict[str, int] | None = None, mean_items: dict[str, float] | None = None,
             compared: np.ndarray | None = None) -> _Weights:
    """The weights from how many random pairs show each level (u), the candidate pairs' levels and
    sessions (m by EM) and the term frequencies: what :func:`_estimate` gathers from the
    keys, and an engine linking a province in parts gathers by itself."""
    u = _u_from_counts(u_counts, model)
    ratio: dict[tuple[str, int], float] = {}
    namesakes = 0
    block = None
    if (graph or model.attributes) and "fuzzy_pinyin+birth_year" in sessions:
        block = sessions["fuzzy_pinyin+birth_year"]
        if graph and compared is not None:  # the namesakes whose graph levels were compared
            block = block[compared[block]]
        block = block[levels["id_number"][block] == ID_CONFLICT]  # known to be two people
    if model.attributes and block is not None:
        # The attributes' u among namesakes too: two namesakes share a birth year, and with it
        # an age that makes them both students or both retired far more often than two random
        # people. Read before EM, whose steps weigh them with the u the scoring will use.
        u, ratio, namesakes = _u_among_namesakes(levels, block, u, ATTRIBUTE_FIELDS)
    m, source, lam = _train_m(levels, sessions, u, model)
    if graph and block is not None:
        u, graph_ratio, namesakes = _u_among_namesakes(levels, block, u, GRAPH_FIELDS)
        ratio.update(graph_ratio)
    table = {f: _log_table(m[f], u[f]) for f in FIELDS}
    present_adj: dict[str, float] = {}
    for f in MISSING_TELLS:
        # A value missing on one side is evidence when duplicates lack it more often than
        # random pairs do (a second source that records no id number): the missing level
        # weighs log2(m/u), the present levels their m and u as shares of all pairs.
        m_miss = float(m[f][0])
        u_miss = (float(u_counts[f][0]) + 1.0) / (float(np.sum(u_counts[f])) + 2.0)
        if 0.0 < m_miss < 1.0 and source.get(f) == "em":
            u[f] = u[f].copy()
            u[f][0] = u_miss
            present_adj[f] = float(np.log2((1.0 - m_miss) / (1.0 - u_miss)))
            table[f] = table[f] + present_adj[f]
            table[f][0] = float(np.log2(m_miss / u_miss))
    return _Weights(m=m, u=u, table=table, tf=tf, holders=dict(holders or {}), mean_items=dict(mean_items or {}),
                    m_from=source, lam=lam, ratio=ratio, present_adj=present_adj, namesakes=namesakes)


def _u_among_namesakes(levels: dict[str, np.ndarray], two: np.ndarray, u: dict[str, np.ndarray],
                       fields: tuple[str, ...] = GRAPH_FIELDS
                       ) -> tuple[dict[str, np.ndarray], dict[tuple[str, int], float], int]:
    """u of the ``fields`` (the graph levels; the attributes) among the pairs they must tell apart: two records whose
    names sound the same with the same birth year, known to be two people (two valid,
    different id numbers). Whether two namesakes share a counterpart, a place or a grid is
    what matters, not whether two random people do (namesakes may live closer together,
    as families and villages share surnames). The random pairs' u is the prior (one
    pseudo-observation of each level at its random rate), so few namesakes change little.
    ``two``: those pairs. Returns the new u, its ratio to the random pairs' per (field, level),
    and the namesakes."""
    out, ratio = dict(u), {}
    for f in fields:
        lv = levels[f][_informative(levels, f, two)]
        counts = np.bincount(lv, minlength=len(LEVELS[f])).astype(float)
        new = u[f].copy()
        for mode in _MODES[f]:
            idx = list(mode)
            strength = min(1.0 / max(float(u[f][idx].min()), 1e-12), 1e5)
            new[idx] = (counts[idx] + strength * u[f][idx]) / (counts[idx].sum() + strength)
        for code in range(1, len(new)):
            ratio[(f, code)] = float(new[code] / u[f][code])
        out[f] = new
    return out, ratio, int(len(two))


def _score(levels: dict[str, np.ndarray], wt: _Weights, i: np.ndarray,
           graph_counts: dict[str, np.ndarray] | None = None, j: np.ndarray | None = None,
           items: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Summed match weight of each pair (i, j), term-frequency adjusted where a value is shared.

    ``graph_counts``: per kind of graph item, how many records hold the rarest one the pair
    shares; ``items``: per kind, how many items each record holds (read only for the pairs
    that share one, with ``j``)."""
    total = np.zeros(len(i), dtype=np.float64)
    for f in FIELDS:
        total += wt.table[f][levels[f]]
    implied: dict[str, np.ndarray] = {}
    for f, (other, lv) in _IMPLIED.items():
        implied[f] = levels[other] == lv
        if implied[f].any():
            total[implied[f]] -= wt.table[f][levels[f][implied[f]]]
    for (f, lv), key in _TF_LEVELS.items():
        hit = levels[f] == lv
        if hit.any():
            total[hit] += np.log2(max(wt.m[f][lv], _M_FLOOR)) - wt.tf[key][i[hit]] - wt.table[f][lv] \
                + wt.present_adj.get(f, 0.0)
    for (f, lv), kind in _TF_GRAPH.items():
        if not graph_counts or kind not in graph_counts:
            continue
        hit = levels[f] == lv
        if f in implied:
            hit &= ~implied[f]
        if not hit.any():
            continue
        # u of sharing this item by chance: the other records holding it, among the holders.
        holders = max(wt.holders.get(kind, 2), 2)
        u_tf = np.maximum(graph_counts[kind][hit] - 1.0, 1.0) / holders * wt.ratio.get((f, lv), 1.0)
        if items is not None and j is not None and kind in items and wt.mean_items.get(kind):
            held = items[kind][i[hit]].astype(np.float64) * items[kind][j[hit]]
            # Two records holding many items share one by chance more often than two holding
            # one each: u scaled by the items both hold over the holders' mean (squared), so a
            # random pair's u is kept on average.
            u_tf = np.minimum(u_tf * held / wt.mean_items[kind] ** 2, 1.0)
        total[hit] += np.log2(max(wt.m[f][lv], _M_FLOOR)) - np.log2(u_tf) - wt.table[f][lv]
    return total


def parameters_table(wt: _Weights, fields: tuple[str, ...] = FIELDS) -> pd.DataFrame:
    """The trained parameters of ``fields`` (those the model weighs): one row per field and
    level (m, u, weight in bits, where m came from). Levels and weights only, never a value."""
    rows = []
    for f in fields:
        for code, name in enumerate(LEVELS[f]):
            if code == 0 and wt.table[f][0] == 0.0:
                continue
            rows.append({"field": f, "level": name, "m": float(wt.m[f][code]), "u": float(wt.u[f][code]),
                         "weight": float(wt.table[f][code]),
                         "term_frequency": (f, code) in _TF_LEVELS or (f, code) in _TF_GRAPH,
                         "m_from": wt.m_from.get(f, "default")})
    return pd.DataFrame(rows)
