"""The linker: decisions, the result, and the public functions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..clock import to_moment
from ..dataset import Dataset
from ..known import persons_known
from ..memory import batch_memory
from .blocking import _block_rules, _candidates
from .comparisons import _compare, _compare_graph
from .evidence import EVIDENCE_COLUMNS, GraphEvidence, _graph_arrays, graph_evidence
from .groups import _existing_pairs, _groups, _keep_keys, _named, _prior_keys
from .ids import _ids_unique
from .keys import _Keys, _keys
from .model import (
    ATTRIBUTE_FIELDS,
    DEFAULT_MODEL,
    FIELDS,
    GRAPH_MODEL,
    ID_CHECK,
    ID_CONFLICT,
    ID_EXACT,
    ID_TRANSPOSED,
    ID_TYPO,
    LEVELS,
    NAME_DIFFERENT,
    NAME_SHAPE,
    NAME_SOUND,
    PLACE_SHARED,
    RULE_ID,
    LinkageModel,
)
from .parameters import TF_FROM_BLOCKING, _estimate, _score, _Weights, parameters_table


def _accept(levels: dict[str, np.ndarray], weight: np.ndarray, threshold: float) -> np.ndarray:
    idl, name, birth, phone, gender = (levels[f] for f in FIELDS[:5])
    id_pos = np.isin(idl, (ID_CHECK, ID_TYPO, ID_TRANSPOSED))
    same_year = np.isin(birth, (1, 2, 4))
    # Without id evidence a pair needs the birth year, no contrary sex, and a name that
    # sounds the same or looks the same (伟/伦: a clerk's misreading) with either the phone
    # or evidence from the graph (a shared counterpart, household, place or grid): name and
    # birth year alone never link (a district has namesakes).
    alike = np.isin(name, NAME_SOUND + (NAME_SHAPE,)) & same_year & (gender != 2)
    triple = (phone == 1) & alike
    graph = (levels["counterparty"] == 1) | np.isin(levels["place"], PLACE_SHARED)
    with_graph = graph & alike
    # A transposition between two valid ids counts only when everything else agrees: the
    # name sounds the same, the birth year is the same, no phone or gender differs.
    all_else = np.isin(name, (1, 2)) & same_year & (phone != 2) & (gender != 2)
    ok = (weight >= threshold) & (idl != ID_CONFLICT) & (id_pos | triple | with_graph)
    # The same id number is the same person (the identifier the law gives), unless the names
    # differ outright and the weights do not carry it: then it is a mistyped id that landed on
    # another person's number.
    same_id = (idl == ID_EXACT) & ((name != NAME_DIFFERENT) | (weight >= threshold))
    return same_id | (ok & ((idl != ID_TRANSPOSED) | all_else))


def _graph_rows(idl: np.ndarray, model: LinkageModel) -> np.ndarray:
    """The candidate pairs whose graph levels are compared: every pair but those with two
    valid, different id numbers (two people whatever the graph says), of which a seeded
    sample of ``graph_u_sample`` is kept for the graph levels' u among namesakes."""
    need = idl != ID_CONFLICT
    two = np.flatnonzero(~need)
    if len(two) > model.graph_u_sample:
        two = np.random.default_rng(model.seed + 2).choice(two, model.graph_u_sample, replace=False)
    need[two] = True
    return need


@dataclass
class Linkage:
    """One linkage run: the key per record, the scored candidate pairs, the figures, and the
    trained parameters (:func:`~escalation_risk.linking.parameters.parameters_table`)."""

    key: pd.Series
    pairs: pd.DataFrame
    stats: dict[str, float]
    parameters: pd.DataFrame = field(default_factory=pd.DataFrame)
    # The trained weights themselves (term frequencies of this run's records): what linking
    # more records with the same parameters needs (:mod:`.incremental`). Never shown.
    weights: Any = None


# The dtype pandas gives an index of text ids (``str`` in pandas 3, object before).
_TEXT_INDEX = pd.Index(np.array(["P1"], dtype=object)).dtype


def _id_index(column: pd.Series, ids: np.ndarray) -> pd.Index:
    """The result's index of the records' ids: from a column already of the dtype pandas gives
    text ids, that column (no dtype inferred again over a million objects), else ``ids``."""
    if column.dtype == _TEXT_INDEX and column.dtype != object:
        return pd.Index(column.array, name="person_id")
    return pd.Index(ids, name="person_id")


