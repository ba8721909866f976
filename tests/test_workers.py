"""The night's work split over forked workers gives the night of one process, byte for byte."""

from __future__ import annotations

import logging
import os

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import KEY

from escalation_risk import forks, run_night
from escalation_risk.model import open_points, risk_model

NIGHT = "2025-06-30"


def _dump(url: str) -> dict[str, pd.DataFrame]:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        out = {n: pd.read_sql_table(n, c) for n in sa.inspect(c).get_table_names()}
    eng.dispose()
    # The run's own clock readings differ between any two runs.
    out["runs"] = out["runs"].drop(columns=["started_at", "finished_at"], errors="ignore")
    out["schema_version"] = out["schema_version"].drop(columns=["applied_at"], errors="ignore")
    return out


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    """A raw export (identifiers not yet pseudonymised, linkage noise): the load hashes them."""
    from escalation_risk.synth import generate_tables, write_tables
    d = tmp_path_factory.mktemp("raw")
    tables, _ = generate_tables(3000, seed=4, linkage_noise=0.25)
    write_tables(tables, d, fmt="parquet")
    return d


def _night(tmp_path, raw_dir, model, name: str) -> tuple[dict[str, pd.DataFrame], bytes, bytes, str]:
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    out = tmp_path / name
    report = run_night(raw_dir, model, NIGHT, store=url, out_dir=out, pseudonym_key=KEY, allow_stale=True)
    assert report.summary.n_scored > 128  # several slices of the small CHUNK below
    return (_dump(url), (out / f"scores-{NIGHT}.csv").read_bytes(), (out / f"quarantine-{NIGHT}.csv").read_bytes(),
            str(report.drift))


def _count_forks(monkeypatch) -> list[int]:
    """The pids of the children forked from now on (os.fork still forks)."""
    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid
    monkeypatch.setattr(os, "fork", fork)
    return forked


def test_the_night_is_the_same_whatever_the_worker_count(tmp_path, raw_dir, small_model, monkeypatch, caplog):
    monkeypatch.setenv(forks.WORKERS_ENV, "1")
    one = _night(tmp_path, raw_dir, small_model, "one")

    # Two workers, and every split taken at this size: the linkage keys hashed by a child,
    # the identifiers' pseudonyms by another, the fingerprint by a third, the descriptions'
    # and the notes' signals by a fourth, the index's pairs by a fifth, the open disputes
    # scored in two halves of several small slices each (the drift checked by the sixth,
    # after its half), the scores CSV written by a seventh while the night is recorded.
    monkeypatch.setenv(forks.WORKERS_ENV, "2")
    monkeypatch.setattr(forks, "FORK_MIN_ROWS", 1)
    monkeypatch.setattr(risk_model, "CHUNK", 64)
    import escalation_risk.province as province
    monkeypatch.setattr(province, "CHUNK", 64)
    monkeypatch.setattr(province, "FORKED_SLICE", 24)  # each half scored a few points at a time
    forked = _count_forks(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="escalation_risk.forks"):
        two = _night(tmp_path, raw_dir, small_model, "two")
    assert len(forked) == 7, ("one each: linkage keys, identifiers' pseudonyms, the input's fingerprint, the "
                              "texts' signals (descriptions and notes), the index's pairs, half the scores and "
                              "the drift, the scores CSV")
    assert not [r for r in caplog.records if r.name == "escalation_risk.forks"], "a worker failed: redone here"
    assert one[1] == two[1]  # the scores CSV
    assert one[2] == two[2]  # the quarantine CSV (linkage noise makes bad ids)
    assert one[3] == two[3] and "verdict" in one[3]  # the drift report, checked by the child
    assert one[0].keys() == two[0].keys()
    for table in one[0]:
        pd.testing.assert_frame_equal(one[0][table], two[0][table], obj=table)


