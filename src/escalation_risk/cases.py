"""The typical-case library (矛盾风险典型案例库): past disputes most like a dispute.

"Similar" is in the model's own terms: two disputes are alike when the model finds
them risky (or safe) for the same reasons, i.e. when their per-feature SHAP
contributions to the log-odds are close (Euclidean distance in contribution space,
a supervised metric: features the model ignores weigh nothing, and a shared
threat in the text weighs what it weighs in the score).

Each past dispute enters the :class:`CaseIndex` as the model saw it *at its report
time*: features, contributions, probability, level, leading reasons and plan at
``reported_at``. Those never change afterwards, so one index answers any
``as_of``: a query only considers disputes reported at or before ``as_of``, and
the facts that do change over time are read from their own time stamps at query
time, never from the export's state:

- mediations held by ``as_of``, with an outcome recorded after ``as_of`` shown as
  ``pending`` (``outcome_at`` when the data carry it);
- ``closed_at`` only when the closing was on or before ``as_of`` (the export's
  ``status`` is never read);
- ``escalated``: ``True`` when a criminal case that counts for the default label
  (a shared person party on the canonical key, or the dispute named in
  ``related_incident_id``; within the label horizon after the report) had been
  reported by ``as_of``; ``False`` when the horizon was over by ``as_of`` with no
  such case known; ``None`` (not yet known) otherwise.

Same category first: the neighbours come from the dispute's own category; only
when it has fewer than ``k`` earlier disputes are the nearest of the other
categories added after them. The index is built once per night
(:func:`build_case_index`; ``previous=`` reuses last night's rows, so a night costs
only the newly reported disputes), and a query then costs one feature row, one
TreeSHAP row and a distance scan over the category (milliseconds).

:func:`typical_cases` curates the library of a period: per category, the
escalated disputes closest to the category's typical escalation and the
near-misses that looked like them (alerted) but were defused, with what was done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import clock
from .artifacts import sha256_file
from .clock import to_moment
from .dataset import Dataset, as_records, validate_rows
from .explain import top_reasons
from .features import compute_features, history_index, points_from_records
from .labels import DEFAULT_HORIZON_DAYS, data_end, escalating_crimes
from .model import RiskModel, apply_calibrator
from .response import ALERT_LEVELS, PLANS, assign_levels, choose_plans

__all__ = ["CaseIndex", "build_case_index", "case_index", "use_case_index", "load_case_index",
           "CaseIndexLoadError", "similar_cases", "similar_from_features", "similar_to_records",
           "typical_cases", "typical_report", "CASE_COLUMNS"]

#: The columns of an answer, one row per similar past dispute, nearest first.
CASE_COLUMNS = [
    "rank", "dispute_id", "category", "same_category", "reported_at", "probability", "level",
    "reasons", "reason_features", "shared_reasons", "plan", "plan_text", "mediations", "n_mediations",
    "last_mediation_outcome", "closed_at", "escalated", "escalated_offence", "distance",
]
_CACHE_KEY = "case_index"


@dataclass
class CaseIndex:
    """Past disputes as the model saw them at report time, arranged for neighbour search.

    Rows are sorted by category, then by report time, so the disputes of a category
    known at a moment are a prefix of its block. Build one with
    :func:`build_case_index`.
    """

    model_version: str
    night: pd.Timestamp                  # disputes reported up to this moment are in
    horizon_days: int
    dispute_id: np.ndarray               # object
    category: np.ndarray                 # object
    reported_at: np.ndarray              # datetime64[ns]
    probability: np.ndarray
    level: np.ndarray
    plan: np.ndarray
    reason_features: list[list[str]]
    reasons_en: list[list[str]]
    reasons_zh: list[list[str]]
    contributions: np.ndarray            # (n, features) float32, bias left out
    feature_names: list[str]
    blocks: dict[str, tuple[int, int]] = field(default_factory=dict)  # category -> [start, end)
    # Facts that change after the report, each with the time it became known.
    closed_at: np.ndarray = field(default_factory=lambda: np.zeros(0, "datetime64[ns]"))
    crime_known_at: np.ndarray = field(default_factory=lambda: np.zeros(0, "datetime64[ns]"))
    crime_offence: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    # Mediations of the cases as plain arrays (held_at, outcome_known_at, mediator_type, outcome),
    # sorted by case row then held_at; a case's are [med_start, med_end).
    mediations: dict[str, np.ndarray] = field(default_factory=dict)
    med_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    med_end: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _pos: pd.Index | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.dispute_id)

    def __repr__(self) -> str:
        return (f"CaseIndex(model={self.model_version!r}, night={self.night:%Y-%m-%d %H:%M}, "
                f"cases={len(self)}, categories={len(self.blocks)})")

    def position(self, dispute_id: str) -> int:
        """The row of a dispute in the index, -1 when it is not there."""
        if self._pos is None:
            self._pos = pd.Index(self.dispute_id)
        got = self._pos.get_indexer([dispute_id])[0]
        return int(got)

    # ------------------------------------------------------------------ search

    def neighbours(self, contributions: np.ndarray, category: str, as_of, *, k: int = 10,
                   exclude: str | None = None, same_category_first: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Rows and distances of the ``k`` nearest disputes reported at or before ``as_of``.

        ``contributions`` is one row of SHAP contributions in :attr:`feature_names`
        order. Same category first (see the module docstring); ``exclude`` leaves out
        one dispute (the one asked about).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        q = np.asarray(contributions, dtype=np.float32).reshape(-1)
        if len(q) != self.contributions.shape[1]:
            raise ValueError(f"contributions: expected {self.contributions.shape[1]} values, got {len(q)}")
        t = np.datetime64(to_moment(as_of).to_datetime64(), "ns")
        skip = self.position(exclude) if exclude is not None else -1

        def nearest(lo: int, hi: int, n: int) -> tuple[np.ndarray, np.ndarray]:
            # Within a block rows are in report order: those known at as_of are a prefix.
            hi = lo + int(np.searchsorted(self.reported_at[lo:hi], t, side="right"))
            rows = np.arange(lo, hi)
            if skip >= 0:
                rows = rows[rows != skip]
            if len(rows) == 0 or n <= 0:
                return np.zeros(0, np.int64), np.zeros(0)
            diff = self.contributions[rows] - q
            d = np.einsum("ij,ij->i", diff, diff)
            take = np.argpartition(d, n - 1)[:n] if len(d) > n else np.arange(len(d))
            take = take[np.lexsort((rows[take], d[take]))]  # ties broken by row: deterministic
            return rows[take], np.sqrt(d[take])

        if same_category_first and category in self.blocks:
            r1, d1 = nearest(*self.blocks[category], k)
            if len(r1) >= k:
                return r1, d1
            others = [nearest(lo, hi, k) for c, (lo, hi) in self.blocks.items() if c != category]
            r2 = np.concatenate([o[0] for o in others]) if others else np.zeros(0, np.int64)
            d2 = np.concatenate([o[1] for o in others]) if others else np.zeros(0)
            order = np.lexsort((r2, d2))[: k - len(r1)]
            return np.concatenate([r1, r2[order]]), np.concatenate([d1, d2[order]])
        parts = [nearest(lo, hi, k) for lo, hi in self.blocks.values()]
        rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        dist = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        order = np.lexsort((rows, dist))[:k]
        return rows[order], dist[order]

    # ------------------------------------------------------------------ records

    def escalated(self, rows: np.ndarray, as_of) -> list[bool | None]:
        """Whether each case escalated, as known at ``as_of`` (None: not yet known)."""
        t = np.datetime64(to_moment(as_of).to_datetime64(), "ns")
        end = self.reported_at[rows] + np.timedelta64(self.horizon_days, "D")
        known = self.crime_known_at[rows]
        yes = ~np.isnat(known) & (known <= t)
        no = ~yes & (end <= t)
        return [True if y else (False if n else None) for y, n in zip(yes, no)]

    def mediations_of(self, row: int, as_of) -> list[dict]:
        """The mediations of one case held by ``as_of``, outcomes as recorded by then."""
        t = np.datetime64(to_moment(as_of).to_datetime64(), "ns")
        lo, hi = int(self.med_start[row]), int(self.med_end[row])
        m = self.mediations
        held, known = m["held_at"][lo:hi], m["outcome_known_at"][lo:hi]
        n = int(np.searchsorted(held, t, side="right"))  # sorted by held_at within the case
        who, outcome = m["mediator_type"][lo:lo + n], m["outcome"][lo:lo + n]
        return [{"held_at": pd.Timestamp(held[i]).isoformat(), "mediator_type": str(who[i]),
                 "outcome": str(outcome[i]) if known[i] <= t else "pending"} for i in range(n)]

    def records(self, rows: np.ndarray, distances: np.ndarray, as_of, *, query_category: str | None = None,
                query_reasons: Iterable[str] = ()) -> pd.DataFrame:
        """The answer table (:data:`CASE_COLUMNS`) for the given rows, as known at ``as_of``."""
        t = to_moment(as_of)
        qr = set(query_reasons)
        esc = self.escalated(rows, t)
        recs = []
        for i, (r, dist) in enumerate(zip(rows, distances)):
            meds = self.mediations_of(int(r), t)
            closed = self.closed_at[r]
            e = esc[i]
            recs.append({
                "rank": i + 1, "dispute_id": self.dispute_id[r], "category": self.category[r],
                "same_category": bool(self.category[r] == query_category),
                "reported_at": pd.Timestamp(self.reported_at[r]),
                "probability": float(self.probability[r]), "level": str(self.level[r]),
                "reasons": list(self.reasons_en[r]), "reason_features": list(self.reason_features[r]),
                "shared_reasons": [f for f in self.reason_features[r] if f in qr],
                "plan": str(self.plan[r]), "plan_text": PLANS[str(self.plan[r])].en,
                "mediations": meds, "n_mediations": len(meds),
                "last_mediation_outcome": meds[-1]["outcome"] if meds else None,
                "closed_at": pd.Timestamp(closed) if not np.isnat(closed) and closed <= t.to_datetime64() else None,
                "escalated": e, "escalated_offence": str(self.crime_offence[r]) if e else None,
                "distance": float(dist),
            })
        return pd.DataFrame(recs, columns=CASE_COLUMNS)


    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write the index to a folder of plain files (Parquet, one ``.npy`` of floats and
        a JSON manifest with their SHA-256); no pickle. Returns the folder."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        cases = pd.DataFrame({
            "dispute_id": self.dispute_id.astype(str), "category": self.category.astype(str),
            "reported_at": self.reported_at, "probability": self.probability, "level": self.level.astype(str),
            "plan": self.plan.astype(str),
            "reason_features": [json.dumps(r) for r in self.reason_features],
            "reasons_en": [json.dumps(r, ensure_ascii=False) for r in self.reasons_en],
            "reasons_zh": [json.dumps(r, ensure_ascii=False) for r in self.reasons_zh],
            "closed_at": self.closed_at, "crime_known_at": self.crime_known_at,
            "crime_offence": [None if v is None else str(v) for v in self.crime_offence],
            "med_start": self.med_start, "med_end": self.med_end})
        cases.to_parquet(out / _FILES[0], index=False)
        pd.DataFrame({k: (v.astype(str) if v.dtype == object else v) for k, v in self.mediations.items()}) \
            .to_parquet(out / _FILES[1], index=False)
        np.save(out / _FILES[2], self.contributions, allow_pickle=False)
        manifest = {"format": _FORMAT, "format_version": 1, "model_version": self.model_version,
                    "night": self.night.isoformat(), "horizon_days": self.horizon_days,
                    "feature_names": self.feature_names, "blocks": {k: list(v) for k, v in self.blocks.items()},
                    "sha256": {f: sha256_file(out / f) for f in _FILES}}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        return out


_FORMAT = "escalation-risk-case-index"
_FILES = ("cases.parquet", "mediations.parquet", "contributions.npy")


class CaseIndexLoadError(ValueError):
    """A case-index folder that cannot be used; the message names the file."""


def load_case_index(path: str | Path, model: RiskModel | None = None) -> CaseIndex:
    """Read a folder written by :meth:`CaseIndex.save`, checking every file's hash (and,
    with ``model``, that the index was built with it)."""
    folder = Path(path)
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CaseIndexLoadError(f"{folder / 'manifest.json'}: not a readable case index ({e})") from None
    if manifest.get("format") != _FORMAT:
        raise CaseIndexLoadError(f"{folder / 'manifest.json'}: not a case index")
    for f in _FILES:
        if not (folder / f).is_file() or sha256_file(folder / f) != manifest["sha256"].get(f):
            raise CaseIndexLoadError(f"{folder / f}: missing or changed since the index was written")
    if model is not None and manifest["model_version"] != model.version:
        raise CaseIndexLoadError(f"{folder}: built with model {manifest['model_version']}, not {model.version}")
    c = pd.read_parquet(folder / _FILES[0])
    m = pd.read_parquet(folder / _FILES[1])
    offence = c["crime_offence"].to_numpy(dtype=object)
    return CaseIndex(
        model_version=manifest["model_version"], night=pd.Timestamp(manifest["night"]),
        horizon_days=int(manifest["horizon_days"]), dispute_id=c["dispute_id"].to_numpy(dtype=object),
        category=c["category"].to_numpy(dtype=object), reported_at=c["reported_at"].to_numpy("datetime64[ns]"),
        probability=c["probability"].to_numpy(dtype=float), level=c["level"].to_numpy(dtype=object),
        plan=c["plan"].to_numpy(dtype=object), reason_features=[json.loads(v) for v in c["reason_features"]],
        reasons_en=[json.loads(v) for v in c["reasons_en"]], reasons_zh=[json.loads(v) for v in c["reasons_zh"]],
        contributions=np.load(folder / _FILES[2], allow_pickle=False), feature_names=list(manifest["feature_names"]),
        blocks={k: (int(v[0]), int(v[1])) for k, v in manifest["blocks"].items()},
        closed_at=c["closed_at"].to_numpy("datetime64[ns]"),
        crime_known_at=c["crime_known_at"].to_numpy("datetime64[ns]"),
        crime_offence=np.array([None if v is None or pd.isna(v) else v for v in offence], dtype=object),
        mediations={"held_at": m["held_at"].to_numpy("datetime64[ns]"),
                    "outcome_known_at": m["outcome_known_at"].to_numpy("datetime64[ns]"),
                    "mediator_type": m["mediator_type"].to_numpy(dtype=object),
                    "outcome": m["outcome"].to_numpy(dtype=object)},
        med_start=c["med_start"].to_numpy(dtype=np.int64), med_end=c["med_end"].to_numpy(dtype=np.int64))


# ---------------------------------------------------------------------- building

def _escalation_facts(ds: Dataset, ids: np.ndarray, rep: np.ndarray, horizon_days: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """For each dispute: when a crime counting for its label at report time became known
    (NaT: none) and that crime's offence, by the one rule (:func:`escalation_risk.labels.escalating_crimes`)."""
    h = escalating_crimes(ds, pd.DataFrame({"dispute_id": ids, "as_of": rep}), horizon_days=horizon_days)
    h = h.sort_values(["pt", "known_at"], kind="stable").drop_duplicates("pt")
    known = np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[ns]")
    offence = np.full(len(ids), None, dtype=object)
    known[h["pt"].to_numpy()] = h["known_at"].to_numpy(dtype="datetime64[ns]")
    offence[h["pt"].to_numpy()] = h["category"].to_numpy(dtype=object)
    return known, offence


