"""Work split over the machine's cores by forking: a function run in a child process while
this one goes on, its result read back when needed.

A forked child shares this process's memory copy-on-write (a built history index is not
copied, only the pages the child writes to), so a night can hand half of its slices to
a child without serialising what they read. Results come back pickled through an
unnamed temporary file (a pipe would block the child until this process, busy with its
own half, reads it; the file is unlinked at once, so nothing is left on disk whatever
kills either process).

The work split never changes a result: every caller splits work whose parts are
computed independently and joined in a fixed order, and a child that fails is redone
here (logged by exception type only: its message could name a value). ``workers()``
says how many cores a night's work is spread over (``1``: never fork), not how many
processes exist at once: the load runs two children beside itself (the linkage keys,
the pseudonyms), and a child of one step may still be running beside the next step's
(the load's input fingerprint beside the history index's texts, then its pairs), so for a
while three processes share two cores. ``worth_forking(rows)`` says whether a step's rows are worth
a child. ``workers()`` is ``ESCALATION_RISK_WORKERS`` when set, else the cores this
process may use, at most two (on Linux; elsewhere one).
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from threadpoolctl import threadpool_limits

from .collector import LOCK as _FORK_LOCK  # one freeze decision at a time, forks and services alike

log = logging.getLogger(__name__)

WORKERS_ENV = "ESCALATION_RISK_WORKERS"
T = TypeVar("T")


#: Rows from which a step's work is handed to a forked child (fewer: the fork costs more than it saves).
FORK_MIN_ROWS = 20_000


def worth_forking(rows: int) -> bool:
    """Whether work over ``rows`` rows goes to a forked child: two processes allowed
    (:func:`workers`) and at least :data:`FORK_MIN_ROWS` rows."""
    return workers() > 1 and rows >= FORK_MIN_ROWS


def workers() -> int:
    """How many cores a night's work may be split over (1: none forked; see the module's note)."""
    given = os.environ.get(WORKERS_ENV, "").strip()
    if given:
        try:
            n = int(given)
        except ValueError:
            raise ValueError(f"{WORKERS_ENV} must be a whole number of processes, got {given!r}") from None
        if n < 1:
            raise ValueError(f"{WORKERS_ENV} must be at least 1, got {n}")
        return n
    if not sys.platform.startswith("linux"):
        return 1  # forking a process with threads is only known safe on Linux
    return max(1, min(2, len(os.sched_getaffinity(0))))


class Forked(Generic[T]):
    """``fn()`` running in a forked child (or here, when forking is off or impossible).

    :meth:`result` waits for the child and returns its value; a child that failed or
    died is redone here. Native thread pools (OpenMP, BLAS) are held to one thread in
    the child: a pool the parent started does not survive a fork."""

    def __init__(self, fn: Callable[[], T], *, fork: bool = True) -> None:
        self._fn = fn
        self._pid = 0
        self._fd = -1
        self._value: list[T] = []  # the result once read (a second call returns it again)
        self.stopped = False  # the child ran past result()'s timeout and was killed
        if not fork or not hasattr(os, "fork"):
            return
        fd, path = tempfile.mkstemp(prefix="er-fork-", suffix=".pkl")
        os.unlink(path)  # both processes keep the open file; no name is left behind
        # Objects alive now moved out of the collector's reach for the fork: a collection
        # in the child would otherwise write to every tracked object's header and so copy
        # the pages holding them. A process that froze its objects itself (a server, after
        # loading its history) keeps them frozen: unfreezing would hand them all back to the
        # collector, whose next full collection walks the history during some request. Its
        # objects are then frozen in the child only: frozen here, everything alive at each
        # fork would stay frozen for good. One fork at a time: another thread's freeze read
        # as this process's own would never be undone.
        error: OSError | None = None
        with _FORK_LOCK:
            frozen_before = gc.get_freeze_count() > 0
            if not frozen_before:
                gc.freeze()
            try:
                pid = os.fork()
            except OSError as e:  # no memory or process left: done here
                pid, error = -1, e
            if pid and not frozen_before:
                gc.unfreeze()
        if error is not None:
            log.warning("could not fork a worker (%s); working in one process", type(error).__name__)
            os.close(fd)
            return
        if pid == 0:  # the child: compute, write, leave without running the parent's clean-ups
            if frozen_before:
                gc.freeze()
            code = 1
            try:
                with threadpool_limits(limits=1):
                    value = fn()
                with os.fdopen(fd, "wb") as f:
                    pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
                code = 0
            except BaseException as e:  # noqa: BLE001 - reported to the parent by the exit code
                try:
                    os.write(2, f"escalation_risk worker failed: {type(e).__name__}\n".encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        self._fd = fd
        self._pid = pid

    def cancel(self) -> int | None:
        """Stop the child (this process failed before it needed the result); its wait status
        (None: no child to stop)."""
        status = self._kill()
        self._close()
        return status

    def _kill(self) -> int | None:
        """Kill and reap the child; its wait status (a child that ended first: its own)."""
        status = None
        if self._pid:
            try:
                os.kill(self._pid, 9)  # (a child that already ended is a zombie: no effect)
                status = os.waitpid(self._pid, 0)[1]
            except OSError:
                pass
            self._pid = 0
        return status

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def result(self, timeout: float | None = None) -> T:
        """The function's value (waits for the child; computed or read once). A child still
        running after ``timeout`` seconds is killed, and its part redone here."""
        if not self._value:
            self._value.append(self._result(timeout))
        return self._value[0]

    def _wait(self, timeout: float | None) -> int | None:
        """The child's wait status, or None once ``timeout`` passed (the child then killed)."""
        if timeout is None:
            return os.waitpid(self._pid, 0)[1]
        deadline, pause = time.monotonic() + timeout, 0.001
        while True:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                return status
            if time.monotonic() >= deadline:
                # A child that ended after the last poll ended on its own: its status, not
                # stopped (a kill by someone else reads as ours: stopped, redone here).
                ended = self._kill()
                if ended is not None and not (os.WIFSIGNALED(ended) and os.WTERMSIG(ended) == 9):
                    return ended
                self.stopped = True
                return None
            time.sleep(pause)  # (waitpid has no timeout of its own)
            pause = min(pause * 2, 0.05)

    def _result(self, timeout: float | None = None) -> T:
        if not self._pid:
            return self._fn()
        try:
            status = self._wait(timeout)
            if status is None:  # stopped by _kill()
                log.warning("a forked worker ran past %.0f s and was stopped; its part is redone here", timeout)
                return self._fn()
            self._pid = 0
            if os.waitstatus_to_exitcode(status) == 0:
                # The child wrote through the same open file, so its offset is at the end.
                os.lseek(self._fd, 0, os.SEEK_SET)
                with os.fdopen(self._fd, "rb") as f:
                    self._fd = -1
                    value: T = pickle.load(f)
                return value
            log.warning("a forked worker failed (exit status %d); its part is redone here",
                        os.waitstatus_to_exitcode(status))
        finally:
            self._close()
        return self._fn()


def in_parallel(first: Callable[[], Any], second: Callable[[], T], *, fork: bool | None = None) -> tuple[Any, T]:
    """``(first(), second())``, ``second`` in a forked child while ``first`` runs here
    (``fork=None``: when :func:`workers` allows two processes)."""
    if fork is None:
        fork = workers() > 1
    other = Forked(second, fork=fork)
    if not fork:
        return first(), other.result()
    try:
        with threadpool_limits(limits=1):  # the other core is the child's
            mine = first()
    except BaseException:
        other.cancel()
        raise
    return mine, other.result()
