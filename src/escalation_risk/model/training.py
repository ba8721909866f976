"""Train, validate over time, calibrate and explain the escalation-risk model.

The design, in the order :func:`train` runs it:

1. **Only the past.** The data are cut at ``cutoff`` (:meth:`Dataset.cut`): a
   crime that happened before the cutoff but was reported after it is unknown,
   as it would have been on the day.
2. **Examples.** Each dispute at its report time (``as_of = reported_at``); with
   ``config["rescore_every_days"]`` also re-scored every so many days while still
   open, as the nightly job sees it. Only examples whose label is fully observed
   are used (``as_of + horizon <= cutoff``).
3. **Rolling-origin validation, for choosing only.** The last ``validation_months``
   of labelled ``as_of`` are cut into ``folds`` consecutive windows. For each window
   a booster is trained on every example whose label window ends before the window
   starts (a gap of one horizon, so no label overlaps) and predicts the window: these
   are out-of-time predictions. They choose, for each of a few parameter sets
   (:data:`PARAM_GRID`), the number of trees (the minimum of the fold-averaged
   validation log-loss), then the parameter set (the lowest such log-loss), the
   calibration map and the alert thresholds.
4. **Refit on all of it.** The final booster is trained with the chosen parameters and
   number of trees on *every* labelled example up to the cutoff, the validation
   windows included: the most recent history, the most informative for the months
   ahead, is not thrown away.
5. **Calibration** on the out-of-time predictions of step 3 (cross-fitting: the map is
   never fitted on scores of examples the final booster saw): Platt scaling or
   isotonic regression, whichever has the lower Brier score in 5-fold
   cross-validation there. The fold boosters share the final one's parameters and
   number of trees, so their raw scores are on its scale. Stored as plain numbers.
6. **Baselines and metrics** on the same out-of-time windows: the model against a
   logistic regression on the same features and a DASH/ODARA-style checklist, each
   also fitted per fold on the fold's training examples only; ROC AUC, average
   precision, Brier, expected calibration error, precision and recall at alert
   budgets, per-group metrics (fairlearn ``MetricFrame``). The stored baselines are
   refitted on all labelled examples, like the model.
7. **Thresholds** for the alert levels from the calibrated out-of-time probabilities
   (:func:`response.choose_thresholds`).
8. **A true held-out figure**, with ``holdout=``: every dispute first reported after
   the cutoff, at its report time, scored by the final model and both baselines, with
   95% bootstrap intervals. Nothing in steps 1-7 saw these disputes or their labels.

:class:`RiskModel` holds the booster, the calibration map, the baselines and the
manifest; it scores, explains, evaluates and saves itself (no pickle, see
:mod:`.artifacts`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from .._version import __version__
from ..artifacts import jsonable
from ..clock import to_moment
from ..dataset import Dataset
from ..features import CATEGORICAL, REGISTRY, Lexicon, TextModel, build_features, feature_names, history_index
from ..features.points import points_from_history
from ..features.text_model import NAME as TEXT_FEATURE
from ..features.text_model import fit_with_out_of_fold, point_texts
from ..known import time_varying_facts
from ..labels import DEFAULT_HORIZON_DAYS, data_end, make_labels
from ..response import DEFAULT_BUDGET, choose_thresholds
from .bagging import every_tree, fit_bag, search_bag
from .baselines import _fit_checklist, _fit_logistic
from .blend import _logit, blend_raw, fit_blend
from .calibration import apply_calibrator, fit_calibrator
from .fairness import equal_fpr_thresholds, equalised_comparison, group_of
from .metrics import DEFAULT_BUDGETS, _evaluate_arrays, baseline_scores
from .points import example_points
from .risk_model import RiskModel

log = logging.getLogger(__name__)

# Settings common to every parameter set: subsampling and categorical smoothing keep a
# booster from chasing rare values; learning rate and early stopping set the size.
LGB_PARAMS: dict[str, Any] = {
    "objective": "binary", "metric": "binary_logloss", "learning_rate": 0.03, "num_leaves": 7,
    "min_data_in_leaf": 100, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
    "lambda_l2": 10.0, "min_sum_hessian_in_leaf": 1.0, "cat_smooth": 20.0, "cat_l2": 10.0,
    "min_data_per_group": 50, "max_bin": 255, "verbosity": -1,
}

# The parameter sets compared by rolling-origin validation at every training (step 3 of
# the design): from small, heavily regularised trees to LightGBM's own defaults of size,
# so that a district with a lot of signal in interactions can use it and one with
# little is not overfitted. The fourth set (issue 29's diagnosis, BENCHMARKS.md "Why the
# model is barely ahead of the logistic regression") is the heavily regularised end: large
# leaves, a strong L2 penalty and half the features per tree, for districts whose signal
# is spread thinly over many weak, correlated features, where the fold curves showed the
# boosters' variance, not their size, holding them back. Chosen, like the others, only
# when the rolling-origin windows say so.
PARAM_GRID: list[dict[str, Any]] = [
    {"num_leaves": 7, "min_data_in_leaf": 100, "lambda_l2": 10.0},
    {"num_leaves": 15, "min_data_in_leaf": 50, "lambda_l2": 3.0},
    {"num_leaves": 31, "min_data_in_leaf": 20, "lambda_l2": 1.0, "feature_fraction": 0.6},
    {"num_leaves": 7, "min_data_in_leaf": 300, "lambda_l2": 30.0, "feature_fraction": 0.5},
]

# The per-family ablation on fresh districts (benchmarks/ablation.py; BENCHMARKS.md, "Does
# each family earn its place"), shown in every model card. A family whose change in AUC and
# in precision at 5% held zero on every seed and view is left out by default (FAMILIES_OFF)
# and can be switched back on with config={"families_off": []}.
ABLATION: dict[str, Any] = json.loads((Path(__file__).parent / "ablation.json").read_text(encoding="utf-8")) \
    if (Path(__file__).parent / "ablation.json").is_file() else {}
FAMILIES_OFF: tuple[str, ...] = tuple(ABLATION.get("families_off", ()))

# The direction the risk-assessment literature gives prior harm on record (DASH, ODARA,
# the Ontario and Danger Assessment items): more police calls, offences, violence,
# threats or failed mediations never lower the risk. A parameter set with
# ``"monotone_history": True`` constrains the trees to that direction on these counts
# (nothing else), so the few disputes with such a history cannot be split the other way
# by noise; whether a district's data agree is the rolling-origin windows' choice. Only the
# trees are constrained: a blended linear part's coefficient may still point the other way.
MONOTONE_INCREASING: tuple[str, ...] = ("hist_police_call_", "hist_crime_suspect_", "hist_violent_suspect_",
                                        "hist_danger_text_", "hist_failed_mediation_")


def _lgb_params(base: dict, overrides: dict, names: list[str]) -> dict:
    """LightGBM's parameters for one set: ``base`` with the set's ``overrides``, the
    ``monotone_history`` marker turned into a constraint per feature of ``names``."""
    params = {**base, **overrides}
    if params.pop("monotone_history", False):
        params["monotone_constraints"] = [1 if n.startswith(MONOTONE_INCREASING) and n.endswith(("_max", "_sum"))
                                          else 0 for n in names]
        params["monotone_constraints_method"] = "intermediate"
    return params


def _rounds(params: dict, base: dict, cfg: dict) -> tuple[int, int]:
    """The round cap and early-stopping patience for one parameter set: the config's,
    scaled by ``base``'s learning rate over the set's own when the set is slower, so a
    slower set gets the same horizon in learning-rate units and early stopping, not the
    cap, ends it (a set at the base rate, or a base rate changed for every set, keeps the
    config's numbers)."""
    scale = max(1.0, float(base["learning_rate"]) / float(params["learning_rate"]))
    return int(round(cfg["num_boost_round"] * scale)), int(round(cfg["early_stopping_rounds"] * scale))


DEFAULT_CONFIG: dict[str, Any] = {
    "rescore_every_days": None,     # also re-score open disputes every N days (None: report time only)
    "max_rescores": 12,             # at most this many later moments per dispute
    "validation_months": 6,         # the last labelled as_of months, cut into rolling-origin windows
    "folds": 3,                     # rolling-origin windows (each trained on what came a horizon before it)
    "param_grid": None,             # parameter sets to compare (None: PARAM_GRID); [] uses lgb_params only
    "burn_in_days": 0,              # skip examples this close to the start of the data (short histories)
    "recency_half_life_days": None,  # weight training examples down with age (None: equal weights)
    "num_boost_round": 600,
    "early_stopping_rounds": 50,
    "min_train_positives": 20,      # a fold with fewer escalated training examples is skipped
    # Boosters averaged (model.bagging), each with its own row and feature subsamples, the
    # number of trees chosen for their mean by the windows; 1: a single booster.
    "bags": 1,
    # Re-scores at whole periods after the report ("fixed") or spread over each period
    # ("spread", as nights fall on any day of a dispute's life): model.points.example_points.
    "rescore_phase": "fixed",
    # One thread: on a shared machine OpenMP threads spin-wait for busy cores (a 150-tree
    # fit took 19 s on 2 threads against 0.8 s on one, load 10 on 2 cores), and the
    # boosters here are small; one thread is also the most reproducible across machines.
    "num_threads": 1,
    "lgb_params": {},               # overrides of LGB_PARAMS, applied to every parameter set
    "calibration": "auto",          # "auto" (lower CV Brier), "platt" or "isotonic"
    "calibration_folds": 5,
    "budget": dict(DEFAULT_BUDGET),  # cumulative share of disputes at or above each level
    "offences": None,               # label: offence categories counted (None = all)
    "shared_party": True,           # label: a shared person party suffices
    "ece_bins": 10,
    "text_model_folds": 5,          # the text model's scores for training come from this many folds (by dispute)
    # Feature families left out unless asked for ([]: all): those whose ablation on fresh
    # districts (benchmarks/ablation.py) showed no gain on any seed stay behind this setting.
    "families_off": list(FAMILIES_OFF),
    # A linear part beside the trees: "blend" adds the logistic regression's log-odds with
    # weights fitted on the out-of-time windows, "auto" only when that beats the trees alone
    # there in cross-validation (model.blend), "none" never.
    "linear": "auto",
    # Per-group alert thresholds with one false-positive rate for every group of this
    # attribute ("gender", "hukou", "age_band", "dispute_category") at the orange budget,
    # fitted on the out-of-time predictions (model.fairness); None: one threshold for all.
    "equalise_fpr": None,
}


def _config(config: dict | None) -> dict:
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    unknown = set(config or {}) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"config: unknown option(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
    if not isinstance(cfg["bags"], int) or cfg["bags"] < 1:
        raise ValueError(f"config: bags must be an integer >= 1, got {cfg['bags']!r}")
    return cfg



def _folds(points: pd.DataFrame, *, cutoff: pd.Timestamp, start: pd.Timestamp, horizon: pd.Timedelta,
           validation_months: int, folds: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], dict]:
    """The labelled examples and the rolling-origin folds over them.

    Returns the mask of labelled examples (``start <= as_of`` and ``as_of + horizon <=
    cutoff``), one (train, window) pair of masks per fold, oldest window first, and the
    periods they cover. A fold trains on examples whose label window ends when its
    window starts, so no training label overlaps a validated one.
    """
    if folds < 1 or validation_months < 1:
        raise ValueError(f"config: folds ({folds}) and validation_months ({validation_months}) must be >= 1")
    as_of = points["as_of"]
    labelled_end = cutoff - horizon                  # as_of + horizon <= cutoff
    val_start = labelled_end - pd.DateOffset(months=validation_months)
    if val_start - horizon <= start:
        raise ValueError(f"cutoff {cutoff.date()} leaves no training period: the data start {start.date()}, "
                         f"validation needs {validation_months} months and two horizons of "
                         f"{horizon.days} days")
    labelled = ((as_of >= start) & (as_of <= labelled_end)).to_numpy()
    edges = [val_start + (labelled_end - val_start) * k / folds for k in range(folds + 1)]
    pairs, windows = [], []
    for k in range(folds):
        w0, w1 = edges[k], edges[k + 1]
        window = labelled & ((as_of >= w0) & ((as_of <= w1) if k == folds - 1 else (as_of < w1))).to_numpy()
        train = labelled & (as_of + horizon <= w0).to_numpy()
        pairs.append((train, window))
        windows.append({"train_as_of": [start, w0 - horizon], "window_as_of": [w0, w1]})
    periods = {"train_as_of": [start, labelled_end], "validation_as_of": [val_start, labelled_end],
               "labels_observed_until": cutoff, "folds": windows}
    return labelled, pairs, periods


