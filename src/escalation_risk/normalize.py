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
import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd

# The scalar rules live in one place; this module vectorises them for whole columns.
from .idnumbers import gb11643_check_digit, is_valid_id  # noqa: F401 (is_valid_id re-exported)

# ---------------------------------------------------------------- characters

_HALF = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_HALF[0x3000] = 0x20  # ideographic space
_HALF[0x30FB] = 0xB7  # katakana middle dot, typed for the dot in minority names


# ---------------------------------------------------------------- a few values at a time

FEW = 32
"""Up to this many values, the rules below take each value in Python (one-value forms, held
equal to the vectorised ones by tests): a service's added person row skips pandas' and
Arrow's fixed cost per call (~2 ms a rule, paid twice per identifier)."""

# Text whose case rules and digits Python and Arrow agree on: ASCII, the middle dots, the CJK
# blocks (no case, no decimal digits) and the full-width forms. Anything else goes the
# vectorised way, so a value never depends on the path it took.
_PLAIN = re.compile("[\x00-\x7f\u00b7\u2022\u2e80-\u9fff\uf900-\ufaff\uff01-\uff5e\U00020000-\U0003ffff]*")


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def _few(s: pd.Series, *, plain: bool = True) -> list[str | None] | None:
    """The values of a short ``s`` (str, or None where missing), or None when the
    vectorised path must take it: many values, or one that is neither text (``plain`` text,
    when case is changed) nor missing."""
    if len(s) > FEW:
        return None
    out: list[str | None] = []
    for v in s.tolist():
        if isinstance(v, str):
            if plain and not _PLAIN.fullmatch(v):
                return None
            out.append(str(v))
        elif _missing(v):
            out.append(None)
        else:
            return None
    return out


def _series(values: list, like: pd.Series) -> pd.Series:
    return pd.Series(values, index=like.index, name=like.name, dtype=object)


def to_halfwidth(s: pd.Series) -> pd.Series:
    """Full-width ASCII forms and the ideographic space replaced by their half-width forms."""
    wide = s.str.contains("[\uff01-\uff5e\u3000\u30fb]", regex=True).fillna(False).to_numpy(dtype=bool)
    if not wide.any():
        return s
    out = s.copy()
    out[wide] = s[wide].str.translate(_HALF)
    return out


# ---------------------------------------------------------------- id numbers

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.array(list("10X98765432"))

ID_NONE, ID_VALID, ID_BAD, ID_OTHER = 0, 1, 2, 3
"""Kinds of id number: missing; 18 characters with a valid check digit and birth date; 18
id-shaped characters that fail the check or the date (a typo); any other document."""

_ID_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")


def _check_digits(bodies: np.ndarray) -> np.ndarray:
    """Vectorised check characters of an array of 17-digit ASCII strings."""
    if len(bodies) == 0:
        return np.array([], dtype="<U1")
    digits = np.frombuffer("".join(bodies.tolist()).encode("ascii"), dtype=np.uint8).reshape(-1, 17) - 48
    return _CHECK[(digits.astype(np.int64) @ _WEIGHTS) % 11]


_SPACE = re.compile(r"\s")
_ID_SEP = re.compile(r"[\-\.·/]")
_RESIDENT = re.compile(r"[0-9]{15}|[0-9]{17}[0-9X]")
_OLD_ID = re.compile(r"[0-9]{15}")


def _id_one(v: str) -> str | None:
    """:func:`normalise_id` of one text value."""
    v = _SPACE.sub("", v.translate(_HALF)).upper()
    compact = _ID_SEP.sub("", v)
    if _RESIDENT.fullmatch(compact):
        v = compact
    if not v:
        return None
    if _OLD_ID.fullmatch(v):
        body = v[:6] + "19" + v[6:]
        v = body + str(_check_digits(np.array([body]))[0])
    return v


def normalise_id(s: pd.Series) -> pd.Series:
    """Id numbers in one form: half-width, no separators, upper-case ``X``, 15 -> 18 digits.

    Values that are not resident id numbers (other documents) keep their characters,
    upper-cased and without separators; blanks become missing.
    """
    few = _few(s)
    if few is not None:
        return _series([None if v is None else _id_one(v) for v in few], s)
    out = to_halfwidth(s.astype(object).where(s.notna(), None).astype("string"))
    out = out.str.replace(r"\s", "", regex=True).str.upper()
    # Separators go only where what is left is a resident id: "ID-A" and "IDA" stay two documents.
    compact = out.str.replace(r"[\-\.·/]", "", regex=True)
    out = compact.where(compact.str.fullmatch(_RESIDENT.pattern).fillna(False), out)
    out = out.where(out != "")
    old = out.str.fullmatch(_OLD_ID.pattern).fillna(False).to_numpy(dtype=bool)
    if old.any():
        o = out[old]
        body = (o.str[:6] + "19" + o.str[6:]).to_numpy(dtype=object).astype(str)
        out[old] = body + _check_digits(body)
    return out.astype(object).where(out.notna(), None)


