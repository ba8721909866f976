"""Identifier normalisation, and the pseudonymised linkage keys made from it.

One person is written differently by the police, the mediation centre and the hotline.
Before anything is hashed, each identifier is brought to one form:

- full-width characters (``１２３``, ``Ｘ``, the ideographic space) become half-width;
- spaces, dashes and dots inside an id number or a phone go; the check character ``x``
  becomes ``X``;
- an old 15-digit resident id number (issued before 1999: no century, no check digit)
  becomes its 18-digit form, with ``19`` inserted before the two-digit year and the
  GB 11643-1999 check digit (ISO 7064 MOD 11-2) computed;
- names lose inner spaces and middle dots, traditional characters become simplified
  (``zhconv``'s character table, no network), Latin letters are lower-cased.

From the normalised values, :func:`linkage_keys` makes the keys record linkage compares
(id number, its region / birth date / sequence parts, the id with neighbouring digits
put in order (to find transpositions), the toneless and the "fuzzy" pinyin of the name,
its shape (look-alike characters made one, :func:`name_shape`), the phone), each hashed under the
pseudonym key (keyed BLAKE2b, a MAC, three times faster than HMAC-SHA256 for the
million values of a district) before it is kept, so no raw identifier outlives loading. The few keys kept
in clear are no more identifying than the contract's own columns: the id's kind
(valid, failed check, other document), its birth year and its sex digit.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np
import pandas as pd

# The scalar rules live in one place; this module vectorises them for whole columns.
from .idnumbers import _check_codes, _valid_dates, gb11643_check_digit, is_valid_id  # noqa: F401 (re-exported)

# ---------------------------------------------------------------- text, a few values or many
#
# Each rule below is written once, as steps on a column of text (``_Text``): translate, a
# regular expression's substitution or full match, case, a slice, a function of the distinct
# values. Two engines run the steps, the same steps, on the distinct values of the column:
# ``_Few`` in Python, value by value (a service's added person row, without pandas' and Arrow's
# fixed cost of ~2 ms a step), ``_Many`` with Arrow's kernels (a district's million rows).

FEW = 32
"""Up to this many values, a rule's steps run in Python (``_Few``); above it, in Arrow (``_Many``)."""

# Text whose case rules and character classes (``\s``, ``\D``) Python and Arrow agree on: ASCII,
# the middle dots, the CJK blocks (no case, no decimal digits) and the full-width forms. A few
# values with anything else take the Arrow way, so a value never depends on the path it took.
_PLAIN = re.compile("[\x00-\x7f\u00b7\u2022\u2e80-\u9fff\uf900-\ufaff\uff01-\uff5e\U00020000-\U0003ffff]*")


class _CharMap(NamedTuple):
    """A ``str.translate`` table and a pattern matching the characters it maps (to skip, in a
    column, the values holding none)."""

    table: dict[int, int]
    pattern: re.Pattern[str]


def _char_map(table: dict[int, int]) -> _CharMap:
    return _CharMap(table, re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(table)) + "]"))


_HALF = _char_map({**{cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)},
                   0x3000: 0x20,  # ideographic space
                   0x30FB: 0xB7})  # katakana middle dot, typed for the dot in minority names


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


class _Text:
    """A column of text, the steps a rule is written in, and its distinct values: each step
    runs once per distinct value (a mask is one entry per distinct value)."""

    __slots__ = ()

    def translate(self, m: _CharMap) -> _Text: raise NotImplementedError
    def sub(self, p: re.Pattern[str], repl: str) -> _Text: raise NotImplementedError
    def upper(self) -> _Text: raise NotImplementedError
    def lower(self) -> _Text: raise NotImplementedError
    def last(self, n: int) -> _Text: raise NotImplementedError  # the last n characters
    def blank_missing(self) -> _Text: raise NotImplementedError
    def fullmatch(self, p: re.Pattern[str]) -> np.ndarray: raise NotImplementedError
    def where(self, mask: np.ndarray, other: _Text) -> _Text: raise NotImplementedError  # other where not mask
    def present(self) -> np.ndarray: raise NotImplementedError

    def through(self, fn: Callable[[list], list], mask: np.ndarray | None = None) -> _Text:
        """The present values (where ``mask``, if given) replaced by ``fn`` of them, in one call."""
        raise NotImplementedError

    def at(self, mask: np.ndarray) -> list:
        """The distinct values where ``mask``."""
        raise NotImplementedError

    def rows(self, missing: object = None) -> list | np.ndarray:
        """Each row's value (``missing`` where missing)."""
        raise NotImplementedError

    def expand(self, a: np.ndarray, missing: object) -> np.ndarray:
        """Each row's entry of ``a`` (one per distinct value); ``missing`` where the row is."""
        raise NotImplementedError


