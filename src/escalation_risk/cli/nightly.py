"""``nightly``: the batch job, one night end to end.

Exit codes, for a scheduler: 0 the night ran clean; 1 it failed (nothing recorded: bad data, a
stale export, a corrected export without --replace, an older night without --backfill, or
the store busy with another night past --lock-timeout; one line on stderr);
2 bad arguments; 3 the night ran and was recorded, but rows were set aside or values
blanked (see the quarantine report); 4 the night ran clean but some webhook messages
are still pending (``alerts deliver`` sends them).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click
import pandas as pd

from ..dataset import DataValidationError
from ..pseudonym_keys import PseudonymKeyError
from .alerts import make_webhook, notify_options
from .errors import EXIT_DELIVERY_PENDING, EXIT_QUARANTINED, check_store_url, fail, open_store
from .params import MOMENT

if TYPE_CHECKING:
    from ..alerts import AlertStore

AS_OF_HELP = ("The night scored. A date (2025-06-30) means the END of that day, so everything reported on it "
              "is scored; a date-time (2025-06-30T18:00) means that moment. The exact moment is written in "
              "the scores file and the store.")


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--model", "model_dir", default=lambda: os.environ.get("ESCALATION_RISK_MODEL", "models/default"),
              show_default="$ESCALATION_RISK_MODEL or models/default", type=click.Path(file_okay=False),
              help="Model directory.")
@click.option("--as-of", "as_of", required=True, type=MOMENT, metavar="DATE|DATETIME", help=AS_OF_HELP)
@click.option("--store", default=lambda: os.environ.get("ESCALATION_RISK_STORE", "sqlite:///alerts.db"),
              show_default="$ESCALATION_RISK_STORE or sqlite:///alerts.db", callback=check_store_url,
              help="SQLAlchemy URL of the alert store.")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the scores and the quarantine report.")
@click.option("--thresholds", default=None, metavar="red=P,orange=P,yellow=P",
              help="Override the model's level thresholds for this run.")
@click.option("--stale-days", default=7.0, show_default=True, type=click.FloatRange(min=0),
              help="Refuse a night more than this many days after the newest record in the data.")
@click.option("--allow-stale", is_flag=True, help="Score a night far after the newest record anyway.")
@click.option("--replace", is_flag=True,
              help="Record a night already recorded from different input (a corrected export); the first "
                   "recording stays in the audit trail.")
@click.option("--backfill", is_flag=True, help="Record a night older than the newest recorded one.")
@click.option("--lock-timeout", default=600.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait while another night is being recorded in the same store.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
@click.option("--notify", "notify_url", envvar="ESCALATION_RISK_NOTIFY_URL", default=None, metavar="URL",
              help="POST one message per new or rising alert to this webhook (env ESCALATION_RISK_NOTIFY_URL).")
@click.option("--notify-level", type=click.Choice(["red", "orange", "yellow"]), default="orange", show_default=True,
              help="Lowest level that sends a message.")
@notify_options
@click.option("--report", is_flag=True, help="Also write OUT/briefing-NIGHT.html (see `briefing`); a province: "
              "that page is an index of the districts, each with its own briefing-NIGHT-CODE.html.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="The briefing's language.")
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="Where the districts are scored: in this process, or one Spark task each.")
@click.option("--spark-master", default=None, metavar="URL",
              help="With --engine spark: e.g. local[2]; default: the session of spark-submit, else local[*].")
def nightly(data_dir: str, model_dir: str, as_of: pd.Timestamp, store: str, out_dir: str, thresholds: str | None,
            stale_days: float, allow_stale: bool, replace: bool, backfill: bool, lock_timeout: float,
            progress: bool | None, notify_url: str | None, notify_level: str, notify_secret: str | None,
            notify_timeout: float, notify_shape: str, report: bool, lang: str, engine: str = "local",
            spark_master: str | None = None) -> None:
    """Score every dispute open on the night AS_OF and raise or update alerts.

    DATA_DIR is a district's folder, or a province's: a folder of district folders
    named by district code. Both run the same night, every option alike: a province is
    linked province-wide, then each district is scored (--engine) and recorded in its
    own transaction under the store's lock; with --report it gets an index page and a
    page per district. A district's folder inside a province folder is that district
    when the store holds its nights.

    Exit 0 ok, 1 failed (refused, or the store busy past --lock-timeout), 2 bad arguments,
    3 recorded but with quarantined rows,
    4 recorded but some messages are still pending (send them later with `alerts deliver`).
    """
    hook = make_webhook(notify_url, notify_secret, notify_timeout, notify_shape) if notify_url else None
    from ..alerts import NightConflictError, StoreBusyError
    from ..artifacts import ModelLoadError
    from ..nightly import StaleDataError, run_night
    from ..province import ProvinceError
    from ..spark import SparkUnavailableError
    levels = _thresholds(thresholds) if thresholds else None
    if spark_master and engine != "spark":
        raise click.BadParameter("--spark-master is for --engine spark", param_hint="--spark-master")
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        with open_store(store) as st:
            result = run_night(data_dir, model_dir, as_of, store=st, out_dir=out_dir, progress=progress,
                               district=_folder_district(data_dir, st),
                               thresholds=levels, stale_days=stale_days, allow_stale=allow_stale, replace=replace,
                               backfill=backfill, lock_timeout=lock_timeout, notify=hook,
                               notify_level=notify_level, report=report, lang=lang, engine=engine,
                               spark_master=spark_master)
    except (DataValidationError, ModelLoadError, PseudonymKeyError, StaleDataError, NightConflictError,
            StoreBusyError, SparkUnavailableError, ProvinceError, FileNotFoundError, ValueError) as e:
        fail(e)
    click.echo(str(result))
    click.echo(f"store: {result.store}")
    for what in ("scores", "briefing"):
        if what in result.files:
            click.echo(f"{what}: {result.files[what]}")
    if result.quarantined_rows or result.nulled_values:
        raise SystemExit(EXIT_QUARANTINED)
    if result.delivery is not None and not result.delivery.ok:
        raise SystemExit(EXIT_DELIVERY_PENDING)


def _folder_district(data_dir: str, store: AlertStore) -> str | None:
    """A district's folder inside a province folder is that district when the store holds its
    nights (as ``briefing`` and ``governance`` read it), so that its night is not recorded as a
    lone district ``""`` beside the province's."""
    from ..alerts.district import store_districts
    from ..province import folder_district
    name = folder_district(data_dir)
    return name if name is not None and name in store_districts(store) else None


def _thresholds(text: str) -> dict[str, float]:
    """'red=0.5,orange=0.2,yellow=0.1' -> thresholds; all three levels, red >= orange >= yellow."""
    try:
        pairs = dict(part.split("=", 1) for part in text.split(","))
        out = {k.strip(): float(v) for k, v in pairs.items()}
    except ValueError:
        raise click.BadParameter(f"expected red=P,orange=P,yellow=P, got {text!r}",
                                 param_hint="--thresholds") from None
    if set(out) != {"red", "orange", "yellow"} or not (out["red"] >= out["orange"] >= out["yellow"]):
        raise click.BadParameter("give red, orange and yellow, with red >= orange >= yellow",
                                 param_hint="--thresholds")
    return out
