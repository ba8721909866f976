"""Arrays appended to through spare capacity: an add copies its own rows, not the district's.

A service's state is replaced whole on every add (``Scorer``), and a reader may still hold
the state before it, so an array is never written where an older view can see it. :func:`grow`
appends past the end of the array's buffer when the array is that buffer's *last* view
(the only one whose end is the buffer's used length), and otherwise copies into a new buffer
twice the size: appends cost O(1) amortised, and every older view keeps its own values.
Used by the index's per-entity arrays (:mod:`escalation_risk.features`) and the linkage
state's group keys (:mod:`escalation_risk.linking.incremental`).
"""

from __future__ import annotations

import os
import weakref

import numpy as np

from .quiet_lock import QuietLock

_USED: dict[int, int] = {}  # id(buffer) -> length in use, so one buffer is only ever extended by its last view
_LOCK = QuietLock()  # an add and a background catch-up may grow views of one buffer at once


def _after_fork() -> None:
    global _LOCK
    _LOCK = QuietLock()  # a thread of the parent may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def grow(arr: np.ndarray, extra) -> np.ndarray:
    """``arr`` followed by ``extra`` along axis 0, written into spare capacity of ``arr``'s
    buffer when it is the buffer's last view (else into a new buffer twice the size).
    ``arr`` itself is unchanged."""
    extra = np.asarray(extra, dtype=arr.dtype)
    n, k = len(arr), len(extra)
    if not k:
        return arr
    buf = arr.base
    with _LOCK:
        if (isinstance(buf, np.ndarray) and buf.dtype == arr.dtype and buf.ndim == arr.ndim
                and buf.shape[1:] == arr.shape[1:] and len(buf) >= n + k and buf.flags.c_contiguous
                and arr.__array_interface__["data"][0] == buf.__array_interface__["data"][0]
                and _USED.get(id(buf)) == n):
            _USED[id(buf)] = n + k  # claimed before writing: no other view of length n may extend it now
            buf[n:n + k] = extra
            return buf[:n + k]
    return _copied(arr, extra, max(2 * (n + k), 1024))


def reserve(arr: np.ndarray, spare: int) -> np.ndarray:
    """``arr``'s values in a new buffer with room for ``spare`` more rows, so the next
    :func:`grow` of the view returned writes in place instead of copying the array.

    For arrays an add will grow, made ready off the add's path (when a ``Scorer`` is
    built): the first add after a build otherwise copied every such array of the district."""
    return _copied(arr, arr[:0], len(arr) + max(int(spare), 0))


def _copied(arr: np.ndarray, extra: np.ndarray, size: int) -> np.ndarray:
    """``arr`` then ``extra`` in a new buffer of ``size`` rows, registered as its last view."""
    n, k = len(arr), len(extra)
    buf = np.empty((size,) + arr.shape[1:], dtype=arr.dtype)
    buf[:n] = arr
    buf[n:n + k] = extra
    weakref.finalize(buf, _USED.pop, id(buf), None)
    with _LOCK:
        _USED[id(buf)] = n + k
    return buf[:n + k]