class _Few(_Text):
    """A few values (str, or None where missing), each step taken value by value in Python
    (a few values are their own distinct values)."""

    __slots__ = ("v",)

    def __init__(self, values: list) -> None:
        self.v = values

    def _each(self, fn: Callable[[str], str]) -> _Few:
        return _Few([None if x is None else fn(x) for x in self.v])

    def translate(self, m: _CharMap) -> _Few:
        return self._each(lambda x: x.translate(m.table))

    def sub(self, p: re.Pattern[str], repl: str) -> _Few:
        return self._each(partial(p.sub, repl))

    def upper(self) -> _Few:
        return self._each(str.upper)

    def lower(self) -> _Few:
        return self._each(str.lower)

    def last(self, n: int) -> _Few:
        return self._each(lambda x: x[-n:])

    def blank_missing(self) -> _Few:
        return _Few([x or None for x in self.v])

    def fullmatch(self, p: re.Pattern[str]) -> np.ndarray:
        return np.array([x is not None and p.fullmatch(x) is not None for x in self.v], dtype=bool)

    def where(self, mask: np.ndarray, other: _Text) -> _Few:
        assert isinstance(other, _Few)
        return _Few([a if m else b for a, m, b in zip(self.v, mask.tolist(), other.v)])

    def present(self) -> np.ndarray:
        return np.array([x is not None for x in self.v], dtype=bool)

    def through(self, fn: Callable[[list], list], mask: np.ndarray | None = None) -> _Few:
        rows = [i for i, x in enumerate(self.v) if x is not None and (mask is None or mask[i])]
        if not rows:
            return self
        out = list(self.v)
        for i, y in zip(rows, fn([self.v[i] for i in rows])):
            out[i] = y
        return _Few(out)

    def at(self, mask: np.ndarray) -> list:
        return [x for x, m in zip(self.v, mask.tolist()) if m]

    def rows(self, missing: object = None) -> list:
        return self.v if missing is None else [missing if x is None else x for x in self.v]

    def expand(self, a: np.ndarray, missing: object) -> np.ndarray:
        return a


class _Many(_Text):
    """Many values, as their distinct values (``u``, in an Arrow string array, or objects)
    and each row's position among them (``codes``, -1 where missing): each step runs once per
    distinct value, in Arrow's kernels."""

    __slots__ = ("codes", "u")

    def __init__(self, codes: np.ndarray, u: pd.Series) -> None:
        self.codes, self.u = codes, u

    def _new(self, u: pd.Series) -> _Many:
        return _Many(self.codes, u)

    def translate(self, m: _CharMap) -> _Many:
        hit = self.u.str.contains(m.pattern.pattern, regex=True).fillna(False).to_numpy(dtype=bool)
        if not hit.any():
            return self
        u = self.u.copy()
        u[hit] = self.u[hit].str.translate(m.table)
        return self._new(u)

    def sub(self, p: re.Pattern[str], repl: str) -> _Many:
        return self._new(self.u.str.replace(p.pattern, repl, regex=True))

    def upper(self) -> _Many:
        return self._new(self.u.str.upper())

    def lower(self) -> _Many:
        return self._new(self.u.str.lower())

    def last(self, n: int) -> _Many:
        return self._new(self.u.str[-n:])

    def blank_missing(self) -> _Many:
        return self._new(self.u.where(self.u != ""))

    def fullmatch(self, p: re.Pattern[str]) -> np.ndarray:
        return self.u.str.fullmatch(p.pattern).fillna(False).to_numpy(dtype=bool)

    def where(self, mask: np.ndarray, other: _Text) -> _Many:
        assert isinstance(other, _Many)
        return self._new(self.u.where(mask, other.u))

    def present(self) -> np.ndarray:
        return self.u.notna().to_numpy()

    def through(self, fn: Callable[[list], list], mask: np.ndarray | None = None) -> _Many:
        hit = self.present() if mask is None else self.present() & mask
        if not hit.any():
            return self
        u = self.u.to_numpy(dtype=object, copy=True)
        u[hit] = fn(u[hit].tolist())
        return self._new(pd.Series(u, dtype=self.u.dtype))  # Arrow strings stay Arrow strings

    def at(self, mask: np.ndarray) -> list:
        return self.u[mask].tolist()

    def rows(self, missing: object = None) -> np.ndarray:
        return self.expand(self.u.astype(object).where(self.u.notna(), missing).to_numpy(), missing)

    def expand(self, a: np.ndarray, missing: object) -> np.ndarray:
        return np.append(a, np.array([missing], dtype=a.dtype))[self.codes]  # code -1: the last