def _lgb_dataset(X: pd.DataFrame, y: np.ndarray, weight: np.ndarray | None, reference=None) -> lgb.Dataset:
    return lgb.Dataset(X, y, weight=weight, reference=reference,
                       categorical_feature=[c for c in CATEGORICAL if c in X.columns], free_raw_data=False)


def _recency_weight(as_of: pd.Series, half_life: float | None) -> np.ndarray | None:
    if not half_life:
        return None
    age = (as_of.max() - as_of).dt.days.to_numpy(dtype=float)
    return 0.5 ** (age / half_life)


def _search(F: pd.DataFrame, y: np.ndarray, as_of: pd.Series, folds: list[tuple[np.ndarray, np.ndarray]],
            grid: list[dict], base: dict, cfg: dict) -> tuple[int, int, list[dict], list[list[np.ndarray]]]:
    """Rolling-origin validation of each parameter set: (chosen set, number of trees,
    the search table, raw out-of-time scores per set and fold at its number of trees)."""
    table: list[dict[str, Any]] = []
    raws: list[list[np.ndarray]] = []
    for i, overrides in enumerate(grid):
        params = _lgb_params(base, overrides, list(F.columns))
        rounds, patience = _rounds(params, base, cfg)
        curves, boosters = [], []
        for tr, wi in folds:
            dtr = _lgb_dataset(F[tr], y[tr], _recency_weight(as_of[tr], cfg["recency_half_life_days"]))
            dva = _lgb_dataset(F[wi], y[wi], None, reference=dtr)
            rec: dict = {}
            # keep_training_booster: otherwise the booster is cut to its own best iteration, and
            # a fold whose best is below the common number would be scored with fewer trees.
            b = lgb.train(params, dtr, num_boost_round=rounds, valid_sets=[dva],
                          valid_names=["window"], keep_training_booster=True,
                          callbacks=[lgb.early_stopping(patience, verbose=False),
                                     lgb.record_evaluation(rec)])
            curves.append(np.asarray(rec["window"]["binary_logloss"]))
            boosters.append(every_tree(b))
        # One number of trees for every fold: the minimum of the fold-averaged curve (over
        # the rounds every fold ran), so the choice is the one the refit will use.
        common = min(len(c) for c in curves)
        mean_curve = np.mean([c[:common] for c in curves], axis=0)
        n_trees = int(np.argmin(mean_curve)) + 1
        raw = [np.asarray(b.predict(F[wi], raw_score=True, num_iteration=n_trees))
               for b, (_, wi) in zip(boosters, folds)]
        yw = np.concatenate([y[wi] for _, wi in folds])
        table.append({"params": overrides, "n_trees": n_trees, "window_log_loss": float(mean_curve[n_trees - 1]),
                      "window_auc": float(roc_auc_score(yw, np.concatenate(raw))) if 0 < yw.sum() < len(yw)
                      else float("nan"),
                      "fold_best_iterations": [int(np.argmin(c)) + 1 for c in curves],
                      # A fold that ran every round was ended by the cap, not by early stopping.
                      "fold_rounds": [len(c) for c in curves], "max_rounds": rounds})
        raws.append(raw)
        log.info("parameter set %d %s: %d trees, window log-loss %.5f", i, overrides, n_trees,
                 table[-1]["window_log_loss"])
    best = int(np.argmin([float(t["window_log_loss"]) for t in table]))
    return best, int(table[best]["n_trees"]), table, raws


