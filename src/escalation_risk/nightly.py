"""The nightly job: validate, score every open dispute, record, raise or update alerts.

The night. A date (``2025-06-30``) means the *end* of that day, 23:59:59.999999,
so a cron job run with ``--as-of $(date +%F)`` scores the disputes reported that day;
a date-time (``2025-06-30T18:00``) means that moment. The exact moment is written in
the scores file's ``as_of`` column and recorded in the store.

One night, end to end:

1. load the district's data with ``errors="quarantine"``: bad rows are set aside
   with their reasons in ``OUT/quarantine-<night>.csv`` (and the rows themselves,
   ids, codes and times only, never free text or personal data, in
   ``OUT/rejected-<night>/``), the good ones go on;
2. refuse a stale export: a night more than ``stale_days`` after the newest record
   would score every never-closed dispute as open (``allow_stale`` overrides);
3. under the store's recording lock, score every dispute open at the night (trend
   against each dispute's previous score in the store, reasons and plans for the
   alerted ones), write ``OUT/scores-<night>.csv`` and record the night: scores
   appended, alerts raised or updated, in one transaction. The same night on the same
   input changes nothing; on a changed input it is refused unless ``replace``; a
   night older than the newest recorded one is refused unless ``backfill``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from . import clock, outputs
from .alerts import AlertStore, NightSummary
from .alerts.notify import DeliveryReport, Notifier, Webhook
from .clock import end_of_day
from .dataset import Dataset, load_dataset
from .drift import DriftReport, check_night
from .model import RiskModel, load_model, open_points

log = logging.getLogger(__name__)

DEFAULT_STALE_DAYS = 7


class StaleDataError(ValueError):
    """The night is later than the newest record by more than the allowed margin."""


def resolve_night(as_of: Any) -> pd.Timestamp:
    """The exact moment a night stands for, by the one rule (:func:`escalation_risk.clock.to_moment`):
    a date is the end of that day, a date-time that moment, an offset converted to the zone."""
    return clock.to_moment(as_of, what="night")


def newest_record(ds: Dataset) -> pd.Timestamp | None:
    """The latest moment anything in the data was recorded (reports, closings,
    mediations, flags): how far the export reaches."""
    candidates = [ds.incidents["reported_at"].max(), ds.incidents["closed_at"].max(),
                  ds.mediations["held_at"].max(), ds.person_flags["recorded_at"].max()]
    found = [pd.Timestamp(c) for c in candidates if not pd.isna(c)]
    return max(found) if found else None


def input_fingerprint(ds: Dataset, model_version: str, thresholds: dict[str, float] | None) -> str:
    """SHA-256 of what decides a night's scores: the data, the model, the thresholds."""
    h = hashlib.sha256(ds.fingerprint().encode())
    h.update(model_version.encode())
    h.update(json.dumps(thresholds, sort_keys=True).encode())
    return h.hexdigest()


@dataclass
class NightReport:
    """What a night did: the store's summary, the files written, what was quarantined."""

    summary: NightSummary
    scores: pd.DataFrame
    quarantined_rows: int
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    drift: DriftReport | None = None  # tonight's features against the model's validation window
    nulled_values: int = 0
    delivery: DeliveryReport | None = None  # webhook messages of the night, when asked for

    def __str__(self) -> str:
        lines = [f"night {self.summary.as_of.isoformat()}: {self.summary}"]
        if self.quarantined_rows:
            lines.append(f"quarantined rows: {self.quarantined_rows} (see {self.files.get('quarantine')})")
        if self.drift is not None:
            lines.append(f"drift: {self.drift.verdict}")
        if self.nulled_values:
            lines.append(f"values set to missing in kept rows: {self.nulled_values} "
                         f"(see {self.files.get('quarantine')})")
        if self.delivery is not None:
            lines.append(f"messages: {self.delivery}")
        return "\n".join(lines)


def _night_tag(as_of: pd.Timestamp) -> str:
    if as_of == end_of_day(as_of):
        return as_of.strftime("%Y-%m-%d")
    return as_of.strftime("%Y-%m-%dT%H%M%S")


def _for_csv(scores: pd.DataFrame) -> pd.DataFrame:
    out = scores.copy()
    for c in ("reasons", "reasons_zh", "reason_features"):
        if c in out.columns:
            out[c] = out[c].map(lambda v: json.dumps(list(v), ensure_ascii=False))
    return out


