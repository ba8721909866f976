"""Rows in and out of the store: validated score rows, DataFrames, argument checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from .. import clock
from .errors import AlertNotFoundError
from .lifecycle import (
    LEVELS,
    TRENDS,
)
from .tables import _DATETIME_COLUMNS

# SQLite caps the number of bound parameters per statement; IN lists are chunked.
_CHUNK = 500


def _timestamp(value: Any, name: str) -> datetime:
    """A naive local datetime by the one moment rule (:func:`escalation_risk.clock.to_moment`:
    a date is the end of that day, an offset converted to the zone)."""
    return clock.to_moment(value, what=name).to_pydatetime()


def _now(at: Any, name: str = "at") -> datetime:
    """``at``, or now in the configured zone (the kernel's clock, never the host's local time)."""
    return clock.now().floor("s").to_pydatetime() if at is None else _timestamp(at, name)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _reasons_list(value: Any, where: str) -> list[str]:
    """Reasons as a list of str, from a list, an array, a JSON string or nothing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{where}: column 'reasons' must be a list of str or a JSON list, "
                f"got {value!r}"
            ) from exc
    if isinstance(value, (list, tuple, np.ndarray)):
        out = list(value)
        if all(isinstance(r, str) for r in out):
            return out
    raise ValueError(
        f"{where}: column 'reasons' must be a list of str or a JSON list, got {value!r}"
    )


def _dumps(reasons: list[str]) -> str:
    # ensure_ascii=False keeps Chinese reasons readable in the database itself.
    return json.dumps(reasons, ensure_ascii=False)


def _dumps_rows(index: pd.Index, values: list[Any]) -> list[str]:
    """:func:`_dumps` of each row's reasons (checked by :func:`_reasons_list`); most rows
    share a few lists (the blue rows' empty one), each written once."""
    memo: dict[tuple[str, ...], str] = {}
    # A JSON text seen before is not parsed again: a million-person night's 209,408 rows
    # hold a few thousand distinct lists. (A list is cheap to check; its text is in memo.)
    given: dict[str, str] = {}
    out = []
    for idx, r in zip(index, values):
        if type(r) is list:
            # A list seen before (by value) was checked then: its text is in memo.
            try:
                text = memo.get(tuple(r))
            except TypeError:  # an unhashable item: not a list of str, refused below
                text = None
            if text is not None:
                out.append(text)
                continue
        text = given.get(r) if isinstance(r, str) else None
        if text is None:
            rs = tuple(_reasons_list(r, f"scores row {idx!r}"))
            text = memo.get(rs)
            if text is None:
                text = memo[rs] = _dumps(list(rs))
            if isinstance(r, str):
                given[r] = text
        out.append(text)
    return out


def _loads(text: Any) -> list[str]:
    return json.loads(text) if isinstance(text, str) and text else []


def _frame(rows: Iterable[Any], columns: Sequence[str]) -> pd.DataFrame:
    """A DataFrame from result rows with stable columns and dtypes, even when empty."""
    df = pd.DataFrame([tuple(r) for r in rows], columns=list(columns))
    for col in df.columns:
        if col in _DATETIME_COLUMNS:
            df[col] = pd.to_datetime(df[col])
        elif col in ("reasons", "reasons_zh"):
            # Each distinct text parsed once (most rows share a few lists), each row its own list.
            parsed: dict[Any, list[str]] = {}
            lists = []
            for v in df[col].tolist():
                got = parsed.get(v) if isinstance(v, str) else None
                if got is None:
                    got = _loads(v)
                    if isinstance(v, str):
                        parsed[v] = got
                lists.append(list(got))
            df[col] = pd.Series(lists, index=df.index, dtype=object)
        elif col == "escalated_to_crime":
            df[col] = df[col].astype("boolean")
        elif col in ("probability", "delta"):
            df[col] = df[col].astype(float)
    return df


def _plain(value: Any) -> Any:
    """Python scalars for a dict handed to callers (pd.Timestamp for times)."""
    if isinstance(value, datetime):
        return pd.Timestamp(value)
    return value


#: The keys of a :func:`_score_rows` row, in its order.
_ROW_COLUMNS = ("dispute_id", "probability", "level", "trend", "delta", "reasons", "plan", "reasons_zh")


def _score_rows(scores: pd.DataFrame, night: datetime) -> list[dict[str, Any]]:
    """Validate the nightly scores and turn them into plain row dicts."""
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores: expected a pandas DataFrame, got {type(scores).__name__}")
    required = ("dispute_id", "probability", "level", "trend", "reasons", "plan")
    missing = [c for c in required if c not in scores.columns]
    if missing:
        raise ValueError(
            f"scores: missing required column(s) {missing}; got {list(scores.columns)}"
        )
    if scores.empty:
        return []

    def fail(col: str, mask: pd.Series, rule: str) -> None:
        bad = scores.index[mask.to_numpy()]
        if len(bad):
            first = bad[0]
            raise ValueError(
                f"scores: column '{col}' row {first!r} value {scores.at[first, col]!r} "
                f"breaks rule: {rule} ({len(bad)} row(s) in all)"
            )

    fail("dispute_id", scores["dispute_id"].isna(), "required")
    ids = scores["dispute_id"].astype(str)
    fail("dispute_id", ids.duplicated(keep="first"), "one score per dispute per night")
    if "as_of" in scores.columns:
        as_of = pd.to_datetime(scores["as_of"], errors="coerce")
        fail("as_of", as_of.isna() | (as_of != pd.Timestamp(night)), f"equals the night's as_of {night}")
    prob = pd.to_numeric(scores["probability"], errors="coerce")
    fail("probability", prob.isna() | (prob < 0) | (prob > 1), "a number in [0, 1]")
    fail("level", ~scores["level"].isin(LEVELS), f"one of {LEVELS}")
    fail("trend", ~scores["trend"].isin(TRENDS), f"one of {TRENDS}")
    if "delta" in scores.columns:
        delta = pd.to_numeric(scores["delta"], errors="coerce")
        fail("delta", delta.isna() & scores["delta"].notna(), "a number or missing")
    else:
        delta = pd.Series(np.nan, index=scores.index)
    # Plain lists: per-row .iloc on 50,000 disputes costs seconds.
    plans = ["" if p is None or (not isinstance(p, str) and pd.isna(p)) else str(p)
             for p in scores["plan"].tolist()]
    reasons = _dumps_rows(scores.index, scores["reasons"].tolist())
    zh = scores["reasons_zh"].tolist() if "reasons_zh" in scores.columns else [None] * len(scores)
    reasons_zh = _dumps_rows(scores.index, zh)
    deltas = [None if d != d else d for d in delta.to_numpy(dtype=float, na_value=np.nan).tolist()]
    values = (  # in _ROW_COLUMNS' order
        ids.tolist(), prob.to_numpy(dtype=float).tolist(), list(map(str, scores["level"].tolist())),
        list(map(str, scores["trend"].tolist())), deltas, reasons, plans, reasons_zh,
    )
    return list(map(dict, map(zip, repeat(_ROW_COLUMNS), zip(*values))))



def _require_text(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: expected a non-empty str, got {value!r}")


def _alert_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise AlertNotFoundError(value) from exc


def _one_or_many(value: str | Iterable[str], name: str, allowed: Sequence[str]) -> list[str]:
    values = [value] if isinstance(value, str) else list(value)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"{name}: unknown value(s) {unknown}; expected some of {tuple(allowed)}")
    return values

