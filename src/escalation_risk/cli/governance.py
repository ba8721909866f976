"""``governance``: the five-dimension governance index per grid, town or district and period."""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack

import click
import pandas as pd

from ..dataset import DataValidationError
from .districts import district_option, folders
from .errors import check_store_url, fail, open_store
from .params import MOMENT


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--store", default=lambda: os.environ.get("ESCALATION_RISK_STORE"),
              show_default="$ESCALATION_RISK_STORE", help="SQLAlchemy URL of the alert store (without one, "
              "risk perception and closed-loop handling are not computed).")
@click.option("--by", type=click.Choice(["grid", "town", "district"]), default="grid", show_default=True)
@click.option("--period", default="M", show_default=True, help="A pandas period code: M, Q, Y, W...")
@click.option("--as-of", "as_of", default=None, type=MOMENT,
              help="Count only what was known then (a date: the end of that day; default: the data's end).")
@click.option("--min-denominator", type=click.IntRange(min=1), default=10, show_default=True,
              help="Below this many records an indicator says 'not enough data'.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@district_option
def governance(data_dir: str, store: str | None, by: str, period: str, as_of: pd.Timestamp | None, min_denominator: int,
               fmt: str, district: str | None) -> None:
    """The governance index of DATA_DIR: risk perception, closed loop, effectiveness,
    participation, evaluation and their composite, each with numerator and denominator.

    A province folder gives every district's (a ``district`` column first), each read
    with its own nights in the store."""
    from ..alerts.district import district_view, store_districts
    from ..dataset import load_dataset
    from ..governance import governance_index
    try:
        pd.Period("2024-01-01", freq=period)
    except ValueError:
        raise click.BadParameter(f"not a pandas period code: {period!r}", param_hint="--period") from None
    parts = []
    with ExitStack() as stack:
        st = stack.enter_context(open_store(check_store_url(None, None, store), create=False)) if store else None
        found = folders(data_dir, district, store_districts(st) if st is not None else None)
        for code, folder in found.items():
            try:
                ds = load_dataset(folder)
                view = district_view(st, code) if st is not None else None
                g = governance_index(ds, view, by=by, period=period, as_of=as_of, min_denominator=min_denominator)
            except (DataValidationError, ValueError) as e:
                fail(f"{f'district {code}: ' if code else ''}{e}")
            parts.append(g.assign(district=code)[["district", *g.columns]] if code else g)
    g = pd.concat(parts, ignore_index=True)
    out = g.assign(period=g["period"].astype(str))
    if fmt == "json":
        recs = json.loads(out.drop(columns="detail").to_json(orient="records", force_ascii=False))
        for rec, detail in zip(recs, out["detail"]):
            rec["detail"] = detail
        click.echo(json.dumps(recs, ensure_ascii=False, indent=1))
    elif fmt == "csv":
        out = out.assign(detail=[json.dumps(d, ensure_ascii=False) for d in out["detail"]])
        out.to_csv(sys.stdout, index=False, float_format="%.4g")
    else:
        first = ["district"] if "district" in out.columns else []
        show = out[[*first, "unit", "period", "name_zh", "indicator", "numerator", "denominator", "score", "change",
                    "status"]]
        click.echo(show.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