def run_night(data: str | Path | Dataset, model: str | Path | RiskModel, as_of, *,
              store: str | AlertStore = "sqlite:///alerts.db", out_dir: str | Path | None = "out",
              progress: bool = False, thresholds: dict[str, float] | None = None,
              stale_days: float = DEFAULT_STALE_DAYS, allow_stale: bool = False, replace: bool = False,
              backfill: bool = False, lock_timeout: float = 600.0,
              pseudonym_key: str | bytes | Path | None = None, check_drift: bool = True,
              notify: Webhook | None = None, notify_level: str = "orange") -> NightReport:
    """Run one night and return its report. Safe to run again for the same night.

    ``as_of`` is read by :func:`resolve_night` (a date is the end of that day). Raises
    :class:`StaleDataError` when the night is more than ``stale_days`` after the
    newest record (unless ``allow_stale``), and the store's ``NightConflictError``
    for a changed input (unless ``replace``) or an older night (unless ``backfill``).

    With ``notify`` (a :class:`~.alerts.notify.Webhook`), once the night is recorded one
    message per new or rising alert at or above ``notify_level`` is queued in the store
    and sent; a dead endpoint leaves them pending (``report.delivery``) and never fails
    the night. A re-run sends nothing twice.
    """
    night = resolve_night(as_of)
    tag = _night_tag(night)
    out = Path(out_dir) if out_dir is not None else None
    files: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    steps = tqdm(total=4, desc=f"night {tag}", disable=not progress, unit="step")

    t0 = time.perf_counter()
    steps.set_postfix_str("load and validate")
    ds = data if isinstance(data, Dataset) else load_dataset(data, errors="quarantine",
                                                             pseudonym_key=pseudonym_key)
    newest = newest_record(ds)
    if newest is not None and night - newest > pd.Timedelta(days=stale_days) and not allow_stale:
        raise StaleDataError(
            f"the night {night.isoformat()} is {(night - newest).days} days after the newest record in the data "
            f"({newest.isoformat()}); every dispute never closed would be scored as open. Export fresh data, "
            f"or pass allow_stale (--allow-stale) if the district really had no records for {stale_days:g}+ days")
    rm = model if isinstance(model, RiskModel) else load_model(model)
    st = store if isinstance(store, AlertStore) else AlertStore(store)
    quarantined = sum(len(r) for r in ds.rejected.values())
    nulled = int((ds.quarantine["action"] == "value set to missing, row kept").sum()) \
        if "action" in ds.quarantine.columns else 0
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if len(ds.quarantine):
            files["quarantine"] = out / f"quarantine-{tag}.csv"
            outputs.to_csv(ds.quarantine, "quarantine", files["quarantine"])
            rej = out / f"rejected-{tag}"
            rej.mkdir(exist_ok=True)
            for name, rows in ds.rejected.items():
                outputs.to_csv(rows, f"rejected/{name}", rej / f"{name}.csv")
            log.warning("quarantined %d row(s); report in %s", quarantined, files["quarantine"])
    seconds["load"] = time.perf_counter() - t0
    steps.update()

    fingerprint = input_fingerprint(ds, rm.version, thresholds)
    # One night at a time per store, from reading the previous scores (the trend) to
    # recording: two nights at once would each compute trends against the wrong one.
    with st.recording_lock(timeout=lock_timeout):
        t0 = time.perf_counter()
        steps.set_postfix_str("score open disputes")
        points = open_points(ds, night)
        previous = st.previous_scores(points["dispute_id"].tolist(), before=night)
        scores = rm.score(ds, points, history=previous, thresholds=thresholds)
        seconds["score"] = time.perf_counter() - t0
        steps.update()

        t0 = time.perf_counter()
        steps.set_postfix_str("record alerts")
        summary = st.record_night(scores, night, rm.version, input_fingerprint=fingerprint, replace=replace,
                                  backfill=backfill)
        seconds["record"] = time.perf_counter() - t0
        steps.update()

    t0 = time.perf_counter()
    steps.set_postfix_str("write scores")
    if out is not None and not summary.already_recorded:
        # Written once the night is recorded, so the file never shows a night the store refused.
        files["scores"] = out / f"scores-{tag}.csv"
        outputs.to_csv(_for_csv(scores), "scores", files["scores"], date_format="%Y-%m-%dT%H:%M:%S.%f")
    seconds["write"] = time.perf_counter() - t0
    steps.update()
    steps.close()
    t0 = time.perf_counter()
    drift = check_night(rm, ds, night) if check_drift else None  # logs a warning when features moved
    seconds["drift"] = time.perf_counter() - t0
    delivery = None
    if notify is not None:
        t0 = time.perf_counter()
        delivery = Notifier(st, notify, min_level=notify_level).notify_night(night)
        seconds["notify"] = time.perf_counter() - t0
    return NightReport(summary=summary, scores=scores, quarantined_rows=quarantined, files=files, seconds=seconds,
                       nulled_values=nulled, drift=drift, delivery=delivery)
