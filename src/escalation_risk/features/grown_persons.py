"""The persons of a grown history index: new person records appended to a built
:class:`~.index.HistoryIndex` by :mod:`.index_append` (``Scorer.add``), linked against the
district's people incrementally, without copying the district's person arrays. Split from
:mod:`.index_append`."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pandas as pd

from ..capacity import grow
from ..linking import DEFAULT_MODEL
from ..linking.incremental import Frozen, LinkState, link_new
from ..linking.linker import _link
from .delta import Stacked
from .id_index import IdIndex, positions_or_new
from .index import HistoryIndex

PARTS = 64  # small Series appended to a _Joined before they are joined among themselves


class _Joined:
    """A Series attribute kept as the built Series plus the small ones appended since, joined
    on its first read (then kept joined): appending a person record to a district's
    ``person_key`` copied its million ids and keys (~12 ms per Series at a million records),
    for a Series only a rebuild or ``Scorer.history`` reads. Stored in the instance as one
    tuple ``(base, parts)``, replaced whole, so a reader joining it never sees half an update."""

    def __init__(self, name: str):
        self.name, self.slot = name, f"_joined_{name}"

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        base, parts = obj.__dict__[self.slot]
        if not parts:
            return base
        joined = pd.concat([base, *parts])
        obj.__dict__[self.slot] = (joined, ())
        return joined

    def __set__(self, obj, value: pd.Series) -> None:
        obj.__dict__[self.slot] = (value, ())

    def parts(self, obj) -> tuple[pd.Series, tuple[pd.Series, ...]]:
        """(the joined part, the parts appended since), without joining them."""
        return obj.__dict__[self.slot]

    def append(self, obj, part: pd.Series) -> None:
        base, parts = obj.__dict__[self.slot]
        parts = (*parts, part)
        if len(parts) > PARTS:  # the parts joined among themselves: a few hundred rows, not the district
            parts = (pd.concat(parts),)
        obj.__dict__[self.slot] = (base, parts)


class GrownIndex(HistoryIndex):
    """A :class:`HistoryIndex` that person records were appended to: the same parts, but its
    ``person_key`` and ``pid_to_int`` join the persons added since on first read."""

    person_key = _Joined("person_key")
    pid_to_int = _Joined("pid_to_int")


def _grown(idx: HistoryIndex) -> GrownIndex:
    """A shallow copy of ``idx`` as a :class:`GrownIndex` (the same arrays, nothing copied)."""
    out = copy.copy(idx)
    if not isinstance(out, GrownIndex):
        d = out.__dict__
        out.__class__ = GrownIndex
        for name in ("person_key", "pid_to_int"):
            d[f"_joined_{name}"] = (d.pop(name), ())
    assert isinstance(out, GrownIndex)
    return out


def _keys_at(idx: HistoryIndex, at: np.ndarray) -> np.ndarray:
    """``idx.person_key``'s values at positions ``at`` (of ``idx._pid_index``), without joining
    the keys appended since into one district-sized Series."""
    if not isinstance(idx, GrownIndex):
        return idx.person_key.to_numpy(dtype=object)[at]
    base, parts = GrownIndex.person_key.parts(idx)
    values = base.to_numpy(dtype=object)
    late = at >= len(base)
    if not late.any():
        return values[at]
    out = np.empty(len(at), dtype=object)
    out[~late] = values[at[~late]]
    out[late] = np.concatenate([p.to_numpy(dtype=object) for p in parts])[at[late] - len(base)]
    return out


#: A person's columns the index keeps, with their dtypes (not contract.ATTRIBUTES: those vary in time).
PERSON_COLUMNS = (("birth_year", "float64"), ("gender", object), ("hukou", object), ("employment", object))


def _first_present(rows: pd.DataFrame, person: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The persons of ``rows`` (``person``: each row's number) and, by attribute, each one's first
    non-null value across its rows in ``person_id`` order (pandas' ``sort_values("person_id")
    .groupby(...).first()``, in numpy: a few rows at a time, the group-by was most of the cost)."""
    order = np.argsort(rows["person_id"].to_numpy(dtype=object), kind="stable")
    person = person[order]
    persons = np.unique(person)
    out = {}
    for col, dtype in PERSON_COLUMNS:
        vals = rows[col].to_numpy(dtype=dtype, na_value=np.nan)[order]
        present = ~pd.isna(vals)
        first = np.full(len(persons), np.nan, dtype=dtype)
        who, at = np.unique(person[present], return_index=True)
        first[np.searchsorted(persons, who)] = vals[present][at]
        out[col] = first
    return persons, out