def _text(s: pd.Series | Sequence, *, plain: bool = True) -> _Text:
    """``s`` as a ``_Text``: ``_Few`` when short and all text or missing (``plain`` text, where
    the rule changes case or matches character classes), else ``_Many``."""
    if len(s) <= FEW:
        few: list[str | None] = []
        for v in (s.tolist() if isinstance(s, (pd.Series, np.ndarray)) else list(s)):
            if isinstance(v, str) and (not plain or _PLAIN.fullmatch(v)):
                few.append(str(v))
            elif _missing(v):
                few.append(None)
            else:
                break
        else:
            return _Few(few)
    s = pd.Series(s, dtype=object) if not isinstance(s, pd.Series) else s
    if plain and isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        codes, u = pd.factorize(s.astype("string"))  # Arrow strings already: no Python object per row
    elif plain:  # Arrow strings (any value as its text), for Arrow's kernels
        codes, u = pd.factorize(s.astype(object).where(s.notna(), None).astype("string"))
    else:
        codes, u = pd.factorize(s.astype(object), use_na_sentinel=True)
    return _Many(codes, pd.Series(u, dtype=u.dtype))


def _series(t: _Text, like: pd.Series, missing: object = None, dtype: object = object) -> pd.Series:
    return pd.Series(t.rows(missing), index=like.index, name=like.name, dtype=dtype)


def _rule(fn: Callable[[_Text], _Text], s: pd.Series, *, plain: bool = True) -> pd.Series:
    """A rule on ``s``, by the engine its size takes, as an object Series like it."""
    return _series(fn(_text(s, plain=plain)), s)


def _han_table(values: list[str], fn: Callable[[str], str]) -> dict[int, str]:
    """A str.translate table applying ``fn`` to each Han character of ``values`` that it changes."""
    table = {}
    for c in set("".join(values)):
        if ord(c) > 0x2E80 and (r := fn(c)) != c:
            table[ord(c)] = r
    return table


def _by_char(fn: Callable[[str], str]) -> Callable[[list[str]], list[str]]:
    """Each value with each of its Han characters through ``fn`` (character by character:
    a name is not a phrase)."""
    def each(values: list[str]) -> list[str]:
        table = _han_table(values, fn)
        return [v.translate(table) for v in values] if table else values
    return each


# ---------------------------------------------------------------- id numbers

ID_NONE, ID_VALID, ID_BAD, ID_OTHER = 0, 1, 2, 3
"""Kinds of id number: missing; 18 characters with a valid check digit and birth date; 18
id-shaped characters that fail the check or the date (a typo); any other document."""

_ID_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")
_SPACE = re.compile(r"\s")
_ID_SEP = re.compile(r"[\-\.·/]")
_RESIDENT = re.compile(r"[0-9]{15}|[0-9]{17}[0-9X]")
_OLD_ID = re.compile(r"[0-9]{15}")


def _ascii(values: list[str], width: int) -> np.ndarray:
    """Strings of ``width`` ASCII characters as a uint8 matrix of their codes."""
    return np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8).reshape(-1, width)


def _eighteen(old: list[str]) -> list[str]:
    """Old 15-digit ids in their 18-digit form: ``19`` before the year, the check digit after."""
    bodies = [v[:6] + "19" + v[6:] for v in old]
    return [b + chr(c) for b, c in zip(bodies, _check_codes(_ascii(bodies, 17).astype(np.int64) - 48).tolist())]


def _id_rule(t: _Text) -> _Text:
    t = t.translate(_HALF).sub(_SPACE, "").upper()
    # Separators go only where what is left is a resident id: "ID-A" and "IDA" stay two documents.
    compact = t.sub(_ID_SEP, "")
    t = compact.where(compact.fullmatch(_RESIDENT), t).blank_missing()
    return t.through(_eighteen, t.fullmatch(_OLD_ID))


