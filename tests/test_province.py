"""A province: districts with their own ids, people followed across districts, two engines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import KEY, tiny_tables

from escalation_risk import AlertStore, Dataset, load_dataset
from escalation_risk import province as P
from escalation_risk.cli import main as cli
from escalation_risk.features import build_features
from escalation_risk.synth import generate_province, write_province, write_tables

A, B = "330101", "330102"


def tiny_province() -> dict[str, dict[str, pd.DataFrame]]:
    """Two districts with the same ids; only p1 is one person in both (same id number).

    A is the tiny district of conftest: p1 (= p3, police record) has an assault in 2023
    (x1), a prior-violence flag from 2023-01-05 and a substance flag from 2024-03-15.
    B has the same ids for other people, none of that history, and its own p1 is A's p1.
    """
    a = tiny_tables()
    b = tiny_tables()
    persons = b["persons"].copy()
    persons.loc[1:, "name"] = ["周敏", "吴刚", "郑华", "冯丽"]
    persons.loc[1:, "id_number"] = ["330101198202020005", "330101198001010003", None, None]
    persons.loc[1:, "phone"] = ["13900000002", "13900000003", "13900000004", None]
    b["persons"] = persons
    drop = {"c1", "x1", "k1"}
    b["incidents"] = b["incidents"][~b["incidents"]["incident_id"].isin(drop)].reset_index(drop=True)
    b["incident_parties"] = b["incident_parties"][~b["incident_parties"]["incident_id"].isin(drop)]
    b["person_flags"] = b["person_flags"].iloc[0:0]
    return {A: a, B: b}


@pytest.fixture
def tiny_province_dir(tmp_path: Path) -> Path:
    root = tmp_path / "province"
    for code, tables in tiny_province().items():
        write_tables(tables, root / code, fmt="csv")
    return root


def _features(ds, dispute_id: str, as_of: str) -> pd.Series:
    X = build_features(ds, pd.DataFrame({"dispute_id": [dispute_id], "as_of": [pd.Timestamp(as_of)]}))
    return X.iloc[0]


def test_open_province_and_its_errors(tiny_province_dir: Path, tmp_path: Path):
    prov = P.open_province(tiny_province_dir)
    assert prov.districts == [A, B]
    assert P.is_province(tiny_province_dir) and not P.is_province(tiny_province_dir / A)
    (tmp_path / "empty").mkdir()
    with pytest.raises(P.ProvinceError, match="no district folders"):
        P.open_province(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        P.open_province(tmp_path / "nowhere")


def test_links_join_one_person_across_districts(tiny_province_dir: Path):
    prov = P.open_province(tiny_province_dir)
    cross = P.cross_district(prov, pseudonym_key=KEY)
    # p1 and its police record p3 are one person in A (key p1); B's p1 is the same person
    assert cross.links.values.tolist() == [[A, "p1", A, "p1"], [A, "p3", A, "p1"], [B, "p1", A, "p1"]]
    assert cross.n_people == 1
    h = cross.history
    assert sorted(zip(h["persons"]["district"], h["persons"]["person_id"])) == [(A, "p1"), (A, "p3"), (B, "p1")]
    assert set(h["incidents"].loc[h["incidents"]["district"] == A, "incident_id"]) == {"d1", "c1", "d2", "x1", "k1"}
    assert h["incidents"]["place_id"].isna().all()  # place ids mean nothing in another district
    # no raw identifier travels: the identifiers are pseudonyms
    assert "110101198001011234" not in h["persons"].to_string()


def test_the_night_links_the_province_as_training_does(tmp_path: Path):
    """One province linkage: the night's keys group the persons exactly as link_persons groups
    the training set made of the same province (province_dataset)."""
    root = write_province(generate_province(2, 300, seed=4, shared=0.05), tmp_path / "p")
    prov = P.open_province(root)
    cross = P.cross_district(prov, pseudonym_key=KEY)
    night = cross.keys.assign(q=cross.keys["district"] + "/" + cross.keys["person_id"],
                              k=cross.keys["key_district"] + "/" + cross.keys["key_person"]).set_index("q")["k"]
    trained = __import__("escalation_risk").link_persons(P.province_dataset(root, pseudonym_key=KEY))
    assert set(night.index) == set(trained.index)
    as_sets = lambda key: {frozenset(g) for g in key.index.to_series().groupby(key.to_numpy()).agg(list)}  # noqa: E731
    assert as_sets(night) == as_sets(trained.reindex(night.index))
    assert cross.n_people >= 15


def test_a_mistyped_id_is_one_person_across_districts():
    """B's p1 has a mistyped id number and no phone: no exact identifier is shared with A's p1,
    and the probabilistic linkage (name, birth year, the id's typo) still makes one person of them."""
    t = tiny_province()
    b = t[B]["persons"]
    idn = b.loc[0, "id_number"]
    b.loc[0, "id_number"] = idn[:14] + ("1" if idn[14] != "1" else "2") + idn[15:]
    b.loc[0, "phone"] = None
    keys = pd.concat([P.linkage_keys(Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **t[c]), c)
                      for c in (A, B)], ignore_index=True)
    pk = P.province_keys(keys).set_index(["district", "person_id"])
    assert tuple(pk.loc[(B, "p1")]) == (A, "p1")
    assert tuple(pk.loc[(B, "p2")]) == (B, "p2")  # B's other people stay B's


