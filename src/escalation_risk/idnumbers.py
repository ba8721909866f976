"""Structure of Chinese resident identity numbers (GB 11643-1999) and mobile numbers.

Pure functions on strings, no pandas: the loader uses them to check identifiers
before pseudonymising them, record linkage to normalise them. An 18-character id
number is 6 digits of area, 8 of birth date (YYYYMMDD), 3 of sequence and a check
character (ISO 7064 MOD 11-2: a digit or ``X``); the old 15-digit form has a
6-digit birth date (YYMMDD, 19YY) and no check character.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata

__all__ = ["gb11643_check_digit", "is_valid_id", "is_valid_mobile", "normalise_id", "normalise_phone"]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID18 = re.compile(r"\d{17}[\dX]")
_ID15 = re.compile(r"\d{15}")
_MOBILE = re.compile(r"1[3-9]\d{9}")


def gb11643_check_digit(first17: str) -> str:
    """The check character ('0'-'9' or 'X') of an 18-character id number from its first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("expected exactly 17 digits")
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def normalise_id(s: str) -> str:
    """Half-width (NFKC: full-width digits and the ideographic space), spaces removed and a
    lower-case check 'x' upper-cased: the form checked."""
    return "".join(unicodedata.normalize("NFKC", s).split()).upper()


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        _dt.date(year, month, day)
    except ValueError:
        return False
    return True


def is_valid_id(s: str) -> bool:
    """True for an 18-character id number with a real birth date and the right check
    character, or an old 15-digit one with a real birth date (after :func:`normalise_id`)."""
    s = normalise_id(s)
    if _ID18.fullmatch(s):
        if not _valid_date(int(s[6:10]), int(s[10:12]), int(s[12:14])):
            return False
        return gb11643_check_digit(s[:17]) == s[17]
    if _ID15.fullmatch(s):
        return _valid_date(1900 + int(s[6:8]), int(s[8:10]), int(s[10:12]))
    return False


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
