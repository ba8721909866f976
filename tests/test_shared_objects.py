"""features.index.shared_objects: the object array of a column with one Python object per
distinct value (what a forked scoring child reads without copying millions of strings)."""

import numpy as np
import pandas as pd
import pytest

from escalation_risk.features.index import shared_objects


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", object, "category"])
def test_equals_astype_object_with_one_object_per_value(dtype) -> None:
    rng = np.random.default_rng(0)
    values = rng.choice(np.array(["victim", "suspect", "witness", None], dtype=object), size=500)
    s = pd.Series(values, dtype=dtype)
    want = s.astype(object).to_numpy()
    got = shared_objects(s)
    assert got.dtype == object and len(got) == len(want)
    for a, b in zip(want, got):
        assert (a == b) if not pd.isna(a) else (pd.isna(b) and type(a) is type(b))
    present = [x for x in got if not pd.isna(x)]
    assert len({id(x) for x in present}) == len(set(present))  # one object per distinct value


def test_keeps_each_row_s_own_missing_value() -> None:
    s = pd.Series(["a", None, np.nan, "a"], dtype=object)
    got = shared_objects(s)
    assert got[1] is None and isinstance(got[2], float) and got[0] is got[3]
    assert len(shared_objects(pd.Series([], dtype="str"))) == 0


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", object, "category"])
def test_a_column_of_only_missing_values(dtype) -> None:
    # Every party's role missing (role is optional): each row keeps its own missing value,
    # as the index's frame column read with to_numpy() gave before shared_objects.
    s = pd.Series([None, None], dtype=dtype)
    got = shared_objects(s)
    want = s.astype(object).to_numpy()
    assert got.dtype == object and len(got) == 2
    assert all(pd.isna(g) and type(g) is type(w) for g, w in zip(got, want))
    frame_column = pd.DataFrame({"role": want})["role"]  # how the index hands it over
    assert [type(x) for x in shared_objects(frame_column)] == [type(x) for x in frame_column.to_numpy()]


def test_the_index_holds_each_role_once(small_district) -> None:
    from escalation_risk.features import history_index
    roles = history_index(small_district).party_inc.payload["role"]
    assert len(roles) > 100
    assert len({id(r) for r in roles}) == len(set(roles))


def test_the_index_builds_when_every_role_is_missing(small_district) -> None:
    from escalation_risk.dataset import Dataset
    from escalation_risk.features import history_index
    t = small_district.tables()
    t["incident_parties"] = t["incident_parties"].assign(role=pd.Series(None, index=t["incident_parties"].index,
                                                                         dtype=t["incident_parties"]["role"].dtype))
    roles = history_index(Dataset(**t)).party_inc.payload["role"]
    assert len(roles) > 100 and all(pd.isna(r) for r in roles)
