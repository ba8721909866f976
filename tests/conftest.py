"""Shared fixtures: a tiny hand-built district whose every number is known."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import settings
from pg import pg_server, store_url  # noqa: F401  (fixtures: a throwaway PostgreSQL server)
from spark_cluster import spark_cluster  # noqa: F401  (fixture: a standalone Spark master and two workers)

# CI gives one verdict per commit: there the property tests draw the same examples every run
# (a failure shows its example and reproduces); elsewhere they explore new ones each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Public on purpose, like data/sample/SAMPLE_KEY: for synthetic test data only.
KEY = "SAMPLE-ONLY test pseudonym key: public, synthetic data only"


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Raw contract tables of a hand-built district (raw PII, as a source system holds it).

    People: p1 (张伟, violent past), p2 (his wife), p3 = p1 recorded again by the police
    (same id_number), p4 a neighbour, p5 a worker. Disputes: d1 spouses (p1, p2),
    d2 neighbours (p1, p4), d3 wage dispute against org o1.
    """
    persons = pd.DataFrame({
        "person_id": ["p1", "p2", "p3", "p4", "p5"],
        "birth_year": [1980, 1982, 1980, 1990, None],
        "gender": ["male", "female", "male", "male", "unknown"],
        "hukou": ["local", "local", "local", "migrant", "migrant"],
        "employment": ["unemployed", "employed", "unemployed", "employed", "employed"],
        "name": ["张伟", "李娜", "张伟", "王强", "赵敏"],
        "id_number": ["11010519491231002X", "110101198202023459", "11010519491231002X", None, None],
        "phone": ["13800000001", "13800000002", "138-0000-0001", "13800000004", None],
    })
    places = pd.DataFrame({"place_id": ["pl1", "pl2", "pl3"], "grid_id": ["g1", "g1", "g2"],
                           "town": ["t", "t", "t"], "district": ["d", "d", "d"],
                           "place_type": ["residential", "residential", "industrial"],
                           "lat": [30.0, 30.001, 30.01], "lon": [120.0, 120.001, 120.01]})
    households = pd.DataFrame({"household_id": ["h1", "h2"], "place_id": ["pl1", "pl2"],
                               "tenure": ["owned", "rented"]})
    household_members = pd.DataFrame({
        "household_id": ["h1", "h1", "h2"], "person_id": ["p1", "p2", "p4"],
        "role": ["head", "spouse", "head"],
        "start_date": [None, None, "2024-01-01"], "end_date": [None, "2024-06-01", None]})
    organizations = pd.DataFrame({"org_id": ["o1"], "org_type": ["enterprise"], "place_id": ["pl3"],
                                  "name": ["某某制造厂"]})
    incidents = pd.DataFrame({
        "incident_id": ["d1", "c1", "d2", "d3", "x1", "k1"],
        "kind": ["dispute", "police_call", "dispute", "dispute", "criminal_case", "criminal_case"],
        "category": ["marriage_family", "marriage_family", "neighbor", "labor_wage", "assault", "intentional_injury"],
        "occurred_at": ["2024-03-01", "2024-03-10T21:00:00", "2024-04-01", "2024-04-05", "2023-01-01", "2024-04-20"],
        "reported_at": ["2024-03-02", "2024-03-10T21:30:00", "2024-04-02", "2024-04-05", "2023-01-02", "2024-04-21"],
        "place_id": ["pl1", "pl1", "pl2", "pl3", "pl2", "pl1"],
        "source": ["grid_worker", "police_110", "walk_in", "hotline_12345", "police_110", "police_110"],
        "status": ["open", "closed", "resolved", "open", "closed", "closed"],
        "closed_at": [None, "2024-03-11", "2024-05-01", None, "2023-02-01", "2024-05-01"],
        "amount": [None, None, 500.0, 20000.0, None, None],
        "description": ["夫妻因家务争吵，男方酒后扬言要报复", "丈夫喝醉后威胁妻子，拿起菜刀", "楼上漏水引发邻里争执",
                        "Workers say wages unpaid for 3 months", "打架斗殴", "丈夫持刀伤人"],
        "related_incident_id": [None, "d1", None, None, None, "d1"],
    })
    incident_parties = pd.DataFrame({
        "incident_id": ["d1", "d1", "c1", "c1", "d2", "d2", "d3", "d3", "x1", "k1", "k1"],
        "party_id": ["p1", "p2", "p3", "p2", "p1", "p4", "p5", "o1", "p3", "p1", "p2"],
        "party_type": ["person", "person", "person", "person", "person", "person", "person", "organization",
                       "person", "person", "person"],
        "role": ["respondent", "complainant", "suspect", "victim", "respondent", "complainant", "complainant",
                 "respondent", "suspect", "suspect", "victim"],
    })
    mediations = pd.DataFrame({"mediation_id": ["m1", "m2"], "incident_id": ["d1", "d1"],
                               "held_at": ["2024-03-05", "2024-03-20"],
                               "mediator_type": ["grid_worker", "people_mediation_committee"],
                               "outcome": ["failed", "failed"]})
    person_flags = pd.DataFrame({"person_id": ["p3", "p1"], "flag": ["prior_violence", "substance"],
                                 "recorded_at": ["2023-01-05", "2024-03-15"]})
    relations = pd.DataFrame({"person_a": ["p1", "p1"], "person_b": ["p2", "p4"],
                              "relation": ["spouse", "neighbor"], "since": ["2005-01-01", None]})
    return dict(persons=persons, places=places, households=households, household_members=household_members,
                organizations=organizations, incidents=incidents, incident_parties=incident_parties,
                mediations=mediations, person_flags=person_flags, relations=relations)


