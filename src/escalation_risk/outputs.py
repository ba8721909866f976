"""Everything the library writes out, by allow-list: one declared column list per output,
and one writer per format that writes only those columns.

An output is a table (CSV, JSON records, rows shown in Markdown or HTML). Its
:class:`Output` names the columns it may carry, in order; a column not on the list
is never written, whatever the frame handed to the writer holds. Free text typed by
staff (an alert's outcome, a note, a description, an organisation's name) is never on
a list: an output that needs to say something about it declares it under ``lengths``
and carries ``<column>_chars``, its length, instead.

Every CSV cell the library writes goes through :func:`neutralise`: a cell starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe,
so Excel or WPS opens it as text, never as a formula (OWASP's CSV-injection advice).
Lines end in CRLF (RFC 4180), so a cell holding a carriage return is quoted whole.

This is the kernel: it knows column names, never the modules that make the tables.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .contract import TABLES

__all__ = ["FORMULA_START", "OUTPUTS", "Output", "allowed", "check_columns", "neutralise", "only", "output",
           "plain", "protect_text", "records", "rejected_output", "restore_text", "to_csv", "write_text"]

#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Output:
    """One output: the ``columns`` it may carry (in order), and the free-text columns it
    reports only by their length (``lengths``, written as ``<column>_chars``)."""

    name: str
    columns: tuple[str, ...]
    lengths: tuple[str, ...] = ()
    doc: str = ""

    @property
    def header(self) -> tuple[str, ...]:
        """Every column name the output can hold."""
        return self.columns + tuple(f"{c}_chars" for c in self.lengths)


_SCORES = ("district", "dispute_id", "as_of", "probability", "level", "trend", "delta", "reasons", "reasons_zh",
           "reason_features", "plan")
_PROBLEMS = ("district", "table", "row", "line", "column", "value", "reason", "action")
_CASES = ("kind", "rank", "dispute_id", "category", "same_category", "reported_at", "probability", "level",
          "reasons", "reason_features", "shared_reasons", "plan", "plan_text", "mediations", "n_mediations",
          "last_mediation_outcome", "closed_at", "escalated", "escalated_offence", "distance",
          "alert_plan", "alert_status")

_ALERT_COLUMNS = ("district", "alert_id", "dispute_id", "model_version", "level", "probability", "trend", "delta",
                  "reasons", "plan", "reasons_zh", "status", "owner", "raised_by", "raised_at", "due_at",
                  "updated_at", "status_at", "last_as_of", "closed_at", "escalated_to_crime")

#: A webhook message's types: each body carries only its type's declared fields
#: (escalation_risk.alerts.notify builds them; ``text`` is made from codes, never from
#: text typed by staff; ``owner`` is a staff member's user name as the store keeps it).
_WEBHOOK_TYPES = ("webhook_alert", "webhook_reminder", "webhook_summary")
_WEBHOOK = (
    Output("webhook_alert", ("message_id", "type", "event", "alert_id", "district", "dispute_id", "night", "level",
                             "level_zh", "previous_level", "trend", "probability", "reasons", "reasons_zh", "plan",
                             "plan_en", "plan_zh", "due_at", "owner", "text"),
           doc="a webhook message for a new or rising alert"),
    Output("webhook_reminder", ("message_id", "type", "owner", "day", "overdue", "due_today", "alerts", "text"),
           doc="a webhook reminder to one owner"),
    Output("webhook_summary", ("message_id", "type", "day", "open_by_level", "overdue_by_owner", "text"),
           doc="the office's daily webhook summary"),
    Output("webhook_reminder_item", ("alert_id", "dispute_id", "level", "status", "due_at", "state"),
           doc="one alert inside a reminder's `alerts`"),
    # The platform shapes (escalation_risk.alerts.webhook): every key path of the body; the
    # text is the message's own `text`, nothing else.
    Output("webhook_wecom", ("msgtype", "text", "text.content"), doc="WeCom's body around a message's text"),
    Output("webhook_dingtalk", ("msgtype", "text", "text.content"), doc="DingTalk's body around a message's text"),
    Output("webhook_feishu", ("msg_type", "content", "content.text"), doc="Feishu's body around a message's text"),
)

OUTPUTS: dict[str, Output] = {o.name: o for o in (
    Output("scores", _SCORES, doc="scores-NIGHT.csv: one row per open dispute scored that night"),
    Output("quarantine", _PROBLEMS,
           doc="quarantine-NIGHT.csv and `validate --report`: one row per problem; `value` only for "
               "numbers and dates (see escalation_risk.dataset.problems)"),
    Output("problems", _PROBLEMS, doc="the rows of a DataValidationError and the lines of its message"),
    Output("cases", _CASES, lengths=("alert_outcome",),
           doc="`cases --dispute` (CSV, JSON) and `alerts show`'s similar cases"),
    Output("typical_cases", _CASES, lengths=("alert_outcome",), doc="typical-cases.csv / .md, `cases --typical`"),
    Output("alerts", (*_ALERT_COLUMNS, "overdue_by", "waiting"),
           lengths=("outcome",), doc="`alerts list`, `overdue`, `follow-ups`, `outcomes` (table, CSV, JSON)"),
    Output("governance", ("district", "by", "unit", "period", "indicator", "name_zh", "name_en", "numerator",
                          "denominator", "value", "score", "change", "status", "detail"),
           doc="`governance` (CSV, JSON)"),
    Output("drift", ("feature", "psi", "missing_reference", "missing_recent", "missing_change", "reading"),
           doc="`drift --format json`: one row per feature"),
    Output("plan_effects", ("group_by", "group", "plan", "n", "escalated", "rate", "rate_lo", "rate_hi",
                            "n_matched", "n_controls", "matched_rate", "control_rate", "effect", "effect_lo",
                            "effect_hi", "naive_effect"), doc="`plans` (CSV, JSON)"),
    Output("briefing_alerts", ("alert_id", "dispute_id", "level", "probability", "reasons", "plan", "owner", "due"),
           doc="the briefing's table of new red and orange alerts"),
    Output("briefing_overdue", ("owner", "count", "red", "orange", "yellow", "oldest", "alerts"),
           doc="the briefing's overdue table"),
    Output("briefing_districts", ("district", "page", "run", "drift"),
           doc="a province's briefing index: each district's page and counts"),
    Output("briefing_heat", ("grid", "open", "red", "orange", "yellow", "expected", "mean_p", "heat"),
           doc="the briefing's grid heat table"),
    *_WEBHOOK,
    Output("webhook", tuple(dict.fromkeys(c for o in _WEBHOOK if o.name in _WEBHOOK_TYPES for c in o.columns)),
           doc="any webhook message's body: the union of the three types' fields"),
    # The alert desk (escalation_risk.desk): its JSON API and its pages.
    Output("api_alerts", _ALERT_COLUMNS, lengths=("outcome",),
           doc="`GET /api/v1/alerts`: one row per alert; the outcome typed by staff as its length"),
    Output("score_answer", ("dispute_id", "as_of", "probability", "level", "reasons", "plan", "plan_text",
                            "plan_text_zh", "model_version"),
           doc="`POST /api/v1/score`'s answer (Scorer.score_dispute's RiskAssessment)"),
    Output("api_error", ("field", "table", "column", "value", "reason"),
           doc="one item of an API error body's `detail`; `value` only for numeric and date fields "
               "(escalation_risk.dataset.problems.shown_value), else null"),
    Output("desk_alert", ("alert_id", "district", "dispute_id", "level", "probability", "trend", "reasons",
                          "reasons_zh", "plan", "plan_zh", "plan_en", "status", "owner", "grid", "place_district",
                          "raised_at", "due_at", "updated_at", "status_at", "last_as_of", "closed_at",
                          "escalated_to_crime", "overdue", "next", "can_close", "rank", "events"),
           lengths=("outcome",), doc="the desk's pages: an alert (list rows, the alert page, the supervisor's)"),
    Output("alert_events", ("at", "who", "event", "from_status", "to_status", "owner"), lengths=("note",),
           doc="an alert's audit trail (the desk's page, `alerts show`): the note typed by staff as its length"),
)}


def rejected_output(table: str) -> Output:
    """The rejected-row file of ``table``: its ids, codes, times and numbers, the row and
    the line of the file; never personal data or free text."""
    spec = TABLES[table]
    cols = tuple(c.name for c in spec.columns if c.kind not in ("pii", "text"))
    return Output(f"rejected/{table}", ("_row", "_line", *cols), doc=f"rejected-NIGHT/{table}.csv")


for _t in TABLES:
    OUTPUTS[f"rejected/{_t}"] = rejected_output(_t)


def output(name: str | Output) -> Output:
    """The declared output ``name`` (an :class:`Output` passes through)."""
    if isinstance(name, Output):
        return name
    try:
        return OUTPUTS[name]
    except KeyError:
        raise KeyError(f"no declared output {name!r}; declare its columns in escalation_risk.outputs") from None


def _length(v: Any) -> Any:
    return len(v) if isinstance(v, str) else pd.NA


def allowed(df: pd.DataFrame, out: str | Output) -> pd.DataFrame:
    """``df`` cut to the output's columns, in their declared order (absent ones skipped), with
    each ``lengths`` column replaced by its length. Attributes (``df.attrs``) are kept."""
    o = output(out)
    cols = {c: df[c] for c in o.columns if c in df.columns}
    for c in o.lengths:
        if c in df.columns:
            cols[f"{c}_chars"] = df[c].map(_length).astype("Int64")
        elif f"{c}_chars" in df.columns:  # already cut to this output: the lengths stay
            cols[f"{c}_chars"] = df[f"{c}_chars"]
    res = pd.DataFrame(cols, index=df.index)
    res.attrs = dict(df.attrs)
    return res


def only(row: Mapping[str, Any], out: str | Output) -> dict[str, Any]:
    """One record (a dict) cut to the output's columns, lengths for its ``lengths`` columns."""
    o = output(out)
    rec = {c: row[c] for c in o.columns if c in row}
    for c in o.lengths:
        if c in row:
            rec[f"{c}_chars"] = _length(row[c]) if row[c] is not None else None
        elif f"{c}_chars" in row:
            rec[f"{c}_chars"] = row[f"{c}_chars"]
    return rec


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, made inert with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def plain(value: Any) -> Any:
    """A cell as JSON can hold it (lists, dicts, timestamps, numpy scalars)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(df: pd.DataFrame, out: str | Output) -> list[dict[str, Any]]:
    """The output's rows as JSON-ready dicts (only its columns)."""
    return [{k: plain(v) for k, v in row.items()} for row in allowed(df, out).to_dict("records")]