def _id_matrix(norm: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(rows that are id-shaped, their 18 characters as a uint8 matrix)."""
    s = pd.Series(norm, dtype="str")
    shaped = s.str.fullmatch(_ID_SHAPE.pattern).fillna(False).to_numpy(dtype=bool)
    rows = np.flatnonzero(shaped)
    if not len(rows):
        return rows, np.zeros((0, 18), dtype=np.uint8)
    mat = np.frombuffer("".join(s.to_numpy(dtype=object)[rows].tolist()).encode("ascii"),
                        dtype=np.uint8).reshape(-1, 18)
    return rows, mat


_PART_TYPES = {"kind": np.int8, "date": np.int64, "sex": np.int8, "region": np.int64, "seq": np.int64,
               "swap_even": np.int64, "swap_odd": np.int64}
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _id_parts_one(v: str | None) -> tuple[int, ...]:
    """:func:`_id_parts` of one value, in the order of ``_PART_TYPES``."""
    if v is None:
        return ID_NONE, 0, -1, 0, 0, 0, 0
    if not _ID_SHAPE.fullmatch(v):
        return ID_OTHER, 0, -1, 0, 0, 0, 0
    d = [ord(c) - 48 for c in v[:17]]
    ok = gb11643_check_digit(v[:17]) == v[17]  # the shape above: 17 ASCII digits
    y, mo, dd = int(v[6:10]), int(v[10:12]), int(v[12:14])
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    real = y >= 1880 and 1 <= mo <= 12 and 1 <= dd <= _MONTH_DAYS[mo] + (mo == 2 and leap)
    swaps = []
    for start in (0, 1):
        e = d.copy()
        for i in range(start, 16, 2):
            e[i], e[i + 1] = min(d[i], d[i + 1]), max(d[i], d[i + 1])
        swaps.append(int("".join(map(str, e))) + 1)
    return (ID_VALID if ok and real else ID_BAD, int(v[6:14]) if real else 0, d[16] % 2, int(v[:6]) + 1,
            int(v[14:17]) + 1, swaps[0], swaps[1])


def _id_parts(norm: pd.Series) -> dict[str, np.ndarray]:
    """Kind, birth date (yyyymmdd int, 0 if none), sex, and the int parts of each id number."""
    few = _few(pd.Series(norm))
    if few is not None:
        cols = list(zip(*map(_id_parts_one, few))) or [()] * len(_PART_TYPES)
        return {k: np.array(c, dtype=dt) for (k, dt), c in zip(_PART_TYPES.items(), cols)}
    n = len(norm)
    present = pd.Series(norm).notna().to_numpy()
    kind = np.where(present, ID_OTHER, ID_NONE).astype(np.int8)
    date = np.zeros(n, dtype=np.int64)
    sex = np.full(n, -1, dtype=np.int8)
    region = np.zeros(n, dtype=np.int64)
    seq = np.zeros(n, dtype=np.int64)
    swap_even = np.zeros(n, dtype=np.int64)
    swap_odd = np.zeros(n, dtype=np.int64)
    rows, mat = _id_matrix(norm)
    if len(rows):
        d = mat[:, :17].astype(np.int64) - 48
        ok = _CHECK[(d @ _WEIGHTS) % 11] == mat[:, 17].view("S1").astype(str)

        def num(a: int, b: int) -> np.ndarray:
            return d[:, a:b] @ (10 ** np.arange(b - a - 1, -1, -1, dtype=np.int64))

        y, mo, dd = num(6, 10), num(10, 12), num(12, 14)
        leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
        mdays = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(mo, 0, 12)] + \
            ((mo == 2) & leap)
        real = (y >= 1880) & (mo >= 1) & (mo <= 12) & (dd >= 1) & (dd <= mdays)
        kind[rows] = np.where(ok & real, ID_VALID, ID_BAD)
        date[rows] = np.where(real, num(6, 14), 0)
        sex[rows] = d[:, 16] % 2
        region[rows] = num(0, 6) + 1
        seq[rows] = num(14, 17) + 1
        # The body with each pair of neighbours (0-1, 2-3, ... or 1-2, 3-4, ...) put in order:
        # two ids one adjacent transposition apart share one of the two.
        place = 10 ** np.arange(16, -1, -1, dtype=np.int64)
        for start, out in ((0, swap_even), (1, swap_odd)):
            e = d.copy()
            a, b = e[:, start:16:2].copy(), e[:, start + 1:17:2].copy()
            e[:, start:16:2], e[:, start + 1:17:2] = np.minimum(a, b), np.maximum(a, b)
            out[rows] = e @ place + 1
    return {"kind": kind, "date": date, "sex": sex, "region": region, "seq": seq, "swap_even": swap_even,
            "swap_odd": swap_odd}


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


def normalise_phone(s: pd.Series) -> pd.Series:
    """Digits only (full-width digits included), the last 11 (drops ``+86``/``0086``)."""
    few = _few(s)
    if few is not None:
        return _series([None if v is None else _NOT_DIGIT.sub("", v.translate(_HALF))[-11:] or None for v in few], s)
    out = to_halfwidth(s.astype(object).where(s.notna(), None).astype("string"))
    out = out.str.replace(r"\D", "", regex=True).str[-11:]
    out = out.where(out != "")
    return out.astype(object).where(out.notna(), None)


def _is_han(c: str) -> bool:
    return ord(c) > 0x2E80


@lru_cache(maxsize=1 << 16)
def _simplified(ch: str) -> str:
    import zhconv  # character table only: no network, no model

    return zhconv.convert(ch, "zh-cn")


def _char_table(chars: set[str], fn) -> dict[int, str]:
    """A str.translate table applying ``fn`` to each Han character of ``chars``."""
    return {ord(c): fn(c) for c in chars if _is_han(c)}


_NAME_SEP = re.compile(r"[\s·•\.\-]")


def _name_one(v: str) -> str | None:
    """:func:`normalise_name` of one text value."""
    v = _NAME_SEP.sub("", v.translate(_HALF)).lower()
    if not v:
        return None
    table = {k: c for k, c in _char_table(set(v), _simplified).items() if chr(k) != c}
    return v.translate(table) if table else v


def normalise_name(s: pd.Series) -> pd.Series:
    """Half-width, no spaces or middle dots, simplified characters, lower-case Latin."""
    few = _few(s)
    if few is not None:
        return _series([None if v is None else _name_one(v) for v in few], s)
    out = to_halfwidth(s.astype(object).where(s.notna(), None).astype("str"))
    out = out.str.replace(r"[\s·•\.\-]", "", regex=True).str.lower()
    out = out.where(out != "")
    uniq = pd.unique(out.dropna())
    table = {k: v for k, v in _char_table(set("".join(uniq)), _simplified).items() if chr(k) != v}
    if table:  # character by character: a name is not a phrase
        out = out.map(dict(zip(uniq, (v.translate(table) for v in uniq))), na_action="ignore")
    return out.astype(object).where(out.notna(), None)


@lru_cache(maxsize=1 << 16)
def _pinyin_of(ch: str) -> str:
    from pypinyin import Style, lazy_pinyin  # bundled dictionaries: no network

    return "".join(lazy_pinyin(ch, style=Style.NORMAL, errors="default"))


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


def name_pinyin(names: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(toneless pinyin, fuzzy pinyin) of normalised names; Latin names are taken as pinyin.

    Pinyin is taken character by character (a name is not a phrase), so two records
    written with homophones (张/章, 王/汪) get the same toneless pinyin, and near
    homophones (陈/程, 林/凌) the same fuzzy one.
    """
    few = _few(names, plain=False)
    if few is not None:
        tone_1 = _char_table(set("".join(v for v in few if v is not None)), _pinyin_of)
        fuzzy_1 = {k: _fuzzy(v) for k, v in tone_1.items()}
        return (_series([np.nan if v is None else v.translate(tone_1) for v in few], names),
                _series([np.nan if v is None else v.translate(fuzzy_1) for v in few], names))
    uniq = pd.unique(names.dropna())
    chars = set("".join(uniq))
    tone_t = _char_table(chars, _pinyin_of)
    fuzzy_t = {k: _fuzzy(v) for k, v in tone_t.items()}
    tone = dict(zip(uniq, (v.translate(tone_t) for v in uniq)))
    fuzzy = dict(zip(uniq, (v.translate(fuzzy_t) for v in uniq)))
    return (names.map(tone, na_action="ignore").astype(object),
            names.map(fuzzy, na_action="ignore").astype(object))


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


def name_shape(names: pd.Series) -> pd.Series:
    """Normalised names with each look-alike character (伟/伦, 己/已/巳) replaced by the first
    of its group in ``lexicon/lookalike.txt``: two names written with look-alikes of
    each other get the same shape."""
    table = _lookalike_table()
    few = _few(names, plain=False)
    if few is not None:
        return _series([np.nan if v is None else v.translate(table) for v in few], names)
    uniq = pd.unique(names.dropna())
    return names.map(dict(zip(uniq, (v.translate(table) for v in uniq))), na_action="ignore").astype(object)


# ---------------------------------------------------------------- keyed hashes

def _mac_key(key: bytes) -> bytes:
    return key if len(key) <= 64 else hashlib.sha256(key).digest()


def _mac(key: bytes, salt: str) -> Callable[[bytes], bytes]:
    """The 8-byte keyed BLAKE2b of ``salt:`` + a value, the keyed state set up once, not per value."""
    base = hashlib.blake2b(key=_mac_key(key), digest_size=8)
    base.update(salt.encode() + b":")
    copy = base.copy

    def mac(v: bytes) -> bytes:
        h = copy()
        h.update(v)
        return h.digest()

    return mac


def hash64(values: pd.Series | np.ndarray, key: bytes, salt: str) -> np.ndarray:
    """Keyed hash (BLAKE2b in keyed mode, a MAC, under the pseudonym key; salted by the
    key's name) of each value as int64; 0 for missing (``None``/NaN, or 0 in an int array).

    Computed once per distinct value. 64 bits leave a collision among a million values
    at about 3e-8.
    """
    arr = np.asarray(values)
    few = arr.tolist() if len(arr) <= FEW else []
    if few and (arr.dtype.kind in "iu" or all(isinstance(v, str) or _missing(v) for v in few)):
        # A few values (an added person row): each hashed as it comes, the same bytes as below.
        mac1 = _mac(key, salt)
        return np.array([0 if _missing(v) or (not isinstance(v, str) and v == 0)
                         else int.from_bytes(mac1(str(v).encode()), "little", signed=True) or 1
                         for v in few], dtype=np.int64)
    if arr.dtype.kind in "iu":
        codes, uniq = pd.factorize(arr)
        codes = np.where(arr == 0, -1, codes)
    else:
        codes, uniq = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    mac = _mac(key, salt)
    uniq = np.asarray(uniq)
    # str(v).encode() of each value; numpy writes an integer's decimal digits itself.
    data = uniq.astype("S").tolist() if uniq.dtype.kind in "iu" else [str(v).encode() for v in uniq.tolist()]
    h = np.frombuffer(b"".join(map(mac, data)), dtype="<i8").astype(np.int64)
    h[h == 0] = 1  # 0 means missing
    out = np.zeros(len(arr), dtype=np.int64)
    ok = codes >= 0
    out[ok] = h[codes[ok]]
    return out


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
    idx = persons.index
    n = len(persons)

    def col(name: str) -> pd.Series:
        if name in persons.columns:
            return persons[name].reset_index(drop=True)
        return pd.Series([None] * n, dtype=object)

    idn = normalise_id(col("id_number"))
    parts = _id_parts(idn)
    name = normalise_name(col("name")) if names is None else names.reset_index(drop=True)
    pinyin, fuzzy = name_pinyin(name)
    out = pd.DataFrame({
        "lk_id": hash64(idn, key, "id_number"),
        "lk_id_region": hash64(parts["region"], key, "id_region"),
        "lk_id_date": hash64(parts["date"], key, "id_date"),
        "lk_id_seq": hash64(parts["seq"], key, "id_seq"),
        "lk_id_swap_even": hash64(parts["swap_even"], key, "id_swap_even"),
        "lk_id_swap_odd": hash64(parts["swap_odd"], key, "id_swap_odd"),
        "lk_id_kind": parts["kind"],
        "lk_id_year": (parts["date"] // 10_000).astype(np.int16),
        "lk_id_sex": parts["sex"],
        "lk_name": hash64(name, key, "name"),
        "lk_pinyin": hash64(pinyin, key, "pinyin"),
        "lk_fuzzy": hash64(fuzzy, key, "fuzzy_pinyin"),
        "lk_shape": hash64(name_shape(name), key, "name_shape"),
        "lk_phone": hash64(normalise_phone(col("phone")), key, "phone"),
    })
    out.index = idx
    return out
