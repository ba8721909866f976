"""Scoring for the API: in the server's process, or in a few forked processes beside it.

A score is a few milliseconds of Python under the GIL, so one server process answers
concurrent clients one after another, as threads calling ``score_dispute`` in one process
do. ``serve --score-processes N`` forks ``N`` scorers before the server starts any thread
or runs the model: each child holds the parent's scorer (its memory shared copy-on-write),
scores the requests the event loop hands it and returns the answer ready for JSON, so
``N`` calls run at once on ``N`` cores. The children only score; the pages, the store and
the caches stay in the parent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import pandas as pd

from ..dataset import DataValidationError
from ..outputs import only
from ..scoring import Scorer

__all__ = ["ScorePool", "score_payload", "plain"]

log = logging.getLogger("escalation_risk.desk")

#: The scorer a forked child uses (set in the parent just before the fork).
_SCORER: Scorer | None = None


def plain(v: Any) -> Any:
    """A JSON-ready value (no NaN, no numpy, timestamps as ISO strings)."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [plain(x) for x in v]
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    if isinstance(v, pd.Timedelta):
        return str(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def score_payload(scorer: Scorer, request: dict[str, Any]) -> tuple[str, Any, float]:
    """``scorer.score_dispute(**request)`` as (kind, what, milliseconds): ``("ok", answer)``
    with the answer cut to ``score_answer`` and JSON-ready, ``("invalid", problems)`` for a
    :class:`DataValidationError`, ``("refused", message)`` for another ``ValueError``.

    Plain values only, so a child process can send them back (the error's own pickling
    would lose its problems)."""
    started = time.perf_counter()
    try:
        answer = scorer.score_dispute(**request)
    except DataValidationError as e:
        return "invalid", e.problems, 1e3 * (time.perf_counter() - started)
    except ValueError as e:  # a request shape score_dispute refuses (several disputes, ...)
        return "refused", str(e), 1e3 * (time.perf_counter() - started)
    took = 1e3 * (time.perf_counter() - started)
    return "ok", plain(only(answer.to_dict(), "score_answer")), took


def _child_score(request: dict[str, Any]) -> tuple[str, Any, float]:
    assert _SCORER is not None, "a scoring child without a scorer"
    try:
        return score_payload(_SCORER, request)
    except Exception as e:  # noqa: BLE001 - only the type crosses back: a message may carry a value
        return "crash", type(e).__name__, 0.0


def _ready(_: int) -> int:
    return multiprocessing.current_process().pid or 0


class ScorePool:
    """``score_dispute`` for the event loop: in ``processes`` forked children, or (0) in the
    loop itself. Create it before any thread starts (see the module's note)."""

    def __init__(self, scorer: Scorer, processes: int = 0) -> None:
        global _SCORER
        self.scorer = scorer
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        if processes > 0:
            _SCORER = scorer
            # fork: the children share the loaded history instead of loading their own. All are
            # forked at the first submit, from this thread, before the pool's own threads start.
            self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))
            self.pids = sorted(set(self._pool.map(_ready, range(processes))))

    async def score(self, request: dict[str, Any]) -> tuple[str, Any, float]:
        """See :func:`score_payload`; in a child when there are children (in the loop when a
        child has died: the server keeps answering, slower, and says so in its log)."""
        if self._pool is not None:
            try:
                out = await asyncio.get_running_loop().run_in_executor(self._pool, _child_score, request)
            except BrokenProcessPool:
                log.error("a scoring process died: scoring in the server's own process from now on")
                self._pool = None
            else:
                if out[0] == "crash":
                    raise RuntimeError(f"scoring failed in a child process ({out[1]})")
                return out
        # In the loop, not the thread pool: a call is CPU under the GIL, so threads would
        # only add hand-overs (see BENCHMARKS.md).
        return score_payload(self.scorer, request)

    def close(self) -> None:
        """Stop the children (waits for calls under way)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
