"""Point-in-time risk features for disputes at moments.

``build_features(ds, points)`` returns one row per ``(dispute_id, as_of)`` point,
in the order given, with one column per feature of :data:`REGISTRY`. Families, one
module each: the dispute itself (:mod:`.dispute`), the parties' histories
(:mod:`.history`), the pair (:mod:`.pair`), the people (:mod:`.people`), the
household (:mod:`.household`), the place and grid (:mod:`.place`), the network
around the parties (:mod:`.network`), organisations (:mod:`.organization`), escalation
velocity (:mod:`.velocity`), what followed a failed mediation (:mod:`.after_mediation`),
violence in the family circle and where a party's conflicts led (:mod:`.circle`), how
recently anything happened around the dispute and its age against its kind's (:mod:`.activity`),
parties who stopped living together and a party who just moved out (:mod:`.separation`), and the
text read by a trained linear model (:mod:`.text_model`, given the model).

Point-in-time correctness: every family reads the history through
:class:`~.index.HistoryIndex`, whose look-ups only see records available at or
before each point's ``as_of``. The export-time ``status`` of a record is never read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..dataset import Dataset
from . import (
    activity,
    after_mediation,
    circle,
    dispute,
    history,
    household,
    network,
    organization,
    pair,
    people,
    place,
    separation,
    text_model,
    velocity,
)
from .index import HistoryIndex, history_index
from .lexicon import Lexicon, load_lexicon
from .points import PointSet, points_from_history, points_from_records
from .registry import REGISTRY, SENSITIVE, Feature, Registry
from .text_model import TextModel

FAMILIES = (dispute, history, pair, people, household, place, network, organization, velocity, after_mediation,
            circle, activity, separation)

# Families a model may leave out (config families_off): skipped online when it does.
OPTIONAL = (velocity, after_mediation, circle, activity, separation)

dispute.register(load_lexicon())
for _family in FAMILIES[1:]:
    _family.register()
text_model.register()

FEATURE_NAMES: list[str] = REGISTRY.names
CATEGORICAL: list[str] = [f.name for f in REGISTRY if f.kind == "category"]
_DEFAULT_TEXT: set[str] = {f.name for f in dispute.text_features(load_lexicon())}


def feature_names(lexicon: Lexicon | None = None) -> list[str]:
    """The feature columns computed with ``lexicon`` (default: the shipped one, i.e.
    :data:`FEATURE_NAMES`): a removed signal's pair of text features is left out, a new
    signal's pair comes last (described in the registry, so reasons can read it)."""
    if lexicon is None:
        return FEATURE_NAMES
    own = dispute.text_features(lexicon)
    REGISTRY.describe(*own)
    names = [f.name for f in own]
    kept = [n for n in FEATURE_NAMES if n not in _DEFAULT_TEXT or n in names]
    return kept + [n for n in names if n not in kept]


def skipped_families(needed: list[str] | None) -> set[str]:
    """The optional families none of ``needed`` (a model's features; None: all wanted)
    reads: neither online nor batch scoring computes them."""
    if needed is None:
        return set()
    want = set(needed)
    return {fam.FAMILY for fam in OPTIONAL if not want & {f.name for f in REGISTRY if f.family == fam.FAMILY}}


def compute_columns(idx: HistoryIndex, P: PointSet, text: TextModel | None = None,
                    needed: list[str] | None = None) -> dict[str, np.ndarray]:
    """Feature name -> values for a PointSet: the one code path behind batch and online
    scoring (:func:`compute_features` frames it; ``score_dispute`` reads it directly).
    The text features follow the index's lexicon (:func:`feature_names`); ``text`` is a
    trained model's text model (None: ``text_model_score`` is missing). With ``needed``
    (a model's features) the optional families none of them reads are skipped (a third
    of a single dispute's cost); the others are always computed, as reasons read them."""
    skip = skipped_families(needed)
    names = [n for n in feature_names(idx.lexicon) if REGISTRY[n].family not in skip]
    cols: dict[str, np.ndarray] = {}
    for fam in FAMILIES:
        if fam.FAMILY not in skip:
            cols.update(fam.compute(idx, P))
    cols.update(text_model.compute(idx, P, text))
    missing = set(names) - set(cols)
    if missing:  # a family and its registration disagree: a bug, not bad data
        raise AssertionError(f"features not computed: {sorted(missing)}")
    return cols


