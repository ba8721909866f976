"""A base plus a small delta: what lets ``Scorer.add`` cost the rows it adds, not the district.

A grown index must answer exactly as an index built from scratch, yet copying a
district's timelines on every add (``np.insert`` into arrays of millions of events)
makes one add cost seconds at a million people. Two structures avoid the copy:

- :class:`DeltaTimeline` is a :class:`~.index.Timeline` seen as its *base* (the big,
  immutable, sorted arrays), minus the base events *dropped* since (sorted positions),
  plus a small sorted *delta*. It answers ``bounds``/``count``/``expand`` and indexes its
  ``key``/``t``/``ent``/``payload`` arrays by positions of the *merged* order, the order
  the materialised timeline would have, so feature code reads it as a plain Timeline.
  An edit merges the new events into the delta (binary searches of the few new ones,
  each delta event keeping its rank in the base: nothing is sorted, and the base is not
  searched again); once the delta passes :func:`delta_limit` the
  timeline is :meth:`~DeltaTimeline.compact`-ed into a new plain base: by the edit
  itself, or (``fold=False``, as ``Scorer`` does) later, on a snapshot, off the add's path.
- :class:`Stacked` is the history itself as the loaded tables plus the rows added
  since, read by position.
- :func:`~escalation_risk.capacity.grow` appends to an array through spare capacity at the
  end of its buffer (doubling when full): the old view is untouched, so a reader holding the old index
  keeps its own consistent arrays, and an add copies only its own rows.

Both are immutable from a reader's point of view: an edit returns a new object, and
the state is swapped whole (``Scorer``), so a call sees the history before an add or
after it, never a mix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import TABLES
from ..dataset import Dataset
from ..quiet_lock import QuietLock
from .timeline import OFF, Timeline, Windows, _search, ragged

MIN_DELTA = 4096


def delta_limit(n_base: int) -> int:
    """Events a delta may hold before it is merged into the base: a sixteenth of the base
    (at least MIN_DELTA), so the merges cost O(1) per event added, amortised."""
    return max(MIN_DELTA, n_base // 16)


class _Merged:
    """One array of a DeltaTimeline, indexed by merged positions (read-only)."""

    __slots__ = ("_tl", "_base", "_delta")

    def __init__(self, tl: DeltaTimeline, base: np.ndarray, delta: np.ndarray):
        self._tl, self._base, self._delta = tl, base, delta

    def __len__(self) -> int:
        return len(self._tl)

    @property
    def dtype(self):
        return self._base.dtype

    def __getitem__(self, pos):
        scalar = np.isscalar(pos)
        pos = np.atleast_1d(np.asarray(pos))
        if pos.dtype == bool:
            pos = np.flatnonzero(pos)
        elif pos.dtype.kind not in "iu":
            raise TypeError("a delta timeline's arrays are indexed by positions")
        is_delta, where = self._tl._locate(pos.astype(np.int64, copy=False))
        out = np.empty(len(pos), dtype=np.result_type(self._base.dtype, self._delta.dtype))
        out[~is_delta] = self._base[where[~is_delta]]
        out[is_delta] = self._delta[where[is_delta]]
        return out[0] if scalar else out

    def __array__(self, dtype=None, copy=None):
        a = self[np.arange(len(self))]
        return a if dtype is None else a.astype(dtype)


class DeltaTimeline(Windows):
    """A Timeline as base - dropped + delta (see the module notes). Build with :meth:`of`."""

    def __init__(self, base: Timeline, dropped: np.ndarray, delta: Timeline, below: np.ndarray | None = None):
        self.base, self.dropped, self.delta = base, dropped, delta
        # Base events before each delta event (kept from edit to edit: binary searches in a
        # base of millions miss the cache, so each delta event is searched for once);
        # alive base events before it; its merged position.
        if below is None:
            below = np.searchsorted(base.key, delta.key, side="right")
        self._below = below
        self._d_alive = below - np.searchsorted(dropped, below, side="left")
        self._d_merged = self._d_alive + np.arange(len(delta))
        self._shift = dropped - np.arange(len(dropped))
        self.key = _Merged(self, base.key, delta.key)
        self.t = _Merged(self, base.t, delta.t)
        self.ent = _Merged(self, base.ent, delta.ent)
        self.payload = {k: _Merged(self, v, delta.payload[k]) for k, v in base.payload.items()}

    @staticmethod
    def of(tl: Timeline | DeltaTimeline) -> DeltaTimeline:
        if isinstance(tl, DeltaTimeline):
            return tl
        return DeltaTimeline(tl, np.zeros(0, np.int64), _empty_like(tl))

    def __len__(self) -> int:
        return len(self.base) - len(self.dropped) + len(self.delta)

    def _locate(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Merged positions -> (is a delta event, position in the delta or the base)."""
        nd = np.searchsorted(self._d_merged, pos, side="left")
        is_delta = np.zeros(len(pos), bool)
        inside = nd < len(self._d_merged)
        is_delta[inside] = self._d_merged[nd[inside]] == pos[inside]
        alive = pos - nd
        base_pos = alive + np.searchsorted(self._shift, alive, side="right")
        return is_delta, np.where(is_delta, nd, base_pos)

    def _rank(self, q: np.ndarray) -> np.ndarray:
        """Events with key <= q in the merged order (searchsorted side='right')."""
        b = _search(self.base.key, q)
        if len(self.dropped):
            b = b - np.searchsorted(self.dropped, b, side="left")
        if len(self.delta):
            b = b + np.searchsorted(self.delta.key, q, side="right")
        return b

    def edit(self, base_drop: np.ndarray, delta_drop: np.ndarray | None, add: Timeline, *,
             fold: bool = True) -> Timeline | DeltaTimeline:
        """This timeline without the base events at ``base_drop`` (base positions) and the
        delta events flagged in ``delta_drop``, with ``add``'s events after any equal keys
        (as a stable build puts later rows). Compacted when the delta grows past its limit,
        unless ``fold`` is False (the caller folds later, e.g. in the background)."""
        if not len(base_drop) and (delta_drop is None or not delta_drop.any()) and not len(add):
            return self if len(self.delta) or len(self.dropped) else self.base
        dropped = self.dropped
        if len(base_drop):
            dropped = np.union1d(dropped, np.asarray(base_drop, np.int64))
        delta, below = self.delta, self._below
        if delta_drop is not None and delta_drop.any():
            keep = np.flatnonzero(~delta_drop)
            delta, below = _take(delta, keep), below[keep]
        if len(add):
            delta, below = _cat(delta, below, add, np.searchsorted(self.base.key, add.key, side="right"))
        out = DeltaTimeline(self.base, dropped, delta, below)
        if fold and out.over_limit():
            return out.compact()
        return out

    def over_limit(self) -> bool:
        """Whether the delta (events added and base events dropped) has passed its limit."""
        return len(self.delta) + len(self.dropped) > delta_limit(len(self.base))

    def compact(self) -> Timeline:
        """The materialised timeline (one copy of the base)."""
        keep = np.ones(len(self.base), bool)
        keep[self.dropped] = False
        at = self._d_alive

        def merge(b: np.ndarray, d: np.ndarray) -> np.ndarray:
            return np.insert(b[keep], at, d) if len(d) else b[keep]
        return Timeline(key=merge(self.base.key, self.delta.key), t=merge(self.base.t, self.delta.t),
                        ent=merge(self.base.ent, self.delta.ent),
                        payload={k: merge(v, self.delta.payload[k]) for k, v in self.base.payload.items()})


