"""``plans-report``: what worked, from the alert store's plans and outcomes and the data's crimes."""

from __future__ import annotations

import json
import os

import click
import sqlalchemy as sa

from ..dataset import DataValidationError, load_dataset
from ..pseudonym_keys import PseudonymKeyError
from .cases import case_records


@click.command("plans-report")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--store", "store_url", default=lambda: os.environ.get("ESCALATION_RISK_STORE", "sqlite:///alerts.db"),
              show_default="$ESCALATION_RISK_STORE or sqlite:///alerts.db", help="SQLAlchemy URL of the alert store.")
@click.option("--horizon", default=90, show_default=True, type=click.IntRange(min=1), help="Label horizon in days.")
@click.option("--band-width", "band_width", default=0.5, show_default=True, type=click.FloatRange(min=0.01),
              help="Width of the score bands matched on (log-odds), within each category.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--figure", default=None, type=click.Path(dir_okay=False), help="Also draw the forest plot to this PNG.")
def plans_report(data_dir: str, store_url: str, horizon: int, band_width: float, fmt: str, figure: str | None) -> None:
    """Escalation after each response plan, by level and category, against comparable
    disputes (same category, similar score) that got another plan. Observational."""
    from ..alerts import AlertStore, SchemaVersionError
    from ..plan_effects import CAVEAT, format_plan_report, plan_effects, plan_units, plot_plan_effects
    try:
        ds = load_dataset(data_dir)
        with AlertStore(store_url) as store:
            units = plan_units(store, ds, horizon_days=horizon)
    except (DataValidationError, PseudonymKeyError, SchemaVersionError, sa.exc.SQLAlchemyError, ValueError) as e:
        click.echo(f"error: {' '.join(str(e).split())}", err=True)
        raise SystemExit(1) from None
    if units.empty:
        click.echo(f"error: {_what_it_needs(units.attrs, ds, data_dir, horizon)}", err=True)
        raise SystemExit(1)
    report = plan_effects(units, band_width=band_width)
    if figure:
        import matplotlib
        matplotlib.use("Agg")
        ax = plot_plan_effects(report)
        ax.figure.savefig(figure, dpi=120, bbox_inches="tight")
    if fmt == "json":
        click.echo(json.dumps({"caveat": CAVEAT, "units": len(units), "rows": case_records(report)},
                              ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(report.to_csv(index=False), nl=False)
    else:
        click.echo(format_plan_report(report, units))


def _what_it_needs(counts: dict, ds, data_dir: str, horizon: int) -> str:
    """Why there is nothing to compare, and what the report needs."""
    from ..labels import data_end
    if not counts:
        return ("the store holds no scored dispute: the report compares the plans of recorded nights; "
                "record some first (escalation-risk nightly DATA --store URL)")
    end = data_end(ds)
    return (f"no scored dispute in the store has an observed outcome yet: the report needs disputes whose "
            f"{horizon}-day horizon after their first alert (or first score) ended by the data's last record "
            f"({end:%Y-%m-%d}); of the store's disputes {counts.get('horizon_not_over', 0)} have a horizon still "
            f"open and {counts.get('not_in_data', 0)} are not in {data_dir}. Run it again on data reaching "
            f"{horizon} days past the first recorded nights")
