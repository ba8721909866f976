"""Online scoring: ``Scorer.score_dispute()`` answers another service in milliseconds.

A :class:`Scorer` holds a model and a district's history, indexed once. Each call
validates the dispute given as plain dicts (the same checks and messages as a
file), computes its features through the very code the batch uses
(:func:`escalation_risk.features.compute_columns`) and returns a
:class:`RiskAssessment`. A dispute's own records never count in its parties',
pair's, place's or network's history, so a dispute the history has never seen
gets the probability, level, plan and reasons that ``RiskModel.score`` gives it
once it is in the data. The online path builds no DataFrame until the reasons'
sentences: at one row, pandas' per-call overhead was most of the latency.

``escalation_risk.score_dispute(...)`` is the shortcut over a default scorer: the
model from ``$ESCALATION_RISK_MODEL`` (default ``models/default``) and the history
from ``$ESCALATION_RISK_DATA``.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from . import collector, forks, handover
from .dataset import Dataset, as_table, load_dataset
from .explain import top_reasons as _top_reasons
from .features import HistoryIndex, compute_columns, history_index, points_from_records
from .features.delta import Stacked
from .features.id_index import IdIndex
from .features.index_append import append_to_index, reserve_room
from .features.index_append import prepare as prepare_appends
from .features.index_fold import delta_events, fold_index, hash_ids, needs_fold
from .model import RiskModel, load_model
from .quiet_lock import QuietLock, quiet
from .response import ALERT_LEVELS, PLAN_REASONS, PLANS, assign_levels, choose_plan
from .score_request import _check_references, _context, parse_request

log = logging.getLogger(__name__)

MODEL_ENV = "ESCALATION_RISK_MODEL"
DATA_ENV = "ESCALATION_RISK_DATA"
DEFAULT_MODEL_DIR = "models/default"


@dataclass(frozen=True)
class RiskAssessment:
    """The answer for one dispute: probability, level, reasons, plan and model version."""

    dispute_id: str
    as_of: pd.Timestamp
    probability: float
    level: str
    reasons: list[dict] = field(default_factory=list)
    plan: str = "routine_follow_up"
    plan_text: str = ""
    plan_text_zh: str = ""
    model_version: str = ""

    @property
    def alert(self) -> bool:
        """Whether the level is one that raises an alert (red, orange, yellow)."""
        return self.level in ALERT_LEVELS

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (timestamps as ISO strings)."""
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


@dataclass(frozen=True)
class _State:
    """The history and its index, swapped together so a call sees one consistent history."""

    history: Stacked
    idx: HistoryIndex


FOLDS = ("background", "inline", "never")
CATCH_UP = 8  # adds a finished fold or rebuild may still have to re-apply when it takes the lock
CATCH_UP_ROUNDS = 3  # rounds of re-applying adds outside the lock before the rest is done holding it


def _over_limit(state: _State) -> bool:
    return state.history.over_limit() or needs_fold(state.idx)


def _fold(state: _State) -> _State:
    """The state with its deltas (history rows and index timelines past their limits)
    folded into new bases: the same history, the same answers, cheaper to read."""
    history = state.history.folded() if state.history.over_limit() else state.history
    idx = fold_index(state.idx)
    hash_ids(idx)  # ids folded into a new Index: hashed here, not by the first reader
    return _State(history, idx)


def _appended(state: _State, added: dict[str, pd.DataFrame], lexicon, rebuild: bool = True
              ) -> tuple[_State | None, bool]:
    """``state`` with validated rows appended (deltas unfolded), and whether the index had to
    be re-built: a change it cannot take in place (see index_append). With ``rebuild``
    False such a change gives None instead (the caller re-builds elsewhere)."""
    history = state.history.plus(added)  # the key's fingerprint travels with the base (features.delta)
    idx = append_to_index(state.idx, history, added, fold=False)
    if idx is not None:
        return _State(history, idx), False
    if not rebuild:
        return None, False
    return _rebuilt(history, lexicon), True


