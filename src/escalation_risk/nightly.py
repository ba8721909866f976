"""The nightly job: validate, score every open dispute, record, raise or update alerts.

One night, end to end:

1. load the district's data with ``errors="quarantine"``: bad rows are set aside
   with their reasons in ``OUT/quarantine-<night>.csv`` (and the rows themselves,
   pseudonymised, in ``OUT/rejected-<night>/``), the good ones go on;
2. score every dispute open at ``as_of`` (trend against each dispute's previous
   score in the store, reasons and plans for the alerted ones);
3. write the scores to ``OUT/scores-<night>.csv``;
4. record the night in the alert store: scores appended, alerts raised or updated,
   all in one transaction, so a crash leaves the store as it was and running the
   same night again changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .alerts import AlertStore, NightSummary
from .dataset import Dataset, load_dataset
from .drift import DriftReport, check_night
from .model import RiskModel, load_model, open_points

log = logging.getLogger(__name__)


@dataclass
class NightReport:
    """What a night did: the store's summary, the files written, what was quarantined."""

    summary: NightSummary
    scores: pd.DataFrame
    quarantined_rows: int
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    drift: DriftReport | None = None  # tonight's features against the model's validation window

    def __str__(self) -> str:
        lines = [str(self.summary)]
        if self.quarantined_rows:
            lines.append(f"quarantined rows: {self.quarantined_rows} (see {self.files.get('quarantine')})")
        if self.drift is not None:
            lines.append(f"drift: {self.drift.verdict}")
        return "\n".join(lines)


def _night_tag(as_of: pd.Timestamp) -> str:
    return as_of.strftime("%Y-%m-%d") if as_of == as_of.normalize() else as_of.strftime("%Y-%m-%dT%H%M%S")


def _for_csv(scores: pd.DataFrame) -> pd.DataFrame:
    out = scores.copy()
    for c in ("reasons", "reasons_zh", "reason_features"):
        if c in out.columns:
            out[c] = out[c].map(lambda v: json.dumps(list(v), ensure_ascii=False))
    return out


def run_night(data: str | Path | Dataset, model: str | Path | RiskModel, as_of, *,
              store: str | AlertStore = "sqlite:///alerts.db", out_dir: str | Path | None = "out",
              progress: bool = False, thresholds: dict[str, float] | None = None,
              check_drift: bool = True) -> NightReport:
    """Run one night and return its report. Safe to run again for the same night."""
    night = pd.Timestamp(as_of)
    tag = _night_tag(night)
    out = Path(out_dir) if out_dir is not None else None
    files: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    steps = tqdm(total=4, desc=f"night {tag}", disable=not progress, unit="step")

    t0 = time.perf_counter()
    steps.set_postfix_str("load and validate")
    ds = data if isinstance(data, Dataset) else load_dataset(data, errors="quarantine")
    rm = model if isinstance(model, RiskModel) else load_model(model)
    st = store if isinstance(store, AlertStore) else AlertStore(store)
    quarantined = sum(len(r) for r in ds.rejected.values())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if len(ds.quarantine):
            files["quarantine"] = out / f"quarantine-{tag}.csv"
            ds.quarantine.to_csv(files["quarantine"], index=False)
            rej = out / f"rejected-{tag}"
            rej.mkdir(exist_ok=True)
            for name, rows in ds.rejected.items():
                rows.to_csv(rej / f"{name}.csv", index=False)
            log.warning("quarantined %d row(s); report in %s", quarantined, files["quarantine"])
    seconds["load"] = time.perf_counter() - t0
    steps.update()

    t0 = time.perf_counter()
    steps.set_postfix_str("score open disputes")
    points = open_points(ds, night)
    previous = st.previous_scores(points["dispute_id"].tolist(), before=night)
    scores = rm.score(ds, points, history=previous, thresholds=thresholds)
    seconds["score"] = time.perf_counter() - t0
    steps.update()

    t0 = time.perf_counter()
    steps.set_postfix_str("write scores")
    if out is not None:
        files["scores"] = out / f"scores-{tag}.csv"
        _for_csv(scores).to_csv(files["scores"], index=False)
    seconds["write"] = time.perf_counter() - t0
    steps.update()

    t0 = time.perf_counter()
    steps.set_postfix_str("record alerts")
    summary = st.record_night(scores, night, rm.version)
    seconds["record"] = time.perf_counter() - t0
    steps.update()
    steps.close()
    t0 = time.perf_counter()
    drift = check_night(rm, ds, night) if check_drift else None  # logs a warning when features moved
    seconds["drift"] = time.perf_counter() - t0
    return NightReport(summary=summary, scores=scores, quarantined_rows=quarantined, files=files, seconds=seconds,
                       drift=drift)
