"""A long-running process's memory: a replaced index is freed; what a service froze stays frozen."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import pandas as pd
import pytest
from conftest import KEY  # noqa: E402

from escalation_risk import Scorer, collector
from escalation_risk.idnumbers import gb11643_check_digit


def _namesakes(tag: str, id_stem: str) -> tuple[dict, dict]:
    """Two people (one id number, one phone) and a record joining them: its add rebuilds the index."""
    idn = id_stem + gb11643_check_digit(id_stem)

    def person(pid, id_number, phone):
        return {"person_id": pid, "birth_year": 1980, "gender": "male", "hukou": "local", "employment": "employed",
                "name": "欧阳明远", "id_number": id_number, "phone": phone}

    apart = {"persons": [person(f"P-{tag}A", idn, "13912345671"), person(f"P-{tag}B", None, "13987654322")]}
    joined = {"persons": [person(f"P-{tag}R", idn, "13987654322")]}
    return apart, joined


def _in_sight(obj) -> bool:
    """Whether the collector's generations hold ``obj`` (a frozen object is in none)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def collector_as_found():
    """Whatever a test freezes or sets, the collector is given back as it was found."""
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _disputes(people, n: int) -> list[dict]:
    day = pd.Timestamp("2025-06-10")
    return [{"incidents": [{"incident_id": f"D-C{j}", "kind": "dispute", "category": "neighbor", "occurred_at": day,
                            "reported_at": day, "source": "grid_worker", "description": "邻里纠纷"}],
             "incident_parties": [{"incident_id": f"D-C{j}", "party_id": p, "party_type": "person", "role": r}
                                  for p, r in zip((people[2 * j], people[2 * j + 1]), ("complainant", "respondent"))]}
            for j in range(n)]


@pytest.mark.parametrize("fold", ["inline", "background"])
@pytest.mark.parametrize("replaced_by", ["rebuild", "fold"])
def test_an_index_replaced_by_a_fold_or_a_rebuild_is_freed(small_model, small_district, monkeypatch, fold,
                                                           replaced_by):
    """The index a Scorer was built with is cached on its history's base Dataset; a fold or a
    rebuild that keeps that base (a background rebuild does) must not keep the old index
    alive through it: at a million people, a second whole index for the process's life."""
    from escalation_risk.features import delta

    monkeypatch.setattr(delta, "delta_limit", lambda n_base: 12)
    # A history only the scorer holds, as a server's (a caller's Dataset keeps its own index).
    sc = Scorer(small_model, dataclasses.replace(small_district, cache={}), pseudonym_key=KEY, fold=fold)
    old = weakref.ref(sc._state.idx)
    if replaced_by == "rebuild":
        apart, joined = _namesakes("F", "33010219800312458")
        sc.add(**apart)
        sc.add(**joined)
    else:
        for a in _disputes(small_district.persons["person_id"].to_numpy(dtype=object), 8):
            sc.add(**a)
    assert sc.wait_for_fold(120)
    assert sc.fold_error is None
    assert (sc.rebuilds, sc.folds > 0) == ((1, False) if replaced_by == "rebuild" else (0, True))
    assert sc._state.idx is not old()
    gc.collect()
    assert old() is None


def test_freezing_is_for_a_process_that_froze_what_it_loaded(collector_as_found):
    """keep_frozen freezes only in a process that froze what it loaded (a service); a
    notebook's collector is left alone. Freezing also spaces the full collections."""
    young, middle, full = gc.get_threshold()
    collector.keep_frozen()
    assert not collector.frozen() and gc.get_freeze_count() == 0
    kept = [[i] for i in range(1000)]
    collector.freeze_loaded()
    assert collector.frozen() and not _in_sight(kept)
    assert gc.get_threshold() == (young, middle, max(full, collector.FULL_EVERY))
    later = [[i] for i in range(1000)]
    collector.keep_frozen()
    # what was made since is frozen too (counted by identity: the frozen count alone can fall
    # meanwhile, when another thread frees a frozen object)
    assert not _in_sight(later) and gc.get_freeze_count() >= len(later)


def test_a_callers_dataset_keeps_its_index_when_the_scorer_replaces_its_own(small_model, small_district):
    """The scorer drops a replaced index from its own history's cache, never from the Dataset
    the caller gave it: a notebook (or the desk) reading that Dataset afterwards reuses its
    index instead of building it again."""
    ds = dataclasses.replace(small_district, cache={})
    sc = Scorer(small_model, ds, pseudonym_key=KEY, fold="background")
    built = ds.cache["history_index"]
    apart, joined = _namesakes("K", "33010219800312459")
    sc.add(**apart)
    sc.add(**joined)
    assert sc.wait_for_fold(120) and sc.rebuilds == 1 and sc.fold_error is None
    assert ds.cache.get("history_index") is built
    disputes = ds.incidents.loc[ds.incidents["kind"] == "dispute", "incident_id"]
    pts = pd.DataFrame({"dispute_id": disputes.iloc[:3].to_numpy(),
                        "as_of": [pd.Timestamp("2025-03-01")] * 3})
    small_model.features(ds, pts)
    assert ds.cache.get("history_index") is built


@pytest.mark.parametrize("fold", ["inline", "background"])
def test_in_a_frozen_service_what_a_rebuild_publishes_is_frozen_too(small_model, small_district, fold,
                                                                    collector_as_found):
    """After freeze_loaded (a service), a rebuild's published state joins the frozen objects:
    else every later full collection walks it (the adds re-applied, their frames). In a
    process that froze nothing, nothing is frozen."""
    sc = Scorer(small_model, dataclasses.replace(small_district, cache={}), pseudonym_key=KEY, fold=fold)
    apart, joined = _namesakes("Z" + fold[0], "33010219800312450")
    sc.add(**apart)
    sc.add(**joined)
    assert sc.wait_for_fold(120) and sc.rebuilds == 1
    assert not collector.frozen()  # a notebook: untouched
    collector.freeze_loaded()
    apart, joined = _namesakes("Y" + fold[0], "33010219800312451")
    sc.add(**apart)
    sc.add(**joined)
    assert sc.wait_for_fold(120) and sc.rebuilds == 2 and sc.fold_error is None
    assert not _in_sight(sc._state) and not _in_sight(sc._state.history)
