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


def bag_curve(members: list[list[lgb.Booster]], windows: list[np.ndarray], labels: list[np.ndarray],
              rounds: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The fold-averaged log-loss of the bag's mean raw score after 1..``rounds`` trees each
    (``members[f]``: fold f's boosters; ``windows[f]``, ``labels[f]``: its window's matrix
    and labels), and each fold's mean raw scores (rounds x rows)."""
    curves, raws = [], []
    for bs, M, y in zip(members, windows, labels):
        acc = np.zeros((rounds, len(M)))
        for b in bs:
            # One tree at a time, summed: the score after every number of trees at the cost of one pass.
            per_tree = np.stack([b.predict(M, raw_score=True, start_iteration=i, num_iteration=1)
                                 for i in range(rounds)])
            acc += np.cumsum(per_tree, axis=0)
        acc /= len(bs)
        p = np.clip(1.0 / (1.0 + np.exp(-acc)), 1e-15, 1 - 1e-15)
        yy = np.asarray(y, dtype=float)[None, :]
        curves.append(-np.mean(yy * np.log(p) + (1 - yy) * np.log(1 - p), axis=1))
        raws.append(acc)
    return np.mean(curves, axis=0), raws
