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
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="For a province folder: run the districts in this process, or one Spark task each.")
@click.option("--spark-master", default=None, metavar="URL",
              help="With --engine spark: e.g. local[2]; default: the session of spark-submit, else local[*].")
def nightly(data_dir: str, model_dir: str, as_of: str, store: str, out_dir: str, thresholds: str | None,
            progress: bool | None, engine: str = "local", spark_master: str | None = None) -> None:
    """Score every dispute open on the night AS_OF and raise or update alerts.

    DATA_DIR is a district's folder, or a province's: a folder of district folders
    named by district code (each district recorded in its own transaction).
    """
    from ..artifacts import ModelLoadError
    from ..nightly import run_night
    try:
        night = pd.Timestamp(as_of)
    except ValueError:
        raise click.BadParameter(f"not a date: {as_of!r}", param_hint="--as-of") from None
    levels = _thresholds(thresholds) if thresholds else None
    if progress is None:
        progress = sys.stderr.isatty()
    from ..province import is_province
    if is_province(data_dir):
        _province_night(data_dir, model_dir, night, store, out_dir, levels, engine, spark_master)
        return
    if engine != "local" or spark_master:
        raise click.BadParameter(f"{data_dir} is a district's folder; --engine spark runs a province folder "
                                 "(a folder of district folders)", param_hint="--engine")
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


def _province_night(data_dir: str, model_dir: str, night: pd.Timestamp, store: str, out_dir: str,
                    levels: dict[str, float] | None, engine: str, spark_master: str | None) -> None:
    from ..artifacts import ModelLoadError
    from ..province import ProvinceError, run_province_night
    from ..spark import SparkUnavailableError
    try:
        report = run_province_night(data_dir, model_dir, night, store=store, out_dir=out_dir, engine=engine,
                                    spark_master=spark_master, thresholds=levels)
    except SparkUnavailableError as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
    except (DataValidationError, ModelLoadError, ProvinceError, FileNotFoundError, ValueError) as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
    click.echo(str(report))
    if "scores" in report.files:
        click.echo(f"scores: {report.files['scores']}")