def train(ds: Dataset, *, cutoff, horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0,
          config: dict | None = None, outcomes: pd.DataFrame | None = None, holdout=None,
          lexicon: Lexicon | None = None, exclude=None) -> RiskModel:
    """Train, calibrate and validate a model on the data known at ``cutoff``.

    See the module docstring for the design; ``config`` overrides
    :data:`DEFAULT_CONFIG`. ``outcomes`` (``AlertStore.outcomes()``) feeds the recorded
    outcomes of handled alerts back into the labels (those closed by the cutoff).
    ``holdout``: ``True`` (every dispute first reported after the cutoff whose horizon
    ends inside ``ds``), an end date (reported before it) or a ``(start, end)`` pair not
    before the cutoff; its metrics, with 95% bootstrap intervals, go to
    ``manifest["metrics"]["holdout"]`` and :attr:`RiskModel.holdout`. A holdout with
    no labelled dispute raises ``ValueError``. ``lexicon`` (:func:`~escalation_risk.features.load_lexicon`)
    replaces the shipped text lexicon; the model stores it and scores with it.
    ``exclude``: personal attributes (``"gender"``, ``"hukou"``, ``"age"``) the model must
    do without, each with every feature derived from it (the registry's ``uses``), and/or
    feature families by name (``"text_model"``, ``"velocity"``, ...); nothing by default.
    The manifest records what was excluded. Deterministic for a given dataset, cutoff, seed and ``num_threads``.
    """
    cfg = _config(config)
    # BLAS (the logistic regressions, calibration) gets the same thread budget as
    # LightGBM: on shared cores, spinning BLAS threads made each L-BFGS step 25 ms.
    with threadpool_limits(limits=cfg["num_threads"]):
        return _train(ds, cfg, cutoff=cutoff, horizon_days=horizon_days, seed=seed, outcomes=outcomes,
                      holdout=holdout, lexicon=lexicon, exclude=exclude)


