"""Upkeep of a grown history index: its deltas folded into new bases (in the background
by ``Scorer``), their size, and its id indexes hashed before it is published. Split from
:mod:`.index_append`."""

from __future__ import annotations

import copy
import time

import pandas as pd

from ..linking.incremental import LinkState
from .delta import DeltaTimeline, delta_limit
from .grown_persons import LINKAGE
from .id_index import IdIndex
from .index import HistoryIndex
from .index_append import TIMELINES


def hash_ids(idx: HistoryIndex, steps: list[tuple[str, float]] | None = None) -> None:
    """Build the hash table of each id index of ``idx`` now: pandas builds it on an Index's
    first look-up, a district-sized C call holding the GIL (a third of a second for two
    million incidents, seconds at a load of 8), which after a rebuild was paid by the first
    call or add to read the published index."""
    for name, value in vars(idx).items():
        base = value.base if isinstance(value, IdIndex) else value
        if isinstance(base, pd.Index) and len(base):
            t = time.perf_counter()
            base.get_indexer(base[:1])
            if steps is not None:
                steps.append((f"hash {name}", time.perf_counter() - t))


def delta_events(idx: HistoryIndex) -> int:
    """Events held in the deltas of ``idx``'s timelines (dropped base events included)."""
    tls = [getattr(idx, name) for name in TIMELINES] + list(idx.person_events.values()) + [idx.counterparties]
    return sum(len(t.delta) + len(t.dropped) for t in tls if isinstance(t, DeltaTimeline))


def _timelines(idx: HistoryIndex):
    """(where, name, timeline) of every timeline an add edits, the append cache's included."""
    for name in TIMELINES:
        yield "attr", name, getattr(idx, name)
    yield "attr", "counterparties", idx.counterparties
    for k, tl in idx.person_events.items():
        yield "person_events", k, tl
    for name, tl in idx.append_cache.items():
        yield "append_cache", name, tl


def needs_fold(idx: HistoryIndex) -> bool:
    """Whether a timeline's delta, or the linkage state's records linked since it was
    sorted, has passed its limit (see :func:`fold_index`)."""
    state = idx.append_cache.get(LINKAGE)
    if isinstance(state, LinkState) and state.delta.n > delta_limit(state.base.n):
        return True
    return any(isinstance(tl, DeltaTimeline) and tl.over_limit() for _, _, tl in _timelines(idx))


def fold_index(idx: HistoryIndex) -> HistoryIndex:
    """``idx`` with every timeline whose delta passed its limit compacted into a plain one,
    and the person records linked since the linkage state was sorted merged into it (same
    groups, keys and frozen parameters: later adds link as they would have), the work an
    add skips with ``fold=False``: a new index, ``idx`` left untouched, so it can run on a
    snapshot in the background while adds go on."""
    out = copy.copy(idx)
    out.person_events = dict(idx.person_events)
    out.append_cache = dict(idx.append_cache)
    state = idx.append_cache.get(LINKAGE)
    if isinstance(state, LinkState):
        # Unmerged, every add compares its re-checked records' values with every record
        # linked since (link_new's scans): a cost growing with each add until a rebuild.
        out.append_cache[LINKAGE] = state.merged()
    for where, name, tl in _timelines(idx):
        if isinstance(tl, DeltaTimeline) and tl.over_limit():
            if where == "attr":
                setattr(out, name, tl.compact())
            else:
                getattr(out, where)[name] = tl.compact()
    return out
