"""A text column of the history index, kept as the loaded table's Arrow array and read by
position. Split from :mod:`.index`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..capacity import grow


class TextColumn:
    """A text column kept as the loaded table's Arrow array (shared with the Dataset, not
    copied), read by position: a million-person district's descriptions and notes as
    Python strings took ~370 MB more. Indexing with positions gives an object array, as
    the numpy array it replaces did (missing values as the column's own missing value);
    ``np.asarray`` gives the whole column.

    An index grown by :mod:`.index_append` appends texts with :meth:`grown`: a new column of
    the same Arrow array and a tail of Python strings grown through spare capacity. (Grown
    as a numpy array, the district's texts became two million Python objects in one call
    holding the GIL, ~0.25 s, on the first add after every build.)"""

    dtype = np.dtype(object)
    ndim = 1
    base = None

    def __init__(self, values: pd.Series) -> None:
        arrow = getattr(values.array, "_pa_array", None)
        if not isinstance(arrow, pa.ChunkedArray) or not pa.types.is_string(arrow.type) and \
                not pa.types.is_large_string(arrow.type):
            arrow = pa.chunked_array([pa.array(values.to_numpy(dtype=object), type=pa.large_string(),
                                               from_pandas=True)])
            self._na = None
        else:
            self._na = values.dtype.na_value if hasattr(values.dtype, "na_value") else None
        self._arrow = arrow.combine_chunks() if arrow.num_chunks != 1 else arrow.chunk(0)
        self._tail = np.zeros(0, dtype=object)  # texts appended since (grown() gives a new column)

    def grown(self, extra) -> TextColumn:
        """A new column: this one followed by the texts ``extra`` (this one is unchanged)."""
        out = object.__new__(TextColumn)
        out._arrow, out._na = self._arrow, self._na
        out._tail = grow(self._tail, np.asarray(extra, dtype=object))
        return out

    def __len__(self) -> int:
        return len(self._arrow) + len(self._tail)

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    def _objects(self, arrow: pa.Array) -> np.ndarray:
        out = np.asarray(arrow.to_numpy(zero_copy_only=False), dtype=object)
        if self._na is not None and arrow.null_count:
            out[np.asarray(arrow.is_null())] = self._na
        return out

    def __getitem__(self, pos):
        n = len(self._arrow)
        if isinstance(pos, (int, np.integer)):
            i = int(pos) + len(self) if pos < 0 else int(pos)
            if not 0 <= i < len(self):
                raise IndexError(f"position {int(pos)} is outside a text column of {len(self)}")
            return self._objects(self._arrow.slice(i, 1))[0] if i < n else self._tail[i - n]
        if isinstance(pos, slice):
            if not len(self._tail):
                return self._objects(self._arrow[pos])
            pos = np.arange(len(self))[pos]
        pos = np.asarray(pos)
        if pos.dtype == bool:
            pos = np.flatnonzero(pos)
        pos = pos.astype(np.int64, copy=False)
        pos = np.where(pos < 0, pos + len(self), pos)  # numpy's reading of negative positions
        if not len(self._tail):
            return self._objects(self._arrow.take(pa.array(pos)))
        if len(pos) and (pos.min() < 0 or pos.max() >= len(self)):
            raise IndexError(f"a position is outside a text column of {len(self)}")
        out = np.empty(len(pos), dtype=object)
        old = pos < n
        out[old] = self._objects(self._arrow.take(pa.array(pos[old])))
        out[~old] = self._tail[pos[~old] - n]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._objects(self._arrow)
        if len(self._tail):
            out = np.concatenate([out, self._tail])
        return out if dtype is None else out.astype(dtype)
