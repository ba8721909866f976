"""Online scoring: ``Scorer.score_dispute()`` answers another service in milliseconds.

A :class:`Scorer` holds a model and a district's history, indexed once. Each call
validates the dispute given as plain dicts (the same checks and messages as a
file), computes its features through the very code the batch uses
(:func:`escalation_risk.features.compute_features`) and returns a
:class:`RiskAssessment`. So, once a dispute is in the data, ``score_dispute`` and
``RiskModel.score`` give the same probability.

``escalation_risk.score_dispute(...)`` is the shortcut over a default scorer: the
model from ``$ESCALATION_RISK_MODEL`` (default ``models/default``) and the history
from ``$ESCALATION_RISK_DATA``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .dataset import Dataset, DataValidationError, load_dataset, validate_rows
from .features import compute_features, history_index, points_from_records
from .model import RiskModel, load_model
from .response import ALERT_LEVELS, PLANS, assign_levels, choose_plan

MODEL_ENV = "ESCALATION_RISK_MODEL"
DATA_ENV = "ESCALATION_RISK_DATA"
DEFAULT_MODEL_DIR = "models/default"


@dataclass(frozen=True)
class RiskAssessment:
    """The answer for one dispute: probability, level, reasons, plan and model version."""

    dispute_id: str
    as_of: pd.Timestamp
    probability: float
    level: str
    reasons: list[dict] = field(default_factory=list)
    plan: str = "routine_follow_up"
    plan_text: str = ""
    plan_text_zh: str = ""
    model_version: str = ""

    @property
    def alert(self) -> bool:
        """Whether the level is one that raises an alert (red, orange, yellow)."""
        return self.level in ALERT_LEVELS

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (timestamps as ISO strings)."""
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def _records(rows: Mapping | Iterable[Mapping] | pd.DataFrame, what: str, **defaults) -> list[dict]:
    """Plain dicts from a dict, a list of dicts or a DataFrame; ``defaults`` fill absent keys."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    elif isinstance(rows, Mapping):
        rows = [rows]
    rows = list(rows)
    if not all(isinstance(r, Mapping) for r in rows):
        raise TypeError(f"{what} must be a dict or a list of dicts in the contract's columns")
    return [{**defaults, **r} for r in rows]


class Scorer:
    """Scores single disputes against a history, fast and thread-safe.

    ``Scorer(model, history)`` indexes the history once (seconds for a district);
    each :meth:`score_dispute` then takes a few milliseconds. :meth:`add` appends new
    records to the history and re-indexes it, without reloading anything from disk.
    """

    def __init__(self, model: RiskModel, history: Dataset, *, pseudonym_key: str | bytes | None = None):
        self.model = model
        self.history = history
        self._key = pseudonym_key
        self._idx = history_index(history)
        self._lock = threading.Lock()  # guards swapping in a new history in add()

    def score_dispute(self, dispute: Mapping, parties: Iterable[Mapping] | pd.DataFrame, *,
                      mediations: Iterable[Mapping] | pd.DataFrame = (),
                      notes: Iterable[Mapping] | pd.DataFrame = (), as_of=None,
                      top_reasons: int = 3) -> RiskAssessment:
        """Score one dispute given as a dict in the contract's ``incidents`` columns.

        ``parties`` are dicts in the ``incident_parties`` columns (``incident_id`` may be
        left out), ``mediations`` and ``notes`` (``incident_notes``: note_id, recorded_at,
        text) likewise; parties added, outcomes and notes recorded after ``as_of`` are not
        read. ``as_of`` defaults to now. People not in the
        history are scored as parties without a record. Raises
        :class:`~escalation_risk.DataValidationError` for a missing or bad field.
        """
        inc = _records(dispute, "dispute", kind="dispute")
        if len(inc) != 1:
            raise ValueError("score_dispute takes exactly one dispute")
        inc = validate_rows("incidents", inc)
        if inc.loc[0, "kind"] != "dispute":
            raise DataValidationError(pd.DataFrame([{"table": "incidents", "row": 0, "column": "kind",
                                                     "value": repr(str(inc.loc[0, "kind"])),
                                                     "reason": "score_dispute scores disputes only"}]))
        did = inc.loc[0, "incident_id"]
        parties = validate_rows("incident_parties", _records(parties, "parties", incident_id=did))
        meds = _records(mediations, "mediations", incident_id=did)
        meds = validate_rows("mediations", meds) if meds else None
        given_notes = _records(notes, "notes", incident_id=did)
        note_rows = validate_rows("incident_notes", given_notes) if given_notes else None
        _not_before_report(inc, parties, note_rows)
        if not (parties["incident_id"] == did).all():
            raise ValueError("every party must belong to the dispute being scored")
        when = pd.Timestamp.now().floor("s") if as_of is None else pd.Timestamp(as_of)

        idx = self._idx  # one consistent snapshot even if add() swaps the history meanwhile
        P = points_from_records(idx, inc, parties, when, meds, note_rows)
        X = compute_features(idx, P)
        prob = float(self.model.predict_proba(X)[0])
        level = str(assign_levels(np.array([prob]), self.model.thresholds)[0])
        reasons = self.model.reasons(X, top=top_reasons)[0] if top_reasons else []
        plan = choose_plan(str(inc.loc[0, "category"]), [r["feature"] for r in reasons], level)
        return RiskAssessment(dispute_id=str(did), as_of=when, probability=prob, level=level,
                              reasons=[{k: _plain(v) for k, v in r.items()} for r in reasons], plan=plan,
                              plan_text=PLANS[plan].en, plan_text_zh=PLANS[plan].zh,
                              model_version=self.model.version)

    def add(self, **tables: pd.DataFrame | Iterable[Mapping]) -> None:
        """Append new records (contract tables by name) to the history and re-index it.

        The new rows are validated like a file; on error nothing changes.
        """
        frames = {name: rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(_records(rows, name))
                  for name, rows in tables.items()}
        with self._lock:
            history = self.history.append(pseudonym_key=self._key, **frames)
            idx = history_index(history)
            self.history, self._idx = history, idx


def _not_before_report(inc: pd.DataFrame, parties: pd.DataFrame, notes: pd.DataFrame | None) -> None:
    """Contract 1.1 as a file is checked: no party added and no note written before the report."""
    rep = inc.loc[0, "reported_at"]
    for table, df, col in (("incident_parties", parties, "added_at"), ("incident_notes", notes, "recorded_at")):
        if df is None:
            continue
        bad = np.flatnonzero((df[col] < rep).to_numpy())
        if len(bad):
            raise DataValidationError(pd.DataFrame([{
                "table": table, "row": int(i), "column": col, "value": df[col].iloc[i].isoformat(),
                "reason": "must not be before its incident's reported_at"} for i in bad]))


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


_DEFAULT: Scorer | None = None
_DEFAULT_LOCK = threading.Lock()


def default_scorer() -> Scorer:
    """The process-wide scorer over ``$ESCALATION_RISK_MODEL`` and ``$ESCALATION_RISK_DATA``."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            data = os.environ.get(DATA_ENV)
            if not data:
                raise RuntimeError(f"set {DATA_ENV} to the history's data folder (and {MODEL_ENV} to a model "
                                   f"directory, default {DEFAULT_MODEL_DIR}), or build a Scorer yourself")
            model = load_model(os.environ.get(MODEL_ENV, DEFAULT_MODEL_DIR))
            _DEFAULT = Scorer(model, load_dataset(data))
        return _DEFAULT


def score_dispute(dispute: Mapping, parties: Iterable[Mapping] | pd.DataFrame, *,
                  mediations: Iterable[Mapping] | pd.DataFrame = (), notes: Iterable[Mapping] | pd.DataFrame = (),
                  as_of=None) -> RiskAssessment:
    """Score one dispute with the default scorer (see :func:`default_scorer`)."""
    return default_scorer().score_dispute(dispute, parties, mediations=mediations, notes=notes, as_of=as_of)
