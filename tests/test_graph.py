"""The person graph: vectorised ties, the networkx graph, point-in-time cuts, helpers."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from conftest import KEY, valid_id

from escalation_risk.dataset import Dataset
from escalation_risk.graph import (
    MAX_GROUP,
    adjacency,
    build_graph,
    co_residents,
    dispute_parties,
    draw_neighbourhood,
    households_of,
    neighbourhood,
    person_edges,
)

T = pd.Timestamp


def district() -> Dataset:
    """A small district with one duplicated person (p1 and p1b share an id number).

    h1 at pl1: p1, p2 (spouses), p3, tenant p4 until 2023-06-01, tenant p5 from 2024-02-01.
    h2 at pl2: p6. h3 at pl3: p7, and p1b from 2020 to 2021.
    d1 (2024-01-10): p1 vs p6 neighbours; c1 (2024-04-01): p6 assaults p1, related to d1;
    d2 (2024-03-01): p7 and org o1 wage dispute, p1b witness; pc1 (2023-05-01): p2 and p8.
    """
    persons = pd.DataFrame({
        "person_id": ["p1", "p1b", "p2", "p3", "p4", "p5", "p6", "p7", "p8"],
        "birth_year": [1980, 1980, 1982, 2010, 1990, 1995, 1975, 1988, 1970],
        "gender": ["male", "male", "female", "female", "male", "female", "male", "male", "male"],
        "name": ["Wang Wei", "Wang Wei", "Li Na", "Wang Fang", "Zhao Lei", "Sun Li", "Zhou Jie", "Wu Gang", "Xu Ming"],
        "id_number": [valid_id("ID1"), valid_id("ID1"), valid_id("ID2"), None, valid_id("ID4"), valid_id("ID5"),
                      valid_id("ID6"), valid_id("ID7"), valid_id("ID8")],
        "phone": ["13800000001", None, "13800000002", None, None, None, "13800000006", None, None],
    })
    places = pd.DataFrame({"place_id": ["pl1", "pl2", "pl3"], "grid_id": ["g1", "g1", "g2"],
                           "place_type": ["residential", "residential", "industrial"]})
    households = pd.DataFrame({"household_id": ["h1", "h2", "h3"], "place_id": ["pl1", "pl2", "pl3"],
                               "tenure": ["owned", "rented", "collective"]})
    members = pd.DataFrame([
        ("h1", "p1", "head", None, None), ("h1", "p2", "spouse", "2010-05-01", None),
        ("h1", "p3", "child", "2010-09-01", None), ("h1", "p4", "tenant", "2022-01-01", "2023-06-01"),
        ("h1", "p5", "tenant", "2024-02-01", None), ("h2", "p6", "head", None, None),
        ("h3", "p7", "head", None, None), ("h3", "p1b", "tenant", "2020-01-01", "2021-01-01"),
    ], columns=["household_id", "person_id", "role", "start_date", "end_date"])
    orgs = pd.DataFrame({"org_id": ["o1"], "org_type": ["enterprise"], "place_id": ["pl3"]})
    incidents = pd.DataFrame([
        ("d1", "dispute", "neighbor", "2024-01-09", "2024-01-10", "pl1", None, None),
        ("d2", "dispute", "labor_wage", "2024-02-28", "2024-03-01", "pl3", None, None),
        ("c1", "criminal_case", "assault", "2024-03-30", "2024-04-01", "pl1", None, "d1"),
        ("pc1", "police_call", "debt", "2023-05-01", "2023-05-01", "pl2", "2023-05-02", None),
    ], columns=["incident_id", "kind", "category", "occurred_at", "reported_at", "place_id", "closed_at",
                "related_incident_id"])
    parties = pd.DataFrame([
        ("d1", "p1", "person", "complainant"), ("d1", "p6", "person", "respondent"),
        ("d2", "p7", "person", "complainant"), ("d2", "o1", "organization", "respondent"),
        ("d2", "p1b", "person", "witness"),
        ("c1", "p6", "person", "suspect"), ("c1", "p1", "person", "victim"),
        ("pc1", "p2", "person", "complainant"), ("pc1", "p8", "person", "respondent"),
    ], columns=["incident_id", "party_id", "party_type", "role"])
    flags = pd.DataFrame({"person_id": ["p6", "p1b"], "flag": ["prior_violence", "mental_health"],
                          "recorded_at": ["2024-02-01", "2023-01-01"]})
    relations = pd.DataFrame({"person_a": ["p1", "p8", "p1b"], "person_b": ["p2", "p6", "p1"],
                              "relation": ["spouse", "acquaintance", "relative"],
                              "since": ["2010-05-01", "2024-03-15", None]})
    return Dataset.from_frames(
        pseudonym_key=KEY, persons=persons, places=places, households=households,
        household_members=members, organizations=orgs, incidents=incidents, incident_parties=parties,
        person_flags=flags, relations=relations)


@pytest.fixture
def ds() -> Dataset:
    return district()


def edge_set(edges: pd.DataFrame, kind: str | None = None) -> set[tuple[str, str]]:
    if kind is not None:
        edges = edges[edges["kind"] == kind]
    return set(zip(edges["a"], edges["b"]))


def by_type(G: nx.MultiDiGraph, what: str = "nodes") -> dict[str, int]:
    items = G.nodes(data=True) if what == "nodes" else ((u, d) for u, _, d in G.edges(data=True))
    return pd.Series([d["type"] for _, d in items]).value_counts().to_dict()


# --------------------------------------------------------------------------- person_edges

def test_person_edges_shape_and_order(ds):
    e = person_edges(ds)
    assert list(e.columns) == ["a", "b", "kind", "start", "end", "weight"]
    assert (e["a"] < e["b"]).all()
    assert not (e["a"] == e["b"]).any()
    assert "p1b" not in set(e["a"]) | set(e["b"])  # duplicates appear under the canonical key


def test_household_ties_follow_overlap(ds):
    e = person_edges(ds)
    hh = e[e["kind"] == "household"].set_index(["a", "b"])
    assert edge_set(e, "household") == {
        ("p1", "p2"), ("p1", "p3"), ("p2", "p3"), ("p1", "p4"), ("p2", "p4"), ("p3", "p4"),
        ("p1", "p5"), ("p2", "p5"), ("p3", "p5"), ("p1", "p7"),  # p1 via its duplicate p1b in h3
    }
    # p4 left before p5 arrived: never co-residents.
    assert ("p4", "p5") not in edge_set(e, "household")
    assert hh.loc[("p1", "p2"), "start"] == T("2010-05-01") and pd.isna(hh.loc[("p1", "p2"), "end"])
    assert hh.loc[("p2", "p4"), "start"] == T("2022-01-01") and hh.loc[("p2", "p4"), "end"] == T("2023-06-01")
    assert hh.loc[("p1", "p7"), "end"] == T("2021-01-01")


def test_relation_and_co_incident_ties(ds):
    e = person_edges(ds)
    assert edge_set(e, "relation:spouse") == {("p1", "p2")}
    assert edge_set(e, "relation:acquaintance") == {("p6", "p8")}
    assert not len(e[e["kind"] == "relation:relative"])  # p1b-p1 is one person: no self-loop
    co = e[e["kind"] == "co_incident"].set_index(["a", "b"])
    assert set(co.index) == {("p1", "p6"), ("p1", "p7"), ("p2", "p8")}
    assert co.loc[("p1", "p6"), "weight"] == 2  # d1 and c1
    assert co.loc[("p1", "p6"), "start"] == T("2024-01-10")  # the earliest shared report


def test_person_edges_as_of(ds):
    e = person_edges(ds, as_of="2024-02-15")
    assert ("p6", "p8") not in edge_set(e)  # acquaintance only known from 2024-03-15
    assert ("p1", "p7") not in edge_set(e, "co_incident")  # d2 reported 2024-03-01
    assert ("p1", "p4") not in edge_set(e, "household")  # ended 2023-06-01
    assert ("p1", "p5") in edge_set(e, "household")  # started 2024-02-01
    co = e[e["kind"] == "co_incident"].set_index(["a", "b"])
    assert co.loc[("p1", "p6"), "weight"] == 1  # c1 not reported yet
    early = person_edges(ds, as_of="2024-01-15")
    assert ("p1", "p5") not in edge_set(early)
    assert ("p1", "p4") in edge_set(person_edges(ds, as_of="2023-01-01"), "household")


def test_mass_incidents_add_no_ties():
    n = MAX_GROUP + 1
    ids = [f"w{i:03d}" for i in range(n)]
    ds = Dataset.from_frames(
        pseudonym_key=KEY,
        persons=pd.DataFrame({"person_id": ids}),
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        incidents=pd.DataFrame({"incident_id": ["mass", "small"], "kind": "dispute", "category": "labor_wage",
                                "occurred_at": "2024-01-01", "reported_at": "2024-01-02"}),
        incident_parties=pd.DataFrame({"incident_id": ["mass"] * n + ["small"] * 2,
                                       "party_id": ids + ids[:2], "party_type": "person"}),
    )
    e = person_edges(ds)
    assert edge_set(e) == {("w000", "w001")}
    assert e["weight"].tolist() == [1]  # the mass incident is not counted either


def test_empty_optional_tables():
    ds = Dataset.from_frames(
        pseudonym_key=KEY, persons=pd.DataFrame({"person_id": ["a", "b"]}),
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        incidents=pd.DataFrame({"incident_id": ["i"], "kind": "dispute", "category": "debt",
                                "occurred_at": "2024-01-01", "reported_at": "2024-01-02"}),
        incident_parties=pd.DataFrame({"incident_id": ["i"], "party_id": ["a"], "party_type": "person"}),
    )
    assert len(person_edges(ds)) == 0
    m, keys = adjacency(ds)
    assert m.shape == (2, 2) and m.nnz == 0 and list(keys) == ["a", "b"]
    assert build_graph(ds).number_of_nodes() == 2 + 1 + 1 + 1


# --------------------------------------------------------------------------- adjacency

def test_adjacency_symmetric_binary(ds):
    m, keys = adjacency(ds)
    assert m.shape == (len(keys), len(keys)) == (8, 8)
    assert (m != m.T).nnz == 0
    assert set(np.unique(m.data)) == {1}
    assert m.diagonal().sum() == 0
    i, j = keys.get_loc("p1"), keys.get_loc("p2")
    assert m[i, j] == 1  # household and spouse: still one tie


def test_adjacency_kinds(ds):
    m, keys = adjacency(ds, kinds=["relation:spouse"])
    assert m.nnz == 2 and m[keys.get_loc("p1"), keys.get_loc("p2")] == 1
    m, _ = adjacency(ds, kinds="relation")
    assert m.nnz == 4
    with pytest.raises(ValueError, match="kinds"):
        adjacency(ds, kinds=["friends"])


def nx_person_neighbours(G: nx.MultiDiGraph, person: str) -> set[str]:
    """Persons tied to ``person`` in G by the same rules person_edges uses, walked in Python."""
    out = set()
    for _, v, d in G.out_edges(person, data=True):
        if d["type"] == "relation":
            out.add(v)
        elif d["type"] == "party_to":
            out |= {u for u, _, dd in G.in_edges(v, data=True)
                    if dd["type"] == "party_to" and G.nodes[u]["type"] == "person"}
        elif d["type"] == "member_of":
            s1, e1 = d["start"] or pd.Timestamp.min, d["end"] or pd.Timestamp.max
            for u, _, dd in G.in_edges(v, data=True):
                if dd["type"] == "member_of":
                    s2, e2 = dd["start"] or pd.Timestamp.min, dd["end"] or pd.Timestamp.max
                    if max(s1, s2) < min(e1, e2):
                        out.add(u)
    out |= {u for u, _, d in G.in_edges(person, data=True) if d["type"] == "relation"}
    out.discard(person)
    return out


@pytest.mark.parametrize("as_of", [None, "2024-02-15"])
def test_adjacency_agrees_with_networkx(ds, as_of):
    G = build_graph(ds, as_of=as_of)
    m, keys = adjacency(ds)
    if as_of is not None:
        # The graph keeps ended memberships (marked ended); adjacency(as_of) keeps live ties only,
        # so compare against the full adjacency restricted to ties known by then.
        e = person_edges(ds)
        t = pd.Timestamp(as_of)
        e = e[(e["start"].isna() | (e["start"] <= t))]
        e = e[e["kind"] != "co_incident"]
        co = person_edges(ds, as_of=as_of)
        e = pd.concat([e, co[co["kind"] == "co_incident"]])
        adj = {k: set() for k in keys}
        for a, b in zip(e["a"], e["b"]):
            adj[a].add(b)
            adj[b].add(a)
    else:
        adj = {k: set(keys[m[keys.get_loc(k)].indices]) for k in keys}
    for key in keys:
        assert nx_person_neighbours(G, f"person:{key}") == {f"person:{k}" for k in adj[key]}, key


def test_adjacency_agrees_with_networkx_on_random_district():
    rng = np.random.default_rng(7)
    n, n_h, n_i = 300, 80, 200
    ids = [f"q{i:04d}" for i in range(n)]
    # Every fifth record is a second record of another person, linked by id number.
    idn = [valid_id(f"N{i % 240}") for i in range(n)]
    members = pd.DataFrame({
        "household_id": [f"h{h}" for h in rng.integers(0, n_h, n)], "person_id": ids,
        "start_date": pd.to_datetime("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), "D"),
    })
    members["end_date"] = members["start_date"] + pd.to_timedelta(rng.integers(30, 2000, n), "D")
    members.loc[rng.random(n) < 0.5, "end_date"] = pd.NaT
    members.loc[rng.random(n) < 0.3, "start_date"] = pd.NaT
    k = rng.integers(1, 5, n_i)
    inc_ids = [f"i{i}" for i in range(n_i)]
    parties = pd.DataFrame({"incident_id": np.repeat(inc_ids, k),
                            "party_id": rng.choice(ids, k.sum()), "party_type": "person"}).drop_duplicates()
    rel = pd.DataFrame({"person_a": rng.choice(ids, 60), "person_b": rng.choice(ids, 60),
                        "relation": rng.choice(["spouse", "sibling", "neighbor"], 60)})
    ds = Dataset.from_frames(
        pseudonym_key=KEY,
        persons=pd.DataFrame({"person_id": ids, "id_number": idn}),
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        households=pd.DataFrame({"household_id": [f"h{h}" for h in range(n_h)], "place_id": "pl"}),
        household_members=members,
        incidents=pd.DataFrame({"incident_id": inc_ids, "kind": "dispute", "category": "debt",
                                "occurred_at": "2024-01-01", "reported_at": "2024-01-02"}),
        incident_parties=parties, relations=rel,
    )
    G = build_graph(ds)
    m, keys = adjacency(ds)
    assert len(keys) == 240
    for key in rng.choice(keys, 60, replace=False):
        got = {f"person:{k}" for k in keys[m[keys.get_loc(key)].indices]}
        assert nx_person_neighbours(G, f"person:{key}") == got, key


# --------------------------------------------------------------------------- build_graph

def test_graph_nodes_and_edges_against_tables(ds):
    G = build_graph(ds)
    assert by_type(G) == {"person": 8, "household": 3, "place": 3, "grid": 2, "org": 1, "incident": 4}
    assert by_type(G, "edges") == {
        "in_grid": 3, "lives_at": 3, "located_at": 1 + 4, "party_to": len(ds.incident_parties),
        "related_to": 1, "member_of": len(ds.household_members), "relation": 2,
    }
    assert all(":" in n and n.split(":", 1)[0] == d["type"] for n, d in G.nodes(data=True))
    assert G.has_edge("incident:c1", "incident:d1")
    assert G.has_edge("org:o1", "incident:d2") and G.has_edge("place:pl1", "grid:g1")
    roles = {d["role"] for _, _, d in G.in_edges("incident:d1", data=True) if d["type"] == "party_to"}
    assert roles == {"complainant", "respondent"}
    assert "status" not in G.nodes["incident:d1"]


def test_duplicate_person_ids_are_one_node(ds):
    G = build_graph(ds)
    assert "person:p1b" not in G
    p1 = G.nodes["person:p1"]
    assert p1["person_ids"] == ["p1", "p1b"]
    assert p1["flags"] == [("mental_health", T("2023-01-01"))]  # recorded on the duplicate
    assert G.has_edge("person:p1", "household:h3")  # p1b's membership
    assert G.has_edge("person:p1", "incident:d2")  # p1b's witness role
    assert "name" not in p1 and "id_number" not in p1


def test_graph_as_of(ds):
    G = build_graph(ds, as_of="2024-01-15")
    assert G.graph["as_of"] == T("2024-01-15 23:59:59.999999")  # a date: the end of that day
    assert by_type(G)["incident"] == 2  # d1, pc1
    assert "incident:c1" not in G and "incident:d2" not in G
    assert G.nodes["person:p6"]["flags"] == []  # recorded 2024-02-01
    assert not G.has_edge("person:p5", "household:h1")  # moved in 2024-02-01
    ended = [d for _, _, d in G.edges("person:p4", data=True) if d["type"] == "member_of"]
    assert len(ended) == 1 and ended[0]["ended"] and ended[0]["end"] == T("2023-06-01")
    current = [d for _, _, d in G.edges("person:p2", data=True) if d["type"] == "member_of"]
    assert not current[0]["ended"] and current[0]["end"] is None
    assert not G.has_edge("person:p8", "person:p6")  # acquaintance since 2024-03-15
    assert G.has_edge("person:p1", "person:p2")
    G2 = build_graph(ds, as_of="2023-05-01T12:00")
    assert G2.nodes["incident:pc1"]["closed_at"] is None  # closing on 05-02 not known yet
    assert build_graph(ds).nodes["incident:pc1"]["closed_at"] == T("2023-05-02")


# --------------------------------------------------------------------------- helpers

def test_dispute_parties(ds):
    p = dispute_parties(ds, "d2")
    assert list(p.columns) == ["party_id", "party_type", "role", "person_key", "org_id"]
    rows = {r.party_id: r for r in p.itertuples()}
    assert rows["p1b"].person_key == "p1" and pd.isna(rows["p1b"].org_id)
    assert rows["o1"].org_id == "o1" and pd.isna(rows["o1"].person_key)
    with pytest.raises(KeyError):
        dispute_parties(ds, "nope")


def test_households_of_and_co_residents(ds):
    h = households_of(ds, "p1")
    assert list(h["household_id"]) == ["h1", "h3"]
    assert list(h["current"]) == [True, False]
    assert set(households_of(ds, "p5", as_of="2024-01-01")["household_id"]) == set()
    c = co_residents(ds, "p1")
    assert set(c["person_key"]) == {"p2", "p3", "p4", "p5", "p7"}
    assert c.set_index("person_key").loc["p4", "current"] == np.False_
    c = co_residents(ds, "p1", as_of="2024-01-15")
    assert set(c["person_key"]) == {"p2", "p3", "p4", "p7"}
    assert set(c[c["current"]]["person_key"]) == {"p2", "p3"}
    assert set(co_residents(ds, "p4")["person_key"]) == {"p1", "p2", "p3"}
    with pytest.raises(KeyError):
        co_residents(ds, "p1b")  # a source id, not a canonical key


def test_neighbourhood_k_hops(ds):
    G = build_graph(ds)
    H1 = neighbourhood(G, "d1", k=1)
    assert set(H1) == {"incident:d1", "person:p1", "person:p6", "place:pl1", "incident:c1"}
    assert H1.graph["center"] == "incident:d1"
    H2 = neighbourhood(G, "d1", k=2, stop_at=())
    lengths = nx.single_source_shortest_path_length(G.to_undirected(), "incident:d1", cutoff=2)
    assert set(H2) == set(lengths)
    assert {"household:h1", "person:p2", "grid:g1", "incident:d2", "household:h3"} <= set(H2)
    # A grid is reached but not walked through by default: place:x is only reachable via g1.
    G.add_node("place:x", type="place")
    G.add_edge("place:x", "grid:g1", type="in_grid")
    H3 = neighbourhood(G, "d1", k=3)
    assert "grid:g1" in H3 and "place:x" not in H3
    assert "place:x" in neighbourhood(G, "d1", k=3, stop_at=())
    assert H2.number_of_edges() == G.subgraph(H2.nodes).number_of_edges()
    with pytest.raises(KeyError):
        neighbourhood(G, "nope")


def test_draw_neighbourhood_returns_figure(ds):
    from matplotlib.figure import Figure

    H = neighbourhood(build_graph(ds), "d1", k=2)
    fig = draw_neighbourhood(H)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"person", "incident", "household", "dispute & parties"} <= labels
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "Wang" not in texts  # names never reach a figure
    import io
    fig.savefig(io.BytesIO(), format="png")


def test_edges_cached_but_as_of_consistent(ds):
    a = person_edges(ds, as_of="2024-02-15")
    person_edges(ds)
    b = person_edges(ds, as_of="2024-02-15")
    pd.testing.assert_frame_equal(a, b)


def test_all_pairs_of_small_household_are_tied():
    members = pd.DataFrame({"household_id": "h", "person_id": list("abcd")})
    ds = Dataset.from_frames(
        pseudonym_key=KEY, persons=pd.DataFrame({"person_id": list("abcd")}),
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        households=pd.DataFrame({"household_id": ["h"], "place_id": ["pl"]}), household_members=members,
        incidents=pd.DataFrame({"incident_id": ["i"], "kind": "dispute", "category": "debt",
                                "occurred_at": "2024-01-01", "reported_at": "2024-01-02"}),
        incident_parties=pd.DataFrame({"incident_id": ["i"], "party_id": ["a"], "party_type": "person"}),
    )
    assert edge_set(person_edges(ds)) == set(itertools.combinations("abcd", 2))