def link_keys(keys: pd.DataFrame, existing: pd.Series | None = None,
              model: LinkageModel = DEFAULT_MODEL, graph: pd.DataFrame | GraphEvidence | None = None) -> Linkage:
    """Link the records of a keys table (``person_id``, ``birth_year``, ``gender``, ``lk_*``).

    ``existing`` is an earlier ``person_key`` Series: its records keep their keys; only
    pairs involving a new record, and pairs inside an existing group, are compared.
    ``graph`` is graph evidence (:func:`~escalation_risk.linking.graph_evidence`: a frame
    with rows for any of the records, or its ``as_frame=False`` form, the matrices, which
    spares the frame); without it the graph levels are missing.
    """
    persons = keys.reset_index(drop=True)
    if "person_id" not in persons.columns:
        raise ValueError("link_keys: the keys table needs a 'person_id' column")
    known = isinstance(graph, GraphEvidence) and model.graph and graph.unique_ids(persons["person_id"])
    if not known and (persons["person_id"].isna().any() or not _ids_unique(persons["person_id"])):
        raise ValueError("link_keys: column 'person_id' has missing or duplicate values; each record needs "
                         "its own id")
    if isinstance(graph, pd.DataFrame) and not set(EVIDENCE_COLUMNS) <= set(graph.columns):
        raise ValueError(f"link_keys: graph evidence needs the columns {EVIDENCE_COLUMNS}, got {list(graph.columns)}")
    return _link(persons, existing, model, graph)


def _link(persons: pd.DataFrame, existing: pd.Series | None, model: LinkageModel,
          graph: pd.DataFrame | GraphEvidence | None = None,
          weights: Callable[[_Keys], _Weights] | None = None) -> Linkage:
    """The linkage of ``persons``; ``weights``: parameters given (frozen, of the records' keys)
    instead of estimated on these records (:mod:`.incremental`)."""
    # CPU seconds per stage ride in the figures (``cpu_*``): where a linkage's time goes.
    clock = [time.process_time()]

    def lap() -> float:
        clock.append(time.process_time())
        return clock[-1] - clock[-2]

    # The graph evidence of these very records already holds their ids as objects: shared.
    pid = graph.pid if model.graph and isinstance(graph, GraphEvidence) and graph.same_ids(persons["person_id"]) \
        else None
    k = _keys(persons, model.attributes, pid)
    if model.graph and graph is not None:
        k.graph = _graph_arrays(graph, k.pid)
    cpu = {"cpu_keys": lap()}
    n = k.n
    new = None
    if existing is not None:
        prior_code, prior_keys = _prior_keys(k.pid, existing)
        new = prior_code < 0
    rules = _block_rules(k)  # made once: the blocking's keys, then the training sessions'
    holders = {f: np.ones(n) for f in TF_FROM_BLOCKING} if weights is None else None
    i, j, _, stats = _candidates(k, model, new, rules, holders)
    cpu["cpu_blocking"] = lap()
    if existing is not None:
        ei, ej = _existing_pairs(prior_code)
        # Both records old: never among the candidates, which all involve a new record.
        i, j = np.r_[i, ei], np.r_[j, ej]
        stats["pairs_existing_groups"] = len(ei)
    gcounts: dict[str, np.ndarray] = {}
    levels = _compare(k, i, j, graph=False)
    compared = None
    if model.graph and k.graph is not None:
        compared = _graph_rows(levels["id_number"], model)
        rows = np.flatnonzero(compared)
        glevels, counts = _compare_graph(k.graph, i[rows], j[rows], levels["id_number"][rows] == 0)
        for out, part in ((levels, glevels), (gcounts, counts)):
            for name, v in part.items():
                out[name] = np.zeros(len(i), dtype=v.dtype)
                out[name][rows] = v
    cpu["cpu_comparing"] = lap()
    wt = _estimate(k, model, levels, i, j, compared, dict(rules), holders) if weights is None else weights(k)
    del rules, holders
    cpu["cpu_training"] = lap()
    weight = _score(levels, wt, i, gcounts, j, k.graph.items_held() if k.graph is not None else None)
    t = model.weight_threshold(n)
    judged = weight
    if existing is not None and len(ei):
        judged = weight.copy()
        judged[len(i) - len(ei):] += model.keep_margin
    acc = _accept(levels, judged, t)
    prior = model.prior_log2_odds(n)
    prob = 1.0 / (1.0 + np.exp2(-np.clip(weight + prior, -1000, 1000)))
    ai, aj = i[acc], j[acc]
    cpu["cpu_scoring"] = lap()
    comp, kept, gstats = _groups(k, ai, aj, weight[acc], levels["id_number"][acc] == ID_TRANSPOSED, model)
    stats.update(gstats)
    ids = k.pid
    key_arr = _named(ids, comp)
    if existing is not None:
        key_arr = _keep_keys(ids, comp, key_arr, prior_code, prior_keys)
    out = pd.Series(key_arr, index=_id_index(persons["person_id"], ids), name="person_key", dtype=object)
    accepted_kept = np.zeros(len(i), dtype=bool)
    accepted_kept[np.flatnonzero(acc)[kept]] = True
    pairs = pd.DataFrame({"i": i, "j": j, "weight": weight, "match_probability": prob, "accepted": acc,
                          "kept": accepted_kept, **levels})
    graph_route = accepted_kept & ~np.isin(levels["id_number"], (ID_EXACT, ID_CHECK, ID_TYPO, ID_TRANSPOSED)) \
        & (levels["phone"] != 1)
    cpu["cpu_grouping"] = lap()
    stats.update(cpu)
    stats.update({
        "records": n, "candidate_pairs": len(i), "accepted_pairs": int(acc.sum()),
        "kept_pairs": int(accepted_kept.sum()), "threshold": model.threshold, "weight_threshold": t,
        "prior_log2_odds": prior,
        "expected_false_matches": float((1.0 - prob[accepted_kept]).sum()),
        "persons": int((np.bincount(comp) > 0).sum()),
        "pairs_linked_by_graph_evidence": int(graph_route.sum()),
        **{f"em_share_of_matches_{name}": v for name, v in wt.lam.items()},
        "namesake_pairs_for_graph_u": wt.namesakes,
        # The u among namesakes over the random pairs': the graph's levels, and the attributes'.
        **{f"{'attribute' if f in ATTRIBUTE_FIELDS else 'graph'}_u_namesakes_over_random_{f}_{LEVELS[f][lv]}": r
           for (f, lv), r in wt.ratio.items()},
    })
    table = parameters_table(wt, model.applied(k.graph is not None))
    return Linkage(key=out, pairs=pairs, stats=stats, parameters=table, weights=wt)


