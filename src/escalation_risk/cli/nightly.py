"""``nightly``: the batch job, one night end to end."""

from __future__ import annotations

import os
import sys

import click
import pandas as pd

from ..dataset import DataValidationError


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--model", "model_dir", default=lambda: os.environ.get("ESCALATION_RISK_MODEL", "models/default"),
              show_default="$ESCALATION_RISK_MODEL or models/default", type=click.Path(file_okay=False),
              help="Model directory.")
@click.option("--as-of", "as_of", required=True, help="The night scored, e.g. 2025-06-30.")
@click.option("--store", default=lambda: os.environ.get("ESCALATION_RISK_STORE", "sqlite:///alerts.db"),
              show_default="$ESCALATION_RISK_STORE or sqlite:///alerts.db", help="SQLAlchemy URL of the alert store.")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the scores and the quarantine report.")
@click.option("--thresholds", default=None, metavar="red=P,orange=P,yellow=P",
              help="Override the model's level thresholds for this run.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
def nightly(data_dir: str, model_dir: str, as_of: str, store: str, out_dir: str, thresholds: str | None,
            progress: bool | None) -> None:
    """Score every dispute open on the night AS_OF and raise or update alerts."""
    from ..artifacts import ModelLoadError
    from ..nightly import run_night
    try:
        night = pd.Timestamp(as_of)
    except ValueError:
        raise click.BadParameter(f"not a date: {as_of!r}", param_hint="--as-of") from None
    levels = _thresholds(thresholds) if thresholds else None
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        report = run_night(data_dir, model_dir, night, store=store, out_dir=out_dir, progress=progress,
                           thresholds=levels)
    except (DataValidationError, ModelLoadError, FileNotFoundError, ValueError) as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
    click.echo(str(report))
    if "scores" in report.files:
        click.echo(f"scores: {report.files['scores']}")


def _thresholds(text: str) -> dict[str, float]:
    """'red=0.5,orange=0.2,yellow=0.1' -> thresholds; all three levels, red >= orange >= yellow."""
    try:
        pairs = dict(part.split("=", 1) for part in text.split(","))
        out = {k.strip(): float(v) for k, v in pairs.items()}
    except ValueError:
        raise click.BadParameter(f"expected red=P,orange=P,yellow=P, got {text!r}", param_hint="--thresholds") from None
    if set(out) != {"red", "orange", "yellow"} or not (out["red"] >= out["orange"] >= out["yellow"]):
        raise click.BadParameter("give red, orange and yellow, with red >= orange >= yellow",
                                 param_hint="--thresholds") from None
    return out
