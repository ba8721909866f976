"""How a night's process takes and gives back memory: the page faults of a batch job.

A night at a million people allocates and frees several GB of numpy and pandas arrays,
step after step, and pays for it in page faults: system time, most of it on a quiet
machine (what was measured: the README's note on memory). The defaults in play:

- numpy asks for transparent huge pages on every large array (``madvise``). Faulting them
  was dear here, most on a quiet machine; read (not measured directly) as the cost of
  huge pages faulted onto memory the VM had handed back to its host (free page
  reporting). Not THP compaction: ``compact_stall`` stayed 0;
- glibc hands each allocation over 128 KiB (a sliding threshold) to its own ``mmap``
  and ``munmap``s it when freed, so the next array of that size faults its pages in
  again; and it trims the heap's top as soon as 128 KiB is free there;
- Arrow's default pool (mimalloc) advises huge pages on its 1 GiB arenas, and keeps the
  pages it frees for Arrow alone.

:func:`batch_memory` is the batch's choice (:func:`~.nightly.run_night` runs inside it,
so the CLI's ``nightly`` and the benchmark's night do too, forked workers inherit it;
:func:`~escalation_risk.linking.link_persons` takes its first part only, ``allocators=False``):
numpy's huge-page advice off; glibc's ``mmap`` threshold at 4 MiB (see below), its trim
threshold out of reach (2 GiB) and 1 GiB of top pad, so freed heap memory is reused by the
next array instead of being unmapped and faulted in again; and Arrow's default pool the
system's (glibc: the same heap as numpy's, reused by both). The trade-off: the
process keeps freed memory resident for reuse. :func:`give_back_memory`, called
between the night's steps, still trims the heap (``malloc_trim`` ignores the trim
threshold) and Arrow's pool, so the peak is a step's own, not the sum of the steps'.

Scoped, not global: on leaving, numpy's advice and Arrow's default pool are set back to
what they were (a buffer allocated during the night is freed to its own pool whenever it
is freed) and glibc's three parameters to where glibc's own sliding threshold settles in a
process that frees large arrays (mmap threshold 32 MiB, its 64-bit ceiling; trim threshold
twice that, as glibc sets it; top pad 128 KiB). A ``mallopt`` call stops the sliding for
good, which no value undoes (see :func:`batch_memory`'s ``allocators``): a notebook that runs a
night goes on with fixed thresholds.
An operator's own choice wins: a parameter set in the environment
(``NUMPY_MADVISE_HUGEPAGE``, ``ARROW_DEFAULT_MEMORY_POOL``, ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, or its tunable in ``GLIBC_TUNABLES``) is left alone.
Elsewhere than glibc (or numpy without the switch) the part that does not apply is skipped.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

log = logging.getLogger(__name__)

#: glibc's ``mallopt`` parameters a batch sets: (number, environment variable, tunable in
#: ``GLIBC_TUNABLES``, the batch's value, the value after: see the module's note). The mmap threshold is a trade of
#: time for memory, measured on the 1M night (one quiet run each, tree PSS peak): 32 MiB
#: 51-52 s and 4.2 GB, 16 MiB 52.9 s and 4.2 GB, 8 MiB 52.6 s and 4.1 GB, 4 MiB 54-55 s and
#: 3.6-3.8 GB (heap blocks of two scoring processes kept for reuse are the difference), against
#: 63 s and 3.3 GB with every parameter at glibc's 128 KiB: 4 MiB keeps the night under 4 GB.
#: ``mallopt`` takes a C int, so the trim threshold's "out of reach" is its largest, ~2 GiB.
MALLOC_PARAMETERS: tuple[tuple[int, str, str, int, int], ...] = (
    (-3, "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold", 4 * 2**20, 32 * 2**20),  # M_MMAP_THRESHOLD
    (-1, "MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold", 2**31 - 1, 64 * 2**20),  # M_TRIM_THRESHOLD
    (-2, "MALLOC_TOP_PAD_", "glibc.malloc.top_pad", 2**30, 128 * 2**10),                     # M_TOP_PAD
)
HUGEPAGE_ENV = "NUMPY_MADVISE_HUGEPAGE"
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"

_LOCK = threading.Lock()
_DEPTH = 0  # nights running inside batch_memory() in this process (threads may run two)
_NUMPY_BEFORE: list[bool] = []  # numpy's advice before the outermost night
_POOL_BEFORE: list[pa.MemoryPool] = []  # Arrow's default pool before it
_MALLOC_SET: list[bool] = []  # glibc's parameters (maybe some of them) set to the night's


@functools.cache
def _libc() -> Any | None:
    """glibc, or None elsewhere (musl, macOS: their allocators have no such parameters)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


