"""Masking of identifiers inside free text the library writes out.

Descriptions and notes are never written to reports; but some text the library does
write can carry an identifier a person typed: a note on an alert, an outcome, a bad
value shown in a quarantine report. :func:`mask_identifiers` replaces anything that
looks like an id number (15 or 18 characters) or a phone number (a mobile, with or
without +86 and separators, or a landline with its area code) by a placeholder, so
a report never repeats one.
"""

from __future__ import annotations

import re

__all__ = ["ID_MASK", "PHONE_MASK", "mask_identifiers"]

ID_MASK = "[id number]"
PHONE_MASK = "[phone]"
# Digits not glued to other digits; full-width digits count too (typed on a Chinese IME).
_ID = re.compile(r"(?<![0-9０-９])(?:[0-9０-９]{17}[0-9０-９Xx]|[0-9０-９]{15})(?![0-9０-９Xx])")
_SEP = r"[\s\-－.]?"
_PHONE = re.compile(
    r"(?<![0-9０-９])(?:(?:\+|＋|00)?86" + _SEP + r")?1[3-9３-９](?:" + _SEP + r"[0-9０-９]){9}(?![0-9０-９])"
    r"|(?<![0-9０-９])0[0-9]{2,3}" + _SEP + r"[0-9]{7,8}(?![0-9])"
)


def mask_identifiers(text: str) -> str:
    """``text`` with id-number-like and phone-like strings replaced by placeholders."""
    if not text:
        return text
    return _PHONE.sub(PHONE_MASK, _ID.sub(ID_MASK, text))
