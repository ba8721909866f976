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

The code, by noun: :mod:`.session` (the session and its checks), :mod:`.files` (the
datasets' files), :mod:`.tasks` (what runs on executors) and :mod:`.engine` (the
engine, ``score_province`` and the training's examples).
"""

from __future__ import annotations

from .engine import HANDOVER, LINKAGE, SCORE_SCHEMA, SparkEngine, SparkRun, province_examples, score_province
from .files import COLLECTED, _read, _read_all, _write, partition  # noqa: F401  (the tests' readers and writer)
from .session import (
    CLUSTER_DRIVER_JAVA_OPTIONS,
    CLUSTER_DRIVER_MEMORY,
    INSTALL_HINT,
    LOCAL_DRIVER_MEMORY,
    SparkUnavailableError,
    java_missing,
    session,
)
from .tasks import cross_of, read_scores

__all__ = ["CLUSTER_DRIVER_JAVA_OPTIONS", "CLUSTER_DRIVER_MEMORY", "COLLECTED", "HANDOVER", "INSTALL_HINT",
           "LOCAL_DRIVER_MEMORY", "LINKAGE", "SCORE_SCHEMA", "SparkEngine", "SparkRun",
           "SparkUnavailableError", "cross_of", "java_missing", "partition", "province_examples", "read_scores",
           "score_province", "session"]
