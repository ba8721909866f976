"""The province on Apache Spark: executors read their district, write Parquet; the driver keeps counts.

Needs the ``spark`` extra (``pip install 'escalation-risk[spark]'``) and Java 17+
(``apt-get install -y openjdk-17-jre-headless``). The night is
:func:`escalation_risk.nightly.run_night`, the one pipeline; :class:`SparkEngine` is its
"load, link, score the districts" steps on Spark. What travels:

- **to executors**: district codes and folder paths, the model's files as bytes in one
  broadcast, and the pseudonym key through ``spark.executorEnv`` (set when the session
  is made, :func:`session`; never in a closure, a task or a log: its conf name is
  redacted). Each task reads its own district folder, so the province folder and the
  work folder must be at the same path on every executor (one machine, a shared file
  system);
- **written by executors** under the work folder (``OUT/spark`` by default), each a
  Parquet dataset partitioned by ``night=`` and ``district=``: ``keys`` (a district's
  persons' integer linkage keys, from their pseudonyms and hashed keys), ``handover``
  (the records it would hand over were all its people shared), ``linkage/`` (the
  linkage's working sets: records with value counts, pairs, accepted edges), ``quarantine`` (the problem report:
  table, row, column, masked value, reason; never free text), ``province_keys``,
  ``links`` (persons seen in two districts or more), ``need`` (per district, the people
  of every group holding one of its people), ``history/TABLE`` (their records),
  ``scores``, ``recorded`` (written by the driver: a district's scores once recorded,
  trend applied) and, for training, ``examples``. A file is written under a temporary
  name and renamed, so a retried task replaces its first attempt's file instead of
  adding to it;
- **to the driver**: one small row per task (counts, seconds, memory, pid, the
  district's drift report) and the list of districts sharing people. The recording
  step reads one district's scores at a time from the ``scores`` dataset, and writes it
  to ``recorded``, from which the scores CSV, the report and the briefing read it back
  one district at a time: the driver's memory does not grow with the districts.

The cross-district part is a Spark job (:mod:`escalation_risk.spark_linkage`): each
district's load task writes its persons' integer linkage keys (``keys``) and what it would
hand over if all its people were seen elsewhere (``handover``); the province linkage runs
spread over executors (term frequencies and blocks grouped by key in Spark, pairs scored
per partition with the weights estimated once for the province, components joined by
label propagation; the linkage's own stages, :mod:`escalation_risk.linking.stages`), and
gives the same keys as the local engine's :func:`escalation_risk.province.province_keys`.
The grouping by person key (persons in two districts or more) is Spark's; each sharing
district's shared people's records are picked from its ``handover`` by the one rule
(:func:`~escalation_risk.province.district_shared_history`), so every district is read
once for the cross-district part. A Spark join writes, per district, the people of the
groups that hold one of its people (``need``): each score task reads its persons' keys,
that list and the shared records of the districts it names, never the whole province's.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote, unquote

import pandas as pd

from . import spark_linkage as SL
from .dataset import Dataset, load_dataset
from .model import RiskModel, load_model
from .nightly import DistrictLoad, Engine, _night_tag, newest_record, resolve_night, write_rejected
from .province import (
    SHARED_TABLES,
    CrossDistrict,
    DistrictResult,
    district_shared_history,
    known_key,
    linkage_keys,
    local_map,
    open_province,
    peak_rss_mb,
    score_loaded,
)
from .pseudonym_keys import KEY_ENV

INSTALL_HINT = ("the spark engine needs PySpark: pip install 'escalation-risk[spark]' "
                "(and Java 17 or later: apt-get install -y openjdk-17-jre-headless)")

#: Columns of the DataFrame :func:`score_province` returns (Spark SQL types).
SCORE_SCHEMA = ("district string, dispute_id string, as_of timestamp_ntz, probability double, level string, "
                "trend string, delta double, reasons array<string>, reasons_zh array<string>, "
                "reason_features array<string>, plan string")
_LONE = "__HIVE_DEFAULT_PARTITION__"  # the partition of a lone district (code "")
_REDACT = r"(?i)secret|password|token|access[.]?key|pseudonym"


class SparkUnavailableError(RuntimeError):
    """PySpark or Java is missing: the message says how to install them."""


def java_missing() -> str | None:
    """Why Spark cannot start here (no Java), or None when Java is found."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return None
    if shutil.which("java"):
        return None
    return "Java not found (Spark needs Java 17+: apt-get install -y openjdk-17-jre-headless)"


