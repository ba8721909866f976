"""Text as a model, not only a lexicon: one feature, a linear model's score of the text.

The text of a dispute at as_of is its description as first recorded and the notes
written on it by then (the history's, and those given with an online request), in
the order recorded. It is read as character n-grams (1 to 3 characters: Chinese
words are one or two characters, and a character n-gram also survives English
spelling variants), hashed into :data:`N_FEATURES` columns (no vocabulary: the
model stores numbers for hashed columns, never a string of the texts), weighted
by TF-IDF (sublinear term frequency, smoothed idf, rows scaled to unit length) and
scored by an L2-regularised logistic regression. The feature is its log-odds.

:func:`escalation_risk.model.train` fits it *out of fold* (grouped by dispute, so
no row is scored by a model that saw it or another moment of its dispute), feeds
those scores to the booster, then fits the model it keeps on every labelled
example; the kept model travels in the model directory (``text_model.json``).
Without a text model (a model trained without it, or plain ``build_features``)
the feature is missing (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature

FAMILY = "text_model"
NAME = "text_model_score"
N_FEATURES = 1 << 18
NGRAMS = (1, 3)
MIN_DF = 5  # a hashed n-gram in fewer training texts is not kept (no rare strings, no noise)


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    REGISTRY.add(Feature(NAME, FAMILY, "the wording of the description and notes scores {v} (log-odds)",
                         "纠纷描述和走访记录的文字评分 {v}（对数几率）", "number",
                         note="a linear model of character n-grams of the description and the notes "
                              "written by as_of; missing without a trained text model"))


@lru_cache(maxsize=1)
def _vectorizer():
    """Stateless (hashing), so one instance serves every call: building one costs more than
    hashing a text."""
    from sklearn.feature_extraction.text import HashingVectorizer
    return HashingVectorizer(analyzer="char_wb", ngram_range=NGRAMS, n_features=N_FEATURES,
                             alternate_sign=False, norm=None, lowercase=True, dtype=np.float64)


def _counts(texts: list[str]) -> sp.csr_matrix:
    return _vectorizer().transform(texts).tocsr()


@dataclass
class TextModel:
    """Hashed character n-gram TF-IDF and logistic-regression weights (numbers only)."""

    columns: np.ndarray   # kept hashed columns, sorted
    idf: np.ndarray       # per kept column
    coef: np.ndarray      # per kept column
    intercept: float

    def _full(self) -> tuple[np.ndarray, np.ndarray]:
        """idf and weights over every hashed column (zero where not kept), built once:
        scoring then reads the raw sparse arrays, with no column slicing (one text in
        well under a millisecond)."""
        full = self.__dict__.get("_full_arrays")
        if full is None:
            idf, coef = np.zeros(N_FEATURES), np.zeros(N_FEATURES)
            idf[self.columns], coef[self.columns] = self.idf, self.coef
            full = self.__dict__["_full_arrays"] = (idf, coef)
        return full

    def _rows(self, counts: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row of each stored entry, its TF-IDF weight scaled to a unit row, column)."""
        counts.sort_indices()  # one summation order for a row, whatever else is in the batch
        idf, _ = self._full()
        row = np.repeat(np.arange(counts.shape[0]), counts.indptr[1:] - counts.indptr[:-1])
        w = (1.0 + np.log(counts.data)) * idf[counts.indices]
        norm = np.sqrt(np.bincount(row, weights=w * w, minlength=counts.shape[0]))
        return row, w / np.where(norm > 0, norm, 1.0)[row], counts.indices

    def score(self, texts: list[str]) -> np.ndarray:
        """Log-odds of each text."""
        if not len(texts):
            return np.zeros(0)
        return self.score_counts(_counts(texts))

    def score_counts(self, counts: sp.csr_matrix) -> np.ndarray:
        """Log-odds of texts already hashed (:func:`_counts`)."""
        if not counts.shape[0]:
            return np.zeros(0)
        _, coef = self._full()
        row, w, col = self._rows(counts)
        raw = np.bincount(row, weights=w * coef[col], minlength=counts.shape[0]) + self.intercept
        # Rounded: a reason rounding -3.05 must read the same on the batch and online paths.
        return np.round(raw, 6)

    @classmethod
    def fit(cls, texts: list[str], y: np.ndarray, *, seed: int = 0, C: float = 1.0) -> TextModel:
        """Fit on ``texts`` with labels ``y`` (0/1)."""
        return cls.fit_counts(_counts(texts), y, seed=seed, C=C)

    @classmethod
    def fit_counts(cls, counts: sp.csr_matrix, y: np.ndarray, *, seed: int = 0, C: float = 1.0) -> TextModel:
        """Fit on texts already hashed (:func:`_counts`): hashing is most of the cost, so
        out-of-fold fitting hashes once and slices rows."""
        from sklearn.linear_model import LogisticRegression
        counts = counts.tocsr()
        df = np.bincount(counts.indices, minlength=N_FEATURES)
        columns = np.flatnonzero(df >= MIN_DF)
        n = counts.shape[0]
        idf = np.log((1.0 + n) / (1.0 + df[columns])) + 1.0
        tm = cls(columns=columns, idf=idf, coef=np.zeros(len(columns)), intercept=0.0)
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2 or not len(columns):
            tm.intercept = float(np.log((y.sum() + 0.5) / (n - y.sum() + 0.5)))
            return tm
        row, w, col = tm._rows(counts)
        keep = np.searchsorted(columns, col)
        kept = (keep < len(columns)) & (columns[np.minimum(keep, len(columns) - 1)] == col)
        X = sp.csr_matrix((w[kept], (row[kept], keep[kept])), shape=(n, len(columns)))
        lr = LogisticRegression(C=C, max_iter=1000, solver="liblinear", random_state=seed).fit(X, y)
        tm.coef = lr.coef_.ravel().astype(float)
        tm.intercept = float(lr.intercept_[0])
        tm.__dict__.pop("_full_arrays", None)  # the weights changed
        return tm

    def to_dict(self) -> dict:
        return {"n_features": N_FEATURES, "ngrams": list(NGRAMS), "analyzer": "char_wb", "min_df": MIN_DF,
                "columns": self.columns.tolist(), "idf": self.idf.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict) -> TextModel:
        if d.get("n_features") != N_FEATURES or list(d.get("ngrams", [])) != list(NGRAMS):
            raise ValueError(f"text model hashed with {d.get('n_features')} columns and n-grams {d.get('ngrams')}; "
                             f"this version reads {N_FEATURES} and {list(NGRAMS)}")
        return cls(columns=np.asarray(d["columns"], dtype=np.int64), idf=np.asarray(d["idf"], dtype=float),
                   coef=np.asarray(d["coef"], dtype=float), intercept=float(d["intercept"]))


