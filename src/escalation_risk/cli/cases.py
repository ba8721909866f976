"""``cases``: the past disputes most like one, and the typical-case library of a period."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..dataset import Dataset, DataValidationError, load_dataset
from ..pseudonym_keys import PseudonymKeyError
from .errors import fail
from .params import MOMENT, RANGE_START

MODEL_ENV = "ESCALATION_RISK_MODEL"
INDEX_ENV = "ESCALATION_RISK_CASE_INDEX"
DEFAULT_MODEL = "models/default"


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def case_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """An answer table as JSON-ready dicts."""
    return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict("records")]


def for_csv(df: pd.DataFrame) -> pd.DataFrame:
    """List and dict columns as JSON text, for a CSV file."""
    out = df.copy()
    for col in ("reasons", "reason_features", "shared_reasons", "mediations"):
        if col in out.columns:
            out[col] = [json.dumps(_plain(v), ensure_ascii=False) for v in out[col]]
    return out


def case_lines(df: pd.DataFrame, *, reasons: bool = True) -> list[str]:
    """A readable block per case, for a terminal."""
    lines = []
    for r in df.itertuples(index=False):
        esc = {True: "escalated" + (f" ({r.escalated_offence})" if r.escalated_offence else ""),
               False: "did not escalate", None: "outcome not yet known"}[r.escalated]
        meds = ", ".join(f"{m['held_at'][:10]} {m['mediator_type']}: {m['outcome']}" for m in r.mediations) or "none"
        closed = f", closed {pd.Timestamp(r.closed_at):%Y-%m-%d}" if r.closed_at is not None and \
            not pd.isna(r.closed_at) else ""
        other = "" if r.same_category else " [other category]"
        lines.append(f"{r.rank:>2}. {r.dispute_id} {r.category}{other}, reported {r.reported_at:%Y-%m-%d}, "
                     f"score then {r.probability:.2f} ({r.level}); plan {r.plan}; {esc}{closed}")
        lines.append(f"    mediations: {meds}")
        if getattr(r, "alert_plan", None):
            lines.append(f"    recorded alert: plan {r.alert_plan}, {r.alert_status}"
                         f"{', outcome: ' + r.alert_outcome if r.alert_outcome else ''}")
        if reasons and r.reasons:
            lines.append(f"    reasons then: {'; '.join(r.reasons)}")
    return lines


def with_alerts(df: pd.DataFrame, store_url: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """Add what the alert store recorded for each case, as it stood at ``as_of``: the plan
    of its first alert raised by then (that of the last night scored by ``as_of``), that
    alert's status then (from the audit trail) and its outcome if it was closed by then."""
    from ..alerts import AlertStore
    plans: list[str | None] = []
    statuses: list[str | None] = []
    outcomes: list[str | None] = []
    with AlertStore(store_url) as store:
        for did in df["dispute_id"]:
            a = store.alerts(dispute_id=str(did))
            a = a[a["raised_at"] <= as_of].sort_values("alert_id")
            if a.empty:
                plans.append(None)
                statuses.append(None)
                outcomes.append(None)
                continue
            first = a.iloc[0]
            ev = store.events(int(first["alert_id"]))
            ev = ev[ev["at"] <= as_of]
            # The alert's plan follows the nightly scores: take the last night's by as_of, not today's.
            sc = store.scores(dispute_id=str(did))
            sc = sc[(sc["as_of"] <= as_of) & (sc["as_of"] >= first["raised_at"])]
            plans.append(str(sc["plan"].iloc[-1]) if len(sc) else str(first["plan"]))
            statuses.append(str(ev["to_status"].iloc[-1]) if len(ev) else "raised")
            closed = first["closed_at"]
            outcomes.append(str(first["outcome"]) if not pd.isna(closed) and closed <= as_of else None)
    out = df.copy()
    out["alert_plan"], out["alert_status"], out["alert_outcome"] = plans, statuses, outcomes
    return out


def _load(data_dir: str) -> Dataset:
    try:
        return load_dataset(data_dir)
    except PseudonymKeyError as e:
        fail(e)
    except DataValidationError as e:
        click.echo(str(e), err=True)
        raise SystemExit(1) from None


@click.command("cases")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--dispute", "dispute_id", default=None, help="The dispute whose similar past cases are wanted.")
@click.option("--as-of", "as_of", default=None, type=MOMENT,
              help="What was known at this moment, a date: the end of that day (required with --dispute; "
                   "default for --typical: the data's end).")
@click.option("--model", "model_dir", default=lambda: os.environ.get(MODEL_ENV, DEFAULT_MODEL),
              show_default=f"${MODEL_ENV} or {DEFAULT_MODEL}", type=click.Path(file_okay=False),
              help="Model directory.")
