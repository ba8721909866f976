"""One clock and one moment rule, in the lowest layer.

Every time the library handles is *naive local time in one zone*: the contract's
timestamps, the night, the store's audit trail, a reminder's "today". The zone is
``$ESCALATION_RISK_TIMEZONE`` (default ``Asia/Shanghai``), whatever the host's clock
says: a server running on UTC records "now" in the zone, not 8 hours early.

A user's value becomes a moment by one rule (:func:`to_moment`):

* a date naming a moment (an ``as_of``, a night, a cutoff) is the **end** of that day,
  23:59:59.999999, so everything reported on it is inside;
* a date opening a range (``--from``, ``--start``) is the **start** of that day, so a
  range ``--from D1 --to D2`` holds both days named;
* a date-time is that moment; one with a UTC offset (``...T16:00:00+00:00``, ``Z``)
  is converted to the zone, never dropped;
* accepted date forms: ``2025-06-30``, ``2025/06/30``, ``20250630``; a time may follow
  after ``T`` or a space (``18:00``, ``18:00:05``, fractions).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

TIMEZONE_ENV = "ESCALATION_RISK_TIMEZONE"
DEFAULT_TIMEZONE = "Asia/Shanghai"

#: What a date alone means: the end of its day (a moment) or its start (a range's start).
Role = Literal["moment", "start"]

FORMS = "2025-06-30, 2025/06/30, 20250630, 2025-06-30T18:00, 2025-06-30 18:00:05 or 2025-06-30T10:00:00+00:00"

_DATE = r"(?P<y>\d{4})(?:(?P<sep>[-/])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})|(?P<m8>\d{2})(?P<d8>\d{2}))"
_TIME = r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<frac>\.\d{1,9})?)?)"
_OFFSET = r"(?P<off>Z|[+-]\d{2}(?::?\d{2})?)"
_MOMENT_RE = re.compile(rf"{_DATE}(?:{_TIME}{_OFFSET}?)?")
# The loader's vectorised twin: the same forms, dashes or slashes, offset optional.
SERIES_PATTERN = (r"\d{4}([-/])\d{1,2}\1\d{1,2}"
                  r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")
_HAS_OFFSET = r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"


class MomentError(ValueError):
    """A value that is not a moment under the one rule; the message names what and the value."""


def zone_name() -> str:
    """The configured zone's name: ``$ESCALATION_RISK_TIMEZONE``, else Asia/Shanghai."""
    return os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE


def zone(name: str | None = None) -> ZoneInfo:
    """The zone naive times are read in (``name``, else the configured one)."""
    return _zone(name or zone_name())


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MomentError(f"unknown time zone {name!r} (set {TIMEZONE_ENV} to an IANA name, "
                          f"e.g. {DEFAULT_TIMEZONE})") from None


def now(tz: str | None = None) -> pd.Timestamp:
    """Now, as naive local time in the configured zone, to the microsecond (what SQL keeps)."""
    return pd.Timestamp(_dt.datetime.now(zone(tz)).replace(tzinfo=None))


def today(tz: str | None = None) -> pd.Timestamp:
    """Midnight starting today in the configured zone."""
    return now(tz).normalize()


def end_of_day(ts: pd.Timestamp) -> pd.Timestamp:
    """The last microsecond of ``ts``'s day (microseconds: what SQL stores keep)."""
    return ts.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


def localize(ts: pd.Timestamp | _dt.datetime, tz: str | None = None) -> pd.Timestamp:
    """An aware time converted to naive local time in the zone; a naive one as it is."""
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        return t
    return t.tz_convert(zone(tz)).tz_localize(None)


def localize_column(s: pd.Series, tz: str | None = None) -> pd.Series:
    """:func:`localize` for a datetime column: an aware one converted to naive local time in
    the zone (never stripped of its offset), a naive one as it is; nanoseconds either way."""
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert(zone(tz)).dt.tz_localize(None)
    return s.astype("datetime64[ns]")


