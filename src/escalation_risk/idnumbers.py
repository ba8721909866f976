"""Structure of Chinese resident identity numbers (GB 11643-1999) and mobile numbers.

Pure functions on strings, no pandas: the loader uses them to check identifiers
before pseudonymising them, record linkage to normalise them. An 18-character id
number is 6 digits of area, 8 of birth date (YYYYMMDD), 3 of sequence and a check
character (ISO 7064 MOD 11-2: a digit or ``X``); the old 15-digit form has a
6-digit birth date (YYMMDD, 19YY) and no check character.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = ["gb11643_check_digit", "is_valid_id", "is_valid_mobile", "normalise_id", "normalise_phone", "valid_ids",
           "valid_mobiles"]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_MOBILE = re.compile(r"1[3-9]\d{9}")


def _check_codes(digits17: np.ndarray) -> np.ndarray:
    """Code points of the check characters of rows of 17 digits (ISO 7064 MOD 11-2)."""
    return _CHECK_CODES[(digits17 @ np.array(_WEIGHTS)) % 11]


_CHECK_CODES = np.array([ord(c) for c in _CHECK], dtype=np.int64)


def gb11643_check_digit(first17: str) -> str:
    """The check character ('0'-'9' or 'X') of an 18-character id number from its first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("expected exactly 17 digits")
    # The scalar form of _check_codes (same weights and table): a generator calls it per person.
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def normalise_id(s: str) -> str:
    """Half-width (NFKC: full-width digits and the ideographic space), spaces removed and a
    lower-case check 'x' upper-cased: the form checked."""
    return "".join(unicodedata.normalize("NFKC", s).split()).upper()


def _valid_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Whether each (year, month, day) is a real calendar date (years 1-9999, as ``datetime.date``)."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + \
        (leap & (month == 2))
    return (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)


def _valid_forms(cp: np.ndarray, n: int) -> np.ndarray:
    """The rule on rows of ``n`` normalised code points (int64, one row per value)."""
    d = cp - ord("0")
    is_digit = (d >= 0) & (d <= 9)
    if n == 18:
        ok = is_digit[:, :17].all(axis=1) & (is_digit[:, 17] | (cp[:, 17] == ord("X")))
        year = d[:, 6:10] @ np.array([1000, 100, 10, 1])
        month, day = d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
        return ok & _valid_dates(year, month, day) & (_check_codes(np.where(is_digit, d, 0)[:, :17]) == cp[:, 17])
    ok = is_digit.all(axis=1)
    return ok & _valid_dates(1900 + d[:, 6] * 10 + d[:, 7], d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11])


# What normalise_id removes from ASCII text (str.split()'s whitespace); NFKC leaves ASCII as it is.
_ASCII_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]"


def valid_ids(values: Sequence[str] | np.ndarray) -> np.ndarray:
    """:func:`is_valid_id` of many strings at once (vectorised: a district's million id
    numbers in a fraction of a second instead of a Python call each). ASCII values are
    normalised and read in Arrow (an Arrow array is read in place); any other value is
    normalised by :func:`normalise_id` itself."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else \
        pa.array(np.asarray(values, dtype=object), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    out = np.zeros(len(arr), dtype=bool)
    if not len(arr):
        return out
    ascii_ = pc.string_is_ascii(arr).fill_null(True).to_numpy(zero_copy_only=False).astype(bool)
    norm = pc.utf8_upper(pc.replace_substring_regex(arr, _ASCII_SPACE, ""))
    offsets = np.frombuffer(norm.buffers()[1], dtype=np.int64)[norm.offset:norm.offset + len(norm) + 1]
    data = norm.buffers()[2]
    chars = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    lens = np.diff(offsets)
    for n in (18, 15):
        rows = np.flatnonzero((lens == n) & ascii_ & ~np.asarray(norm.is_null().to_numpy(zero_copy_only=False)))
        if len(rows):
            out[rows] = _valid_forms(chars[offsets[rows][:, None] + np.arange(n)].astype(np.int64), n)
    other = np.flatnonzero(~ascii_)
    if len(other):
        norm_other = [normalise_id(v) for v in arr.take(pa.array(other)).to_pylist()]
        lens_other = np.fromiter((len(v) for v in norm_other), dtype=np.int64, count=len(norm_other))
        for n in (18, 15):
            rows = np.flatnonzero(lens_other == n)
            if len(rows):
                cp = np.array([norm_other[i] for i in rows], dtype=f"U{n}").view(np.uint32).reshape(-1, n)
                out[other[rows]] = _valid_forms(cp.astype(np.int64), n)
    return out


def is_valid_id(s: str) -> bool:
    """True for an 18-character id number with a real birth date and the right check
    character, or an old 15-digit one with a real birth date (after :func:`normalise_id`)."""
    return bool(valid_ids([s])[0])


def normalise_phone(s: str) -> str:
    """Digits only, without a +86/0086 country prefix: the form checked and hashed."""
    d = re.sub(r"\D", "", unicodedata.normalize("NFKC", s))
    if len(d) == 13 and d.startswith("86"):
        d = d[2:]
    elif len(d) == 15 and d.startswith("0086"):
        d = d[4:]
    return d


def is_valid_mobile(s: str) -> bool:
    """True for an 11-digit mainland mobile number (1, then 3-9, then 9 digits), after
    :func:`normalise_phone`."""
    return _MOBILE.fullmatch(normalise_phone(s)) is not None


# is_valid_mobile on ASCII text, digits kept: the number with or without its country prefix
# (normalise_phone strips 86 from 13 digits and 0086 from 15; nothing else changes the length).
_ASCII_MOBILE = r"^(?:86|0086)?1[3-9][0-9]{9}$"


def valid_mobiles(values: Sequence[str] | np.ndarray) -> np.ndarray:
    """:func:`is_valid_mobile` of many strings at once: ASCII values through Arrow (a
    district's million phones), any other (full-width digits, ...) one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values, type=pa.large_string()) if not isinstance(values, (pa.Array, pa.ChunkedArray)) \
        else values
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    digits = pc.replace_substring_regex(arr, r"[^0-9]", "")
    out = pc.match_substring_regex(digits, _ASCII_MOBILE).to_numpy(zero_copy_only=False).astype(bool)
    other = np.flatnonzero(~pc.string_is_ascii(arr).to_numpy(zero_copy_only=False).astype(bool))
    if len(other):
        out[other] = [is_valid_mobile(v) for v in arr.take(pa.array(other)).to_pylist()]
    return out