def _rebuilt(history: Stacked, lexicon, *, hashed: bool = True) -> _State:
    """The state of ``history`` with an index built from scratch (its tables joined);
    ``hashed``: its id indexes' hash tables built (not for a child's index: pickling loses them)."""
    ds = history.dataset()
    state = _State(Stacked(ds), history_index(ds, lexicon))
    prepare_appends(state.idx, state.history)  # the next add need not (seconds at a million people)
    if hashed:  # (a child's index is pickled: its arrays' room would not travel)
        reserve_room(state.idx)
        hash_ids(state.idx)  # not by the first reader of the published index
    return state


REBUILD_APART = True  # a background rebuild runs in a forked process (see _rebuilt_apart)


@dataclass(frozen=True)
class _Hashed:
    """An id index the child found to be this process's ``name`` index (hashed already) with
    ``tail`` appended: adopted as that index grown, not hashed again."""

    name: str
    tail: np.ndarray


def _ids(index) -> np.ndarray:
    return index.to_numpy() if isinstance(index, IdIndex) else index.to_numpy(dtype=object)


def _hashed_in(idx: HistoryIndex, before: HistoryIndex | None) -> HistoryIndex:
    """``idx`` (a shallow copy) with each id index that extends ``before``'s (the same ids in
    the same order, then more) replaced by a :class:`_Hashed`: hashing a district's ids is
    one long call holding the GIL (2.3 s for two million incidents at a load of 13)."""
    out = copy.copy(idx)
    if before is None:
        return out
    for name, value in vars(idx).items():
        had = vars(before).get(name)
        if not isinstance(value, pd.Index) or not isinstance(had, (pd.Index, IdIndex)) or len(had) > len(value):
            continue
        ids, old = _ids(value), _ids(had)
        if ids.dtype == old.dtype and np.array_equal(ids[:len(old)], old):
            setattr(out, name, _Hashed(name, ids[len(old):]))
    return out


REBUILD_NICE = 19  # the rebuild's child at the lowest priority: the serving process keeps its core
REBUILD_TIMEOUT = 3600.0  # s: a rebuild's child still running then is stopped (the next add tries again)


class RebuildTimeout(TimeoutError):
    """A rebuild's child ran past ``REBUILD_TIMEOUT`` and was stopped."""


def _in_background() -> None:
    """This process (a rebuild's child) at the lowest CPU priority (``REBUILD_NICE``): on a
    busy machine the serving process's calls, not the rebuild, get the core. Best effort."""
    try:
        os.nice(max(REBUILD_NICE - os.nice(0), 0))
    except OSError:
        pass


