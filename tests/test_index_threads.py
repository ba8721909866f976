"""The history index built with its look-ups and texts' signals by a thread, or its texts
and pairs by forked children, is the index built in one thread: every array the same."""

import gc
import os
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from escalation_risk import forks
from escalation_risk.features import index
from escalation_risk.features.index import HistoryIndex
from escalation_risk.features.timeline import SHIFT, sorted_groups, unique_keys


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
           fork: bool = False) -> HistoryIndex:
    monkeypatch.setenv(forks.WORKERS_ENV, str(workers))
    monkeypatch.setattr(index, "_THREAD_ROWS", thread_rows)
    monkeypatch.setattr(forks, "FORK_MIN_ROWS", fork_min)
    return HistoryIndex(ds, fork=fork)


def _arrays(idx: HistoryIndex) -> dict:
    return {k: v for k, v in vars(idx).items() if k != "lexicon"}


@pytest.mark.parametrize("fork", [False, True])
def test_the_threaded_and_forked_builds_equal_the_build_in_one_thread(small_district, monkeypatch, fork):
    one = _built(small_district, monkeypatch, workers=1)
    # Every look-up and (without fork) both texts by the threads; with it, the texts by one child.
    two = _built(small_district, monkeypatch, workers=2, thread_rows=1, fork_min=1, fork=fork)
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
    fail_at = [1]  # a look-up made before the texts' signals are read: the child still running

    class LookUpFailed(RuntimeError):
        pass

    def failing(keys, ids):
        calls.append(1)
        if len(calls) == fail_at[0]:
            raise LookUpFailed("no")
        return real(keys, ids)

    # The failed build stops its child and drops the queued look-ups: both recorded.
    cancelled: list[int] = []
    real_cancel = forks.Forked.cancel

    def cancel(self):
        cancelled.append(self._pid)
        return real_cancel(self)

    shutdowns: list[bool] = []

    class Threads(ThreadPoolExecutor):
        def shutdown(self, wait=True, *, cancel_futures=False):
            shutdowns.append(cancel_futures)
            super().shutdown(wait, cancel_futures=cancel_futures)

    monkeypatch.setattr(index, "id_positions", failing)
    monkeypatch.setattr(forks.Forked, "cancel", cancel)
    monkeypatch.setattr(index, "ThreadPoolExecutor", Threads)
    with pytest.raises(LookUpFailed):
        _built(small_district, monkeypatch, workers=2, thread_rows=1, fork_min=1, fork=True)
    assert len(cancelled) == 1 and cancelled[0] > 0  # a forked child, stopped
    with pytest.raises(ChildProcessError):  # and reaped: no child of that id is left
        os.waitpid(cancelled[0], os.WNOHANG)
    assert shutdowns == [True]  # the look-ups' thread (the texts had the child)
    calls.clear()
    shutdowns.clear()
    fail_at[0] = 3  # the incidents of the parties
    with pytest.raises(LookUpFailed):
        _built(small_district, monkeypatch, workers=2, thread_rows=1)
    assert len(calls) >= 3
    assert shutdowns == [True, True]  # the texts' thread and the look-ups'


def _old_first_arrivals(inc, person, role, since) -> pd.DataFrame:
    """The parties' de-duplication as it was in pandas (before night2)."""
    pp = pd.DataFrame({"inc": inc, "person": person, "role": role, "t": since})
    return pp[pp["person"] >= 0].sort_values("t", kind="stable").drop_duplicates(["inc", "person", "role"])