def test_a_night_failing_while_its_csv_is_written_leaves_no_file(tmp_path, raw_dir, small_model, monkeypatch):
    from escalation_risk.alerts import AlertStore

    monkeypatch.setenv(forks.WORKERS_ENV, "2")
    monkeypatch.setattr(forks, "FORK_MIN_ROWS", 1)
    from escalation_risk import nightly

    forked = _count_forks(monkeypatch)
    started: list[bool] = []  # whether each start of the CSV's writer forked its child
    real_start = nightly._ScoresWriter.start

    def start(self, district, scores):
        real_start(self, district, scores)
        started.append(self._job is not None)
    monkeypatch.setattr(nightly._ScoresWriter, "start", start)

    def refused(self, scores, *args, **kwargs):
        assert started == [True], "the CSV's child was started before the night is recorded"
        raise RuntimeError("the store went away")
    monkeypatch.setattr(AlertStore, "record_night", refused)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="went away"):
        run_night(raw_dir, small_model, NIGHT, store=f"sqlite:///{tmp_path / 'a.db'}", out_dir=out,
                  pseudonym_key=KEY, allow_stale=True)
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert not [n for n in left if n.startswith(("scores", ".scores"))], left
    for pid in forked:  # no child left running
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_failed_worker_is_redone_here(caplog):
    def boom() -> int:
        if os.getpid() != parent:
            raise RuntimeError("only in the child")
        return 7
    parent = os.getpid()
    with caplog.at_level(logging.WARNING, logger="escalation_risk.forks"):
        assert forks.Forked(boom).result() == 7
    assert any("redone here" in r.getMessage() for r in caplog.records)


def test_workers_setting(monkeypatch):
    monkeypatch.setenv(forks.WORKERS_ENV, "1")
    assert forks.workers() == 1
    monkeypatch.setenv(forks.WORKERS_ENV, "zero")
    with pytest.raises(ValueError, match=forks.WORKERS_ENV):
        forks.workers()
    monkeypatch.delenv(forks.WORKERS_ENV)
    assert 1 <= forks.workers() <= 2


class _Echo:
    """A model whose scores are its points, with the process that scored each."""

    def score(self, ds, points, thresholds=None):
        return points.assign(pid=os.getpid())


def test_the_scoring_child_runs_then_after_a_smaller_half(monkeypatch):
    import escalation_risk.province as province
    monkeypatch.setattr(province, "CHUNK", 4)
    points = pd.DataFrame({"dispute_id": [f"d{i}" for i in range(20)], "as_of": pd.Timestamp(NIGHT)})
    scores, pid = province.score_points(_Echo(), None, points, fork=True, then=os.getpid)
    assert pid != os.getpid()  # run by the child
    assert scores["dispute_id"].tolist() == points["dispute_id"].tolist()
    assert (scores["pid"] == pid).sum() == 8  # a slice less than the 12 it scores with nothing after
    scores, _ = province.score_points(_Echo(), None, points, fork=True)
    assert (scores["pid"] != os.getpid()).sum() == 12
    scores, pid = province.score_points(_Echo(), None, points, fork=False, then=os.getpid)
    assert pid == os.getpid() and (scores["pid"] == pid).all()


def test_a_then_that_fails_in_the_child_is_run_again_here_alone(monkeypatch, caplog):
    import escalation_risk.province as province
    monkeypatch.setattr(province, "CHUNK", 4)
    parent = os.getpid()

    def then() -> int:
        if os.getpid() != parent:
            raise RuntimeError("only in the child")
        return os.getpid()
    points = pd.DataFrame({"dispute_id": [f"d{i}" for i in range(20)], "as_of": pd.Timestamp(NIGHT)})
    with caplog.at_level(logging.WARNING, logger="escalation_risk.province"):
        scores, pid = province.score_points(_Echo(), None, points, fork=True, then=then)
    assert pid == parent  # then() run again here
    assert scores["dispute_id"].tolist() == points["dispute_id"].tolist()
    assert (scores["pid"] != parent).sum() == 8  # the child's half kept, not scored again here
    assert any("run again here" in r.getMessage() and "only in the child" not in r.getMessage()
               for r in caplog.records)


