"""The nightly job: one pipeline for a district and a province (a district is a province of one).

The night. A date (``2025-06-30``) means the *end* of that day, 23:59:59.999999 (the
kernel's one rule, :func:`escalation_risk.clock.to_moment`), so a cron job run with
``--as-of $(date +%F)`` scores the disputes reported that day; a date-time
(``2025-06-30T18:00``) means that moment. The exact moment is written in the scores
file's ``as_of`` column and recorded in the store.

:func:`run_night` runs the same steps in the same order for a district's folder (or a
Dataset), a province of one district and a province of many; only where the district
tasks run differs (the :class:`Engine`: this process, or Spark):

1. **load and validate** every district with ``errors="quarantine"``: bad rows are set
   aside with their reasons in ``OUT/quarantine-<night>.csv`` (and the rows themselves,
   ids, codes and times only, never free text or personal data, in
   ``OUT/rejected-<night>/``, one folder per district of a province);
2. **stale check**: refuse a night more than ``stale_days`` after a district's newest
   record (every never-closed dispute would be scored as open; ``allow_stale``
   overrides);
3. **province-wide linkage**: the persons of every district linked by the linkage
   training uses (:func:`escalation_risk.province.province_keys`), and the records of
   people seen in several districts handed to each (a province of one keeps its own
   linkage);
4. **score each district** (the engine's step): every dispute open at the night;
5. **record each district** under the store's recording lock (all the districts' locks
   are taken first, then each district's previous scores are read for the trend and its
   night recorded in its own transaction, with the input's fingerprint): the same night
   on the same input changes nothing; on a changed input it is refused unless
   ``replace``; a night older than the newest recorded one is refused unless
   ``backfill``. Then ``OUT/scores-<night>.csv``;
6. **notify**: one webhook message per new or rising alert (``notify``);
7. **drift**: tonight's features against the model's validation window, per district;
8. **briefing** (``report``): ``OUT/briefing-<night>.html``; a province gets one page per
   district (``briefing-<night>-<district>.html``) and an index page with each
   district's counts (``briefing-<night>.html``).

The exit codes are the command line's (:mod:`escalation_risk.cli.nightly`): 0 clean,
1 failed (nothing recorded), 2 bad arguments, 3 recorded with quarantined rows or
blanked values, 4 recorded with webhook messages still pending.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from . import clock, outputs
from .alerts import AlertStore, NightSummary
from .alerts.notify import Notifier, Webhook
from .clock import end_of_day
from .dataset import Dataset, load_dataset
from .drift import DriftReport, night_check
from .forks import Forked, workers, worth_forking
from .memory import batch_memory, give_back_memory
from .model import RiskModel, load_model
from .night_report import NightReport
from .night_scores import DistrictScores, _ScoresWriter
from .province import (
    CrossDistrict,
    DistrictResult,
    Mapper,
    apply_trend,
    cross_district,
    districts_of,
    is_province,
    known_key,
    linkage_keys,
    local_map,
    score_loaded,
)
from .pseudonym_keys import key_fingerprint as fingerprint_of_key

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


def _fingerprint(data: dict[str, str], model_version: str, thresholds: dict[str, float] | None) -> str:
    """SHA-256 of the data fingerprints (district -> Dataset.fingerprint), the model, the thresholds.

    One district: its data's fingerprint, as a district's night always had. Several: every
    district's, for each district's night: the province's linkage and its shared
    histories make each district's scores depend on the whole export."""
    if len(data) == 1:
        h = hashlib.sha256(next(iter(data.values())).encode())
    else:
        h = hashlib.sha256(json.dumps(sorted(data.items())).encode())
    h.update(model_version.encode())
    h.update(json.dumps(thresholds, sort_keys=True).encode())
    return h.hexdigest()


def input_fingerprint(ds: Dataset, model_version: str, thresholds: dict[str, float] | None) -> str:
    """SHA-256 of what decides a district's night: the data, the model, the thresholds."""
    return _fingerprint({"": ds.fingerprint()}, model_version, thresholds)


# --------------------------------------------------------------------------- engines