#: Points whose features are computed together: the families' intermediate arrays take
#: about 11 kB a point, so a night's 209,408 open disputes at once held 2.3 GB beyond the
#: result; a slice at a time holds under 200 MB, for the same numbers (each point's row
#: reads the history and its own facts only) and no more CPU.
CHUNK = 16_384


def compute_features(idx: HistoryIndex, P: PointSet, text: TextModel | None = None, *,
                     chunk: int = CHUNK, needed: list[str] | None = None) -> pd.DataFrame:
    """Features for a PointSet as a frame: dispute_id, as_of, then one column per feature
    (computed ``chunk`` points at a time). With ``needed`` (a model's features) the
    optional families none of them reads are neither computed nor in the frame
    (:func:`skipped_families`)."""
    skip = skipped_families(needed)
    names = [n for n in feature_names(idx.lexicon) if REGISTRY[n].family not in skip]
    n = len(P)
    numeric_names = [c for c in names if c not in CATEGORICAL]
    categoricals = [c for c in names if c in CATEGORICAL]
    # Numbers as one float block (cheap for one row or a million), then the categoricals.
    numeric = np.empty((n, len(numeric_names)), dtype="float64")
    categorical = {name: np.empty(n, dtype=object) for name in categoricals}
    step = max(int(chunk), 1)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        cols = compute_columns(idx, P if (lo, hi) == (0, n) else P.rows(lo, hi), text, needed)
        for j, name in enumerate(numeric_names):
            numeric[lo:hi, j] = np.asarray(cols[name], dtype="float64")
        for name in categoricals:
            categorical[name][lo:hi] = pd.Series(cols[name], dtype=object).to_numpy(dtype=object)
        del cols
    out = pd.DataFrame(numeric, columns=numeric_names)
    for name in categoricals:
        cats = list(REGISTRY[name].categories or ())
        out[name] = pd.Categorical(pd.Series(categorical[name], dtype=object), categories=cats)
    out.insert(0, "as_of", pd.Series(P.as_of, dtype="datetime64[ns]"))
    out.insert(0, "dispute_id", pd.Series(P.dispute_id, dtype=object))
    return out[["dispute_id", "as_of"] + names]


def build_features(ds: Dataset, points: pd.DataFrame, *, lexicon: Lexicon | None = None,
                   text: TextModel | None = None, needed: list[str] | None = None) -> pd.DataFrame:
    """Features of each ``(dispute_id, as_of)`` point, one row per point, in order.

    Only records available at or before a point's ``as_of`` shape its row. The
    dataset's history index is built on first use and cached on ``ds``. ``lexicon``
    (default: the shipped one) sets the text features (:func:`feature_names`); ``text``
    (a trained model's :class:`TextModel`) scores the text (else ``text_model_score`` is NaN);
    ``needed`` (a model's features): the optional families none of them reads are skipped
    (:func:`compute_features`).
    """
    idx = history_index(ds, lexicon)
    return compute_features(idx, points_from_history(idx, points), text, needed=needed)


def feature_table() -> pd.DataFrame:
    """The feature registry as a table: name, family, kind, English and Chinese description."""
    return REGISTRY.table()


__all__ = ["CHUNK", "build_features", "compute_columns", "compute_features", "feature_names", "feature_table",
           "skipped_families",
           "FEATURE_NAMES",
           "CATEGORICAL", "SENSITIVE", "TextModel",
           "REGISTRY",
           "Feature", "Registry", "HistoryIndex", "history_index", "Lexicon", "load_lexicon", "PointSet",
           "points_from_history", "points_from_records"]