def _mediation_table(ds: Dataset, ids: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Mediations of the indexed disputes sorted by case row and held_at, with each
    case's [start, end) slice; ``outcome_known_at`` is ``outcome_at`` when the data
    carry it (contract 1.1), else ``held_at``."""
    med = ds.mediations
    row = pd.Index(ids).get_indexer(med["incident_id"].astype(object).to_numpy())
    keep = row >= 0
    known = med["outcome_at"] if "outcome_at" in med.columns else med["held_at"]
    out = pd.DataFrame({"row": row[keep], "held_at": med["held_at"].to_numpy()[keep],
                        "outcome_known_at": pd.to_datetime(known).fillna(med["held_at"]).to_numpy()[keep],
                        "mediator_type": med["mediator_type"].astype(object).to_numpy()[keep],
                        "outcome": med["outcome"].astype(object).to_numpy()[keep]})
    out = out.sort_values(["row", "held_at"], kind="stable").reset_index(drop=True)
    r = out["row"].to_numpy()
    start = np.searchsorted(r, np.arange(len(ids)), side="left")
    end = np.searchsorted(r, np.arange(len(ids)), side="right")
    arrays = {"held_at": out["held_at"].to_numpy(dtype="datetime64[ns]"),
              "outcome_known_at": out["outcome_known_at"].to_numpy(dtype="datetime64[ns]"),
              "mediator_type": out["mediator_type"].to_numpy(dtype=object),
              "outcome": out["outcome"].to_numpy(dtype=object)}
    return arrays, start, end


def build_case_index(model: RiskModel, ds: Dataset, as_of=None, *, horizon_days: int | None = None,
                     top: int = 3, previous: CaseIndex | None = None) -> CaseIndex:
    """The case index of one night: every dispute reported by ``as_of`` (default: the
    end of the data) as the model saw it at its report time.

    ``previous`` (last night's index, same model) lends the rows of disputes it
    already holds, so only the newly reported ones go through features and TreeSHAP;
    the time-stamped facts (mediations, closings, crimes) are always re-read.
    """
    night = to_moment(as_of) if as_of is not None else data_end(ds)
    horizon = int(horizon_days or model.label_settings.get("horizon_days", DEFAULT_HORIZON_DAYS))
    inc = ds.incidents
    d = inc[(inc["kind"] == "dispute") & (inc["reported_at"] <= night)]
    ids = d["incident_id"].to_numpy(dtype=object)
    rep = d["reported_at"].to_numpy(dtype="datetime64[ns]")
    cat = d["category"].astype(object).to_numpy()
    names = list(model.feature_names)
    n = len(ids)

    C = np.zeros((n, len(names)), dtype=np.float32)
    prob = np.zeros(n)
    # Every entry is replaced below, never appended to, so one shared empty list is safe (and
    # 100,000 fresh lists would wake the garbage collector over the whole dataset).
    feats: list[list[str]] = [[]] * n
    en: list[list[str]] = [[]] * n
    zh: list[list[str]] = [[]] * n
    plans = np.empty(n, dtype=object)
    reuse = np.full(n, -1)
    if previous is not None and previous.model_version == model.version and previous.feature_names == names:
        prev_pos = pd.Index(previous.dispute_id)
        reuse = prev_pos.get_indexer(ids)
        # A dispute whose report was corrected since is recomputed.
        same = reuse >= 0
        same[same] = previous.reported_at[reuse[same]] == rep[same]
        reuse[~same] = -1
    old = np.flatnonzero(reuse >= 0)
    new = np.flatnonzero(reuse < 0)
    if len(old) and previous is not None:
        src = reuse[old]
        C[old] = previous.contributions[src]
        prob[old] = previous.probability[src]
        plans[old] = previous.plan[src]  # same model, same thresholds: same level and plan
        for i, s in zip(old, src):
            feats[i], en[i], zh[i] = previous.reason_features[s], previous.reasons_en[s], previous.reasons_zh[s]
    if len(new):
        X = model.features(ds, pd.DataFrame({"dispute_id": ids[new], "as_of": rep[new]}))
        contrib = model.contributions(X)
        C[new] = contrib[names].to_numpy(dtype=np.float32)
        prob[new] = model.predict_proba(X)
        for i, rs in zip(new, top_reasons(contrib, X, top)):
            feats[i] = [r["feature"] for r in rs]
            en[i] = [r["en"] for r in rs]
            zh[i] = [r["zh"] for r in rs]
    levels = assign_levels(prob, model.thresholds)
    if len(new):
        plans[new] = choose_plans(cat[new].tolist(), [feats[i] for i in new], levels[new].tolist())

    # Category blocks, each in report order: "known at t" is then a prefix.
    order = np.lexsort((ids.astype(str), rep, cat.astype(str)))
    ids, rep, cat, levels, plans = (a[order] for a in (ids, rep, cat, levels, plans))
    C, prob = C[order], prob[order]
    feats, en, zh = ([lst[i] for i in order] for lst in (feats, en, zh))
    blocks: dict[str, tuple[int, int]] = {}
    if n:
        starts = np.flatnonzero(np.r_[True, cat[1:] != cat[:-1]])
        ends = np.r_[starts[1:], n]
        blocks = {str(cat[s]): (int(s), int(e)) for s, e in zip(starts, ends)}
    closed = inc.set_index("incident_id")["closed_at"].reindex(ids).to_numpy(dtype="datetime64[ns]")
    known, offence = _escalation_facts(ds, ids, rep, horizon)
    meds, mstart, mend = _mediation_table(ds, ids)
    return CaseIndex(model_version=model.version, night=night, horizon_days=horizon, dispute_id=ids,
                     category=cat, reported_at=rep, probability=prob, level=levels, plan=plans,
                     reason_features=feats, reasons_en=en, reasons_zh=zh, contributions=C, feature_names=names,
                     blocks=blocks, closed_at=closed, crime_known_at=known, crime_offence=offence,
                     mediations=meds, med_start=mstart, med_end=mend)


def case_index(model: RiskModel, ds: Dataset) -> CaseIndex:
    """The case index of ``ds`` for ``model``, built on first use and cached on the dataset."""
    key = (_CACHE_KEY, model.version)
    idx = ds.cache.get(key)
    if idx is None:
        idx = ds.cache[key] = build_case_index(model, ds)
    return idx


def use_case_index(ds: Dataset, index: CaseIndex) -> None:
    """Make ``index`` (e.g. tonight's, built by the nightly job) the one :func:`case_index`
    returns for ``ds`` and the index's model."""
    ds.cache[(_CACHE_KEY, index.model_version)] = index


# ---------------------------------------------------------------------- queries

def _answer(model: RiskModel, index: CaseIndex, X: pd.DataFrame, dispute_id: str, as_of, k: int,
            same_category_first: bool, contrib: pd.DataFrame | None = None) -> pd.DataFrame:
    if index.model_version != model.version:
        raise ValueError(f"the case index was built with model {index.model_version}, not {model.version}")
    if contrib is None:
        contrib = model.contributions(X)  # columns: the model's features, then the bias
    row = contrib.to_numpy(dtype=np.float64)[0]
    q = row[:-1].astype(np.float32)
    # The contributions add up to the raw score: no second pass through the trees.
    probability = float(apply_calibrator(np.array([row.sum()]), model.calibrator)[0])
    category = str(X["category"].astype(object).iloc[0])
    leading = top_reasons(contrib, X, 3)[0]
    query_reasons = [r["feature"] for r in leading]
    rows, dist = index.neighbours(q, category, as_of, k=k, exclude=dispute_id,
                                  same_category_first=same_category_first)
    out = index.records(rows, dist, as_of, query_category=category, query_reasons=query_reasons)
    out.attrs["query"] = {"dispute_id": dispute_id, "as_of": to_moment(as_of).isoformat(),
                          "category": category, "probability": probability,
                          "reason_features": query_reasons, "reasons": [r["en"] for r in leading],
                          "reasons_zh": [r["zh"] for r in leading], "model_version": model.version,
                          # Disputes reported after the index's night are not in it.
                          "index_night": index.night.isoformat()}
    return out


def similar_cases(model: RiskModel, ds: Dataset, dispute_id: str, as_of, k: int = 10, *,
                  index: CaseIndex | None = None, same_category_first: bool = True) -> pd.DataFrame:
    """The ``k`` past disputes most like ``dispute_id`` as known at ``as_of``, nearest first.

    One row per case with the columns of :data:`CASE_COLUMNS`: category, report
    time, the score, level, leading reasons and plan it had then, its mediations
    and their outcomes as recorded by ``as_of``, its closing if known, and whether
    it escalated (None when not yet known at ``as_of``). ``index`` defaults to
    :func:`case_index` (built once per dataset and model). ``out.attrs["query"]``
    describes the dispute asked about.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    t = to_moment(as_of)
    X = model.features(ds, pd.DataFrame({"dispute_id": [dispute_id], "as_of": [t]}))
    return _answer(model, index if index is not None else case_index(model, ds), X, dispute_id, t, k,
                   same_category_first)


def similar_from_features(model: RiskModel, index: CaseIndex, X: pd.DataFrame, dispute_id: str, as_of,
                          k: int = 10, *, contributions: pd.DataFrame | None = None,
                          same_category_first: bool = True) -> pd.DataFrame:
    """:func:`similar_cases` for a dispute whose feature row is already at hand: ``X`` is its one
    row as :func:`~escalation_risk.features.build_features` gives it for ``as_of`` (and
    ``contributions`` that row's :meth:`RiskModel.contributions`, if computed). For callers that
    build many rows in one batch (the desk, for every open alert) and ask one by one."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return _answer(model, index, X, dispute_id, to_moment(as_of), k, same_category_first, contributions)


def similar_to_records(model: RiskModel, history: Dataset, dispute: Mapping,
                       parties: Iterable[Mapping] | pd.DataFrame, *, mediations: Iterable[Mapping] | pd.DataFrame = (),
                       as_of=None, k: int = 10, index: CaseIndex | None = None,
                       same_category_first: bool = True) -> pd.DataFrame:
    """:func:`similar_cases` for a dispute given as plain dicts in the contract's columns
    (as :meth:`Scorer.score_dispute` takes it), against the disputes of ``history``."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    inc = as_records(dispute, "dispute", kind="dispute")
    if len(inc) != 1:
        raise ValueError("similar cases are found for exactly one dispute")
    inc_df = validate_rows("incidents", inc)
    did = inc_df.loc[0, "incident_id"]
    parts = validate_rows("incident_parties", as_records(parties, "parties", incident_id=did))
    meds = as_records(mediations, "mediations", incident_id=did)
    med_df = validate_rows("mediations", meds) if meds else None
    when = clock.now().floor("s") if as_of is None else to_moment(as_of)
    idx = history_index(history, model.lexicon)
    X = compute_features(idx, points_from_records(idx, inc_df, parts, when, med_df), model.text_model,
                         needed=list(model.feature_names))
    return _answer(model, index if index is not None else case_index(model, history), X, str(did), when, k,
                   same_category_first)


# ---------------------------------------------------------------------- the curated library

def typical_cases(index: CaseIndex, start=None, end=None, *, as_of=None, per_category: int = 3) -> pd.DataFrame:
    """The typical-case library of disputes reported in ``[start, end]``, known at ``as_of``
    (dates by :func:`escalation_risk.clock.to_moment`: ``start`` its day's start, ``end``
    and ``as_of`` their day's end).

    Per category: the ``per_category`` escalated disputes closest to the centre of
    the category's escalations in contribution space (the most typical ones), and as
    many near-misses: disputes that reached an alert level at report time, whose
    horizon passed without a crime, nearest to that same centre (they looked like
    the escalations and were defused), with their plans and mediations. ``as_of``
    defaults to the index's night. Columns: those of :data:`CASE_COLUMNS` (``rank``
    within the category and kind, ``distance`` to the centre) plus ``kind``
    (``escalated`` / ``defused``).
    """
    t = to_moment(as_of) if as_of is not None else index.night
    start = to_moment(start, role="start", what="start") if start is not None else None
    end = to_moment(end, what="end") if end is not None else None
    lo = np.datetime64(start.to_datetime64(), "ns") if start is not None else None
    hi = np.datetime64(end.to_datetime64(), "ns") if end is not None else None
    frames = []
    for category, (b0, b1) in index.blocks.items():
        rows = np.arange(b0, b1)
        rep = index.reported_at[rows]
        keep = rep <= t.to_datetime64()
        if lo is not None:
            keep &= rep >= lo
        if hi is not None:
            keep &= rep <= hi
        rows = rows[keep]
        if len(rows) == 0:
            continue
        esc = np.array([e is True for e in index.escalated(rows, t)])
        no = np.array([e is False for e in index.escalated(rows, t)])
        escalated = rows[esc]
        if len(escalated) == 0:
            continue
        centre = index.contributions[escalated].mean(axis=0)
        alerted = np.isin(index.level[rows], ALERT_LEVELS)
        defused = rows[no & alerted]
        for kind, cand in (("escalated", escalated), ("defused", defused)):
            if len(cand) == 0:
                continue
            d = np.sqrt(((index.contributions[cand] - centre) ** 2).sum(axis=1))
            order = np.lexsort((cand, d))[:per_category]
            rec = index.records(cand[order], d[order], t, query_category=category)
            rec.insert(0, "kind", kind)
            frames.append(rec)
    if not frames:
        return pd.DataFrame(columns=["kind", *CASE_COLUMNS])
    out = pd.concat(frames, ignore_index=True)
    out.attrs["period"] = {"start": None if start is None else start.isoformat(),
                           "end": None if end is None else end.isoformat(), "as_of": t.isoformat()}
    return out


def _recorded(r: pd.Series) -> str:
    """What the alert store recorded for a case, when the library was joined with it."""
    plan = r.get("alert_plan")
    if not isinstance(plan, str):
        return ""
    # The outcome is text typed by staff: a report says only that one was recorded, and its length.
    chars = r.get("alert_outcome_chars")
    return f"; alert: plan {plan}, {r.get('alert_status')}" + (
        f", outcome recorded ({int(chars)} characters)" if chars is not None and not pd.isna(chars) else "")


def typical_report(library: pd.DataFrame) -> str:
    """A short readable report (Markdown) of a :func:`typical_cases` table."""
    period = library.attrs.get("period", {})
    span = f"{(period.get('start') or 'the start')[:10]} to {(period.get('end') or 'the end')[:10]}"
    lines = [f"# Typical cases, disputes reported from {span}",
             f"(as known at {str(period.get('as_of', ''))[:16]}; similarity in the model's own terms: "
             "SHAP contributions at report time)", ""]
    if library.empty:
        lines.append("No escalated dispute is known in this period.")
        return "\n".join(lines) + "\n"
    for category, g in library.groupby("category", sort=True):
        esc, dfd = g[g["kind"] == "escalated"], g[g["kind"] == "defused"]
        lines.append(f"## {category}")
        reasons = pd.Series([r for rs in esc["reason_features"] for r in rs]).value_counts().head(3)
        if len(reasons):
            # Each reason read as a sentence (one of its cases'), never as a raw feature name.
            said = {f: s for fs, ss in zip(esc["reason_features"], esc["reasons"]) for f, s in zip(fs, ss)
                    if len(fs) == len(ss)}
            lines.append("Leading reasons of the typical escalations: " +
                         "; ".join(f"{said.get(name, name)} ({n} of {len(esc)})" for name, n in reasons.items())
                         + ".")
        for _, r in esc.iterrows():
            lines.append(f"- escalated: {r['dispute_id']} reported {r['reported_at']:%Y-%m-%d}, score "
                         f"{r['probability']:.2f} ({r['level']}), offence {r['escalated_offence']}; plan "
                         f"{r['plan']}; {r['n_mediations']} mediation(s)"
                         f"{', last ' + str(r['last_mediation_outcome']) if r['n_mediations'] else ''}"
                         f"{_recorded(r)}; because: {'; '.join(r['reasons']) or '-'}")
        for _, r in dfd.iterrows():
            lines.append(f"- defused: {r['dispute_id']} reported {r['reported_at']:%Y-%m-%d}, score "
                         f"{r['probability']:.2f} ({r['level']}); plan {r['plan']}; {r['n_mediations']} "
                         f"mediation(s){', last ' + str(r['last_mediation_outcome']) if r['n_mediations'] else ''}"
                         f"{_recorded(r)}; because: {'; '.join(r['reasons']) or '-'}")
        if dfd.empty:
            lines.append("- no alerted dispute of this kind was defused in the period")
        lines.append("")
    return "\n".join(lines)
