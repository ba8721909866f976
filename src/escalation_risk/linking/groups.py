"""Groups: connected components of accepted pairs, guarded against chaining; keys kept over runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..lookup import id_positions
from ..normalize import ID_OTHER, ID_VALID
from .blocking import _block_pairs
from .keys import _Keys
from .model import LinkageModel


def _firm_ids(k: _Keys) -> np.ndarray:
    """Id numbers that identify a person firmly (valid, or another document); 0 otherwise."""
    return np.where(np.isin(k.kind, (ID_VALID, ID_OTHER)), k.idn, 0)


def _groups(k: _Keys, i: np.ndarray, j: np.ndarray, w: np.ndarray, transposed: np.ndarray,
            model: LinkageModel) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Component label per record, and which accepted edges the chaining guard kept."""
    n = k.n
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    firm = _firm_ids(k)
    size = np.bincount(comp, minlength=comp.max() + 1 if n else 0)
    # Distinct firm ids per component; only components of two or more records can hold two.
    has = (firm != 0) & (size[comp] > 1)
    n_ids = np.zeros(len(size), dtype=np.int64)
    if has.any():
        pairs = pd.DataFrame({"c": comp[has], "f": firm[has]}).drop_duplicates()
        n_ids = np.bincount(pairs["c"].to_numpy(), minlength=len(size))
    n_tr = np.bincount(comp[i[transposed]], minlength=len(size))
    bad = (n_ids > 1 + n_tr) | (size > model.max_group)
    kept = np.ones(len(i), dtype=bool)
    stats: dict[str, float] = {"components_reclustered": int(bad.sum())}
    if not bad.any():
        return comp, kept, stats
    next_label = comp.max() + 1
    edge_bad = bad[comp[i]]
    eidx = np.flatnonzero(edge_bad)
    order = np.argsort(comp[i[eidx]], kind="stable")
    eidx = eidx[order]
    ecomp = comp[i[eidx]]
    bounds = np.flatnonzero(np.r_[True, ecomp[1:] != ecomp[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = eidx[a:b]
        labels, keep_local = _recluster(i[sel], j[sel], w[sel], transposed[sel], firm, model)
        kept[sel] = keep_local
        for nodes in labels:
            comp[nodes] = next_label
            next_label += 1
    stats["edges_cut"] = int((~kept).sum())
    return comp, kept, stats


SMALL_GROUPS = 4096  # records in groups of two or more up to which _named takes them in numpy


def _named(ids: np.ndarray, comp: np.ndarray) -> np.ndarray:
    """Each record's group key: the smallest person_id of its group (``comp``: group label per record)."""
    # only groups of two or more need a look
    multi = np.bincount(comp)[comp] > 1
    key_arr = ids.copy()
    if multi.sum() > SMALL_GROUPS:
        sub = pd.Series(ids[multi]).groupby(comp[multi]).transform("min")
        key_arr[multi] = sub.to_numpy(dtype=object)
    elif multi.any():  # an incremental link's few records: numpy, not pandas' group-by (Arrow's, ~5 ms)
        mid, mc = ids[multi], comp[multi]
        order = np.argsort(mid, kind="stable")  # Python's order of str: code points, as Arrow's min
        groups, first = np.unique(mc[order], return_index=True)
        smallest = np.empty(int(groups.max()) + 1, dtype=object)
        smallest[groups] = mid[order[first]]
        key_arr[multi] = smallest[mc]
    return key_arr


def _recluster(ei: np.ndarray, ej: np.ndarray, ew: np.ndarray, etr: np.ndarray, firm: np.ndarray,
               model: LinkageModel) -> tuple[list[list[int]], np.ndarray]:
    """Greedy clustering of one suspicious component: strongest edges first, never two firm
    ids in one group (unless joined by a transposition edge), never more than max_group."""
    nodes = np.unique(np.r_[ei, ej])
    # A record without a firm id that matches two firm identities about equally well joins neither.
    drop = np.zeros(len(ei), dtype=bool)
    for r in nodes:
        if firm[r]:
            continue
        mine = np.flatnonzero((ei == r) | (ej == r))
        other = np.where(ei[mine] == r, ej[mine], ei[mine])
        fid = firm[other]
        best: dict[int, float] = {}
        for f, wt in zip(fid, ew[mine]):
            if f:
                best[int(f)] = max(best.get(int(f), -np.inf), float(wt))
        if len(best) >= 2:
            top = sorted(best.values(), reverse=True)
            if top[0] - top[1] < model.ambiguity_margin:
                drop[mine] = True
    parent = {int(r): int(r) for r in nodes}
    ids = {int(r): ({int(firm[r])} if firm[r] else set()) for r in nodes}
    size = {int(r): 1 for r in nodes}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keep = np.zeros(len(ei), dtype=bool)
    for e in np.argsort(-ew, kind="stable"):
        if drop[e]:
            continue
        a, b = find(int(ei[e])), find(int(ej[e]))
        if a == b:
            keep[e] = True
            continue
        merged = ids[a] | ids[b]
        allowed = len(merged) <= 1 or (etr[e] and len(ids[a]) == 1 and len(ids[b]) == 1)
        if not allowed or size[a] + size[b] > model.max_group:
            continue
        parent[b] = a
        ids[a], size[a] = merged, size[a] + size[b]
        keep[e] = True
    out: dict[int, list[int]] = {}
    for r in nodes:
        out.setdefault(find(int(r)), []).append(int(r))
    return list(out.values()), keep



def _prior_keys(pid: np.ndarray, existing: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code of each record's earlier key, -1 for a new record; the earlier keys by code).

    Arrow's hash look-up (:func:`escalation_risk.lookup.id_positions`): pandas' isin/map on
    a million string ids build a Python object per id and took seconds."""
    pos = id_positions(existing.index, pid)
    codes, uniq = pd.factorize(existing.to_numpy(dtype=object))
    prior = np.where(pos >= 0, codes[np.maximum(pos, 0)], -1)
    return prior, np.asarray(uniq, dtype=object)


def _existing_pairs(prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of known records inside one existing group (re-checked, so a corrected record can leave)."""
    i, j, _, _ = _block_pairs(prior.astype(np.int64) + 1, max_block=10**9)
    return i, j


def _keep_keys(pid: np.ndarray, comp: np.ndarray, key: np.ndarray, prior: np.ndarray,
               uniq: np.ndarray) -> np.ndarray:
    """Earlier keys carried over to the new groups.

    A group takes the earlier key of its known records (the smallest, when a new
    record joined two old groups). When an earlier link no longer holds (a corrected id
    number), several groups claim one old key; two people must never share a key, so
    it stays with the group holding the record it was named after (else the first
    group) and the others keep their own smallest person_id.
    """
    # numpy on the few known records an add re-checks: pandas' groupby and sort (Arrow's
    # group-by on string columns) cost ~5 ms a call, most of an incremental link.
    n_comp = int(comp.max()) + 1 if len(comp) else 0
    comp_prior = np.full(n_comp, -1, dtype=np.int64)
    known = prior >= 0
    if known.any():
        base = np.int64(len(uniq) + 1)
        packed = np.unique(comp[known].astype(np.int64) * base + prior[known].astype(np.int64))
        cc, pp = packed // base, packed % base  # distinct (group, earlier key), by group
        one = np.bincount(cc, minlength=n_comp)[cc] == 1
        comp_prior[cc[one]] = pp[one]
        # A group holding several earlier keys: the smallest by its text.
        for r in sorted(np.flatnonzero(~one).tolist(), key=lambda r: (int(cc[r]), str(uniq[pp[r]])), reverse=True):
            comp_prior[cc[r]] = pp[r]  # the smallest text of each group is written last
    rec_prior = comp_prior[comp]
    has = rec_prior >= 0
    named = np.zeros(len(pid), dtype=bool)
    named[has] = pid[has] == uniq[rec_prior[has]]
    # The claims on each earlier key, one per group: the group holding the record it was named
    # after first, then the smallest group label.
    groups = np.unique(comp[has])
    named_g = np.bincount(comp[has], weights=named[has], minlength=n_comp)[groups] > 0
    prior_g = comp_prior[groups]
    order = np.lexsort((groups, ~named_g, prior_g))
    first = order[np.r_[True, prior_g[order][1:] != prior_g[order][:-1]]] if len(order) else order
    owner_of = np.full(len(uniq), -1, dtype=np.int64)
    owner_of[prior_g[first]] = groups[first]
    keeps = has & (owner_of[np.maximum(rec_prior, 0)] == comp)
    out = key.copy()
    out[keeps] = uniq[rec_prior[keeps]]
    return out