def link_persons(ds: Dataset, existing: pd.Series | None = None,
                 model: LinkageModel = DEFAULT_MODEL, *, as_of=None) -> pd.Series:
    """Map every ``person_id`` to a canonical person key (a Series named ``person_key``).

    ``existing`` is an earlier result: people it knows keep their key, new records
    join the group they link to, or start their own. The result is cached on the
    dataset when ``existing`` is not given (and the default model is used).

    The evidence is what ``ds`` holds: identifiers, and with ``GRAPH_MODEL`` the graph
    around each record (:func:`~escalation_risk.linking.graph_evidence`). ``as_of``: link
    as known at that moment (graph evidence from records known then, by
    :mod:`escalation_risk.known`; a person record with a later ``recorded_at`` stands
    alone). Without it the linkage is read as of the export (a cut Dataset,
    ``ds.cut(t)``, is its own export at t).
    """
    return _linkage(ds, existing, model, as_of=as_of).key


def _linkage(ds: Dataset, existing: pd.Series | None, model: LinkageModel, as_of=None) -> Linkage:
    cacheable = existing is None and (model is DEFAULT_MODEL or model is GRAPH_MODEL)
    slot = "linkage" if as_of is None and model is DEFAULT_MODEL else \
        ("linkage", model.graph, None if as_of is None else to_moment(as_of, what="as_of"))
    if cacheable and slot in ds.cache:
        return ds.cache[slot]
    # The attributes compared as they stood then (their history, where the data hold one).
    persons = ds.persons if as_of is None else \
        persons_known(ds.persons, ds.person_attributes if model.attributes else None, as_of)
    with batch_memory(allocators=False):  # a batch step at a district's scale, in the caller's process
        evidence = graph_evidence(ds.tables(), as_of, as_frame=False) if model.graph else None
        res = _link(persons, existing, model, evidence)  # person_id: unique and present by the contract
    if cacheable:
        ds.cache[slot] = res
        if slot == "linkage":
            ds.cache["person_key"] = res.key
    return res


def linkage_summary(ds: Dataset, model: LinkageModel = DEFAULT_MODEL, *, as_of=None) -> dict[str, float]:
    """Figures of the dataset's linkage: candidate and accepted pairs per blocking rule,
    the posterior threshold (``threshold``: 0.99 in the default model, 0.95 in
    :data:`GRAPH_MODEL`) and the weight threshold it sets, the expected number of false matches among kept pairs, the
    components the chaining guard re-clustered."""
    return dict(_linkage(ds, None, model, as_of=as_of).stats)


