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


def session(master: str | None = None, *, pseudonym_key: str | bytes | os.PathLike | None = None,
            driver_memory: str = "2g", executor_memory: str = "1g", app_name: str = "escalation-risk",
            driver_java_options: str | None = None) -> Any:
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