def _hugepage_switch() -> Callable[[bool], bool] | None:
    """numpy's switch of its huge-page advice (returns the previous setting), if it has one."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        try:
            from numpy.core import multiarray  # type: ignore[no-redef]
        except ImportError:
            return None
    return getattr(multiarray, "_set_madvise_hugepage", None)


def _set_malloc(night: bool) -> None:
    """glibc's parameters to the batch's values (``night``) or to the values after it."""
    libc = _libc()
    if libc is None:
        return
    # glibc's tunables: ``name=value`` pairs separated by colons.
    tunables = {item.partition("=")[0] for item in os.environ.get("GLIBC_TUNABLES", "").split(":")}
    for number, env, tunable, value, after in MALLOC_PARAMETERS:
        if env in os.environ or tunable in tunables:
            continue  # the operator's choice
        if not libc.mallopt(ctypes.c_int(number), ctypes.c_int(value if night else after)):
            log.debug("mallopt(%d) refused", number)


@contextlib.contextmanager
def batch_memory(*, allocators: bool = True) -> Iterator[None]:
    """The batch's memory settings while inside (see the module's note): a night, and a
    district's linkage (:func:`~escalation_risk.linking.link_persons`). Nested or
    concurrent users share the outermost's settings, and its end restores them.

    ``allocators=False`` turns numpy's huge-page advice off and leaves glibc's parameters
    and Arrow's pool alone: numpy's advice is set back exactly, where a ``mallopt`` call
    stops glibc's sliding thresholds for good. The linkage, which a notebook calls, takes
    that part only; a night (its own process from the command line) takes all. (The README's
    note on memory has what was seen of a process's later steps either way.)"""
    global _DEPTH
    switch = _hugepage_switch()
    entered = False
    try:
        with _LOCK:
            _DEPTH += 1
            entered = True
            if _DEPTH == 1:
                # Each setting recorded as it is made (glibc's and Arrow's before the call):
                # a setup interrupted halfway (a KeyboardInterrupt) is undone below as far
                # as it went.
                if switch is not None and HUGEPAGE_ENV not in os.environ:
                    _NUMPY_BEFORE.append(switch(False))
                if allocators:
                    _MALLOC_SET.append(True)
                    _set_malloc(True)
                if allocators and ARROW_POOL_ENV not in os.environ and _libc() is not None:
                    _POOL_BEFORE.append(pa.default_memory_pool())
                    pa.set_memory_pool(pa.system_memory_pool())
        yield
    finally:
        if entered:
            with _LOCK:
                _DEPTH -= 1
                if _DEPTH == 0:
                    _restore(switch)


def _restore(switch: Callable[[bool], bool] | None) -> None:
    """Every setting the night made set back, each whatever the others do (a step that
    raises stops none of the rest); then the memory kept for reuse given back."""
    with contextlib.ExitStack() as steps:  # (run last to first)
        # Last: the restored pool's freed pages and glibc's heap, which also holds the
        # night's system pool's (whose own release is a malloc_trim).
        steps.callback(give_back_memory)
        if _MALLOC_SET:
            _MALLOC_SET.clear()
            steps.callback(_set_malloc, False)
        if _POOL_BEFORE:
            steps.callback(pa.set_memory_pool, _POOL_BEFORE.pop())
        if switch is not None and _NUMPY_BEFORE:
            steps.callback(switch, _NUMPY_BEFORE.pop())


def give_back_memory() -> None:
    """Return the memory freed by a step to the system: Arrow's default allocator (mimalloc,
    outside a night) keeps freed pages for Arrow alone (220 MB after loading a 100,000-person
    district, ten times that at a million), where the next step's numpy arrays cannot reuse
    them; glibc's heap likewise keeps freed blocks until trimmed (whatever its trim threshold)."""
    pool = pa.default_memory_pool()
    pool.release_unused()
    libc = _libc()
    if libc is not None and pool.backend_name != "system":  # (the system pool's release is malloc_trim)
        libc.malloc_trim(0)
