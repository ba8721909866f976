"""The recording lock: one night at a time per district of a store."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from .connection import StoreBase
from .errors import StoreBusyError, _url_for_messages

# One advisory lock key for "recording a night" in a PostgreSQL store.
_PG_LOCK_KEY = 0x65725F6E69676874  # "er_night"


class Locking(StoreBase):
    """The store's recording lock (a mixin of :class:`AlertStore`)."""

    @contextmanager
    def recording_lock(self, timeout: float = 0.0, district: str = "") -> Iterator[None]:
        """Hold the store's recording lock of a district: one night at a time per district.

        A SQLite file store locks ``<file>.lock`` (``<file>.<district>.lock`` for a
        district of a province), PostgreSQL takes a session advisory lock keyed by the
        district, an in-memory store a process lock. Nights of different districts
        do not wait for each other here (the database orders their writes).
        Re-entrant within one store object, so the nightly job can hold it from
        reading the previous scores to recording. Raises :class:`StoreBusyError` after
        ``timeout`` seconds.
        """
        if self._lock_depth.get(district):
            self._lock_depth[district] += 1
            try:
                yield
            finally:
                self._lock_depth[district] -= 1
            return
        release = self._acquire(timeout, district)
        self._lock_depth[district] = 1
        try:
            yield
        finally:
            self._lock_depth[district] = 0
            release()

    def _acquire(self, timeout: float, district: str = "") -> Callable[[], None]:
        deadline = time.monotonic() + timeout
        busy = (f"another night is being recorded in alert store {_url_for_messages(self.url)}; "
                "try again when it has finished")
        backend = self.url.get_backend_name()
        db = self.url.database
        if backend == "sqlite" and db and db != ":memory:" and not db.startswith("file:"):
            # filelock: flock(2) on POSIX, the same on every platform we might meet; it
            # polls until the timeout, and a killed holder's lock goes with its process.
            suffix = f".{zlib.crc32(district.encode()):08x}.lock" if district else ".lock"
            lock_file = FileLock(Path(db).expanduser().with_name(Path(db).name + suffix),
                                 timeout=max(timeout, 0.0), thread_local=False, poll_interval=0.1)
            try:
                lock_file.acquire()
            except FileLockTimeout:
                raise StoreBusyError(busy) from None
            return lock_file.release
        if backend == "postgresql":
            conn = self.engine.connect()
            key = _PG_LOCK_KEY ^ zlib.crc32(district.encode()) if district else _PG_LOCK_KEY
            while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                if time.monotonic() >= deadline:
                    conn.close()
                    raise StoreBusyError(busy)
                time.sleep(0.2)

            def unlock_pg() -> None:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.close()
            return unlock_pg
        lock = self._thread_locks.setdefault(district, threading.Lock())
        got = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(blocking=False)
        if not got:
            raise StoreBusyError(busy)
        return lock.release

