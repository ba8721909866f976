"""The cyclic garbage collector and what a long-running process keeps for its life.

CPython's full collection walks every container object it tracks: the modules imported
(pandas, scikit-learn, LightGBM, SQLAlchemy, networkx...: 228,000 objects, 81-99 ms on the
machine measured) and what the process built (numpy's arrays are not among them: the
collector does not track them). Measured in ``benchmarks/adds.py`` at 1,000,000 people:
10 to 16 full collections in 1,000 adds, 131-275 ms of CPU each, each landing in whatever
call allocated at that moment (an add, or a ``score_dispute`` a service is waiting for).
Nothing they find is garbage.

A service therefore takes what it loaded out of the collector's sight once it is built
(:func:`freeze_loaded`, ``gc.freeze``; ``escalation-risk serve`` does, and so do the
benchmarks that stand for it): frozen objects are still freed when their last reference
goes, only a reference cycle among them is never collected. What the service builds for good
later (the desk's caches; what a ``Scorer`` publishes after a fold or a rebuild) joins them
(:func:`keep_frozen`), only in a process that froze its own objects: a notebook's collector
is left as it was.

:data:`LOCK` is held by whoever freezes or unfreezes (a fork freezes the parent's objects
for a moment around ``os.fork``: :class:`~escalation_risk.forks.Forked`), so one thread's
momentary freeze is never read as the process's own.
"""

from __future__ import annotations

import gc
import threading

#: Held from a momentary freeze to its unfreeze, and while a lasting freeze is decided.
LOCK = threading.Lock()

#: Young-generation collections between full ones once a service froze what it loaded
#: (CPython's default: 10). A full collection also waits until the objects it would walk
#: grew by a quarter since the last, counted without the frozen ones: with few left in
#: sight, that rule no longer spaces them, and at the default they came three times as
#: often (30 in 1,000 adds at 1M, against 10-16 before the freeze).
FULL_EVERY = 100


def freeze_loaded() -> None:
    """Collect, then take every object alive now out of the collector's sight for good:
    for a process that keeps what it loaded for its life (a service, once its ``Scorer``
    is built), so no full collection walks the modules and the history during a call;
    and space full collections by :data:`FULL_EVERY` young ones."""
    with LOCK:
        gc.collect()
        gc.freeze()
        young, middle, full = gc.get_threshold()
        gc.set_threshold(young, middle, max(full, FULL_EVERY))


def frozen() -> bool:
    """Whether this process has taken objects out of the collector's sight."""
    return gc.get_freeze_count() > 0


def keep_frozen() -> None:
    """In a process that froze what it loaded (:func:`freeze_loaded`), freeze what it built
    since to keep as well; elsewhere, nothing. What is in sight is collected first (a full
    collection, of the unfrozen objects only): garbage frozen in a cycle would stay for good.
    For rare moments (a fold or a rebuild published, a warm-up done), not for every add:
    freezing after each of 500 adds cost 24 ms each and, collecting the young only, froze
    41,000 objects of cyclic garbage."""
    with LOCK:
        if gc.get_freeze_count() > 0:
            gc.collect()
            gc.freeze()
