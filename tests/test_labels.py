"""Label rules on tiny hand-built districts: horizon edges, links, settings, tail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import KEY

from escalation_risk.dataset import Dataset
from escalation_risk.labels import make_labels

AS_OF = pd.Timestamp("2024-01-01")  # + 90 days = 2024-03-31 (2024 is a leap year)


def district() -> Dataset:
    persons = pd.DataFrame({
        "person_id": ["a1", "b1", "a2", "a2x", "a3", "z", "a4", "a4dup", "a5", "a6", "a7"],
        "id_number": [None, None, None, None, None, None, "110101199001010015", "110101199001010015", None,
                      None, None],
    })
    inc = [  # incident_id, kind, category, occurred_at, related_incident_id
        ("D1", "dispute", "neighbor", "2023-12-20", None),
        ("K1", "criminal_case", "assault", "2024-01-01T00:00:00", None),       # exactly at as_of: not counted
        ("K1b", "criminal_case", "assault", "2023-12-31", None),                # before as_of: not counted
        ("D2", "dispute", "debt", "2023-12-20", None),
        ("K2", "criminal_case", "assault", "2024-03-31T00:00:00", None),       # exactly at as_of + 90d: counted
        ("D2x", "dispute", "debt", "2023-12-20", None),
        ("K2x", "criminal_case", "assault", "2024-03-31T00:00:01", None),      # one second past: not counted
        ("D3", "dispute", "labor_wage", "2023-12-20", None),
        ("K3", "criminal_case", "affray", "2024-02-01", "D3"),                   # names the dispute, no shared party
        ("D4", "dispute", "marriage_family", "2023-12-20", None),
        ("K4", "criminal_case", "intentional_injury", "2024-02-01", None),      # the same person, another id
        ("D5", "dispute", "neighbor", "2023-12-20", None),
        ("K5", "criminal_case", "property_damage", "2024-02-01", None),         # offence filter
        ("D6", "dispute", "neighbor", "2023-12-20", None),                       # scored in the tail
        ("D7", "dispute", "neighbor", "2023-12-20", None),                       # nothing happens
        ("END", "police_call", "other", "2025-01-01", None),                     # the data end here
    ]
    incidents = pd.DataFrame(inc, columns=["incident_id", "kind", "category", "occurred_at", "related_incident_id"])
    incidents["reported_at"] = incidents["occurred_at"]
    parties = [("D1", "a1"), ("D1", "b1"), ("K1", "a1"), ("K1b", "b1"), ("D2", "a2"), ("K2", "a2"),
               ("D2x", "a2x"), ("K2x", "a2x"), ("D3", "a3"), ("K3", "z"), ("D4", "a4"), ("K4", "a4dup"),
               ("D5", "a5"), ("K5", "a5"), ("D6", "a6"), ("D7", "a7"), ("END", "z")]
    return Dataset.from_frames(
        pseudonym_key=KEY, persons=persons,
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        incidents=incidents,
        incident_parties=pd.DataFrame(parties, columns=["incident_id", "party_id"]).assign(party_type="person",
                                                                                            role="other"),
    )


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return district()


def points(ids, as_of=AS_OF) -> pd.DataFrame:
    return pd.DataFrame({"dispute_id": ids, "as_of": as_of}, index=[f"r{i}" for i in range(len(ids))])


def labels(ds, ids, **kw) -> dict:
    y = make_labels(ds, points(ids), **kw)
    return dict(zip(ids, y.tolist()))


def test_horizon_edges(ds):
    y = labels(ds, ["D1", "D2", "D2x", "D7"])
    assert y == {"D1": 0.0, "D2": 1.0, "D2x": 0.0, "D7": 0.0}


def test_related_incident_counts_without_a_shared_party(ds):
    assert labels(ds, ["D3"]) == {"D3": 1.0}
    assert labels(ds, ["D3"], shared_party=False) == {"D3": 1.0}


def test_shared_party_through_a_duplicate_person_record(ds):
    assert labels(ds, ["D4"]) == {"D4": 1.0}
    assert labels(ds, ["D4", "D2"], shared_party=False) == {"D4": 0.0, "D2": 0.0}


def test_offence_filter(ds):
    assert labels(ds, ["D5"]) == {"D5": 1.0}
    assert labels(ds, ["D5", "D4"], offences=["assault", "intentional_injury"]) == {"D5": 0.0, "D4": 1.0}
    with pytest.raises(ValueError, match="offences"):
        make_labels(ds, points(["D5"]), offences=["jaywalking"])


def test_unlabelled_tail_is_nan_never_negative(ds):
    p = pd.DataFrame({"dispute_id": ["D6", "D6", "D6"],
                      "as_of": pd.to_datetime(["2024-10-03", "2024-10-04", "2024-12-01"])})
    y = make_labels(ds, p)
    assert y.iloc[0] == 0.0  # 2024-10-03 + 90 days = 2025-01-01, the last record: observed
    assert np.isnan(y.iloc[1]) and np.isnan(y.iloc[2])


def test_shorter_horizon_and_alignment(ds):
    p = points(["D2", "D3", "D2"])
    y = make_labels(ds, p, horizon_days=45)
    assert list(y.index) == list(p.index)
    assert y.tolist() == [0.0, 1.0, 0.0]  # K2 is 90 days on, K3 31 days on


def test_recorded_outcomes_close_the_loop():
    """An alert closed as 'escalated to a crime' labels its dispute even when the data lack the crime."""
    import pandas as pd
    from conftest import KEY, tiny_tables

    from escalation_risk import Dataset, make_labels

    ds = Dataset.from_frames(pseudonym_key=KEY, **tiny_tables())
    pts = pd.DataFrame({"dispute_id": ["d2", "d2", "d3"], "as_of": ["2024-04-02", "2023-10-01", "2024-04-05"]})
    base = make_labels(ds, pts, horizon_days=14)
    outcomes = pd.DataFrame({"dispute_id": ["d2", "d3"], "closed_at": ["2024-04-10", "2024-04-10"],
                             "escalated_to_crime": [True, False]})
    y = make_labels(ds, pts, horizon_days=14, outcomes=outcomes)
    assert y.iloc[0] == 1.0 and base.iloc[0] == 0.0      # closed as escalated within the horizon
    assert y.iloc[1] == base.iloc[1]                     # closing outside that point's horizon
    assert y.iloc[2] == base.iloc[2] == 0.0              # a recorded "no crime" changes nothing
