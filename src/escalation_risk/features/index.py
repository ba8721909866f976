"""The history index: a district's records arranged for point-in-time look-ups.

Every fact the features use becomes a :class:`Timeline`, an array of events sorted
by (entity, availability time). A question such as "how many police calls did this
person have in the 30 days before as_of?" is then two binary searches, for one point
or for 200,000 at once, so the batch job and ``score_dispute()`` run the very same
code and get the very same numbers. Nothing is counted unless its availability
time (``reported_at``, ``added_at``, ``held_at``, ``outcome_at``, ``recorded_at``,
``since``, ``start_date``, ``closed_at``) is at or before the point's ``as_of``: each
event's time here is the one :mod:`escalation_risk.known` gives it (a party is on an
incident from its ``added_at``, a person's events count from their arrival on the
incident, a failed mediation from its ``outcome_at``).

The index is built once per Dataset (cached in ``ds.cache``) in a few vectorised
passes; building it is the cost of a night, querying it is nearly free. New records
are added to a built index by :mod:`.index_append` (``Scorer.add``), which re-reads
only the incidents they touch and keeps the change as a small delta over these arrays
(:mod:`.delta`); a new part of the index must be listed there too.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from ..contract import ATTRIBUTES, VIOLENT_OFFENCES
from ..dataset import Dataset
from ..forks import Forked, workers, worth_forking
from ..known import MAX_GROUP, attribute_history, outcome_since, party_since, tie_members
from ..linking import link_persons
from ..lookup import arrow_strings, id_positions
from .id_index import positions
from .lexicon import Lexicon, load_lexicon
from .text_column import TextColumn
from .timeline import ALWAYS, NEVER, SHIFT, Timeline, join_on, sorted_groups, to_secs, unique_keys

if TYPE_CHECKING:
    from .delta import DeltaTimeline

__all__ = ["HistoryIndex", "history_index", "shared_objects"]

MAX_PAIR_PARTIES = MAX_GROUP     # incidents with more person parties make no pair ties (known.tie_members)


_THREAD_ROWS = 50_000  # texts, parties: from which their signals, their look-ups are made by a thread beside the build


class _Later:
    """A look-up made when its value is first asked for (the build without a thread)."""

    def __init__(self, job: Callable[[], np.ndarray]) -> None:
        self._job = job

    def result(self) -> np.ndarray:
        return self._job()


def _matrices(lexicon: Lexicon, texts: tuple[pd.Series, ...]) -> list[np.ndarray]:
    """Each text column's lexicon matrix (a forked child's work: see :class:`HistoryIndex`)."""
    return [lexicon.matrix(t) for t in texts]


class _Part:
    """One of a forked job's several results (read when first asked for)."""

    def __init__(self, job: Forked[list[np.ndarray]], i: int) -> None:
        self._job, self._i = job, i

    def result(self) -> np.ndarray:
        return self._job.result()[self._i]


_Signals = Forked[np.ndarray] | Future[np.ndarray] | _Part


def _first_rows(keys: np.ndarray) -> np.ndarray:
    """The positions of each distinct key's first row, in the rows' order (what
    ``drop_duplicates`` keeps)."""
    order, starts = sorted_groups(keys)
    return np.sort(order[starts])


def _first_arrivals(inc: np.ndarray, person: np.ndarray, role: np.ndarray, since: np.ndarray) -> np.ndarray:
    """The rows of each (incident, person, role)'s earliest ``since`` (a tie: the earlier
    row), ordered by ``since`` (a tie: by row): sorting by time and ``drop_duplicates``.
    ``person`` -1: not a known person, left out; ``role``: codes, -1 missing (one role)."""
    rows = np.flatnonzero(person >= 0)
    rows = rows[np.argsort(since[rows], kind="stable")]
    per = person[rows].astype(np.int64)
    # (incident, role) as one number below 2**29, so that with the person it fits an int64 key
    n_roles = int(role.max()) + 2 if len(role) else 1
    inc_role = inc[rows].astype(np.int64) * n_roles + role[rows] + 1
    if len(inc_role) and int(inc_role.max()) >= 1 << 29:
        inc_role = np.unique(inc_role, return_inverse=True)[1].astype(np.int64)
    return rows[_first_rows(inc_role * SHIFT + per)]