@pytest.mark.parametrize("seed", range(6))
def test_the_first_arrivals_and_ties_equal_the_pandas_they_replaced(seed):
    rng = np.random.default_rng(seed)
    n = 0 if seed == 0 else int(rng.integers(1, 400))  # (seed 0: no rows)
    # Few incidents, persons, roles and times: many repeated keys and equal times.
    inc = rng.integers(0, 8, n)
    person = rng.integers(-1, 6, n)  # -1: an organisation or an unknown person
    role = rng.choice(np.array(["suspect", "victim", "witness", None], dtype=object), n)
    since = rng.integers(0, 5, n).astype(np.int64) * 86400
    codes = pd.factorize(pd.Series(role, dtype=object), use_na_sentinel=True)[0]
    rows = index._first_arrivals(inc, person, codes, since)
    old = _old_first_arrivals(inc, person, role, since)
    assert rows.tolist() == old.index.tolist()
    if n > 50:
        assert len(old) < (person >= 0).sum() and (codes[rows] < 0).any()  # (duplicates and missing roles met)
    # Each (incident, person)'s first arrival: the rows sorted by that key.
    key = inc[rows].astype(np.int64) * SHIFT + person[rows]
    order, starts = sorted_groups(key)
    pe = old.drop_duplicates(["inc", "person"])
    pe_key = pe["inc"].to_numpy(np.int64) * SHIFT + pe["person"].to_numpy(np.int64)
    by_key = np.argsort(pe_key, kind="stable")
    assert key[order[starts]].tolist() == pe_key[by_key].tolist()
    assert since[rows][order[starts]].tolist() == pe["t"].to_numpy()[by_key].tolist()
    assert unique_keys(key).tolist() == np.unique(key).tolist()
    # Each (person, counterparty)'s earliest tie, in the order the pairs first appear.
    a, b = rng.integers(0, 6, n), rng.integers(0, 6, n)
    tied = rng.integers(0, 4, n).astype(np.int64)
    got_ab, got_t = index._earliest_by_key(np.concatenate([a * SHIFT + b, b * SHIFT + a]),
                                           np.concatenate([tied] * 2))
    first = pd.DataFrame({"a": np.concatenate([a, b]), "b": np.concatenate([b, a]),
                          "t": np.concatenate([tied] * 2)}).groupby(["a", "b"], sort=False)["t"].min()
    assert (got_ab // SHIFT).tolist() == first.index.get_level_values(0).tolist()
    assert (got_ab % SHIFT).tolist() == first.index.get_level_values(1).tolist()
    assert got_t.tolist() == first.tolist()


@pytest.mark.parametrize("fork", [False, True])
def test_a_forking_build_makes_the_pairs_in_a_child(small_district, monkeypatch, tmp_path, fork):
    real = index._pairs
    where = tmp_path / "pid"

    def pairs(*args):
        where.write_text(str(os.getpid()))  # (a child's memory is its own: the file tells)
        return real(*args)

    monkeypatch.setattr(index, "_pairs", pairs)
    idx = _built(small_district, monkeypatch, workers=2, thread_rows=1, fork_min=1, fork=fork)
    assert (int(where.read_text()) != os.getpid()) is fork
    assert len(idx.pairs) > 100 and len(idx.pair_events) >= len(idx.pairs)
    assert not any(k in vars(idx) for k in ("_fork", "_children", "_pairs_made"))  # no child kept
    keys = idx.pairs.to_numpy()
    assert np.array_equal(idx.pairs.get_indexer(keys), np.arange(len(keys)))


@pytest.mark.parametrize("fork", [False, True])
def test_the_pairs_inputs_are_freed_with_the_incidents_scratch_when_made_here(small_district, monkeypatch, fork):
    # Made in this process (no fork asked, or too few rows for one), the pairs' inputs (a few
    # million rows at a million people) are not kept for the rest of the build.
    inputs: list[weakref.ref] = []
    alive: list[int] = []
    real_pairs, real_people = index._pairs, HistoryIndex._build_people

    def pairs(*args):
        inputs.extend(weakref.ref(a) for a in args)
        return real_pairs(*args)

    def people(self, ds):
        gc.collect()
        alive.extend(i for i, ref in enumerate(inputs) if ref() is not None)
        return real_people(self, ds)

    monkeypatch.setattr(index, "_pairs", pairs)
    monkeypatch.setattr(HistoryIndex, "_build_people", people)
    idx = _built(small_district, monkeypatch, workers=2, thread_rows=1, fork_min=10**9, fork=fork)
    assert len(inputs) == 4 and len(idx.pairs) > 100
    assert alive == []


def test_a_build_that_fails_after_the_pairs_fork_stops_both_children(small_district, monkeypatch):
    cancelled: list[int] = []
    real_cancel = forks.Forked.cancel

    def cancel(self):
        cancelled.append(self._pid)
        return real_cancel(self)

    class Failed(RuntimeError):
        pass

    def people(self, ds):
        raise Failed("no")

    monkeypatch.setattr(forks.Forked, "cancel", cancel)
    monkeypatch.setattr(HistoryIndex, "_build_people", people)
    with pytest.raises(Failed):
        _built(small_district, monkeypatch, workers=2, thread_rows=1, fork_min=1, fork=True)
    # Both children cancelled: the texts' already read (no process left), the pairs' running.
    assert len(cancelled) == 2 and cancelled[0] == 0 and cancelled[1] > 0
    with pytest.raises(ChildProcessError):  # stopped and reaped
        os.waitpid(cancelled[1], os.WNOHANG)
