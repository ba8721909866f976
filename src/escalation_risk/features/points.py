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

from ..clock import to_moments
from .id_index import positions
from .index import HistoryIndex
from .timeline import ALWAYS, to_secs


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
    # Mediations and notes given with an online request that the history does not hold yet:
    # mediations as "pt" (point), "t" (held_at, seconds), "failed", "out_t" (outcome known).
    extra_mediations: dict[str, np.ndarray] = field(default_factory=lambda: _mediations([], [], []))
    # (point, recorded_at seconds, 0/1 signal matrix) of each note given online.
    extra_notes: tuple[np.ndarray, np.ndarray, np.ndarray] = field(
        default_factory=lambda: _notes([], [], np.zeros((0, 0), np.int8)))
    # Their text, and the dispute's description as given online (None: the history's);
    # read only by a trained text model (:mod:`.text_model`).
    extra_note_text: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    description: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.t)

    def rows(self, lo: int, hi: int) -> PointSet:
        """Points ``lo`` to ``hi - 1`` as a PointSet of their own (points renumbered from 0):
        a batch's features are built a slice at a time, so their intermediate arrays
        (about 11 kB a point) never exist for a whole night's points at once."""
        def part(pt: np.ndarray) -> np.ndarray:
            return (pt >= lo) & (pt < hi)

        pp, op = part(self.pp_pt), part(self.op_pt)
        em = part(self.extra_mediations["pt"])
        npt, nt, nsig = self.extra_notes
        en = part(npt)
        return PointSet(
            dispute_id=self.dispute_id[lo:hi], as_of=self.as_of[lo:hi], t=self.t[lo:hi], d=self.d[lo:hi],
            category=self.category[lo:hi], source=self.source[lo:hi], amount=self.amount[lo:hi],
            rep=self.rep[lo:hi], occ=self.occ[lo:hi], place=self.place[lo:hi], signals=self.signals[lo:hi],
            pp_pt=self.pp_pt[pp] - lo, pp_person=self.pp_person[pp], pp_role=self.pp_role[pp],
            op_pt=self.op_pt[op] - lo, op_org=self.op_org[op],
            extra_mediations={k: (v[em] - lo if k == "pt" else v[em]) for k, v in self.extra_mediations.items()},
            extra_notes=(npt[en] - lo, nt[en], nsig[en]),
            extra_note_text=self.extra_note_text[en] if len(self.extra_note_text) else self.extra_note_text,
            description=None if self.description is None else self.description[lo:hi],
        )


def _mediations(pt, t, failed, out_t=None) -> dict[str, np.ndarray]:
    t = np.asarray(t, np.int64)
    return {"pt": np.asarray(pt, np.int64), "t": t, "failed": np.asarray(failed, bool),
            "out_t": t if out_t is None else np.maximum(np.asarray(out_t, np.int64), t)}


