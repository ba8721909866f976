"""Id look-ups over Arrow string columns: a loaded district's ids are Arrow-backed, and
matching millions of them through pandas' object hash tables built a Python object per id."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def arrow_strings(values, *, combine: bool = True) -> pa.Array | pa.ChunkedArray:
    """String values (ids) as one Arrow large_string array, nulls for missing: zero-copy
    from an Arrow-backed column or array, converted otherwise (an object array, a list).
    Ids of another type (dictionary-encoded, binary, integers, mixed objects) as their text.
    ``combine=False``: a chunked column's chunks are left apart (no copy of its bytes)."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.array
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        arr = values
    elif isinstance(values, pd.api.extensions.ExtensionArray) and hasattr(values, "__arrow_array__"):
        arr = pa.array(values)
    else:
        obj = np.asarray(values, dtype=object)
        try:
            arr = pa.array(obj, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: each id's text, as Arrow writes it
            arr = pa.array([None if pd.isna(v) else v if isinstance(v, str)
                            else pa.scalar(v).cast(pa.large_string()).as_py() for v in obj],
                           type=pa.large_string())
    # Cast before combining: chunks of a dictionary column may hold different dictionaries.
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    if isinstance(arr, pa.ChunkedArray) and combine:
        arr = arr.combine_chunks()
    return arr


def id_positions(keys, ids) -> np.ndarray:
    """Position in ``keys`` (unique string ids) of each of ``ids``, -1 when absent or missing:
    ``pd.Index(keys).get_indexer(ids)`` through Arrow's hash table, without a Python object
    per id (building the index of a million-person district went through pandas' object
    hash table a dozen times)."""
    k, v = arrow_strings(keys), arrow_strings(ids)
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(k) == 0:
        return np.full(len(v), -1, dtype=np.int64)
    pos = pc.index_in(v, value_set=k, skip_nulls=True)
    return np.asarray(pos.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
