"""Timelines: events sorted by (entity, availability time), asked about windows of time.

An event's key packs its entity and its time (int64 seconds) into one sortable int64,
so "the events of this entity with lo < time <= hi" is two binary searches, for one
point or for 200,000 at once. The history index (:mod:`.index`) is built of these; a
grown index keeps some as a base plus a small delta (:mod:`.delta`). Split from
:mod:`.index`.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
from numpy.lib.mixins import NDArrayOperatorsMixin

# Times are int64 seconds; an event key packs (entity, time) into one sortable int64.
OFF = np.int64(1 << 33)          # times live in [-OFF, OFF): years 1697..2242
_TIME_BITS = 34  # a key is entity * SHIFT + (time + OFF)
SHIFT = np.int64(1 << _TIME_BITS)
ALWAYS = -OFF + 1                # a missing start: known since before the data
NEVER = OFF - 1                  # a missing end: not ended
DAY = np.int64(86400)


def to_secs(values, missing: int) -> np.ndarray:
    """Timestamps as int64 seconds; NaT becomes ``missing`` (ALWAYS or NEVER)."""
    if isinstance(values, (pd.Series, np.ndarray)) and values.dtype.kind == "M":  # already naive datetimes
        a = np.asarray(values.to_numpy(dtype="datetime64[s]") if isinstance(values, pd.Series)
                       else values.astype("datetime64[s]"))
    else:
        a = np.asarray(pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[s]"))
    out = a.astype(np.int64)
    out[np.isnat(a)] = missing
    return out


def group_starts(ordered: np.ndarray) -> np.ndarray:
    """The positions in sorted ``ordered`` where each run of equal values begins."""
    if not len(ordered):
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])


def sorted_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, starts)``: the stable order that sorts ``keys``, and where in that order
    each distinct key's group begins, so ``order[starts]`` is each key's first row and
    ``np.minimum.reduceat(v[order], starts)`` a per-key minimum (a group-by without pandas)."""
    order = np.argsort(keys, kind="stable")
    return order, group_starts(keys[order])


def unique_keys(k: np.ndarray) -> np.ndarray:
    """Distinct int64 keys, sorted: sort and compare, much faster than np.unique at scale.
    (A plain sort, not :func:`sorted_groups`' stable argsort: ~12x faster on int64 keys.)"""
    k = np.sort(np.asarray(k, dtype=np.int64))
    return k[group_starts(k)]


