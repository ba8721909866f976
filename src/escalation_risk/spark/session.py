"""The Spark session the province runs on, and the checks made before any work starts."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import warnings
from typing import Any

from ..province import known_key
from ..pseudonym_keys import KEY_ENV

INSTALL_HINT = ("the spark engine needs PySpark: pip install 'escalation-risk[spark]' "
                "(and Java 17 or later: apt-get install -y openjdk-17-jre-headless)")

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


#: The driver's JVM when the executors are elsewhere (a cluster): it holds the plans, the
#: scheduler's bookkeeping and the tasks' small result rows, never data (every join
#: shuffles: no broadcast hash table is built on the driver), about 60-80 MB live at 100,000
#: people a district (measured, BENCHMARKS.md). A heap kept near what is live (serial GC,
#: shrunk after each collection) instead of G1's, which grew to 1 GB around that; and a JVM
#: short of memory exits instead of collecting garbage forever (a hang).
CLUSTER_DRIVER_MEMORY = "512m"
CLUSTER_DRIVER_JAVA_OPTIONS = ("-XX:+UseSerialGC -Xms64m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30 "
                               "-XX:+ExitOnOutOfMemoryError")
#: ``local[N]`` runs the executors inside the driver's JVM: it needs their memory too.
LOCAL_DRIVER_MEMORY = "2g"


def session(master: str | None = None, *, pseudonym_key: str | bytes | os.PathLike | None = None,
            driver_memory: str | None = None, executor_memory: str = "1g", app_name: str = "escalation-risk",
            driver_java_options: str | None = None) -> Any:
    """A SparkSession: the active one (``spark-submit``, a notebook), else a new one on ``master``.

    The pseudonym key (the argument, else ``$ESCALATION_RISK_PSEUDONYM_KEY[_FILE]``) goes
    to executors as ``spark.executorEnv.ESCALATION_RISK_PSEUDONYM_KEY`` (redacted in
    Spark's logs), so a task never carries it. For a new session on this machine:
    workers run this interpreter (so they find this package), the UI is off and
    everything binds to 127.0.0.1. The driver's JVM gets ``driver_memory`` and
    ``driver_java_options``: by default :data:`CLUSTER_DRIVER_MEMORY` and
    :data:`CLUSTER_DRIVER_JAVA_OPTIONS` on a cluster, :data:`LOCAL_DRIVER_MEMORY` on
    ``local[N]`` (or no master), whose executors share that JVM.
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
    local = master is None or master.startswith("local")
    if driver_memory is None:
        driver_memory = LOCAL_DRIVER_MEMORY if local else CLUSTER_DRIVER_MEMORY
    if driver_java_options is None and not local:
        driver_java_options = CLUSTER_DRIVER_JAVA_OPTIONS
    if driver_java_options:
        builder = builder.config("spark.driver.extraJavaOptions", driver_java_options)
    return (builder.config("spark.driver.memory", driver_memory)
            .config("spark.executor.memory", executor_memory)
            .config("spark.redaction.regex", _REDACT)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")  # codes stay strings
            .config("spark.python.worker.reuse", "true")
            .config("spark.sql.shuffle.partitions", "8")
            # A broadcast join collects its small side into the driver's heap and builds the hash table
            # there; the linkage's "small" sides are estimated, not known. Every join shuffles instead.
            .config("spark.sql.autoBroadcastJoinThreshold", "-1")
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
