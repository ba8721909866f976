"""The district tasks run on executors: load, hand over shared records, score, make training examples."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pandas as pd

from .. import spark_linkage as SL
from ..dataset import Dataset, load_dataset
from ..nightly import newest_record, write_rejected
from ..province import (
    SHARED_TABLES,
    CrossDistrict,
    district_shared_history,
    known_key,
    linkage_keys,
    peak_rss_mb,
    score_loaded,
)
from .files import COLLECTED, _as_local, _model_of, _read, _read_all, _write, partition


def _load_task(item: tuple[str, str, int | None, bool], *, root: str, tag: str, out: str | None
               ) -> dict[str, Any]:
    """Load one district on an executor: its linkage keys (when ``index``, its place among
    the province's districts, is given), its handover (when ``handover``) and problem
    report go to Parquet; counts come back."""
    t0 = time.perf_counter()
    code, folder, index, handover = item
    ds = load_dataset(folder, errors="quarantine", pseudonym_key=known_key(None))
    r = Path(root)
    if index is not None:  # the province linkage's input: integer keys, placed in the local engine's order
        _write(SL.keys_table(linkage_keys(ds, code), index), partition(r / "keys", tag, code))
    if index is not None and handover:
        # What this district would hand over if all its people were seen elsewhere (the one
        # rule, district_shared_history, over everyone): the history step picks the shared
        # people's rows from it, so a district is not read a second time.
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
    """A sharing district hands over its shared people's records by the one rule, picked
    from what its load task wrote (``handover``); a district whose load wrote none (it
    shared nobody the night before) is read again, and the same rule runs on it."""
    t0 = time.perf_counter()
    code, folder = item
    r = Path(root)
    links = _read(partition(r / "links", tag, code))  # this district's shared people only
    assert links is not None
    links.insert(0, "district", code)
    tables = {t: _read(partition(r / "handover" / t, tag, code)) for t in SHARED_TABLES}
    read_again = any(df is None for df in tables.values())
    ds = (load_dataset(folder, errors="quarantine", pseudonym_key=known_key(None)) if read_again
          else cast(Dataset, SimpleNamespace(**tables)))
    parts = district_shared_history(ds, code, links)
    for t, df in parts.items():
        _write(df.drop(columns="district"), partition(r / "history" / t, tag, code))
    return {"district": code, "rows": sum(len(df) for df in parts.values()), "read_again": read_again,
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
    from ..drift import night_check
    t0 = time.perf_counter()
    code, folder = item
    rm = _model_of(model.value)
    ds = load_dataset(folder, errors="quarantine", pseudonym_key=known_key(None))
    result = score_loaded(ds, code, rm, night, cross_of(Path(root), tag, code), thresholds=thresholds,
                          drift=night_check(rm, night) if check_drift else None)
    s = result.scores.drop(columns=[c for c in ("district",) if c in result.scores.columns])
    s["as_of"] = s["as_of"].astype("datetime64[us]")
    for c in ("reasons", "reasons_zh", "reason_features"):
        s[c] = [list(v) for v in s[c]]
    _write(s, partition(Path(root) / "scores", tag, code))
    return {"district": code, "disputes": len(s), "seconds": time.perf_counter() - t0,
            "peak_rss_mb": peak_rss_mb(), "pid": os.getpid(), "drift": pickle.dumps(result.drift)}


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


def _examples_task(item: tuple[str, str], *, root: str, tag: str, cutoff: pd.Timestamp, horizon_days: int,
                   config: dict | None) -> dict[str, Any]:
    """One district's training examples on an executor, written as Parquet; facts come back."""
    from ..province_training import district_examples, examples_task_facts
    t0 = time.perf_counter()
    code, folder = item
    ds = load_dataset(folder, errors="quarantine", pseudonym_key=known_key(None))
    made = district_examples(ds, code, cross_of(Path(root), tag, code), cutoff=cutoff, horizon_days=horizon_days,
                             config=config)
    _write(made.examples.drop(columns="district"), partition(Path(root) / "examples", tag, code))
    return {**examples_task_facts(made), "seconds": time.perf_counter() - t0}
