"""Evaluate a model on later data, and backtest over several cutoffs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..clock import to_moment
from ..dataset import Dataset
from ..features import build_features
from ..known import time_varying_facts
from ..labels import DEFAULT_HORIZON_DAYS, data_end, make_labels
from .metrics import DEFAULT_BUDGETS, Evaluation, _evaluate_arrays
from .points import report_points
from .risk_model import RiskModel
from .training import train


def evaluate(model: RiskModel, ds: Dataset, points: pd.DataFrame | None = None, *, start=None, end=None,
             budgets=DEFAULT_BUDGETS, intervals: bool = False, n_boot: int = 200, seed: int = 0) -> Evaluation:
    """Metrics of the model and both baselines on labelled points of ``ds``.

    Default points: every dispute reported in ``[start, end]`` at its report time
    (a date: ``start`` its start, ``end`` its end), ``start`` defaulting to the model's
    cutoff and ``end`` to the end of the data.
    Labels follow the model's label settings; unlabelled points are left out.
    ``intervals``: 95% bootstrap intervals of the main metrics and of the model's lead
    over each baseline (``n_boot`` resamples; a dispute scored at several moments is
    resampled whole).
    """
    if points is None:
        start = (to_moment(start, role="start", what="start") if start is not None
                 else pd.Timestamp(model.manifest["cutoff"]))
        points = report_points(ds, start, end)
        period = {"what": "disputes at report time", "start": start, "end": end if end is not None else data_end(ds)}
    else:
        points = points[["dispute_id", "as_of"]].reset_index(drop=True)
        period = {"what": "given points", "start": points["as_of"].min(), "end": points["as_of"].max()}
    # What the data dated (contract 1.1): what this evaluation could check, and what it could not.
    period["time_varying_facts"] = time_varying_facts(ds.tables())
    lab = model.label_settings
    y = make_labels(ds, points, horizon_days=lab["horizon_days"], offences=lab["offences"],
                    shared_party=lab["shared_party"]).to_numpy()
    ok = ~np.isnan(y)
    if not ok.any():
        raise ValueError(f"no labelled points to evaluate ({len(points)} points, none with its "
                         f"{lab['horizon_days']}-day horizon inside the data)")
    points, y = points[ok].reset_index(drop=True), y[ok]
    X = build_features(ds, points, lexicon=model.lexicon)
    bins = model.manifest.get("training", {}).get("config", {}).get("ece_bins", 10)
    return _evaluate_arrays(y, X, model.predict_proba(X), model.baselines, model.thresholds["orange"],
                            budgets, bins, period, intervals=intervals, n_boot=n_boot, seed=seed,
                            groups=points["dispute_id"].to_numpy(dtype=object)
                            if points["dispute_id"].duplicated().any() else None)


def backtest(ds: Dataset, cutoffs, *, horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0,
             config: dict | None = None) -> pd.DataFrame:
    """Train at each cutoff and evaluate on the disputes reported until the next one
    (the last until the end of the data): one row per cutoff and scorer."""
    cutoffs = sorted(to_moment(c, what="cutoff") for c in cutoffs)
    rows = []
    for i, c in enumerate(cutoffs):
        end = cutoffs[i + 1] if i + 1 < len(cutoffs) else None
        model = train(ds, cutoff=c, horizon_days=horizon_days, seed=seed, config=config)
        ev = evaluate(model, ds, start=c, end=end)
        m = ev.metrics.reset_index()
        m.insert(0, "cutoff", c)
        m.insert(1, "test_end", end if end is not None else data_end(ds))
        m["model_version"] = model.version
        rows.append(m)
    return pd.concat(rows, ignore_index=True)

