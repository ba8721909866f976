"""The history index keeps texts as the table's Arrow column and reads them as the object array it replaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from escalation_risk.features.text_column import TextColumn


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


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", object])
def test_a_grown_text_column_reads_as_the_object_array_grown_and_leaves_the_old_one(dtype):
    """An add appends texts to the column without turning the Arrow part into Python strings
    (one long GIL hold at a million texts); it reads as the object array of the column
    followed by the new texts, at every kind of position; the column it grew from is unchanged."""
    s = pd.Series(["争吵", None, "威胁 报复", "", "x"], dtype=dtype)
    col = TextColumn(s)
    one = col.grown(np.array(["新", None], dtype=object))
    two = one.grown(np.array(["再"], dtype=object))
    other = one.grown(np.array(["别"], dtype=object))  # a second branch from one: its own texts
    assert two._arrow is col._arrow  # the loaded texts shared, not copied
    assert len(col) == 5 and len(one) == 7 and len(two) == 8 and two.shape == (8,)
    plain = [v if isinstance(v, str) else None for v in np.asarray(col)]
    want = np.array(plain + ["新", None, "再"], dtype=object)

    def same(got, expect) -> bool:
        return [v if isinstance(v, str) else None for v in got] == list(expect)

    rng = np.random.default_rng(7)
    for pos in (np.array([7, 0, 5, 2, -1, -3, 6]), rng.integers(-8, 8, 40), np.array([], dtype=np.int64)):
        assert same(two[pos], want[pos])
    assert same(two[2:7], want[2:7]) and same(two[::-3], want[::-3]) and same(two[want == "x"], ["x"])
    assert two[5] == "新" and two[-1] == "再" and two[0] == "争吵" and two[6] is None
    assert same(np.asarray(two), want) and same(np.asarray(col), plain) and len(np.asarray(col)) == 5
    assert other[-1] == "别" and two[-1] == "再" and len(one) == 7 and one[-1] is None
    for bad in (8, -9):
        with pytest.raises(IndexError):
            two[bad]
    with pytest.raises(IndexError):
        two[np.array([0, 8])]


def test_a_position_outside_the_text_column_is_an_error_not_another_row():
    col = TextColumn(pd.Series(["甲", "乙", "丙"], dtype=object))
    assert col[-1] == "丙" and col[-3] == "甲"
    for pos in (3, 7, -4):
        with pytest.raises(IndexError):
            col[pos]