def _train(ds: Dataset, cfg: dict, *, cutoff, horizon_days: int, seed: int, outcomes: pd.DataFrame | None,
           holdout, lexicon: Lexicon | None, exclude=None) -> RiskModel:
    cutoff = to_moment(cutoff, what="cutoff")
    hold_span = _holdout_span(holdout, cutoff)
    known = ds.cut(cutoff) if data_end(ds) > cutoff else ds
    points = example_points(known, every_days=cfg["rescore_every_days"], max_rescores=cfg["max_rescores"],
                            until=cutoff, phase=cfg["rescore_phase"])
    model = _train_on_points(ds, points, None, cfg, cutoff=cutoff, horizon_days=horizon_days, seed=seed,
                             outcomes=outcomes, lexicon=lexicon, known=known, exclude=exclude)
    if hold_span is not None:
        # Imported here: evaluation builds on this module (backtest trains).
        from .evaluation import evaluate
        hold = evaluate(model, ds, start=hold_span[0], end=hold_span[1], intervals=True, seed=seed)
        model.manifest["metrics"]["holdout"] = hold.to_dict()
        model.holdout = hold
    return model


def _train_on_points(ds: Dataset, points: pd.DataFrame, y: np.ndarray | None, cfg: dict, *, cutoff,
                     horizon_days: int, seed: int, outcomes: pd.DataFrame | None = None,
                     lexicon: Lexicon | None = None, known: Dataset | None = None, exclude=None,
                     _features: Any = None, _text_cache: dict | None = None) -> RiskModel:
    """Steps 3-7 of the design on given ``(dispute_id, as_of)`` points: the one code path of
    :func:`train` (which passes its example points) and of
    :class:`escalation_risk.estimators.RiskClassifier` (which passes the caller's).

    Points outside the labelled span (before the burn-in, or whose horizon ends after
    ``cutoff``) are not used. ``y`` (0/1 per point; ``None``: :func:`make_labels` on the
    data known at ``cutoff``); points whose label is NaN are not used either. The caller
    sets the thread limits (:func:`train` does); ``known`` is ``ds`` cut at ``cutoff`` if
    the caller has it already.
    """
    cutoff = to_moment(cutoff, what="cutoff")
    if known is None:
        known = ds.cut(cutoff) if data_end(ds) > cutoff else ds
    start = pd.Timestamp(known.incidents["reported_at"].min()) + pd.Timedelta(days=cfg["burn_in_days"])

    def labels(pts: pd.DataFrame, labelled: np.ndarray) -> np.ndarray:
        if y is not None:
            return np.asarray(y, dtype=float)[labelled]
        done = outcomes
        if done is not None and len(done):
            done = done[pd.to_datetime(done["closed_at"]) <= cutoff]
        return make_labels(known, pts, horizon_days=horizon_days, offences=cfg["offences"],
                           shared_party=cfg["shared_party"], outcomes=done).to_numpy()

    def text(pts: pd.DataFrame, yy: np.ndarray) -> tuple[np.ndarray, TextModel]:
        if _text_cache is not None and "text" in _text_cache:  # train_variants: the same points and labels
            return _text_cache["text"]
        got = _text(pts, yy)
        if _text_cache is not None:
            _text_cache["text"] = got
        return got

    def _text(pts: pd.DataFrame, yy: np.ndarray) -> tuple[np.ndarray, TextModel]:
        # Out of fold: no row's text score comes from a model that saw its dispute.
        idx = history_index(known, lexicon)
        texts = point_texts(idx, points_from_history(idx, pts))
        # Hashed once for the folds and the kept model (hashing was most of the text work).
        return fit_with_out_of_fold(texts, yy, pts["dispute_id"].to_numpy(dtype=object),
                                    folds=cfg["text_model_folds"], seed=seed)

    training_data = {"fingerprint": ds.fingerprint(), "fingerprint_at_cutoff": known.fingerprint(),
                     "time_varying_facts": time_varying_facts(ds.tables()), "source": ds.source}
    build = _features or build_features
    return fit_examples(points, labels, lambda pts: build(known, pts, lexicon=lexicon), cfg,
                        cutoff=cutoff, end=data_end(ds), start=start, horizon_days=horizon_days, seed=seed,
                        lexicon=lexicon, exclude=exclude, text=text, training_data=training_data)


