"""Vectorised random draws every step of the generator shares."""

from __future__ import annotations

import numpy as np


def _sig(x: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def _choice_p(rng: np.random.Generator, probs: np.ndarray | list[float], size: int | None = None) -> np.ndarray:
    """Draw indices from a 1-D probability vector (normalised here)."""
    p = np.asarray(probs, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _rows_choice(rng: np.random.Generator, prob_rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    c = np.cumsum(prob_rows, axis=1)
    c /= c[:, -1:]
    u = rng.random(len(prob_rows))[:, None]
    return np.minimum((u > c).sum(axis=1), prob_rows.shape[1] - 1)


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    """``n`` uniform draws from ``pool``."""
    return pool[rng.integers(0, len(pool), n)]


class _Groups:
    """Members of integer groups, for 'pick a random member of group g' in bulk."""

    def __init__(self, group: np.ndarray, members: np.ndarray, n_groups: int):
        order = np.argsort(group, kind="stable")
        self.members = members[order]
        counts = np.bincount(group, minlength=n_groups)
        self.count = counts
        self.start = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def pick(self, rng: np.random.Generator, g: np.ndarray) -> np.ndarray:
        c = self.count[g]
        off = (rng.random(len(g)) * np.maximum(c, 1)).astype(np.int64)
        out = self.members[np.minimum(self.start[g] + off, len(self.members) - 1)] if len(self.members) else np.full(len(g), -1)
        return np.where(c > 0, out, -1)


# A None branch for np.where: the result is an object array with None (numpy's stubs accept no bare None).
_NONE = np.array(None, dtype=object)
