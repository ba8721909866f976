"""``briefing``: the night's self-contained HTML briefing (counts, alerts, overdue, grids, index, drift)."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import click
import pandas as pd

from ..dataset import DataValidationError
from ..province import is_province
from .districts import district_option, folders
from .errors import check_store_url, fail, open_store
from .params import MOMENT


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--store", default=lambda: os.environ.get("ESCALATION_RISK_STORE", "sqlite:///alerts.db"),
              show_default="$ESCALATION_RISK_STORE or sqlite:///alerts.db", callback=check_store_url,
              help="SQLAlchemy URL of the alert store.")
@click.option("--as-of", "as_of", required=True, type=MOMENT, metavar="DATE|DATETIME",
              help="The night, as recorded by the nightly job (a date: the end of that day).")
@click.option("--model", "model_dir", default=None, type=click.Path(file_okay=False),
              help="Model directory: check tonight's features for drift (without it the drift line says "
                   "it was not checked).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--by", type=click.Choice(["grid", "town", "district"]), default="town", show_default=True,
              help="Units of the governance table.")
@click.option("--period", default="M", show_default=True, help="Period of the governance table (pandas code).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False))
@district_option
def briefing(data_dir: str, store: str, as_of: pd.Timestamp, model_dir: str | None, lang: str, by: str, period: str,
             out_dir: str, district: str | None) -> None:
    """Write OUT/briefing-AS_OF.html: one self-contained page for the night's review.

    A province folder gets an index page and one page per district
    (briefing-AS_OF-CODE.html); a district's folder inside a province folder (or
    --district) the page of that district's night in the province's store.
    """
    from ..alerts.district import store_districts
    from ..artifacts import ModelLoadError
    from ..briefing import write_briefing, write_night_briefing
    from ..dataset import load_dataset
    try:
        model = None
        if model_dir is not None:
            from ..model import load_model
            model = load_model(model_dir)

        def drift_of(ds: Any) -> Any:
            from ..drift import check_night
            return None if model is None else check_night(model, ds, as_of)

        with open_store(store, create=False) as st:
            found = folders(data_dir, district, store_districts(st))
            if len(found) == 1 and not is_province(data_dir):
                code, folder = next(iter(found.items()))
                ds = load_dataset(folder, errors="quarantine")
                path = write_briefing(ds, st, as_of, out_dir, lang=lang, drift=drift_of(ds), by=by, period=period,
                                      district=code)
            else:
                datasets = {c: partial(load_dataset, f, errors="quarantine") for c, f in found.items()}
                drifts = {c: drift_of(load()) for c, load in datasets.items()} if model is not None else {}
                path = write_night_briefing(datasets, st, as_of, out_dir, lang=lang, drifts=drifts, by=by,
                                            period=period)["briefing"]
    except (DataValidationError, ModelLoadError, FileNotFoundError, ValueError) as e:
        fail(e)
    click.echo(f"briefing: {path}")