def normalise_id(s: pd.Series) -> pd.Series:
    """Id numbers in one form: half-width, no separators, upper-case ``X``, 15 -> 18 digits.

    Values that are not resident id numbers (other documents) keep their characters,
    upper-cased and without separators; blanks become missing.
    """
    return _rule(_id_rule, s)


_PART_TYPES = {"kind": np.int8, "date": np.int64, "sex": np.int8, "region": np.int64, "seq": np.int64,
               "swap_even": np.int64, "swap_odd": np.int64}
_PART_NONE = {"kind": ID_NONE, "date": 0, "sex": -1, "region": 0, "seq": 0, "swap_even": 0, "swap_odd": 0}
_PLACE = 10 ** np.arange(17, -1, -1, dtype=np.int64)


def _parts(t: _Text) -> dict[str, np.ndarray]:
    """Kind, birth date (yyyymmdd int, 0 if none), sex, and the int parts of each normalised id."""
    shaped = t.fullmatch(_ID_SHAPE)
    n = len(shaped)
    out = {k: np.full(n, _PART_NONE[k], dtype=dt) for k, dt in _PART_TYPES.items()}
    out["kind"][t.present()] = ID_OTHER
    if shaped.any():
        mat = _ascii(t.at(shaped), 18)
        d, check = mat[:, :17].astype(np.int64) - 48, mat[:, 17]

        def num(a: int, b: int) -> np.ndarray:
            return d[:, a:b] @ _PLACE[18 - (b - a):]

        y, mo, dd = num(6, 10), num(10, 12), num(12, 14)
        real = (y >= 1880) & _valid_dates(y, mo, dd)
        out["kind"][shaped] = np.where((_check_codes(d) == check) & real, ID_VALID, ID_BAD)
        out["date"][shaped] = np.where(real, num(6, 14), 0)
        out["sex"][shaped] = d[:, 16] % 2
        out["region"][shaped] = num(0, 6) + 1
        out["seq"][shaped] = num(14, 17) + 1
        # The body with each pair of neighbours (0-1, 2-3, ... or 1-2, 3-4, ...) put in order:
        # two ids one adjacent transposition apart share one of the two.
        for start, k in ((0, "swap_even"), (1, "swap_odd")):
            e = d.copy()
            a, b = e[:, start:16:2].copy(), e[:, start + 1:17:2].copy()
            e[:, start:16:2], e[:, start + 1:17:2] = np.minimum(a, b), np.maximum(a, b)
            out[k][shaped] = e @ _PLACE[1:] + 1
    return {k: t.expand(v, _PART_NONE[k]) for k, v in out.items()}


def _id_parts(norm: pd.Series) -> dict[str, np.ndarray]:
    """Kind, birth date (yyyymmdd int, 0 if none), sex, and the int parts of each id number."""
    return _parts(_text(pd.Series(norm)))


def id_kind(norm: pd.Series) -> np.ndarray:
    """The kind of each normalised id number (``ID_NONE`` / ``ID_VALID`` / ``ID_BAD`` / ``ID_OTHER``)."""
    return _id_parts(norm)["kind"]


def id_birth_date(norm: pd.Series) -> pd.Series:
    """Birth date (``YYYYMMDD``) written in an id-shaped number, where it is a real date."""
    date = _id_parts(norm)["date"]
    return pd.Series([str(v) if v else None for v in date], dtype=object)


def id_sex(norm: pd.Series) -> np.ndarray:
    """Sex from the 17th digit of an id-shaped number: 1 male (odd), 0 female (even), -1 unknown."""
    return _id_parts(norm)["sex"]


# ---------------------------------------------------------------- phones and names

_NOT_DIGIT = re.compile(r"\D")


def _phone_rule(t: _Text) -> _Text:
    return t.translate(_HALF).sub(_NOT_DIGIT, "").last(11).blank_missing()


def normalise_phone(s: pd.Series) -> pd.Series:
    """Digits only (full-width digits included), the last 11 (drops ``+86``/``0086``)."""
    return _rule(_phone_rule, s)


@lru_cache(maxsize=1 << 16)
def _simplified(ch: str) -> str:
    import zhconv  # character table only: no network, no model

    return zhconv.convert(ch, "zh-cn")


_NAME_SEP = re.compile(r"[\s·•\.\-]")


def _name_rule(t: _Text) -> _Text:
    return t.translate(_HALF).sub(_NAME_SEP, "").lower().blank_missing().through(_by_char(_simplified))


def normalise_name(s: pd.Series) -> pd.Series:
    """Half-width, no spaces or middle dots, simplified characters, lower-case Latin."""
    return _rule(_name_rule, s)