def _notes(pt, t, signals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.asarray(pt, np.int64), np.asarray(t, np.int64), np.asarray(signals, np.int8)


def _as_of_array(as_of) -> np.ndarray:
    if isinstance(as_of, list) and len(as_of) == 1 and isinstance(as_of[0], pd.Timestamp):
        return np.array([as_of[0].to_datetime64()], dtype="datetime64[ns]")  # one call: no pandas round trip
    # A date alone is the end of its day (the one rule); datetime columns pass as they are.
    return to_moments(pd.Series(as_of)).to_numpy(dtype="datetime64[ns]")


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


def _obj(values) -> np.ndarray:
    """A column (Series, list, array) as an object array, missing values as None."""
    if isinstance(values, pd.Series):
        return values.astype(object).where(values.notna(), None).to_numpy(dtype=object)
    return np.asarray(list(values), dtype=object)


def _secs(values, missing: int) -> np.ndarray:
    """Timestamps as int64 seconds like :func:`to_secs`, without pandas for a handful."""
    if isinstance(values, pd.Series) or len(values) > 64:
        return to_secs(values, missing)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        out[i] = missing if v is None or v is pd.NaT or (isinstance(v, float) and v != v) else \
            np.datetime64(pd.Timestamp(v).to_datetime64(), "s").astype(np.int64)
    return out


def _col(rows, name: str, n: int) -> np.ndarray:
    """A column of a frame or a mapping of columns; all None when absent (an optional column)."""
    return _obj(rows[name]) if name in rows else np.full(n, None, dtype=object)


def points_from_records(idx: HistoryIndex, incidents, parties, as_of, mediations=None, notes=None) -> PointSet:
    """The online path: disputes given as validated contract rows (one per point).

    ``incidents``, ``parties``, ``mediations`` and ``notes`` are DataFrames, or mappings
    of column name to values, with the contract's columns and types (see ``Dataset``'s
    tables); parties, mediations and notes refer to the disputes by ``incident_id``. The
    parties count as the batch counts them: a canonical person once per role, people
    unknown to the history (no record to look up) once per id and role, organisations
    once. A dispute that is also in the history keeps the history's follow-ups,
    mediations and notes; those given here are added when new. Parties added, outcomes
    and notes recorded after a point's as_of are not read.
    """
    ids = _obj(incidents["incident_id"])
    n = len(ids)
    as_of = _as_of_array(as_of if np.ndim(as_of) else [as_of] * n)
    t = _secs(list(as_of), ALWAYS) if n <= 64 else to_secs(as_of, ALWAYS)
    rep = _secs(incidents["reported_at"], ALWAYS)
    if (rep > t).any():
        raise ValueError("as_of is before the dispute's reported_at: nothing is known of it then")
    pt_of = {d: i for i, d in enumerate(ids)}
    p_inc, p_id = _obj(parties["incident_id"]), _obj(parties["party_id"])
    p_type, p_role = _obj(parties["party_type"]), _obj(parties["role"])
    # A party added after as_of is not on the dispute yet (added_at; null: from the report).
    p_added = _secs(_col(parties, "added_at", len(p_id)), ALWAYS)
    is_person = p_type == "person"
    person = np.full(len(p_id), -1, dtype=np.int64)
    person[is_person] = idx.person_ints(p_id[is_person])
    persons: dict[tuple, tuple] = {}
    orgs: dict[tuple, None] = {}
    for i in range(len(p_id)):
        pt = pt_of.get(p_inc[i], -1)
        if pt < 0 or p_added[i] > t[pt]:
            continue
        if is_person[i]:
            who = person[i] if person[i] >= 0 else ("new", p_id[i])
            persons.setdefault((pt, who, p_role[i]), (pt, person[i], p_role[i]))
        else:
            orgs[(pt, p_id[i])] = None
    pp = sorted(persons.values(), key=lambda r: r[0])  # stable: by point, in the order given
    op = sorted(orgs)
    op_org = idx.org_positions([o for _, o in op])
    ok = op_org >= 0
    extra = _mediations([], [], [])
    if mediations is not None and len(mediations["mediation_id"]):
        m_id, m_inc = _obj(mediations["mediation_id"]), _obj(mediations["incident_id"])
        new = idx.mediation_positions(m_id) < 0
        m_pt = np.array([pt_of.get(x, -1) for x in m_inc[new]], dtype=np.int64)
        ok_m = m_pt >= 0
        held = _secs(_obj(mediations["held_at"])[new], ALWAYS)
        # The outcome is known from outcome_at (null: the session itself).
        out_at = _secs(_col(mediations, "outcome_at", len(m_id))[new], ALWAYS)
        out_t = np.where(out_at == ALWAYS, held, out_at)
        extra = _mediations(m_pt[ok_m], held[ok_m], (_obj(mediations["outcome"])[new] == "failed")[ok_m],
                            out_t[ok_m])
    extra_notes = _notes([], [], np.zeros((0, len(idx.lexicon.signals)), np.int8))
    note_text = np.zeros(0, dtype=object)
    if notes is not None and len(notes["note_id"]):
        n_id, n_inc = _obj(notes["note_id"]), _obj(notes["incident_id"])
        new = positions(idx.note_ids, n_id) < 0
        n_pt = np.array([pt_of.get(x, -1) for x in n_inc[new]], dtype=np.int64)
        texts = list(_obj(notes["text"])[new])
        note_text = np.asarray(texts, dtype=object)
        extra_notes = _notes(n_pt, _secs(_obj(notes["recorded_at"])[new], ALWAYS),
                             idx.lexicon.matrix(texts if len(texts) <= 64 else pd.Series(texts, dtype=object)))
    return PointSet(
        dispute_id=ids, as_of=as_of, t=t, d=idx.incident_positions(ids),
        category=_obj(incidents["category"]), source=_obj(incidents["source"]),
        amount=np.array([np.nan if v is None else v for v in _obj(incidents["amount"])], dtype="float64"),
        rep=rep, occ=_secs(incidents["occurred_at"], ALWAYS),
        place=idx.place_positions(_obj(incidents["place_id"])),
        signals=idx.lexicon.matrix(pd.Series(_obj(incidents["description"]), dtype=object) if n > 64
                                   else list(_obj(incidents["description"]))),
        pp_pt=np.array([r[0] for r in pp], dtype=np.int64), pp_person=np.array([r[1] for r in pp], dtype=np.int64),
        pp_role=np.array([r[2] for r in pp], dtype=object),
        op_pt=np.array([p for p, _ in op], dtype=np.int64)[ok], op_org=op_org[ok],
        extra_mediations=extra, extra_notes=extra_notes, extra_note_text=note_text,
        description=_obj(incidents["description"]),
    )


__all__ = ["PointSet", "points_from_history", "points_from_records"]
