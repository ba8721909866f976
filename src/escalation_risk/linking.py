"""Record linkage: one canonical key per person.

The same person reaches the data under several ``person_id`` values (the police
system and the mediation platform each keep their own). Two deterministic rules
join records, on the pseudonymised identifiers:

- ``id_number``: equal identity-card pseudonyms link;
- ``name+birth_year+phone``: where a record has no ``id_number``, agreement on all
  three links it, unless those three point at people with *different* id numbers
  (then the match is ambiguous and nothing is joined). Name and birth year alone
  never link: a district has too many namesakes.

Groups are the connected components of these links (scipy, no Python loop per
person). The canonical key of a group is its smallest ``person_id``, or, when an
existing key is given (incremental linking), the key its known members already
have, so keys stay stable as new records arrive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .dataset import Dataset

RULE_ID = "id_number"
RULE_FALLBACK = "name+birth_year+phone"


def _links(persons: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (i, j, rule) between row positions of ``persons``."""
    n = len(persons)
    pos = np.arange(n)
    src, dst, rule = [], [], []
    idn = persons["id_number"]
    has_id = idn.notna().to_numpy()
    if has_id.any():
        codes = pd.factorize(idn[has_id])[0]
        first = pd.Series(pos[has_id]).groupby(codes).transform("min").to_numpy()
        keep = first != pos[has_id]
        src.append(pos[has_id][keep]); dst.append(first[keep]); rule.append(np.full(keep.sum(), 0))
    triple = persons[["name", "birth_year", "phone"]]
    full = triple.notna().all(axis=1).to_numpy()
    if full.any():
        codes = triple[full].groupby(["name", "birth_year", "phone"], sort=False).ngroup().to_numpy()
        sub = pd.DataFrame({"g": codes, "pos": pos[full], "has_id": has_id[full],
                            "idn": idn[full].to_numpy()})
        # A triple shared by records with two different id numbers is ambiguous: skip it.
        n_ids = sub.groupby("g")["idn"].nunique()
        ok = sub["g"].map(n_ids).to_numpy() <= 1
        sub = sub[ok]
        # Link each record without an id number to its group's anchor: the first record
        # holding an id number if there is one (so it joins that identity), else the first.
        pos_s = sub["pos"].to_numpy()
        with_id = pd.Series(np.where(sub["has_id"], pos_s, n), index=sub.index).groupby(sub["g"]).transform("min")
        anchor = np.where(with_id.to_numpy() < n, with_id.to_numpy(),
                          sub.groupby("g")["pos"].transform("min").to_numpy())
        keep = (~sub["has_id"].to_numpy()) & (anchor != pos_s)
        src.append(pos_s[keep]); dst.append(anchor[keep]); rule.append(np.full(keep.sum(), 1))
    if not src:
        return np.array([], int), np.array([], int), np.array([], int)
    return np.concatenate(src), np.concatenate(dst), np.concatenate(rule)


def link_persons(ds: Dataset, existing: pd.Series | None = None) -> pd.Series:
    """Map every ``person_id`` to a canonical person key (a Series named ``person_key``).

    ``existing`` is an earlier result: people it knows keep their key, new records
    join the group they link to, or start their own. The result is cached on the
    dataset when ``existing`` is not given.
    """
    if existing is None and "person_key" in ds.cache:
        return ds.cache["person_key"]
    persons = ds.persons.reset_index(drop=True)
    n = len(persons)
    src, dst, _ = _links(persons)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    ids = persons["person_id"].to_numpy(dtype=object)
    frame = pd.DataFrame({"comp": comp, "pid": ids})
    key = frame.groupby("comp")["pid"].transform("min")
    if existing is not None:
        known = frame["pid"].map(existing)
        prior = known.groupby(frame["comp"]).transform("min")
        # When an earlier link no longer holds (a corrected id number), several groups
        # claim one old key; two people must never share a key, so it stays with the
        # group holding the record it was named after (else the first group) and the
        # others take their own smallest person_id.
        claims = pd.DataFrame({"comp": frame["comp"], "prior": prior,
                               "named": frame["pid"] == prior}).dropna(subset=["prior"])
        claims = claims.groupby("comp", as_index=False).agg(prior=("prior", "first"), named=("named", "any"))
        owner = claims.sort_values(["prior", "named", "comp"], ascending=[True, False, True]) \
            .drop_duplicates("prior").set_index("prior")["comp"]
        keeps = frame["comp"].to_numpy() == prior.map(owner).to_numpy()
        key = prior.where(prior.notna() & keeps, key)
    out = pd.Series(key.to_numpy(), index=pd.Index(ids, name="person_id"), name="person_key").astype(object)
    if existing is None:
        ds.cache["person_key"] = out
    return out


def explain_links(ds: Dataset) -> pd.DataFrame:
    """The merged groups and the rule that joined each record: one row per linked record.

    Columns: person_key, person_id, linked_to, rule. Records that stand alone are
    not listed.
    """
    persons = ds.persons.reset_index(drop=True)
    src, dst, rule = _links(persons)
    key = link_persons(ds)
    ids = persons["person_id"].to_numpy(dtype=object)
    out = pd.DataFrame({"person_id": ids[src], "linked_to": ids[dst],
                        "rule": np.where(rule == 0, RULE_ID, RULE_FALLBACK)})
    out.insert(0, "person_key", out["person_id"].map(key))
    return out.drop_duplicates(["person_id", "linked_to"]).sort_values(["person_key", "person_id"],
                                                                       ignore_index=True)
