"""The province on Spark, on ``local[2]`` and on a standalone cluster of two workers.

The same night as the local engine (scores, files, quarantine, alerts, links) and
each district one task writing its own partition, on both; on the cluster only (one
run is enough, and only there are executors separate processes): ``score_province``,
an executor killed mid-night changing nothing in the store, and no log holding the key.
Never skipped: without Java the fixtures fail with the reason. Every test has a
timeout, because a Spark job short of memory hangs instead of failing.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import KEY

from escalation_risk import AlertStore, load_dataset
from escalation_risk import province as P
from escalation_risk import spark as S
from escalation_risk.nightly import resolve_night
from escalation_risk.synth import generate_province, write_province

pytestmark = [pytest.mark.spark, pytest.mark.timeout(600),
              # under `make test`'s xdist, local[2] and the cluster run in one worker: the cluster starts once
              pytest.mark.xdist_group("spark"),
              # PySpark 4 predates pandas 3 and says so at every conversion; the tests check the values
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

NIGHT = "2025-03-31"
TAG = "2025-03-31"
DISTRICTS = ["330101", "330102", "330103"]


@pytest.fixture(scope="module", params=["local[2]", "cluster"])
def spark(request):
    why = S.java_missing()
    if why:  # fail, never skip: scripts/ensure-java-postgres.sh installs Java
        pytest.fail(f"the Spark tests need Java: {why}")
    master = request.getfixturevalue("spark_cluster").master_url if request.param == "cluster" else request.param
    session = S.session(master, pseudonym_key=KEY)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def province_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("province")
    province = generate_province(3, 600, seed=11, shared=0.05)
    # one bad row, so that both engines quarantine it: the report and the rejected rows must agree
    m = province["330102"]["mediations"]
    m["held_at"] = m["held_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    m.loc[m.index[0], "held_at"] = "not a date"
    return write_province(province, root)


@pytest.fixture(scope="module")
def local_night(province_dir: Path, small_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    url = f"sqlite:///{tmp / 'local.db'}"
    report = P.run_province_night(province_dir, small_model, NIGHT, store=url, out_dir=tmp / "out",
                                  engine="local", pseudonym_key=KEY)
    return report, url


@pytest.fixture(scope="module")
def spark_night(spark, province_dir: Path, small_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spark")
    url = f"sqlite:///{tmp / 'spark.db'}"
    report = P.run_province_night(province_dir, small_model, NIGHT, store=url, out_dir=tmp / "out",
                                  engine="spark", spark=spark, pseudonym_key=KEY)
    return report, url, tmp / "out"


def _alerts(url: str) -> pd.DataFrame:
    with AlertStore(url) as st:
        a = st.alerts()
    cols = ["district", "dispute_id", "level", "probability", "trend", "reasons", "plan", "status", "due_at"]
    a["reasons"] = a["reasons"].map(tuple)
    return a[cols].sort_values(["district", "dispute_id"], ignore_index=True)


def _same_alerts(url_a: str, url_b: str) -> None:
    a, b = _alerts(url_a), _alerts(url_b)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a.drop(columns="probability"), b.drop(columns="probability"))
    np.testing.assert_allclose(a["probability"], b["probability"], rtol=0, atol=1e-9)


def test_spark_night_equals_local_night(local_night, spark_night):
    (local, local_url), (remote, remote_url, _) = local_night, spark_night
    ls, rs = local.scores, remote.scores
    assert len(ls) > 100 and set(ls["district"]) == set(DISTRICTS)
    assert ls[["district", "dispute_id"]].values.tolist() == rs[["district", "dispute_id"]].values.tolist()
    np.testing.assert_allclose(rs["probability"], ls["probability"], rtol=0, atol=1e-9)
    for c in ("level", "plan", "trend"):
        assert ls[c].tolist() == rs[c].tolist()
    assert [list(r) for r in ls["reasons"]] == [list(r) for r in rs["reasons"]]
    assert (pd.to_datetime(rs["as_of"]) == resolve_night(NIGHT)).all()
    assert remote.cross_people == local.cross_people > 0
    files = {e: pd.read_csv(r.files["scores"]) for e, r in (("local", local), ("spark", remote))}
    pd.testing.assert_frame_equal(files["local"].drop(columns="probability"),
                                  files["spark"].drop(columns="probability"))
    _same_alerts(local_url, remote_url)
    # the same quarantine: the report (written by the driver from the tasks' Parquet) and the rejected rows
    assert remote.quarantined_rows == local.quarantined_rows > 0
    pd.testing.assert_frame_equal(pd.read_csv(remote.files["quarantine"]), pd.read_csv(local.files["quarantine"]))
    rejected = {e: sorted(p.relative_to(r.files["quarantine"].parent) for p in
                          (r.files["quarantine"].parent / f"rejected-{TAG}").rglob("*.csv"))
                for e, r in (("local", local), ("spark", remote))}
    assert rejected["local"] == rejected["spark"] != []
    for f in rejected["local"]:
        pd.testing.assert_frame_equal(pd.read_csv(remote.files["quarantine"].parent / f),
                                      pd.read_csv(local.files["quarantine"].parent / f))
    assert {d: s.n_scored for d, s in remote.summaries.items()} == {d: s.n_scored for d, s in local.summaries.items()}
    assert set(remote.drifts) == set(DISTRICTS)
    # one drift check on both engines (drift.night_check, run by score_loaded): the same reports
    def drift_of(night):
        return {d: None if r is None else (r.verdict, r.n_recent, r.score) for d, r in night.drifts.items()}
    assert drift_of(remote) == drift_of(local)


def test_each_district_task_writes_its_own_partition(spark, spark_night, local_night):
    (local, _), (remote, _, out) = local_night, spark_night
    # the score job: one stage of exactly one task per district (Spark's own bookkeeping)
    tracker = spark.sparkContext.statusTracker()
    jobs = tracker.getJobIdsForGroup("escalation-risk-score")
    assert len(jobs) == 1
    stages = [tracker.getStageInfo(s) for s in tracker.getJobInfo(jobs[0]).stageIds]
    assert [(s.numTasks, s.numCompletedTasks) for s in stages] == [(3, 3)]
    # each district's partition holds that district's disputes and no other's
    root = out / "spark" / "scores" / f"night={TAG}"
    assert sorted(p.name for p in root.iterdir()) == [f"district={d}" for d in DISTRICTS]
    for d in DISTRICTS:
        files = list((root / f"district={d}").glob("*.parquet"))
        assert len(files) == 1
        got = pq.read_table(files[0]).to_pandas()
        want = local.scores[local.scores["district"] == d]
        assert sorted(got["dispute_id"]) == sorted(want["dispute_id"]) and len(got) > 0
    # the records copied for the cross-district part (free text among them) left with the night
    copies = [f for d in ("history", "handover") for f in (out / "spark" / d).rglob(f"night={TAG}")]
    assert remote.cross_people > 0 and copies == []
    # the driver collected one small row per task, no score table: pids of the executors that ran them
    assert sorted(remote.tasks["district"]) == DISTRICTS and (remote.tasks["pid"] != os.getpid()).all()
    # the recorded scores (trend applied) wait in a file per district, read one district at a time
    recorded = out / "spark" / "recorded" / f"night={TAG}"
    assert sorted(p.name for p in recorded.iterdir()) == [f"district={d}" for d in DISTRICTS]
    for d in DISTRICTS:
        got, want = remote.scores_of(d), local.scores_of(d)
        assert got["dispute_id"].tolist() == want["dispute_id"].tolist() and got["trend"].tolist() == \
            want["trend"].tolist()


def test_spark_linkage_gives_the_local_links(spark_night, province_dir: Path):
    _, _, out = spark_night
    folders = P.open_province(province_dir).folders
    keys = pd.concat([P.linkage_keys(load_dataset(f, errors="quarantine", pseudonym_key=KEY), d)
                      for d, f in folders.items()], ignore_index=True)
    want = P.province_keys(keys).sort_values(["district", "person_id"], ignore_index=True)
    got = pd.concat([S._read_all(out / "spark" / "province_keys" / f"night={TAG}")], ignore_index=True)
    got = got[want.columns].astype(object).sort_values(["district", "person_id"], ignore_index=True)
    assert len(want) == len(keys) and (want["key_district"] != want["district"]).any()  # linked across
    pd.testing.assert_frame_equal(got, want.astype(object))
    links = S._read_all(out / "spark" / "links" / f"night={TAG}")
    shared = P._shared(want)
    assert sorted(map(tuple, links[["district", "person_id"]].values.tolist())) == \
        sorted(map(tuple, shared[["district", "person_id"]].values.tolist()))
    # each score task's share, by a Spark join: the people of the groups holding one of its people, no other
    for d in DISTRICTS:
        need = S._read(S.partition(out / "spark" / "need", TAG, d))
        groups = set(zip(shared.loc[shared["district"] == d, "key_district"],
                         shared.loc[shared["district"] == d, "key_person"]))
        expect = shared[[k in groups for k in zip(shared["key_district"], shared["key_person"])]]
        assert len(expect) and sorted(zip(need["source"], need["person_id"])) == \
            sorted(zip(expect["district"], expect["person_id"]))


@pytest.mark.parametrize("spark", ["cluster"], indirect=True)  # on the cluster only: see the docstring
def test_score_province_returns_the_written_dataset_lazily(spark, province_dir: Path, small_model, local_night,
                                                            tmp_path: Path):
    df = S.score_province(spark, province_dir, small_model, NIGHT, work_dir=tmp_path, pseudonym_key=KEY)
    assert df.columns[:3] == ["district", "dispute_id", "as_of"]
    assert "FileScan parquet" in df._jdf.queryExecution().executedPlan().toString()  # reads the dataset
    got = df.toPandas().sort_values(["district", "dispute_id"], ignore_index=True)
    want = local_night[0].scores.sort_values(["district", "dispute_id"], ignore_index=True)
    assert got[["district", "dispute_id"]].values.tolist() == want[["district", "dispute_id"]].values.tolist()
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=0, atol=1e-9)
    assert (pd.to_datetime(got["as_of"]) == resolve_night(NIGHT)).all()
    assert [list(r) for r in got["reasons"]] == [list(r) for r in want["reasons"]]


@pytest.mark.parametrize("spark", ["cluster"], indirect=True)  # on the cluster only: see the docstring
def test_a_killed_executor_changes_nothing_in_the_store(spark, spark_cluster, province_dir: Path, small_model,
                                                        local_night, tmp_path: Path):
    url, out = f"sqlite:///{tmp_path / 'killed.db'}", tmp_path / "out"
    scores = out / "spark" / "scores" / f"night={TAG}"
    killed: list[tuple[int, int]] = []  # (executor pid, districts written when it was killed)
    stop = threading.Event()

    def kill_mid_night() -> None:
        while not stop.is_set():
            done = len(list(scores.glob("district=*/part-0.parquet"))) if scores.exists() else 0
            pids = spark_cluster.executor_pids()
            if done >= 1 and pids:  # the score stage is under way: kill an executor running a task
                os.kill(pids[0], signal.SIGKILL)
                killed.append((pids[0], done))
                return
            time.sleep(0.02)  # the margin is one district's score task: poll well inside it

    watcher = threading.Thread(target=kill_mid_night)
    watcher.start()
    try:
        report = P.run_province_night(province_dir, small_model, NIGHT, store=url, out_dir=out, engine="spark",
                                      spark=spark, pseudonym_key=KEY)
    finally:
        stop.set()
        watcher.join()
    assert killed and killed[0][1] < len(DISTRICTS), f"the executor was not killed mid-night: {killed}"
    assert sorted(report.summaries) == DISTRICTS
    _same_alerts(local_night[1], url)
    assert sum(s.n_scored for s in report.summaries.values()) == len(local_night[0].scores)


@pytest.mark.parametrize("spark", ["cluster"], indirect=True)  # on the cluster only: see the docstring
def test_the_pseudonym_key_is_in_no_cluster_log(spark, spark_night, spark_cluster):
    """The key reaches executors through their environment only: no master, worker or executor log holds it."""
    assert spark.sparkContext.environment.get("ESCALATION_RISK_PSEUDONYM_KEY") == KEY  # it is on its way
    logs = [p for p in spark_cluster.logs.rglob("*") if p.is_file() and p.suffix not in (".jar", ".py", ".zip")]
    assert any("CoarseGrainedExecutorBackend" in p.read_text(errors="replace") for p in logs)  # logs were read
    assert not [p for p in logs if KEY in p.read_text(errors="replace")]


@pytest.mark.parametrize("spark", ["cluster"], indirect=True)  # on the cluster: the re-read is an executor's
def test_a_district_that_shared_nobody_writes_no_handover_and_the_night_stays_equal(
        spark, spark_night, province_dir: Path, small_model, tmp_path: Path):
    """A district that shared nobody the night before writes no handover copy; one that
    does share tonight after all is read again by the history step: either way the same
    night as the local engine's."""
    from escalation_risk.synth import generate_province, write_tables
    night2, tag2 = "2025-02-28", "2025-02-28"
    root = tmp_path / "province"
    root.mkdir()
    for d in DISTRICTS:
        (root / d).symlink_to(province_dir / d, target_is_directory=True)
    lone = next(iter(generate_province(1, 300, seed=29).values()))  # nobody of it lives in the others
    write_tables(lone, root / "330104")
    codes = [*DISTRICTS, "330104"]
    # the night before (spark_night's): every district but 330102 shared people, and 330104 was not there
    out = tmp_path / "out"
    before = out / "spark" / "links" / f"night={TAG}"
    before.parent.mkdir(parents=True)
    shutil.copytree(spark_night[2] / "spark" / "links" / f"night={TAG}", before)
    assert sorted(p.name for p in before.glob("district=*")) == [f"district={d}" for d in DISTRICTS]
    shutil.rmtree(before / "district=330102")
    remote = P.run_province_night(root, small_model, night2, store=f"sqlite:///{tmp_path / 'spark.db'}",
                                  out_dir=out, engine="spark", spark=spark, pseudonym_key=KEY)
    local = P.run_province_night(root, small_model, night2, store=f"sqlite:///{tmp_path / 'local.db'}",
                                 out_dir=tmp_path / "local", engine="local", pseudonym_key=KEY)
    assert S.HANDOVER == {"written": ["330101", "330103"], "skipped": ["330102", "330104"],
                          "read_again": ["330102"]}
    sharing = {p.name for p in (out / "spark" / "links" / f"night={tag2}").glob("district=*")}
    assert sharing == {f"district={d}" for d in DISTRICTS}  # 330104 shares nobody: its copy was never needed
    ls, rs = local.scores, remote.scores
    assert set(ls["district"]) == set(codes) and remote.cross_people == local.cross_people > 0
    assert ls[["district", "dispute_id"]].values.tolist() == rs[["district", "dispute_id"]].values.tolist()
    np.testing.assert_allclose(rs["probability"], ls["probability"], rtol=0, atol=1e-9)
    for c in ("level", "plan", "trend"):
        assert ls[c].tolist() == rs[c].tolist()
    assert [list(r) for r in ls["reasons"]] == [list(r) for r in rs["reasons"]]
    _same_alerts(f"sqlite:///{tmp_path / 'local.db'}", f"sqlite:///{tmp_path / 'spark.db'}")