_NESTED = (list, tuple, np.ndarray, Mapping)


def _json_default(value: Any) -> Any:
    out = plain(value)
    if out is value:
        raise TypeError(f"not JSON: {type(value).__name__}")
    return out


def _cell(v: Any) -> Any:
    if isinstance(v, _NESTED):
        v = json.dumps(v.tolist() if isinstance(v, np.ndarray) else v, ensure_ascii=False, default=_json_default)
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v


def _cell_text(series: pd.Series) -> pd.Series:
    """A column ready for a CSV cell: nested values as JSON text, text neutralised."""
    if series.dtype != object and not isinstance(series.dtype, (pd.StringDtype, pd.CategoricalDtype)):
        return series
    if isinstance(series.dtype, pd.StringDtype):
        # Text only (nothing nested): the formula check in one vectorised pass, not a call per cell.
        out = series.astype(object)
        risky = series.str.startswith(FORMULA_START).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            out[risky] = ["'" + v for v in out[risky]]
        return out
    return pd.Series([_cell(v) for v in series.astype(object).tolist()], index=series.index, dtype=object)


def to_csv(df: pd.DataFrame, out: str | Output, path: str | os.PathLike[str] | None = None, **kwargs: Any
           ) -> str | Path:
    """Write the output's columns of ``df`` as CSV to ``path`` (returned), or return the text
    when ``path`` is None. Lists and dicts become JSON text; formula-like text is neutralised.
    ``kwargs`` go to :meth:`pandas.DataFrame.to_csv` (``date_format``, ``float_format``)."""
    table = allowed(df, out)
    table = pd.DataFrame({c: _cell_text(table[c]) for c in table.columns}, index=table.index)
    # RFC 4180 line ends: a cell holding a carriage return or a newline is then quoted, so a
    # lone "\r" stays inside its cell instead of starting a row in Excel.
    kwargs.setdefault("lineterminator", "\r\n")
    if path is None:
        buf = io.StringIO()
        table.to_csv(buf, index=False, **kwargs)
        return buf.getvalue()
    p = Path(path)
    table.to_csv(p, index=False, **kwargs)
    return p


