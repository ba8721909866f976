"""Bagged boosters: the mean of a few boosters that differ only in their random row and feature subsamples.

A booster fitted on a few hundred escalations varies with the rows and features its
subsamples happened to draw; averaging ``k`` of them (seeds ``seed .. seed + k - 1``)
keeps what they agree on and damps what each one learnt from its draw. The mean of their
raw scores is itself a sum of trees, each leaf scaled by ``1 / k``, so the bag is stored
and scored as one LightGBM booster (:func:`average_boosters`): prediction, TreeSHAP
contributions and the model file work unchanged. How many trees the bag uses is chosen
like a single booster's, by the fold-averaged window log-loss of the averaged scores
(:func:`bag_curve`).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np


def _scaled(line: str, factor: float) -> str:
    key, _, values = line.partition("=")
    return key + "=" + " ".join(repr(float(v) * factor) for v in values.split())


def average_boosters(boosters: list[lgb.Booster]) -> lgb.Booster:
    """One booster whose raw score is the mean of ``boosters``' raw scores (same features and
    objective, one tree per iteration): their trees one after another, each leaf value
    divided by the number of boosters. One booster is returned as it is."""
    if len(boosters) == 1:
        return boosters[0]
    factor = 1.0 / len(boosters)
    head, trees, tail = "", [], ""
    for i, b in enumerate(boosters):
        text = b.model_to_string()
        top, sep, rest = text.partition("\nTree=0\n")
        body, sep2, end = rest.partition("\nend of trees")
        if not sep or not sep2:
            raise ValueError("average_boosters: not a LightGBM text model with trees")
        if i == 0:
            # tree_sizes lists byte lengths for parallel loading: absent, LightGBM reads the trees in order.
            head = "\n".join(ln for ln in top.split("\n") if not ln.startswith("tree_sizes="))
            # The parameters and categories after the trees are shared; the feature importances
            # written there are the first booster's alone, so they are left out.
            tail = "\nend of trees\n\n" + (end[end.index("\nparameters:") + 1:] if "\nparameters:" in end else "")
        for block in ("0\n" + body).split("\nTree="):
            lines = block.strip("\n").split("\n")  # lines[0]: the tree's number in its booster
            trees.append([_scaled(ln, factor) if ln.startswith(("leaf_value=", "internal_value=")) else ln
                          for ln in lines[1:]])
    text = head + "\n" + "".join(f"Tree={t}\n" + "\n".join(lines) + "\n\n" for t, lines in enumerate(trees)) + tail
    return lgb.Booster(model_str=text)


def _tree_outputs(b: lgb.Booster, X, rounds: int) -> np.ndarray:
    """Each of ``b``'s first ``rounds`` trees' output on every row of ``X`` (rounds x rows): the
    leaf each row falls in (one pass) and that leaf's value; their sum is the raw score."""
    leaves = np.asarray(b.predict(X, pred_leaf=True, num_iteration=rounds), dtype=np.int64).reshape(len(X), -1)
    out = np.empty((rounds, len(X)))
    for t in range(rounds):
        values = np.array([b.get_leaf_output(t, j) for j in range(int(leaves[:, t].max()) + 1)])
        out[t] = values[leaves[:, t]]
    return out


def bag_curve(members: list[list[lgb.Booster]], windows: list[np.ndarray], labels: list[np.ndarray],
              rounds: int) -> np.ndarray:
    """The fold-averaged log-loss of the bag's mean raw score after 1..``rounds`` trees each
    (``members[f]``: fold f's boosters; ``windows[f]``, ``labels[f]``: its window's matrix
    and labels)."""
    curves = []
    for bs, M, y in zip(members, windows, labels):
        acc = np.zeros((rounds, len(M)))
        for b in bs:
            acc += np.cumsum(_tree_outputs(b, M, rounds), axis=0)
        acc /= len(bs)
        p = np.clip(1.0 / (1.0 + np.exp(-acc)), 1e-15, 1 - 1e-15)
        yy = np.asarray(y, dtype=float)[None, :]
        curves.append(-np.mean(yy * np.log(p) + (1 - yy) * np.log(1 - p), axis=1))
    return np.mean(curves, axis=0)


def search_bag(params: dict, train_sets: list[lgb.Dataset], windows: list[tuple[lgb.Dataset, np.ndarray, np.ndarray]],
               *, k: int, seed: int, rounds: int, early_stopping: int) -> tuple[int, float, list[np.ndarray]]:
    """A bag of ``k`` boosters of ``params`` per rolling-origin fold (``train_sets[f]``, and
    ``windows[f]``: its window as a Dataset, a matrix and labels): the number of trees where the
    fold-averaged window log-loss of their mean is lowest, that log-loss, and each window's mean
    raw scores at that number."""
    members = []
    for dtr, (dva, _, _) in zip(train_sets, windows):
        members.append([lgb.train({**params, "seed": seed + j}, dtr, num_boost_round=rounds, valid_sets=[dva],
                                  valid_names=["window"], callbacks=[lgb.early_stopping(early_stopping, verbose=False)])
                        for j in range(k)])
    common = min(b.num_trees() for bs in members for b in bs)
    curve = bag_curve(members, [M for _, M, _ in windows], [y for _, _, y in windows], common)
    n = int(np.argmin(curve)) + 1
    raws = [np.mean([b.predict(M, raw_score=True, num_iteration=n) for b in bs], axis=0)
            for bs, (_, M, _) in zip(members, windows)]
    return n, float(curve[n - 1]), raws


def fit_bag(params: dict, data: lgb.Dataset, *, k: int, seed: int, n_trees: int) -> lgb.Booster:
    """``k`` boosters of ``n_trees`` on ``data`` (seeds ``seed .. seed + k - 1``), as one averaged booster."""
    return average_boosters([lgb.train({**params, "seed": seed + j}, data, num_boost_round=n_trees)
                             for j in range(k)])