#: pypinyin's switch for loading it without its phrase dictionary.
NO_PHRASES_ENV = "PYPINYIN_NO_PHRASES"


@lru_cache(maxsize=1)
def _reader() -> Callable[[str], list[str]]:
    """pypinyin's toneless reading, loaded without its phrase dictionary when nothing in
    this process loaded pypinyin before. Names are read one character at a time, where
    phrases never apply (the same reading of all 41,923 characters either way: a test);
    the dictionary is ~194,000 objects, 45 MB, that each full collection of the garbage
    collector walked in every process that linked a name (:mod:`.collector`). The switch is
    pypinyin's own environment variable, read once at its import and put back after: a
    program that wants pypinyin's phrases imports it before this runs."""
    if "pypinyin" not in sys.modules and NO_PHRASES_ENV not in os.environ:
        os.environ[NO_PHRASES_ENV] = "1"
        try:
            import pypinyin  # noqa: F401 - bundled dictionaries: no network
        finally:
            os.environ.pop(NO_PHRASES_ENV, None)
    from pypinyin import Style, lazy_pinyin

    return partial(lazy_pinyin, style=Style.NORMAL, errors="default")


@lru_cache(maxsize=1 << 16)
def _pinyin_of(ch: str) -> str:
    return "".join(_reader()(ch))


# Merges of sounds that southern speakers (and the clerks who write for them) confuse:
# the retroflex and flat initials, n/l, and the front/back nasal finals.
_FUZZY = [(re.compile(a), b) for a, b in (
    (r"zh", "z"), (r"ch", "c"), (r"sh", "s"), (r"^l", "n"), (r"ang$", "an"), (r"eng$", "en"),
    (r"ing$", "in"), (r"^hu", "f"),
)]


@lru_cache(maxsize=1 << 14)
def _fuzzy(syllable: str) -> str:
    for pat, rep in _FUZZY:
        syllable = pat.sub(rep, syllable)
    return syllable


def _fuzzy_of(ch: str) -> str:
    return _fuzzy(_pinyin_of(ch))


def _pinyin(names: _Text) -> tuple[_Text, _Text]:
    return names.through(_by_char(_pinyin_of)), names.through(_by_char(_fuzzy_of))