def _rebuilt_apart(history: Stacked, lexicon, before: HistoryIndex | None = None,
                   phase: Callable[[str], None] | None = None) -> _State:
    """:func:`_rebuilt` in a forked child, its index handed back mapped (:mod:`.handover`).

    Built on the serving process's job thread, the index of a million people held its GIL
    for ~10 s of long C calls and competed for it for minutes: ``score_dispute`` waited up
    to a second or two. A child shares this process's memory copy-on-write, builds the index
    on the other core and writes it to an unlinked file; this process maps its numeric
    arrays (nothing copied) and reads its object arrays in small chunks, then hashes its id
    indexes (pandas hashes on first look-up: a few district-sized C calls). The history
    stays this process's ``history`` (the index's rows are its rows, in its order). Without
    fork (another platform, ``ESCALATION_RISK_WORKERS=1``) or with ``REBUILD_APART`` off, the
    thread builds it, as it does when the child or the handover fails. A child stopped past
    ``REBUILD_TIMEOUT`` raises :class:`RebuildTimeout` instead: built here, the rebuild would
    hold the GIL the child was there to spare (the job records it; the next add tries again)."""
    if not (REBUILD_APART and forks.workers() > 1):
        return _rebuilt(history, lexicon)
    fd, path = tempfile.mkstemp(prefix="er-rebuild-", suffix=".idx")
    os.unlink(path)  # both processes hold it open; nothing is left on disk
    parent = os.getpid()

    def work() -> None:
        if os.getpid() == parent:  # the child failed, ran past its time or never forked
            if child.stopped:  # said by the wait that stopped it (a clock read here could disagree)
                raise RebuildTimeout(f"the rebuild's child ran past {REBUILD_TIMEOUT:.0f} s")
            raise RuntimeError("the rebuild's child failed")  # the except below builds it here
        _in_background()
        history._lock = QuietLock()  # an add may have held it at the fork: this thread is alone now
        idx = _hashed_in(_rebuilt(history, lexicon, hashed=False).idx, before)
        if lexicon is not None:
            idx.lexicon = None  # type: ignore[assignment]  # the model's, set again here: not shipped
        handover.dump(idx, fd)

    steps: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    try:
        # The job thread's hook waits on the calls' event: a child inheriting it (with the
        # event's lock perhaps held by a request thread at the fork) could wait forever. Off
        # while the child runs too: polling for it makes calls, which would spend the job's
        # credit of waits before the handover, where it counts.
        with quiet():
            child = forks.Forked(work)
            forked = time.perf_counter() - t0  # os.fork holds the GIL while it copies the page tables
            if phase is not None:
                phase("child")
            child.result(REBUILD_TIMEOUT)  # waiting releases the GIL
            t1 = time.perf_counter()
            if phase is not None:
                phase("handover")
        idx = handover.load(fd, steps)
    except RebuildTimeout:
        raise
    except Exception as e:  # noqa: BLE001 - e.g. no room for the file: the index is built here instead
        log.warning("the rebuild in a child failed (%s); rebuilt in this process", type(e).__name__)
        return _rebuilt(history, lexicon)
    finally:
        os.close(fd)  # the mapping keeps the file's pages
    if lexicon is not None:
        idx.lexicon = lexicon
    for name, value in list(vars(idx).items()):
        if isinstance(value, _Hashed):  # this process's index, hashed already, grown by the new ids
            assert before is not None
            setattr(idx, name, IdIndex.of(getattr(before, name)).append(value.tail))
    reserve_room(idx)  # the room a child's pickled arrays lost, made before the index is published
    hash_ids(idx, steps)  # lost with the pickled indexes: hashed here, not by the first reader
    name, longest = max(steps, key=lambda s: s[1], default=("", 0.0))
    log.info("rebuild in a child: forked in %.3f s, built and written in %.1f s; handed over and hashed in %.2f s "
             "(%d steps, the longest %.3f s: %s)", forked, t1 - t0, time.perf_counter() - t1, len(steps), longest, name)
    return _State(history, idx)


def _reapply(state: _State, adds: list[dict[str, pd.DataFrame]], lexicon) -> _State:
    """``state`` with the validated rows of ``adds`` appended in order, as add() did.

    A catch-up re-applies the hundreds of adds a rebuild at a million people lets pass; one
    append each cost their fixed costs again (~35 ms of CPU, holding the GIL, each: a minute
    at a million people), so a run of adds without persons is joined into one append (their
    rows joined by table, in order). An add bringing persons is applied on its own: the
    incremental linkage reads the people known before it (their groups and the counts behind
    the name weights), so joining it with the next would give a later person another key
    than add() published."""
    run: list[dict[str, pd.DataFrame]] = []
    for added in adds:
        if _has_persons(added):
            state = _append_run(state, run, lexicon)
            state = _append_run(state, [added], lexicon)
            run = []
        else:
            run.append(added)
    return _append_run(state, run, lexicon)


def _has_persons(added: dict[str, pd.DataFrame]) -> bool:
    df = added.get("persons")
    return df is not None and len(df) > 0


def _append_run(state: _State, adds: list[dict[str, pd.DataFrame]], lexicon) -> _State:
    if not adds:
        return state
    tables: dict[str, list[pd.DataFrame]] = {}
    for added in adds:
        for name, df in added.items():
            tables.setdefault(name, []).append(df)
    joined = {name: dfs[0] if len(dfs) == 1 else pd.concat(dfs, ignore_index=True) for name, dfs in tables.items()}
    new, _ = _appended(state, joined, lexicon)
    assert new is not None  # rebuild=True: never None
    return new


YIELD_TO_CALLS = True  # a background job waits at its next Python call while score_dispute runs
YIELD_WAIT = 0.01     # s: the longest a job waits for calls at one go (a call takes ~5 ms)
YIELD_SHARE = 0.9     # the share of its time a job may spend waiting for calls, over a stream of them ...
YIELD_BURST = 0.2     # s: ... saved up while no call runs, at most this much