def _empty_like(tl: Timeline) -> Timeline:
    return Timeline(key=tl.key[:0].copy(), t=tl.t[:0].copy(), ent=tl.ent[:0].copy(),
                    payload={k: v[:0].copy() for k, v in tl.payload.items()})


def _take(tl: Timeline, pos: np.ndarray) -> Timeline:
    return Timeline(key=tl.key[pos], t=tl.t[pos], ent=tl.ent[pos], payload={k: v[pos] for k, v in tl.payload.items()})


def _cat(a: Timeline, a_below: np.ndarray, b: Timeline, b_below: np.ndarray) -> tuple[Timeline, np.ndarray]:
    """a and b's events sorted by key, a's before b's on equal keys (both sorted), with their
    ``below`` counts: a merge by binary searches of b's few events in a, no sort."""
    at = np.searchsorted(a.key, b.key, side="right") + np.arange(len(b))
    from_b = np.zeros(len(a) + len(b), bool)
    from_b[at] = True
    from_a = ~from_b

    def c(x: np.ndarray, y) -> np.ndarray:
        y = np.asarray(y) if x.dtype == object else np.asarray(y, dtype=x.dtype)
        out = np.empty(len(x) + len(y), dtype=np.result_type(x.dtype, y.dtype))
        out[from_a] = x
        out[at] = y
        return out
    return (Timeline(key=c(a.key, b.key), t=c(a.t, b.t), ent=c(a.ent, b.ent),
                     payload={k: c(v, b.payload[k]) for k, v in a.payload.items()}),
            c(a_below, b_below))


def entity_positions(tl: Timeline, values: np.ndarray) -> np.ndarray:
    """Base positions of the events of a plain timeline whose entity is in ``values``:
    two binary searches on the sorted key per entity."""
    values = np.unique(np.asarray(values, np.int64))
    if not len(values) or not len(tl):
        return np.zeros(0, np.int64)
    start = np.searchsorted(tl.key, tl._k(values, -OFF), side="right")
    stop = np.searchsorted(tl.key, tl._k(values, OFF - 1), side="right")
    return ragged(start, stop)[1]