def test_a_large_district_s_few_open_disputes_check_drift_in_a_child(monkeypatch, small_district, small_model):
    import escalation_risk.province as province
    monkeypatch.setenv(forks.WORKERS_ENV, "2")
    night = pd.Timestamp(NIGHT)
    n_open = len(open_points(small_district, night))
    assert 1 < n_open <= province.CHUNK  # a single slice of points: score_points alone would not fork
    monkeypatch.setattr(forks, "FORK_MIN_ROWS", len(small_district.incidents))  # "large" from here
    r = province.score_loaded(small_district, "", small_model, night, province.CrossDistrict.empty(),
                              drift=lambda ds: os.getpid())
    assert r.drift != os.getpid() and len(r.scores) == n_open
    monkeypatch.setattr(forks, "FORK_MIN_ROWS", len(small_district.incidents) + 1)
    r = province.score_loaded(small_district, "", small_model, night, province.CrossDistrict.empty(),
                              drift=lambda ds: os.getpid())
    assert r.drift == os.getpid()


def test_one_slice_of_points_is_scored_here_and_then_runs_alone_in_the_child(monkeypatch):
    import escalation_risk.province as province
    monkeypatch.setattr(province, "CHUNK", 32)
    points = pd.DataFrame({"dispute_id": [f"d{i}" for i in range(20)], "as_of": pd.Timestamp(NIGHT)})
    scores, pid = province.score_points(_Echo(), None, points, fork=True, then=os.getpid)
    assert pid != os.getpid() and (scores["pid"] == os.getpid()).all()
    assert scores["dispute_id"].tolist() == points["dispute_id"].tolist()


def test_two_threads_forking_at_once_leave_the_collector_as_it_was(monkeypatch):
    """Thread B forking while thread A is between its freeze and its unfreeze: B must not take
    A's freeze for the process's own (it would never undo its own). Forks fail here (no
    child), so only the freezes are seen."""
    import gc
    import threading
    import types

    gc.unfreeze()  # (whatever an earlier test froze)
    calls: list[str] = []

    def record(name):
        def fn():
            calls.append(name)
            getattr(gc, name)()
        return fn

    second = threading.Thread(target=lambda: forks.Forked(lambda: 2))
    b_looked = threading.Event()  # B read the freeze count: without one fork at a time, inside A's freeze

    def count() -> int:
        if threading.current_thread() is second:
            b_looked.set()
        return gc.get_freeze_count()

    monkeypatch.setattr(forks, "gc", types.SimpleNamespace(
        get_freeze_count=count, freeze=record("freeze"), unfreeze=record("unfreeze")))
    forks_made = []

    def fork() -> int:
        forks_made.append(1)
        if len(forks_made) == 1:  # A, frozen: B forks now (and waits for A, once forks are one at a time)
            second.start()
            b_looked.wait(10)  # at once without the fork lock; with it B waits for A, and so does this
        raise OSError("no fork here")

    monkeypatch.setattr(os, "fork", fork)
    try:
        assert forks.Forked(lambda: 1).result() == 1
        second.join(60)
        assert not second.is_alive() and len(forks_made) == 2
        assert calls.count("freeze") == calls.count("unfreeze") == 2, calls
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()


def test_a_frozen_process_forking_freezes_nothing_more_here():
    """A server froze its history; each fork freezes the objects alive at that moment in the
    child only: here they stay the collector's (frozen for good, they would leak)."""
    import gc

    gc.unfreeze()  # (whatever an earlier test froze)
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        later = [[i] for i in range(1000)]  # tracked objects made after the server froze

        def unfrozen() -> int:  # later's objects the collector walks (its generations hold no frozen object)
            collected = {id(o) for o in gc.get_objects()}
            return sum(id(x) in collected for x in [later, *later])

        assert forks.Forked(unfrozen).result(600) == 0  # the child froze what it shares with this process
        assert unfrozen() == len(later) + 1  # nothing more frozen here
    finally:
        gc.unfreeze()