@dataclass(frozen=True)
class Engine:
    """Where the district tasks of a night run: the one thing that differs between engines.

    ``map(fn, items)`` runs ``fn`` on every item and returns the results in order;
    ``keeps_data`` says the loaded districts stay in this process between steps (the
    local engine), so they are loaded once. The steps :meth:`load`, :meth:`link` and
    :meth:`score` run the district tasks through ``map``; an engine whose tasks read and
    write files themselves (Spark: :class:`escalation_risk.spark.SparkEngine`) overrides them.
    """

    name: str
    map: Mapper
    keeps_data: bool

    def load(self, sources: dict[str, Path | Dataset], key: bytes | None, *, several: bool, tag: str,
             out: Path | None) -> list[DistrictLoad]:
        """Step 1: every district loaded and validated (with its linkage keys when ``several``)."""
        keep = self.keeps_data and not several
        return self.map(lambda it: _load_district(it[0], it[1], key, with_keys=several, keep=keep),
                        list(sources.items()))

    def link(self, data_of: dict[str, Path | Dataset], loads: list[DistrictLoad], key: bytes | None, *,
             several: bool, tag: str, out: Path | None) -> Any:
        """Step 3: the cross-district part (anything with ``n_people``, handed to :meth:`score`)."""
        if not several:
            return CrossDistrict.empty()
        keys = pd.concat([d.keys for d in loads if d.keys is not None], ignore_index=True)
        for d in loads:  # what the engine keeps is in data_of; the loads need not hold the keys any more
            d.keys = None
        return cross_district(data_of, self.map, pseudonym_key=key, keys=keys)

    def score(self, codes: list[str], data_of: dict[str, Path | Dataset], cross: Any, model: RiskModel,
              night: pd.Timestamp, key: bytes | None, *, thresholds: dict[str, float] | None,
              check_drift: bool) -> list[DistrictResult]:
        """Step 4: every district scored (trend not applied), with its drift report."""
        def score(it: tuple[str, Path | Dataset, CrossDistrict]) -> DistrictResult:
            # Tonight's features against the model's validation window, while the district is
            # loaded; reported in the drift step, after the night is recorded. A district scored
            # on its own data has it checked by its scoring child after its half, reading the
            # built index: its labels of the whole history (half a gigabyte at a million
            # people) never add to this process's memory.
            return score_loaded(_data(it[1], key), it[0], model, night, it[2], thresholds=thresholds,
                                drift=night_check(model, night) if check_drift else None)

        return self.map(score, [(c, data_of[c], cross.for_district(c)) for c in codes])

    def hold(self, district: str, scores: pd.DataFrame, *, tag: str, out: Path | None) -> Callable[[], pd.DataFrame]:
        """Where a recorded district's scores (trend applied) wait for the report, the CSV and
        the briefing; returns their reader. Here: in memory (the local engine holds every
        district's scores anyway). An engine whose driver must stay flat in the number of
        districts (Spark) writes them to a file instead and reads them back when asked."""
        del district, tag, out
        return lambda: scores


LOCAL = Engine("local", local_map, keeps_data=True)


def get_engine(engine: str | Engine = "local", *, spark: Any = None, spark_master: str | None = None,
               pseudonym_key: str | bytes | Path | None = None) -> Engine:
    """An :class:`Engine` by name: ``"local"``, or ``"spark"`` (``spark``: a session to use;
    else ``spark_master``, else the session of ``spark-submit``, else ``local[*]``; a new
    session gets ``pseudonym_key`` for its executors)."""
    if isinstance(engine, Engine):
        return engine
    if engine == "local":
        if spark is not None or spark_master:
            raise ValueError("a Spark session or master is for engine 'spark'")
        return LOCAL
    if engine == "spark":
        from . import spark as er_spark
        session = spark if spark is not None else er_spark.session(spark_master, pseudonym_key=pseudonym_key)
        return er_spark.SparkEngine.of(session)
    raise ValueError(f"engine must be 'local' or 'spark', got {engine!r}")


# --------------------------------------------------------------------------- the report

@dataclass
class DistrictLoad:
    """What loading one district tells the night (small: no table travels back but the keys)."""

    district: str
    #: The data's fingerprint; for a district this process keeps, a forked child hashing
    #: its tables while the night goes on (read when the night is recorded).
    fingerprint: str | Forked[str]
    newest: pd.Timestamp | None
    quarantine: pd.DataFrame
    rejected: dict[str, pd.DataFrame]
    quarantined_rows: int
    nulled_values: int
    keys: pd.DataFrame | None = None  # linkage keys, for a province of several districts
    ds: Dataset | None = None  # the loaded district, when the engine keeps data


