"""A scikit-learn face for features and training: ``PointFeatures`` and ``RiskClassifier``.

The one-page API (:func:`~escalation_risk.train`, :class:`~escalation_risk.RiskModel`)
stays as it is; this module wraps it so that analysts can use scikit-learn's tools
(``clone``, ``Pipeline``, ``cross_validate`` with ``TimeSeriesSplit``, ``GridSearchCV``).

The inputs are **points**, a DataFrame of ``dispute_id, as_of`` (one row per dispute
at the moment it is scored, e.g. :func:`~escalation_risk.model.points.report_points`),
not a numeric matrix: the dataset they belong to is a constructor parameter, and the
features of a point are computed from what was recorded up to its ``as_of`` only.
Sort the points by ``as_of`` before a ``TimeSeriesSplit``; give the split a ``gap`` of
about one horizon of points if the test rows must not overlap the training labels'
windows (:func:`train` itself leaves that gap inside its rolling-origin validation).

``RiskClassifier(...).fit(points)`` runs the same code as :func:`train` (rolling-origin
search, refit, calibration; ``model.training._train_on_points``): with the points
:func:`train` would use and the same settings, the booster and the probabilities are
equal (tested).

scikit-learn estimator checks (``sklearn.utils.estimator_checks``). These apply and pass
(``tests/test_estimators.py``): ``check_parameters_default_constructible``,
``check_no_attributes_set_in_init``, ``check_get_params_invariance``,
``check_set_params``, ``check_estimator_cloneable``, ``check_estimator_repr``,
``check_do_not_raise_errors_in_init_or_set_params``, ``check_mixin_order``,
``check_estimator_tags_renamed``, ``check_valid_tag_types``, ``check_estimators_unfitted``,
``check_transformers_unfitted``, ``check_get_feature_names_out_error``. The others do not apply: they
feed generated numeric arrays (``X`` of floats, often with NaN, inf, sparse matrices,
one sample or one feature, ``y`` of several classes) and expect the estimator to learn
from them, whereas an input here is a point of a given dataset (an array of floats has
no ``dispute_id``/``as_of`` to look up; a clear ``ValueError`` says so), and a
meaningful fit needs months of history with enough escalations for rolling-origin
validation. ``RiskClassifier`` is binary by construction (escalated or not).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from .clock import to_moments
from .dataset import Dataset
from .features import Lexicon, build_features, feature_names
from .labels import DEFAULT_HORIZON_DAYS
from .model.risk_model import RiskModel
from .model.training import DEFAULT_CONFIG, _config, _train_on_points
from .response import DEFAULT_BUDGET

# train() config options that choose *which* points to train on; the estimator is
# given its points, so these have no estimator parameter.
POINT_OPTIONS = ("rescore_every_days", "max_rescores", "rescore_phase")


def _check_dataset(dataset: Any, who: str) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise ValueError(f"{who}: dataset must be the escalation_risk Dataset the points belong to, "
                         f"got {type(dataset).__name__}")
    return dataset


def _check_points(points: Any, who: str) -> pd.DataFrame:
    """Points as a fresh ``dispute_id, as_of`` frame with a datetime ``as_of``."""
    if not isinstance(points, pd.DataFrame):
        raise ValueError(f"{who}: points must be a DataFrame with columns dispute_id and as_of "
                         f"(one row per dispute and moment), got {type(points).__name__}")
    missing = [c for c in ("dispute_id", "as_of") if c not in points.columns]
    if missing:
        raise ValueError(f"{who}: points lack column(s) {missing}; have {list(points.columns)[:8]}")
    # A date alone is the end of its day, by the one rule (clock.to_moment).
    as_of = to_moments(points["as_of"], what=f"{who}: points column as_of")  # a MomentError is a ValueError
    bad = np.flatnonzero(as_of.isna().to_numpy())
    if len(bad):
        raise ValueError(f"{who}: points column as_of row {int(bad[0])}: value {points['as_of'].iloc[bad[0]]!r} "
                         f"is not a date ({len(bad)} such row(s))")
    return pd.DataFrame({"dispute_id": points["dispute_id"].to_numpy(dtype=object),
                         "as_of": as_of.to_numpy(dtype="datetime64[ns]")})


class PointFeatures(TransformerMixin, BaseEstimator):
    """Turns points (``dispute_id, as_of``) into their feature frame in ``dataset``.

    ``features``: the feature columns to keep, in that order (``None``: every feature
    of :func:`~escalation_risk.features.feature_names`). ``fit`` learns nothing (the
    features of a point depend only on the data recorded up to its ``as_of``); it checks
    the settings and records the output columns. ``transform`` returns a DataFrame indexed
    like the points (categorical features as pandas categories).
    """

    def __init__(self, dataset: Dataset | None = None, features: list[str] | None = None,
                 lexicon: Lexicon | None = None):
        self.dataset = dataset
        self.features = features
        self.lexicon = lexicon

    def fit(self, points: pd.DataFrame, y: Any = None) -> PointFeatures:
        """Check the dataset and feature names; stateless otherwise. Returns ``self``."""
        _check_dataset(self.dataset, "PointFeatures")
        _check_points(points, "PointFeatures.fit")
        known = feature_names(self.lexicon)
        names = known if self.features is None else list(self.features)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"PointFeatures: unknown feature(s) {unknown[:5]}; see "
                             f"escalation_risk.features.feature_table()")
        self.feature_names_out_ = np.asarray(names, dtype=object)
        return self

    def transform(self, points: pd.DataFrame) -> pd.DataFrame:
        """The feature frame of ``points``, one row per point, in order."""
        check_is_fitted(self, "feature_names_out_")
        pts = _check_points(points, "PointFeatures.transform")
        X = build_features(_check_dataset(self.dataset, "PointFeatures"), pts, lexicon=self.lexicon)
        out = X[list(self.feature_names_out_)]
        out.index = points.index
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The names of the output columns (``input_features`` is ignored: inputs are points)."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


class RiskClassifier(ClassifierMixin, BaseEstimator):
    """The escalation-risk model as a scikit-learn classifier over points of ``dataset``.

    ``fit(points, y=None)`` trains and calibrates exactly as :func:`~escalation_risk.train`
    does (same code), on the given points instead of the report-time examples:
    ``y`` is 0/1 per point (``None``: :func:`~escalation_risk.make_labels` on the data
    known at the cutoff; NaN labels are not used). ``cutoff``: the day the training data
    are known up to (``None``: the last point's ``as_of`` plus ``horizon_days``, the first
    day every point's label is known); points whose horizon ends after an explicit cutoff
    raise ``ValueError``. ``seed``, ``lexicon`` and ``exclude`` are :func:`train`'s
    (``families_off=None``: the default setting); every other
    parameter is the :data:`~escalation_risk.model.training.DEFAULT_CONFIG` option of the
    same name (``lgb_params=None``: ``{}``; ``budget=None``: the default budget), except
    ``rescore_every_days``/``max_rescores``/``rescore_phase``, which choose points and so do not apply.

    Learned: ``model_`` (the :class:`RiskModel`: save it, score with it, explain it),
    ``cutoff_``, ``classes_`` (``[0, 1]``: 1 = a crime within the horizon).
    """

    def __init__(self, dataset: Dataset | None = None, *, cutoff: Any = None,
                 horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0, lexicon: Lexicon | None = None,
                 validation_months: int = 6, folds: int = 3, param_grid: list[dict] | None = None,
                 burn_in_days: int = 0, recency_half_life_days: float | None = None,
                 num_boost_round: int = 600, early_stopping_rounds: int = 50, min_train_positives: int = 20,
                 num_threads: int = 1, lgb_params: dict | None = None, calibration: str = "auto",
                 calibration_folds: int = 5, budget: dict | None = None, offences: list[str] | None = None,
                 shared_party: bool = True, ece_bins: int = 10, text_model_folds: int = 5,
                 families_off: list[str] | None = None, exclude: list[str] | None = None,
                 linear: str = "auto", equalise_fpr: str | None = None, bags: int = DEFAULT_CONFIG["bags"]):
        self.dataset = dataset
        self.cutoff = cutoff
        self.horizon_days = horizon_days
        self.seed = seed
        self.lexicon = lexicon
        self.validation_months = validation_months
        self.folds = folds
        self.param_grid = param_grid
        self.burn_in_days = burn_in_days
        self.recency_half_life_days = recency_half_life_days
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.min_train_positives = min_train_positives
        self.num_threads = num_threads
        self.lgb_params = lgb_params
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.budget = budget
        self.offences = offences
        self.shared_party = shared_party
        self.ece_bins = ece_bins
        self.text_model_folds = text_model_folds
        self.families_off = families_off
        self.exclude = exclude
        self.linear = linear
        self.equalise_fpr = equalise_fpr
        self.bags = bags

    def train_config(self) -> dict:
        """The :func:`train` ``config`` these parameters stand for (for comparisons)."""
        cfg = {k: getattr(self, k) for k in DEFAULT_CONFIG if k not in POINT_OPTIONS}
        cfg["lgb_params"] = dict(self.lgb_params or {})
        cfg["budget"] = dict(DEFAULT_BUDGET) if self.budget is None else dict(self.budget)
        cfg["families_off"] = list(DEFAULT_CONFIG["families_off"] if self.families_off is None else self.families_off)
        return cfg

    def fit(self, points: pd.DataFrame, y: Any = None) -> RiskClassifier:
        """Train and calibrate on ``points`` (labels ``y`` or from the data); returns ``self``."""
        ds = _check_dataset(self.dataset, "RiskClassifier")
        pts = _check_points(points, "RiskClassifier.fit")
        if len(pts) == 0:
            raise ValueError("RiskClassifier.fit: no points")
        horizon = pd.Timedelta(days=self.horizon_days)
        last = pd.Timestamp(pts["as_of"].max())
        cutoff = last + horizon if self.cutoff is None else pd.Timestamp(self.cutoff)
        if last + horizon > cutoff:
            late = int((pts["as_of"] + horizon > cutoff).sum())
            raise ValueError(f"RiskClassifier.fit: {late} point(s) have as_of after {(cutoff - horizon).date()}: "
                             f"their {self.horizon_days}-day label window ends after the cutoff "
                             f"{cutoff.date()}; drop them or set a later cutoff")
        labels = None
        if y is not None:
            labels = np.asarray(y, dtype=float).ravel()
            if len(labels) != len(pts):
                raise ValueError(f"RiskClassifier.fit: y has {len(labels)} labels for {len(pts)} points")
            bad = np.flatnonzero(~np.isnan(labels) & ~np.isin(labels, (0.0, 1.0)))
            if len(bad):
                raise ValueError(f"RiskClassifier.fit: y row {int(bad[0])}: value {float(labels[bad[0]])} "
                                 f"is not 0 or 1")
        cfg = _config(self.train_config())
        with threadpool_limits(limits=cfg["num_threads"]):
            self.model_ = _train_on_points(ds, pts, labels, cfg, cutoff=cutoff, horizon_days=self.horizon_days,
                                           seed=self.seed, lexicon=self.lexicon, exclude=self.exclude)
        self.cutoff_ = cutoff
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, points: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape ``(n, 2)``: column 1 is the risk of a crime."""
        check_is_fitted(self, "model_")
        model: RiskModel = self.model_
        pts = _check_points(points, "RiskClassifier.predict_proba")
        X = build_features(_check_dataset(self.dataset, "RiskClassifier"), pts, lexicon=self.lexicon,
                           text=model.text_model)
        p = model.predict_proba(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, points: pd.DataFrame) -> np.ndarray:
        """The more probable class (1 when the risk is at least 0.5); alert levels use the
        model's own thresholds (``model_.manifest["thresholds"]``)."""
        risk = self.predict_proba(points)[:, 1]
        return self.classes_[(risk >= 0.5).astype(int)]
