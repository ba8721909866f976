"""A large object handed from a forked child to its parent at the cost of mapping it.

A forked child (:mod:`escalation_risk.forks`) returns its result pickled; reading back a
district's history index that way (``pickle.load`` of gigabytes) is one long C call holding
the parent's GIL, seconds during which its other threads (a service answering
``score_dispute``) wait. Here the child writes the object to an open file as

- its numeric arrays (numpy, and Arrow buffers: pandas' string columns and indexes), raw,
  64-byte aligned: pickle protocol 5's out-of-band buffers, which the parent maps
  copy-on-write (``mmap`` with ``MAP_PRIVATE``) and hands back to the unpickler, so adopting
  them copies nothing and holds the GIL for no pass over them;
- its object arrays (text codes, ids held as Python strings) in pickles of at most
  :data:`CHUNK` values each, loaded one at a time into the array (each a short hold of the
  GIL, between which other threads run);
- the rest (the structure tying them together): one small pickle.

The file is expected to be unlinked already (``tempfile`` then ``os.unlink``): its pages live
as long as the mapping, and nothing is left on disk whatever ends either process.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import struct
import threading
import time
from typing import Any

import numpy as np

CHUNK = 8_192  # values of an object array per pickle: ~1 ms of the reader's GIL each
ALIGN = 64
_TAIL = struct.Struct("<QQ")  # offset and length of the header pickle, at the file's end
_loading = threading.local()  # the object arrays of the load in progress (this thread's)


def _object_array(k: int) -> np.ndarray:
    """The ``k``-th object array of the load in progress (the unpickler's stand-in)."""
    return _loading.arrays[k]


class _Pickler(pickle.Pickler):
    def __init__(self, file, objects: list[np.ndarray], buffers: list[pickle.PickleBuffer]):
        super().__init__(file, protocol=5, buffer_callback=buffers.append)
        self._objects = objects

    def reducer_override(self, obj):
        if type(obj) is np.ndarray and obj.dtype.hasobject and obj.size > CHUNK:
            self._objects.append(obj)
            return _object_array, (len(self._objects) - 1,)
        return NotImplemented


def _write(fd: int, data, at: int) -> int:
    """Write ``data`` at offset ``at`` (aligned up); return where it went."""
    at = -(-at // ALIGN) * ALIGN
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], at + done)
    return at


def dump(value: Any, fd: int) -> None:
    """Write ``value`` to the open file ``fd`` (from its start) for :func:`load`."""
    os.ftruncate(fd, 0)  # :func:`load` finds the header from the file's end: nothing earlier may trail
    objects: list[np.ndarray] = []
    buffers: list[pickle.PickleBuffer] = []
    main = io.BytesIO()
    _Pickler(main, objects, buffers).dump(value)
    end = 0
    spans = []
    for b in buffers:
        raw = b.raw()
        spans.append((_write(fd, raw, end), raw.nbytes))
        end = spans[-1][0] + raw.nbytes
    arrays = []
    for arr in objects:
        flat = np.ascontiguousarray(arr).reshape(-1)
        chunks = []
        for start in range(0, len(flat), CHUNK):
            blob = pickle.dumps(flat[start:start + CHUNK], protocol=5)
            chunks.append((_write(fd, blob, end), len(blob)))
            end = chunks[-1][0] + len(blob)
        arrays.append((arr.shape, chunks))
    body = main.getvalue()
    at_main = _write(fd, body, end)
    header = pickle.dumps({"buffers": spans, "arrays": arrays, "main": (at_main, len(body))}, protocol=5)
    at_header = _write(fd, header, at_main + len(body))
    _write(fd, _TAIL.pack(at_header, len(header)), at_header + len(header))


def _read(fd: int, at: int, n: int) -> bytes:
    first = os.pread(fd, n, at)
    if len(first) == n:  # the usual case: one read, no copy
        return first
    out = bytearray(first)
    while len(out) < n:
        got = os.pread(fd, n - len(out), at + len(out))
        if not got:
            raise EOFError("a handover file ends before its parts")
        out += got
    return bytes(out)


def load(fd: int, steps: list[tuple[str, float]] | None = None) -> Any:
    """The value :func:`dump` wrote to ``fd``: its numeric arrays mapped from the file
    (copy-on-write: writable, the mapped pages unchanged), its object arrays read a chunk at
    a time. The file is read once: then cut to the mapped part, so the object chunks' pages
    are not kept alive by the mapping as long as a mapped array lives.
    ``steps`` (if given) receives each step's name and wall seconds: each is one call holding
    the GIL, the longest being what a reader on another thread may wait."""

    def timed(name: str, fn, *a, **k):
        if steps is None:
            return fn(*a, **k)
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            steps.append((name, time.perf_counter() - t))

    size = os.fstat(fd).st_size
    at_header, n_header = _TAIL.unpack(_read(fd, size - _TAIL.size, _TAIL.size))
    header = pickle.loads(_read(fd, at_header, n_header))
    arrays = []
    for shape, chunks in header["arrays"]:
        # Each chunk unpickled and put in place: short holds of the GIL (one np.concatenate of
        # two million objects was one long one).
        flat = np.empty(int(np.prod(shape)), dtype=object)
        done = 0
        for at, n in chunks:
            part = timed("object chunk", pickle.loads, _read(fd, at, n))
            flat[done:done + len(part)] = part
            done += len(part)
        arrays.append(flat.reshape(shape))
    # The numeric buffers come first in the file: only they are mapped.
    mapped = max((at + n for at, n in header["buffers"]), default=0)
    # Buffers all empty (arrays of no rows) map nothing: each is then an empty buffer of its own.
    buffers: list[memoryview] = [memoryview(bytearray()) for _ in header["buffers"]]
    if mapped:
        mm = mmap.mmap(fd, mapped, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        view = memoryview(mm)
        buffers = [view[at:at + n] for at, n in header["buffers"]]
    at_main, n_main = header["main"]
    main = _read(fd, at_main, n_main)
    os.ftruncate(fd, mapped)  # the chunks and the structure are read: their pages go now
    _loading.arrays = arrays
    try:
        return timed("structure", pickle.loads, main, buffers=buffers)
    finally:
        del _loading.arrays