def labelled_examples(points: pd.DataFrame, labels: Any, cfg: dict, *, cutoff: pd.Timestamp, end: pd.Timestamp,
                      start: pd.Timestamp, horizon_days: int
                      ) -> tuple[pd.DataFrame, np.ndarray, list[tuple[np.ndarray, np.ndarray]], dict]:
    """The examples :func:`fit_examples` learns from: the labelled ``points`` whose label
    (``labels(points, labelled_mask)``, NaN: not used) is known, their 0/1 labels, the
    rolling-origin folds over them that have both outcomes in the window and enough escalated
    training examples, and the periods those cover."""
    horizon = pd.Timedelta(days=horizon_days)
    # A cutoff after the data's end (train on everything: the production call) observes
    # labels only until the last record; the folds end there.
    labelled, folds, periods = _folds(points, cutoff=min(cutoff, end), start=start, horizon=horizon,
                                      validation_months=cfg["validation_months"], folds=cfg["folds"])
    points = points[labelled].reset_index(drop=True)
    folds = [(tr[labelled], wi[labelled]) for tr, wi in folds]
    y = labels(points, labelled)
    ok = ~np.isnan(y)  # the cut data end a little before the cutoff: drop what they cannot label
    points, y = points[ok].reset_index(drop=True), np.nan_to_num(y[ok]).astype(int)
    folds = [(tr[ok], wi[ok]) for tr, wi in folds]
    # A fold needs both outcomes in its window and enough escalations to learn from.
    kept = [k for k, (tr, wi) in enumerate(folds)
            if y[tr].sum() >= cfg["min_train_positives"] and (~y[tr].astype(bool)).any()
            and 0 < y[wi].sum() < wi.sum()]
    if not kept:
        raise ValueError(f"no validation fold has escalated and non-escalated disputes in its window and at "
                         f"least {cfg['min_train_positives']} escalated training examples before it "
                         f"({int(y.sum())} escalated of {len(y)} labelled examples); choose a later cutoff")
    periods["folds"] = [periods["folds"][k] for k in kept]
    return points, y, [folds[k] for k in kept], periods