def _pyspark() -> Any:
    try:
        import pyspark
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(INSTALL_HINT) from exc
    return pyspark, SparkSession


def _on_this_machine(master: str | None) -> bool:
    return master is None or master.startswith("local") or "127.0.0.1" in master or "localhost" in master


def session(master: str | None = None, *, pseudonym_key: str | bytes | os.PathLike | None = None,
            driver_memory: str = "2g", executor_memory: str = "1g", app_name: str = "escalation-risk") -> Any:
    """A SparkSession: the active one (``spark-submit``, a notebook), else a new one on ``master``.

    The pseudonym key (the argument, else ``$ESCALATION_RISK_PSEUDONYM_KEY[_FILE]``) goes
    to executors as ``spark.executorEnv.ESCALATION_RISK_PSEUDONYM_KEY`` (redacted in
    Spark's logs), so a task never carries it. For a new session on this machine:
    workers run this interpreter (so they find this package), the driver gets
    ``driver_memory`` (at 1g a large job ran out of heap and hung instead of failing),
    the UI is off and everything binds to 127.0.0.1.
    """
    _, SparkSession = _pyspark()
    # PySpark warns at every pandas conversion that it predates pandas 3; our frames
    # are plain (numbers, strings, string lists, naive times), checked equal by the tests.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    why = java_missing()
    if why:
        raise SparkUnavailableError(why)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    if _on_this_machine(master):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (builder.config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1"))
    key = known_key(pseudonym_key)
    if key is not None:
        builder = builder.config(f"spark.executorEnv.{KEY_ENV}", _key_text(key))
    if os.environ.get("PYTHONPATH"):  # a development checkout: executors import the same package
        builder = builder.config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
    return (builder.config("spark.driver.memory", driver_memory)
            .config("spark.executor.memory", executor_memory)
            .config("spark.redaction.regex", _REDACT)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")  # codes stay strings
            .config("spark.python.worker.reuse", "true")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.executorEnv.PYTHONWARNINGS", "ignore:PySpark does not yet fully support pandas")
            .getOrCreate())


def _key_text(key: bytes) -> str:
    try:
        return key.decode()
    except UnicodeDecodeError:
        raise ValueError("the pseudonym key must be text to reach Spark executors through their environment "
                         "(make one with `escalation-risk keygen`)") from None


def _check_executor_key(spark: Any, key: bytes | None) -> None:
    """The executors must pseudonymise with the driver's key: it is in the session's executorEnv."""
    given = spark.sparkContext.environment.get(KEY_ENV)
    if key is None:
        return
    if given is None or hashlib.sha256(given.strip().encode()).digest() != hashlib.sha256(key).digest():
        raise ValueError("the Spark session's executors do not have this pseudonym key: make the session with "
                         "escalation_risk.spark.session(master, pseudonym_key=...) (it goes to executors as "
                         f"spark.executorEnv.{KEY_ENV}), or start spark-submit with "
                         f"--conf spark.executorEnv.{KEY_ENV}=...")


# --------------------------------------------------------------------------- files on executors

def partition(root: Path, tag: str, district: str) -> Path:
    """The folder of one district's night in a dataset: ``ROOT/night=TAG/district=CODE``."""
    return root / f"night={tag}" / f"district={quote(district, safe='') if district else _LONE}"


def _write(df: pd.DataFrame, folder: Path) -> None:
    """One Parquet file per district and night, renamed into place: a retried task replaces it."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{uuid.uuid4().hex}.tmp"  # Spark and pyarrow skip names starting with "."
    pq.write_table(pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False), tmp)
    os.replace(tmp, folder / "part-0.parquet")


def _read(folder: Path) -> pd.DataFrame | None:
    """One district's file of a dataset, or None when the task wrote none."""
    import pyarrow.parquet as pq
    f = folder / "part-0.parquet"
    return pq.read_table(f).to_pandas() if f.exists() else None


def _read_all(root: Path, only: set[str] | None = None) -> pd.DataFrame | None:
    """Every district of one night of a (small) dataset (or the districts ``only``), in
    district order, with ``district``."""
    if not root.is_dir():
        return None
    frames = []
    names = None if only is None else {partition(Path(), "", c).name for c in only}
    for d in sorted(root.iterdir()):
        if names is not None and d.name not in names:
            continue
        if d.name.startswith("district=") and (df := _read(d)) is not None:
            code = d.name.split("=", 1)[1]
            df.insert(0, "district", "" if code == _LONE else unquote(code))
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else None


def _model_files(model: RiskModel | str | os.PathLike) -> dict[str, bytes]:
    """The model directory's files as bytes: what the broadcast carries, once."""
    if isinstance(model, RiskModel):
        with tempfile.TemporaryDirectory() as tmp:
            model.save(tmp)
            return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    return {p.name: p.read_bytes() for p in Path(model).iterdir() if p.is_file()}


_MODELS: dict[str, RiskModel] = {}  # per executor process: the broadcast model, loaded once


def _model_of(files: dict[str, bytes]) -> RiskModel:
    digest = hashlib.sha256(b"".join(files[k] for k in sorted(files))).hexdigest()
    if digest not in _MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            _MODELS[digest] = load_model(tmp)  # verified against its manifest, as on the driver
    return _MODELS[digest]


# --------------------------------------------------------------------------- the tasks

def _load_task(item: tuple[str, str, int | None], *, root: str, tag: str, out: str | None) -> dict[str, Any]:
    """Load one district on an executor: its linkage keys (when ``index``, its place among
    the province's districts, is given) and problem report go to Parquet; counts come back."""
    t0 = time.perf_counter()
    code, folder, index = item
    ds = load_dataset(folder, errors="quarantine", pseudonym_key=known_key(None))
    r = Path(root)
    if index is not None:  # the province linkage's input: integer keys, placed in the local engine's order
        _write(SL.keys_table(linkage_keys(ds, code), index), partition(r / "keys", tag, code))
        # What this district would hand over if all its people were seen elsewhere (the one
        # rule, district_shared_history, over everyone): the history step picks the shared
        # people's rows from it, so no district is read a second time.
        pid = ds.persons["person_id"].astype(object).to_numpy()
        everyone = pd.DataFrame({"district": code, "person_id": pid, "key_district": code, "key_person": pid})
        for t, df in district_shared_history(ds, code, everyone).items():
            _write(df.drop(columns="district"), partition(r / "handover" / t, tag, code))
    q = ds.quarantine
    if len(q):
        _write(q.astype({c: str for c in q.columns if q[c].dtype == object}), partition(r / "quarantine", tag, code))
    if out is not None and len(q):
        write_rejected(ds.rejected, Path(out), tag, code)  # the local engine's writer (the allow-list)
    nulled = int((q["action"] == "value set to missing, row kept").sum()) if "action" in q.columns else 0
    return {"district": code, "fingerprint": ds.fingerprint(), "newest": newest_record(ds),
            "quarantined_rows": sum(len(x) for x in ds.rejected.values()), "nulled_values": nulled,
            "problems": len(q), "persons": len(ds.persons), "seconds": time.perf_counter() - t0,
            "peak_rss_mb": peak_rss_mb(), "pid": os.getpid()}


def _history_task(item: tuple[str, str], *, root: str, tag: str) -> dict[str, Any]:
    """A sharing district hands over its shared people's records, picked from what its load
    task wrote (``handover``) by the one rule: the district is not read again."""
    t0 = time.perf_counter()
    code, _ = item
    r = Path(root)
    links = _read(partition(r / "links", tag, code))  # this district's shared people only
    assert links is not None
    links.insert(0, "district", code)
    tables = {t: _read(partition(r / "handover" / t, tag, code)) for t in SHARED_TABLES}
    parts = district_shared_history(cast(Dataset, SimpleNamespace(**tables)), code, links)
    for t, df in parts.items():
        _write(df.drop(columns="district"), partition(r / "history" / t, tag, code))
    return {"district": code, "rows": sum(len(df) for df in parts.values()),
            "seconds": time.perf_counter() - t0, "pid": os.getpid()}


def cross_of(root: Path, tag: str, district: str) -> CrossDistrict:
    """What one score task needs from the cross-district datasets (the local engine's
    :meth:`CrossDistrict.for_district`): its persons' province keys, and from the
    ``need`` dataset (a Spark join: the people of every person group holding one of this
    district's people) the districts it shares people with, whose shared records alone
    it reads. Nothing of the rest of the province."""
    mine = _read(partition(root / "province_keys", tag, district))
    if mine is None:
        return CrossDistrict.empty()
    mine.insert(0, "district", district)
    need = _read(partition(root / "need", tag, district))
    if need is None or need.empty:
        return CrossDistrict(mine.astype(object).reset_index(drop=True),
                             {t: pd.DataFrame(columns=["district"]) for t in SHARED_TABLES})
    groups = need.rename(columns={"source": "district"})[["district", "person_id", "key_district", "key_person"]]
    keys = pd.concat([mine, groups], ignore_index=True).drop_duplicates(["district", "person_id"])
    sources = set(groups["district"].astype(str))
    history = {}
    for t in SHARED_TABLES:
        h = _read_all(root / "history" / t / f"night={tag}", only=sources)
        history[t] = h if h is not None else pd.DataFrame(columns=["district"])
    return CrossDistrict(keys.astype(object).reset_index(drop=True), history).for_district(district)


def _score_task(item: tuple[str, str], *, root: str, tag: str, model: Any, night: pd.Timestamp,
                thresholds: dict[str, float] | None, check_drift: bool) -> dict[str, Any]:
    """Score one district on an executor and write its scores; counts and the drift report come back."""
    from .drift import check_night
    t0 = time.perf_counter()
    code, folder = item
    rm = _model_of(model.value)
    ds = load_dataset(folder, errors="quarantine", pseudonym_key=known_key(None))
    result = score_loaded(ds, code, rm, night, cross_of(Path(root), tag, code), thresholds=thresholds)
    s = result.scores.drop(columns=[c for c in ("district",) if c in result.scores.columns])
    s["as_of"] = s["as_of"].astype("datetime64[us]")
    for c in ("reasons", "reasons_zh", "reason_features"):
        s[c] = [list(v) for v in s[c]]
    _write(s, partition(Path(root) / "scores", tag, code))
    drift = check_night(rm, ds, night) if check_drift else None
    return {"district": code, "disputes": len(s), "seconds": time.perf_counter() - t0,
            "peak_rss_mb": peak_rss_mb(), "pid": os.getpid(), "drift": pickle.dumps(drift)}


def read_scores(root: Path, tag: str, district: str) -> pd.DataFrame:
    """One district's scores of one night from the ``scores`` dataset, as the local engine gives them."""
    folder = partition(root, tag, district)
    s = _read(folder)
    if s is None:
        raise FileNotFoundError(f"no scores of district {district or '(lone)'} for night {tag} in {root}")
    COLLECTED["scores_bytes"] += (folder / "part-0.parquet").stat().st_size
    s = _as_local(s)
    if district:
        s.insert(0, "district", district)
    return s


# --------------------------------------------------------------------------- the engine

@dataclass
class SparkRun:
    """What the Spark link step leaves for the score step (paths and counts, no table)."""

    root: Path
    tag: str
    n_people: int = 0
    sharing: list[str] = field(default_factory=list)
    linkage: Any = None  # the province linkage's figures and parameters (spark_linkage.ProvinceLinkage)


#: What this process's driver collected from district tasks since the count was reset (a
#: benchmark's figure): ``bytes`` of the task rows (pickled), ``scores_bytes`` of score files read.
COLLECTED: dict[str, int] = {"bytes": 0, "scores_bytes": 0}
#: The figures of this process's last province linkage on Spark (a benchmark's).
LINKAGE: dict[str, float] = {}


def _run(spark: Any, fn: Any, items: Sequence[tuple[Any, ...]], group: str) -> list[dict[str, Any]]:
    """One task per item, each in its own partition on purpose (hashing codes put several in one)."""
    if not items:
        return []
    sc = spark.sparkContext
    sc.setJobGroup(f"escalation-risk-{group}", f"{group}: {len(items)} district task(s)")
    try:
        rows = list(sc.parallelize(list(items), len(items)).map(fn).collect())
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    COLLECTED["bytes"] += len(pickle.dumps(rows))
    return rows


@dataclass(frozen=True)
class SparkEngine(Engine):
    """The night's district steps on Spark (:func:`escalation_risk.nightly.run_night`).

    ``work_dir``: where executors write the night's datasets (default ``OUT/spark``, or a
    temporary folder without an output folder); at the same path on every executor."""

    spark: Any = None
    work_dir: Path | None = None

    @classmethod
    def of(cls, spark: Any, work_dir: str | os.PathLike | None = None) -> SparkEngine:
        """The engine on a session (``map`` runs the driver's own small steps in place)."""
        return cls("spark", local_map, False, spark, Path(work_dir) if work_dir is not None else None)

    def _root(self, out: Path | None) -> Path:
        if self.work_dir is not None:
            return self.work_dir
        if out is not None:
            return out / "spark"
        root = Path(tempfile.mkdtemp(prefix="escalation-risk-spark-"))
        object.__setattr__(self, "work_dir", root)
        return root

    def load(self, sources: dict[str, Any], key: bytes | None, *, several: bool, tag: str,
             out: Path | None) -> list[Any]:
        if any(isinstance(s, Dataset) for s in sources.values()):
            raise ValueError("the spark engine reads district folders (executors load them): give a folder, "
                             "not a Dataset")
        _check_executor_key(self.spark, key)
        root = self._root(out)
        for sub in ("keys", "quarantine", "linkage", "province_keys", "links", "need", "scores", "recorded",
                    *(f"{d}/{t}" for d in ("history", "handover") for t in SHARED_TABLES)):
            shutil.rmtree(root / sub / f"night={tag}", ignore_errors=True)  # a night's files are its run's
        order = {c: i for i, c in enumerate(sorted(sources))}
        rows = _run(self.spark, partial(_load_task, root=str(root), tag=tag, out=str(out) if out is not None else None),
                    [(c, str(f), order[c] if several else None) for c, f in sources.items()], "load")
        loads = []
        for r in rows:
            q = _read(partition(root / "quarantine", tag, r["district"])) if r["problems"] else None
            if q is None:
                q = pd.DataFrame()
            elif r["district"]:
                q.insert(0, "district", r["district"])
            loads.append(DistrictLoad(r["district"], r["fingerprint"], r["newest"], q, {}, r["quarantined_rows"],
                                      r["nulled_values"]))
        return loads

    def link(self, data_of: dict[str, Any], loads: list[Any], key: bytes | None, *, several: bool, tag: str,
             out: Path | None) -> SparkRun:
        from pyspark.sql import functions as F
        root = self._root(out)
        run = SparkRun(root, tag)
        if not several:
            return run
        sc = self.spark.sparkContext
        sc.setJobGroup("escalation-risk-link", "province linkage")
        run.linkage = SL.link_province(self.spark, root, tag)
        pk = self.spark.read.parquet(str(root / "province_keys" / f"night={tag}"))
        groups = (pk.groupBy("key_district", "key_person").agg(F.countDistinct("district").alias("_n"))
                  .where("_n >= 2").select("key_district", "key_person"))
        links = pk.join(groups, ["key_district", "key_person"], "left_semi") \
            .select("district", "person_id", "key_district", "key_person")
        links.repartition("district").write.mode("overwrite").partitionBy("district") \
            .parquet(str(root / "links" / f"night={tag}"))
        links = self.spark.read.parquet(str(root / "links" / f"night={tag}"))
        # What each district's score task needs, by a join: every person of each group that holds one of
        # its people (the districts it shares people with, and whose shared records to read).
        groups = links.select("district", "key_district", "key_person").distinct()
        need = groups.join(links.withColumnRenamed("district", "source"), ["key_district", "key_person"])
        need.select("district", "source", "person_id", "key_district", "key_person").repartition("district") \
            .write.mode("overwrite").partitionBy("district").parquet(str(root / "need" / f"night={tag}"))
        run.n_people = links.select("key_district", "key_person").distinct().count()
        run.sharing = sorted(r["district"] for r in links.select("district").distinct().collect())
        COLLECTED["bytes"] += run.linkage.stats["collected_bytes"] + len(pickle.dumps(run.sharing)) + 8
        LINKAGE.clear()
        LINKAGE.update(run.linkage.stats)
        sc.setLocalProperty("spark.jobGroup.id", None)
        # Spark's partitioned writer names files part-*.parquet: keep one per district under our name.
        for ds_name in ("province_keys", "links", "need"):
            _one_file_per_district(root / ds_name / f"night={tag}")
        folders = {c: str(data_of[c]) for c in run.sharing}
        _run(self.spark, partial(_history_task, root=str(root), tag=tag), list(folders.items()), "history")
        return run

    def score(self, codes: list[str], data_of: dict[str, Any], cross: SparkRun, model: RiskModel,
              night: pd.Timestamp, key: bytes | None, *, thresholds: dict[str, float] | None,
              check_drift: bool) -> list[DistrictResult]:
        bc = self.spark.sparkContext.broadcast(_model_files(model))
        try:
            rows = _run(self.spark, partial(_score_task, root=str(cross.root), tag=cross.tag, model=bc, night=night,
                                            thresholds=thresholds, check_drift=check_drift),
                        [(c, str(data_of[c])) for c in codes], "score")
        finally:
            bc.unpersist()
            # The districts' records copied for the cross-district part (pseudonymised, but with the
            # staff's free text) are read by no later step: they leave the work folder with the
            # scoring, failed or not (a re-run writes them again from its load).
            for d in ("history", "handover"):
                for t in SHARED_TABLES:
                    shutil.rmtree(cross.root / d / t / f"night={cross.tag}", ignore_errors=True)
        scores_root = cross.root / "scores"
        return [DistrictResult(r["district"], pd.DataFrame(), r["seconds"], r["peak_rss_mb"], r["pid"],
                               pickle.loads(r["drift"]),
                               reader=partial(read_scores, scores_root, cross.tag, r["district"]))
                for r in rows]

    def hold(self, district: str, scores: pd.DataFrame, *, tag: str, out: Path | None) -> Any:
        """A recorded district's scores wait in ``recorded/night=/district=`` (the driver's
        memory stays one district's): the report, the CSV and the briefing read them back."""
        folder = partition(self._root(out) / "recorded", tag, district)
        s = scores.copy()
        if "as_of" in s.columns:
            s["as_of"] = s["as_of"].astype("datetime64[us]")
        for c in ("reasons", "reasons_zh", "reason_features"):
            if c in s.columns:
                s[c] = [list(v) for v in s[c]]
        _write(s, folder)
        return partial(_read_recorded, folder)


def _read_recorded(folder: Path) -> pd.DataFrame:
    s = _read(folder)
    if s is None:
        raise FileNotFoundError(f"no recorded scores in {folder}")
    return _as_local(s)


def _as_local(s: pd.DataFrame) -> pd.DataFrame:
    """A scores frame read from Parquet as the local engine holds it: lists, object text."""
    for c in ("reasons", "reasons_zh", "reason_features"):
        if c in s.columns:
            s[c] = [list(v) for v in s[c]]
    return s.astype({c: object for c in s.columns if s[c].dtype == "str" or str(s[c].dtype) == "string"})


def _one_file_per_district(night_dir: Path) -> None:
    """Rename a Spark-written partitioned dataset to one ``part-0.parquet`` per district."""
    import pyarrow.parquet as pq
    for d in night_dir.iterdir():
        if not d.name.startswith("district="):
            continue
        parts = sorted(d.glob("part-*.parquet"))
        if len(parts) == 1 and parts[0].name == "part-0.parquet":
            continue
        frame = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
        for p in parts:
            p.unlink()
        _write(frame, d)


# --------------------------------------------------------------------------- the analyst's entry point

def score_province(spark: Any, path: str | os.PathLike, model: str | os.PathLike | RiskModel, as_of: Any, *,
                   pseudonym_key: str | bytes | None = None, thresholds: dict[str, float] | None = None,
                   work_dir: str | os.PathLike | None = None) -> Any:
    """Every dispute open at ``as_of`` in every district of a province, scored: a Spark DataFrame.

    The district tasks run (load, province linkage, score) and write the ``scores``
    dataset under ``work_dir`` (a temporary folder by default); the DataFrame returned
    reads it lazily (columns :data:`SCORE_SCHEMA`, ``district`` first). Nothing is
    recorded and the trend is ``new`` throughout: trends come from a store's earlier
    nights, which the nightly job applies (``escalation-risk nightly PROVINCE_DIR
    --engine spark``).
    """
    province = open_province(path)
    night = resolve_night(as_of)
    tag = _night_tag(night)
    rm = model if isinstance(model, RiskModel) else load_model(model)
    key = known_key(pseudonym_key)
    eng = SparkEngine.of(spark, work_dir)
    sources: dict[str, Any] = dict(province.folders)
    several = len(sources) > 1
    eng.load(sources, key, several=several, tag=tag, out=None)
    run = eng.link(sources, [], key, several=several, tag=tag, out=None)
    eng.score(list(sources), sources, run, rm, night, key, thresholds=thresholds, check_drift=False)
    schema = SCORE_SCHEMA.replace("district string, ", "") + ", night string, district string"
    df = spark.read.schema(schema).parquet(str(run.root / "scores")).where(f"night = '{tag}'")
    return df.select("district", *[c for c in df.columns if c not in ("district", "night")])


# --------------------------------------------------------------------------- training by districts

def _examples_task(item: tuple[str, str], *, root: str, tag: str, cutoff: pd.Timestamp, horizon_days: int,
                   config: dict | None) -> dict[str, Any]:
    """One district's training examples on an executor, written as Parquet; facts come back."""
    from .province_training import district_examples, examples_task_facts
    t0 = time.perf_counter()
    code, folder = item
    ds = load_dataset(folder, errors="quarantine", pseudonym_key=known_key(None))
    made = district_examples(ds, code, cross_of(Path(root), tag, code), cutoff=cutoff, horizon_days=horizon_days,
                             config=config)
    _write(made.examples.drop(columns="district"), partition(Path(root) / "examples", tag, code))
    return {**examples_task_facts(made), "seconds": time.perf_counter() - t0}


def province_examples(spark: Any, province: Any, key: bytes | None, *, cutoff: pd.Timestamp, horizon_days: int,
                      config: dict | None, work_dir: str | os.PathLike | None = None
                      ) -> tuple[list[dict[str, Any]], Any]:
    """The examples of every district of ``province`` made on executors (linked province-wide
    by the night's load and link steps), written under ``WORK/examples/night=train-CUTOFF``.
    Returns each district's facts (in code order) and a reader of one district's examples."""
    eng = SparkEngine.of(spark, work_dir)
    tag = f"train-{_night_tag(cutoff)}"
    sources: dict[str, Any] = dict(sorted(province.folders.items()))
    several = len(sources) > 1
    shutil.rmtree(eng._root(None) / "examples" / f"night={tag}", ignore_errors=True)
    eng.load(sources, key, several=several, tag=tag, out=None)
    run = eng.link(sources, [], key, several=several, tag=tag, out=None)
    rows = _run(spark, partial(_examples_task, root=str(run.root), tag=tag, cutoff=cutoff, horizon_days=horizon_days,
                               config=config), [(c, str(f)) for c, f in sources.items()], "examples")
    rows = sorted(rows, key=lambda r: r["district"])

    def reader(code: str) -> pd.DataFrame:
        folder = partition(run.root / "examples", tag, code)
        ex = _read(folder)
        if ex is None:
            raise FileNotFoundError(f"no training examples of district {code} in {folder}")
        ex.insert(0, "district", code)
        return ex
    return rows, reader

