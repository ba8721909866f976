"""The keys table as arrays: one int64 key per identifier part, 0 where missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..normalize import ID_NONE, ID_OTHER
from .evidence import GraphEvidence
from .model import COMPARED_VALUES


@dataclass
class _Keys:
    pid: np.ndarray
    idn: np.ndarray
    region: np.ndarray
    date: np.ndarray
    seq: np.ndarray
    swap_even: np.ndarray
    swap_odd: np.ndarray
    kind: np.ndarray
    year: np.ndarray
    sex: np.ndarray
    name: np.ndarray
    pinyin: np.ndarray
    fuzzy: np.ndarray
    shape: np.ndarray
    phone: np.ndarray
    hukou: np.ndarray
    employment: np.ndarray
    graph: GraphEvidence | None = None
    # Whether hukou and employment were read (a model comparing them): else both are zero and
    # no pair's attribute level is computed.
    attributes: bool = False

    @property
    def n(self) -> int:
        return len(self.pid)


#: The per-record arrays of :class:`_Keys` (its fields less the graph evidence and the flag).
KEY_ARRAYS = tuple(f for f in _Keys.__dataclass_fields__ if f not in ("graph", "attributes"))
#: The term-frequency values: the name in the weights' ``tf`` -> the key array.
TF_FIELDS = {"id_number": "idn", "name": "name", "pinyin": "pinyin", "fuzzy": "fuzzy", "phone": "phone"}


def _term_counts(values: np.ndarray, out: np.ndarray | None = None, order: np.ndarray | None = None,
                 sizes: np.ndarray | None = None) -> np.ndarray:
    """How many records hold each record's value (its term frequency, the record itself
    counted), written into ``out`` (default: 1.0 each) where the value is present (not 0);
    the others are left as they are. ``order`` and ``sizes``: the records with a value
    sorted by it and the lengths of its runs of equal values, when a sort has made them
    (the blocking's): the counts are then read from them, not counted again."""
    out = np.ones(len(values)) if out is None else out
    if order is None:
        present = values != 0
        codes = pd.factorize(values[present])[0]
        out[present] = np.bincount(codes)[codes]
    else:
        assert sizes is not None
        out[order] = np.repeat(sizes, sizes)
    return out


def _str_hash(s: pd.Series) -> np.ndarray:
    """int64 hashes of (already pseudonymised) strings, 0 for missing: for tables without lk_ keys."""
    obj = s.astype(object)
    miss = obj.isna().to_numpy()
    h = pd.util.hash_array(obj.where(~miss, "").to_numpy(dtype=object)).view(np.int64).copy()
    h[h == 0] = 1
    h[miss] = 0
    return h


def _coded(persons: pd.DataFrame, col: str, read: bool) -> np.ndarray:
    """The value of attribute ``col`` as 1 + its position in :data:`COMPARED_VALUES` (int8); 0
    where missing, ``unknown``, outside the codes, or not ``read`` (the model does not compare it)."""
    codes = COMPARED_VALUES[col]
    n = len(persons)
    if not read or col not in persons.columns:
        return np.zeros(n, dtype=np.int8)
    v = persons[col]
    if not isinstance(v.dtype, pd.CategoricalDtype):
        v = v.astype("category")
    table = np.array([codes.index(c) + 1 if c in codes else 0 for c in v.cat.categories] + [0],
                     dtype=np.int8)
    return table[v.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry


def _keys(persons: pd.DataFrame, attributes: bool = False, pid: np.ndarray | None = None) -> _Keys:
    """The keys of the records of ``persons``; their hukou and employment only with
    ``attributes`` (a model comparing them), else missing. ``pid``: the records' ids as an
    object array already made (the graph evidence's), else made from ``person_id``."""
    n = len(persons)
    zero = np.zeros(n, dtype=np.int64)

    def num(col: str, fallback: np.ndarray | Callable[[], np.ndarray], dtype: Any = np.int64) -> np.ndarray:
        if col in persons.columns:
            return persons[col].to_numpy(dtype=dtype, na_value=0)
        return (fallback() if callable(fallback) else fallback).astype(dtype)

    def hashed(col: str) -> Callable[[], np.ndarray]:
        # Only without the lk_ key: hashing a million strings holds the GIL for seconds.
        return lambda: _str_hash(persons[col]) if col in persons else zero

    has_lk = "lk_id" in persons.columns
    idn = num("lk_id", hashed("id_number"))
    name = num("lk_name", hashed("name"))
    phone = num("lk_phone", hashed("phone"))
    # Without lk_ keys nothing is known of an id's form: any two different ids conflict.
    kind = num("lk_id_kind", np.where(idn != 0, ID_OTHER, ID_NONE), np.int8) if has_lk else \
        np.where(idn != 0, ID_OTHER, ID_NONE).astype(np.int8)
    id_year = num("lk_id_year", zero, np.int16)
    by = persons["birth_year"].to_numpy(dtype=float, na_value=np.nan) if "birth_year" in persons else \
        np.full(n, np.nan)
    year = np.where(np.isnan(by), id_year, np.nan_to_num(by)).astype(np.int16)
    id_sex = num("lk_id_sex", np.full(n, -1), np.int8)
    if "gender" in persons.columns:
        g = persons["gender"]
        if not isinstance(g.dtype, pd.CategoricalDtype):
            g = g.astype("category")
        code = np.array([1 if c == "male" else 0 if c == "female" else -1 for c in g.cat.categories] + [-1],
                        dtype=np.int8)[g.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
        sex = np.where(code >= 0, code, id_sex).astype(np.int8)
    else:
        sex = id_sex
    return _Keys(
        pid=persons["person_id"].to_numpy(dtype=object) if pid is None else pid, idn=idn,
        region=num("lk_id_region", zero),
        date=num("lk_id_date", zero), seq=num("lk_id_seq", zero), swap_even=num("lk_id_swap_even", zero),
        swap_odd=num("lk_id_swap_odd", zero), kind=kind,
        year=year, sex=sex, name=name, pinyin=num("lk_pinyin", name), fuzzy=num("lk_fuzzy", name),
        shape=num("lk_shape", name), phone=phone,
        hukou=_coded(persons, "hukou", attributes), employment=_coded(persons, "employment", attributes),
        attributes=attributes,
    )

