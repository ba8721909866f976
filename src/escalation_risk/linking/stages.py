"""The linkage in stages, for an engine that links a large province in parts (Spark).

:func:`~escalation_risk.linking.link_keys` runs every stage over one keys table in
memory. At 63 M records that table fits no machine, so :mod:`escalation_risk.spark`
runs the same stages apart, calling these functions (the rule stays here):

1. :func:`key_columns`: each record's keys as integer columns (per district);
2. :func:`block_keys`: each record's key under every blocking rule; records sharing a
   key are grouped by the engine, blocks over ``max_block`` skipped as here;
3. :func:`block_pairs` and :func:`compare`: the candidate pairs of a block and their
   agreement levels, and :func:`session_flags`, the training sessions they belong to;
4. parameters estimated once for the whole province: u from the province's seeded
   random pairs (:func:`random_pairs`, their levels counted, :func:`fit`), m by EM on
   the candidate pairs of each session (a seeded sample of at most ``em_sample`` each,
   as here) and the term frequencies of values counted province-wide (:func:`score`);
5. :func:`score`: each pair's weight and decision;
6. :func:`group_keys`: the groups of one connected component of accepted pairs (the
   chaining guard acts within a component), each named by its smallest id.

The engine gives each record the same position as ``link_keys`` would on the keys of
every district in district order, so u, the term frequencies and the threshold are
those of one ``link_keys`` over the province; m is learnt on the same pairs (summed in
another order, so equal to the last bits).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .blocking import _block_pairs, _block_rules
from .comparisons import _compare
from .groups import _groups, _named
from .keys import KEY_ARRAYS, _Keys, _keys
from .linker import _accept
from .model import _TF_LEVELS, ATTRIBUTE_FIELDS, FIELDS, ID_TRANSPOSED, LinkageModel
from .parameters import (
    SESSIONS,
    _level_counts,
    _random_pairs,
    _score,
    _sessions,
    _tf_log_u,
    _Weights,
    _weights,
    parameters_table,
)

#: The integer key columns of a record (:func:`key_columns`).
KEY_FIELDS = tuple(f for f in KEY_ARRAYS if f != "pid")
#: The training sessions (blocking rules whose pairs train m).
SESSION_RULES = tuple(SESSIONS)
_DTYPES = {"kind": np.int8, "year": np.int16, "sex": np.int8, "hukou": np.int8, "employment": np.int8}


def key_columns(keys: pd.DataFrame, attributes: bool = False) -> pd.DataFrame:
    """A keys table (``person_id``, ``birth_year``, ``gender``, ``lk_*``) as integer key
    columns (:data:`KEY_FIELDS`), one row per record in its order; ``hukou`` and
    ``employment`` coded only with ``attributes`` (a model comparing them), else zero."""
    k = _keys(keys.reset_index(drop=True), attributes)
    return pd.DataFrame({f: getattr(k, f) for f in KEY_FIELDS})


def keys_of(columns: pd.DataFrame, ids: np.ndarray | None = None) -> _Keys:
    """The linkage's keys from :func:`key_columns` (``ids``: the records' ids, when needed)."""
    n = len(columns)
    arrays = {f: columns[f].to_numpy(dtype=_DTYPES.get(f, np.int64)) for f in KEY_FIELDS}
    read = any(bool(arrays[f].any()) for f in ATTRIBUTE_FIELDS)  # zero unless key_columns read them
    return _Keys(pid=np.arange(n).astype(object) if ids is None else np.asarray(ids, dtype=object), **arrays,
                 attributes=read)


def rules() -> list[str]:
    """The blocking rules' names, in the order a pair is attributed to the first proposing it."""
    return [name for name, _ in _block_rules(keys_of(pd.DataFrame({f: [] for f in KEY_FIELDS})))]


def block_keys(k: _Keys) -> dict[str, np.ndarray]:
    """Each record's key under each blocking rule (0: the record is in no block of it)."""
    return dict(_block_rules(k))


def block_pairs(key: np.ndarray, model: LinkageModel) -> tuple[np.ndarray, np.ndarray, int]:
    """The candidate pairs (positions) of records sharing a key, and how many blocks were
    over ``model.max_block`` (skipped, as :func:`link_keys` skips them)."""
    i, j, _, n_big = _block_pairs(key, model.max_block)
    return i, j, n_big


def compare(k: _Keys, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Agreement levels of the pairs (i, j), every field (graph levels missing)."""
    return _compare(k, i, j, graph=False)


def session_flags(k: _Keys, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Per training session, whether each pair belongs to it (its rule's key agrees)."""
    out = {}
    for name, rows in _sessions(block_keys(k), i, j).items():
        flag = np.zeros(len(i), dtype=bool)
        flag[rows] = True
        out[name] = flag
    return out


def random_pairs(n: int, model: LinkageModel) -> tuple[np.ndarray, np.ndarray]:
    """The seeded random pairs (positions among ``n`` records) that u is counted on."""
    return _random_pairs(n, model.u_sample, model.seed)


def level_counts(levels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """How many pairs show each level of each field: all u needs of the random pairs."""
    return _level_counts(levels)


def fit(u_counts: dict[str, np.ndarray], levels: dict[str, np.ndarray], sessions: dict[str, np.ndarray],
        model: LinkageModel) -> _Weights:
    """The weights: u from the random pairs' :func:`level_counts`, m by EM on the
    candidate pairs' ``levels`` (``sessions``: each session's rows of them). Term
    frequencies are applied per pair by :func:`score`."""
    return _weights(u_counts, levels, sessions, {}, model)


def score(levels: dict[str, np.ndarray], wt: _Weights, counts: dict[str, np.ndarray], n: int,
          model: LinkageModel) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's summed weight and whether it is accepted, in a province of ``n`` records.

    ``counts``: per :data:`TF_FIELDS` name, how many records of the province hold the
    first record's value (the two agree on it where its level is term-frequency adjusted)."""
    m = len(levels[FIELDS[0]])
    needed = set(_TF_LEVELS.values())
    tf = {f: _tf_log_u(np.asarray(counts[f], dtype=float), n, model) for f in needed}
    weight = _score(levels, dataclasses.replace(wt, tf=tf), np.arange(m))
    return weight, _accept(levels, weight, model.weight_threshold(n))


def group_keys(k: _Keys, i: np.ndarray, j: np.ndarray, weight: np.ndarray, id_level: np.ndarray,
               model: LinkageModel) -> np.ndarray:
    """The key of every record of ``k`` (records joined by accepted pairs (i, j) with their
    ``weight`` and id_number level): groups under the chaining guard, each named by its
    smallest id (``k.pid``)."""
    comp, _, _ = _groups(k, i, j, weight, id_level == ID_TRANSPOSED, model)
    return _named(k.pid, comp)


def parameters(wt: _Weights, model: LinkageModel) -> pd.DataFrame:
    """The trained parameters (levels, m, u, weights) of the fields ``model`` weighs without
    graph evidence, as :func:`~escalation_risk.linking.linkage_parameters`."""
    return parameters_table(wt, model.applied(False))
