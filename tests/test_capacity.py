"""Arrays grown through spare capacity: room reserved ahead, and a Scorer's first add uses it."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from conftest import KEY

from escalation_risk import Scorer
from escalation_risk.capacity import grow, reserve
from escalation_risk.features.index_append import GROWN_BY_ADDS


def test_reserved_room_is_written_in_place_and_old_views_keep_their_values():
    arr = np.arange(10, dtype=np.int64)
    room = reserve(arr, 5)
    assert np.array_equal(room, arr) and room.base is not None and len(room.base) == 15
    grown = grow(room, [10, 11])
    assert grown.base is room.base  # no copy: written into the room
    assert np.array_equal(grown, np.arange(12)) and len(room) == 10
    # A second view of the same length may not extend the buffer again (it would overwrite 10, 11).
    other = grow(room, [99])
    assert other.base is not room.base and list(other) == [*range(10), 99] and list(grown[-2:]) == [10, 11]
    # Past the room, a copy twice the size; 2-D and object arrays alike.
    assert grow(grown, np.arange(12, 20)).base is not room.base
    two = reserve(np.zeros((3, 2), np.int8), 1)
    assert grow(two, np.ones((1, 2), np.int8)).base is two.base
    objs = reserve(np.array(["a", None], dtype=object), 2)
    assert list(grow(objs, ["b"])) == ["a", None, "b"]


def test_a_scorers_first_add_grows_its_arrays_in_place(small_model, small_district):
    """The Scorer reserves room when it is built, so its first add copies none of the arrays
    an add grows (the first add after a build at a million people copied 0.3 s of them)."""
    _first_add_copies_nothing(Scorer(small_model, small_district, pseudonym_key=KEY, fold="never"), small_district)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_the_first_add_after_a_rebuild_in_a_child_grows_its_arrays_in_place(small_model, small_district,
                                                                             monkeypatch):
    """A child's index comes back without the room (pickled arrays keep none): the parent
    reserves it when it adopts the index, so the first add after the rebuild copies nothing."""
    from escalation_risk import scoring

    monkeypatch.setenv("ESCALATION_RISK_WORKERS", "2")
    loads = []
    real = scoring.handover.load
    monkeypatch.setattr(scoring.handover, "load", lambda *a: loads.append(1) or real(*a))
    sc = Scorer(small_model, small_district, pseudonym_key=KEY, fold="never")
    sc._state = scoring._rebuilt_apart(sc._state.history, small_model.lexicon)
    assert loads == [1]  # handed over by a child, not built here
    _first_add_copies_nothing(sc, small_district)


def _first_add_copies_nothing(sc: Scorer, small_district) -> None:
    before = {n: getattr(sc._state.idx, n) for n in GROWN_BY_ADDS
              if isinstance(getattr(sc._state.idx, n, None), np.ndarray)}
    assert {"inc_kind", "inc_person_t", "_pid_codes", "hukou"} <= set(before)
    day = pd.Timestamp("2025-06-20")
    person = small_district.persons["person_id"].iloc[0]
    sc.add(persons=[{"person_id": "P-NEW", "birth_year": 1990, "gender": "male", "hukou": "migrant",
                     "employment": "unemployed", "name": "新人", "id_number": None, "phone": None}],
           incidents=[{"incident_id": "D-NEW", "kind": "dispute", "category": "neighbor", "occurred_at": day,
                       "reported_at": day, "source": "grid_worker"}],
           incident_parties=[{"incident_id": "D-NEW", "party_id": pid, "party_type": "person", "role": "other"}
                             for pid in ("P-NEW", person)])
    after = sc._state.idx
    for name, old in before.items():
        new = getattr(after, name)
        assert len(new) > len(old) or name == "note_signals", name
        if len(new) > len(old):
            assert new.base is old.base, f"{name} was copied"
            assert np.array_equal(new[: len(old)], old, equal_nan=new.dtype.kind == "f"), name