def _night_tag(as_of: pd.Timestamp) -> str:
    if as_of == end_of_day(as_of):
        return as_of.strftime("%Y-%m-%d")
    return as_of.strftime("%Y-%m-%dT%H%M%S")


# --------------------------------------------------------------------------- the steps

def _load_district(code: str, source: Path | Dataset, key: bytes | None, *, with_keys: bool,
                   keep: bool) -> DistrictLoad:
    ds = source if isinstance(source, Dataset) else load_dataset(source, errors="quarantine", pseudonym_key=key)
    quarantine = ds.quarantine.copy()
    if code:
        quarantine.insert(0, "district", code)
    nulled = int((ds.quarantine["action"] == "value set to missing, row kept").sum()) \
        if "action" in ds.quarantine.columns else 0
    # Made before the fingerprint's child starts: if it fails, no child is left running.
    keys = linkage_keys(ds, code) if with_keys else None
    # Hashing every table (seconds at a million people) is only needed to record the night.
    fingerprint: str | Forked[str]
    if keep and workers() > 1:
        fork = worth_forking(len(ds.incidents))
        if fork:
            # The load's scratch (freed, but kept by the allocators: ~2 GB at a million people)
            # given back before the fork: given back after it, those pages would stay in the
            # child alone for as long as it hashes (the tree's memory peak on a busy machine).
            give_back_memory()
        fingerprint = Forked(ds.fingerprint, fork=fork)
    else:
        fingerprint = ds.fingerprint()
    return DistrictLoad(code, fingerprint, newest_record(ds), quarantine, dict(ds.rejected),
                        sum(len(r) for r in ds.rejected.values()), nulled,
                        keys=keys, ds=ds if keep else None)


def _check_stale(loads: list[DistrictLoad], night: pd.Timestamp, stale_days: float) -> None:
    for d in loads:
        if d.newest is not None and night - d.newest > pd.Timedelta(days=stale_days):
            where = f"district {d.district}: " if d.district else ""
            raise StaleDataError(
                f"{where}the night {night.isoformat()} is {(night - d.newest).days} days after the newest record "
                f"in the data ({d.newest.isoformat()}); every dispute never closed would be scored as open. "
                f"Export fresh data, or pass allow_stale (--allow-stale) if the district really had no records "
                f"for {stale_days:g}+ days")


def write_rejected(rejected: dict[str, pd.DataFrame], out: Path, tag: str, district: str) -> None:
    """A district's rejected rows, one CSV per table, through the allow-list (ids, codes and
    times only): the one writer for every engine."""
    for name, rows in rejected.items():
        rej = out / f"rejected-{tag}" / district if district else out / f"rejected-{tag}"
        rej.mkdir(parents=True, exist_ok=True)
        outputs.to_csv(rows, f"rejected/{name}", rej / f"{name}.csv")