def test_history_features_see_every_district(tiny_province_dir: Path):
    prov = P.open_province(tiny_province_dir)
    cross = P.cross_district(prov, pseudonym_key=KEY)
    b = load_dataset(prov.folders[B], pseudonym_key=KEY)
    alone = _features(b, "d1", "2024-03-02")
    full = P.with_shared_history(b, B, cross)
    seen = _features(full, "d1", "2024-03-02")
    assert alone["hist_crime_suspect_all_max"] == 0 and alone["flag_prior_violence"] == 0
    assert seen["hist_crime_suspect_all_max"] == 1  # A's assault of 2023
    assert seen["flag_prior_violence"] == 1
    # point in time: A's substance flag of 2024-03-15 is not known on 2024-03-02, known on 2024-03-20
    assert seen["flag_substance"] == 0
    assert _features(full, "d1", "2024-03-20")["flag_substance"] == 1
    # the district's own records are untouched, and its ids are its own
    assert full.incidents["incident_id"].str.startswith("~").sum() == 5
    assert set(b.incidents["incident_id"]) <= set(full.incidents["incident_id"])
    # a district nobody shares people with is left as it is
    assert P.with_shared_history(b, "330199", cross) is b


def test_province_night_local(tiny_province_dir: Path, tmp_path: Path, small_model):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    out = tmp_path / "out"
    rep = P.run_province_night(tiny_province_dir, small_model, "2024-04-10", store=url, out_dir=out,
                               pseudonym_key=KEY)
    assert set(rep.summaries) == {A, B}
    s = rep.scores
    assert list(s.columns[:2]) == ["district", "dispute_id"]
    assert sorted(zip(s["district"], s["dispute_id"])) == [(d, i) for d in (A, B) for i in ("d1", "d2", "d3")]
    csv = pd.read_csv(rep.files["scores"])
    assert csv[["district", "dispute_id"]].astype(str).values.tolist() == \
        s[["district", "dispute_id"]].astype(str).values.tolist()
    # A's d1 and B's d1 are two disputes, with two scores: B's p1 carries A's history
    p = s.set_index(["district", "dispute_id"])["probability"]
    assert p[(A, "d1")] != p[(B, "d1")]
    with AlertStore(url) as st:
        runs = st.runs()
        assert sorted(runs["district"]) == [A, B]
        before = {t: st.engine.connect().execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar()
                  for t in ("scores", "runs", "alerts", "alert_events")}
    again = P.run_province_night(tiny_province_dir, small_model, "2024-04-10", store=url, out_dir=out,
                                 pseudonym_key=KEY)
    assert all(x.already_recorded for x in again.summaries.values())
    with AlertStore(url) as st:
        after = {t: st.engine.connect().execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in before}
    assert after == before
    # the next night's trend reads each district's own history
    nxt = P.run_province_night(tiny_province_dir, small_model, "2024-04-11", store=url, out_dir=None,
                               pseudonym_key=KEY)
    assert set(nxt.scores["trend"]) <= {"steady", "rising", "falling"}


