"""``briefing``: the night's self-contained HTML briefing (counts, alerts, overdue, grids, index, drift)."""

from __future__ import annotations

import os

import click

from ..dataset import DataValidationError


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--store", default=lambda: os.environ.get("ESCALATION_RISK_STORE", "sqlite:///alerts.db"),
              show_default="$ESCALATION_RISK_STORE or sqlite:///alerts.db", help="SQLAlchemy URL of the alert store.")
@click.option("--as-of", "as_of", required=True, help="The night, as recorded by the nightly job.")
@click.option("--model", "model_dir", default=None, type=click.Path(file_okay=False),
              help="Model directory: check tonight's features for drift (without it the drift line says "
                   "it was not checked).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--by", type=click.Choice(["grid", "town", "district"]), default="town", show_default=True,
              help="Units of the governance table.")
@click.option("--period", default="M", show_default=True, help="Period of the governance table (pandas code).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False))
def briefing(data_dir: str, store: str, as_of: str, model_dir: str | None, lang: str, by: str, period: str,
             out_dir: str) -> None:
    """Write OUT/briefing-AS_OF.html: one self-contained page for the night's review."""
    from ..alerts import AlertStore
    from ..artifacts import ModelLoadError
    from ..briefing import write_briefing
    from ..dataset import load_dataset
    from ..nightly import resolve_night
    try:
        night = resolve_night(as_of)  # the same moment the nightly job recorded (a date: its end)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--as-of") from None
    try:
        ds = load_dataset(data_dir, errors="quarantine")
        drift = None
        if model_dir is not None:
            from ..drift import check_night
            from ..model import load_model
            drift = check_night(load_model(model_dir), ds, night)
        with AlertStore(store) as st:
            path = write_briefing(ds, st, night, out_dir, lang=lang, drift=drift, by=by, period=period)
    except (DataValidationError, ModelLoadError, FileNotFoundError, ValueError) as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
    click.echo(f"briefing: {path}")
