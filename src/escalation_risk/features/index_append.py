"""Appending records to a built :class:`~.index.HistoryIndex` without re-indexing the district.

A service adds each day's records as they come (``Scorer.add``). Re-building the index
re-sorts every timeline of the district; here only the records that change are read:

1. The *touched* incidents are the new ones, the existing ones that get a new party,
   mediation or note, and the existing ones a new record names as its ``related_incident_id``.
2. A small index is built, by the very build code of :class:`HistoryIndex`, over the
   touched incidents with all their parties and mediations, the new rows of the other
   tables, and only the people, places, organisations and households they mention.
3. Its numbers (incident, person, pair, place, grid, organisation, household,
   mediation) are mapped onto the big index's, new entities appended at the end.
4. Each timeline of the big index loses the events that came from a touched existing
   incident (found among the events of that incident's own persons, pairs, organisations,
   place, grid or followed-up record: binary searches, no pass over the timeline) and
   gains the small index's events, as a :class:`~.delta.DeltaTimeline`:
   the big sorted arrays stay as they are, the drops and the new events live in a
   small delta merged into them on a threshold (see :mod:`.delta`); the counterparty
   ties of the pairs involved are recomputed from the pair timeline. Per-incident and
   other per-entity arrays grow through spare capacity (:func:`~escalation_risk.capacity.grow`).

The history itself is a :class:`~.delta.Stacked` (the loaded tables plus the rows added
since), read by position: nothing in an add is proportional to the district.

The result is a new index (the old one is left untouched, so a reader holding it keeps
one consistent history) whose features equal those of an index built from scratch on
the same data; tests hold the two equal. Everything an index holds is listed in
:data:`TIMELINES` and :data:`PER_INCIDENT`; an index with parts not listed (a build
function grew a new one) makes :func:`append_to_index` return None, and the caller
re-builds, so a forgotten part costs time, never correctness.

New people are linked against the existing ones incrementally
(:mod:`escalation_risk.linking.incremental`: their keys blocked against the district's
sorted block keys, scored with the parameters of the linkage that made the index's keys,
frozen; a rebuild re-estimates them, as the night does). If a new record links two
people who had separate keys (or splits one), or new ``person_attributes`` rows arrive
(their timelines are per canonical person over all its records), the index is re-built
(by the caller: ``Scorer`` does it on a background thread by default). The persons' part
is :mod:`.grown_persons`; folding a grown index's deltas, :mod:`.index_fold`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import normalize
from ..capacity import grow, reserve
from ..contract import TABLES
from ..dataset import Dataset
from ..dataset.parsing import empty_table
from ..lookup import id_positions
from .delta import DeltaTimeline, Stacked, entity_positions
from .grown_persons import LINKAGE, PERSON_COLUMNS, _grown, _keys_at, append_persons, link_state
from .id_index import IdIndex, positions_or_new
from .index import HistoryIndex
from .text_column import TextColumn
from .timeline import NEVER, SHIFT, Timeline, join_on, unique_keys

# timeline -> (kind of its entity, {payload column: kind}); None = a plain value.
# "src" marks where the incident an event comes from is: "ent" or a payload column.
TIMELINES: dict[str, tuple[str, dict[str, str | None], str | None]] = {
    "party_inc": ("inc", {"person": "person", "role": None}, "ent"),
    "org_party_inc": ("inc", {"org": "org"}, "ent"),
    "pair_events": ("pair", {"inc": "inc", "police": None}, "inc"),
    "followups": ("inc", {"inc": "inc", "kind": None}, "inc"),
    "mediations": ("inc", {"failed": None, "mid": "med"}, "ent"),
    "place_events": ("place", {"inc": "inc"}, "inc"),
    "place_violent": ("place", {"inc": "inc"}, "inc"),
    "place_disputes": ("place", {"inc": "inc"}, "inc"),
    "grid_events": ("grid", {"inc": "inc"}, "inc"),
    "grid_violent": ("grid", {"inc": "inc"}, "inc"),
    "org_disputes": ("org", {"inc": "inc", "closed": None}, "inc"),
    "flags": ("person", {"flag": None}, None),
    "memberships": ("person", {"household": "household", "end": None}, None),
    "members": ("household", {"person": "person", "end": None}, None),
    "relations": ("person", {"other": "person", "relation": None}, None),
    "notes": ("inc", {"row": "note"}, "ent"),
}
PERSON_EVENTS = ("person", {"inc": "inc"}, "inc")  # every idx.person_events[k]
# Per-incident arrays, appended for new incidents (kind when the values are numbers of something).
PER_INCIDENT: dict[str, str | None] = {
    "inc_kind": None, "inc_category": None, "inc_source": None, "inc_rep": None, "inc_occ": None,
    "inc_closed": None, "inc_amount": None, "inc_place": "place", "inc_related": "inc", "inc_signals": None,
    "inc_desc": None,
    "inc_violent": None, "inc_danger": None,
}
OTHER = {
    "append_cache", "lexicon", "person_key", "persons", "pid_to_int", "_pid_index", "_pid_codes", "birth_year",
    "gender", "hukou", "employment", "places", "grids", "place_grid", "places_type", "orgs", "org_type", "incidents",
    "inc_person", "pairs", "counterparties", "med_ids", "person_events", "households", "household_place",
    "household_tenure", "rel_pairs", "rel_pair_kind", "rel_pair_since", "attr_timelines", "inc_person_t",
    "note_ids", "note_signals", "note_text", "_joined_person_key", "_joined_pid_to_int",
}
KNOWN = set(TIMELINES) | set(PER_INCIDENT) | OTHER


def _grown_column(arr, extra):
    """``arr`` followed by ``extra``, through spare capacity; a text column keeps its Arrow
    part as it is (:meth:`~.text_column.TextColumn.grown`)."""
    return arr.grown(extra) if isinstance(arr, TextColumn) else grow(arr, extra)


def _remap(values: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Numbers of the small index as numbers of the big one (-1 stays -1)."""
    values = np.asarray(values, dtype=np.int64)
    out = np.full(len(values), -1, dtype=np.int64)
    ok = values >= 0
    out[ok] = mapping[values[ok]]
    return out