class _Calls:
    """Calls of score_dispute in progress, and the background job's way of yielding to them.

    The job's heavy steps are C calls (numpy, pandas, Arrow); many hold the GIL, and a call
    waiting for it took several times its CPU time. The job thread gets a profile hook
    (:func:`sys.setprofile`, run at each Python and C function call it makes) that waits,
    GIL released, while a call is in progress (up to ``YIELD_WAIT`` at one go), and goes on
    as soon as the last call ends. What it may wait is a credit: it grows by ``YIELD_SHARE``
    of the time that passes (up to ``YIELD_BURST``) and shrinks by the time waited, so calls
    now and then never share the GIL with the job, and a stream of calls without pause holds
    it back ``YIELD_BURST / (1 - YIELD_SHARE)`` (2 s) at first, then ``YIELD_SHARE`` of the
    time: it slows the job, never stops it. (A fixed turn for the job after each wait made every
    other call of a burst share the GIL with it: the wall p99 during a rebuild twice the
    call's CPU.) A C call already running is not interrupted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0
        self.quiet = threading.Event()
        self.quiet.set()

    def __enter__(self) -> None:
        with self._lock:
            self._n += 1
            self.quiet.clear()

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._n -= 1
            if not self._n:
                self.quiet.set()

    def hook(self):
        """The profile function of a job thread."""
        quiet = self.quiet
        credit, last = [YIELD_BURST], [time.perf_counter()]

        def yield_to_calls(frame, event, arg) -> None:
            if not self._n:  # called at every function call of the job: the cheapest test first
                return
            now = time.perf_counter()
            credit[0] = min(credit[0] + (now - last[0]) * YIELD_SHARE, YIELD_BURST)
            last[0] = now
            if credit[0] <= 0:
                return
            quiet.wait(min(credit[0], YIELD_WAIT))
            credit[0] -= time.perf_counter() - now
        return yield_to_calls


class _Job:
    """A background fold or rebuild: the adds accepted after its snapshot, to re-apply."""

    def __init__(self, kind: str):
        self.kind = kind
        self.phase = kind  # what it is doing now ("child", "handover", "catch-up"): read by benchmarks
        self.since: list[dict[str, pd.DataFrame]] = []
        self.thread: threading.Thread | None = None


class Scorer:
    """Scores single disputes against a history, fast and thread-safe.

    ``Scorer(model, history)`` indexes the history once (seconds for a district);
    each :meth:`score_dispute` then takes a few milliseconds. :meth:`add` appends new
    records to the history and its index, at a cost that follows the rows added: the
    history is kept as the loaded tables plus the rows added since, the index as its
    arrays plus a small delta (see :mod:`escalation_risk.features.delta`). Each add
    publishes a new state whole, so a call sees the history before an add or after it,
    never a mix.

    An add never merges the delta into the base itself. Once the delta passes its limit,
    ``fold="background"`` (the default) folds a snapshot of the state on a thread (one
    at a time) while adds go on into the delta; when it is done the adds made since the
    snapshot are re-applied onto the folded state and the result is published whole.
    ``fold="inline"`` folds at the end of the add that passes the limit (deterministic,
    for tests); ``fold="never"`` keeps everything in the deltas. All three give the same
    scores. :meth:`wait_for_fold` waits for a running fold.

    New person records are linked in place (:mod:`escalation_risk.linking.incremental`):
    blocked against the district's kept linkage keys and scored with the parameters of the
    linkage the index was built with, frozen (m, u, weight threshold; the term frequencies
    count the new records). A rebuild, like the night, re-fits them on all the records.

    A few adds cannot be taken into the index in place: a person record that links two
    people the history held apart (their histories merge), or new ``person_attributes``
    rows. The index is then built again from scratch (seconds at 100,000 people, minutes
    at a million). With ``fold="background"`` that rebuild runs off the add's path (in a
    forked process where forking works, see :func:`_rebuilt_apart`; else on the thread): the add
    checks its rows and returns at once (a bad row raises, as always), but its rows are
    not seen by calls until the rebuilt index is published, and neither are the rows of
    the adds accepted after it (they are checked against every accepted row, and
    re-applied onto the rebuilt index in order). Calls meanwhile see the history before
    that add; then, at once, the history after it and every add accepted since: never a
    mix. :attr:`pending_adds` counts the adds accepted but not yet seen. ``"inline"`` and
    ``"never"`` rebuild inside the add.
    """

    def __init__(self, model: RiskModel, history: Dataset, *, pseudonym_key: str | bytes | None = None,
                 fold: str = "background"):
        if fold not in FOLDS:
            raise ValueError(f"fold must be one of {', '.join(FOLDS)}, not {fold!r}")
        self.model = model
        self._key = pseudonym_key
        self._fold_mode = fold
        idx = history_index(history, model.lexicon)  # cached on the caller's Dataset too, for its own use
        # The scorer's history caches on its own dict: what it drops when an index is replaced
        # (_settle) is never taken from a Dataset the caller keeps.
        own = replace(history, cache=dict(history.cache))
        self._state = _State(Stacked(own), idx)  # what calls see
        prepare_appends(self._state.idx, self._state.history)  # what the first add would build on its path
        reserve_room(self._state.idx)
        hash_ids(self._state.idx)
        # One add() at a time; readers never wait. The background job, yielding to calls at
        # its function calls, never does so holding it (an add would wait for its yield).
        self._lock = QuietLock()
        self._accepted = self._state.history  # every accepted row: the state's, then the adds not yet in it
        self._unseen: list[dict[str, pd.DataFrame]] = []  # accepted adds a pending rebuild will publish
        self._job: _Job | None = None  # the background fold or rebuild running
        self.folds = 0  # folds published (inline or background)
        self.rebuilds = 0  # indexes rebuilt from scratch and published (inline or background)
        self.fold_error: BaseException | None = None  # the last background job's failure, if any
        self._calls = _Calls()  # calls in progress: a background job yields to them
        self._cache_lock = threading.Lock()  # the history's cached index: set by readers, dropped by _settle

    @property
    def pending_adds(self) -> int:
        """Adds accepted but not yet seen by calls (waiting for a background rebuild)."""
        return len(self._unseen)

    @property
    def history(self) -> Dataset:
        """The history as it stands (the data the scorer was built on plus what was added),
        as one Dataset: concatenated on first use after an add."""
        state = self._state
        ds = state.history.dataset()
        with self._cache_lock:
            if self._state is state:  # else a new index was published since: not this one's to cache
                ds.cache.setdefault("history_index", state.idx)
                ds.cache.setdefault("person_key", state.idx.person_key)
        return ds

    def delta_size(self) -> int:
        """Events the index holds in its deltas, not yet merged into its arrays."""
        return delta_events(self._state.idx)

    def score_dispute(self, dispute: Mapping, parties: Iterable[Mapping] | pd.DataFrame, *,
                      mediations: Iterable[Mapping] | pd.DataFrame = (),
                      notes: Iterable[Mapping] | pd.DataFrame = (), as_of=None,
                      top_reasons: int = 3) -> RiskAssessment:
        """Score one dispute given as a dict in the contract's ``incidents`` columns.

        ``parties`` are dicts in the ``incident_parties`` columns (``incident_id`` may be
        left out), ``mediations`` and ``notes`` (``incident_notes``: note_id, recorded_at,
        text) likewise; parties added, outcomes and notes recorded after ``as_of`` are not
        read. ``as_of`` defaults to now. The dispute need
        not be in the history: its own records are never part of its parties' history
        (see the feature notes), so it gets the number, level, plan and reasons the batch
        gives it once it is in the data. People not in the history are scored as parties
        without a record. Raises :class:`~escalation_risk.DataValidationError` naming the
        field and value for a missing or bad field, no party, an ``as_of`` that does not
        parse or precedes ``reported_at``, or a place or organisation the history lacks.
        """
        with self._calls:
            return self._score(dispute, parties, mediations, notes, as_of, top_reasons)

    def _score(self, dispute, parties, mediations, notes, as_of, top_reasons: int) -> RiskAssessment:
        req = parse_request(dispute, parties, mediations, as_of, notes)
        state = self._state  # one consistent snapshot even if add() swaps the history meanwhile
        _check_references(state.idx, req)
        P = points_from_records(state.idx, req.incident, req.parties, req.as_of, req.mediations, req.notes)
        cols = compute_columns(state.idx, P, self.model.text_model, needed=self.model.feature_names)
        M = self.model.matrix_from_columns(cols)
        prob = float(self.model.predict_proba(M)[0])
        level = str(assign_levels(np.array([prob]), self.model.thresholds)[0])
        # The plan reads PLAN_REASONS reasons of an alert, however many are displayed.
        k = max(top_reasons, PLAN_REASONS) if level in ALERT_LEVELS else max(top_reasons, 0)
        reasons = []
        if k:
            reasons = _top_reasons(self.model.contribution_matrix(M), cols, k, names=self.model.feature_names)[0]
        plan = choose_plan(req.incident["category"][0], [r["feature"] for r in reasons], level)
        shown = [{**{key: _plain(v) for key, v in r.items()}, "text": r["en"]} for r in reasons[:max(top_reasons, 0)]]
        return RiskAssessment(dispute_id=str(req.incident["incident_id"][0]), as_of=req.as_of, probability=prob,
                              level=level, reasons=shown, plan=plan, plan_text=PLANS[plan].en,
                              plan_text_zh=PLANS[plan].zh, model_version=self.model.version)

    def similar_cases(self, dispute: Mapping, parties: Iterable[Mapping] | pd.DataFrame, *,
                      mediations: Iterable[Mapping] | pd.DataFrame = (), as_of=None, k: int = 10) -> pd.DataFrame:
        """The ``k`` past disputes of the history most like this one (see :mod:`.cases`)."""
        from .cases import similar_to_records

        return similar_to_records(self.model, self.history, dispute, parties, mediations=mediations,
                                  as_of=as_of, k=k)

    def add(self, **tables: pd.DataFrame | Iterable[Mapping]) -> None:
        """Append new records (contract tables by name) to the history and its index.

        The new rows are validated like a file against the history's ids and
        references; on error nothing changes.
        """
        # Records stay records where the record engine reads them as it would read their frame.
        given: dict[str, Any] = {name: as_table(rows, name) for name, rows in tables.items()}
        with self._lock:
            state, accepted, unseen = self._state, self._accepted, self._unseen
            # Validated against only the rows they name or could collide with (found through the
            # index's id look-ups): checking against whole tables costs a pass over the district.
            context = _context(accepted, state.idx, given, state.history if unseen else None)
            added = context.new_rows(pseudonym_key=self._key, **given)
            added = {name: df for name, df in added.items() if len(df)}
            if not added:
                return
            job = self._job
            if unseen:  # a rebuild is pending: these rows are seen when it is published
                self._accepted = accepted.plus(added)
                unseen.append(added)
                if job is not None and job.kind == "rebuild":
                    job.since.append(added)
                else:  # the last rebuild failed: try again, this add included
                    self._start("rebuild", self._accepted)
                return
            new, rebuilt = _appended(state, added, self.model.lexicon, rebuild=self._fold_mode != "background")
            if new is None:  # background: the index is rebuilt off the add's path
                self._accepted = state.history.plus(added)
                self._unseen = [added]
                self._start("rebuild", self._accepted)  # a fold running now is superseded
                return
            self._state, self._accepted = new, new.history
            if rebuilt:
                self.rebuilds += 1
                self._job = None  # a fold running now would publish a stale index: drop it
                self._settle()
            elif job is not None:
                job.since.append(added)
            self._maybe_fold()

    def _maybe_fold(self) -> None:
        """Fold the deltas once past their limit: here (inline) or on a thread (background).
        Called holding ``self._lock``."""
        if self._fold_mode == "never" or self._job is not None or not _over_limit(self._state):
            return
        if self._fold_mode == "inline":
            self._state = _fold(self._state)
            self._accepted = self._state.history
            self.folds += 1
            self._settle()
            return
        self._start("fold", self._state)

    def _start(self, kind: str, snapshot: _State | Stacked) -> None:
        """Run a fold of (or a rebuild over) ``snapshot`` on a thread; it becomes the job whose
        result may be published (a job superseded meanwhile publishes nothing). Called
        holding ``self._lock``."""
        job = _Job(kind)
        job.thread = threading.Thread(target=self._run_job, args=(job, snapshot), name=f"scorer-{kind}",
                                      daemon=True)
        self._job = job
        job.thread.start()

    def _run_job(self, job: _Job, snapshot: _State | Stacked) -> None:
        """Fold or rebuild ``snapshot``, catch up with the adds accepted meanwhile (outside the
        lock while there are many), then, holding the lock, re-apply the last few and publish."""
        lexicon = self.model.lexicon
        published = False
        if YIELD_TO_CALLS:
            sys.setprofile(self._calls.hook())  # this thread only
        try:
            state = _fold(snapshot) if isinstance(snapshot, _State) else \
                _rebuilt_apart(snapshot, lexicon, self._state.idx, phase=lambda p: setattr(job, "phase", p))
            job.phase = "catch-up"
            done = rounds = 0
            while True:
                with self._lock:
                    if self._job is not job:
                        return  # superseded: an add re-built the index or started a rebuild
                    # Adds arriving as fast as they are re-applied would keep a catch-up going
                    # for ever: after a few rounds the rest is re-applied holding the lock.
                    if len(job.since) - done <= CATCH_UP or rounds == CATCH_UP_ROUNDS:
                        state = _reapply(state, job.since[done:], lexicon)
                        self._state, self._accepted = state, state.history
                        if job.kind == "rebuild":
                            self._unseen = []
                            self.rebuilds += 1
                        else:
                            self.folds += 1
                        published = True
                        return
                    todo = list(job.since[done:])
                state = _reapply(state, todo, lexicon)  # adds go on meanwhile
                done += len(todo)
                rounds += 1
        except Exception as e:  # the state stays and keeps answering; the next add may try again
            self.fold_error = e
            # The kind only: an exception's message may quote a record (kept in fold_error).
            log.error("background %s of the scorer's history failed (%s)", job.kind, type(e).__name__)
        finally:
            sys.setprofile(None)
            with self._lock:
                if self._job is job:
                    self._job = None
            if published:
                self._settle()

    def _settle(self) -> None:
        """After a fold or a rebuild published a new index: the history's base Dataset forgets
        the index cached on it once that is not the published one. Kept there, the replaced
        index would live as long as the history (a background rebuild keeps the history's
        base): at a million people, a second index beside the new one. The base's cache is
        the scorer's own (see ``__init__``): a caller's Dataset keeps what it cached.
        (Its ``person_key`` and ``linkage`` stay: the incremental linkage reads them.) And a
        process that froze what it loaded freezes what was just published (:mod:`.collector`)."""
        with self._cache_lock:
            state = self._state
            cache = state.history.base.cache
            if cache.get("history_index") is not state.idx:
                cache.pop("history_index", None)
        # In a service that froze what it loaded: what this publish made long-lived (the adds
        # re-applied after a rebuild, with their frames) out of the collector's sight too. Else
        # every later full collection walks them: at a million people with 490 adds waiting
        # for a rebuild, 90-135 ms each, measured (BENCHMARKS.md).
        collector.keep_frozen()

    def wait_for_fold(self, timeout: float | None = None) -> bool:
        """Wait until no background fold or rebuild runs (True), or the timeout (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self._job
            if job is None or job.thread is None:
                return True
            job.thread.join(None if deadline is None else max(deadline - time.monotonic(), 0))
            if job.thread.is_alive():
                return False


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


_DEFAULT: Scorer | None = None
_DEFAULT_LOCK = threading.Lock()


def default_scorer() -> Scorer:
    """The process-wide scorer over ``$ESCALATION_RISK_MODEL`` and ``$ESCALATION_RISK_DATA``."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            data = os.environ.get(DATA_ENV)
            if not data:
                raise RuntimeError(f"set {DATA_ENV} to the history's data folder (and {MODEL_ENV} to a model "
                                   f"directory, default {DEFAULT_MODEL_DIR}), or build a Scorer yourself")
            model = load_model(os.environ.get(MODEL_ENV, DEFAULT_MODEL_DIR))
            _DEFAULT = Scorer(model, load_dataset(data))
        return _DEFAULT


def score_dispute(dispute: Mapping, parties: Iterable[Mapping] | pd.DataFrame, *,
                  mediations: Iterable[Mapping] | pd.DataFrame = (), notes: Iterable[Mapping] | pd.DataFrame = (),
                  as_of=None) -> RiskAssessment:
    """Score one dispute with the default scorer (see :func:`default_scorer`)."""
    return default_scorer().score_dispute(dispute, parties, mediations=mediations, notes=notes, as_of=as_of)
