"""Point-in-time risk features for disputes at moments.

``build_features(ds, points)`` returns one row per ``(dispute_id, as_of)`` point,
in the order given, with one column per feature of :data:`REGISTRY`. Families, one
module each: the dispute itself (:mod:`.dispute`), the parties' histories
(:mod:`.history`), the pair (:mod:`.pair`), the people (:mod:`.people`), the
household (:mod:`.household`), the place and grid (:mod:`.place`), the network
around the parties (:mod:`.network`), organisations (:mod:`.organization`).

Point-in-time correctness: every family reads the history through
:class:`~.index.HistoryIndex`, whose look-ups only see records available at or
before each point's ``as_of``. The export-time ``status`` of a record is never read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..dataset import Dataset
from . import dispute, history, household, network, organization, pair, people, place
from .index import HistoryIndex, history_index
from .lexicon import Lexicon, load_lexicon
from .points import PointSet, points_from_history, points_from_records
from .registry import REGISTRY, Feature, Registry

FAMILIES = (dispute, history, pair, people, household, place, network, organization)

dispute.register(load_lexicon())
for _family in FAMILIES[1:]:
    _family.register()

FEATURE_NAMES: list[str] = REGISTRY.names
CATEGORICAL: list[str] = [f.name for f in REGISTRY if f.kind == "category"]
_NUMERIC: list[str] = [n for n in FEATURE_NAMES if n not in CATEGORICAL]


def compute_columns(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """Feature name -> values for a PointSet: the one code path behind batch and online
    scoring (:func:`compute_features` frames it; ``score_dispute`` reads it directly)."""
    cols: dict[str, np.ndarray] = {}
    for fam in FAMILIES:
        cols.update(fam.compute(idx, P))
    missing = set(FEATURE_NAMES) - set(cols)
    if missing:  # a family and its registration disagree: a bug, not bad data
        raise AssertionError(f"features not computed: {sorted(missing)}")
    return cols


def compute_features(idx: HistoryIndex, P: PointSet) -> pd.DataFrame:
    """Features for a PointSet as a frame: dispute_id, as_of, then one column per feature."""
    cols = compute_columns(idx, P)
    n = len(P)
    # Numbers as one float block (cheap for one row or a million), then the categoricals.
    numeric = np.column_stack([np.asarray(cols[name], dtype="float64") for name in _NUMERIC]) if n else \
        np.zeros((0, len(_NUMERIC)))
    out = pd.DataFrame(numeric, columns=_NUMERIC)
    for name in CATEGORICAL:
        cats = list(REGISTRY[name].categories or ())
        out[name] = pd.Categorical(pd.Series(cols[name], dtype=object), categories=cats)
    out.insert(0, "as_of", pd.Series(P.as_of, dtype="datetime64[ns]"))
    out.insert(0, "dispute_id", pd.Series(P.dispute_id, dtype=object))
    return out[["dispute_id", "as_of"] + FEATURE_NAMES]


def build_features(ds: Dataset, points: pd.DataFrame) -> pd.DataFrame:
    """Features of each ``(dispute_id, as_of)`` point, one row per point, in order.

    Only records available at or before a point's ``as_of`` shape its row. The
    dataset's history index is built on first use and cached on ``ds``.
    """
    idx = history_index(ds)
    return compute_features(idx, points_from_history(idx, points))


def feature_table() -> pd.DataFrame:
    """The feature registry as a table: name, family, kind, English and Chinese description."""
    return REGISTRY.table()


__all__ = ["build_features", "compute_columns", "compute_features", "feature_table", "FEATURE_NAMES", "CATEGORICAL",
           "REGISTRY",
           "Feature", "Registry", "HistoryIndex", "history_index", "Lexicon", "load_lexicon", "PointSet",
           "points_from_history", "points_from_records"]
