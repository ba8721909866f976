"""Incremental linkage: new person records linked against a linked district, at the cost of the new records.

``link_persons(ds, existing=...)`` re-keys the whole persons table and re-estimates the
parameters on it: seconds at a million records, for every new person a service adds.
Here the district's linkage is kept as a :class:`LinkState`: the records' keys, each
blocking rule's keys sorted once, the term-frequency counts, the groups, and the
parameters of the linkage that made the groups, *frozen* (:class:`Frozen`). Linking new
records (:func:`link_new`) then

1. keys only the new records (:func:`~.keys._keys`) and finds their candidates by binary
   searches in the sorted block keys of every rule (a block over ``max_block`` records,
   new ones counted, is skipped as the full linkage skips it);
2. compares the pairs with a new record, and the pairs inside every existing group that
   a new record is a candidate of or whose records share a term-frequency value with a
   new record (their weights move), with :func:`~.comparisons._compare`;
3. scores them with the frozen weights (:func:`~.parameters._score`; term frequencies
   counted over all records, new ones included), accepts (:func:`~.linker._accept`, an
   existing group's pairs with ``keep_margin``), groups (:func:`~.groups._groups`) and
   names the groups (:func:`~.groups._named`, :func:`~.groups._keep_keys`).

The result equals :func:`relink`, the full linkage (:func:`~.linker._link`) of every
record with ``existing=`` the keys before the add and the same frozen parameters: a
group no new record touches keeps its pairs' weights, so re-checking it (as the full
run does) keeps it whole. The frozen parameters are m, u and the weight tables of the
base's linkage, its population (which fixes the weight threshold and the term
frequencies' denominator); only the term-frequency counts follow the records. The
nightly batch re-fits all of them on the whole district (:func:`~.link_persons`): an
online key equals the batch's when the re-fit parameters decide the same (tested on a
small district), and always equals :func:`relink`'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..capacity import grow
from .blocking import _block_rules
from .comparisons import _compare
from .groups import _groups, _keep_keys, _named, _prior_keys
from .keys import KEY_ARRAYS, TF_FIELDS, _Keys, _keys, _term_counts
from .linker import Linkage, _accept, _link
from .model import DEFAULT_MODEL, ID_TRANSPOSED, LinkageModel
from .parameters import _score, _tf_log_u, _Weights


@dataclass(frozen=True)
class Frozen:
    """The parameters of one linkage, held fixed: its weights (m, u, weight tables), its
    model with the population fixed at the base's (the weight threshold), and the base's
    number of records (the term frequencies' denominator)."""

    weights: _Weights
    model: LinkageModel
    n_base: int

    @staticmethod
    def of(linkage: Linkage, n_records: int, model: LinkageModel = DEFAULT_MODEL) -> Frozen:
        """The frozen parameters of a linkage run over ``n_records`` records with ``model``."""
        if linkage.weights is None:
            raise ValueError("this linkage carries no trained weights (it was not run here): link the "
                             "district again to freeze its parameters")
        pop = model.population or max(n_records, model.min_population)
        return Frozen(linkage.weights, dataclasses.replace(model, population=pop), n_records)

    def tf(self, counts: np.ndarray) -> np.ndarray:
        """log2 u of agreeing on a value held by ``counts`` records (the base's denominator)."""
        return _tf_log_u(np.asarray(counts, dtype=float), self.n_base, self.model)

    def weights_for(self, k: _Keys) -> _Weights:
        """The frozen weights with term frequencies counted over the records of ``k``."""
        tf = {f: self.tf(_term_counts(getattr(k, col))) for f, col in TF_FIELDS.items()}
        return dataclasses.replace(self.weights, tf=tf)


def relink(persons: pd.DataFrame, existing: pd.Series | None, frozen: Frozen) -> Linkage:
    """The full linkage of ``persons`` (every record keyed and blocked) with ``frozen``
    parameters: what :func:`link_new` equals, and the batch with the online parameters."""
    return _link(persons.reset_index(drop=True), existing, frozen.model, weights=frozen.weights_for)


def _take(k: _Keys, pos: np.ndarray) -> _Keys:
    return _Keys(**{f: getattr(k, f)[pos] for f in KEY_ARRAYS}, attributes=k.attributes)


def _cat(a: _Keys, b: _Keys) -> _Keys:
    return _Keys(**{f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in KEY_ARRAYS},  # type: ignore[arg-type]
                 attributes=a.attributes or b.attributes)


def _ragged(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(which range, position) for every position of the ranges [lo, hi)."""
    n = hi - lo
    which = np.repeat(np.arange(len(lo)), n)
    start = np.repeat(lo - np.cumsum(n) + n, n)
    return which, start + np.arange(len(which))


class _Sorted:
    """Values sorted once, with their positions: the positions holding given values by binary searches."""

    def __init__(self, values: np.ndarray, keep: np.ndarray | None = None):
        pos = np.flatnonzero(values != 0) if keep is None else np.flatnonzero((values != 0) & keep)
        order = np.argsort(values[pos], kind="stable")
        self.values, self.pos = values[pos][order], pos[order]

    def range(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.searchsorted(self.values, q, side="left"), np.searchsorted(self.values, q, side="right")

    def find(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into ``q``, position) of every record holding a value of ``q``."""
        lo, hi = self.range(q)
        which, at = _ragged(lo, hi)
        return which, self.pos[at]


@dataclass(frozen=True)
class LinkState:
    """A linked district kept for :func:`link_new`: base records (sorted once) plus the few
    records linked since (the delta, scanned; :meth:`merged` sorts them into the base, as a
    fold does). Immutable: :func:`link_new` returns a new one."""

    frozen: Frozen
    base: _Keys
    blocks: tuple[_Sorted, ...]       # per blocking rule, the base's keys
    tf_values: tuple[_Sorted, ...]    # per TF_FIELDS field, the base's values (counts: ranges)
    tf_grouped: tuple[_Sorted, ...]   # the same, among records of groups of two or more
    group: np.ndarray                 # per base record, its group's code
    members: _Sorted                  # base records by group code + 1
    keys: np.ndarray                  # group code -> key (person_key)
    delta: _Keys                      # the records linked since, in order
    delta_group: np.ndarray

    @property
    def n(self) -> int:
        return self.base.n + self.delta.n

    @staticmethod
    def build(persons: pd.DataFrame, person_key: pd.Series, frozen: Frozen) -> LinkState:
        """The state of a district's persons table and its keys (every record must have one)."""
        kb = _keys(persons.reset_index(drop=True), frozen.model.attributes)
        code, uniq = _prior_keys(kb.pid, person_key)
        if (code < 0).any():
            raise ValueError("LinkState: a person record of the table has no key")
        return LinkState._sorted(frozen, kb, code, np.asarray(uniq, dtype=object))

    @staticmethod
    def _sorted(frozen: Frozen, kb: _Keys, code: np.ndarray, keys: np.ndarray) -> LinkState:
        """The state of records ``kb`` in groups ``code`` (named by ``keys``), all in the base."""
        size = np.bincount(code, minlength=len(keys))
        multi = size[code] > 1
        return LinkState(
            frozen=frozen, base=kb, blocks=tuple(_Sorted(key) for _, key in _block_rules(kb)),
            tf_values=tuple(_Sorted(getattr(kb, c)) for c in TF_FIELDS.values()),
            tf_grouped=tuple(_Sorted(getattr(kb, c), multi) for c in TF_FIELDS.values()),
            group=code, members=_Sorted(code + 1), keys=keys,
            delta=_take(kb, np.zeros(0, np.int64)), delta_group=np.zeros(0, np.int64))

    def merged(self) -> LinkState:
        """This state with the records linked since sorted into the base: the same records in
        the same order, groups, keys and frozen parameters (so :func:`link_new` decides as it
        would have), without the scans of the delta that grow with every add."""
        if not self.delta.n:
            return self
        return LinkState._sorted(self.frozen, _cat(self.base, self.delta),
                                 np.r_[self.group, self.delta_group].astype(np.int64), self.keys)

    def _counts(self, field: int, values: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """Records holding each of ``values`` among the base, the delta and ``extra``."""
        lo, hi = self.tf_values[field].range(values)
        col = list(TF_FIELDS.values())[field]
        # Binary searches in the delta and ``extra`` sorted, not a table of values x records.
        return (hi - lo) + _held(np.sort(getattr(self.delta, col)), values) + _held(np.sort(extra), values)


def _local(sub: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Where each of ``pos`` is in ``sub`` (sorted, unique, holding every one of them)."""
    at = np.searchsorted(sub, pos)
    ok = at < len(sub)
    ok[ok] = sub[at[ok]] == pos[ok]
    if not ok.all():
        raise ValueError("link_new: a candidate record outside the records compared")
    return at.astype(np.int64)


def _held(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """How many of ``sorted_values`` equal each value of ``q``."""
    return np.searchsorted(sorted_values, q, side="right") - np.searchsorted(sorted_values, q, side="left")


@dataclass(frozen=True)
class Linked:
    """What :func:`link_new` decided: the new records' keys (None when the add changes known
    people's keys: two known people linked, or a known group split), the records of the
    groups the new records joined (positions), and the state after."""

    keys: pd.Series | None
    joined: np.ndarray
    state: LinkState | None
    stats: dict[str, float]
    pairs: pd.DataFrame  # the pairs compared (positions of the records), their weight and decision


def link_new(state: LinkState, persons: pd.DataFrame) -> Linked:
    """Link new person records (``persons``, the keys table's columns) against ``state``."""
    fz, model = state.frozen, state.frozen.model
    kr = _keys(persons.reset_index(drop=True), model.attributes)
    nb, nd, nr = state.base.n, state.delta.n, kr.n
    n_old = nb + nd
    # ------------------------------------------------ candidates: pairs with a new record
    pi, pj = [], []
    delta_rules = _block_rules(state.delta)
    for r, (_, key) in enumerate(_block_rules(kr)):
        dkey = delta_rules[r][1]
        lo, hi = state.blocks[r].range(key)
        size = (hi - lo) + (key[:, None] == dkey[None, :]).sum(axis=1) + (key[:, None] == key[None, :]).sum(axis=1)
        ok = (key != 0) & (size >= 2) & (size <= model.max_block)
        a = np.flatnonzero(ok)
        which, at = _ragged(lo[a], hi[a])
        pi.append(n_old + a[which])
        pj.append(state.blocks[r].pos[at])
        di, dj = np.nonzero(key[a][:, None] == dkey[None, :])
        pi.append(n_old + a[di])
        pj.append(nb + dj)
        ri, rj = np.nonzero((key[a][:, None] == key[None, :]) & (a[:, None] < np.arange(nr)[None, :]))
        pi.append(n_old + a[ri])
        pj.append(n_old + rj)
    ci, cj = np.concatenate(pi).astype(np.int64), np.concatenate(pj).astype(np.int64)
    lo_, hi_ = np.minimum(ci, cj), np.maximum(ci, cj)
    first = np.zeros(len(ci), dtype=bool)  # each pair once, at its first occurrence (numpy: pandas' fixed cost)
    first[np.unique((lo_ << np.int64(32)) | hi_, return_index=True)[1]] = True
    ci, cj = ci[first], cj[first]
    # ------------------------------------------------ the existing groups to re-check
    old = cj[cj < n_old]
    groups = [state.group[old[old < nb]], state.delta_group[old[old >= nb] - nb]]
    for f, col in enumerate(TF_FIELDS.values()):
        v = getattr(kr, col)
        v = np.unique(v[v != 0])
        _, hold = state.tf_grouped[f].find(v)
        groups.append(state.group[hold])
        d = getattr(state.delta, col)
        groups.append(state.delta_group[np.isin(d, v) & (d != 0)])
    g = np.unique(np.concatenate(groups))
    _, bmem = state.members.find(g + 1)
    dmem = nb + np.flatnonzero(np.isin(state.delta_group, g))
    olds = np.concatenate([np.sort(bmem), dmem])
    # ------------------------------------------------ the sub-linkage: those groups and the new records
    sub = np.concatenate([olds, n_old + np.arange(nr)])
    ob, od = olds[olds < nb], olds[olds >= nb] - nb
    ks = _cat(_cat(_take(state.base, ob), _take(state.delta, od)), kr)
    n_o = len(olds)
    prior = np.r_[state.group[ob], state.delta_group[od]].astype(np.int64)  # group codes of the known records
    # Pairs inside each re-checked group (both records known), then the candidates.
    order = np.argsort(prior, kind="stable")
    pg = prior[order]
    starts = np.flatnonzero(np.r_[True, pg[1:] != pg[:-1]]) if len(pg) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(pg)])
    ei, ej = [], []
    for s, z in zip(starts[sizes > 1], sizes[sizes > 1]):
        m = order[s:s + z]
        a, b = np.triu_indices(z, 1)
        ei.append(m[a])
        ej.append(m[b])
    ei_ = np.concatenate(ei).astype(np.int64) if ei else np.zeros(0, np.int64)
    ej_ = np.concatenate(ej).astype(np.int64) if ej else np.zeros(0, np.int64)
    i = np.r_[_local(sub, ci), ei_]
    j = np.r_[_local(sub, cj), ej_]
    levels = _compare(ks, i, j, graph=False)
    tf = {}
    for f, (name, col) in enumerate(TF_FIELDS.items()):
        v = getattr(ks, col)
        c = np.ones(len(v))
        has = v != 0
        c[has] = state._counts(f, v[has], getattr(kr, col))
        tf[name] = fz.tf(c)
    wt = dataclasses.replace(fz.weights, tf=tf)
    weight = _score(levels, wt, i)
    judged = weight.copy()
    judged[len(ci):] += model.keep_margin
    t = model.weight_threshold(n_old + nr)
    acc = _accept(levels, judged, t)
    comp, _, gstats = _groups(ks, i[acc], j[acc], weight[acc], levels["id_number"][acc] == ID_TRANSPOSED, model)
    named = _named(ks.pid, comp)
    pcode, puniq = pd.factorize(prior)
    was = state.keys[prior]
    key = named if not n_o else _keep_keys(ks.pid, comp, named, np.r_[pcode, np.full(nr, -1)].astype(np.int64),
                                           state.keys[np.asarray(puniq, dtype=np.int64)])
    stats = {"records_compared": len(sub), "candidate_pairs": len(ci), "pairs_existing_groups": len(ei_),
             "accepted_pairs": int(acc.sum()), **gstats}
    pairs = pd.DataFrame({"i": sub[i], "j": sub[j], "weight": weight, "accepted": acc})
    if (key[:n_o] != was).any():
        return Linked(None, olds, None, stats, pairs)
    new_keys = key[n_o:]
    # Each new record's group code: the code of a known record of its component, else a new one.
    comp_code = np.full(int(comp.max()) + 1 if len(comp) else 0, -1, dtype=np.int64)
    comp_code[comp[:n_o]] = prior
    at = comp_code[comp[n_o:]]
    # ------------------------------------------------ the state after: the new records join the delta
    fresh = at < 0
    uniq_new, inv = np.unique(comp[n_o:][fresh], return_inverse=True)
    at[fresh] = len(state.keys) + inv
    first_of = np.unique(inv, return_index=True)[1]
    # Grown through spare capacity: one key per known person, copied by each add it was (~9 ms at a million).
    keys = grow(state.keys, np.asarray(new_keys[fresh][first_of], dtype=object))
    out = dataclasses.replace(state, keys=keys, delta=_cat(state.delta, kr),
                              delta_group=np.r_[state.delta_group, at].astype(np.int64))
    # Records of the groups the new records joined (the new records' positions included).
    joined = np.r_[olds[np.isin(prior, at[~fresh])], n_old + np.arange(nr)]
    return Linked(pd.Series(new_keys, index=pd.Index(kr.pid, name="person_id"), name="person_key", dtype=object),
                  np.sort(joined), out, stats, pairs)
