"""The history index keeps texts as the table's Arrow column and reads them as the object array it replaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from escalation_risk.capacity import grow
from escalation_risk.features.index import TextColumn


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", object])
def test_text_column_reads_as_the_object_array(dtype):
    s = pd.Series(["争吵", None, "威胁 报复", "", "x"], dtype=dtype)
    want = s.to_numpy(dtype=object)
    col = TextColumn(s)
    assert len(col) == 5 and col.shape == (5,)
    pos = np.array([4, 0, 2, 2, -1, 1])
    got = col[pos]
    assert got.dtype == object
    assert [isinstance(v, str) for v in got] == [isinstance(v, str) for v in want[pos]]
    assert [v for v in got if isinstance(v, str)] == [v for v in want[pos] if isinstance(v, str)]
    assert col[2] == "威胁 报复" and col[np.array([], dtype=np.int64)].shape == (0,)
    whole = np.asarray(col)
    assert [v if isinstance(v, str) else None for v in whole] == [v if isinstance(v, str) else None for v in want]
    # An index grown by an add holds an object array: the column followed by the new texts.
    grown = grow(col, np.array(["新"], dtype=object))
    assert isinstance(grown, np.ndarray) and grown[-1] == "新" and grown[0] == "争吵" and len(grown) == 6


def test_a_position_outside_the_text_column_is_an_error_not_another_row():
    col = TextColumn(pd.Series(["甲", "乙", "丙"], dtype=object))
    assert col[-1] == "丙" and col[-3] == "甲"
    for pos in (3, 7, -4):
        with pytest.raises(IndexError):
            col[pos]