def test_cli_nightly_on_a_province(tiny_province_dir: Path, tmp_path: Path, small_model, monkeypatch):
    model_dir = tmp_path / "model"
    small_model.save(model_dir)
    monkeypatch.setenv("ESCALATION_RISK_PSEUDONYM_KEY", KEY)
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    args = ["nightly", str(tiny_province_dir), "--model", str(model_dir), "--as-of", "2024-04-10", "--store", url,
            "--out", str(tmp_path / "out"), "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"district {A}" in result.stdout and f"district {B}" in result.stdout
    assert (tmp_path / "out" / "scores-2024-04-10.csv").exists()
    # a Spark master is for the spark engine: a bad argument otherwise
    bad = CliRunner().invoke(cli, ["nightly", str(tiny_province_dir / A), "--model", str(model_dir), "--as-of",
                                   "2024-04-10", "--store", url, "--spark-master", "local[2]"])
    assert bad.exit_code == 2 and "--engine spark" in bad.output


def test_cli_spark_engine_without_pyspark_says_how_to_install(tiny_province_dir: Path, tmp_path: Path,
                                                             small_model, monkeypatch):
    model_dir = tmp_path / "model"
    small_model.save(model_dir)
    monkeypatch.setenv("ESCALATION_RISK_PSEUDONYM_KEY", KEY)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    result = CliRunner().invoke(cli, ["nightly", str(tiny_province_dir), "--model", str(model_dir), "--as-of",
                                      "2024-04-10", "--store", f"sqlite:///{tmp_path / 'a.db'}", "--engine", "spark"])
    assert result.exit_code == 1
    assert "pip install 'escalation-risk[spark]'" in result.stderr and "Traceback" not in result.output


def test_package_import_does_not_pull_in_pyspark():
    code = ("import sys, warnings; warnings.simplefilter('error'); import escalation_risk; "
            "print(sorted(m for m in sys.modules if m.startswith('pyspark')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_generated_province_shares_people(tmp_path: Path):
    prov = generate_province(3, 300, seed=4, shared=0.05)
    assert list(prov) == ["330101", "330102", "330103"]
    root = write_province(prov, tmp_path / "p")
    cross = P.cross_district(P.open_province(root), pseudonym_key=KEY)
    # 15 people copied into each district after the first, each seen in two districts
    assert cross.n_people >= 30
    assert set(cross.links["district"]) == set(prov)
    assert np.all(cross.links.groupby(["key_district", "key_person"])["district"].nunique() >= 2)


def test_train_on_a_province(tmp_path: Path):
    """One model from the districts of a province; the same id in two districts stays two records."""
    raw = generate_province(2, 1500, seed=5, shared=0.05)
    root = write_province(raw, tmp_path / "p")
    ds = P.province_dataset(root, pseudonym_key=KEY)
    assert len(ds.incidents) == sum(len(t["incidents"]) for t in raw.values())
    assert ds.persons["person_id"].is_unique and ds.persons["person_id"].str.startswith("3301").all()
    # the people registered in both districts are one person for the model's histories
    key = __import__("escalation_risk").link_persons(ds)
    alone = sum(__import__("escalation_risk").link_persons(load_dataset(f, pseudonym_key=KEY)).nunique()
                for f in P.open_province(root).folders.values())
    assert alone - key.nunique() >= 70
    one = P.province_dataset(root, max_districts=1, seed=0, pseudonym_key=KEY)
    assert one.persons["person_id"].str[:6].nunique() == 1
    model = __import__("escalation_risk").train(ds, cutoff="2025-01-01")
    assert model.manifest["training"]["n_train"] > 0


def test_cli_train_engine_options_are_checked_before_any_work(tiny_province_dir: Path, tmp_path: Path):
    """--engine spark trains a province, never a district; --max-points and --spark-master are spark's."""
    out = str(tmp_path / "m")
    district = CliRunner().invoke(cli, ["train", str(tiny_province_dir / A), "--cutoff", "2024-06-01", "--out", out,
                                        "--engine", "spark"])
    assert district.exit_code == 2 and "province folder" in district.output
    local = CliRunner().invoke(cli, ["train", str(tiny_province_dir), "--cutoff", "2024-06-01", "--out", out,
                                     "--max-points", "100"])
    assert local.exit_code == 2 and "--engine spark" in local.output
    assert not Path(out).exists()