def to_moment(value: Any, *, role: Role = "moment", what: str = "as_of", tz: str | None = None) -> pd.Timestamp:
    """A user's value as a moment under the one rule (see the module's docstring).

    ``value`` is a string in one of :data:`FORMS`, a ``datetime.date``, a ``datetime``
    or a Timestamp (aware ones converted to the zone). ``role="moment"`` reads a date
    alone as the end of its day, ``role="start"`` as its start. Raises
    :class:`MomentError` naming ``what`` and the value.
    """
    if isinstance(value, str):
        return _from_text(value, role=role, what=what, tz=tz)
    if isinstance(value, _dt.datetime) or isinstance(value, pd.Timestamp):
        if pd.isna(value):
            raise MomentError(f"{what}: missing (expected e.g. {FORMS.split(', ')[0]})")
        return localize(value, tz)
    if isinstance(value, _dt.date):
        day = pd.Timestamp(value)
        return end_of_day(day) if role == "moment" else day
    if isinstance(value, (int, float)) or value is None:
        raise MomentError(f"{what}: not a date or date-time: {value!r} (accepted: {FORMS})")
    try:
        return to_moment(pd.Timestamp(value), role=role, what=what, tz=tz)
    except (TypeError, ValueError):
        raise MomentError(f"{what}: not a date or date-time: {type(value).__name__} (accepted: {FORMS})") from None


def to_moments(values: Any, *, role: Role = "moment", what: str = "as_of", tz: str | None = None) -> pd.Series:
    """A column of user values by :func:`to_moment` (a column of dates: each the end of its day).

    A datetime column is kept as it is (an aware one converted to the zone); any other
    is read value by value. Raises :class:`MomentError` naming ``what``, the row and the value.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s):
        return localize_column(s, tz)
    seen: dict[Any, pd.Timestamp] = {}
    out = []
    for i, v in enumerate(s.tolist()):
        key = (type(v), v)
        if key not in seen:
            seen[key] = to_moment(v, role=role, what=f"{what} row {i}", tz=tz)
        out.append(seen[key])
    return pd.Series(out, index=s.index, dtype="datetime64[ns]")


def _from_text(text: str, *, role: Role, what: str, tz: str | None) -> pd.Timestamp:
    s = text.strip()
    m = _MOMENT_RE.fullmatch(s)
    if m is None:
        raise MomentError(f"{what}: not a date or date-time: {text!r} (accepted: {FORMS})")
    g = m.groupdict()
    month, day = (g["m"], g["d"]) if g["m"] is not None else (g["m8"], g["d8"])
    try:
        base = pd.Timestamp(int(g["y"]), int(month), int(day))
        if g["H"] is None:
            return end_of_day(base) if role == "moment" else base
        frac = g["frac"] or ""
        ts = base + pd.Timedelta(hours=int(g["H"]), minutes=int(g["M"]), seconds=int(g["S"] or 0))
        if int(g["H"]) > 23 or int(g["M"]) > 59 or int(g["S"] or 0) > 59:
            raise ValueError("time out of range")
        if frac:
            ts += pd.Timedelta(nanoseconds=int(round(float(frac) * 1e9)))
    except ValueError:
        raise MomentError(f"{what}: not a real date or time: {text!r} (accepted: {FORMS})") from None
    off = g["off"]
    if off is None:
        return ts
    return localize(ts.tz_localize("UTC") - _offset(off), tz)


def _offset(off: str) -> pd.Timedelta:
    if off == "Z":
        return pd.Timedelta(0)
    sign = -1 if off[0] == "-" else 1
    digits = off[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return sign * pd.Timedelta(hours=hours, minutes=minutes)


def parse_series(text: pd.Series, tz: str | None = None) -> tuple[pd.Series, pd.Series]:
    """The loader's vectorised reading of recorded timestamps: ``(naive local times, bad mask)``.

    A recorded date alone is its midnight (a record's time, not a user's moment); an
    offset is converted to the zone, never dropped. Values not in the documented forms
    are NaT and flagged in the mask.
    """
    ok = text.str.fullmatch(SERIES_PATTERN).fillna(False).astype(bool)
    clean = text.where(ok).str.replace("/", "-", regex=False)
    has_off = clean.str.contains(_HAS_OFFSET, regex=True).fillna(False).astype(bool)
    out = pd.to_datetime(clean.where(~has_off), format="ISO8601", errors="coerce").astype("datetime64[ns]")
    if has_off.any():
        aware = pd.to_datetime(clean[has_off], format="ISO8601", errors="coerce", utc=True)
        out.loc[has_off] = localize_column(aware, tz)
    bad = text.notna() & out.isna()
    return out, bad


def parse_one(text: str, tz: str | None = None) -> pd.Timestamp | None:
    """One recorded timestamp as :func:`parse_series` reads it, or None (the record engine's twin)."""
    if not re.fullmatch(SERIES_PATTERN, text):
        return None
    try:
        return _from_text(text, role="start", what="", tz=tz)
    except MomentError:
        return None
