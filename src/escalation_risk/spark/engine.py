"""The night's district steps on Spark, the analyst's ``score_province`` and training's examples."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd

from .. import spark_linkage as SL
from ..dataset import Dataset
from ..model import RiskModel, load_model
from ..nightly import DistrictLoad, Engine, _night_tag, resolve_night
from ..province import SHARED_TABLES, DistrictResult, known_key, local_map, open_province
from .files import _LONE, COLLECTED, _model_files, _one_file_per_district, _read, _read_recorded, _write, partition
from .session import _check_executor_key
from .tasks import _examples_task, _history_task, _load_task, _score_task, read_scores

#: Columns of the DataFrame :func:`score_province` returns (Spark SQL types).
SCORE_SCHEMA = ("district string, dispute_id string, as_of timestamp_ntz, probability double, level string, "
                "trend string, delta double, reasons array<string>, reasons_zh array<string>, "
                "reason_features array<string>, plan string")


@dataclass
class SparkRun:
    """What the Spark link step leaves for the score step (paths and counts, no table)."""

    root: Path
    tag: str
    n_people: int = 0
    sharing: list[str] = field(default_factory=list)
    linkage: Any = None  # the province linkage's figures and parameters (spark_linkage.ProvinceLinkage)


#: The figures of this process's last province linkage on Spark (a benchmark's).
LINKAGE: dict[str, float] = {}
#: The last night's handovers: the districts whose load ``written`` one, ``skipped`` it (they
#: shared nobody the night before), and ``read_again`` by the history step (skipped, yet sharing).
HANDOVER: dict[str, list[str]] = {}


def sharing_before(root: Path, tag: str) -> set[str] | None:
    """The districts that shared people in the latest other night linked under ``root`` (the
    ``links`` dataset it left), or None when no other night is there."""
    nights = [d for d in (root / "links").glob("night=*") if d.is_dir() and d.name != f"night={tag}"]
    if not nights:
        return None
    last = max(nights, key=lambda d: d.stat().st_mtime)
    return {"" if d.name == f"district={_LONE}" else unquote(d.name.split("=", 1)[1])
            for d in last.glob("district=*")}


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
        # A district that shared nobody the night before writes no handover: it is read again by the
        # history step in the rare night it does (the same rule on the same data: the same night).
        before = sharing_before(root, tag) if several else None
        handover = {c: several and (before is None or c in before) for c in sources}
        HANDOVER.clear()
        HANDOVER.update(written=sorted(c for c in sources if handover[c]),
                        skipped=sorted(c for c in sources if several and not handover[c]), read_again=[])
        rows = _run(self.spark, partial(_load_task, root=str(root), tag=tag, out=str(out) if out is not None else None),
                    [(c, str(f), order[c] if several else None, handover[c]) for c, f in sources.items()], "load")
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
        rows = _run(self.spark, partial(_history_task, root=str(root), tag=tag), list(folders.items()), "history")
        HANDOVER["read_again"] = sorted(r["district"] for r in rows if r["read_again"])
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
