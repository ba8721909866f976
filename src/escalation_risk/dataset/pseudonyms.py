"""Pseudonymisation of names, id numbers and phones, and the identifier checks before it.

Identifiers are checked on their raw values (an id number's check digit, an 11-digit
mobile), then replaced by a keyed hash (HMAC-SHA256 with the key of
:mod:`escalation_risk.pseudonym_keys`) before anything else looks at the rows.
"""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import pandas as pd

from .. import normalize
from ..contract import PII_COLUMNS
from ..idnumbers import is_valid_id, is_valid_mobile, normalise_id, normalise_phone, valid_ids, valid_mobiles
from .parsing import STR_DTYPE, _as_str, arrow_text
from .problems import _problems


def _normalise_pii(column: str, raw: pd.Series, normalised: pd.Series | None = None) -> pd.Series:
    s = _as_str(raw)
    # One written form per identifier (half-width, separators, 15 -> 18 digit ids,
    # traditional -> simplified names): see escalation_risk.normalize.
    if column == "phone":
        s = normalize.normalise_phone(s)
    elif column == "id_number":
        s = normalize.normalise_id(s)
    elif column == "name" and normalised is not None:
        # The rule works value by value: where stripping left the raw text as it was, the
        # name normalised from the raw text (for the linkage keys) is this one too; the
        # few others (padded, blank, not text) are normalised here.
        same = s.notna().to_numpy() & (s.to_numpy(dtype=object) == raw.to_numpy(dtype=object))
        out = pd.Series(normalised.to_numpy(dtype=object), index=s.index, dtype=object)
        other = ~same
        if other.any():
            out[other] = normalize.normalise_name(s[other]).to_numpy(dtype=object)
        s = out
    elif column == "name":
        s = normalize.normalise_name(s)
    return s.where(s.notna() & (s != ""))


def pseudonymise(values: pd.Series, key: bytes, column: str, *, normalised: pd.Series | None = None) -> pd.Series:
    """Replace each value by a keyed hash (20 hex chars); nulls stay null.

    Values are normalised first (spaces, case, phone digits) so the same person
    gets the same pseudonym from every source, which record linkage relies on.
    ``normalised``: for names, :func:`escalation_risk.normalize.normalise_name` of the raw
    ``values`` (same rows) when the caller has it.
    """
    norm = _normalise_pii(column, values, normalised)
    return normalize.per_distinct(norm, partial(hmac_hex20, key, column.encode() + b":"), STR_DTYPE)


def hmac_hex20(key: bytes, salt: bytes, values: list[str]) -> list[str]:
    """``hmac.new(key, salt + v.encode(), sha256).hexdigest()[:20]`` of each value (RFC 2104,
    the same bytes), with the key's inner and outer states set up once rather than per
    value: a district's million names, ids and phones in a third of the time."""
    block = hashlib.sha256().block_size
    k = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
    inner.update(salt)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
    icopy, ocopy = inner.copy, outer.copy

    def one(v: str) -> str:
        h = icopy()
        h.update(v.encode())
        o = ocopy()
        o.update(h.digest())
        return o.hexdigest()[:20]

    return list(map(one, values))


BAD_ID = ("not a valid id number (18 characters with a GB 11643 check digit, or the old 15-digit form); "
          "treated as missing for linkage")
BAD_PHONE = "not an 11-digit mobile number; treated as missing for linkage"
_IDENTIFIER_RULES = {"id_number": (normalise_id, is_valid_id, BAD_ID),
                     "phone": (normalise_phone, is_valid_mobile, BAD_PHONE)}
_BULK_RULES = {"id_number": valid_ids, "phone": valid_mobiles}  # the same rules on many values at once


def _check_identifiers(name: str, raw: pd.DataFrame) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Malformed id numbers and phones, found before pseudonymisation: reported by rule
    and row (never the value) and set to missing, so they cannot link two people."""
    problems = []
    for column, (normalise, valid, reason) in _IDENTIFIER_RULES.items():
        if column not in PII_COLUMNS.get(name, ()) or column not in raw.columns:
            continue
        text = _as_str(raw[column])
        arr = arrow_text(text)
        if column in _BULK_RULES and arr is not None:
            # Arrow strings judged row by row in Arrow (a million of them on a large load:
            # the vectorised rules read them in place, quicker than hashing them to judge
            # each distinct value once); missing stays missing.
            present = arr.is_valid()
            where = np.flatnonzero(present.to_numpy(zero_copy_only=False).astype(bool))
            if not len(where):
                continue
            bad = np.zeros(len(text), dtype=bool)
            bad[where] = ~_BULK_RULES[column](arr.filter(present))
        else:
            # Each distinct value judged once (as plain str), its verdict spread back by code.
            codes, distinct = pd.factorize(text)
            if not len(distinct):
                continue
            values = np.asarray(distinct, dtype=object)
            verdict = _BULK_RULES[column](values) if column in _BULK_RULES else \
                np.array([valid(normalise(v)) for v in values], dtype=bool)
            bad = (codes >= 0) & ~verdict[np.maximum(codes, 0)]
        if bad.any():
            rows = text.index[bad]
            problems.append(_problems(name, rows, column, [np.nan] * len(rows), reason))
            raw[column] = text.where(~bad)
    return raw, problems

