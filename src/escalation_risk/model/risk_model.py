"""The trained model: :class:`RiskModel` scores, explains, evaluates and saves itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info

from ..artifacts import ModelLoadError, read_model_dir, write_model_dir
from ..dataset import Dataset
from ..explain import global_importance, top_reasons
from ..features import CHUNK, Lexicon, TextModel, build_features, compute_features, feature_names, history_index
from ..features.lexicon import lexicon_from_dict
from ..features.points import points_from_history
from ..response import ALERT_LEVELS, PLAN_REASONS, assign_levels, choose_plans, compute_trend
from .baselines import logistic_layout, logistic_terms
from .calibration import apply_calibrator
from .metrics import DEFAULT_BUDGETS, Evaluation
from .points import open_points


class RiskModel:
    """A trained, calibrated escalation-risk model.

    Learned state: ``booster`` (lightgbm.Booster), ``calibrator`` (plain dict),
    ``baselines`` (plain dict), ``manifest`` (plain dict), ``feature_names``,
    ``thresholds`` (probability per alert level) and ``version``. Build one with
    :func:`train` or :func:`load_model`.
    """

    def __init__(self, booster: lgb.Booster, calibrator: dict, manifest: dict, baselines: dict,
                 text_model: TextModel | None = None):
        self.booster = booster
        self.calibrator = calibrator
        self.manifest = manifest
        self.baselines = baselines
        self.feature_names: list[str] = list(manifest["features"]["names"])
        self.thresholds: dict[str, float] = dict(manifest["thresholds"])
        self.version: str = manifest["model_version"]
        # A custom text lexicon travels with the model; None: the shipped one.
        self.lexicon: Lexicon | None = (lexicon_from_dict(manifest["lexicon"], where="manifest lexicon")
                                        if manifest.get("lexicon") else None)
        # The text model behind ``text_model_score`` (None: the model does without it).
        self.text_model = text_model
        # The held-out evaluation when ``train(..., holdout=...)`` made one (its figures
        # are also in ``manifest["metrics"]["holdout"]``, which is what a loaded model has).
        self.holdout: Evaluation | None = None
        # The out-of-time raw scores and labels the calibrator was fitted on, when this
        # process trained the model (not saved): lets a benchmark compare calibrators.
        self.validation: dict[str, np.ndarray] | None = None
        self._codes: dict[str, dict[str, float]] | None = None  # category -> code, built on first use
        # The linear part (training's ``linear`` setting): raw score = trees * w_trees +
        # logistic regression's log-odds * w_linear + intercept; None: the trees alone.
        self.linear: dict | None = manifest.get("linear") or None
        # Where the linear part's inputs sit in the matrix: made on first use, not on every scored row.
        self._linear_layout: tuple | None = None

    def __repr__(self) -> str:
        return (f"RiskModel(version={self.version!r}, cutoff={self.manifest.get('cutoff')!r}, "
                f"features={len(self.feature_names)}, calibration={self.calibrator.get('method')!r})")

    @property
    def label_settings(self) -> dict:
        return dict(self.manifest["labels"])

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The feature matrix as LightGBM reads it: floats, categoricals as their codes
        in the manifest's category order (missing or unknown: NaN). Built by hand rather
        than by LightGBM's pandas path, whose per-call overhead dominated single rows."""
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks feature column(s) {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                             f"build it with escalation_risk.features.build_features")
        cats = self.manifest["features"]["categories"]
        M = np.empty((len(X), len(self.feature_names)), dtype=np.float64)
        num = [j for j, c in enumerate(self.feature_names) if c not in cats]
        # One block copy for the numeric columns: per-column access cost more than the trees.
        M[:, num] = X[[self.feature_names[j] for j in num]].to_numpy(dtype=np.float64, na_value=np.nan)
        for j, c in enumerate(self.feature_names):
            if c not in cats:
                continue
            col, values = X[c], cats[c]
            if not (isinstance(col.dtype, pd.CategoricalDtype) and list(col.cat.categories) == values):
                col = pd.Series(pd.Categorical(col.astype(object), categories=values))
            codes = col.cat.codes.to_numpy(dtype=np.float64)
            codes[codes < 0] = np.nan
            M[:, j] = codes
        return M

    def matrix_from_columns(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The same matrix as :meth:`_matrix`, from feature columns as
        :func:`~escalation_risk.features.compute_columns` gives them: no DataFrame, which
        is most of the cost of one row. Every method taking ``X`` also takes this matrix."""
        if self._codes is None:
            self._codes = {c: {v: float(i) for i, v in enumerate(values)}
                           for c, values in self.manifest["features"]["categories"].items()}
        n = len(columns[self.feature_names[0]])
        M = np.empty((n, len(self.feature_names)), dtype=np.float64)
        for j, c in enumerate(self.feature_names):
            codes = self._codes.get(c)
            if codes is None:
                M[:, j] = columns[c]
            else:
                M[:, j] = [codes.get(v, np.nan) if isinstance(v, str) else np.nan for v in columns[c]]
        return M

    def _predict(self, X: pd.DataFrame | np.ndarray, **kind) -> np.ndarray:
        # One thread for a handful of rows: starting threads costs more than the trees.
        threads = 1 if len(X) < 256 else _within_limit(self.manifest.get("num_threads", 0) or 0)
        M = X if isinstance(X, np.ndarray) else self._matrix(X)
        out = np.asarray(self.booster.predict(M, num_threads=threads, **kind), dtype=float)
        if not self.linear:
            return out
        # Trees and the linear model add up on the log-odds scale, and so do their
        # contributions: each feature's tree SHAP plus its linear term, scaled by the weights.
        lin = self.baselines["logistic_regression"]
        if self._linear_layout is None:
            self._linear_layout = logistic_layout(self.feature_names, lin)
        terms = logistic_terms(M, self.feature_names, lin, self._linear_layout)
        wt, wl, b = self.linear["w_trees"], self.linear["w_linear"], self.linear["intercept"]
        if kind.get("pred_contrib"):
            out *= wt
            out[:, :-1] += wl * terms
            out[:, -1] += wl * lin["intercept"] + b
            return out
        return wt * out + wl * (terms.sum(axis=1) + lin["intercept"]) + b

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """The model's log-odds for each row of ``X`` (uncalibrated): the booster's, plus the
        linear part's when the model has one."""
        if len(X) == 0:
            return np.zeros(0)
        return self._predict(X, raw_score=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of a crime within the horizon (0.2: about one in five)."""
        return apply_calibrator(self.raw_score(X), self.calibrator)

    def equalised_alerts(self, X: pd.DataFrame) -> np.ndarray:
        """Which rows the per-group thresholds alert when the model was trained with
        ``config={"equalise_fpr": attribute}`` (one false-positive rate for every group at
        the orange budget; :mod:`.fairness`). Raises ``ValueError`` for a model without them."""
        spec = self.manifest.get("equalised_fpr")
        if not spec:
            raise ValueError("this model has no equalised thresholds: train with config={'equalise_fpr': attribute}")
        from .fairness import equalised_alerts, group_of
        return equalised_alerts(self.predict_proba(X), group_of(X, spec["attribute"]), spec)

    def contribution_matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """:meth:`contributions` as a bare array (columns: ``feature_names``, then the bias)."""
        if len(X) == 0:
            return np.zeros((0, len(self.feature_names) + 1))
        return self._predict(X, pred_contrib=True)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contributions to the log-odds: one column per feature plus ``bias``;
        each row sums to :meth:`raw_score`."""
        cols = self.feature_names + ["bias"]
        if len(X) == 0:
            return pd.DataFrame(columns=cols, dtype=float)
        C = self._predict(X, pred_contrib=True)
        return pd.DataFrame(C, columns=cols, index=X.index if isinstance(X, pd.DataFrame) else None)

    def reasons(self, X: pd.DataFrame, top: int = 3, lang: str = "en") -> list[list[dict]]:
        """Up to ``top`` risk-raising reasons per row (feature, value, contribution, en, zh,
        and ``text`` in ``lang``). Costs a TreeSHAP pass: budget up to ~1.5 ms per row
        (measured 0.13 ms per row for a 150-tree model on 2 cores), against ~0.005 ms
        for the probability alone."""
        if lang not in ("en", "zh"):
            raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
        out = top_reasons(self.contributions(X), X, top)
        for row in out:
            for r in row:
                r["text"] = r[lang]
        return out

    def features(self, ds: Dataset, points: pd.DataFrame) -> pd.DataFrame:
        """Feature rows of ``points`` (dispute_id, as_of) as this model reads them: its
        lexicon and text model, and only the optional families its features read
        (:func:`~escalation_risk.features.build_features`)."""
        return build_features(ds, points, lexicon=self.lexicon, text=self.text_model,
                              needed=list(self.feature_names))

    def importance(self, X: pd.DataFrame) -> pd.DataFrame:
        """Global importance on ``X``: mean |SHAP| per feature, largest first."""
        return global_importance(self.contributions(X))

    def score(self, ds: Dataset, when, *, history: pd.DataFrame | None = None,
              thresholds: dict[str, float] | None = None, reasons_for: str = "alerts",
              top_reasons: int = 3) -> pd.DataFrame:
        """Score disputes: probability, level, trend, reasons and plan per point.

        ``when`` is a timestamp (every dispute open then is scored at that moment) or
        a DataFrame of dispute_id, as_of. ``history`` holds earlier scores (dispute_id,
        probability) for the trend. Levels use the manifest's thresholds unless
        ``thresholds`` is given. Reasons (TreeSHAP: budget up to ~1.5 ms per row,
        measured 0.13 ms for a 150-tree model, 30x the probability) are computed only
        for alerted rows (red, orange, yellow) unless ``reasons_for="all"``;
        rows without reasons get empty lists and, when blue, the routine plan.
        """
        if reasons_for not in ("alerts", "all"):
            raise ValueError(f"reasons_for must be 'alerts' or 'all', got {reasons_for!r}")
        if isinstance(when, pd.DataFrame):
            points = when[["dispute_id", "as_of"]].reset_index(drop=True)
        else:
            points = open_points(ds, when)
        cols = ["dispute_id", "as_of", "probability", "level", "trend", "delta", "reasons", "reasons_zh",
                "reason_features", "plan"]
        if len(points) == 0:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
        # A slice of points at a time, features to reasons: a night's whole feature matrix
        # (and LightGBM's copy of it) is never held, only each slice's and the results.
        idx = history_index(ds, self.lexicon)
        P = points_from_history(idx, points)
        n = len(P)
        p = np.empty(n, dtype=float)
        category = np.empty(n, dtype=object)
        en: list[list[str]] = [[] for _ in range(n)]
        zh: list[list[str]] = [[] for _ in range(n)]
        feats: list[list[str]] = [[] for _ in range(n)]
        threshold_of = thresholds or self.thresholds
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            X = compute_features(idx, P if (lo, hi) == (0, n) else P.rows(lo, hi), self.text_model,
                                 needed=self.feature_names)
            p[lo:hi] = self.predict_proba(X)
            category[lo:hi] = X["category"].astype(object).to_numpy(dtype=object)
            want = np.ones(hi - lo, bool) if reasons_for == "all" else \
                np.isin(assign_levels(p[lo:hi], threshold_of), ALERT_LEVELS)
            rows = np.flatnonzero(want)
            if len(rows):
                sub = X.iloc[rows]
                # The plan reads PLAN_REASONS reasons however many are displayed.
                for i, rs in zip(lo + rows, _reasons_of(self, sub, max(top_reasons, PLAN_REASONS))):
                    en[i] = [r["en"] for r in rs[:top_reasons]]
                    zh[i] = [r["zh"] for r in rs[:top_reasons]]
                    feats[i] = [r["feature"] for r in rs]
            del X
        levels = assign_levels(p, threshold_of)
        out = pd.DataFrame({"dispute_id": np.asarray(P.dispute_id, dtype=object),
                            "as_of": np.asarray(P.as_of, dtype="datetime64[ns]"), "probability": p})
        trend, delta = compute_trend(out, history)
        out["level"], out["trend"], out["delta"] = levels, trend, delta
        out["plan"] = choose_plans(category.tolist(), feats, levels)
        feats = [f[:top_reasons] for f in feats]
        out["reasons"], out["reasons_zh"], out["reason_features"] = en, zh, feats
        return out[cols]

    def evaluate(self, ds: Dataset, points: pd.DataFrame | None = None, *, start=None, end=None,
                 budgets=DEFAULT_BUDGETS, intervals: bool = False, n_boot: int = 200, seed: int = 0) -> Evaluation:
        """See :func:`.evaluation.evaluate`."""
        from .evaluation import evaluate  # evaluation builds on this module

        return evaluate(self, ds, points, start=start, end=end, budgets=budgets, intervals=intervals,
                        n_boot=n_boot, seed=seed)

    def save(self, out_dir) -> None:
        """Write the model directory (see :mod:`.artifacts`); no pickle."""
        write_model_dir(out_dir, booster_text=self.booster.model_to_string(), calibrator=self.calibrator,
                        baselines=self.baselines, manifest=self.manifest,
                        text_model=None if self.text_model is None else self.text_model.to_dict())


def _reasons_of(model: RiskModel, X: pd.DataFrame, top: int) -> list[list[dict]]:
    return top_reasons(model.contributions(X), X, top)


def load_model(path) -> RiskModel:
    """Load a model directory written by :meth:`RiskModel.save`, verifying every file.

    Raises :class:`~.artifacts.ModelLoadError` for a tampered, foreign or
    incompatible directory.
    """
    parts = read_model_dir(path)
    try:
        lex = lexicon_from_dict(parts["manifest"]["lexicon"]) if parts["manifest"].get("lexicon") else None
    except ValueError as e:
        raise ModelLoadError(f"{path}/manifest.json: {e}") from None
    # A model may use fewer features than are computed (``train(..., exclude=...)``), never others.
    names = parts["manifest"].get("features", {}).get("names")
    computed = feature_names(lex)
    if not isinstance(names, list) or not set(names) <= set(computed) or \
            names != [n for n in computed if n in set(names)]:
        raise ModelLoadError(f"{path}/manifest.json: the model's feature list differs from the features this "
                             f"version of escalation-risk computes; retrain the model")
    text = None
    if "text_model_score" in names:
        if parts.get("text_model") is None:
            raise ModelLoadError(f"{path}: the model reads text_model_score but has no text_model.json")
        try:
            text = TextModel.from_dict(parts["text_model"])
        except (KeyError, ValueError) as e:
            raise ModelLoadError(f"{path}/text_model.json: {e}") from None
    try:
        booster = lgb.Booster(model_str=parts["booster_text"])
    except lgb.basic.LightGBMError as e:
        raise ModelLoadError(f"{path}/model.txt: not a LightGBM model ({e})") from None
    return RiskModel(booster, parts["calibrator"], parts["manifest"], parts["baselines"], text_model=text)


def _within_limit(threads: int) -> int:
    """``threads`` held to the OpenMP limit set around this call (0: that limit itself).

    A forked night worker runs under a one-thread limit: a model trained with more threads
    must not override it, or the two processes oversubscribe the cores and OpenMP is
    re-entered after the fork (which GCC's runtime may hang on)."""
    limits = [int(p["num_threads"]) for p in threadpool_info() if p.get("user_api") == "openmp"]
    if not limits:
        return threads
    return min(limits) if threads <= 0 else min(threads, min(limits))
