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
(id number, its region / birth date / sequence parts, its digits in sorted order, the
toneless and the "fuzzy" pinyin of the name, the phone), each hashed with the
pseudonym key before it is kept, so no raw identifier outlives loading. The few keys kept
in clear are no more identifying than the contract's own columns: the id's kind
(valid, failed check, other document), its birth year and its sex digit.
"""

from __future__ import annotations

import hmac
import re
from functools import lru_cache

import numpy as np
import pandas as pd

# ---------------------------------------------------------------- characters

_HALF = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_HALF[0x3000] = 0x20  # ideographic space
_HALF[0x30FB] = 0xB7  # katakana middle dot, typed for the dot in minority names


def to_halfwidth(s: pd.Series) -> pd.Series:
    """Full-width ASCII forms and the ideographic space replaced by their half-width forms."""
    return s.str.translate(_HALF)


# ---------------------------------------------------------------- id numbers

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.array(list("10X98765432"))

ID_NONE, ID_VALID, ID_BAD, ID_OTHER = 0, 1, 2, 3
"""Kinds of id number: missing; 18 characters with a valid check digit and birth date; 18
id-shaped characters that fail the check or the date (a typo); any other document."""

_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")


def gb11643_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("expected 17 digits")
    return str(_check_digits(np.array([first17]))[0])


def _check_digits(bodies: np.ndarray) -> np.ndarray:
    """Vectorised check characters of an array of 17-digit ASCII strings."""
    if len(bodies) == 0:
        return np.array([], dtype="<U1")
    digits = np.frombuffer("".join(bodies.tolist()).encode("ascii"), dtype=np.uint8).reshape(-1, 17) - 48
    return _CHECK[(digits.astype(np.int64) @ _WEIGHTS) % 11]


def is_valid_id(s: str) -> bool:
    """True for an 18-character resident id number with a valid birth date and check digit."""
    norm = normalise_id(pd.Series([s], dtype=object))
    return bool(id_kind(norm)[0] == ID_VALID)


def normalise_id(s: pd.Series) -> pd.Series:
    """Id numbers in one form: half-width, no separators, upper-case ``X``, 15 -> 18 digits.

    Values that are not resident id numbers (other documents) keep their characters,
    upper-cased and without separators; blanks become missing.
    """
    out = to_halfwidth(s.astype(object).where(s.notna(), None).astype("string"))
    out = out.str.replace(r"\s", "", regex=True).str.upper()
    # Separators go only where what is left is a resident id: "ID-A" and "IDA" stay two documents.
    compact = out.str.replace(r"[\-\.·/]", "", regex=True)
    out = compact.where(compact.str.fullmatch(r"\d{15}|\d{17}[\dX]").fillna(False), out)
    out = out.where(out != "")
    old = out.str.fullmatch(r"\d{15}").fillna(False).to_numpy(dtype=bool)
    if old.any():
        o = out[old]
        body = (o.str[:6] + "19" + o.str[6:]).to_numpy(dtype=object).astype(str)
        out[old] = body + _check_digits(body)
    return out.astype(object).where(out.notna(), None)


def id_kind(norm: pd.Series) -> np.ndarray:
    """The kind of each normalised id number (``ID_NONE`` / ``ID_VALID`` / ``ID_BAD`` / ``ID_OTHER``)."""
    s = pd.Series(norm, dtype="string")
    kind = np.where(s.isna().to_numpy(), ID_NONE, ID_OTHER).astype(np.int8)
    shaped = s.str.fullmatch(_ID_SHAPE.pattern).fillna(False).to_numpy(dtype=bool)
    if shaped.any():
        v = s[shaped].to_numpy(dtype=object).astype(str)
        body = np.array([x[:17] for x in v]) if len(v) else v
        ok = _check_digits(body) == np.array([x[17] for x in v])
        born = pd.to_datetime(pd.Series([x[6:14] for x in v]), format="%Y%m%d", errors="coerce")
        ok &= born.notna().to_numpy() & (born.dt.year >= 1880).fillna(False).to_numpy()
        kind[shaped] = np.where(ok, ID_VALID, ID_BAD)
    return kind


def id_birth_date(norm: pd.Series) -> pd.Series:
    """Birth date (``YYYYMMDD``) written in an id-shaped number, where it is a real date."""
    s = pd.Series(norm, dtype="string")
    shaped = s.str.fullmatch(_ID_SHAPE.pattern).fillna(False)
    date = s.str[6:14].where(shaped)
    parsed = pd.to_datetime(date, format="%Y%m%d", errors="coerce")
    ok = parsed.notna() & (parsed.dt.year >= 1880)
    return date.where(ok).astype(object).where(ok, None)


def id_sex(norm: pd.Series) -> np.ndarray:
    """Sex from the 17th digit of an id-shaped number: 1 male (odd), 0 female (even), -1 unknown."""
    s = pd.Series(norm, dtype="string")
    shaped = s.str.fullmatch(_ID_SHAPE.pattern).fillna(False).to_numpy(dtype=bool)
    d = pd.to_numeric(s.str[16], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(shaped & ~np.isnan(d), np.nan_to_num(d) % 2, -1).astype(np.int8)


# ---------------------------------------------------------------- phones and names

def normalise_phone(s: pd.Series) -> pd.Series:
    """Digits only (full-width digits included), the last 11 (drops ``+86``/``0086``)."""
    out = to_halfwidth(s.astype(object).where(s.notna(), None).astype("string"))
    out = out.str.replace(r"\D", "", regex=True).str[-11:]
    out = out.where(out != "")
    return out.astype(object).where(out.notna(), None)


@lru_cache(maxsize=1 << 16)
def _simplified(ch: str) -> str:
    import zhconv  # character table only: no network, no model

    return zhconv.convert(ch, "zh-cn")


def normalise_name(s: pd.Series) -> pd.Series:
    """Half-width, no spaces or middle dots, simplified characters, lower-case Latin."""
    out = to_halfwidth(s.astype(object).where(s.notna(), None).astype("string"))
    out = out.str.replace(r"[\s·•\.\-]", "", regex=True).str.lower()
    out = out.where(out != "")
    uniq = pd.unique(out.dropna())
    table = {v: "".join(_simplified(c) if ord(c) > 0x2E80 else c for c in v) for v in uniq}
    out = out.map(table, na_action="ignore")
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
    uniq = pd.unique(names.dropna())
    tone, fuzzy = {}, {}
    for v in uniq:
        syl = [_pinyin_of(c) if ord(c) > 0x2E80 else c for c in v]
        tone[v] = "".join(syl)
        fuzzy[v] = "".join(_fuzzy(x) for x in syl) if any(ord(c) > 0x2E80 for c in v) else tone[v]
    return (names.map(tone, na_action="ignore").astype(object),
            names.map(fuzzy, na_action="ignore").astype(object))


# ---------------------------------------------------------------- keyed hashes

def hash64(values: pd.Series, key: bytes, salt: str) -> np.ndarray:
    """HMAC-SHA256 of each value under ``key`` (salted by the key's name), as int64; 0 for missing.

    Computed once per distinct value. 64 bits leave a collision among a million
    values at about 3e-8.
    """
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    prefix = salt.encode() + b":"
    h = np.fromiter((int.from_bytes(hmac.digest(key, prefix + str(v).encode(), "sha256")[:8], "little",
                                    signed=True) for v in uniq), dtype=np.int64, count=len(uniq))
    h[h == 0] = 1  # 0 means missing
    out = np.zeros(len(values), dtype=np.int64)
    ok = codes >= 0
    out[ok] = h[codes[ok]]
    return out


KEY_COLUMNS = ("lk_id", "lk_id_region", "lk_id_date", "lk_id_seq", "lk_id_digits", "lk_id_kind", "lk_id_year",
               "lk_id_sex", "lk_name", "lk_pinyin", "lk_fuzzy", "lk_phone")
"""Columns :func:`linkage_keys` adds to ``persons``: int64 keyed hashes (0 = missing), except
``lk_id_kind`` / ``lk_id_sex`` (small codes) and ``lk_id_year`` (0 = unknown)."""


def linkage_keys(persons: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """The linkage keys of raw ``persons`` rows (same index), hashed with the pseudonym key.

    Call it on the raw identifiers, before they are pseudonymised; the result holds no
    raw value.
    """
    idx = persons.index
    n = len(persons)

    def col(name: str) -> pd.Series:
        if name in persons.columns:
            return persons[name].reset_index(drop=True)
        return pd.Series([None] * n, dtype=object)

    idn = normalise_id(col("id_number"))
    kind = id_kind(idn)
    shaped = pd.Series(np.isin(kind, (ID_VALID, ID_BAD)))
    ids = pd.Series(idn, dtype="string").where(shaped)
    body = ids.str[:17]
    digits = body.map(lambda v: "".join(sorted(v)), na_action="ignore")
    date = id_birth_date(idn)
    year = pd.to_numeric(pd.Series(date, dtype="string").str[:4], errors="coerce").fillna(0).astype(np.int16)
    name = normalise_name(col("name"))
    pinyin, fuzzy = name_pinyin(name)
    out = pd.DataFrame({
        "lk_id": hash64(idn, key, "id_number"),
        "lk_id_region": hash64(ids.str[:6], key, "id_region"),
        "lk_id_date": hash64(date, key, "id_date"),
        "lk_id_seq": hash64(ids.str[14:17], key, "id_seq"),
        "lk_id_digits": hash64(digits, key, "id_digits"),
        "lk_id_kind": kind,
        "lk_id_year": year.to_numpy(),
        "lk_id_sex": id_sex(idn),
        "lk_name": hash64(name, key, "name"),
        "lk_pinyin": hash64(pinyin, key, "pinyin"),
        "lk_fuzzy": hash64(fuzzy, key, "fuzzy_pinyin"),
        "lk_phone": hash64(normalise_phone(col("phone")), key, "phone"),
    })
    out.index = idx
    return out
