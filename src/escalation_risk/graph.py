"""People, households, places, organisations and incidents as one graph (人、房、企、事、物).

Two faces over the same tables, for two jobs:

- :func:`person_edges` and :func:`adjacency` give the person–person ties of a whole
  district as a DataFrame or a scipy sparse matrix. They are vectorised (pandas and
  numpy on integer codes, no Python loop per person or incident) and serve the
  district-wide network features: about a million persons and two million
  incidents take minutes and a few GB.
- :func:`build_graph` gives a networkx ``MultiDiGraph`` with typed nodes and
  edges, for exploration and for the neighbourhood of a single dispute
  (:func:`neighbourhood`, :func:`draw_neighbourhood`). networkx keeps a Python
  dict per node and edge, so a whole large district is slow and memory hungry
  there; build it for a town or a sample, or cut the Dataset first.

Persons are always canonical keys from :func:`escalation_risk.linking.link_persons`:
several ``person_id`` records of one person are one row, one column, one node.

Point in time: every function taking ``as_of`` uses only what was known then, by
the availability rules of :mod:`escalation_risk.known` (``reported_at``,
``added_at``, ``recorded_at``, ``start_date``, ``end_date``, ``since``, and the
group-size cap judged at each person's arrival). Persons, places, households and
organisations are always present; a person's hukou and employment are as they stood.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, csr_matrix

from .clock import to_moment
from .dataset import Dataset
from .known import (
    MAX_GROUP,
    attributes_at,
    known_incidents,
    known_members,
    known_parties,
    member_at,
    not_after,
    party_since,
    tie_members,
)
from .linking import link_persons

EDGE_COLUMNS = ["a", "b", "kind", "start", "end", "weight"]
BASE_KINDS = ("household", "relation", "co_incident")
# Above MAX_GROUP distinct persons (judged at each arrival, known.tie_members), an
# incident (a mass wage dispute, a petition signed by a whole village) or a household
# (a factory dormitory registered as one collective household) says little about any
# one pair and would add n²/2 ties.
NODE_TYPES = ("person", "household", "place", "grid", "org", "incident")
EDGE_TYPES = ("member_of", "lives_at", "located_at", "in_grid", "party_to", "related_to", "relation")

_I8_MIN = np.iinfo(np.int64).min  # NaT's int64 value: a null start sorts as "since forever"
_I8_MAX = np.iinfo(np.int64).max  # stands for a null end ("still running") in min/max arithmetic


# --------------------------------------------------------------------------- helpers

def _ns(s: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds; NaT becomes int64 min."""
    return s.astype("datetime64[ns]").to_numpy().view("int64")


def _ts(a: np.ndarray) -> np.ndarray:
    """int64 nanoseconds back to datetime64[ns]; either sentinel becomes NaT."""
    a = np.where(a == _I8_MAX, _I8_MIN, a)
    return a.view("datetime64[ns]")


def _as_of_ns(as_of) -> int | None:
    if as_of is None:
        return None
    t = to_moment(as_of, what="as_of")
    return int(t.as_unit("ns").value)


def _person_codes(ds: Dataset) -> tuple[pd.Series, pd.Index, pd.Index, np.ndarray]:
    """(person_key by person_id, sorted canonical keys, person_id index, code per person_id).

    Codes are positions in the sorted key index, so ``code_a < code_b`` iff
    ``key_a < key_b``: pairs can be ordered on integers and still meet ``a < b``.
    """
    if "graph_person_codes" not in ds.cache:
        pk = link_persons(ds)
        keys = pd.Index(np.sort(pd.unique(pk.to_numpy(dtype=object))), dtype=object, name="person_key")
        code = keys.get_indexer(pk.to_numpy(dtype=object)).astype(np.int64)
        ds.cache["graph_person_codes"] = (pk, keys, pd.Index(pk.index), code)
    return ds.cache["graph_person_codes"]


def _codes_of(ds: Dataset, person_ids: pd.Series) -> np.ndarray:
    """Canonical code of each person_id (-1 where the id is not a person)."""
    _, _, pid_index, code = _person_codes(ds)
    pos = pid_index.get_indexer(person_ids.to_numpy(dtype=object))
    return np.where(pos >= 0, code[pos], -1)