def protect_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell that starts with a formula character or an apostrophe
    given a leading apostrophe: written to CSV it is inert, and :func:`restore_text`
    gives back exactly the original (for data the library reads again)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or isinstance(out[c].dtype, pd.StringDtype):
            s = out[c].astype(object)
            hit = s.map(lambda v: isinstance(v, str) and v.startswith((*FORMULA_START, "'"))).astype(bool)
            if hit.any():
                out[c] = s.where(~hit, "'" + s[hit].astype(str))
    return out


def restore_text(df: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`protect_text` on a frame read back as text."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or isinstance(out[c].dtype, pd.StringDtype):
            s = out[c].astype(object)
            hit = s.map(lambda v: isinstance(v, str) and v.startswith("'")).astype(bool)
            if hit.any():
                out[c] = s.where(~hit, s[hit].astype(str).str[1:])
    return out


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a rendered report (Markdown, HTML) as UTF-8; its rows came through :func:`allowed`
    or :func:`only`."""
    p = Path(path)
    p.write_text(text, encoding="utf-8")
    return p


def check_columns(columns: Iterable[str], out: str | Output) -> list[str]:
    """The names in ``columns`` the output does not declare (empty when all are allowed)."""
    header = set(output(out).header)
    return [c for c in columns if c not in header]
