"""The province linkage as a Spark job: blocks grouped by key, pairs scored per block, components joined.

:func:`escalation_risk.province.province_keys` links every person of a province with
:func:`~escalation_risk.linking.link_keys` in one process; at 63 M records its keys
table alone is about 49 GB. Here the same stages (:mod:`escalation_risk.linking.stages`,
the linkage's own functions: nothing of its rule is written here) run spread over
executors, from the ``keys`` dataset the district load tasks wrote (each record's
integer keys and its place ``gid`` = district's index << 32 | row, so sorting by gid
gives the order ``link_keys`` would see):

1. **term frequencies**: how many records of the province hold each id, name, sound
   and phone (grouped by value in Spark), joined to each record (``records``);
2. **u**: the province's seeded random pairs (the positions ``link_keys`` would draw,
   made on the driver: at most ``u_sample`` pairs) joined to their records, compared on
   executors; only the level counts come back;
3. **candidate pairs**: each record's key under each blocking rule; blocks grouped by
   (rule, key) in Spark, those over ``max_block`` skipped; each partition of blocks
   makes its pairs and compares them; a pair proposed by several rules is kept once,
   for the first rule (``pairs``);
4. **m**: EM on at most ``em_sample`` pairs of each training session (those with the
   smallest seeded hash: every pair when the session is smaller), in one task; the
   weights (a few KB) come back and go to the next step in its closure;
5. **decisions**: every pair scored, the accepted ones kept (``edges``);
6. **components**: connected components of the accepted pairs by label propagation in
   Spark (each record takes the smallest label among its neighbours until none
   changes); the chaining guard and the naming (smallest qualified id) then run per
   bucket of whole components on executors;
7. **province keys**: every person's (key_district, key_person), written per district.

The parameters are estimated once for the province, as ``link_keys`` estimates them:
the same u (the same random pairs), the same term frequencies and threshold; m is learnt
on the same pairs when a session has at most ``em_sample`` (EM sums them in another
order: equal to the last bits), else on another seeded sample of the same size.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .linking import DEFAULT_MODEL, FIELDS, LEVELS, LinkageModel
from .linking import stages as LS
from .linking.keys import TF_FIELDS

_TF_COLS = [f"c_{name}" for name in TF_FIELDS]
_SESSION_COLS = {name: f"s_{i}" for i, name in enumerate(LS.SESSION_RULES)}
_LEVEL_SCHEMA = ", ".join(f"{f} tinyint" for f in FIELDS)
_PAIR_SCHEMA = (f"lo long, hi long, rule int, {_LEVEL_SCHEMA}, "
                + ", ".join(f"{c} boolean" for c in _SESSION_COLS.values()) + ", "
                + ", ".join(f"{c} long" for c in _TF_COLS))
GID_SHIFT = 32  # gid = district index << 32 | row: the province order of link_keys


def gids(district_index: int, n: int) -> np.ndarray:
    """The gids of a district's ``n`` records (its index among the province's districts)."""
    return (np.int64(district_index) << np.int64(GID_SHIFT)) | np.arange(n, dtype=np.int64)


def keys_table(keys: pd.DataFrame, district_index: int) -> pd.DataFrame:
    """One district's rows of the ``keys`` dataset: gid, person_id and the integer keys,
    from its :func:`~escalation_risk.province.linkage_keys` (``district_index``: its place
    among the province's districts in code order)."""
    k = LS.key_columns(keys.drop(columns="district", errors="ignore"))
    k.insert(0, "person_id", keys["person_id"].astype(str).to_numpy())
    k.insert(0, "gid", gids(district_index, len(k)))
    return k


def _concat(batches: Any) -> pd.DataFrame | None:
    frames = [b for b in batches if len(b)]
    return pd.concat(frames, ignore_index=True) if frames else None


# --------------------------------------------------------------------------- executor functions

def _block_rows(batches: Any) -> Any:
    """Each record's key under each blocking rule (non-zero only): (rule, bkey, gid)."""
    for b in batches:
        if not len(b):
            continue
        k = LS.keys_of(b)
        g = b["gid"].to_numpy(dtype=np.int64)
        for r, key in enumerate(LS.block_keys(k).values()):
            on = key != 0
            yield pd.DataFrame({"rule": np.full(int(on.sum()), r, dtype=np.int32), "bkey": key[on], "gid": g[on]})


def _sample_pairs(batches: Any, *, n: int, sizes: list[int], indexes: list[int], model: LinkageModel) -> Any:
    """The random pairs of u, as link_keys draws them among the province's ``n`` records, as gids
    (``sizes`` and ``indexes``: each district's records and its index in the gids, in code order)."""
    for _ in batches:
        pass
    si, sj = LS.random_pairs(n, model)
    ends = np.cumsum(sizes)
    starts = ends - np.asarray(sizes)

    def gid_of(pos: np.ndarray) -> np.ndarray:
        d = np.searchsorted(ends, pos, side="right")
        return (np.asarray(indexes, dtype=np.int64)[d] << np.int64(GID_SHIFT)) | (pos - starts[d]).astype(np.int64)
    yield pd.DataFrame({"a": gid_of(si), "b": gid_of(sj)})


def _u_levels(batches: Any) -> Any:
    """Level counts of random pairs, each row holding both records' keys (a_*, b_*)."""
    counts = {f: np.zeros(len(LEVELS[f]), dtype=np.int64) for f in FIELDS}
    for b in batches:
        if not len(b):
            continue
        m = len(b)
        cols = pd.concat([b[[f"a_{f}" for f in LS.KEY_FIELDS]].set_axis(LS.KEY_FIELDS, axis=1),
                          b[[f"b_{f}" for f in LS.KEY_FIELDS]].set_axis(LS.KEY_FIELDS, axis=1)], ignore_index=True)
        lv = LS.compare(LS.keys_of(cols), np.arange(m), m + np.arange(m))
        for f, c in LS.level_counts(lv).items():
            counts[f][:len(c)] += c
    yield pd.DataFrame([{"field": f, "level": lv, "n": int(n)} for f, c in counts.items() for lv, n in enumerate(c)
                        if n])


def _pairs_of_blocks(batches: Any, *, model: LinkageModel) -> Any:
    """The candidate pairs of the blocks in this partition (whole blocks: grouped by rule
    and key), compared: levels, training sessions, the first record's value counts."""
    pdf = _concat(batches)
    if pdf is None:
        return
    pdf = pdf.sort_values(["rule", "bkey", "gid"], kind="stable", ignore_index=True)
    g = pdf["gid"].to_numpy(dtype=np.int64)
    rule = pdf["rule"].to_numpy()
    bkey = pdf["bkey"].to_numpy(dtype=np.int64)
    ii, jj, rr = [], [], []
    for r in np.unique(rule):
        rows = np.flatnonzero(rule == r)
        i, j, _ = LS.block_pairs(bkey[rows], model)
        ii.append(rows[i])
        jj.append(rows[j])
        rr.append(np.full(len(i), r, dtype=np.int32))
    i, j, r = np.concatenate(ii), np.concatenate(jj), np.concatenate(rr)
    if not len(i):
        return
    k = LS.keys_of(pdf)
    levels = LS.compare(k, i, j)
    flags = LS.session_flags(k, i, j)
    gi, gj = g[i], g[j]
    out = pd.DataFrame({"lo": np.minimum(gi, gj), "hi": np.maximum(gi, gj), "rule": r,
                        **{f: levels[f] for f in FIELDS},
                        **{col: flags.get(name, np.zeros(len(i), dtype=bool)) for name, col in _SESSION_COLS.items()},
                        **{c: pdf[c].to_numpy(dtype=np.int64)[i] for c in _TF_COLS}})
    yield out


def _levels_of(pdf: pd.DataFrame) -> dict[str, np.ndarray]:
    return {f: pdf[f].to_numpy(dtype=np.int8) for f in FIELDS}


def _fit_task(pdf: pd.DataFrame, *, u_counts: dict[str, np.ndarray], model: LinkageModel) -> pd.DataFrame:
    """EM on the sessions' sampled pairs (one task): the weights, pickled (a few KB)."""
    pdf = pdf.reset_index(drop=True)
    sessions = {name: np.flatnonzero(pdf["session"].to_numpy() == name) for name in LS.SESSION_RULES}
    wt = LS.fit(u_counts, _levels_of(pdf), sessions, model)
    return pd.DataFrame({"weights": [pickle.dumps(wt)]})


def _decide(batches: Any, *, weights: Any, n: int, model: LinkageModel) -> Any:
    """Every pair scored; the accepted ones come out (lo, hi, weight, id_number level)."""
    for b in batches:
        if not len(b):
            continue
        lv = _levels_of(b)
        counts = {name: b[c].to_numpy(dtype=float) for name, c in zip(TF_FIELDS, _TF_COLS)}
        weight, acc = LS.score(lv, weights, counts, n, model)
        if acc.any():
            yield pd.DataFrame({"lo": b["lo"].to_numpy()[acc], "hi": b["hi"].to_numpy()[acc], "weight": weight[acc],
                                "id_number": lv["id_number"][acc]})


def _name_groups(nodes: pd.DataFrame, edges: pd.DataFrame, *, model: LinkageModel) -> pd.DataFrame:
    """The groups of a bucket of whole components, each named by its smallest qualified id."""
    if nodes.empty:
        return pd.DataFrame({"gid": pd.Series([], dtype=np.int64), "key": pd.Series([], dtype=object)})
    nodes = nodes.sort_values("gid", ignore_index=True)
    g = nodes["gid"].to_numpy(dtype=np.int64)
    k = LS.keys_of(nodes, ids=nodes["qid"].to_numpy(dtype=object))
    i = np.searchsorted(g, edges["lo"].to_numpy(dtype=np.int64))
    j = np.searchsorted(g, edges["hi"].to_numpy(dtype=np.int64))
    key = LS.group_keys(k, i, j, edges["weight"].to_numpy(dtype=float), edges["id_number"].to_numpy(dtype=np.int8),
                        model)
    return pd.DataFrame({"gid": g, "key": key})


# --------------------------------------------------------------------------- the job

@dataclass
class ProvinceLinkage:
    """What the job returns to the driver: figures (counts, seconds) and the trained
    parameters (levels, m, u, weights: never a value)."""

    stats: dict[str, float]
    parameters: pd.DataFrame


def link_province(spark: Any, root: Path, tag: str, model: LinkageModel = DEFAULT_MODEL) -> ProvinceLinkage:
    """Link every person of the ``keys`` dataset of night ``tag`` under ``root``; writes
    ``province_keys`` (district, person_id, key_district, key_person) partitioned by
    district."""
    if model.attributes:
        # The keys dataset holds no hukou or employment (keys_table codes them as missing).
        raise ValueError("link_province compares identifiers only: use a model with attributes=False")
    from functools import partial

    from pyspark.sql import functions as F
    t0 = time.perf_counter()
    work = root / "linkage" / f"night={tag}"
    keys = spark.read.parquet(str(root / "keys" / f"night={tag}"))
    collected = [0]

    def collect(df: Any) -> list[Any]:
        rows = df.collect()
        collected[0] += len(pickle.dumps([tuple(r) for r in rows]))
        return rows
    # A district's index in the gids is the load's (its place among all the province's districts),
    # not its place among those holding records: read it off its gids.
    of = collect(keys.groupBy("district").agg(F.count(F.lit(1)).alias("count"), F.min("gid").alias("gid0")))
    n_of = {r["district"]: int(r["count"]) for r in of}
    index_of = {r["district"]: int(r["gid0"]) >> GID_SHIFT for r in of}
    codes = sorted(n_of)
    n = sum(n_of.values())
    stats: dict[str, float] = {"records": n}

    # 1. term frequencies, province-wide
    rec = keys.select("gid", *LS.KEY_FIELDS)
    for name, col in TF_FIELDS.items():
        c = keys.where(F.col(col) != 0).groupBy(col).agg(F.count(F.lit(1)).alias(f"c_{name}"))
        rec = rec.join(c, col, "left")
    rec = rec.fillna(1, subset=_TF_COLS)
    rec.write.mode("overwrite").parquet(str(work / "records"))
    rec = spark.read.parquet(str(work / "records"))

    # 2. u from the random pairs link_keys would draw (positions in district order), drawn on an executor
    sample = spark.range(1, numPartitions=1).mapInPandas(
        partial(_sample_pairs, n=n, sizes=[n_of[c] for c in codes], indexes=[index_of[c] for c in codes],
                model=model), "a long, b long")
    ra = rec.select(F.col("gid").alias("a"), *[F.col(f).alias(f"a_{f}") for f in LS.KEY_FIELDS])
    rb = rec.select(F.col("gid").alias("b"), *[F.col(f).alias(f"b_{f}") for f in LS.KEY_FIELDS])
    u_rows = collect(sample.join(ra, "a").join(rb, "b").mapInPandas(_u_levels, "field string, level int, n long")
                     .groupBy("field", "level").agg(F.sum("n").alias("n")))
    u_counts = {f: np.zeros(len(LEVELS[f]), dtype=np.int64) for f in FIELDS}
    for r in u_rows:
        u_counts[r["field"]][r["level"]] = r["n"]

    # 3. candidate pairs: blocks grouped by (rule, key), pairs made and compared per partition
    rule_names = LS.rules()
    blocks = rec.select("gid", *LS.KEY_FIELDS).mapInPandas(_block_rows, "rule int, bkey long, gid long")
    sizes = blocks.groupBy("rule", "bkey").agg(F.count(F.lit(1)).alias("size")).cache()
    for r in collect(sizes.where(F.col("size") > model.max_block).groupBy("rule").count()):
        stats[f"skipped_blocks_{rule_names[r['rule']]}"] = int(r["count"])
    good = sizes.where((F.col("size") >= 2) & (F.col("size") <= model.max_block)).select("rule", "bkey")
    members = blocks.join(good, ["rule", "bkey"], "left_semi").join(rec, "gid")
    parts = max(int(spark.conf.get("spark.sql.shuffle.partitions")), 1)
    pairs = (members.repartition(parts, "rule", "bkey")
             .mapInPandas(partial(_pairs_of_blocks, model=model), _PAIR_SCHEMA))
    others = [c for c in pairs.columns if c not in ("lo", "hi", "rule")]
    pairs = pairs.groupBy("lo", "hi").agg(F.min("rule").alias("rule"), *[F.first(c).alias(c) for c in others])
    pairs.write.mode("overwrite").parquet(str(work / "pairs"))
    sizes.unpersist()
    pairs = spark.read.parquet(str(work / "pairs"))
    for r in collect(pairs.groupBy("rule").count()):
        stats[f"pairs_{rule_names[r['rule']]}"] = int(r["count"])
    stats["candidate_pairs"] = sum(v for k_, v in stats.items() if k_.startswith("pairs_"))

    # 4. m by EM on each session's pairs (a seeded sample of at most em_sample), in one task
    em = None
    for name, col in _SESSION_COLS.items():
        s = (pairs.where(F.col(col)).withColumn("_h", F.xxhash64("lo", "hi", F.lit(model.seed + 1)))
             .orderBy("_h", "lo", "hi").limit(model.em_sample).select(*FIELDS).withColumn("session", F.lit(name)))
        em = s if em is None else em.unionByName(s)
    assert em is not None
    def fit_task(pdf: pd.DataFrame) -> pd.DataFrame:
        return _fit_task(pdf, u_counts=u_counts, model=model)
    fitted = collect(em.groupBy(F.lit(0).alias("_all")).applyInPandas(fit_task, "weights binary"))
    weights = pickle.loads(fitted[0]["weights"])

    # 5. every pair scored with the province's weights; the accepted kept
    edges_path = work / "edges"
    pairs.mapInPandas(partial(_decide, weights=weights, n=n, model=model),
                      "lo long, hi long, weight double, id_number tinyint") \
        .write.mode("overwrite").parquet(str(edges_path))
    edges = spark.read.parquet(str(edges_path)).cache()
    stats["accepted_pairs"] = edges.count()

    # 6. components by label propagation, then the guard and the names per bucket of components
    both = edges.select(F.col("lo").alias("v"), F.col("hi").alias("w")).unionByName(
        edges.select(F.col("hi").alias("v"), F.col("lo").alias("w")))
    label = both.groupBy("v").agg(F.least(F.min("w"), F.first("v")).alias("label")).localCheckpoint()
    rounds = 0
    while True:
        rounds += 1
        # fresh aliases on both sides: the two uses of one checkpoint are a self-join
        theirs = label.select(F.col("v").alias("w"), F.col("label").alias("lw"))
        own = label.select(F.col("v").alias("v"), F.col("label").alias("own"))
        nxt = (both.join(theirs, "w").groupBy("v").agg(F.min("lw").alias("lw")).join(own, "v")
               .select("v", F.least("own", "lw").alias("label"), (F.col("lw") < F.col("own")).alias("_c"))
               .localCheckpoint())
        changed = nxt.where("_c").count()
        label = nxt.select("v", "label")
        if not changed:
            break
    stats["component_rounds"] = rounds
    bucket = F.pmod(F.xxhash64("label"), F.lit(parts))
    # each use of the labels under fresh aliases: the two sides of the cogroup share the checkpoint
    nodes = (label.select(F.col("v").alias("v"), F.col("label").alias("label"))
             .join(rec.withColumnRenamed("gid", "v"), "v")
             .join(keys.select(F.col("gid").alias("v"), F.concat_ws("/", "district", "person_id").alias("qid")), "v")
             .withColumnRenamed("v", "gid").withColumn("_b", bucket))
    ed = edges.join(label.select(F.col("v").alias("lo"), F.col("label").alias("label")), "lo").withColumn("_b", bucket)
    def name_groups(nodes: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
        return _name_groups(nodes, edges, model=model)
    named = nodes.groupBy("_b").cogroup(ed.groupBy("_b")).applyInPandas(name_groups, "gid long, key string")

    # 7. every person's province key, per district
    pk = (keys.join(named, "gid", "left")
          .withColumn("key", F.coalesce("key", F.concat_ws("/", "district", "person_id")))
          .select("district", "person_id", F.split("key", "/", 2).getItem(0).alias("key_district"),
                  F.split("key", "/", 2).getItem(1).alias("key_person")))
    pk.repartition("district").write.mode("overwrite").partitionBy("district") \
        .parquet(str(root / "province_keys" / f"night={tag}"))
    edges.unpersist()
    stats["seconds"] = time.perf_counter() - t0
    stats["collected_bytes"] = collected[0]  # counts, level counts and the weights: nothing per record
    return ProvinceLinkage(stats, LS.parameters(weights, model))