def ragged(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand ranges [start, stop) into (owner, position) pairs, without a Python loop."""
    lens = np.maximum(stop - start, 0)
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(start)), lens)
    if total == 0:
        return owner, np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lens) - lens
    pos = np.arange(total) - np.repeat(offsets, lens) + np.repeat(start, lens)
    return owner, pos


def join_on(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (i, j) with ``left[i] == right[j]``, in an inner merge's order (left rows in
    order, each with its matches in right's order): a merge without pandas' fixed cost,
    which dominated indexing the few incidents of an add."""
    order = np.argsort(right, kind="stable")
    rs = np.asarray(right)[order]
    li, pos = ragged(np.searchsorted(rs, left, side="left"), np.searchsorted(rs, left, side="right"))
    return li, order[pos]


def _search(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """searchsorted(side="right") with the queries sorted first: in key order the binary
    searches walk memory in order (20x faster for millions of unsorted queries). Equal
    queries get equal answers, so the sort need not be stable."""
    if len(queries) < 1024:
        return np.searchsorted(keys, queries, side="right")
    order = np.argsort(queries)
    out = np.empty(len(queries), dtype=np.int64)
    out[order] = np.searchsorted(keys, queries[order], side="right")
    return out


def _search_both(keys: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_search` of two query arrays of one entity each row (a window's two ends),
    sorted once: the order of ``hi`` is nearly the order of ``lo`` (the same entity first),
    and the answers never depend on the order the queries are asked in."""
    if len(hi) < 1024:
        return np.searchsorted(keys, lo, side="right"), np.searchsorted(keys, hi, side="right")
    order = np.argsort(hi)
    start = np.empty(len(lo), dtype=np.int64)
    stop = np.empty(len(hi), dtype=np.int64)
    start[order] = np.searchsorted(keys, lo[order], side="right")
    stop[order] = np.searchsorted(keys, hi[order], side="right")
    return start, stop


class Windows:
    """Window questions over events sorted by key (entity, time): a Timeline's, or a grown
    timeline's in its merged order (:class:`.delta.DeltaTimeline`), through ``_rank``."""

    def _rank(self, q: np.ndarray) -> np.ndarray:
        """Events with key <= q (searchsorted side='right')."""
        raise NotImplementedError

    def _ranks(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_rank`` of a window's two ends."""
        return self._rank(lo), self._rank(hi)

    def _k(self, ent, t) -> np.ndarray:
        return np.asarray(ent, np.int64) * SHIFT + (np.asarray(t, np.int64) + OFF)

    def bounds(self, ent, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """Positions [start, stop) of the events of ``ent`` with lo < time <= hi
        (``lo=None``: the whole history up to hi)."""
        start, stop = self._ranks(self._k(ent, -OFF if lo is None else lo), self._k(ent, hi))
        return start, np.maximum(stop, start)

    def count(self, ent, lo, hi) -> np.ndarray:
        """Number of events of ``ent`` with lo < time <= hi (``lo=None``: since always)."""
        start, stop = self.bounds(ent, lo, hi)
        return stop - start

    def expand(self, ent, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """(query row, event position) for every event of each query in its window."""
        return ragged(*self.bounds(ent, lo, hi))


class KeyPart(NDArrayOperatorsMixin):
    """A timeline's entity or time column read from its keys, which pack both (not stored:
    at a million people the two columns held ~0.5 GB). Indexed like the array it stands
    for (only the positions asked are decoded); anything else an array does, it does on
    the whole column, decoded then."""

    __slots__ = ("_key", "_part")
    dtype = np.dtype(np.int64)
    ndim = 1

    def __init__(self, key: np.ndarray, part: str) -> None:
        self._key, self._part = key, part

    def _decode(self, k):
        return k >> _TIME_BITS if self._part == "ent" else (k & _TIME_MASK) - OFF

    def __len__(self) -> int:
        return len(self._key)

    @property
    def shape(self) -> tuple[int]:
        return (len(self._key),)

    def __getitem__(self, pos):
        return self._decode(self._key[pos])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._decode(self._key)
        return out if dtype is None else out.astype(dtype)

    def __iter__(self):
        return iter(np.asarray(self))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(np.asarray(x) if isinstance(x, KeyPart) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getattr__(self, name: str):
        # Its own slots are never looked up here unless unset (a half-made copy): no recursion.
        if name.startswith("__") or name in ("_key", "_part"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)


_TIME_MASK = SHIFT - 1


class Timeline(Windows):
    """Events sorted by (entity, time), with payload columns in the same order.

    Built by :meth:`build`, the entity and time columns are read from the keys
    (:class:`KeyPart`) when every time is in the keys' range [-OFF, OFF); given (a
    timeline assembled from parts) or out of range, they are stored as given."""

    def __init__(self, key: np.ndarray, t=None, ent=None, payload: dict[str, np.ndarray] | None = None) -> None:
        self.key = key
        # (a KeyPart reads as the array it stands for, as a TextColumn does)
        self.t: np.ndarray = t if t is not None else cast(np.ndarray, KeyPart(key, "t"))
        self.ent: np.ndarray = ent if ent is not None else cast(np.ndarray, KeyPart(key, "ent"))
        self.payload: dict[str, np.ndarray] = payload if payload is not None else {}

    def __repr__(self) -> str:
        return f"Timeline({len(self)} events, payload {list(self.payload)})"

    @classmethod
    def build(cls, ent, t, **payload) -> Timeline:
        ent = np.asarray(ent, dtype=np.int64)
        t = np.asarray(t, dtype=np.int64)
        ok = ent >= 0
        ent, t = ent[ok], t[ok]
        key = ent * SHIFT + (t + OFF)
        order = np.argsort(key, kind="stable")
        pay = {k: np.asarray(v)[ok][order] for k, v in payload.items()}
        if len(t) and (t.min() < -OFF or t.max() >= OFF):  # not in the keys' range: kept as they are
            return cls(key=key[order], t=t[order], ent=ent[order], payload=pay)
        del ent, t
        return cls(key=key[order], payload=pay)

    def __len__(self) -> int:
        return len(self.key)

    def _rank(self, q: np.ndarray) -> np.ndarray:
        return _search(self.key, q)

    def _ranks(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.broadcast_arrays(lo, hi)
        return _search_both(self.key, lo, hi)

    def merge(self, other: Timeline) -> Timeline:
        """This timeline with ``other``'s events added (for appending new records)."""
        return Timeline.build(np.concatenate([self.ent, other.ent]), np.concatenate([self.t, other.t]),
                              **{k: np.concatenate([v, other.payload[k]]) for k, v in self.payload.items()})
