"""Blocking: candidate pairs of records sharing a key, vectorised and sort-based."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .keys import _Keys, _term_counts
from .model import LinkageModel

_MIX = np.uint64(0x9E3779B97F4A7C15)


def _combine(*cols: np.ndarray) -> np.ndarray:
    """One int64 block key from several (0 where any part is missing)."""
    out = cols[0].astype(np.uint64)
    miss = cols[0] == 0
    with np.errstate(over="ignore"):
        for c in cols[1:]:
            out = out * _MIX + c.astype(np.uint64)
            miss |= c == 0
    res = out.view(np.int64).copy()
    res[res == 0] = 1
    res[miss] = 0
    return res


def _block_pairs(key: np.ndarray, max_block: int, need: np.ndarray | None = None,
                 holders: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """All pairs (i < j by position in the block) of records sharing a non-zero key.

    Returns (i, j, skipped, n_skipped_blocks): ``skipped`` marks records in blocks over
    ``max_block``. With ``need``, only blocks holding a needed record are expanded.
    ``holders``, when given, receives for each record with a key how many records hold it
    (the key's term frequency, read from the blocks the sort made; records without one
    are left as they are).
    """
    n = len(key)
    skipped = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(key != 0)
    order = rows[np.argsort(key[rows])]  # pairs come out the same whatever the order within a block
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(k)])
    if holders is not None:
        _term_counts(key, holders, order, sizes)
    if len(k) < 2:
        return np.array([], np.int64), np.array([], np.int64), skipped, 0
    big = sizes > max_block
    for s, z in zip(starts[big], sizes[big]):
        skipped[order[s:s + z]] = True
    ok = (sizes >= 2) & ~big
    if need is not None:
        has = np.add.reduceat(need[order].astype(np.int64), starts) > 0
        ok &= has
    starts, sizes = starts[ok], sizes[ok]
    if not len(starts):
        return np.array([], np.int64), np.array([], np.int64), skipped, int(big.sum())
    # Each member at offset t of a block of size s pairs with the s-1-t members after it.
    member_block = np.repeat(np.arange(len(starts)), sizes)
    offset = np.arange(len(member_block)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    pos = np.repeat(starts, sizes) + offset
    cnt = np.repeat(sizes, sizes) - 1 - offset
    left = np.repeat(pos, cnt)
    first_right = np.repeat(pos + 1, cnt)
    step = np.arange(len(left)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    right = first_right + step
    del member_block
    return order[left].astype(np.int64), order[right].astype(np.int64), skipped, int(big.sum())


def _block_rules(k: _Keys) -> list[tuple[str, np.ndarray]]:
    # Each rule is there for a kind of noise the others miss, with small blocks: a typo in
    # the region or the check digit keeps birth date and sequence; a transposition keeps
    # the id with neighbouring digits put in order; a typo in the date keeps the name's
    # sound and the birth year. The order matters: a pair belongs to the first rule
    # proposing it (the EM sessions of parameters.py train by rule).
    return [
        ("id_number", k.idn),
        ("id_birth_date+sequence", _combine(k.date, k.seq)),
        ("id_transposed_even", k.swap_even),
        ("id_transposed_odd", k.swap_odd),
        ("fuzzy_pinyin+birth_year", _combine(k.fuzzy, k.year.astype(np.int64))),
        # Look-alike characters (伟/伦) change the sound: the name's shape and the birth year.
        ("name_shape+birth_year", _combine(k.shape, k.year.astype(np.int64))),
        ("phone", k.phone),
    ]


def _candidates(k: _Keys, model: LinkageModel, new: np.ndarray | None,
                rules: list[tuple[str, np.ndarray]] | None = None,
                holders: dict[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Candidate pairs from every blocking rule, each pair once: (i, j, the rule that
    proposed the pair first (index into :func:`_block_rules`), figures). ``rules``: the
    records' :func:`_block_rules`, when already made. ``holders``: arrays by rule name,
    filled as :func:`_block_pairs` fills its ``holders`` (term frequencies, from the sort
    the blocking makes anyway)."""
    rules = _block_rules(k) if rules is None else rules
    out_i, out_j, out_r = [], [], []
    stats: dict[str, float] = {}
    for r, (name, key) in enumerate(rules):
        i, j, _, n_big = _block_pairs(key, model.max_block, need=new,
                                      holders=None if holders is None else holders.get(name))
        if new is not None:
            keep = new[i] | new[j]
            i, j = i[keep], j[keep]
        out_i.append(i)
        out_j.append(j)
        out_r.append(np.full(len(i), r, dtype=np.int8))
        stats[f"skipped_blocks_{name}"] = n_big
    i, j, rule = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_r)
    # Each pair once, from the first rule that proposed it (a pair an earlier rule left in a
    # skipped block was never proposed by it): the pairs packed in an int64, one hash pass.
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    first = ~pd.Series((lo << np.int64(32)) | hi).duplicated(keep="first").to_numpy()
    i, j, rule = i[first], j[first], rule[first]
    counts = np.bincount(rule, minlength=len(rules))
    for r, (name, _) in enumerate(rules):
        stats[f"pairs_{name}"] = int(counts[r])
    return i, j, rule, stats
