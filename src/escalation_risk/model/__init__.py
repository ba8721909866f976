"""Train, validate over time, calibrate, explain and evaluate the escalation-risk model.

One module per noun: :mod:`.points` (which moments are scored), :mod:`.calibration`,
:mod:`.baselines`, :mod:`.metrics`, :mod:`.risk_model` (:class:`RiskModel`),
:mod:`.training` (:func:`train`, the design) and :mod:`.evaluation`.
"""

from __future__ import annotations

from ..artifacts import ModelLoadError
from .baselines import CHECKLIST_ITEMS, checklist_items, checklist_score
from .calibration import apply_calibrator, fit_calibrator
from .evaluation import backtest, evaluate
from .metrics import (
    DEFAULT_BUDGETS,
    Evaluation,
    calibration_curve,
    expected_calibration_error,
    group_attributes,
    score_metrics,
)
from .points import example_points, night_points, open_points, report_points
from .risk_model import RiskModel, load_model
from .training import DEFAULT_CONFIG, LGB_PARAMS, train

__all__ = ["CHECKLIST_ITEMS", "DEFAULT_BUDGETS", "DEFAULT_CONFIG", "LGB_PARAMS", "Evaluation", "ModelLoadError",
           "RiskModel", "apply_calibrator", "backtest", "calibration_curve", "checklist_items", "checklist_score",
           "evaluate", "example_points", "expected_calibration_error", "fit_calibrator", "group_attributes",
           "load_model", "night_points", "open_points", "report_points", "score_metrics", "train"]