def _rule(levels: pd.DataFrame) -> pd.Series:
    """A short name of the agreeing evidence: ``id_number`` when the id is the same."""
    parts = []
    idl = levels["id_number"]
    parts.append(np.where(idl.isin([ID_CHECK, ID_TYPO, ID_TRANSPOSED]),
                          "id_number~" + idl.map(dict(enumerate(LEVELS["id_number"]))).astype(str), ""))
    nm = levels["name"]
    parts.append(np.select([nm == 1, nm == 2, nm == 3, nm == NAME_SHAPE],
                           ["name", "name~pinyin", "name~fuzzy_pinyin", "name~shape"], ""))
    b = levels["birth"]
    parts.append(np.select([b == 1, b.isin([2, 4])], ["birth_date", "birth_year"], ""))
    parts.append(np.where(levels["phone"] == 1, "phone", ""))
    parts.append(np.where(levels["counterparty"] == 1, "counterparty", ""))
    pl = levels["place"]
    parts.append(np.select([pl == 1, pl == 2, pl == 3, pl == 4],
                           ["household", "place~overlapping", "place", "grid"], ""))
    joined = pd.Series(["+".join(p for p in row if p) for row in zip(*parts)], index=levels.index, dtype=object)
    return joined.where(idl != ID_EXACT, RULE_ID)


def linkage_parameters(ds: Dataset, model: LinkageModel = DEFAULT_MODEL, *, as_of=None) -> pd.DataFrame:
    """The trained parameters of the dataset's linkage: per field and level, m (learnt by
    EM, or the model's default where the data were too few: ``m_from``), u (from random
    pairs), the weight log2(m/u) in bits, and whether the level is term-frequency adjusted
    (its weight then depends on how many records hold the agreed value). Never a value."""
    return _linkage(ds, None, model, as_of=as_of).parameters.copy()


# The levels explain_links shows of an attribute: never which value two records share.
ATTRIBUTE_SHOWN = ("missing", "same", "different")


def _attribute_shown(codes: np.ndarray, f: str) -> np.ndarray:
    """An attribute's levels as :data:`ATTRIBUTE_SHOWN`'s codes (every ``same_*`` one ``same``)."""
    last = len(LEVELS[f]) - 1
    return np.where(codes == 0, 0, np.where(codes == last, 2, 1)).astype(np.int8)


def explain_links(ds: Dataset, model: LinkageModel = DEFAULT_MODEL, *, as_of=None) -> pd.DataFrame:
    """The evidence behind every link: one row per accepted pair inside one group.

    Columns: person_key, person_id, linked_to (the pair, ``linked_to`` the smaller id),
    rule (the agreeing evidence, ``id_number`` when the id is the same), weight (summed
    log2 match weight), match_probability, and the agreement level of each field
    (id_number, name, birth, phone, gender, hukou, employment, and the graph's counterparty, place,
    household_held and incident_kinds). Levels only: never a value; hukou and employment show
    ``same``, ``different`` or ``missing`` (the weight applied is still their value's level's,
    per value only in the aggregate :func:`linkage_parameters`). For two records in one household, the counterparty and
    household_held levels are shown but weigh nothing (the household implies them), so the
    weight is not the sum of every listed level's weight. Records that stand alone are not
    listed. The trained
    parameters (:func:`linkage_parameters`: levels, m, u and weights) ride along in
    ``.attrs["parameters"]``, the posterior threshold the links cleared in
    ``.attrs["threshold"]``. ``model`` and ``as_of`` as for :func:`link_persons`.
    """
    res = _linkage(ds, None, model, as_of=as_of)
    p = res.pairs[res.pairs["kept"]]
    ids = res.key.index.to_numpy(dtype=object)
    a, b = ids[p["i"].to_numpy()], ids[p["j"].to_numpy()]
    swap = a < b
    out = pd.DataFrame({"person_id": np.where(swap, b, a), "linked_to": np.where(swap, a, b)})
    out.insert(0, "person_key", out["person_id"].map(res.key))
    lv = p[list(FIELDS)].reset_index(drop=True)
    out["rule"] = _rule(lv).to_numpy()
    out["weight"] = p["weight"].round(2).to_numpy()
    out["match_probability"] = p["match_probability"].to_numpy()
    for f in FIELDS:
        codes = lv[f].to_numpy()
        if f in ATTRIBUTE_FIELDS:
            # A pair's own level would state both records' hukou or employment (a protected
            # group's attribute, fairness.GROUP_ATTRIBUTES): "same", weighed as its value's level.
            out[f] = pd.Categorical.from_codes(_attribute_shown(codes, f), categories=list(ATTRIBUTE_SHOWN))
        else:
            out[f] = pd.Categorical.from_codes(codes, categories=list(LEVELS[f]))
    same = out["person_key"].to_numpy() == out["linked_to"].map(res.key).to_numpy()
    out = out[same].sort_values(["person_key", "person_id", "linked_to"], ignore_index=True)
    out.attrs["parameters"] = res.parameters.copy()
    out.attrs["threshold"] = res.stats["threshold"]
    return out
