"""Match weights: u from random pairs, m from the model, term-frequency adjustment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .comparisons import _compare
from .keys import _Keys
from .model import _MODES, _TF_LEVEL, FIELDS, LEVELS, LinkageModel


@dataclass
class _Weights:
    table: dict[str, np.ndarray]      # weight per level code (missing = 0)
    tf: dict[str, np.ndarray]         # per-record log2 u of the agreed value, for TF levels
    m_tf: dict[str, float]
    u: dict[str, np.ndarray]


def _estimate(k: _Keys, model: LinkageModel) -> _Weights:
    """u per level from a seeded sample of random pairs; term frequencies per record."""
    n = k.n
    rng = np.random.default_rng(model.seed)
    if n < 2:
        si, sj = np.array([], np.int64), np.array([], np.int64)
    elif n * (n - 1) // 2 <= model.u_sample:
        si, sj = np.triu_indices(n, 1)
    else:
        si = rng.integers(0, n, model.u_sample)
        sj = rng.integers(0, n - 1, model.u_sample)
        sj = sj + (sj >= si)  # never a record with itself
    levels = _compare(k, si, sj)
    table, us = {}, {}
    for f in FIELDS:
        names = LEVELS[f]
        counts = np.bincount(levels[f], minlength=len(names)).astype(float)
        u = np.ones(len(names))
        w = np.zeros(len(names))
        for mode in _MODES[f]:
            total = counts[list(mode)].sum()
            for lv in mode:
                u0 = model.u0[f][names[lv]]
                u[lv] = (counts[lv] + 1.0) / (total + 1.0 / u0)
                m = model.m[f][names[lv]]
                w[lv] = np.log2(m / u[lv]) if m > 0 else -np.inf
        table[f], us[f] = w, u
    pop = max(n, model.population or 0, model.min_population)
    tf, m_tf = {}, {}
    for f, arr in (("id_number", k.idn), ("name", k.name), ("phone", k.phone)):
        present = arr != 0
        codes = pd.factorize(arr[present])[0]
        c = np.ones(n)
        c[present] = np.bincount(codes)[codes]
        # Others holding the same value, over the population: the pair itself is not chance.
        tf[f] = np.log2(np.maximum(c - 1.0, 1.0) / pop)
        m_tf[f] = model.m[f]["exact"]
    return _Weights(table=table, tf=tf, m_tf=m_tf, u=us)


def _score(levels: dict[str, np.ndarray], wt: _Weights, i: np.ndarray) -> np.ndarray:
    total = np.zeros(len(i), dtype=np.float64)
    for f in FIELDS:
        w = wt.table[f][levels[f]]
        if f in _TF_LEVEL:
            hit = levels[f] == _TF_LEVEL[f]
            w = np.where(hit, np.log2(wt.m_tf[f]) - wt.tf[f][i], w)
        total += w
    return total

