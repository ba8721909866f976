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


def test_the_index_holds_each_role_once(small_district) -> None:
    from escalation_risk.features import history_index
    roles = history_index(small_district).party_inc.payload["role"]
    assert len(roles) > 100
    assert len({id(r) for r in roles}) == len(set(roles))