class Stacked:
    """A history as the Dataset it was loaded as plus the rows added since, by table,
    read by position: an add appends its small frames (kept as chunks, joined every
    CHUNKS adds or when read) instead of copying the district's tables; :meth:`dataset`
    concatenates everything (once, when asked)."""

    CHUNKS = 32

    def __init__(self, base: Dataset, chunks: dict[str, list[pd.DataFrame]] | None = None):
        self.base = base
        self._chunks = {k: v for k, v in (chunks or {}).items() if v}
        self._n_added = {k: sum(len(c) for c in v) for k, v in self._chunks.items()}
        self._dataset: Dataset | None = None if self._chunks else base
        self._lock = QuietLock()  # a background job never yields to calls holding it
        self._empty: dict[str, pd.DataFrame] = {}

    def n(self, name: str) -> int:
        """Rows of table ``name``."""
        return len(getattr(self.base, name)) + self._n_added.get(name, 0)

    def n_added(self, name: str) -> int:
        """Rows of table ``name`` added since the base (not yet folded into it)."""
        return self._n_added.get(name, 0)

    def _added(self, name: str) -> pd.DataFrame:
        with self._lock:
            chunks = self._chunks[name]
            if len(chunks) > 1:
                chunks[:] = [pd.concat(chunks, ignore_index=True)]
            return chunks[0]

    def rows(self, name: str, pos) -> pd.DataFrame:
        """Rows at positions ``pos`` (in that order), with a fresh RangeIndex."""
        pos = np.asarray(pos, dtype=np.int64)
        base = getattr(self.base, name)
        if not len(pos):  # the typed empty table, taken once (iloc on a wide frame costs ~1 ms)
            if name not in self._empty:
                self._empty[name] = base.iloc[:0]
            return self._empty[name].copy(deep=False)
        nb = len(base)
        if name not in self._chunks or (pos < nb).all():
            return base.iloc[pos].reset_index(drop=True)
        last = self._chunks[name][-1]
        first = self.n(name) - len(last)
        if (pos >= first).all():  # the rows of the last add: from its own chunk, nothing joined
            return last.iloc[pos - first].reset_index(drop=True)
        inb = pos < nb
        if (pos[~inb] >= first).all():  # base rows and the last add's (a group a new record joins)
            extra, at = last, first
        else:
            extra, at = self._added(name), nb
        if not inb.any():
            return extra.iloc[pos - at].reset_index(drop=True)
        both = pd.concat([base.iloc[pos[inb]], extra.iloc[pos[~inb] - at]], ignore_index=True)
        if (np.diff(pos) >= 0).all():  # in order already: the base's rows come first
            return both
        order = np.concatenate([np.flatnonzero(inb), np.flatnonzero(~inb)])
        return both.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)

    def column(self, name: str, col: str, start: int, stop: int) -> np.ndarray:
        """Values of ``col`` in rows [start, stop), as objects."""
        base = getattr(self.base, name)
        nb = len(base)
        parts = []
        if start < nb:
            parts.append(base[col].iloc[start:min(stop, nb)].to_numpy(dtype=object))
        if stop > nb and name in self._chunks:
            last = self._chunks[name][-1]
            first = self.n(name) - len(last)  # the rows of the last add: read from its own chunk
            frame, at = (last, first) if start >= first else (self._added(name), nb)
            parts.append(frame[col].iloc[max(start - at, 0):stop - at].to_numpy(dtype=object))
        return np.concatenate(parts) if parts else np.array([], dtype=object)

    def plus(self, added: dict[str, pd.DataFrame]) -> Stacked:
        """A new Stacked with ``added`` (validated rows, by table) at the end. Never folds
        the rows into the base tables: :meth:`over_limit` says when to, :meth:`folded` does
        (the caller chooses when and on which thread)."""
        with self._lock:
            chunks = {k: list(v) for k, v in self._chunks.items()}
        for name, df in added.items():
            if len(df):
                chunks.setdefault(name, []).append(df)
                if len(chunks[name]) > self.CHUNKS:
                    chunks[name] = [pd.concat(chunks[name], ignore_index=True)]
        out = Stacked(self.base, chunks)
        out._empty = self._empty
        return out

    def over_limit(self) -> bool:
        """Whether the rows added since the base have passed a sixteenth of the district's
        incidents (at least MIN_DELTA): folding them then keeps reading cheap, amortised."""
        return sum(self._n_added.values()) > delta_limit(len(self.base.incidents))

    def folded(self) -> Stacked:
        """The same history with the added rows folded into new base tables (one copy of
        each table that has added rows; this Stacked is left as it is)."""
        if not self._chunks:
            return self
        ds = self._dataset or _concat(self.base, {name: self._added(name) for name in self._chunks})
        return Stacked(ds)

    def dataset(self) -> Dataset:
        """The whole history as one Dataset (concatenated on first use, then kept)."""
        if self._dataset is None:
            added = {name: self._added(name) for name in self._chunks}
            with self._lock:
                if self._dataset is None:
                    self._dataset = _concat(self.base, added)
        return self._dataset


def _concat(base: Dataset, added: dict[str, pd.DataFrame]) -> Dataset:
    return Dataset(**{name: pd.concat([getattr(base, name), added[name]], ignore_index=True)
                      if name in added else getattr(base, name) for name in TABLES},
                   source=base.source, rows_read=base.rows_read, key_fingerprint=base.key_fingerprint)