def bag_windows(F: pd.DataFrame, y: np.ndarray, as_of: pd.Series, folds: list[tuple[np.ndarray, np.ndarray]],
                cfg: dict, *, F_window: pd.DataFrame | None = None, y_window: np.ndarray | None = None
                ) -> tuple[list[lgb.Dataset], list[tuple[lgb.Dataset, pd.DataFrame, np.ndarray]]]:
    """:func:`~escalation_risk.model.bagging.search_bag`'s inputs: each fold's training set
    (recency-weighted as the search's) and window. ``F_window``/``y_window``: other examples
    whose rows the folds' window masks select (default ``F``, ``y``)."""
    Fw = F if F_window is None else F_window
    yw = y if y_window is None else y_window
    trs = [_lgb_dataset(F[tr], y[tr], _recency_weight(as_of[tr], cfg["recency_half_life_days"])) for tr, _ in folds]
    return trs, [(_lgb_dataset(Fw[wi], yw[wi], None, reference=d), Fw[wi], yw[wi]) for d, (_, wi) in zip(trs, folds)]


def fit_examples(points: pd.DataFrame, labels: Any, features: Any, cfg: dict, *, cutoff: pd.Timestamp,
                 end: pd.Timestamp, start: pd.Timestamp, horizon_days: int, seed: int,
                 lexicon: Lexicon | None = None, exclude=None, text: Any = None,
                 training_data: dict | None = None) -> RiskModel:
    """Steps 3-7 on example points whose labels and features come from the callers:
    ``labels(points, labelled_mask) -> y`` (NaN: not used) and ``features(points) -> X``
    for the labelled points; ``text(points, y) -> (column, TextModel)`` when the text
    model is on (None: it must be off). ``start``: the first labelled moment (the data's
    first report plus the burn-in); ``end``: the data's last record. The one fitting
    step of :func:`train` and of a province trained by districts
    (:func:`escalation_risk.province_training.train_province`)."""
    points, y, folds, periods = labelled_examples(points, labels, cfg, cutoff=cutoff, end=end, start=start,
                                                  horizon_days=horizon_days)
    dropped = REGISTRY.excluded(list(exclude or []) + list(cfg["families_off"] or []))
    names = [n for n in feature_names(lexicon) if n not in dropped]
    X = features(points)
    text_model: TextModel | None = None
    if TEXT_FEATURE in names:
        if text is None:
            raise ValueError("the text model is on (config families_off without 'text_model'), and these "
                             "examples carry no text: train with the text model off")
        X[TEXT_FEATURE], text_model = text(points, y)
    F = X[names]
    as_of = points["as_of"]
    oot = np.zeros(len(y), dtype=bool)
    for _, wi in folds:
        oot |= wi
    log.info("training on %d labelled examples (%d escalated); %d rolling-origin windows hold %d (%d escalated)",
             len(y), y.sum(), len(folds), oot.sum(), y[oot].sum())

    base = {**LGB_PARAMS, **cfg["lgb_params"], "seed": seed, "deterministic": True,
            "num_threads": cfg["num_threads"], "force_col_wise": True}
    grid = PARAM_GRID if cfg["param_grid"] is None else (cfg["param_grid"] or [{}])
    grid = [{**g, **cfg["lgb_params"]} for g in grid]  # explicit overrides win over every set
    best, n_trees, search, raws = _search(F, y, as_of, folds, grid, base, cfg)
    params = _lgb_params(base, grid[best], names)
    if cfg["bags"] > 1:  # the chosen set as a bag: its own number of trees, its windows' mean scores
        trs, wins = bag_windows(F, y, as_of, folds, cfg)
        rounds, patience = _rounds(params, base, cfg)
        n_trees, ll, raws[best] = search_bag(params, trs, wins, k=cfg["bags"], seed=seed,
                                             rounds=rounds, early_stopping=patience)
        search[best]["bag"] = {"k": cfg["bags"], "n_trees": n_trees, "window_log_loss": ll}

    # Out-of-time predictions of the chosen set, window by window, oldest first.
    y_oot = np.concatenate([y[wi] for _, wi in folds])
    X_oot = pd.concat([X[wi] for _, wi in folds], ignore_index=True)
    raw_oot = np.concatenate(raws[best])
    fold_scores: dict[str, list[np.ndarray]] = {"logistic_regression": [], "checklist": []}
    for tr, wi in folds:  # the baselines out of time too, each from its fold's training examples only
        bs = baseline_scores(F[wi], {"logistic_regression": _fit_logistic(F[tr], y[tr], seed),
                                     "checklist": _fit_checklist(F[tr], y[tr])})
        for name, (p, r) in bs.items():
            fold_scores[name].append(np.stack([p, r]))
    oot_scores = {name: tuple(np.concatenate(v, axis=1)) for name, v in fold_scores.items()}
    linear = None
    if cfg["linear"] != "none":
        lr_oot = _logit(oot_scores["logistic_regression"][0])
        linear = fit_blend(raw_oot, lr_oot, y_oot, method=cfg["linear"], folds=cfg["calibration_folds"], seed=seed)
        if linear["chosen"]:
            raw_oot = blend_raw(raw_oot, lr_oot, linear)
        else:
            linear = {"chosen": False, "cv": linear["cv"]}
    calibrator = fit_calibrator(raw_oot, y_oot, method=cfg["calibration"], folds=cfg["calibration_folds"],
                                seed=seed)
    p_oot = apply_calibrator(raw_oot, calibrator)
    thresholds = choose_thresholds(p_oot, cfg["budget"])
    equalised = None
    if cfg["equalise_fpr"]:
        g_oot = group_of(X_oot, cfg["equalise_fpr"])
        equalised = equal_fpr_thresholds(p_oot, y_oot, g_oot, budget=cfg["budget"]["orange"],
                                         attribute=cfg["equalise_fpr"])
        equalised["validation"] = equalised_comparison(p_oot, y_oot, g_oot, equalised, n_boot=100,
                                                       seed=seed).to_dict(orient="records")
    ev = _evaluate_arrays(y_oot, X_oot, p_oot, {}, thresholds["orange"], DEFAULT_BUDGETS, cfg["ece_bins"],
                          {"what": "out-of-time predictions of the rolling-origin windows (the fold boosters)",
                           "start": periods["validation_as_of"][0], "end": periods["validation_as_of"][1]},
                          scores=oot_scores)

    # The refit: every labelled example, the chosen parameters and number of trees.
    dall = _lgb_dataset(F, y, _recency_weight(as_of, cfg["recency_half_life_days"]))
    booster = fit_bag(params, dall, k=cfg["bags"], seed=seed, n_trees=n_trees)
    baselines = {"logistic_regression": _fit_logistic(F, y, seed), "checklist": _fit_checklist(F, y)}
    recent = F[oot]
    if len(recent) > 5000:  # importance from a fixed sample: TreeSHAP costs ~0.1-1 ms a row
        recent = recent.sample(5000, random_state=seed)
    lin_part = {k: linear[k] for k in ("w_trees", "w_linear", "intercept")} if linear and linear["chosen"] else None

    booster_text = booster.model_to_string()
    # The version names everything that scores: the trees and, when there is one, the linear part.
    scored = booster_text if lin_part is None else booster_text + json.dumps(
        {**lin_part, **baselines["logistic_regression"]}, sort_keys=True, default=float)
    digest = hashlib.sha256(scored.encode()).hexdigest()[:10]
    version = f"{cutoff:%Y%m%d}-s{seed}-{digest}"
    fold_rows = [{**periods["folds"][k], "n_train": int(tr.sum()), "positives_train": int(y[tr].sum()),
                  "n_window": int(wi.sum()), "positives_window": int(y[wi].sum())}
                 for k, (tr, wi) in enumerate(folds)]
    periods["folds"] = fold_rows
    manifest = {
        "model_version": version,
        "library_version": __version__,
        "lightgbm_version": lgb.__version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "cutoff": cutoff, "seed": seed,
        "labels": {"horizon_days": horizon_days, "offences": cfg["offences"], "shared_party": cfg["shared_party"]},
        "features": {"names": names, "excluded": {"requested": list(exclude or []),
                                                  "families_off": list(cfg["families_off"] or []),
                                                  "features": dropped},
                     "dtypes": {n: ("category" if n in CATEGORICAL else "float64") for n in names},
                     "categories": {c: list(REGISTRY[c].categories or ()) for c in CATEGORICAL}},
        "training_data": training_data or {},
        "training": {"config": cfg, "lightgbm_params": params, "best_iteration": n_trees,
                     "search": search, "chosen": best,
                     "periods": periods, "n_train": len(y), "positives_train": int(y.sum()),
                     "n_validation": int(len(y_oot)), "positives_validation": int(y_oot.sum())},
        "calibration": {"method": calibrator["method"], "cv": calibrator["cv"],
                        "fitted_on": "out-of-time predictions of the rolling-origin windows"},
        "budget": cfg["budget"], "thresholds": thresholds,
        **({"equalised_fpr": equalised} if equalised is not None else {}),
        # The linear part the scores add (RiskModel.linear); "linear_choice" keeps the comparison.
        **({"linear": lin_part} if lin_part is not None else {}),
        "linear_choice": linear,
        "metrics": {"validation": ev.to_dict()},
        **({"lexicon": lexicon.to_dict()} if lexicon is not None else {}),
    }
    model = RiskModel(lgb.Booster(model_str=booster_text), calibrator, jsonable(manifest), baselines,
                      text_model=text_model)
    # Importance as the model scores: trees and linear part together (RiskModel.contributions).
    importance = model.importance(recent)
    model.manifest["importance"] = jsonable(importance.head(20)[["feature", "mean_abs_shap"]]
                                            .to_dict(orient="records"))
    # The out-of-time scores the calibrator was fitted on (in memory only): a benchmark compares calibrators.
    model.validation = {"raw": raw_oot, "y": y_oot}
    return model