def _earliest_by_key(keys: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct key with its smallest ``t``, the keys in the order they first appear
    (a group-by without sorting, then ``min``)."""
    order, starts = sorted_groups(keys)
    firsts = order[starts]  # (a group's first row: its smallest)
    earliest = np.minimum.reduceat(t[order], starts) if len(keys) else t
    appear = np.argsort(firsts, kind="stable")
    return keys[firsts][appear], earliest[appear]


_PairsMade = tuple[pd.Index, Timeline, Timeline]


def _pairs(pe_inc: np.ndarray, pe_person: np.ndarray, pe_t: np.ndarray, police: np.ndarray) -> _PairsMade:
    """The pairs of persons in the same incident from each (incident, person)'s first arrival:
    the pairs' keys, each pair's incidents (earlier conflicts between the same parties) and
    each person's distinct counterparties. ``police``: whether each incident is a police call.
    The group-size cap is known.tie_members'."""
    g, gp, gt = tie_members(pe_inc, pe_person, pe_t, MAX_PAIR_PARTIES)
    gp, gt = np.asarray(gp, np.int64), np.asarray(gt, np.int64)
    x, y = join_on(np.asarray(g, np.int64), np.asarray(g, np.int64))
    keep = gp[x] < gp[y]
    x, y = x[keep], y[keep]
    a, b = gp[x], gp[y]
    pinc = np.asarray(g, np.int64)[x]
    tied = np.maximum(gt[x], gt[y])
    keys = unique_keys(a * SHIFT + b)
    # (the keys sorted and distinct: a key's position by binary search, no hash table built
    # in a child that would not be the index's)
    pair_events = Timeline.build(np.searchsorted(keys, a * SHIFT + b), tied, inc=pinc, police=police[pinc])
    del x, y, keep, pinc, g, gp, gt
    # Each (person, counterparty)'s first tie, in the order the pairs first appear (as a
    # group-by without sorting gives them; the timeline keeps that order among equal times).
    pair_ab, earliest = _earliest_by_key(np.concatenate([a * SHIFT + b, b * SHIFT + a]),
                                         np.concatenate([tied] * 2))
    del a, b, tied
    return pd.Index(keys), pair_events, Timeline.build(pair_ab // SHIFT, earliest, other=pair_ab % SHIFT)


def shared_objects(values: pd.Series) -> np.ndarray:
    """``values.to_numpy(dtype=object)`` holding one Python object per distinct value
    (missing rows: the column's own missing value). A frame's text column (Arrow strings,
    or a categorical of them) makes a Python string per row when read as objects: a few
    roles over a million people's parties were 4 million strings (~230 MB), and every read
    of them wrote to their pages (the reference counts), so a forked scorer copied them."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    objects = np.asarray(pd.Series(uniques, dtype=values.dtype).astype(object), dtype=object)
    out = np.empty(len(codes), dtype=object)
    missing = codes < 0
    # Missing rows (code -1) are not looked up: a column of only missing values has no uniques.
    out[~missing] = objects[codes[~missing]]
    if missing.any():
        out[missing] = values[missing].astype(object).to_numpy()
    return out


def _codes(values, categories) -> np.ndarray:
    return pd.Categorical(pd.Series(values).astype(object), categories=list(categories)).codes.astype(np.int16)


class HistoryIndex:
    """Point-in-time look-up structures over one Dataset. Build with :func:`history_index`."""

    def __init__(self, ds: Dataset, lexicon: Lexicon | None = None, *, fork: bool = False):
        self.lexicon = lexicon or load_lexicon()
        threaded = workers() > 1
        # A forking build (``fork``: the batch night's scoring, which forks anyway: no server's
        # request threads, whose locks a child would inherit) hands two parts to forked
        # children, whose CPU is not this process's: the texts' signals (a few seconds of RE2
        # at a million people, a small 0/1 matrix), both texts one after the other, read
        # beside the linkage and the rest of the build; and the pairs of persons met in an
        # incident (see _build_incidents). Else the texts are read by a thread (Arrow's RE2
        # lets go of the GIL), or here when asked for if few. A forking build never starts a
        # thread for the texts: a fork while it ran would copy its locks.
        self._fork = fork
        self._children: list[Forked] = []
        texts = (ds.incidents["description"], ds.incident_notes["text"])
        signals: list[_Signals]
        pool: ThreadPoolExecutor | None = None
        finder = ThreadPoolExecutor(max_workers=1) if threaded and len(ds.incident_parties) >= _THREAD_ROWS else None
        try:
            if fork:
                forked = Forked(partial(_matrices, self.lexicon, texts),
                                fork=worth_forking(sum(len(t) for t in texts)))
                self._children.append(forked)
                signals = [_Part(forked, i) for i in range(len(texts))]
            else:
                by_thread = [threaded and len(t) >= _THREAD_ROWS for t in texts]
                pool = ThreadPoolExecutor(max_workers=1) if any(by_thread) else None
                signals = [pool.submit(self.lexicon.matrix, t) if pool is not None and thread
                           else Forked(partial(self.lexicon.matrix, t), fork=False)  # read when asked
                           for t, thread in zip(texts, by_thread)]
            self._build(ds, signals, finder)
        except BaseException:
            # A build that failed leaves no child behind and waits for no queued look-up
            # (only for one already running: a thread cannot be stopped).
            for child in self._children:
                child.cancel()
            for threads in (pool, finder):
                if threads is not None:
                    threads.shutdown(cancel_futures=True)
            raise
        for threads in (pool, finder):
            if threads is not None:
                threads.shutdown()
        del self._fork, self._children

    def _build(self, ds: Dataset, signals: list[_Signals],
               finder: ThreadPoolExecutor | None) -> None:
        # A key already decided for these records (an append's few people, keyed by the
        # district's linkage) is used as it is: linking them again could only disagree.
        key = ds.cache["person_key"] if "person_key" in ds.cache else link_persons(ds)
        self.person_key = key
        # Canonical persons, numbered; every source person_id maps onto its canonical number.
        self.persons = pd.Index(pd.unique(key.to_numpy()), name="person_key")
        self.pid_to_int = pd.Series(self.persons.get_indexer(key.to_numpy()), index=key.index)
        self._pid_index = pd.Index(key.index.to_numpy(dtype=object))
        self._pid_codes = self.pid_to_int.to_numpy(np.int64)  # by position of _pid_index (see codes_at)
        p = ds.persons.assign(_k=self.pid_to_int.reindex(ds.persons["person_id"]).to_numpy())
        self._pid_keys = key.index  # for the person look-ups while building; not kept
        self._find_ids(ds, finder)
        # A canonical person's attributes: the first non-null across its records.
        attrs = p.sort_values("person_id").groupby("_k")[["birth_year", "gender", "hukou", "employment"]].first()
        attrs = attrs.reindex(np.arange(len(self.persons)))
        self.birth_year = attrs["birth_year"].astype("float64").to_numpy()
        self.gender = attrs["gender"].astype(object).to_numpy()
        self.hukou = attrs["hukou"].astype(object).to_numpy()
        self.employment = attrs["employment"].astype(object).to_numpy()
        self._build_attributes(ds, p)

        self.places = pd.Index(ds.places["place_id"].to_numpy(dtype=object))
        self.grids = pd.Index(pd.unique(ds.places["grid_id"].to_numpy(dtype=object)))
        self.place_grid = id_positions(self.grids, ds.places["grid_id"])
        self.places_type = ds.places["place_type"].astype(object).to_numpy()
        self.orgs = pd.Index(ds.organizations["org_id"].to_numpy(dtype=object))
        self.org_type = ds.organizations["org_type"].astype(object).to_numpy()

        self._build_incidents(ds, *signals)
        self._build_people(ds)
        pairs = self._pairs_made.result()
        self.pairs, self.pair_events = pairs[0], pairs[1]
        self.counterparties: Timeline | DeltaTimeline = pairs[2]
        # The pairs' hash table made now, before the scoring forks its halves: both read it.
        self.pairs.get_indexer(self.pairs[:1])
        del self._pid_keys, self._found, self._pairs_made, pairs
        # Structures that only appending new records needs (see .index_append), built on first use.
        self.append_cache: dict = {}

    def _find_ids(self, ds: Dataset, finder: ThreadPoolExecutor | None) -> None:
        """Every large id look-up of the build (Arrow's hash tables, which let go of the GIL),
        by ``finder``'s thread in the order the build reads them while this one builds (a
        million people's: seconds), else here; read by :meth:`_ids`."""
        inc = ds.incidents["incident_id"]
        parties, hm, rel = ds.incident_parties, ds.household_members, ds.relations
        person_keys: list[pa.Array] = []

        def persons(ids: pd.Series) -> np.ndarray:
            if not person_keys:  # the source ids as Arrow strings once, not once per look-up
                person_keys.append(arrow_strings(self._pid_keys))
            return id_positions(person_keys[0], ids)

        jobs: dict[str, Callable[[], np.ndarray]] = {
            "inc_place": partial(id_positions, ds.places["place_id"], ds.incidents["place_id"]),
            "inc_related": partial(id_positions, inc, ds.incidents["related_incident_id"]),
            "party_inc": partial(id_positions, inc, parties["incident_id"]),
            "party_person": partial(persons, parties["party_id"]),
            "med_inc": partial(id_positions, inc, ds.mediations["incident_id"]),
            "note_inc": partial(id_positions, inc, ds.incident_notes["incident_id"]),
            "flag_person": partial(persons, ds.person_flags["person_id"]),
            "member_person": partial(persons, hm["person_id"]),
            "member_household": partial(id_positions, ds.households["household_id"], hm["household_id"]),
            "rel_a": partial(persons, rel["person_a"]),
            "rel_b": partial(persons, rel["person_b"]),
        }
        self._found: dict[str, Future[np.ndarray] | _Later] = {
            name: finder.submit(job) if finder is not None else _Later(job) for name, job in jobs.items()}

    def _ids(self, name: str) -> np.ndarray:
        """One look-up of :meth:`_find_ids` (waited for, or made now); handed over, not kept."""
        return self._found.pop(name).result()

    def codes_at(self, pos: np.ndarray) -> np.ndarray:
        """The canonical person number of each position of ``_pid_index`` (-1 for -1: unknown).
        (``_pid_codes`` grows in place as persons are added, so it holds no "unknown" slot.)"""
        pos = np.asarray(pos, dtype=np.int64)
        out = np.full(len(pos), -1, dtype=np.int64)
        known = pos >= 0
        out[known] = self._pid_codes[pos[known]]
        return out

    # ------------------------------------------------------------------ incidents and parties
    def _build_incidents(self, ds: Dataset, inc_signals: _Signals, note_signals: _Signals) -> None:
        inc = ds.incidents
        self.incidents = pd.Index(inc["incident_id"].to_numpy(dtype=object))
        self.inc_kind = inc["kind"].astype(object).to_numpy()
        self.inc_category = inc["category"].astype(object).to_numpy()
        self.inc_source = inc["source"].astype(object).to_numpy()
        self.inc_rep = to_secs(inc["reported_at"], ALWAYS)
        self.inc_occ = to_secs(inc["occurred_at"], ALWAYS)
        self.inc_closed = to_secs(inc["closed_at"], NEVER)
        self.inc_amount = inc["amount"].to_numpy(dtype="float64")
        self.inc_place = self._ids("inc_place")
        self.inc_related = self._ids("inc_related")
        self.inc_signals = inc_signals.result()
        self.inc_desc = TextColumn(inc["description"])  # the text model reads it at as_of
        crim = self.inc_kind == "criminal_case"
        self.inc_violent = crim & np.isin(self.inc_category, VIOLENT_OFFENCES)

        parties = ds.incident_parties
        pi = self._ids("party_inc")
        since = to_secs(party_since(parties, inc, pi), ALWAYS)
        is_person = (parties["party_type"] == "person").to_numpy()
        person = np.where(is_person, self.codes_at(self._ids("party_person")), -1)
        # Two source ids of one canonical person in one incident count once, from the earlier
        # (with each role: a person may be a suspect and a victim of one case). Deduplicated
        # on integer keys (the roles' codes): pandas hashing an object role column and two
        # int columns took seconds at a million people.
        role_codes = pd.factorize(parties["role"], use_na_sentinel=True)[0]
        rows = _first_arrivals(pi, person, role_codes, since)  # (person: -1 for an organisation)
        inc_of, per, t = pi[rows], person[rows].astype(np.int64), since[rows]
        prole = shared_objects(parties["role"].iloc[rows])
        self.party_inc = Timeline.build(inc_of, t, person=per, role=prole)
        # (incident, person) membership, hashed once so a point's own-dispute test is O(1),
        # with the person's arrival on the incident.
        pe_key = inc_of.astype(np.int64) * SHIFT + per
        order, starts = sorted_groups(pe_key)
        firsts = order[starts]
        self.inc_person = pd.Index(pe_key[firsts])
        self.inc_person_t = t[firsts]
        pe = np.sort(firsts)  # the rows of each (incident, person)'s first arrival, in arrival order
        org = np.flatnonzero(~is_person)
        org_at = id_positions(ds.organizations["org_id"], parties["party_id"].iloc[org].to_numpy(dtype=object))
        org, org_at = org[org_at >= 0], org_at[org_at >= 0]
        by_t = np.argsort(since[org], kind="stable")
        org, org_at = org[by_t], org_at[by_t]
        first = _first_rows(pi[org].astype(np.int64) * SHIFT + org_at)
        self.org_party_inc = Timeline.build(pi[org][first], since[org][first], org=org_at[first])

        # Person timelines by kind, and criminal cases by role: from the person's arrival.
        kind = self.inc_kind[inc_of]
        # (a grown index holds some timelines in their delta form, see .delta)
        self.person_events: dict[str, Timeline | DeltaTimeline] = {}
        pe_inc, pe_person, pe_t = inc_of[pe], per[pe], t[pe]
        pe_kind = self.inc_kind[pe_inc]
        for k in ("dispute", "police_call", "complaint", "petition", "criminal_case"):
            m = pe_kind == k
            self.person_events[k] = Timeline.build(pe_person[m], pe_t[m], inc=pe_inc[m])
        crim_p = kind == "criminal_case"
        sus = crim_p & (prole == "suspect")
        vic = crim_p & (prole == "victim")
        self.person_events["crime_suspect"] = Timeline.build(per[sus], t[sus], inc=inc_of[sus])
        self.person_events["crime_victim"] = Timeline.build(per[vic], t[vic], inc=inc_of[vic])
        vs = sus & self.inc_violent[inc_of]
        self.person_events["violent_suspect"] = Timeline.build(per[vs], t[vs], inc=inc_of[vs])
        j = self.danger_columns()
        danger = np.asarray(self.inc_signals[:, j].any(axis=1)) if j else np.zeros(len(self.incidents), bool)
        self.inc_danger = danger
        dm = danger[pe_inc]
        self.person_events["danger_text"] = Timeline.build(pe_person[dm], pe_t[dm], inc=pe_inc[dm])
        # The parties' scratch (a few million rows at a million people) freed before the pairs
        # are expanded: held to the end of the build, it set the night's memory peak.
        del pi, since, is_person, person, role_codes, rows, first, pe_key, order, starts, firsts, pe
        del org, org_at, by_t, inc_of, per, t, kind, prole, crim_p, sus, vic, vs, dm

        # Pairs of persons in the same incident (a few seconds at a million people, reading only
        # the first arrivals): by a forked child while this process builds the rest, in a
        # forking build (see __init__), else here.
        police = self.inc_kind == "police_call"
        self._pairs_made: Forked[_PairsMade] | Future[_PairsMade]
        if self._fork and worth_forking(len(pe_inc)):
            # No look-up may be running on the finder's thread when forking (a lock it held
            # would be held for good in the child): the rest are waited for, most already made.
            wait([f for f in self._found.values() if isinstance(f, Future)])
            # (the job keeps its inputs to the end of the build: a child that fails is redone here)
            self._pairs_made = Forked(partial(_pairs, pe_inc, pe_person, pe_t, police))
            self._children.append(self._pairs_made)
        else:
            # Made now: its scratch freed before the rest is built, and its inputs with this
            # step's (a Forked would keep them, for a redo no child needs).
            self._pairs_made = Future()
            self._pairs_made.set_result(_pairs(pe_inc, pe_person, pe_t, police))
        del police

        # Follow-up records that name a dispute, and mediations of each incident.
        rel = self.inc_related >= 0
        idx = np.flatnonzero(rel)
        self.followups: Timeline | DeltaTimeline = Timeline.build(self.inc_related[rel], self.inc_rep[rel], inc=idx,
                                        kind=self.inc_kind[rel])
        med = ds.mediations
        mi = self._ids("med_inc")
        self.med_ids = pd.Index(med["mediation_id"].to_numpy(dtype=object))
        held = to_secs(med["held_at"], ALWAYS)
        # An outcome exists from outcome_at (null: the session); until then it is pending.
        out_t = np.maximum(to_secs(outcome_since(med), ALWAYS), held)
        failed = (med["outcome"] == "failed").to_numpy()
        self.mediations = Timeline.build(mi, held, failed=failed, out_t=out_t, mid=np.arange(len(med)))
        # Failed mediations as part of each party's history: known from the outcome, for
        # people on the incident by then.
        f_inc, f_out = np.asarray(mi, np.int64)[failed], out_t[failed]
        fi, fj = join_on(f_inc, pe_inc.astype(np.int64))
        self.person_events["failed_mediation"] = Timeline.build(
            pe_person[fj], np.maximum(f_out[fi], pe_t[fj]), inc=f_inc[fi])

        # Notes written on incidents after their report (contract 1.1), with their signals.
        notes = ds.incident_notes
        ni = self._ids("note_inc")
        self.note_ids = pd.Index(notes["note_id"].to_numpy(dtype=object))
        self.note_signals = note_signals.result()
        # The notes' own text, read only by a trained text model (features.text_model).
        # (read by position like the object array it replaces; grown by .index_append)
        self.note_text = cast(np.ndarray, TextColumn(notes["text"]))
        self.notes = Timeline.build(ni, to_secs(notes["recorded_at"], ALWAYS), row=np.arange(len(notes)))

        # Places and grids.
        has_place = self.inc_place >= 0
        pl = self.inc_place[has_place]
        tt = self.inc_rep[has_place]
        ids = np.flatnonzero(has_place)
        v = self.inc_violent[has_place]
        d = self.inc_kind[has_place] == "dispute"
        self.place_events = Timeline.build(pl, tt, inc=ids)
        self.place_violent = Timeline.build(pl[v], tt[v], inc=ids[v])
        self.place_disputes = Timeline.build(pl[d], tt[d], inc=ids[d])
        g = self.place_grid[pl]
        self.grid_events = Timeline.build(g, tt, inc=ids)
        self.grid_violent = Timeline.build(g[v], tt[v], inc=ids[v])

        # Disputes against each organisation (group-incident risk), with their closing time,
        # from the moment the organisation is a party.
        oi = self.org_party_inc.ent
        od = self.inc_kind[oi] == "dispute"
        self.org_disputes = Timeline.build(self.org_party_inc.payload["org"][od], self.org_party_inc.t[od],
                                           inc=oi[od], closed=self.inc_closed[oi[od]])

    # ------------------------------------------------------------------ people, households, ties
    def _build_people(self, ds: Dataset) -> None:
        fl = ds.person_flags
        fp = self.codes_at(self._ids("flag_person"))
        self.flags = Timeline.build(fp, to_secs(fl["recorded_at"], ALWAYS), flag=fl["flag"].astype(object).to_numpy())

        hm = ds.household_members
        hh = pd.Index(ds.households["household_id"].to_numpy(dtype=object))
        self.households = hh
        self.household_place = id_positions(ds.places["place_id"], ds.households["place_id"])
        self.household_tenure = ds.households["tenure"].astype(object).to_numpy()
        mp = self.codes_at(self._ids("member_person"))
        mh = self._ids("member_household")
        start = to_secs(hm["start_date"], ALWAYS)
        end = to_secs(hm["end_date"], NEVER)
        # An ending is known only from the moment it happens, so "member at t" is
        # start <= t < end, which reads nothing recorded after t.
        self.memberships = Timeline.build(mp, start, household=mh, end=end)
        self.members = Timeline.build(mh, start, person=mp, end=end)

        rel = ds.relations
        ra = self.codes_at(self._ids("rel_a"))
        rb = self.codes_at(self._ids("rel_b"))
        since = to_secs(rel["since"], ALWAYS)
        kind = rel["relation"].astype(object).to_numpy()
        ok = (ra >= 0) & (rb >= 0) & (ra != rb)
        self.relations = Timeline.build(np.concatenate([ra[ok], rb[ok]]), np.concatenate([since[ok]] * 2),
                                        other=np.concatenate([rb[ok], ra[ok]]), relation=np.concatenate([kind[ok]] * 2))
        self.rel_pairs = np.minimum(ra[ok], rb[ok]) * SHIFT + np.maximum(ra[ok], rb[ok])
        self.rel_pair_kind = kind[ok]
        self.rel_pair_since = since[ok]

    # ------------------------------------------------------------------ attributes over time
    def _build_attributes(self, ds: Dataset, p: pd.DataFrame) -> None:
        """Each canonical person's hukou and employment as a step function of time.

        Per source record the contract's rule applies (latest row by t; rows but none
        by t: unknown; no rows: the persons value); a canonical person takes the first
        non-null value of its records in person_id order, as for the static attributes.
        Only people with rows get a timeline; the rest keep the static value.
        """
        self.attr_timelines: dict[str, Timeline] = {}
        hist = attribute_history(ds.persons, ds.person_attributes)
        for attr in ATTRIBUTES:
            if not len(hist):
                self.attr_timelines[attr] = Timeline.build([], [], value=np.array([], dtype=object))
                continue
            h = hist[hist["attribute"] == attr]
            h = h.assign(_k=self.pid_to_int.reindex(h["person_id"]).to_numpy(), t=to_secs(h["since"], ALWAYS))
            h = h[h["_k"].notna()].astype({"_k": np.int64})
            if not len(h):
                self.attr_timelines[attr] = Timeline.build([], [], value=np.array([], dtype=object))
                continue
            recs = p.loc[p["_k"].isin(h["_k"].unique()), ["person_id", "_k", attr]].astype({"person_id": object})
            recs[attr] = recs[attr].astype(object)
            steps = h[["_k", "t"]].drop_duplicates()
            grid = steps.merge(recs, on="_k").sort_values("t", kind="stable")
            hh = h[["person_id", "t", "value"]].astype({"person_id": object}).sort_values("t", kind="stable")
            # Latest step of each record at each change point of its canonical person.
            grid = pd.merge_asof(grid, hh, on="t", by="person_id", direction="backward")
            has_rows = grid["person_id"].isin(hh["person_id"]).to_numpy()
            grid["v"] = np.where(has_rows, grid["value"].to_numpy(dtype=object), grid[attr].to_numpy(dtype=object))
            grid = grid.sort_values(["_k", "t", "person_id"], kind="stable")
            val = grid.groupby(["_k", "t"], sort=False)["v"].first()
            self.attr_timelines[attr] = Timeline.build(val.index.get_level_values(0).to_numpy(np.int64),
                                                       val.index.get_level_values(1).to_numpy(np.int64),
                                                       value=val.to_numpy(dtype=object))

    def attribute_at(self, attr: str, person: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``attr`` (hukou or employment) of canonical persons at times t, by the contract's rule."""
        static = getattr(self, attr)[person] if len(person) else np.array([], dtype=object)
        tl = self.attr_timelines[attr]
        if not len(tl) or not len(person):
            return static
        start, stop = tl.bounds(person, None, t)
        has = stop > start
        return np.where(has, tl.payload["value"][np.maximum(stop - 1, 0)], static)

    def danger_columns(self) -> list[int]:
        """Columns of the lexicon matrix that signal danger (threat, revenge, weapon, violence)."""
        return [self.lexicon.signals.index(s) for s in ("threat", "revenge", "weapon", "violence")
                if s in self.lexicon.signals]

    # ------------------------------------------------------------------ helpers used by families
    def incident_positions(self, ids) -> np.ndarray:
        """Integer positions of incident ids (-1 when not in the history)."""
        return positions(self.incidents, ids)

    def person_ints(self, party_ids) -> np.ndarray:
        """Canonical person numbers of raw person_ids (-1 when unknown)."""
        return self.codes_at(positions(self._pid_index, party_ids))

    def place_positions(self, ids) -> np.ndarray:
        """Positions of place ids (-1 when missing or not in the history)."""
        return positions(self.places, ids)

    def org_positions(self, ids) -> np.ndarray:
        """Positions of organisation ids (-1 when not in the history)."""
        return positions(self.orgs, ids)

    def mediation_positions(self, ids) -> np.ndarray:
        """Positions of mediation ids (-1 when not in the history)."""
        return positions(self.med_ids, ids)


def history_index(ds: Dataset, lexicon: Lexicon | None = None, *, fork: bool = False) -> HistoryIndex:
    """The HistoryIndex of ``ds`` with ``lexicon`` (default: the shipped one), built once
    and cached on the dataset (``fork``: see :class:`HistoryIndex`; the index is the same)."""
    idx = ds.cache.get("history_index")
    want = lexicon or load_lexicon()
    if idx is None or (idx.lexicon is not want and idx.lexicon != want):
        idx = HistoryIndex(ds, lexicon, fork=fork)
        ds.cache["history_index"] = idx
    return idx