@click.option("--k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="How many cases.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--typical", is_flag=True, help="Build the typical-case library of a period instead.")
@click.option("--start", default=None, type=RANGE_START,
              help="--typical: disputes reported from this date (its start).")
@click.option("--end", default=None, type=MOMENT, help="--typical: disputes reported up to this date (its end).")
@click.option("--per-category", default=3, show_default=True, type=click.IntRange(min=1),
              help="--typical: escalated and defused cases per category.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="--typical: write typical-cases.csv and typical-cases.md here (default: print the report).")
@click.option("--index", "index_dir", envvar=INDEX_ENV, default=None, type=click.Path(file_okay=False),
              help=f"A case index written by --build-index (env {INDEX_ENV}); default: build one now.")
@click.option("--build-index", "build_dir", default=None, type=click.Path(file_okay=False),
              help="Build the case index of the night --as-of (default: the data's end) into this folder, "
                   "reusing --index (last night's) for the disputes it holds.")
@click.option("--store", "store_url", default=None, metavar="URL",
              help="Alert store: add each case's recorded alert (plan, status, outcome as of --as-of).")
def cases(data_dir: str, dispute_id: str | None, as_of: pd.Timestamp | None, model_dir: str, k: int, fmt: str,
          typical: bool, start: pd.Timestamp | None, end: pd.Timestamp | None, per_category: int, out_dir: str | None,
          index_dir: str | None, build_dir: str | None, store_url: str | None) -> None:
    """The past disputes most like --dispute as known at --as-of, in the model's own terms
    (nearest on SHAP contributions, same category first); or, with --typical, the
    typical-case library of a period: per category the typical escalations and the
    near-misses that were defused, with their reasons and what was done; or, with
    --build-index, tonight's case index for the others to load."""
    from ..artifacts import ModelLoadError
    from ..cases import (
        CaseIndexLoadError,
        build_case_index,
        load_case_index,
        similar_cases,
        typical_cases,
        typical_report,
    )
    from ..model import load_model
    if not (typical or build_dir) and (dispute_id is None or as_of is None):
        raise click.UsageError("give --dispute ID and --as-of DATE (or --typical, or --build-index DIR)")
    t, t0, t1 = as_of, start, end
    ds = _load(data_dir)
    try:
        model = load_model(model_dir)
        index = load_case_index(index_dir, model) if index_dir else None
        if build_dir:
            index = build_case_index(model, ds, t, previous=index)
            index.save(build_dir)
            click.echo(f"case index of {index.night:%Y-%m-%d %H:%M}: {len(index):,} disputes, "
                       f"model {index.model_version} -> {build_dir}")
            return
        if typical:
            if index is None or (t is not None and index.night < t):
                index = build_case_index(model, ds, t)
            lib = typical_cases(index, t0, t1, as_of=t, per_category=per_category)
            if store_url and len(lib):
                lib = with_alerts(lib, store_url, t if t is not None else index.night)
            report = typical_report(lib)
            if out_dir is not None:
                out = Path(out_dir)
                out.mkdir(parents=True, exist_ok=True)
                for_csv(lib).to_csv(out / "typical-cases.csv", index=False)
                (out / "typical-cases.md").write_text(report, encoding="utf-8")
                click.echo(f"{len(lib)} cases in {lib['category'].nunique() if len(lib) else 0} categories: "
                           f"{out / 'typical-cases.csv'}, {out / 'typical-cases.md'}")
            elif fmt == "csv":
                click.echo(for_csv(lib).to_csv(index=False), nl=False)
            elif fmt == "json":
                click.echo(json.dumps(case_records(lib), ensure_ascii=False, indent=2))
            else:
                click.echo(report)
            return
        assert dispute_id is not None and t is not None
        df = similar_cases(model, ds, dispute_id, t, k=k, index=index)
        if store_url:
            df = with_alerts(df, store_url, t)
    except (ModelLoadError, CaseIndexLoadError, FileNotFoundError, ValueError, sa.exc.SQLAlchemyError) as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
    q = df.attrs["query"]
    if fmt == "json":
        click.echo(json.dumps({"query": q, "cases": case_records(df)}, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(for_csv(df).to_csv(index=False), nl=False)
    else:
        click.echo(f"dispute {q['dispute_id']} ({q['category']}) at {q['as_of'][:16]}: score {q['probability']:.2f}; "
                   f"leading reasons: {'; '.join(q['reasons']) or '-'}")
        click.echo(f"the {len(df)} most similar past disputes (model {q['model_version']}):")
        for line in case_lines(df):
            click.echo(line)


def alert_cases(alert: dict[str, Any], data_dir: str | None, model_dir: str, *, as_json: bool = False,
                k: int = 3) -> list | str:
    """The ``k`` most similar past cases of an alert's dispute at the night it last showed:
    JSON-ready dicts, or a one-line note when they cannot be found (the alert view
    must work without the data)."""
    if data_dir is None:
        return "(give --data DIR, or set ESCALATION_RISK_DATA, to list the three most similar past cases)"
    from ..artifacts import ModelLoadError
    from ..cases import load_case_index, similar_cases
    from ..model import load_model
    try:
        ds = load_dataset(data_dir)
        model = load_model(model_dir)
        # Tonight's index when the nightly job left one ($ESCALATION_RISK_CASE_INDEX), else built now.
        index = load_case_index(os.environ[INDEX_ENV], model) if os.environ.get(INDEX_ENV) else None
        df = similar_cases(model, ds, str(alert["dispute_id"]), alert["last_as_of"], k=k, index=index)
    except (DataValidationError, PseudonymKeyError, ModelLoadError, FileNotFoundError, ValueError) as e:
        return f"(similar past cases unavailable: {' '.join(str(e).split())})"
    return case_records(df) if as_json else case_lines(df)
