"""The province on Spark (local[2]): the same scores and alerts as the local engine.

Skipped only when Java is absent (the reason is printed by ``-ra``); every test has a
timeout, because a Spark job short of memory hangs instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import KEY

from escalation_risk import AlertStore
from escalation_risk import province as P
from escalation_risk import spark as S
from escalation_risk.nightly import resolve_night
from escalation_risk.synth import generate_province, write_province

pytestmark = [pytest.mark.spark, pytest.mark.timeout(900),
              # PySpark 4 predates pandas 3 and says so at every conversion; the tests check the values
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

NIGHT = "2025-03-31"


@pytest.fixture(scope="module")
def spark():
    why = S.java_missing()
    if why:
        pytest.skip(why)
    session = S.session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def province_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("province")
    return write_province(generate_province(3, 600, seed=11, shared=0.05), root)


def _alerts(url: str) -> pd.DataFrame:
    with AlertStore(url) as st:
        a = st.alerts()
    cols = ["district", "dispute_id", "level", "probability", "trend", "reasons", "plan", "status", "due_at"]
    a["reasons"] = a["reasons"].map(tuple)
    return a[cols].sort_values(["district", "dispute_id"], ignore_index=True)


def _district_stages(spark, group: str) -> list[tuple[str, int, int]]:
    """(name, tasks, completed tasks) of the stages Spark ran for ``group`` whose call site is a
    collect in spark.py (the district mapper): what Spark itself counted, not the results."""
    tracker = spark.sparkContext.statusTracker()
    out = []
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in (info.stageIds if info else ()):
            si = tracker.getStageInfo(stage)
            if si is not None and si.name.startswith("collect at") and "spark.py" in si.name:
                out.append((si.name, si.numTasks, si.numCompletedTasks))
    return out


def test_spark_night_equals_local_night(spark, province_dir: Path, tmp_path: Path, small_model):
    urls = {e: f"sqlite:///{tmp_path / e}.db" for e in ("local", "spark")}
    reports = {}
    for e in ("local", "spark"):
        if e == "spark":
            spark.sparkContext.setJobGroup("night-test", "the province night on Spark")
        reports[e] = P.run_province_night(province_dir, small_model, NIGHT, store=urls[e], out_dir=tmp_path / e,
                                          engine=e, spark=spark if e == "spark" else None, pseudonym_key=KEY)
    spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    local, remote = (reports[e].scores for e in ("local", "spark"))
    assert len(local) > 100 and set(local["district"]) == {"330101", "330102", "330103"}
    assert local[["district", "dispute_id"]].equals(remote[["district", "dispute_id"]])
    np.testing.assert_allclose(remote["probability"], local["probability"], rtol=0, atol=1e-9)
    assert (local["level"] == remote["level"]).all() and (local["plan"] == remote["plan"]).all()
    assert reports["spark"].cross_people == reports["local"].cross_people > 0
    # the same files and the same alerts in the store
    files = {e: pd.read_csv(reports[e].files["scores"]) for e in reports}
    pd.testing.assert_frame_equal(files["local"].drop(columns="probability"),
                                  files["spark"].drop(columns="probability"))
    a, b = _alerts(urls["local"]), _alerts(urls["spark"])
    assert len(a) > 0
    pd.testing.assert_frame_equal(a.drop(columns="probability"), b.drop(columns="probability"))
    np.testing.assert_allclose(a["probability"], b["probability"], rtol=0, atol=1e-9)
    # one task per district, as Spark counted them (the report's task list is built from the
    # results, so it could not tell one task per district from one task for all)
    stages = _district_stages(spark, "night-test")
    assert stages and all(n == done == local["district"].nunique() for _, n, done in stages), stages
    assert sorted(reports["spark"].tasks["district"]) == sorted(local["district"].unique())


def test_score_province_returns_a_spark_dataframe(spark, province_dir: Path, small_model):
    # the cross-district part on Spark is checked by the night above (same scores); here, the local one
    local_cross = P.cross_district(P.open_province(province_dir), pseudonym_key=KEY)
    df = S.score_province(spark, province_dir, small_model, NIGHT, pseudonym_key=KEY, cross=local_cross)
    assert df.columns[:3] == ["district", "dispute_id", "as_of"]
    assert df.rdd.getNumPartitions() == 3  # one partition per district, on purpose
    got = df.toPandas().sort_values(["district", "dispute_id"], ignore_index=True)
    want = pd.concat([P.score_district(f, d, small_model, resolve_night(NIGHT), local_cross, pseudonym_key=KEY).scores
                      for d, f in P.open_province(province_dir).folders.items()])
    want = want.sort_values(["district", "dispute_id"], ignore_index=True)
    assert got[["district", "dispute_id"]].values.tolist() == want[["district", "dispute_id"]].values.tolist()
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=0, atol=1e-9)
    assert (pd.to_datetime(got["as_of"]) == resolve_night(NIGHT)).all()
    assert [list(r) for r in got["reasons"]] == [list(r) for r in want["reasons"]]