def late_tables() -> dict[str, pd.DataFrame]:
    """The tiny district with contract 1.1's late facts, each with a known answer.

    - p4 (the neighbour) is added to d1 on 2024-04-22, after the crime k1 (row 11);
    - m2's failed outcome is typed in on 2024-04-10, three weeks after the session;
    - p1 was employed until 2024-04-15 (the export says unemployed); p4 has a hukou
      row (migrant) only from 2024-05-01, so before that it is unknown;
    - d1 has a calm return-visit note (2024-03-25) and a note after the crime
      (2024-04-22, a knife); d3 has a note with a threat (2024-04-06).
    """
    t = tiny_tables()
    t["incident_parties"] = pd.concat([t["incident_parties"].assign(added_at=None), pd.DataFrame({
        "incident_id": ["d1"], "party_id": ["p4"], "party_type": ["person"], "role": ["other"],
        "added_at": ["2024-04-22"]})], ignore_index=True)
    t["mediations"] = t["mediations"].assign(outcome_at=[None, "2024-04-10"])
    t["person_attributes"] = pd.DataFrame({
        "person_id": ["p1", "p1", "p4"], "attribute": ["employment", "employment", "hukou"],
        "value": ["employed", "unemployed", "migrant"],
        "recorded_at": ["2020-01-01", "2024-04-15", "2024-05-01"]})
    t["incident_notes"] = pd.DataFrame({
        "note_id": ["n1", "n2", "n3"], "incident_id": ["d1", "d1", "d3"],
        "recorded_at": ["2024-03-25", "2024-04-22T10:00:00", "2024-04-06"],
        "text": ["回访：双方情绪平稳", "当事人因持刀伤人被刑事立案", "工人扬言要堵厂门"]})
    return t


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return tiny_tables()


@pytest.fixture
def tiny_ds():
    from escalation_risk import Dataset
    return Dataset.from_frames(pseudonym_key=KEY, **tiny_tables())


@pytest.fixture(autouse=True)
def _no_key_from_the_environment(monkeypatch):
    """Every test passes its key explicitly: nothing may come from the developer's shell."""
    monkeypatch.delenv("ESCALATION_RISK_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("ESCALATION_RISK_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("ESCALATION_RISK_SIGNING_KEY", raising=False)
    monkeypatch.delenv("ESCALATION_RISK_SIGNING_KEY_FILE", raising=False)


def valid_id(tag: str) -> str:
    """A well-formed 18-character id number (valid date and check digit) standing for ``tag``."""
    import hashlib

    from escalation_risk.idnumbers import gb11643_check_digit
    h = int(hashlib.sha256(tag.encode()).hexdigest(), 16)
    born = pd.Timestamp("1950-01-01") + pd.Timedelta(days=h % 20000)
    body = f"110101{born:%Y%m%d}{(h >> 20) % 1000:03d}"
    return body + gb11643_check_digit(body)


@pytest.fixture(scope="session")
def small_district():
    """A generated district small enough to train on in seconds."""
    from escalation_risk.synth import generate_district
    return generate_district(4000, seed=2, pseudonym_key=KEY)


@pytest.fixture(scope="session")
def small_model(small_district):
    from escalation_risk import train
    return train(small_district, cutoff="2025-01-01", seed=0)


def same_when_cut(ds, names: list[str], when: str = "2024-09-01") -> pd.DataFrame:
    """Columns ``names`` of re-scored points up to ``when``, computed on the data as known then
    (``ds.cut``) and on the whole export: asserted equal (point in time); the cut's columns."""
    from escalation_risk import build_features
    from escalation_risk.model.points import example_points
    t = pd.Timestamp(when)
    pts = example_points(ds.cut(t), every_days=30, max_rescores=6, until=t)
    pts = pts[pts["as_of"] <= t].reset_index(drop=True)
    a = build_features(ds.cut(t), pts)[names]
    pd.testing.assert_frame_equal(a, build_features(ds, pts)[names])
    return a