def _write_quarantine(loads: list[DistrictLoad], out: Path, tag: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    found = [d for d in loads if len(d.quarantine)]
    if not found:
        return files
    out.mkdir(parents=True, exist_ok=True)
    files["quarantine"] = out / f"quarantine-{tag}.csv"
    outputs.to_csv(pd.concat([d.quarantine for d in found], ignore_index=True), "quarantine", files["quarantine"])
    for d in loads:
        write_rejected(d.rejected, out, tag, d.district)
    log.warning("quarantined %d row(s); report in %s", sum(d.quarantined_rows for d in loads), files["quarantine"])
    return files


def _record(st: AlertStore, results: list[DistrictResult], night: pd.Timestamp, model_version: str,
            fingerprint: str, *, replace: bool, backfill: bool, lock_timeout: float,
            key_fingerprint: str | None = None,
            hold: Callable[[str, pd.DataFrame], Callable[[], pd.DataFrame]] = lambda d, s: lambda: s,
            trended: Callable[[str, pd.DataFrame], None] = lambda d, s: None,
            ) -> tuple[dict[str, NightSummary], dict[str, Callable[[], pd.DataFrame]]]:
    """Record every district's night: all the locks first, then every district checked, then,
    per district, the previous scores (the trend) and the recording, so no other night comes
    between the two. All or nothing per decision: a district refused (a corrected export
    without ``replace``, an older night without ``backfill``, another key) records none.

    Each district's recorded scores go to ``hold`` (the engine's :meth:`Engine.hold`), which
    returns their reader: the driver holds one district's scores at a time when the engine
    keeps them out of memory. ``trended`` sees each district's scores, trend applied, before
    they are recorded (the night's CSV may be written meanwhile, published once recorded)."""
    summaries: dict[str, NightSummary] = {}
    scored: dict[str, Callable[[], pd.DataFrame]] = {}
    with ExitStack() as locks:
        for r in sorted(results, key=lambda r: r.district):  # one order: two provinces never deadlock
            locks.enter_context(st.recording_lock(timeout=lock_timeout, district=r.district))
        for r in results:  # under the locks, the answers still hold when each district is recorded
            st.check_night(r.scores, night, model_version, input_fingerprint=fingerprint,
                           key_fingerprint=key_fingerprint, replace=replace, backfill=backfill,
                           district=r.district)
        for r in results:
            # An engine that wrote the scores to files hands over a reader: one district at a time.
            tonight = r.read()
            previous = st.previous_scores(tonight["dispute_id"].tolist(), before=night, district=r.district)
            s = apply_trend(tonight, previous)
            del tonight, previous
            trended(r.district, s)
            summaries[r.district] = st.record_night(s, night, model_version, input_fingerprint=fingerprint,
                                                    key_fingerprint=key_fingerprint, replace=replace,
                                                    backfill=backfill, district=r.district)
            scored[r.district] = hold(r.district, s)
            del s
    return summaries, scored


@batch_memory()
def run_night(data: str | os.PathLike | Dataset, model: str | os.PathLike | RiskModel, as_of: Any, *,
              store: str | AlertStore = "sqlite:///alerts.db", out_dir: str | Path | None = "out",
              progress: bool = False, thresholds: dict[str, float] | None = None,
              stale_days: float = DEFAULT_STALE_DAYS, allow_stale: bool = False, replace: bool = False,
              backfill: bool = False, lock_timeout: float = 600.0,
              pseudonym_key: str | bytes | Path | None = None, check_drift: bool = True,
              notify: Webhook | None = None, notify_level: str = "orange", report: bool = False,
              lang: str = "zh", engine: str | Engine = "local", spark: Any = None,
              spark_master: str | None = None, district: str | None = None) -> NightReport:
    """Run one night of a district or a province and return its report. Safe to run again.

    ``data`` is a district's folder or a Dataset (a province of one district, recorded
    as district ``""``, or as ``district`` when given), or a province folder (each
    district recorded under its code). ``as_of`` is read by :func:`resolve_night` (a date is the
    end of that day). ``engine`` runs the district tasks: ``"local"``, ``"spark"``
    (``spark``: a session; ``spark_master``) or an :class:`Engine`.

    Raises :class:`StaleDataError` when the night is more than ``stale_days`` after a
    district's newest record (unless ``allow_stale``), the store's ``NightConflictError``
    for a changed input (unless ``replace``) or an older night (unless ``backfill``),
    and ``StoreBusyError`` when another night holds the store's lock for more than
    ``lock_timeout`` seconds.

    With ``notify`` (a :class:`~.alerts.notify.Webhook`), once the night is recorded one
    message per new or rising alert at or above ``notify_level`` is queued in the store
    and sent; a dead endpoint leaves them pending (``report.delivery``) and never fails
    the night. A re-run sends nothing twice. With ``report``, the briefing is written
    to ``out_dir`` in ``lang``.
    """
    night = resolve_night(as_of)
    tag = _night_tag(night)
    if district is not None and not isinstance(data, Dataset) and is_province(data):
        raise ValueError(f"district={district!r}: a province's night runs every district (its linkage reads "
                         "them all); give a district's own folder to run it alone")
    sources = districts_of(data, district)
    codes = list(sources)
    several = len(codes) > 1
    key = known_key(pseudonym_key)
    eng = get_engine(engine, spark=spark, spark_master=spark_master, pseudonym_key=key)
    out = Path(out_dir) if out_dir is not None else None
    files: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    peak: dict[str, float] = {}
    held: dict[str, float] = {}
    steps = tqdm(total=7, desc=f"night {tag}", disable=not progress, unit="step")

    def step(name: str) -> Callable[[], None]:
        steps.set_postfix_str(name)
        t0, c0 = time.perf_counter(), time.process_time()

        def done() -> None:
            give_back_memory()
            seconds[name] = time.perf_counter() - t0
            cpu[name] = time.process_time() - c0
            peak[name] = _peak_rss_mb()
            held[name] = _rss_mb()
            steps.update()
        return done

    done = step("load")
    # A lone district is loaded once; a province's districts are loaded again by each task
    # that needs them, so that no more than one district's data is held at a time.
    loads = eng.load(sources, key, several=several, tag=tag, out=out)
    try:
        data_of: dict[str, Path | Dataset] = {d.district: d.ds if d.ds is not None else sources[d.district]
                                              for d in loads}
        if not allow_stale:
            _check_stale(loads, night, stale_days)
        rm = model if isinstance(model, RiskModel) else load_model(model)
        if out is not None:
            files.update(_write_quarantine(loads, out, tag))
        done()

        done = step("link")
        cross = eng.link(data_of, loads, key, several=several, tag=tag, out=out)
        done()

        done = step("score")
        results = eng.score(codes, data_of, cross, rm, night, key, thresholds=thresholds, check_drift=check_drift)
        done()

        done = step("record")
        fingerprint = _fingerprint({d.district: d.fingerprint if isinstance(d.fingerprint, str)
                                    else d.fingerprint.result() for d in loads}, rm.version, thresholds)
    finally:
        for d in loads:  # a night that failed leaves no child hashing behind
            if not isinstance(d.fingerprint, str):
                d.fingerprint.cancel()
    own_store = not isinstance(store, AlertStore)
    st: AlertStore = store if isinstance(store, AlertStore) else AlertStore(str(store))
    writer = _ScoresWriter(out, tag, len(results))
    try:
        try:
            # The store knows its key: a night pseudonymised with another key is refused by name.
            summaries, readers = _record(st, results, night, rm.version, fingerprint, replace=replace,
                                         backfill=backfill, lock_timeout=lock_timeout,
                                         key_fingerprint=fingerprint_of_key(key) if key is not None
                                         else getattr(data, "key_fingerprint", None),
                                         hold=partial(eng.hold, tag=tag, out=out), trended=writer.start)
        except BaseException:
            writer.cancel()
            raise
        scored = DistrictScores(readers)
        # Published once the night is recorded, so the file never shows a night the store refused.
        written = writer.publish(scored, not all(s.already_recorded for s in summaries.values()))
        if written is not None:
            files["scores"] = written
        done()

        done = step("notify")
        delivery = Notifier(st, notify, min_level=notify_level).notify_night(night) if notify is not None else None
        done()

        done = step("drift")  # a warning was logged where features moved; drift never fails the night
        drifts: dict[str, DriftReport | None] = {r.district: r.drift for r in results} if check_drift else {}
        done()

        done = step("briefing")
        if report and out is not None:
            from .briefing import write_night_briefing
            loaders: dict[str, Callable[[], Dataset]] = {c: partial(_data, data_of[c], key) for c in codes}
            files.update(write_night_briefing(loaders, st, night, out, lang=lang, drifts=drifts,
                                              scores=scored))
        done()
        where = st.url.render_as_string(hide_password=True)
    finally:
        steps.close()
        if own_store:
            st.dispose()
    tasks = pd.DataFrame([{"district": r.district, "disputes": summaries[r.district].n_scored, "seconds": r.seconds,
                           "peak_rss_mb": r.peak_rss_mb, "pid": r.pid} for r in results])
    seconds["total"] = sum(seconds.values())
    cpu["total"] = sum(cpu.values())
    return NightReport(summaries=summaries, by_district=scored,
                       quarantined_rows=sum(d.quarantined_rows for d in loads),
                       files=files, seconds=seconds, cpu_seconds=cpu, peak_rss_mb=peak, rss_mb=held,
                       drifts=drifts, nulled_values=sum(d.nulled_values for d in loads),
                       delivery=delivery, cross_people=cross.n_people, tasks=tasks, store=where)


def _peak_rss_mb() -> float:
    """This process's high-water resident memory so far (MB; Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    """This process's resident memory now (MB; NaN where /proc is not there)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def _data(source: Path | Dataset, key: bytes | None) -> Dataset:
    """A district's data in a task: what the engine kept, else its folder loaded again."""
    return source if isinstance(source, Dataset) else load_dataset(source, errors="quarantine", pseudonym_key=key)
