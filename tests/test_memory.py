"""The night's memory settings (escalation_risk.memory): set inside, restored after, inherited by forks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from escalation_risk import memory, nightly
from escalation_risk.forks import Forked
from escalation_risk.memory import MALLOC_PARAMETERS, batch_memory

switch = memory._hugepage_switch()
needs_switch = pytest.mark.skipif(switch is None, reason="this numpy has no huge-page switch")


def advice() -> bool:
    """numpy's huge-page advice now, read without changing it."""
    assert switch is not None
    before = switch(True)
    switch(before)
    return before


@pytest.fixture
def advising(monkeypatch: pytest.MonkeyPatch):
    """numpy advising huge pages (as it does by default on Linux), set back after the test."""
    monkeypatch.delenv(memory.HUGEPAGE_ENV, raising=False)
    assert switch is not None
    before = switch(True)
    yield
    switch(before)


class FakeLibc:
    """glibc's two calls the module makes, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.trims = 0

    def mallopt(self, number, value) -> int:
        self.calls.append((number.value, value.value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        return 1


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(memory, "_libc", lambda: fake)
    for _, env, *_ in MALLOC_PARAMETERS:
        monkeypatch.delenv(env, raising=False)
    monkeypatch.delenv(memory.ARROW_POOL_ENV, raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    return fake


def test_arrows_pool_is_the_systems_inside_and_set_back_after(libc):
    before = pa.default_memory_pool().backend_name
    assert before != "system"  # (pyarrow's default here: mimalloc or jemalloc)
    with batch_memory():
        assert pa.default_memory_pool().backend_name == "system"
        kept = pa.array([str(i) for i in range(1000)])  # a buffer of the night's pool, outliving it
        with batch_memory():
            pass
        assert pa.default_memory_pool().backend_name == "system"
    assert pa.default_memory_pool().backend_name == before
    assert kept[999].as_py() == "999"
    held = pa.system_memory_pool().bytes_allocated()
    del kept  # freed to the pool it came from, after the night
    assert pa.system_memory_pool().bytes_allocated() < held


def test_an_operators_arrow_pool_is_left_alone(libc, monkeypatch):
    monkeypatch.setenv(memory.ARROW_POOL_ENV, "mimalloc")
    before = pa.default_memory_pool().backend_name
    with batch_memory():
        assert pa.default_memory_pool().backend_name == before


@needs_switch
def test_huge_page_advice_off_inside_and_restored_after(advising, libc):
    with batch_memory():
        assert advice() is False
        with batch_memory():  # a nested night leaves the outer's settings alone at its end
            pass
        assert advice() is False
    assert advice() is True


@needs_switch
def test_an_operators_numpy_setting_is_left_alone(advising, libc, monkeypatch):
    monkeypatch.setenv(memory.HUGEPAGE_ENV, "1")
    with batch_memory():
        assert advice() is True
    assert advice() is True


def test_malloc_parameters_set_then_set_where_glibcs_sliding_threshold_settles(libc):
    with batch_memory():
        assert libc.calls == [(n, night) for n, *_, night, _ in MALLOC_PARAMETERS]
        with batch_memory():
            pass
        assert len(libc.calls) == len(MALLOC_PARAMETERS)
    assert libc.calls[len(MALLOC_PARAMETERS):] == [(n, default) for n, *_, default in MALLOC_PARAMETERS]
    after = {n: v for n, *_, v in MALLOC_PARAMETERS}
    # glibc's own rule once a freed mapped chunk raises the threshold: trim at twice it.
    assert after[-1] == 2 * after[-3] and after[-2] == 128 * 1024
    assert libc.trims == 1  # the memory kept for reuse given back at the end


def test_a_malloc_parameter_in_the_environment_is_left_alone(libc, monkeypatch):
    monkeypatch.setenv("MALLOC_TOP_PAD_", "0")
    with batch_memory():
        pass
    assert -2 not in {n for n, _ in libc.calls}
    assert {n for n, _ in libc.calls} == {-1, -3}


def test_a_malloc_tunable_in_glibcs_tunables_is_left_alone(libc, monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.top_pad=0:glibc.malloc.mmap_threshold=65536:glibc.rtld.x=1")
    with batch_memory():
        pass
    assert {n for n, _ in libc.calls} == {-1}  # the trim threshold only
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    libc.calls.clear()
    with batch_memory():
        pass
    assert {n for n, _ in libc.calls} == {-2, -3}


def test_giving_back_trims_glibcs_heap_once(libc):
    memory.give_back_memory()  # Arrow's pool its own (mimalloc or jemalloc): glibc's trimmed besides
    assert libc.trims == 1
    with batch_memory():
        memory.give_back_memory()  # the system pool's release is glibc's malloc_trim already
        assert libc.trims == 1
    assert libc.trims == 2  # (the night's end, its pool set back)


def test_settings_restored_when_the_night_fails(libc):
    with pytest.raises(KeyError), batch_memory():
        raise KeyError("x")
    assert libc.calls[-len(MALLOC_PARAMETERS):] == [(n, default) for n, *_, default in MALLOC_PARAMETERS]
    assert memory._DEPTH == 0


@needs_switch
def test_a_setup_interrupted_halfway_is_undone(advising, libc, monkeypatch):
    # numpy's advice already off, Arrow's pool not yet switched when glibc's first call is interrupted.
    pool = pa.default_memory_pool().backend_name
    interrupted: list[int] = []
    set_one = libc.mallopt

    def mallopt(number, value) -> int:
        if not interrupted:
            interrupted.append(number.value)
            raise KeyboardInterrupt
        return set_one(number, value)

    monkeypatch.setattr(libc, "mallopt", mallopt)
    with pytest.raises(KeyboardInterrupt), batch_memory():
        pass
    assert memory._DEPTH == 0
    assert advice() is True
    assert pa.default_memory_pool().backend_name == pool
    assert libc.calls == [(n, default) for n, *_, default in MALLOC_PARAMETERS]  # what it may have set, undone
    with batch_memory():  # the next night sets up and restores as if nothing had happened
        assert advice() is False
        assert pa.default_memory_pool().backend_name == "system"
    assert advice() is True
    assert pa.default_memory_pool().backend_name == pool


@needs_switch
def test_every_setting_restored_when_giving_memory_back_fails(advising, libc, monkeypatch):
    pool = pa.default_memory_pool().backend_name

    def fails(pad: int) -> int:
        raise OSError("trim failed")

    monkeypatch.setattr(libc, "malloc_trim", fails)
    with pytest.raises(OSError), batch_memory():
        pass
    assert advice() is True
    assert pa.default_memory_pool().backend_name == pool
    assert libc.calls[len(MALLOC_PARAMETERS):] == [(n, default) for n, *_, default in MALLOC_PARAMETERS]
    assert memory._DEPTH == 0


@needs_switch
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")
def test_a_forked_worker_inherits_the_nights_settings(advising, libc):
    with batch_memory():
        assert Forked(advice).result() is False
        assert Forked(lambda: pa.default_memory_pool().backend_name).result() == "system"
    assert Forked(advice).result() is True


@needs_switch
def test_run_night_runs_inside_the_settings_and_restores_them(advising, libc, monkeypatch):
    seen: list[bool] = []

    def probe(*args, **kwargs):
        seen.append(advice())
        raise LookupError("stop here")

    monkeypatch.setattr(nightly, "districts_of", probe)
    with pytest.raises(LookupError):
        nightly.run_night("/nowhere", "/no-model", "2025-06-30", store="sqlite://", out_dir=None)
    assert seen == [False]
    assert advice() is True
    assert len(libc.calls) == 2 * len(MALLOC_PARAMETERS)


@needs_switch
def test_a_districts_linkage_runs_with_numpys_advice_off_and_restores_it(advising, libc, monkeypatch, small_district):
    from escalation_risk.linking import linker

    seen: list[bool] = []
    real = linker._link

    def probe(*args, **kwargs):
        seen.append(advice())
        return real(*args, **kwargs)

    monkeypatch.setattr(linker, "_link", probe)
    ds = small_district.cut(small_district.incidents["reported_at"].max())  # a fresh Dataset: nothing cached
    pool = pa.default_memory_pool().backend_name
    key = linker.link_persons(ds)
    assert seen == [False] and len(key) == len(ds.persons)
    assert advice() is True
    # Only the part that leaves nothing behind: glibc's parameters and Arrow's pool untouched.
    assert libc.calls == [] and pa.default_memory_pool().backend_name == pool


def test_on_this_machine_glibc_accepts_the_nights_values():
    if memory._libc() is None:
        pytest.skip("not glibc")
    # In a process of its own: glibc's mmap threshold set once no longer slides in this one.
    script = (
        "import ctypes\n"
        "from escalation_risk import memory\n"
        "libc = memory._libc()\n"
        "for number, env, _, value, default in memory.MALLOC_PARAMETERS:\n"
        "    for v in (value, default):\n"
        "        print(env, v, libc.mallopt(ctypes.c_int(number), ctypes.c_int(v)))\n"
    )
    src = str(Path(memory.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    answers = [line.split() for line in out.splitlines()]
    assert len(answers) == 2 * len(MALLOC_PARAMETERS)
    assert all(accepted == "1" for _, _, accepted in answers), answers


def test_the_loads_freed_memory_is_given_back_before_the_fingerprints_fork(small_district, monkeypatch):
    # Given back after the fork, the pages the load freed would stay in the hashing child alone.
    from escalation_risk import forks
    events: list[str] = []
    monkeypatch.setattr(nightly, "give_back_memory", lambda: events.append("give back"))
    monkeypatch.setattr(nightly, "worth_forking", lambda rows: True)
    monkeypatch.setattr(nightly, "workers", lambda: 2)

    class Recorded(forks.Forked):
        def __init__(self, fn, *, fork=True):
            events.append(f"fork={fork}")
            super().__init__(fn, fork=False)  # (run here: only the order is asked)

    monkeypatch.setattr(nightly, "Forked", Recorded)
    load = nightly._load_district("", small_district, None, with_keys=False, keep=True)
    assert events == ["give back", "fork=True"]
    assert load.fingerprint.result() == small_district.fingerprint()
    events.clear()
    monkeypatch.setattr(nightly, "worth_forking", lambda rows: False)
    nightly._load_district("", small_district, None, with_keys=False, keep=True)
    assert events == ["fork=False"]  # nothing forked: nothing to give back first
