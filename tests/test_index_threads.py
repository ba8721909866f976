"""The history index built with its look-ups and texts' signals by a thread, or its texts
by a forked child, is the index built in one thread: every array the same."""

import numpy as np
import pandas as pd
import pytest

from escalation_risk import forks
from escalation_risk.features import index
from escalation_risk.features.index import HistoryIndex


def _same(a, b, where: str = "") -> None:
    """``a`` and ``b`` hold equal values, compared down through their attributes."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype, where
        if a.dtype == object:
            assert [(x is None, type(x), x if not pd.isna(x) else None) if np.ndim(x) == 0 else repr(x)
                    for x in a.ravel()] == \
                   [(x is None, type(x), x if not pd.isna(x) else None) if np.ndim(x) == 0 else repr(x)
                    for x in b.ravel()], where
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif isinstance(a, (pd.Index, pd.Series, pd.DataFrame)):
        assert a.equals(b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif hasattr(a, "__dict__") and not callable(a):
        _same(vars(a), vars(b), where)
    elif hasattr(a, "__slots__"):
        _same({s: getattr(a, s) for s in a.__slots__ if hasattr(a, s)},
              {s: getattr(b, s) for s in b.__slots__ if hasattr(b, s)}, where)
    else:
        assert a == b or (a != a and b != b), where  # (a missing value: NaN equals no NaN)


def _built(ds, monkeypatch, *, workers: int, thread_rows: int = 50_000, fork_min: int = 20_000,
           fork_texts: bool = False) -> HistoryIndex:
    monkeypatch.setenv(forks.WORKERS_ENV, str(workers))
    monkeypatch.setattr(index, "_THREAD_ROWS", thread_rows)
    monkeypatch.setattr(forks, "FORK_MIN_ROWS", fork_min)
    return HistoryIndex(ds, fork_texts=fork_texts)


def _arrays(idx: HistoryIndex) -> dict:
    return {k: v for k, v in vars(idx).items() if k != "lexicon"}


@pytest.mark.parametrize("fork_texts", [False, True])
def test_the_threaded_and_forked_builds_equal_the_build_in_one_thread(small_district, monkeypatch, fork_texts):
    one = _built(small_district, monkeypatch, workers=1)
    # Every look-up and (without fork_texts) both texts by the threads; with it, the texts by one child.
    two = _built(small_district, monkeypatch, workers=2, thread_rows=1, fork_min=1, fork_texts=fork_texts)
    assert len(one.incidents) > 1000 and one.inc_signals.any()
    _same(_arrays(one), _arrays(two))
    # (the comparison sees a changed value deep in a timeline)
    moved = next(v for v in vars(two.party_inc).values() if isinstance(v, np.ndarray) and v.dtype.kind in "iu")
    moved[-1] += 1
    with pytest.raises(AssertionError):
        _same(_arrays(one), _arrays(two))


def test_a_look_up_that_fails_on_the_thread_fails_the_build(small_district, monkeypatch):
    real = index.id_positions
    calls: list[int] = []

    class LookUpFailed(RuntimeError):
        pass

    def failing(keys, ids):
        calls.append(1)
        if len(calls) == 3:  # the incidents of the parties
            raise LookUpFailed("no")
        return real(keys, ids)

    monkeypatch.setattr(index, "id_positions", failing)
    with pytest.raises(LookUpFailed):
        _built(small_district, monkeypatch, workers=2, thread_rows=1, fork_min=1, fork_texts=True)
    calls.clear()
    with pytest.raises(LookUpFailed):
        _built(small_district, monkeypatch, workers=2, thread_rows=1)
    assert len(calls) >= 3
