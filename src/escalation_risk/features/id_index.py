"""Id indexes of the history index that grow without re-hashing, and positions of ids in
them. Split from :mod:`.index`."""

from __future__ import annotations

import numpy as np
import pandas as pd


class IdIndex:
    """A unique id index that grows without re-hashing: a pandas Index, hashed once, and the
    ids appended since, in a dict. A new pandas Index costs a hash of every id on its first
    look-up (half a second at two million incidents), which would make each ``Scorer.add``
    cost the district. The appended part is folded into a new Index once it passes an
    eighth of the whole, so each id is hashed O(1) times on average."""

    def __init__(self, base: pd.Index, extra: dict | None = None):
        self.base = base
        self.extra: dict = extra or {}
        self._int = base.dtype.kind in "iu"

    @classmethod
    def of(cls, index: pd.Index | IdIndex) -> IdIndex:
        return index if isinstance(index, IdIndex) else cls(index)

    def _key(self, x):
        return int(x) if self._int else x

    def __len__(self) -> int:
        return len(self.base) + len(self.extra)

    def __contains__(self, x) -> bool:
        return self._key(x) in self.extra or x in self.base

    def get_loc(self, x) -> int:
        p = self.extra.get(self._key(x))
        return int(p) if p is not None else int(self.base.get_loc(x))

    def get_indexer(self, ids) -> np.ndarray:
        if not self._int:
            # A missing id is nowhere; asking pandas for None costs a pass over the index.
            ids = np.asarray(ids, dtype=object)
            given = ~pd.isna(ids)
            if not given.all():
                out = np.full(len(ids), -1, dtype=np.int64)
                out[given] = self.get_indexer(ids[given])
                return out
        out = np.asarray(self.base.get_indexer(ids), dtype=np.int64)
        if self.extra:
            miss = np.flatnonzero(out < 0)
            if len(miss):
                values = np.asarray(ids, dtype=np.int64 if self._int else object)[miss]
                out[miss] = [self.extra.get(self._key(v), -1) for v in values]
        return out

    def take(self, pos) -> np.ndarray:
        """The ids at positions ``pos`` (without materialising the whole index)."""
        pos = np.asarray(pos, dtype=np.int64)
        out = np.empty(len(pos), dtype=np.int64 if self._int else object)
        inb = pos < len(self.base)
        out[inb] = self.base.take(pos[inb]).to_numpy()
        if (~inb).any():
            keys = list(self.extra)
            out[~inb] = [keys[p - len(self.base)] for p in pos[~inb]]
        return out

    def to_numpy(self) -> np.ndarray:
        extra = np.array(list(self.extra), dtype=np.int64 if self._int else object)
        return np.concatenate([self.base.to_numpy(dtype=np.int64 if self._int else object), extra])

    def append(self, ids) -> IdIndex:
        """A new IdIndex with ``ids`` (not yet present) added at the end; this one is unchanged."""
        ids = [self._key(v) for v in np.asarray(ids, dtype=np.int64 if self._int else object)]
        if len(self.extra) + len(ids) > max(4096, len(self.base) // 8):
            values = np.concatenate([self.to_numpy(), np.array(ids, dtype=np.int64 if self._int else object)])
            return IdIndex(pd.Index(values))
        extra = dict(self.extra)
        n = len(self)
        for i, v in enumerate(ids):
            extra[v] = n + i
        return IdIndex(self.base, extra)


def positions(index: pd.Index | IdIndex, ids) -> np.ndarray:
    """Positions of ``ids`` in a unique ``index`` (-1 when absent or missing). A handful of
    ids go through the index's hash table one by one: ``get_indexer`` costs ~50 us a call."""
    if isinstance(ids, np.ndarray) and ids.dtype.kind == "i":  # int64 keys (pairs, memberships)
        if len(ids) > 16:
            return index.get_indexer(ids)
        return np.array([index.get_loc(x) if x in index else -1 for x in ids.tolist()], dtype=np.int64)
    ids = ids.to_numpy(dtype=object) if isinstance(ids, pd.Series) else np.asarray(ids, dtype=object)
    if len(ids) > 16:
        return index.get_indexer(ids)
    out = np.full(len(ids), -1, dtype=np.int64)
    for i, x in enumerate(ids):
        if not (x is None or x is pd.NA or (isinstance(x, float) and x != x)) and x in index:
            out[i] = index.get_loc(x)
    return out


def positions_or_new(index: pd.Index | IdIndex, ids: np.ndarray) -> tuple[np.ndarray, IdIndex]:
    """Positions of ``ids`` in ``index``, appending the ones it lacks (in order of first
    appearance): (positions, the grown index)."""
    grown = IdIndex.of(index)
    if not len(ids):
        return np.zeros(0, np.int64), grown
    pos = grown.get_indexer(ids)
    missing = pos < 0
    if missing.any():
        new = pd.unique(np.asarray(ids)[missing])
        grown = grown.append(new)
        pos[missing] = len(grown) - len(new) + pd.Index(new).get_indexer(np.asarray(ids)[missing])
    return pos, grown
