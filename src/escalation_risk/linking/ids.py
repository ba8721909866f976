"""Ids as integers: every id column read from its bytes, never through a Python object per id.

The graph's tables join on ids (``person_id``, ``place_id``, ``incident_id``): millions of
strings, which Arrow's and pandas' string look-ups took seconds to match. Here an id is
its bytes packed eight at a time into integers (:func:`_key64`, :func:`_encode`), or, for
ids written as one prefix and a fixed number of digits (``P000123``: every id column of
the generated districts and of ``data/sample``), its number (:func:`_digits`), found by an
array index (:class:`_Index`). :mod:`.evidence` builds the graph evidence with these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..lookup import arrow_strings


def _bytes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(data bytes, start, length, valid) of a string array, without a Python object per value."""
    big = arr.cast(pa.large_string())
    n = len(big)
    bufs = big.buffers()
    off = np.frombuffer(bufs[1], dtype=np.int64)[big.offset: big.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    valid = ~big.is_null().to_numpy(zero_copy_only=False)
    return data, off[:-1], np.where(valid, np.diff(off), 0), valid


_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _pack(data: np.ndarray, start: np.ndarray, lens: np.ndarray, at: int = 0) -> np.ndarray:
    """Bytes ``at`` .. ``at + 7`` of each string as one uint64 (zero past the string's end):
    one unaligned 8-byte read per string in place, the bytes past its end masked off (only
    the last eight bytes of the buffer are copied, padded, for reads that would run past it)."""
    n = len(data)
    take = np.clip(lens - at, 0, 8)
    pos = np.minimum(start + at, n)
    base = max(n - 8, 0)
    tail = np.zeros(24, dtype=np.uint8)
    tail[:n - base] = data[base:]
    tail_words = np.ndarray(shape=(17,), dtype="<u8", buffer=tail.data, strides=(1,))
    data = np.ascontiguousarray(data)
    if n >= 8:
        words = np.ndarray(shape=(n - 7,), dtype="<u8", buffer=data.data, strides=(1,))
        out = words[np.minimum(pos, n - 8)]
    else:
        out = np.zeros(len(pos), dtype=np.uint64)
    over = np.flatnonzero(pos > n - 8)
    out[over] = tail_words[pos[over] - base]
    return out & _LOW_BYTES[take]


def _key64(values: pd.Series | np.ndarray | pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """Each id as one exact uint64 (its bytes), and where it is present; None when an id is
    longer than eight bytes or holds a control byte below 8."""
    data, start, lens, valid = _bytes(arrow_strings(values))
    if int(lens.max(initial=0)) > 8 or (data < 8).any():
        return None
    # A string shorter than eight bytes carries its length in the last byte: with no byte
    # below 8 in any id, no two ids (of this column or another) share a key.
    short = lens < 8
    return _pack(data, start, lens) | np.where(short, lens, 0).astype(np.uint64) << np.uint64(56), valid


@dataclass(frozen=True)
class _Digits:
    """Ids written as one prefix and a fixed number of digits (``P000123``): each id's number,
    where it is present. Two such columns with the same prefix and width compare exactly on
    their numbers, so a look-up is an array index, not a hash probe."""

    prefix: bytes
    width: int
    value: np.ndarray
    valid: np.ndarray


# Rows per block of the integer reads below: each block's temporaries stay in the cache and
# are reused by the allocator (a temporary the size of a 4.6M-row column is mapped fresh and
# faulted in page by page each time, which cost more than the arithmetic).
_BLOCK = 1 << 16


def _fixed_words(chunk: pa.Array, out: np.ndarray) -> int | None:
    """Each string of a chunk with no missing value, all of one width up to eight bytes, as
    one uint64 in ``out`` (its bytes, the first the lowest); returns the width, None when the
    chunk is not of that form. The strings sit end to end at a fixed stride: strided reads,
    no gather."""
    n = len(chunk)
    if not n or chunk.null_count:
        return None
    bufs = chunk.buffers()
    off = np.frombuffer(bufs[1], dtype=np.int64)[chunk.offset: chunk.offset + n + 1]
    start = int(off[0])
    width = (int(off[-1]) - start) // n
    if not 1 <= width <= 8 or int(off[-1]) - start != n * width:
        return None
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    # Rows whose 8-byte read stays inside the buffer are read in place; the last few padded.
    inside = min(n, max((len(data) - 8 - start) // width + 1, 0))
    view = np.ndarray(shape=(inside,), dtype="<u8", buffer=data.data, offset=start, strides=(width,)) \
        if inside else np.zeros(0, np.uint64)
    low = _LOW_BYTES[width]
    for b0 in range(0, n, _BLOCK):
        b1 = min(b0 + _BLOCK, n)
        if (np.diff(off[b0: b1 + 1]) != width).any():
            return None
        mid = max(min(b1, inside), b0)
        np.bitwise_and(view[b0:mid], low, out=out[b0:mid])
        for r in range(mid, b1):  # the last few rows (their read would pass the buffer's end)
            at = start + r * width
            out[r] = int.from_bytes(bytes(data[at: at + width]), "little")
    return width


def _rep(byte: int, k: int) -> np.uint64:
    """The byte repeated in the low ``k`` bytes of a uint64."""
    return np.uint64(int.from_bytes(bytes([byte]) * k, "little"))


def _prefix_len(first: bytes) -> int | None:
    """How many bytes of ``first`` (an id) come before its digits, when it is an ASCII
    prefix and at least one digit; else None."""
    byte = np.frombuffer(first, dtype=np.uint8)
    digit = (byte >= 48) & (byte <= 57)
    p = len(first) - int(np.argmin(digit[::-1])) if not digit.all() else 0  # bytes before the digits
    if not digit[p:].all() or len(first) - p == 0 or not first[:p].isascii():
        return None
    return p


_M1, _M2, _M3 = np.uint64(0x00FF00FF00FF00FF), np.uint64(0x0000FFFF0000FFFF), np.uint64(0x00000000FFFFFFFF)


def _parse_digits(x: np.ndarray, p: bytes, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids meant to be the prefix ``p`` and ``d`` digits (``len(p) + d`` at most eight), each
    its bytes in one uint64 of ``x`` (the first the lowest, zero past the id): each id's
    number (``x`` itself, overwritten), and where an id is not of that form (its number then
    means nothing). The digits are parsed eight at a time in one uint64 (SWAR)."""
    n_p = len(p)
    nib, zero, six = _rep(0xF0, d), _rep(0x30, d), _rep(0x06, d)
    with np.errstate(over="ignore"):
        bad = (x & _LOW_BYTES[n_p]) != np.uint64(int.from_bytes(p, "little")) if n_p \
            else np.zeros(len(x), dtype=bool)
        x >>= np.uint64(8 * n_p)
        # Every digit byte 0x30-0x39: its high nibble 3, and still 3 after adding 6 (a byte
        # with another high nibble fails the first test, so a carry it makes decides nothing).
        bad |= (x & nib) != zero
        bad |= ((x + six) & nib) != zero
        x -= zero
        x <<= np.uint64(8 * (8 - d))  # leading zeros: eight digits, the first the most significant
        for mul, shift, keep in ((10, 8, _M1), (100, 16, _M2), (10000, 32, _M3)):
            t = x >> np.uint64(shift)
            x *= np.uint64(mul)
            x += t
            x &= keep
    return x, bad


def _digits_words(chunks: list[pa.Array]) -> _Digits | None:
    """:func:`_digits` of ids all one width up to eight bytes, none missing, read as integers
    (a prefix compared and the digits parsed eight at a time in one uint64, SWAR), block by
    block in place; None when the ids are not of that form (:func:`_digits` then asks Arrow)."""
    total = sum(len(c) for c in chunks)
    if not total:
        return None
    w = np.empty(total, dtype=np.uint64)
    widths = set()
    at = 0
    for c in chunks:
        if len(c):
            got = _fixed_words(c, w[at: at + len(c)])
            if got is None:
                return None
            widths.add(got)
        at += len(c)
    if len(widths) != 1:
        return None
    width = widths.pop()
    first = int(w[0]).to_bytes(8, "little")[:width]
    p = _prefix_len(first)
    if p is None:
        return None
    for b0 in range(0, total, _BLOCK):
        if _parse_digits(w[b0: b0 + _BLOCK], first[:p], width - p)[1].any():
            return None
    return _Digits(first[:p], width, w.view(np.int64), np.ones(total, dtype=bool))


def _digit_rows(values: pd.Series | np.ndarray | pa.Array, table: np.ndarray, prefix: bytes, width: int,
                mask: np.ndarray | None = None) -> np.ndarray | None:
    """``table[number]`` of each id (the number clipped to the table's last slot; the table's
    dtype), -1 where
    ``mask`` is False: ids of ``prefix`` and ``width`` bytes (at most eight), read block by
    block from the column's bytes with no array of the numbers, no filtered copy of the
    column; None when a masked-in id is not of that form or any is missing (the caller then
    reads them otherwise)."""
    if not 1 <= width <= 8 or len(prefix) >= width:
        return None
    parts = arrow_strings(values, combine=False)
    chunks = parts.chunks if isinstance(parts, pa.ChunkedArray) else [parts]
    total = sum(len(c) for c in chunks)
    out = np.empty(total, dtype=table.dtype)
    low = _LOW_BYTES[width]
    at = 0
    for c in chunks:
        n = len(c)
        if not n:
            continue
        if c.null_count:
            return None
        bufs = c.buffers()
        off = np.frombuffer(bufs[1], dtype=np.int64)[c.offset: c.offset + n + 1]
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        last = len(data) - 8  # the last byte an 8-byte read may start at
        words8 = np.ndarray(shape=(last + 1,), dtype="<u8", buffer=data.data, strides=(1,)) if last >= 0 \
            else np.zeros(1, np.uint64)
        with np.errstate(over="ignore"):
            for b0 in range(0, n, _BLOCK):
                b1 = min(b0 + _BLOCK, n)
                sel = None if mask is None else mask[at + b0: at + b1]
                start = off[b0:b1]
                bad = (off[b0 + 1: b1 + 1] - start) != width
                if sel is not None:
                    bad &= sel
                if bad.any():
                    return None
                x = words8[np.clip(start, 0, max(last, 0))]
                for r in np.flatnonzero(start > last):  # the last few ids: their read would pass the end
                    s0 = int(start[r])
                    x[r] = int.from_bytes(bytes(data[s0: s0 + width]), "little")
                x &= low
                value, bad = _parse_digits(x, prefix, width - len(prefix))
                if sel is not None:
                    bad &= sel
                if bad.any():
                    return None
                rows = out[at + b0: at + b1]
                np.take(table, value.view(np.int64), mode="clip", out=rows)
                if sel is not None:
                    rows[~sel] = -1
        at += n
    return out


def _digits(values: pd.Series | np.ndarray | pa.Array) -> _Digits | None:
    """The ids as :class:`_Digits`, or None when they are not all one prefix and digits of one width.

    Ids of up to eight bytes, none missing, are read as integers (:func:`_digits_words`);
    others by Arrow's compute kernels (byte length, prefix, slice, decimal check, integer cast):
    one C++ pass each over the column, several times cheaper than numpy's passes over a
    byte view (each allocating an array the size of the column)."""
    parts = arrow_strings(values, combine=False)
    fast = _digits_words(parts.chunks if isinstance(parts, pa.ChunkedArray) else [parts])
    if fast is not None:
        return fast
    arr = parts.combine_chunks() if isinstance(parts, pa.ChunkedArray) else parts
    n = len(arr)
    if arr.null_count >= n:
        return None
    lens = pc.min_max(pc.binary_length(arr))
    width = lens["min"].as_py()
    if not width or lens["max"].as_py() != width:
        return None
    # Every id is ``width`` bytes (min == max): the first present one shows the prefix.
    at = int(pc.index(arr.is_valid(), True).as_py()) if arr.null_count else 0
    first = arr[at].as_py().encode()
    p = _prefix_len(first)
    if p is None or width - p > 18:  # 18 digits: the most an int64 holds whatever they are
        return None
    if p and not pc.all(pc.starts_with(arr, first[:p].decode())).as_py():
        return None
    # The prefix is ASCII, so its bytes are as many code units (no cast to binary and back,
    # which validates every string again).
    tail = pc.utf8_slice_codeunits(arr, p, width) if p else arr
    if not pc.all(pc.ascii_is_decimal(tail)).as_py():
        return None
    num = pc.cast(tail, pa.int64())
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        num = num.fill_null(0)
    else:
        valid = np.ones(n, dtype=bool)
    value = num.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return _Digits(first[:p], width, value, valid)


def _refactor(code: np.ndarray | None, part: np.ndarray) -> np.ndarray:
    """Codes of the pairs (code, part): integer hash tables only."""
    pc_, uniq = pd.factorize(part)
    if code is None:
        return pc_.astype(np.int64)
    return pd.factorize(code * np.int64(max(len(uniq), 1)) + pc_)[0].astype(np.int64)


def _encode(*columns: pd.Series | np.ndarray | pa.Array) -> list[np.ndarray]:
    """int64 codes of ids, one code per distinct id across all ``columns`` (-1 where missing).

    Exact: each id's bytes packed eight at a time into integers (and its length), coded
    by pandas' integer hash tables: no Python object per id (Arrow's and pandas' string
    look-ups took seconds on millions of ids)."""
    arrs = [arrow_strings(c) for c in columns]
    sizes = [len(a) for a in arrs]
    if not sum(sizes):
        return [np.zeros(0, np.int64) for _ in arrs]
    data, start, lens, valid = _bytes(pa.concat_arrays(arrs))
    width = int(lens.max(initial=0))
    code: np.ndarray | None = None
    if valid.any() and (lens[valid] != width).any():
        code = _refactor(None, np.where(valid, lens, -1))  # "ab" and "ab\0" differ by length
    for at in range(0, max(width, 1), 8):
        code = _refactor(code, _pack(data, start, lens, at))
    assert code is not None
    out = np.where(valid, code, -1)
    return list(np.split(out, np.cumsum(sizes)[:-1]))


class _Index:
    """Unique ids as one set of integers (their bytes), probed by other ids: Arrow's integer
    set look-up (about 40% cheaper than pandas' hash table on millions of probes), its table
    built once per call of :meth:`find_many` however many columns are looked up. Ids stored
    in order (a table exported by its key) are found by a binary search instead when the
    queries come mostly in order too (a child table exported by its parent's key)."""

    def __init__(self, ids: pd.Series | np.ndarray | pa.Array) -> None:
        self.ids = ids
        self.keys: np.ndarray | None = None  # unique integer keys, for the set look-up
        self.ordered: np.ndarray | None = None
        # Set here, once: a look-up may fill ``keys`` later without checking them for repeats.
        self.checked_unique = False
        # Ids of one prefix and width (P000123): a row per number, found by indexing.
        self.digits = _digits(ids)
        self.row_of: np.ndarray | None = None
        if self.digits is not None and self.digits.valid.all():
            top = int(self.digits.value.max(initial=0))
            if top <= 8 * len(self.digits.value) + 1_000_000:
                # Rows in int32 where they fit: the look-ups of millions of ids are half the
                # memory (fresh memory is paged in at a cost comparable to the arithmetic).
                rows_t = np.int32 if len(self.digits.value) < 2**31 - 1 else np.int64
                row_of = np.full(top + 2, -1, dtype=rows_t)  # the last slot answers "not here"
                row_of[self.digits.value] = np.arange(len(self.digits.value), dtype=rows_t)
                if (row_of >= 0).sum() == len(self.digits.value):  # unique
                    self.row_of = row_of
                    self.checked_unique = True
                    return
        k = _key64(ids)
        if k is not None and k[1].all():
            order_key = k[0].byteswap()  # the first byte most significant: the ids' own order
            if len(order_key) > 1 and (order_key[1:] > order_key[:-1]).all():
                self.ordered = order_key
                self.keys = k[0]
                self.checked_unique = True
            elif pd.Index(k[0]).is_unique:
                self.keys = k[0]
                self.checked_unique = True

    def unique(self) -> bool:
        """Whether the ids were found unique with none missing when the index was built (a row
        per number, or keys checked); False when not checked (ids of another form), whatever
        look-ups came since."""
        return self.checked_unique

    def find(self, query: pd.Series | np.ndarray | pa.Array) -> np.ndarray:
        """Row of each ``query`` id in the index, -1 where none."""
        return self.find_many(query)[0]

    def find_where(self, query: pd.Series | np.ndarray | pa.Array, mask: np.ndarray) -> np.ndarray:
        """:meth:`find` of the ``query`` ids where ``mask`` holds, -1 elsewhere (the others,
        e.g. an organisation's id in a column of parties, are not read)."""
        if self.row_of is not None:
            assert self.digits is not None
            rows = _digit_rows(query, self.row_of, self.digits.prefix, self.digits.width, mask)
            if rows is not None:
                return rows
        # The rows in the fast path's dtype, whichever path read them.
        out = np.full(len(mask), -1, dtype=self.row_of.dtype if self.row_of is not None else np.int64)
        out[mask] = self.find(arrow_strings(query).filter(pa.array(mask)))
        return out

    def find_many(self, *queries: pd.Series | np.ndarray | pa.Array) -> list[np.ndarray]:
        """:meth:`find` for several columns, hashed in one pass."""
        if self.row_of is not None:
            assert self.digits is not None
            found: list[np.ndarray | None] = []
            for q in queries:
                rows = _digit_rows(q, self.row_of, self.digits.prefix, self.digits.width)
                if rows is not None:
                    found.append(rows)
                    continue
                d = _digits(q)
                if d is not None and d.prefix == self.digits.prefix and d.width == self.digits.width:
                    # A number past the last row takes the last slot ("not here"): clipped in the take.
                    hit = np.take(self.row_of, d.value, mode="clip")
                    if not d.valid.all():
                        hit[~d.valid] = -1
                    found.append(hit)
                else:
                    found.append(None)
            if all(f is not None for f in found):
                return found  # type: ignore[return-value]
            if self.keys is None:
                k = _key64(self.ids)
                self.keys = k[0] if k is not None else None
            rest = self._find_keys(*[q for q, f in zip(queries, found) if f is None])
            return [f if f is not None else rest.pop(0) for f in found]
        return self._find_keys(*queries)

    def _find_keys(self, *queries: pd.Series | np.ndarray | pa.Array) -> list[np.ndarray]:
        """:meth:`find_many` on the ids' bytes as integers (ids of any form)."""
        kqs = [_key64(q) for q in queries] if self.keys is not None else [None]
        if any(kq is None for kq in kqs):
            return [_lookup(*reversed(_encode(self.ids, q))) for q in queries]
        out: list[np.ndarray | None] = [None] * len(queries)
        rest = []
        for c, kq in enumerate(kqs):
            assert kq is not None
            if self.ordered is not None:
                q = kq[0].byteswap()
                if np.count_nonzero(q[1:] < q[:-1]) <= len(q) // 100:  # mostly in order: cache-friendly
                    pos = np.minimum(np.searchsorted(self.ordered, q), len(self.ordered) - 1)
                    out[c] = np.where(kq[1] & (self.ordered[pos] == q), pos, -1).astype(np.int64)
                    continue
            rest.append(c)
        if rest:
            assert self.keys is not None
            allq = np.concatenate([kqs[c][0] for c in rest])  # type: ignore[index]
            found = pc.fill_null(pc.index_in(pa.array(allq), value_set=pa.array(self.keys)), -1)
            hits = found.to_numpy(zero_copy_only=False).astype(np.int64)
            for c, part in zip(rest, np.split(hits, np.cumsum([len(kqs[c][0]) for c in rest])[:-1])):  # type: ignore[index]
                out[c] = np.where(kqs[c][1], part, -1)  # type: ignore[index]
        return [o for o in out if o is not None]


def _ids_unique(ids: pd.Series) -> bool:
    """No id twice (on the ids' bytes as integers where they fit; else pandas' own check)."""
    k = _key64(ids)
    if k is not None and k[1].all():
        return bool(pd.Index(k[0]).is_unique)
    return not ids.duplicated().any()


def _positions(query: pd.Series | np.ndarray | pa.Array, index: pd.Series | np.ndarray | pa.Array) -> np.ndarray:
    """Row of ``index`` (unique ids) holding each ``query`` id, -1 where none."""
    return _Index(index).find(query)


def _lookup(query: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Position in the index of each query code (-1 where absent); codes from one :func:`_encode`."""
    top = int(max(query.max(initial=-1), index.max(initial=-1))) + 1
    pos_of = np.full(top + 1, -1, dtype=np.int64)  # the last slot answers code -1
    ok = index >= 0
    pos_of[index[ok]] = np.flatnonzero(ok)
    return pos_of[query]


def _codes(values: pd.Series | np.ndarray | pa.Array) -> np.ndarray:
    """0-based int64 codes of ids (-1 where missing)."""
    d = _digits(values)
    if d is not None:
        return np.where(d.valid, pd.factorize(d.value)[0], -1).astype(np.int64)
    k = _key64(values)
    if k is None:
        return _encode(values)[0]
    return np.where(k[1], pd.factorize(k[0])[0], -1).astype(np.int64)
