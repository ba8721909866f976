"""The province on Apache Spark: each district one task, the cross-district part once.

Needs the ``spark`` extra (``pip install 'escalation-risk[spark]'``) and Java 17+
(``apt-get install -y openjdk-17-jre-headless``). The district tasks are the very
functions of :mod:`escalation_risk.province`, so the Spark night gives the local
engine's scores; Spark only decides where they run:

- every district is its own partition on purpose (``parallelize`` with one slice per
  district): hashing district codes (``repartition(n, "district")``) put several
  districts into one partition, run one after another;
- the link keys of all districts stay in Spark; only the rows whose identifiers occur
  in two districts or more come back to the driver (a Spark ``groupBy``), where the
  province's links are made once;
- the cross-district part and the model travel to the tasks inside the task closure,
  which PySpark broadcasts when it is large, so each task reads only its own folder.

On a cluster the province folder must be readable by the executors (a shared file
system) at the same path. ``session()`` makes a session for this machine or joins the
one ``spark-submit`` made; :func:`score_province` is the analyst's entry point.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd

from .dataset import resolve_pseudonym_key
from .model import RiskModel, load_model
from .province import (
    LINK_COLUMNS,
    CrossDistrict,
    Mapper,
    cross_district,
    district_link_keys,
    open_province,
    score_district,
)

INSTALL_HINT = ("the spark engine needs PySpark: pip install 'escalation-risk[spark]' "
                "(and Java 17 or later: apt-get install -y openjdk-17-jre-headless)")

#: Columns of the DataFrame :func:`score_province` returns (Spark SQL types).
SCORE_SCHEMA = ("district string, dispute_id string, as_of timestamp_ntz, probability double, level string, "
                "trend string, delta double, reasons array<string>, reasons_zh array<string>, "
                "reason_features array<string>, plan string")


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


def session(master: str | None = None, *, driver_memory: str = "2g", app_name: str = "escalation-risk") -> Any:
    """A SparkSession: the active one (``spark-submit``, a notebook), else a new one on ``master``.

    For a new session on this machine: workers run this interpreter (so they find this
    package), the driver gets ``driver_memory`` (at 1g a large job ran out of heap and
    hung instead of failing), the UI is off and everything binds to 127.0.0.1.
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
    if master is None or master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (builder.config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1"))
    return (builder.config("spark.driver.memory", driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.python.worker.reuse", "true")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.executorEnv.PYTHONWARNINGS", "ignore:PySpark does not yet fully support pandas")
            .getOrCreate())


def district_mapper(spark: Any) -> Mapper:
    """Run a district function over districts on Spark, one partition per district."""
    def run(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if not items:
            return []
        return list(spark.sparkContext.parallelize(list(items), len(items)).map(fn).collect())
    return run


def link_rows_filter(spark: Any) -> Callable[[list[tuple[str, str]], bytes], pd.DataFrame]:
    """Step 1 on Spark: link keys per district task, shared identifiers found by a Spark groupBy."""
    from pyspark.sql import functions as F

    def run(items: list[tuple[str, str]], key: bytes) -> pd.DataFrame:
        schema = ("district string, person_id string, local_key string, id_number string, name string, "
                  "birth_year double, phone string")

        def keys(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                for district, folder in zip(batch["district"], batch["folder"]):
                    yield district_link_keys(folder, district, key)

        todo = spark.sparkContext.parallelize(items, len(items)).toDF("district string, folder string")
        k = todo.mapInPandas(keys, schema).cache()
        try:
            # One column of identifiers (the id number, and the full triple) and one
            # aggregation: those held in two districts or more, joined back to their rows.
            triple = F.when(F.col("name").isNotNull() & F.col("birth_year").isNotNull() & F.col("phone").isNotNull(),
                            F.concat_ws("|", F.lit("t"), "name", F.col("birth_year").cast("bigint").cast("string"),
                                        "phone"))
            ident = F.explode(F.array_compact(F.array(F.concat_ws("|", F.lit("i"), "id_number"), triple)))
            kid = k.where(F.col("id_number").isNotNull() | triple.isNotNull()).select("*", ident.alias("_k"))
            kid = kid.where(F.col("_k") != "i")  # concat_ws skips nulls: "i" alone is no id number
            shared = (kid.groupBy("_k").agg(F.countDistinct("district").alias("_n")).where("_n >= 2")
                      .select("_k"))
            rows = (kid.join(F.broadcast(shared), "_k", "left_semi")
                    .select("district", "person_id", "local_key", *LINK_COLUMNS).distinct().toPandas())
        finally:
            k.unpersist()
        return rows.astype({c: object for c in rows.columns if c != "birth_year"}).sort_values(
            ["district", "person_id"], ignore_index=True)
    return run


def cross_district_on_spark(spark: Any, path: str | os.PathLike, *,
                            pseudonym_key: str | bytes | None = None) -> CrossDistrict:
    """The cross-district part of a province, computed on Spark."""
    return cross_district(open_province(path), district_mapper(spark), pseudonym_key=pseudonym_key,
                          link_rows=link_rows_filter(spark))


def score_province(spark: Any, path: str | os.PathLike, model: str | os.PathLike | RiskModel, as_of: Any, *,
                   pseudonym_key: str | bytes | None = None, thresholds: dict[str, float] | None = None,
                   cross: CrossDistrict | None = None) -> Any:
    """Every dispute open at ``as_of`` in every district of a province, scored: a Spark DataFrame.

    Columns: :data:`SCORE_SCHEMA` (``district`` first, ids as the districts wrote them).
    The trend is ``new`` throughout: trends come from a store's earlier nights, which
    the nightly job applies (``escalation-risk nightly PROVINCE_DIR --engine spark``).
    The DataFrame is lazy; each action runs the district tasks again, so ``cache()``
    it when used twice.
    """
    province = open_province(path)
    rm = model if isinstance(model, RiskModel) else load_model(model)
    key = resolve_pseudonym_key(pseudonym_key)
    from .nightly import resolve_night
    night = resolve_night(as_of)
    if cross is None:
        cross = cross_district(province, district_mapper(spark), pseudonym_key=key,
                               link_rows=link_rows_filter(spark))
    shared = cross

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for district, folder in zip(batch["district"], batch["folder"]):
                s = score_district(folder, district, rm, night, shared, pseudonym_key=key,
                                   thresholds=thresholds).scores
                s["as_of"] = s["as_of"].astype("datetime64[us]")
                for c in ("reasons", "reasons_zh", "reason_features"):
                    s[c] = [list(v) for v in s[c]]
                yield s

    items = [(d, str(f)) for d, f in province.folders.items()]
    todo = spark.sparkContext.parallelize(items, len(items)).toDF("district string, folder string")
    return todo.mapInPandas(score, SCORE_SCHEMA)