def _member(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """values in ``sorted_keys`` (sorted): one binary search per value, no sort of ``values``."""
    if not len(sorted_keys):
        return np.zeros(len(values), bool)
    pos = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[pos] == values


def _rows_by_incident(idx: HistoryIndex, history: Stacked, name: str, n_base: int) -> Timeline | DeltaTimeline:
    """Row positions of ``name`` (incident_parties, mediations, incident_notes) by incident
    position, built once per scorer (a pass over the table's first ``n_base`` rows, those
    ``idx`` indexes) and then grown with each append."""
    rows = idx.append_cache.get(name)
    if rows is None:
        n_inc = len(idx.incidents)
        base, base_inc = getattr(history.base, name), history.base.incidents
        if n_base <= len(base) and n_inc <= len(base_inc):
            # Arrow's hash look-up over the loaded columns: no Python object per id (seconds
            # at a million people through pandas, the first add's cost).
            inc = id_positions(base_inc["incident_id"].iloc[:n_inc], base["incident_id"].iloc[:n_base])
        else:
            inc = idx.incidents.get_indexer(history.column(name, "incident_id", 0, n_base))
        rows = Timeline.build(inc, np.zeros(len(inc), np.int64), row=np.arange(len(inc)))
        idx.append_cache[name] = rows
    return rows


def prepare(idx: HistoryIndex, history: Dataset | Stacked) -> None:
    """Build what the first add to ``idx`` (the index of ``history``) would otherwise build
    on its path: the rows of each party, mediation and note table by incident, the
    linkage state, and the one-off loads of the add's rules."""
    if isinstance(history, Dataset):
        history = Stacked(history)
    for name in ("incident_parties", "mediations", "incident_notes"):
        _rows_by_incident(idx, history, name, history.n(name))
    if len(idx.person_key) == history.n("persons"):
        link_state(idx, history)
    _warm_loads()


def _warm_loads() -> None:
    """Load now what an add loads on first use, once per process (~0.7 s, then ~2 ms): the
    contract's empty tables and the person rules' tables (pypinyin's dictionary and
    segmenter). A history loaded with forked children never loaded them in this process,
    so the first add after a build paid them."""
    for name in TABLES:
        empty_table(name)
    # A made-up record (no person's identifiers), under a throwaway key; the keys are dropped.
    normalize.linkage_keys(pd.DataFrame({"name": ["張三 Li"], "id_number": ["11010119900307001X"],
                                         "phone": ["+86 138 0000 0000"]}), b"warm" * 8)


#: The arrays every add grows by its rows (an incident, its parties' arrivals, maybe a person).
GROWN_BY_ADDS = (*PER_INCIDENT, "note_signals", "inc_person_t", "_pid_codes", *(c for c, _ in PERSON_COLUMNS))


def reserve_room(idx: HistoryIndex) -> None:
    """Give each array of ``idx`` that adds grow (:data:`GROWN_BY_ADDS`) room for 1/16 more
    rows, so adds write into it (:func:`~escalation_risk.capacity.grow`) instead of the
    first one copying each of them: 0.3 s of the first add after a build at a million people,
    paid here, off the add's path, for ~6% more memory in those arrays (the first add's
    copies doubled them). The values are unchanged: call it before ``idx`` is published."""
    for name in GROWN_BY_ADDS:
        arr = getattr(idx, name, None)
        if isinstance(arr, np.ndarray):
            setattr(idx, name, reserve(arr, len(arr) // 16 + 1024))


def _edit(tl: Timeline | DeltaTimeline, column: str | None, touched: np.ndarray, add: Timeline, fold: bool = True,
          ents: np.ndarray | None = None) -> Timeline | DeltaTimeline:
    """``tl`` without the events whose ``column`` ("ent" or a payload column; None: none)
    is one of the ``touched`` numbers (sorted), with ``add``'s events after equal keys
    (compacted past its limit only when ``fold``). For a payload column, ``ents`` are the
    entities whose events may hold a touched number (a superset is fine): the base events
    are looked for among theirs, by binary searches on the sorted key, never by a pass
    over (or a sort of) the whole timeline."""
    d = DeltaTimeline.of(tl)
    if column is None or not len(touched):
        return d.edit(np.zeros(0, np.int64), None, add, fold=fold)
    if column == "ent":
        base_drop = entity_positions(d.base, touched)
    else:
        if ents is None:
            raise ValueError(f"dropping by {column!r} needs the entities that hold those events")
        near = entity_positions(d.base, ents)
        base_drop = near[_member(np.asarray(d.base.payload[column][near], np.int64), touched)]
    delta_col = d.delta.ent if column == "ent" else d.delta.payload[column]
    return d.edit(base_drop, _member(np.asarray(delta_col, np.int64), touched), add, fold=fold)


def _entities_of(idx: HistoryIndex, old: np.ndarray) -> dict[str, np.ndarray]:
    """By kind, the entities whose timelines hold the events of the existing incidents
    ``old`` (sorted positions), read from ``idx`` itself: their persons (party_inc) and the
    pairs among them, their organisations, places, grids and the records they follow up.
    Every event of an incident is filed under one of these (the build derives them from the
    same parties and incident rows, which an add never rewrites; a linkage change re-builds),
    so the events to drop are found among a few entities' events."""
    none = np.zeros(0, np.int64)
    if not len(old):
        return dict.fromkeys(("person", "pair", "org", "place", "grid", "inc"), none)
    every = np.full(len(old), NEVER)
    pi = idx.party_inc
    _, pos = pi.expand(old, None, every)
    owner = np.asarray(pi.ent[pos], np.int64)
    person = np.asarray(pi.payload["person"][pos], np.int64)
    x, y = join_on(owner, owner)
    keep = person[x] < person[y]
    pair_keys = unique_keys(person[x][keep] * SHIFT + person[y][keep])
    pairs = IdIndex.of(idx.pairs).get_indexer(pair_keys) if len(pair_keys) else none
    op = idx.org_party_inc
    _, opos = op.expand(old, None, every)
    place = np.asarray(idx.inc_place[old], np.int64)
    place = place[place >= 0]
    related = np.asarray(idx.inc_related[old], np.int64)
    return {"person": np.unique(person), "pair": pairs[pairs >= 0],
            "org": np.unique(np.asarray(op.payload["org"][opos], np.int64)), "place": np.unique(place),
            "grid": np.unique(np.asarray(idx.place_grid[place], np.int64)), "inc": related[related >= 0]}


def _touched(idx: HistoryIndex, added: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """(ids of the new incidents, positions of the existing incidents the new rows touch)."""
    new_inc = added.get("incidents")
    new_ids = new_inc["incident_id"].to_numpy(dtype=object) if new_inc is not None else np.array([], object)
    mentioned = [new_inc["related_incident_id"].dropna().to_numpy(dtype=object)] if new_inc is not None else []
    for name in ("incident_parties", "mediations", "incident_notes"):
        if name in added:
            mentioned.append(added[name]["incident_id"].to_numpy(dtype=object))
    ids = np.concatenate(mentioned) if mentioned else np.array([], object)
    old = idx.incidents.get_indexer(pd.unique(ids)) if len(ids) else np.array([], np.int64)
    return new_ids, np.unique(old[old >= 0])


def append_to_index(idx: HistoryIndex, history: Dataset | Stacked, added: dict[str, pd.DataFrame], *,
                    fold: bool = True) -> HistoryIndex | None:
    """The index of ``history`` (the old history plus the validated rows ``added``, by
    table, at its end), built from ``idx`` (the index of the old history) by touching
    only what the new rows change. None when it cannot (an index part it does not know,
    or a new record that joins two people who had separate keys or splits one): re-build then.
    With ``fold`` False no timeline is compacted here, whatever its delta (see
    :func:`fold_index`)."""
    if isinstance(history, Dataset):
        history = Stacked(history)
    if set(vars(idx)) - KNOWN:
        return None
    if "person_attributes" in added:
        return None  # attribute timelines are per canonical person over all its records: re-build
    out = _grown(idx)

    # ---------------------------------------------------------------- people, places, organisations
    if "persons" in added and len(added["persons"]) and not append_persons(out, idx, history, added["persons"]):
        return None  # a new record links two known people (or splits one): their histories merge
    if "places" in added and len(added["places"]):
        pl = added["places"]
        out.places = IdIndex.of(idx.places).append(pl["place_id"].to_numpy(dtype=object))
        g, out.grids = positions_or_new(idx.grids, pl["grid_id"].to_numpy(dtype=object))
        out.place_grid = grow(idx.place_grid, g)
        out.places_type = grow(idx.places_type, pl["place_type"].astype(object).to_numpy())
    if "organizations" in added and len(added["organizations"]):
        o = added["organizations"]
        out.orgs = IdIndex.of(idx.orgs).append(o["org_id"].to_numpy(dtype=object))
        out.org_type = grow(idx.org_type, o["org_type"].astype(object).to_numpy())
    if "households" in added and len(added["households"]):
        h = added["households"]
        out.households = IdIndex.of(idx.households).append(h["household_id"].to_numpy(dtype=object))
        out.household_place = grow(idx.household_place, out.places.get_indexer(h["place_id"].to_numpy(dtype=object)))
        out.household_tenure = grow(idx.household_tenure, h["tenure"].astype(object).to_numpy())

    # ---------------------------------------------------------------- the small index
    new_ids, old_pos = _touched(idx, added)
    inc_ids = np.concatenate([IdIndex.of(idx.incidents).take(old_pos), new_ids])
    sub_inc = history.rows("incidents", np.concatenate([old_pos, len(idx.incidents) + np.arange(len(new_ids))]))
    if not (sub_inc["incident_id"].to_numpy(dtype=object) == inc_ids).all():
        return None  # the history is not the old one plus the new rows at the end
    # A touched incident's related record is not re-indexed, only named: drop the link in the
    # small index (it is kept as a position in the big one below).
    related = sub_inc["related_incident_id"]
    sub_inc = sub_inc.assign(related_incident_id=related.where(related.isin(inc_ids)))
    tables: dict[str, pd.DataFrame] = {}
    row_maps: dict[str, Timeline | DeltaTimeline] = {}
    for name in ("incident_parties", "mediations", "incident_notes"):
        n_all = history.n(name)
        n_base = n_all - len(added.get(name, ()))
        rows = _rows_by_incident(idx, history, name, n_base)
        _, pos = rows.expand(old_pos, None, np.zeros(len(old_pos), np.int64))
        new_rows = np.arange(n_base, n_all)
        tables[name] = history.rows(name, np.concatenate([rows.payload["row"][pos], new_rows]))
        new_ids_of = history.column(name, "incident_id", n_base, n_all)
        new_inc = idx.incidents.get_indexer(new_ids_of) if len(new_rows) else np.zeros(0, np.int64)
        new_inc = np.where(new_inc >= 0, new_inc, len(idx.incidents) + pd.Index(new_ids).get_indexer(new_ids_of))
        row_maps[name] = _edit(rows, None, old_pos,
                               Timeline.build(new_inc, np.zeros(len(new_rows), np.int64), row=new_rows), fold)
    tables["incidents"] = sub_inc
    for name in ("person_flags", "household_members", "relations"):
        tables[name] = added.get(name, history.rows(name, []))
    hh = out.households.get_indexer(pd.unique(tables["household_members"]["household_id"].to_numpy(dtype=object)))
    tables["households"] = history.rows("households", np.sort(hh[hh >= 0]))
    parties = tables["incident_parties"]
    pids = pd.unique(np.concatenate([
        parties.loc[parties["party_type"] == "person", "party_id"].to_numpy(dtype=object),
        tables["person_flags"]["person_id"].to_numpy(dtype=object),
        tables["household_members"]["person_id"].to_numpy(dtype=object),
        tables["relations"]["person_a"].to_numpy(dtype=object),
        tables["relations"]["person_b"].to_numpy(dtype=object)]))

    def rows_of(index: pd.Index | IdIndex, table: str, ids: np.ndarray) -> pd.DataFrame:
        pos = index.get_indexer(pd.unique(ids)) if len(ids) else np.zeros(0, np.int64)
        return history.rows(table, np.sort(pos[pos >= 0]))

    persons = rows_of(out._pid_index, "persons", pids)
    place_ids = np.concatenate([sub_inc["place_id"].dropna().to_numpy(dtype=object),
                                tables["households"]["place_id"].dropna().to_numpy(dtype=object)])
    places = rows_of(out.places, "places", place_ids)
    orgs = rows_of(out.orgs, "organizations",
                   parties.loc[parties["party_type"] == "organization", "party_id"].to_numpy(dtype=object))
    sub_ds = Dataset(persons=persons, places=places, organizations=orgs,
                     person_attributes=history.rows("person_attributes", []), **tables)
    # Keys by position (the index's ids and its person_key are in one order): no hash table of
    # a district's ids rebuilt when the key grew.
    at = out._pid_index.get_indexer(persons["person_id"].to_numpy(dtype=object))
    sub_ds.cache["person_key"] = pd.Series(_keys_at(out, at), index=persons["person_id"].to_numpy(dtype=object),
                                           name="person_key", dtype=object)
    sub = HistoryIndex(sub_ds, idx.lexicon)
    if set(vars(sub)) - KNOWN:
        return None

    # ---------------------------------------------------------------- small numbers -> big numbers
    n_old = len(idx.incidents)
    maps = {
        "inc": np.concatenate([old_pos, n_old + np.arange(len(new_ids))]).astype(np.int64),
        "person": out.persons.get_indexer(sub.persons),
        "place": out.places.get_indexer(sub.places),
        "grid": out.grids.get_indexer(sub.grids),
        "org": out.orgs.get_indexer(sub.orgs),
        "household": out.households.get_indexer(sub.households),
    }
    med_pos, out.med_ids = positions_or_new(idx.med_ids, sub.med_ids.to_numpy(dtype=object))
    maps["med"] = med_pos
    note_pos, out.note_ids = positions_or_new(idx.note_ids, sub.note_ids.to_numpy(dtype=object))
    maps["note"] = note_pos
    fresh = note_pos >= len(idx.note_ids)
    order = np.argsort(note_pos[fresh], kind="stable")
    out.note_signals = grow(idx.note_signals, sub.note_signals[fresh][order])
    out.note_text = _grown_column(idx.note_text, sub.note_text[fresh][order])  # object dtype: no truncation
    sa, sb = sub.pairs.to_numpy() // SHIFT, sub.pairs.to_numpy() % SHIFT
    a, b = _remap(sa, maps["person"]), _remap(sb, maps["person"])
    pair_keys = np.minimum(a, b) * SHIFT + np.maximum(a, b)
    maps["pair"], out.pairs = positions_or_new(idx.pairs, pair_keys)

    # New incidents' own arrays, in the big index's numbers.
    out.incidents = IdIndex.of(idx.incidents).append(new_ids)
    is_new = np.arange(len(old_pos), len(inc_ids))
    for name, kind in PER_INCIDENT.items():
        v = getattr(sub, name)[is_new]
        if kind is not None:
            v = _remap(v, maps[kind])
        setattr(out, name, _grown_column(getattr(idx, name), v))
    # A new record naming an incident outside the small index: its position in the big one
    # (written into the grown part only: the old index's arrays end before it).
    rel_ids = history.column("incidents", "related_incident_id", n_old, history.n("incidents"))
    out.inc_related[n_old:] = out.incidents.get_indexer(rel_ids)
    keys = np.asarray(sub.inc_person.to_numpy(), dtype=np.int64)
    ip = _remap(keys // SHIFT, maps["inc"]) * SHIFT + _remap(keys % SHIFT, maps["person"])
    have = IdIndex.of(idx.inc_person)
    at = have.get_indexer(ip)
    out.inc_person = have.append(ip[at < 0])
    # Arrival of each person on each incident, aligned with inc_person's positions.
    out.inc_person_t = grow(idx.inc_person_t, sub.inc_person_t[at < 0])
    again = at >= 0
    if (out.inc_person_t[at[again]] != sub.inc_person_t[again]).any():
        # A known person's arrival on a touched incident moved: copy, never write into the
        # old index's part of a shared buffer.
        out.inc_person_t = out.inc_person_t.copy()
        out.inc_person_t[at[again]] = sub.inc_person_t[again]

    # ---------------------------------------------------------------- timelines
    old_sorted = np.sort(old_pos)
    entities = _entities_of(idx, old_sorted)

    def merged(big: Timeline | DeltaTimeline, small: Timeline | DeltaTimeline, spec) -> Timeline | DeltaTimeline:
        ent_kind, payload, src = spec
        ent = _remap(np.asarray(small.ent), maps[ent_kind])  # the small index is built plain
        pay = {k: (_remap(np.asarray(v), maps[kind]) if kind else v) for k, v in small.payload.items()
               for kind in [payload.get(k)]}
        return _edit(big, src, old_sorted, Timeline.build(ent, small.t, **pay), fold, entities.get(ent_kind))

    for name, spec in TIMELINES.items():
        setattr(out, name, merged(getattr(idx, name), getattr(sub, name), spec))
    # Records of the small index naming an incident outside it: their follow-up events
    # (the small index dropped those links; the removal above dropped the old events).
    src = maps["inc"]
    target = out.inc_related[src]
    outside = (target >= 0) & ~_member(target, np.sort(src))
    if outside.any():
        src = src[outside]
        out.followups = _edit(out.followups, None, src, Timeline.build(
            out.inc_related[src], out.inc_rep[src], inc=src, kind=out.inc_kind[src]), fold)
    out.person_events = dict(idx.person_events)
    for k, tl in sub.person_events.items():
        out.person_events[k] = merged(idx.person_events[k], tl, PERSON_EVENTS)

    # Counterparty ties of the pairs involved: the first record of each pair, from pair_events.
    touched_pairs = np.unique(maps["pair"])
    pe = out.pair_events
    start, stop = pe.bounds(touched_pairs, None, np.full(len(touched_pairs), NEVER))
    has = stop > start
    first_t = pe.t[np.minimum(start, max(len(pe.t) - 1, 0))][has] if len(pe.t) else np.zeros(0, np.int64)
    keys = out.pairs.take(touched_pairs)
    pa, pb = keys // SHIFT, keys % SHIFT
    cp = DeltaTimeline.of(idx.counterparties)
    gone = np.sort(np.concatenate([pa * SHIFT + pb, pb * SHIFT + pa]))
    # The ties of those pairs: among the events of their persons (binary searches, no scan).
    near = entity_positions(cp.base, np.concatenate([pa, pb]))
    base_drop = near[_member(cp.base.ent[near] * SHIFT + cp.base.payload["other"][near], gone)]
    delta_drop = _member(cp.delta.ent * SHIFT + cp.delta.payload["other"], gone)
    out.counterparties = cp.edit(base_drop, delta_drop, Timeline.build(
        np.concatenate([pa[has], pb[has]]), np.concatenate([first_t] * 2),
        other=np.concatenate([pb[has], pa[has]])), fold=fold)

    # Relations' pair keys.
    if len(sub.rel_pairs):
        rk = sub.rel_pairs
        ra, rb = _remap(rk // SHIFT, maps["person"]), _remap(rk % SHIFT, maps["person"])
        out.rel_pairs = grow(idx.rel_pairs, np.minimum(ra, rb) * SHIFT + np.maximum(ra, rb))
        out.rel_pair_kind = grow(idx.rel_pair_kind, sub.rel_pair_kind)
        out.rel_pair_since = grow(idx.rel_pair_since, sub.rel_pair_since)
    out.append_cache = {**row_maps, **{k: v for k, v in out.append_cache.items() if k == LINKAGE}}
    return out