@pytest.mark.parametrize("spark", ["local[2]"], indirect=True)  # one run: the examples travel as on the cluster
def test_training_by_districts_on_spark_gives_the_local_booster(spark, province_dir: Path, tmp_path: Path):
    """Examples made and written by executors, a seeded sample by point read by the driver:
    the same LightGBM booster as the local engine on the same sample."""
    from escalation_risk.province_training import sample_mask, train_province
    opts = {"cutoff": "2025-01-01", "pseudonym_key": KEY, "config": {"param_grid": []}, "max_points": 1500,
            "seed": 1}
    local = train_province(province_dir, engine="local", **opts)
    remote = train_province(province_dir, engine="spark", spark=spark, work_dir=tmp_path, **opts)
    assert remote.booster.model_to_string() == local.booster.model_to_string()
    sample = remote.manifest["training_data"]["sample"]
    assert sample == local.manifest["training_data"]["sample"]
    assert sample["by"] == "point" and 0 < sample["sampled"] < sample["examples"] and sample["districts"] == DISTRICTS
    tracker = spark.sparkContext.statusTracker()
    jobs = tracker.getJobIdsForGroup("escalation-risk-examples")
    stages = [tracker.getStageInfo(s) for s in tracker.getJobInfo(jobs[-1]).stageIds]
    assert [(s.numTasks, s.numCompletedTasks) for s in stages] == [(3, 3)]  # one task per district
    written = sorted(p.parent.name for p in (tmp_path / "examples").rglob("part-0.parquet"))
    assert written == [f"district={d}" for d in DISTRICTS]
    # another seed draws another sample (the seed is the sample's), about the fraction asked
    ex = pd.DataFrame({"district": "330101", "dispute_id": [f"d{i}" for i in range(2000)],
                       "as_of": pd.Timestamp("2024-05-01")})
    a, b = sample_mask(ex, 0.3, 1), sample_mask(ex, 0.3, 2)
    assert (a != b).any() and 450 < a.sum() < 750 and (sample_mask(ex, 0.3, 1) == a).all()