def fit_out_of_fold(texts: list[str], y: np.ndarray, groups: np.ndarray, *, folds: int = 5,
                    seed: int = 0) -> np.ndarray:
    """Each text's score from a model fitted on the other folds (folds by ``groups``,
    so every moment of one dispute is scored by a model that saw none of them)."""
    return fit_with_out_of_fold(texts, y, groups, folds=folds, seed=seed)[0]


def fit_with_out_of_fold(texts: list[str], y: np.ndarray, groups: np.ndarray, *, folds: int = 5,
                         seed: int = 0) -> tuple[np.ndarray, TextModel]:
    """:func:`fit_out_of_fold`'s scores and the model fitted on every text, hashing each
    text once (hashing cost most of a training's text work when done per fold)."""
    from sklearn.model_selection import GroupKFold
    y = np.asarray(y)
    counts = _counts(texts)
    out = np.zeros(len(texts))
    g = pd.factorize(pd.Series(groups, dtype=object))[0]
    # Groups shuffled by the seed, then dealt into folds: GroupKFold alone is deterministic by size.
    perm = np.random.default_rng(seed).permutation(g.max() + 1 if len(g) else 0)
    for tr, te in GroupKFold(n_splits=folds).split(np.zeros(len(g)), y, perm[g]):
        tm = TextModel.fit_counts(counts[tr], y[tr], seed=seed)
        out[te] = tm.score_counts(counts[te])
    return out, TextModel.fit_counts(counts, y, seed=seed)


def point_texts(idx: HistoryIndex, P: PointSet) -> list[str]:
    """Each point's text at its as_of: the description, then the notes recorded by then."""
    n = len(P)
    if P.description is not None:
        desc = [d if isinstance(d, str) else "" for d in P.description]
    else:
        desc = [d if isinstance(d, str) else "" for d in idx.inc_desc[P.d]]
    nl = idx.notes
    no, npos = nl.expand(P.d, None, P.t)
    n_t = nl.t[npos]
    n_text = idx.note_text[nl.payload["row"][npos]]
    x_pt, x_t, _ = P.extra_notes
    if len(x_pt):
        keep = (x_pt >= 0) & (x_t <= P.t[np.maximum(x_pt, 0)])
        no = np.concatenate([no, x_pt[keep]])
        n_t = np.concatenate([n_t, x_t[keep]])
        n_text = np.concatenate([n_text, P.extra_note_text[keep]])
    parts: list[list[str]] = [[d] for d in desc]
    for i in np.lexsort((n_t, no)):
        txt = n_text[i]
        if isinstance(txt, str):
            parts[no[i]].append(txt)
    return ["\n".join(p) for p in parts] if n else []


def compute(idx: HistoryIndex, P: PointSet, model: TextModel | None = None) -> dict[str, np.ndarray]:
    """The text model's score of each point, from its texts known at its ``as_of``; unknown
    (NaN) without a fitted ``model`` (see the module's docstring)."""
    if model is None:
        return {NAME: np.full(len(P), np.nan)}
    return {NAME: model.score(point_texts(idx, P))}
