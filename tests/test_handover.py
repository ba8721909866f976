"""The handover of a forked child's result: mapped numeric arrays, object arrays in chunks."""

from __future__ import annotations

import os
import pickle
import tempfile

import numpy as np
import pandas as pd
import pytest

from escalation_risk import handover
from escalation_risk.forks import Forked


def _fd() -> int:
    fd, path = tempfile.mkstemp(prefix="er-handover-test-")
    os.unlink(path)
    return fd


def _value(n: int) -> dict:
    rng = np.random.default_rng(0)
    ids = np.array([f"P{i:07d}" for i in range(n)], dtype=object)
    words = np.array(["male", None, "female", float("nan")], dtype=object)[rng.integers(0, 4, n)]
    return {
        "ints": rng.integers(0, 10**12, n), "floats": rng.random((n, 3)), "empty": np.zeros(0, object),
        "objects": words, "small_objects": words[:5].copy(), "nested": [words[:3], {"k": ids[:2]}],
        "key": pd.Series(ids[::-1], index=pd.Index(ids, name="person_id"), name="person_key", dtype=object),
        "frame": pd.DataFrame({"id": pd.array(ids, dtype="str"), "t": pd.to_datetime(rng.integers(0, 10**9, n),
                                                                                       unit="s")}),
        "index": pd.Index(ids), "shared": (same := np.arange(7)), "again": same,
    }


def _check(got: dict, want: dict) -> None:
    for k in ("ints", "floats", "empty", "shared"):
        np.testing.assert_array_equal(got[k], want[k])
    assert got["ints"].dtype == want["ints"].dtype and got["floats"].shape == want["floats"].shape
    pd.testing.assert_series_equal(pd.Series(got["objects"]), pd.Series(want["objects"]))
    assert got["objects"].dtype == object
    pd.testing.assert_series_equal(pd.Series(got["small_objects"]), pd.Series(want["small_objects"]))
    pd.testing.assert_series_equal(got["key"], want["key"])
    pd.testing.assert_frame_equal(got["frame"], want["frame"])
    pd.testing.assert_index_equal(got["index"], want["index"])
    assert got["again"] is got["shared"]  # one object stays one object
    assert got["nested"][1]["k"].tolist() == want["nested"][1]["k"].tolist()


@pytest.mark.parametrize("n", [10, handover.CHUNK * 2 + 17])
def test_a_value_comes_back_equal_with_its_arrays_mapped_and_writable(n):
    want = _value(n)
    fd = _fd()
    try:
        handover.dump(want, fd)
        written = os.fstat(fd).st_size
        got = handover.load(fd)
        # Read once: the file keeps only its mapped part (the numeric buffers, written first),
        # not the object chunks and the structure, which a live mapping kept in memory.
        kept = os.fstat(fd).st_size
        chunked = len(pickle.dumps(want["objects"], protocol=5)) if n > handover.CHUNK else 0
        assert kept >= want["ints"].nbytes + want["floats"].nbytes and written - kept > chunked
    finally:
        os.close(fd)  # the mapping outlives the descriptor
    _check(got, want)
    big = got["ints"]
    # Mapped from the file, not copied into the heap: its memory is the mapping's.
    assert not big.flags.owndata and big.flags.writeable
    big[0] = -1  # copy-on-write: this process's page only
    assert got["ints"][0] == -1



def test_a_value_whose_numeric_arrays_are_all_empty_comes_back():
    """No numeric byte to map (every array of no rows): the buffers are still handed back."""
    want = {"a": np.zeros(0), "b": np.zeros((0, 3), dtype=np.int64), "o": np.zeros(0, object)}
    fd = _fd()
    try:
        handover.dump(want, fd)
        got = handover.load(fd)
    finally:
        os.close(fd)
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape

def test_a_forked_child_hands_its_result_over():
    want = _value(handover.CHUNK + 5)
    fd = _fd()
    try:
        def work() -> int:
            handover.dump(want, fd)
            return os.getpid()

        child = Forked(work).result()
        got = handover.load(fd)
    finally:
        os.close(fd)
    assert child != os.getpid() or not hasattr(os, "fork")
    _check(got, want)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_child_running_past_its_time_is_stopped_and_its_part_redone_here(caplog):
    """A rebuild's child that never ends (a deadlock, a machine too busy) must not hold the
    rebuild for ever: past its time it is killed, reaped, and the work is done here."""
    import logging
    import time

    parent = os.getpid()
    child_pid = []

    def slow() -> int:
        if os.getpid() != parent:
            time.sleep(60)
        return 7

    job = Forked(slow)
    child_pid.append(job._pid)
    t = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="escalation_risk.forks"):
        assert job.result(timeout=0.3) == 7
    assert time.perf_counter() - t < 20
    assert any("stopped" in r.getMessage() for r in caplog.records)
    with pytest.raises(ChildProcessError):  # killed and reaped: no zombie left
        os.waitpid(child_pid[0], os.WNOHANG)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
@pytest.mark.parametrize("fails", [False, True])
def test_a_child_that_ended_after_the_last_poll_is_not_stopped(monkeypatch, caplog, fails):
    """The order forced: the child ends between the wait's last poll (it said "running") and
    the deadline, already passed. It is not reported stopped (a rebuild would say it timed
    out): its result is read, or, if it failed, its part is redone here as a failure's is."""
    import logging

    parent = os.getpid()

    def quick() -> int:
        if fails and os.getpid() != parent:
            raise RuntimeError("the child fails")
        return os.getpid()

    job = Forked(quick)
    child, real = job._pid, os.waitpid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        if options & os.WNOHANG:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # it has ended (not reaped) ...
            return 0, 0  # ... after this poll
        return real(pid, options)

    monkeypatch.setattr(os, "waitpid", waitpid)
    with caplog.at_level(logging.WARNING, logger="escalation_risk.forks"):
        got = job.result(timeout=0)
    assert not job.stopped
    assert got == (parent if fails else child)
    said = [r.getMessage() for r in caplog.records]
    assert not any("stopped" in m for m in said) and any("failed" in m for m in said) == fails


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_fork_keeps_what_the_process_froze_out_of_the_collector():
    """A server freezes its loaded history (gc.freeze) so no full collection walks it during a
    request; a forked rebuild must not hand it back to the collector. A process that froze
    nothing gets everything back after the fork, as before."""
    import gc

    def child() -> int:
        return 1

    gc.unfreeze()  # (whatever an earlier test froze)
    try:
        Forked(child).result()
        assert gc.get_freeze_count() == 0  # nothing frozen before: nothing frozen after
        kept = [[i] for i in range(1000)]  # tracked containers, frozen as a server does
        gc.freeze()
        assert gc.get_freeze_count() >= len(kept)
        Forked(child).result()
        # The containers themselves are still frozen: none is back among the objects the collector
        # walks. (The frozen count may fall by a few meanwhile: a frozen object another thread
        # frees leaves the permanent generation, which is not the fork thawing it.)
        walked = {id(o) for o in gc.get_objects()}
        assert not any(id(k) in walked for k in kept)
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
