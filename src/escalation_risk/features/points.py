"""Points to score: a dispute at a moment, with its own facts and its parties.

A :class:`PointSet` holds, for many points at once, what the feature families need
about the disputes themselves. It is built either from the history (the batch
path: the dispute is a record of the Dataset) or from plain dicts (the online
path: ``score_dispute``), so both paths feed the same family code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..known import outcome_since
from .index import ALWAYS, SHIFT, HistoryIndex, to_secs, unique_keys


@dataclass
class PointSet:
    """Disputes at moments, arranged as arrays (one entry per point)."""

    dispute_id: np.ndarray
    as_of: np.ndarray            # datetime64[ns]
    t: np.ndarray                # as_of in int64 seconds
    d: np.ndarray                # position of the dispute in the history, -1 if not there
    category: np.ndarray
    source: np.ndarray
    amount: np.ndarray
    rep: np.ndarray
    occ: np.ndarray
    place: np.ndarray
    signals: np.ndarray          # (n, signals) text signals of the dispute's own description
    pp_pt: np.ndarray            # person parties: point, canonical person number, role
    pp_person: np.ndarray
    pp_role: np.ndarray
    op_pt: np.ndarray            # organisation parties: point, org number
    op_org: np.ndarray
    # Mediations and notes given with an online request that the history does not hold yet.
    extra_mediations: pd.DataFrame = field(default_factory=lambda: _mediations([], [], []))
    # (point, recorded_at seconds, 0/1 signal matrix) of each note given online.
    extra_notes: tuple[np.ndarray, np.ndarray, np.ndarray] = field(
        default_factory=lambda: _notes([], [], np.zeros((0, 0), np.int8)))

    def __len__(self) -> int:
        return len(self.t)


def _mediations(pt, t, failed, out_t=None) -> pd.DataFrame:
    t = np.asarray(t, np.int64)
    return pd.DataFrame({"pt": np.asarray(pt, np.int64), "t": t, "failed": np.asarray(failed, bool),
                         "out_t": t if out_t is None else np.maximum(np.asarray(out_t, np.int64), t)})


def _notes(pt, t, signals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.asarray(pt, np.int64), np.asarray(t, np.int64), np.asarray(signals, np.int8)


def _as_of_array(as_of) -> np.ndarray:
    return pd.to_datetime(pd.Series(as_of)).to_numpy(dtype="datetime64[ns]")


def points_from_history(idx: HistoryIndex, points: pd.DataFrame) -> PointSet:
    """The batch path: each point names a dispute of the history and a moment."""
    missing = [c for c in ("dispute_id", "as_of") if c not in points.columns]
    if missing:
        raise ValueError(f"points needs columns dispute_id and as_of; missing {missing}")
    ids = points["dispute_id"].to_numpy(dtype=object)
    d = idx.incident_positions(ids)
    as_of = _as_of_array(points["as_of"])
    if np.isnat(as_of).any():
        raise ValueError(f"points: as_of is missing or not a timestamp in row(s) "
                         f"{np.flatnonzero(np.isnat(as_of))[:10].tolist()}")
    t = to_secs(as_of, ALWAYS)
    unknown = d < 0
    if unknown.any():
        raise ValueError(f"points: {int(unknown.sum())} dispute_id(s) not in the data, e.g. "
                         f"{ids[unknown][:5].tolist()}")
    not_dispute = idx.inc_kind[d] != "dispute"
    if not_dispute.any():
        raise ValueError(f"points: {int(not_dispute.sum())} id(s) are not disputes, e.g. "
                         f"{ids[not_dispute][:5].tolist()}")
    early = idx.inc_rep[d] > t
    if early.any():
        raise ValueError(f"points: {int(early.sum())} point(s) have as_of before the dispute was reported "
                         f"(nothing is known of it then), e.g. {ids[early][:5].tolist()}")
    # Parties on the dispute by as_of (added_at; null: from the report).
    pp_pt, pos = idx.party_inc.expand(d, None, t)
    op_pt, opos = idx.org_party_inc.expand(d, None, t)
    return PointSet(
        dispute_id=ids, as_of=as_of, t=t, d=d,
        category=idx.inc_category[d], source=idx.inc_source[d], amount=idx.inc_amount[d],
        rep=idx.inc_rep[d], occ=idx.inc_occ[d], place=idx.inc_place[d],
        signals=idx.inc_signals[d],
        pp_pt=pp_pt, pp_person=idx.party_inc.payload["person"][pos], pp_role=idx.party_inc.payload["role"][pos],
        op_pt=op_pt, op_org=idx.org_party_inc.payload["org"][opos],
    )


def points_from_records(idx: HistoryIndex, incidents: pd.DataFrame, parties: pd.DataFrame,
                        as_of, mediations: pd.DataFrame | None = None,
                        notes: pd.DataFrame | None = None) -> PointSet:
    """The online path: disputes given as validated contract rows (one per point).

    ``incidents``, ``parties``, ``mediations`` and ``notes`` have the contract's columns
    and types (see ``Dataset``'s tables). Parties, mediations and notes refer to the
    disputes by ``incident_id``. A dispute that is also in the history keeps the
    history's follow-ups, mediations and notes; those given here are added when new.
    Parties added, outcomes and notes recorded after a point's as_of are not read.
    """
    n = len(incidents)
    ids = incidents["incident_id"].to_numpy(dtype=object)
    as_of = _as_of_array(as_of if np.ndim(as_of) else [as_of] * n)
    t = to_secs(as_of, ALWAYS)
    rep = to_secs(incidents["reported_at"], ALWAYS)
    if (rep > t).any():
        raise ValueError("as_of is before the dispute's reported_at: nothing is known of it then")
    pt_of = pd.Index(ids)
    if "added_at" in parties:  # a party added after as_of is not on the dispute yet
        p_pt = pt_of.get_indexer(parties["incident_id"].to_numpy(dtype=object))
        p_added = to_secs(parties["added_at"], ALWAYS)
        parties = parties[p_added <= t[np.maximum(p_pt, 0)]]
    is_person = (parties["party_type"] == "person").to_numpy()
    pp_pt = pt_of.get_indexer(parties["incident_id"].to_numpy(dtype=object)[is_person]).astype(np.int64)
    pp_person = idx.person_ints(parties["party_id"].to_numpy(dtype=object)[is_person])
    roles = parties["role"].astype(object).to_numpy()[is_person]
    # People unknown to the history still count as parties; they have no record to look up.
    order = np.argsort(pp_pt, kind="stable")
    orgs = ~is_person
    op_pt = pt_of.get_indexer(parties["incident_id"].to_numpy(dtype=object)[orgs]).astype(np.int64)
    op_org = idx.orgs.get_indexer(parties["party_id"].to_numpy(dtype=object)[orgs]).astype(np.int64)
    ok = op_org >= 0
    op = unique_keys(op_pt[ok] * SHIFT + op_org[ok])
    extra = _mediations([], [], [])
    if mediations is not None and len(mediations):
        new = mediations[idx.med_ids.get_indexer(mediations["mediation_id"].to_numpy(dtype=object)) < 0]
        extra = _mediations(pt_of.get_indexer(new["incident_id"].to_numpy(dtype=object)),
                            to_secs(new["held_at"], ALWAYS), (new["outcome"] == "failed").to_numpy(),
                            to_secs(outcome_since(new), ALWAYS))
    extra_notes = _notes([], [], np.zeros((0, len(idx.lexicon.signals)), np.int8))
    if notes is not None and len(notes):
        new = notes[idx.note_ids.get_indexer(notes["note_id"].to_numpy(dtype=object)) < 0]
        extra_notes = _notes(pt_of.get_indexer(new["incident_id"].to_numpy(dtype=object)),
                             to_secs(new["recorded_at"], ALWAYS), idx.lexicon.matrix(new["text"]))
    return PointSet(
        dispute_id=ids, as_of=as_of, t=t, d=idx.incident_positions(ids),
        category=incidents["category"].astype(object).to_numpy(),
        source=incidents["source"].astype(object).to_numpy(),
        amount=incidents["amount"].to_numpy(dtype="float64"),
        rep=rep, occ=to_secs(incidents["occurred_at"], ALWAYS),
        place=idx.places.get_indexer(incidents["place_id"].to_numpy(dtype=object)),
        signals=idx.lexicon.matrix(incidents["description"]),
        pp_pt=pp_pt[order], pp_person=pp_person[order], pp_role=roles[order],
        op_pt=op // SHIFT, op_org=op % SHIFT,
        extra_mediations=extra, extra_notes=extra_notes,
    )


__all__ = ["PointSet", "points_from_history", "points_from_records"]
