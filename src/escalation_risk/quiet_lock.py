"""A lock whose holder never runs its thread's profile hook.

A service's background job (:class:`escalation_risk.scoring.Scorer`) yields to the calls in
progress through a profile hook that waits at each of its function calls. Waiting while it
holds a lock an add or a call needs would make them wait for the job's yield in turn (up to
its whole credit): a :class:`QuietLock` takes the hook off its thread while held, and puts it
back once released. Without a hook (or under a profiler, cProfile's) it is a plain lock.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _off() -> Any:
    """Take this thread's profile hook off and return it (None where there is none, or where
    it is a profiler, cProfile's, which is no function to set back: left running)."""
    hook = sys.getprofile()
    if not callable(hook):
        return None
    sys.setprofile(None)
    return hook


@contextmanager
def quiet() -> Iterator[None]:
    """This thread without its profile hook until the block ends (as :class:`QuietLock` holds it)."""
    hook = _off()
    try:
        yield
    finally:
        if hook is not None:
            sys.setprofile(hook)


class QuietLock:
    """A non-reentrant lock (``with``, :meth:`locked`) during whose hold this thread has no
    profile hook."""

    __slots__ = ("_lock", "_hook")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hook: Any = None  # the holder's hook, set back on release

    def __enter__(self) -> QuietLock:
        hook = _off()  # before waiting for the lock: from here on the hook never runs
        self._lock.acquire()
        self._hook = hook
        return self

    def __exit__(self, *exc) -> None:
        hook, self._hook = self._hook, None
        self._lock.release()
        if hook is not None:
            sys.setprofile(hook)

    def locked(self) -> bool:
        """Whether some thread holds it."""
        return self._lock.locked()