def _pairs_within(group: np.ndarray, person: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (i, j) of every two rows sharing a group, with person[i] < person[j].

    Groups with more than ``cap`` distinct persons are skipped. Done by sorting on
    the group and pairing each row with the rows after it in its run, so memory is
    the number of pairs, not a merge's intermediate.
    """
    if len(group) == 0:
        return np.array([], np.int64), np.array([], np.int64)
    df = pd.DataFrame({"g": group, "p": person})
    n_distinct = df.groupby("g")["p"].transform("nunique").to_numpy()
    rows = np.flatnonzero(n_distinct <= cap)
    order = rows[np.argsort(group[rows], kind="stable")]
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, len(g)])
    # For a run of size s, row r (offset o in the run) pairs with offsets o+1..s-1.
    after = np.repeat(starts + sizes, sizes) - np.arange(len(g)) - 1
    i = np.repeat(np.arange(len(g)), after)
    # offset of j from i: 1..after[i], built without a loop as a running counter.
    first = np.cumsum(after) - after
    j = i + (np.arange(len(i)) - np.repeat(first, after)) + 1
    i, j = order[i], order[j]
    pi, pj = person[i], person[j]
    keep = pi != pj
    i, j, pi, pj = i[keep], j[keep], pi[keep], pj[keep]
    swap = pi > pj
    return np.where(swap, j, i), np.where(swap, i, j)


def _household_ties(ds: Dataset) -> pd.DataFrame:
    """Overlapping co-memberships: a, b (codes), start, end (int64 ns with sentinels)."""
    hm = ds.household_members
    p = _codes_of(ds, hm["person_id"])
    h = pd.factorize(hm["household_id"])[0]
    s = _ns(hm["start_date"])
    e = _ns(hm["end_date"])
    e = np.where(e == _I8_MIN, _I8_MAX, e)
    ok = p >= 0
    g, gp, _ = tie_members(h[ok], p[ok], s[ok], MAX_GROUP)
    width = np.int64(len(_person_codes(ds)[1]) + 1)
    ok &= np.isin(h * width + p, g * width + gp)  # members within the cap at their arrival
    idx = np.flatnonzero(ok)
    i, j = _pairs_within(h[idx], p[idx], np.iinfo(np.int64).max)
    i, j = idx[i], idx[j]
    start, end = np.maximum(s[i], s[j]), np.minimum(e[i], e[j])
    overlap = start < end
    out = pd.DataFrame({"a": p[i][overlap], "b": p[j][overlap], "start": start[overlap], "end": end[overlap]})
    return out.drop_duplicates(ignore_index=True)


def _relation_ties(ds: Dataset) -> pd.DataFrame:
    """One row per (a, b, relation): a, b (codes), relation, start (earliest since; NaT first)."""
    rel = ds.relations
    pa_, pb_ = _codes_of(ds, rel["person_a"]), _codes_of(ds, rel["person_b"])
    since = _ns(rel["since"])
    ok = (pa_ >= 0) & (pb_ >= 0) & (pa_ != pb_)
    out = pd.DataFrame({"a": np.minimum(pa_, pb_)[ok], "b": np.maximum(pa_, pb_)[ok],
                        "relation": rel["relation"].astype(object).to_numpy()[ok], "start": since[ok]})
    # int64 min is NaT, so min() keeps "since before the data" over any date.
    return out.groupby(["a", "b", "relation"], as_index=False, sort=True)["start"].min()


def _incident_pair_rows(ds: Dataset) -> pd.DataFrame:
    """One row per (pair of person parties, incident): a, b (codes), t (ns: when the later of
    the two was on the incident, its reported_at unless added later)."""
    ip = ds.incident_parties
    ip = ip[ip["party_type"] == "person"]
    p = _codes_of(ds, ip["party_id"])
    inc = ds.incidents
    ipos = pd.Index(inc["incident_id"]).get_indexer(ip["incident_id"].to_numpy(dtype=object))
    since = _ns(party_since(ip, inc))
    ok = (p >= 0) & (ipos >= 0)
    g, p, s = tie_members(ipos[ok], p[ok], since[ok], MAX_GROUP)
    i, j = _pairs_within(g, p, np.iinfo(np.int64).max)
    return pd.DataFrame({"a": p[i], "b": p[j], "t": np.maximum(s[i], s[j])})


def _cached(ds: Dataset, name: str, fn):
    key = ("graph", name, MAX_GROUP)
    if key not in ds.cache:
        ds.cache[key] = fn(ds)
    return ds.cache[key]


def _check_kinds(kinds: Iterable[str] | None) -> list[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = list(kinds)
    bad = [k for k in kinds if k.split(":", 1)[0] not in BASE_KINDS]
    if bad:
        raise ValueError(f"kinds must name {', '.join(BASE_KINDS)} or 'relation:<code>', got {bad}")
    return kinds


def _wanted(kind: str, kinds: list[str] | None) -> bool:
    return kinds is None or any(k == kind or k.startswith(kind + ":") or kind.startswith(k + ":")
                                for k in kinds)


def _edge_codes(ds: Dataset, as_of=None, kinds: Iterable[str] | None = None) -> pd.DataFrame:
    """person_edges on integer codes: a, b, kind (str), start, end (int64 ns), weight."""
    t = _as_of_ns(as_of)
    kinds = _check_kinds(kinds)
    parts = []
    if _wanted("household", kinds):
        h = _cached(ds, "household", _household_ties)
        if t is not None:
            h = h[member_at(h["start"], h["end"], t)]
        parts.append(h.assign(kind="household", weight=1))
    if _wanted("relation", kinds):
        r = _cached(ds, "relation", _relation_ties)
        if t is not None:
            r = r[r["start"] <= t]
        r = r.assign(kind="relation:" + r["relation"].astype(str), end=_I8_MAX, weight=1)
        if kinds is not None and not any(k == "relation" for k in kinds):
            r = r[r["kind"].isin(kinds)]
        parts.append(r.drop(columns="relation"))
    if _wanted("co_incident", kinds):
        c = _cached(ds, "co_incident", _incident_pair_rows)
        if t is not None:
            c = c[c["t"] <= t]
        # One int64 per pair groups faster than two columns.
        n = np.int64(len(_person_codes(ds)[1]))
        key = c["a"].to_numpy() * n + c["b"].to_numpy()
        agg = c.groupby(key, sort=True)["t"].agg(["min", "size"])
        k = agg.index.to_numpy(np.int64)
        parts.append(pd.DataFrame({"a": k // n, "b": k % n, "start": agg["min"].to_numpy(),
                                   "end": _I8_MAX, "kind": "co_incident",
                                   "weight": agg["size"].to_numpy()}))
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype="int64") for c in ("a", "b", "start", "end", "weight")}
                            ).assign(kind=pd.Series([], dtype=object))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- vectorised ties

def person_edges(ds: Dataset, as_of=None) -> pd.DataFrame:
    """Undirected person–person ties between canonical person keys.

    Columns ``a, b, kind, start, end, weight`` with ``a < b`` and no self-loops:

    - ``household``: co-members of a household while both memberships overlap;
      ``start`` is the later start (NaT: both since before the data), ``end`` the
      earlier end (NaT: both still members). One row per overlap interval.
    - ``relation:<code>``: from the relations table; ``start`` is the earliest
      ``since`` of that pair and code (NaT: since before the data).
    - ``co_incident``: both are person parties of some incident. One row per pair,
      not per shared incident (that table is too large at district scale):
      ``start`` is the earliest moment they shared an incident (its ``reported_at``,
      or the later ``added_at`` of the two), ``weight`` the number of incidents they
      shared (known by ``as_of``). A person who joins an incident or a household that
      already had ``MAX_GROUP`` (50) persons makes no ties there
      (:func:`escalation_risk.known.tie_members`): a mass event would add n²/2 ties
      about nobody in particular.

    With ``as_of``, only ties known and still running then: ``start`` null or
    ``<= as_of`` and ``end`` null or ``> as_of``.
    """
    e = _edge_codes(ds, as_of)
    keys = _person_codes(ds)[1].to_numpy(dtype=object)
    return pd.DataFrame({
        "a": keys[e["a"].to_numpy()], "b": keys[e["b"].to_numpy()],
        "kind": pd.Categorical(e["kind"]),
        "start": _ts(e["start"].to_numpy()), "end": _ts(e["end"].to_numpy()),
        "weight": e["weight"].to_numpy(np.int64),
    }, columns=EDGE_COLUMNS)


def adjacency(ds: Dataset, as_of=None, kinds: Iterable[str] | None = None) -> tuple[csr_matrix, pd.Index]:
    """Symmetric 0/1 adjacency of canonical persons from :func:`person_edges`.

    Returns the matrix and the index of person keys labelling its rows and
    columns (every canonical person, tied or not; sorted). ``kinds`` keeps only
    some ties: ``"household"``, ``"co_incident"``, ``"relation"`` (all codes) or
    ``"relation:<code>"``.
    """
    keys = _person_codes(ds)[1]
    e = _edge_codes(ds, as_of, kinds)
    a, b = e["a"].to_numpy(np.int64), e["b"].to_numpy(np.int64)
    n = len(keys)
    m = coo_matrix((np.ones(2 * len(a), np.int32), (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    m.sum_duplicates()
    m.data[:] = 1  # several kinds or intervals between one pair are one tie here
    return m, keys


# --------------------------------------------------------------------------- networkx graph

def _records(df: pd.DataFrame) -> list[dict]:
    """Row dicts with None for missing values (networkx and JSON dislike NaT/NaN)."""
    if df.shape[1] == 0:
        return [{} for _ in range(len(df))]
    obj = df.astype(object)
    return obj.where(df.notna(), None).to_dict("records")


def _edges(g: nx.MultiDiGraph, u: pd.Series, v: pd.Series, etype: str, attrs: pd.DataFrame | None = None) -> None:
    attrs = attrs if attrs is not None else pd.DataFrame(index=u.index)
    recs = _records(attrs.reset_index(drop=True))
    for r in recs:
        r["type"] = etype
    g.add_edges_from(zip(u.to_numpy(dtype=object), v.to_numpy(dtype=object), recs))


def _nodes(g: nx.MultiDiGraph, ids: pd.Series, ntype: str, attrs: pd.DataFrame | None = None) -> None:
    attrs = attrs if attrs is not None else pd.DataFrame(index=ids.index)
    recs = _records(attrs.reset_index(drop=True))
    for r in recs:
        r["type"] = ntype
    g.add_nodes_from(zip(ids.to_numpy(dtype=object), recs))


def _prefix(prefix: str, s: pd.Series) -> pd.Series:
    return (prefix + ":" + s.astype(object).astype(str)).reset_index(drop=True)


def _memberships(ds: Dataset, as_of=None) -> pd.DataFrame:
    """household_members as known at ``as_of``: later starts dropped, later ends blanked."""
    return ds.household_members.copy() if as_of is None else known_members(ds.household_members, as_of)


def _incidents(ds: Dataset, as_of=None) -> pd.DataFrame:
    return ds.incidents if as_of is None else known_incidents(ds.incidents, as_of)


def build_graph(ds: Dataset, as_of=None) -> nx.MultiDiGraph:
    """The district as a typed ``MultiDiGraph`` (as it stood at ``as_of`` if given).

    Nodes are ``"person:<key>"`` (canonical key; ``person_ids`` lists the merged
    records; ``flags`` is a list of ``(flag, recorded_at)``), ``"household:<id>"``,
    ``"place:<id>"``, ``"grid:<id>"``, ``"org:<id>"`` and ``"incident:<id>"``
    (kind, category, occurred_at, reported_at, closed_at, source, amount), each
    with ``type``. Edges carry ``type``:

    ``member_of`` person→household (role, start, end, ended), ``lives_at``
    household→place, ``located_at`` org→place and incident→place, ``in_grid``
    place→grid, ``party_to`` person/org→incident (role, party_id), ``related_to``
    incident→its ``related_incident_id``, and ``relation`` person→person: one edge
    per relations row, from ``person_a``'s key to ``person_b``'s, with
    ``relation`` and ``since`` (the tie is undirected; read it both ways).

    ``status`` and ``description`` are left out: the status is the state at export
    time, and free text may hold personal data.

    With ``as_of``: incidents reported later are absent with their parties and
    links, parties added later are absent, a ``closed_at`` after ``as_of`` is blank,
    hukou and employment are as they stood; flags recorded later,
    relations since later and memberships starting later are absent. Memberships
    that ended by ``as_of`` are kept with ``ended=True`` (former co-residents
    matter, e.g. a separated spouse); an end after ``as_of`` is blank.
    """
    t = None if as_of is None else to_moment(as_of, what="as_of")
    g = nx.MultiDiGraph(as_of=t)
    pk, _, _, _ = _person_codes(ds)

    # Persons: one node per canonical key, attributes from its first record with a value.
    persons = ds.persons if t is None else attributes_at(ds.persons, ds.person_attributes, t)
    persons = persons.assign(person_key=persons["person_id"].map(pk))
    cols = [c for c in ("birth_year", "gender", "hukou", "employment") if c in persons.columns]
    grouped = persons.groupby("person_key", sort=True, observed=True)
    pattrs = grouped[cols].first()
    pattrs["person_ids"] = grouped["person_id"].agg(lambda s: sorted(s.astype(str)))
    flags = ds.person_flags
    if t is not None:
        flags = flags[not_after(flags["recorded_at"], t)]
    flags = flags.sort_values("recorded_at", kind="stable")
    fl = pd.Series(list(zip(flags["flag"].astype(str), flags["recorded_at"])),
                   index=flags["person_id"].map(pk).to_numpy(), dtype=object)
    by_key = fl.groupby(level=0).agg(list) if len(fl) else pd.Series(dtype=object)
    pattrs["flags"] = [by_key.get(k, []) for k in pattrs.index]
    _nodes(g, _prefix("person", pattrs.index.to_series()), "person", pattrs.reset_index(drop=True))

    places = ds.places
    _nodes(g, _prefix("grid", pd.Series(pd.unique(places["grid_id"]))), "grid")
    pcols = [c for c in ("place_type", "town", "district", "lat", "lon") if c in places.columns]
    _nodes(g, _prefix("place", places["place_id"]), "place", places[pcols])
    _edges(g, _prefix("place", places["place_id"]), _prefix("grid", places["grid_id"]), "in_grid")

    hh = ds.households
    _nodes(g, _prefix("household", hh["household_id"]), "household", hh[["tenure"]])
    _edges(g, _prefix("household", hh["household_id"]), _prefix("place", hh["place_id"]), "lives_at")

    orgs = ds.organizations
    _nodes(g, _prefix("org", orgs["org_id"]), "org", orgs[["org_type", "name"]])
    located = orgs[orgs["place_id"].notna()]
    _edges(g, _prefix("org", located["org_id"]), _prefix("place", located["place_id"]), "located_at")

    inc = _incidents(ds, as_of)
    icols = ["kind", "category", "occurred_at", "reported_at", "closed_at", "source", "amount"]
    _nodes(g, _prefix("incident", inc["incident_id"]), "incident", inc[icols])
    at = inc[inc["place_id"].notna()]
    _edges(g, _prefix("incident", at["incident_id"]), _prefix("place", at["place_id"]), "located_at")
    rel_inc = inc[inc["related_incident_id"].isin(inc["incident_id"])]
    _edges(g, _prefix("incident", rel_inc["incident_id"]), _prefix("incident", rel_inc["related_incident_id"]),
           "related_to")

    ip = ds.incident_parties
    ip = ip[ip["incident_id"].isin(inc["incident_id"])]
    if t is not None:
        ip = known_parties(ip, ds.incidents, t)
    is_person = (ip["party_type"] == "person").to_numpy()
    src = np.where(is_person, "person:" + ip["party_id"].map(pk).astype(object).astype(str),
                   "org:" + ip["party_id"].astype(object).astype(str))
    _edges(g, pd.Series(src), _prefix("incident", ip["incident_id"]), "party_to",
           ip[["role", "party_id", "added_at"]])

    hm = _memberships(ds, as_of)
    attrs = pd.DataFrame({"role": hm["role"].to_numpy(), "start": hm["start_date"].to_numpy(),
                          "end": hm["end_date"].to_numpy(), "ended": hm["end_date"].notna().to_numpy()})
    _edges(g, _prefix("person", hm["person_id"].map(pk)), _prefix("household", hm["household_id"]),
           "member_of", attrs)

    rel = ds.relations
    if t is not None:
        rel = rel[not_after(rel["since"], t, null_known=True)]
    ka, kb = rel["person_a"].map(pk), rel["person_b"].map(pk)
    rel, ka, kb = rel[ka != kb], ka[ka != kb], kb[ka != kb]
    _edges(g, _prefix("person", ka), _prefix("person", kb), "relation",
           pd.DataFrame({"relation": rel["relation"].to_numpy(), "since": rel["since"].to_numpy()}))
    return g


# --------------------------------------------------------------------------- analyst helpers

def _check_incident(ds: Dataset, incident_id: str) -> None:
    if not (ds.incidents["incident_id"] == incident_id).any():
        raise KeyError(f"no incident with incident_id {incident_id!r}")


def _ids_of(ds: Dataset, person_key: str) -> pd.Index:
    pk = _person_codes(ds)[0]
    ids = pk.index[(pk == person_key).to_numpy()]
    if len(ids) == 0:
        raise KeyError(f"no person with person_key {person_key!r}")
    return ids


def dispute_parties(ds: Dataset, dispute_id: str) -> pd.DataFrame:
    """The parties of one incident: party_id, party_type, role, person_key (persons), org_id (organisations)."""
    _check_incident(ds, dispute_id)
    pk = _person_codes(ds)[0]
    ip = ds.incident_parties
    ip = ip[ip["incident_id"] == dispute_id]
    person = ip["party_type"] == "person"
    return pd.DataFrame({
        "party_id": ip["party_id"], "party_type": ip["party_type"], "role": ip["role"],
        "person_key": ip["party_id"].map(pk).where(person),
        "org_id": ip["party_id"].where(~person),
    }).reset_index(drop=True)


def households_of(ds: Dataset, person_key: str, as_of=None) -> pd.DataFrame:
    """Every household membership of a canonical person, as known at ``as_of``.

    Columns: household_id, place_id, person_id (the record holding the membership),
    role, start_date, end_date, current (no end known by ``as_of`` / export time).
    """
    ids = _ids_of(ds, person_key)
    hm = _memberships(ds, as_of)
    hm = hm[hm["person_id"].isin(ids)]
    out = hm.merge(ds.households[["household_id", "place_id"]], on="household_id", how="left")
    out = out[["household_id", "place_id", "person_id", "role", "start_date", "end_date"]]
    out = out.assign(current=out["end_date"].isna())
    return out.sort_values(["start_date", "household_id"], na_position="first", ignore_index=True)


def co_residents(ds: Dataset, person_key: str, as_of=None) -> pd.DataFrame:
    """Everyone who shared a household with a canonical person, as known at ``as_of``.

    One row per co-resident, household and overlap: person_key, household_id,
    role (theirs), start, end (the overlap; NaT = open), current. Former
    co-residents are listed with ``current=False``; this is the history an
    analyst reads, where :func:`person_edges` with ``as_of`` keeps only live ties.
    """
    ids = _ids_of(ds, person_key)
    pk = _person_codes(ds)[0]
    hm = _memberships(ds, as_of).assign(person_key=lambda d: d["person_id"].map(pk))
    mine = hm[hm["person_id"].isin(ids)][["household_id", "start_date", "end_date"]]
    others = hm[hm["household_id"].isin(mine["household_id"]) & (hm["person_key"] != person_key)]
    m = others.merge(mine, on="household_id", suffixes=("", "_me"))
    s = np.maximum(_ns(m["start_date"]), _ns(m["start_date_me"]))
    e1, e2 = _ns(m["end_date"]), _ns(m["end_date_me"])
    e = np.minimum(np.where(e1 == _I8_MIN, _I8_MAX, e1), np.where(e2 == _I8_MIN, _I8_MAX, e2))
    ok = s < e
    out = pd.DataFrame({"person_key": m["person_key"].to_numpy()[ok], "household_id": m["household_id"].to_numpy()[ok],
                        "role": m["role"].to_numpy()[ok], "start": _ts(s[ok]), "end": _ts(e[ok])})
    out["current"] = out["end"].isna()
    return out.drop_duplicates().sort_values(["person_key", "household_id", "start"], na_position="first",
                                             ignore_index=True)


def neighbourhood(G: nx.MultiDiGraph, dispute_id: str, k: int = 2,
                  stop_at: Iterable[str] = ("grid",)) -> nx.MultiDiGraph:
    """The subgraph within ``k`` hops of a dispute's node, ignoring edge direction.

    ``dispute_id`` is an incident_id (or a node id ``"incident:<id>"``). Nodes
    whose type is in ``stop_at`` are included when reached but not walked
    through: a grid joins thousands of places, so with the default a 3-hop walk
    does not swallow the grid. Pass ``stop_at=()`` for the plain k-hop ball.
    The result is a copy; ``H.graph["center"]`` names the dispute's node.
    """
    node = dispute_id if str(dispute_id).startswith("incident:") else f"incident:{dispute_id}"
    if node not in G:
        raise KeyError(f"no incident {dispute_id!r} in the graph")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    stop = set(stop_at)
    seen, frontier = {node}, [node]
    for _ in range(k):
        nxt = []
        for u in frontier:
            if u != node and G.nodes[u].get("type") in stop:
                continue
            for v in (*G.successors(u), *G.predecessors(u)):
                if v not in seen:
                    seen.add(v)
                    nxt.append(v)
        frontier = nxt
    H = G.subgraph(seen).copy()
    H.graph["center"] = node
    return H


NODE_COLOURS = {"person": "#1f77b4", "household": "#2ca02c", "place": "#8c564b", "grid": "#7f7f7f",
                "org": "#9467bd", "incident": "#d62728"}


_ABBR = {"person": "P", "household": "H", "place": "L", "grid": "G", "org": "O"}


def _label(node: str, data: dict) -> str:
    t = data.get("type", "")
    if t == "incident":
        return f"{data.get('kind') or ''}\n{data.get('category') or ''}".strip()
    short = node.split(":", 1)[-1]
    return f"{_ABBR.get(t, t[:1].upper())}·{short[-5:]}"


def draw_neighbourhood(H: nx.Graph, ax=None, highlight: Iterable[str] | None = None, seed: int = 0):
    """Draw a neighbourhood: nodes coloured by type with a legend, parties highlighted.

    ``highlight`` defaults to the centre dispute of :func:`neighbourhood` and its
    parties. Labels are short (a type letter and the tail of the pseudonymous
    key; incidents show kind and category), never personal data. Returns the
    matplotlib ``Figure``; draws into ``ax`` when given. Uses the object API, not
    pyplot, so it runs headless and leaves no figure open.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if ax is None:
        fig = Figure(figsize=(9, 7))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    center = H.graph.get("center")
    if highlight is None:
        highlight = set()
        if center is not None and center in H:
            highlight = {center} | {u for u, _, d in H.in_edges(center, data=True) if d.get("type") == "party_to"}
    highlight = set(highlight)

    simple = nx.Graph()
    simple.add_nodes_from(H.nodes)
    simple.add_edges_from((u, v) for u, v in H.edges() if u != v)
    pos = nx.spring_layout(simple, seed=seed) if len(simple) else {}
    if simple.number_of_edges():
        ax.add_collection(LineCollection([(pos[u], pos[v]) for u, v in simple.edges()],
                                         colors="#bbbbbb", linewidths=0.8, zorder=1))
    types = [H.nodes[n].get("type", "other") for n in H.nodes]
    handles = []
    for ntype in list(NODE_COLOURS) + sorted(set(types) - set(NODE_COLOURS)):
        nodes = [n for n, t in zip(H.nodes, types) if t == ntype]
        if not nodes:
            continue
        colour = NODE_COLOURS.get(ntype, "#bcbd22")
        xy = np.array([pos[n] for n in nodes])
        big = np.array([n in highlight for n in nodes])
        ax.scatter(xy[:, 0], xy[:, 1], s=np.where(big, 260, 110), c=colour,
                   edgecolors=np.where(big, "black", "white"), linewidths=np.where(big, 2.0, 0.5), zorder=2)
        handles.append(Line2D([], [], marker="o", linestyle="", color=colour, label=ntype, markersize=8))
    for n in H.nodes:
        x, y = pos[n]
        ax.annotate(_label(n, H.nodes[n]), (x, y), xytext=(0, 9), textcoords="offset points", ha="center",
                    fontsize=7, fontweight="bold" if n in highlight else "normal", zorder=3)
    if highlight:
        handles.append(Line2D([], [], marker="o", linestyle="", color="white", markeredgecolor="black",
                              markeredgewidth=2, label="dispute & parties", markersize=9))
    ax.legend(handles=handles, loc="best", fontsize=8, frameon=False)
    ax.set_axis_off()
    ax.autoscale_view()
    if center is not None:
        ax.set_title(f"{center} and its neighbourhood", fontsize=9)
    return fig