@pytest.fixture(scope="module")
def noisy_keys(tmp_path_factory) -> pd.DataFrame:
    """The linkage keys of a noisy district (duplicates written as real records are: old ids,
    typos, homophones), cut into three districts so that one person's records span them."""
    from escalation_risk.synth import generate_tables, write_tables
    folder = tmp_path_factory.mktemp("noisy")
    tables, _ = generate_tables(6000, seed=5, linkage_noise=0.25)
    write_tables(tables, folder)
    keys = P.linkage_keys(load_dataset(folder, errors="quarantine", pseudonym_key=KEY), "")
    keys["district"] = np.array(DISTRICTS)[np.arange(len(keys)) * 3 // len(keys)]
    return keys


def test_the_spark_linkage_is_link_keys_over_the_province(spark, noisy_keys: pd.DataFrame, tmp_path: Path):
    """Blocks grouped in Spark, pairs scored per partition with weights estimated once,
    components joined: the keys, the pairs and the trained parameters of one
    ``link_keys`` over every district's keys in district order."""
    from escalation_risk import spark_linkage as SL
    from escalation_risk.linking import link_keys
    for i, d in enumerate(DISTRICTS):
        mine = noisy_keys[noisy_keys["district"] == d].reset_index(drop=True)
        S._write(SL.keys_table(mine, i), S.partition(tmp_path / "keys", TAG, d))
    got = SL.link_province(spark, tmp_path, TAG)
    qualified = noisy_keys.drop(columns="district").assign(
        person_id=(noisy_keys["district"] + "/" + noisy_keys["person_id"].astype(str)).to_numpy())
    local = link_keys(qualified)
    # a linkage worth the name: EM trained m on the sessions, people linked across the cut
    assert (local.parameters["m_from"] == "em").any() and local.stats["accepted_pairs"] > 100
    for k in ("records", "candidate_pairs", "accepted_pairs"):
        assert got.stats[k] == local.stats[k], k
    assert {k: v for k, v in got.stats.items() if k.startswith("pairs_")} == \
        {k: v for k, v in local.stats.items() if k.startswith("pairs_") and v}
    pd.testing.assert_frame_equal(got.parameters.drop(columns=["m", "u", "weight"]),
                                  local.parameters.drop(columns=["m", "u", "weight"]))
    for c in ("m", "u", "weight"):  # EM sums the same pairs in another order
        np.testing.assert_allclose(got.parameters[c], local.parameters[c], rtol=1e-9, atol=1e-12)
    want = P.province_keys(noisy_keys).sort_values(["district", "person_id"], ignore_index=True)
    assert (want["key_district"] != want["district"]).sum() > 20
    pk = spark.read.parquet(str(tmp_path / "province_keys" / f"night={TAG}")).toPandas()
    pk = pk[want.columns].astype(object).sort_values(["district", "person_id"], ignore_index=True)
    pd.testing.assert_frame_equal(pk, want.astype(object))


def test_random_pairs_of_u_name_each_district_by_its_load_index():
    """A district with no records holds no gids: the others keep the index their load gave them."""
    from escalation_risk import spark_linkage as SL
    from escalation_risk.linking import DEFAULT_MODEL
    from escalation_risk.linking import stages as LS
    sizes, indexes = [3, 4], [0, 2]  # district 1 of the load wrote no keys
    got = next(SL._sample_pairs(iter([]), n=7, sizes=sizes, indexes=indexes, model=DEFAULT_MODEL))
    si, sj = LS.random_pairs(7, DEFAULT_MODEL)
    want = np.r_[SL.gids(0, 3), SL.gids(2, 4)]
    assert got["a"].tolist() == want[si].tolist() and got["b"].tolist() == want[sj].tolist() and len(got)