def _set_attributes(out: HistoryIndex, idx: HistoryIndex, pos: np.ndarray, attrs: dict[str, np.ndarray],
                    n_new: int) -> None:
    """The canonical persons' attributes (``attrs`` of persons ``pos``) written into ``idx``'s
    arrays grown by ``n_new`` new persons: through spare capacity, so the district's arrays
    are not copied, unless a known person's value changes (a new record's non-null value
    comes first), when the array is copied: never written where ``idx`` can see it."""
    for col, dtype in PERSON_COLUMNS:
        old = getattr(idx, col)
        arr = grow(old, np.full(n_new, np.nan if dtype == "float64" else None, dtype=dtype))
        vals = attrs[col]
        known = pos < len(old)
        was, now = old[pos[known]], vals[known]
        same = (was == now) | (pd.isna(was) & pd.isna(now))
        write = ~known
        write[known] = ~same
        if write.any():
            if not same.all() or not arr.flags.writeable:  # (a built or mapped array may be read-only)
                arr = arr.copy()
            arr[pos[write]] = vals[write]
        setattr(out, col, arr)


LINKAGE = "linkage"  # the append cache's linkage state (linking.incremental.LinkState)
log = logging.getLogger(__name__)


def link_state(idx: HistoryIndex, history: Stacked) -> LinkState:
    """The linkage state of ``idx``'s persons (built once per index, then grown by each add):
    their keys sorted by blocking rule, and the parameters of the linkage that made
    ``idx.person_key``, frozen (re-estimated here only when the key came without them)."""
    state = idx.append_cache.get(LINKAGE)
    if state is not None:
        return state
    n = len(idx.person_key)
    persons = history.base.persons if len(history.base.persons) == n else history.rows("persons", np.arange(n))
    res = history.base.cache.get("linkage")
    if res is None or res.weights is None or res.key is not idx.person_key:
        why = "no linkage cached" if res is None else "no weights" if res.weights is None else "another key"
        res = _link(persons, None, DEFAULT_MODEL)  # a key made elsewhere: the district's own parameters
        # The fresh parameters may split groups the key holds: each add touching one then
        # finds a known key changed and re-builds. Counts only, never a value.
        kc = pd.factorize(idx.person_key.to_numpy(dtype=object))[0]
        fc = pd.factorize(res.key.reindex(idx.person_key.index).to_numpy(dtype=object))[0]
        split = int((pd.DataFrame({"k": kc, "f": fc}).groupby("k")["f"].nunique() > 1).sum())
        log.warning("linkage state: the index's person key came without its linkage (%s); re-linked "
                    "%d records with fresh parameters, which split %d of the key's %d groups (adds "
                    "touching them re-build the index)", why, n, split, int(kc.max()) + 1 if n else 0)
    state = LinkState.build(persons, idx.person_key, Frozen.of(res, n))
    idx.append_cache[LINKAGE] = state
    return state


def append_persons(out: GrownIndex, idx: HistoryIndex, history: Stacked, persons: pd.DataFrame) -> bool:
    """Link the validated new ``persons`` rows (at the end of ``history``) against ``idx``'s
    people and write them into ``out`` (a grown copy of ``idx``): their keys, canonical
    numbers, the linkage state and the attributes of the persons they belong to. False when
    a new record links two people ``idx`` holds apart (or splits one): their histories
    merge, the index is re-built."""
    # New records linked against the kept linkage state: their own keys and blocks only,
    # the district's linkage parameters frozen (linking.incremental).
    linked = link_new(link_state(idx, history), persons)
    if linked.keys is None:
        return False
    new_pids = linked.keys.index.to_numpy(dtype=object)
    new_keys = linked.keys.to_numpy(dtype=object)
    codes, out.persons = positions_or_new(idx.persons, new_keys)
    GrownIndex.person_key.append(out, linked.keys)
    GrownIndex.pid_to_int.append(out, pd.Series(codes, index=pd.Index(new_pids, name="person_id")))
    out._pid_index = IdIndex.of(idx._pid_index).append(new_pids)
    out._pid_codes = grow(idx._pid_codes, codes)
    out.append_cache = {**idx.append_cache, LINKAGE: linked.state}
    # Attributes of the canonical persons with a new record: the first non-null across their
    # records (the records of the groups joined: rows of the persons table, by position).
    p = history.rows("persons", linked.joined)
    pos, attrs = _first_present(p, out.codes_at(out._pid_index.get_indexer(p["person_id"].to_numpy(dtype=object))))
    _set_attributes(out, idx, pos, attrs, len(out.persons) - len(idx.persons))
    return True