def name_pinyin(names: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(toneless pinyin, fuzzy pinyin) of normalised names; Latin names are taken as pinyin.

    Pinyin is taken character by character (a name is not a phrase), so two records
    written with homophones (张/章, 王/汪) get the same toneless pinyin, and near
    homophones (陈/程, 林/凌) the same fuzzy one.
    """
    tone, fuzzy = _pinyin(_text(names, plain=False))
    return _series(tone, names, np.nan), _series(fuzzy, names, np.nan)


@lru_cache(maxsize=1)
def _lookalike_table() -> dict[int, str]:
    """Each look-alike character -> the first character of its group (groups that share a
    character are one group), from ``lexicon/lookalike.txt``."""
    from importlib.resources import files

    text = files("escalation_risk").joinpath("lexicon/lookalike.txt").read_text(encoding="utf-8")
    parent: dict[str, str] = {}

    def find(c: str) -> str:
        while parent.setdefault(c, c) != c:
            c = parent[c]
        return c

    order: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for c in line:
            if c not in parent:
                order.append(c)
        for c in line[1:]:
            a, b = find(line[0]), find(c)
            if a != b:  # the earlier-listed character names the group
                parent[max(a, b, key=order.index)] = min(a, b, key=order.index)
    return {ord(c): find(c) for c in order if find(c) != c}


def _shape(names: _Text) -> _Text:
    table = _lookalike_table()
    return names.through(lambda values: [v.translate(table) for v in values])


def name_shape(names: pd.Series) -> pd.Series:
    """Normalised names with each look-alike character (伟/伦, 己/已/巳) replaced by the first
    of its group in ``lexicon/lookalike.txt``: two names written with look-alikes of
    each other get the same shape."""
    return _series(_shape(_text(names, plain=False)), names, np.nan)


def per_distinct(s: pd.Series, fn: Callable[[list], list], dtype: object = object) -> pd.Series:
    """``fn`` of the distinct present values of ``s`` (one call, each value once), row by row,
    as a Series of ``dtype`` like ``s``; missing rows stay missing."""
    return _series(_text(s, plain=False).through(fn), s, dtype=dtype)


# ---------------------------------------------------------------- keyed hashes

def _mac_key(key: bytes) -> bytes:
    return key if len(key) <= 64 else hashlib.sha256(key).digest()


def _macs(key: bytes, salt: str, data: list[bytes]) -> np.ndarray:
    """The 8-byte keyed BLAKE2b of ``salt:`` + each value as int64 (the keyed state set up once,
    not per value); 1 for a hash of 0, which means missing."""
    base = hashlib.blake2b(key=_mac_key(key), digest_size=8)
    base.update(salt.encode() + b":")
    copy = base.copy

    def mac(v: bytes) -> bytes:
        h = copy()
        h.update(v)
        return h.digest()

    h = np.frombuffer(b"".join(map(mac, data)), dtype="<i8").astype(np.int64)
    h[h == 0] = 1
    return h


def _hash_text(t: _Text, key: bytes, salt: str) -> np.ndarray:
    """:func:`hash64` of each row of ``t``, each distinct value hashed once."""
    present = t.present()
    h = np.zeros(len(present), dtype=np.int64)
    h[present] = _macs(key, salt, [str(v).encode() for v in t.at(present)])
    return t.expand(h, 0)


def hash64(values: pd.Series | np.ndarray, key: bytes, salt: str) -> np.ndarray:
    """Keyed hash (BLAKE2b in keyed mode, a MAC, under the pseudonym key; salted by the
    key's name) of each value as int64; 0 for missing (``None``/NaN, or 0 in an int array).

    Computed once per distinct value. 64 bits leave a collision among a million values
    at about 3e-8.
    """
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        return _hash_text(_text(values if isinstance(values, pd.Series) else arr, plain=False), key, salt)
    codes, uniq = (np.arange(len(arr)), arr) if len(arr) <= FEW else pd.factorize(arr)
    # numpy writes an integer's decimal digits itself: the bytes of str(v).encode().
    h = np.append(_macs(key, salt, uniq.astype("S").tolist()), 0)[codes]
    h[arr == 0] = 0
    return h


KEY_COLUMNS = ("lk_id", "lk_id_region", "lk_id_date", "lk_id_seq", "lk_id_swap_even", "lk_id_swap_odd",
               "lk_id_kind", "lk_id_year",
               "lk_id_sex", "lk_name", "lk_pinyin", "lk_fuzzy", "lk_shape", "lk_phone")
"""Columns :func:`linkage_keys` adds to ``persons``: int64 keyed hashes (0 = missing), except
``lk_id_kind`` / ``lk_id_sex`` (small codes) and ``lk_id_year`` (0 = unknown)."""


def linkage_keys(persons: pd.DataFrame, key: bytes, *, names: pd.Series | None = None) -> pd.DataFrame:
    """The linkage keys of raw ``persons`` rows (same index), hashed with the pseudonym key.

    Call it on the raw identifiers, before they are pseudonymised; the result holds no
    raw value. ``names``: :func:`normalise_name` of the rows' names when the caller has it
    (the loader normalises them once for these keys and for the names' pseudonyms).
    """
    n = len(persons)

    def col(name: str) -> _Text:
        return _text(persons[name] if name in persons.columns else [None] * n)

    idn = _id_rule(col("id_number"))
    parts = _parts(idn)
    name = _name_rule(col("name")) if names is None else _text(names, plain=False)
    tone, fuzzy = _pinyin(name)
    return pd.DataFrame({
        "lk_id": _hash_text(idn, key, "id_number"),
        "lk_id_region": hash64(parts["region"], key, "id_region"),
        "lk_id_date": hash64(parts["date"], key, "id_date"),
        "lk_id_seq": hash64(parts["seq"], key, "id_seq"),
        "lk_id_swap_even": hash64(parts["swap_even"], key, "id_swap_even"),
        "lk_id_swap_odd": hash64(parts["swap_odd"], key, "id_swap_odd"),
        "lk_id_kind": parts["kind"],
        "lk_id_year": (parts["date"] // 10_000).astype(np.int16),
        "lk_id_sex": parts["sex"],
        "lk_name": _hash_text(name, key, "name"),
        "lk_pinyin": _hash_text(tone, key, "pinyin"),
        "lk_fuzzy": _hash_text(fuzzy, key, "fuzzy_pinyin"),
        "lk_shape": _hash_text(_shape(name), key, "name_shape"),
        "lk_phone": _hash_text(_phone_rule(col("phone")), key, "phone"),
    }, index=persons.index)