def train_variants(ds: Dataset, variants: dict[str, Any], *, cutoff, horizon_days: int = DEFAULT_HORIZON_DAYS,
                   seed: int = 0, config: dict | None = None, lexicon: Lexicon | None = None,
                   share_search: bool = False) -> dict[str, RiskModel]:
    """One model per entry of ``variants`` (name: what to ``exclude``, as :func:`train`
    takes it, or ``{"exclude": [...], "config": {...}}`` for a variant with its own
    settings over ``config``; the example points follow ``config``), each the model
    ``train(ds, cutoff=..., exclude=...)`` returns, but sharing the features and the text
    model's out-of-fold scores: an ablation builds them once instead of once per model
    (no ``holdout``: the caller evaluates).

    ``share_search``: the first variant searches the parameter sets; the others use the
    set it chose (each still chooses its number of trees out of time), so the variants
    differ only in their features, at a third of the boosters.
    """
    cfg = _config(config)
    cut = to_moment(cutoff, what="cutoff")
    known = ds.cut(cut) if data_end(ds) > cut else ds
    points = example_points(known, every_days=cfg["rescore_every_days"], max_rescores=cfg["max_rescores"],
                            until=cut, phase=cfg["rescore_phase"])
    cache: dict[str, Any] = {}
    build = build_features

    def features(kn: Dataset, pts: pd.DataFrame, lexicon: Lexicon | None = None) -> pd.DataFrame:
        if "X" not in cache:
            cache["X"] = build(kn, pts, lexicon=lexicon)
        return cache["X"].copy()

    out: dict[str, RiskModel] = {}
    with threadpool_limits(limits=cfg["num_threads"]):
        for name, spec in variants.items():
            exclude, own = (spec.get("exclude"), spec.get("config") or {}) if isinstance(spec, dict) else (spec, {})
            vcfg = _config({**{k: cfg[k] for k in DEFAULT_CONFIG}, **own}) if own else cfg
            out[name] = _train_on_points(ds, points, None, vcfg, cutoff=cut, horizon_days=horizon_days, seed=seed,
                                         lexicon=lexicon, known=known, exclude=exclude, _features=features,
                                         _text_cache=cache)
            if share_search and len(out) == 1:
                tr = out[name].manifest["training"]
                cfg = {**cfg, "param_grid": [tr["search"][tr["chosen"]]["params"]]}
    return out


def _holdout_span(holdout, cutoff: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp | None] | None:
    """``holdout`` as a [start, end) span of report dates, never before the cutoff."""
    if holdout is None or holdout is False:
        return None
    if holdout is True:
        return cutoff, None
    if isinstance(holdout, (tuple, list)):
        if len(holdout) != 2:
            raise ValueError(f"holdout: give True, an end date or (start, end), got {holdout!r}")
        hs = to_moment(holdout[0], role="start", what="holdout start")
        he = to_moment(holdout[1], what="holdout end") if holdout[1] is not None else None
    else:
        hs, he = cutoff, to_moment(holdout, what="holdout end")
    if hs < cutoff:
        raise ValueError(f"holdout starts {hs.date()}, before the cutoff {cutoff.date()}: those disputes "
                         f"are training examples, not held out")
    if he is not None and he <= hs:
        raise ValueError(f"holdout ends {he.date()}, not after its start {hs.date()}")
    return hs, he
