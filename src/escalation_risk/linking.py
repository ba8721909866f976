"""Record linkage: one canonical key per person, from probabilistic evidence.

The same person reaches the data under several ``person_id`` values (the police, the
mediation platform and the hotline each keep their own), written differently each
time: an old 15-digit id, a mistyped digit, 章 for 张, 陳 for 陈, a new phone.
:mod:`escalation_risk.normalize` brings identifiers to one form and makes hashed
linkage keys on load; this module links records on those keys, Fellegi–Sunter style:

1. **Blocking** (vectorised, sort-based): candidate pairs share the id number, or the
   birth date and sequence number written in it (a typo in the region or the check
   digit), or the id with each pair of neighbouring digits put in order (a
   transposition), or the fuzzy pinyin of the name (homophones and near-homophones
   alike) and the birth year, or the phone. Blocks larger than ``max_block`` are
   skipped (and counted).
2. **Comparison levels** per pair and field: id number (exact, check digit only,
   typo, transposition, different, conflict), name (exact, same pinyin, same fuzzy
   pinyin, different), birth (same id birth date, same year, ...), phone, gender;
   missing values are a level of their own with weight 0.
3. **Match weights** ``log2(m/u)`` per level: ``m`` (how often a true duplicate shows
   the level) from :class:`LinkageModel`, ``u`` (how often two different people do)
   estimated on the data from a seeded sample of random pairs, with term-frequency
   adjustment for exact names, phones and ids (a common name is weak evidence).
4. **Decision**: a pair is accepted when its posterior match probability, from the
   summed weight and the prior of a random pair being one person, reaches
   ``threshold`` (0.99 by default: by the model, at most 1 accepted pair in 100 is
   two people; the expected number of false matches among accepted pairs is the sum
   of ``1 - p``, reported by :func:`linkage_summary`: 0.37 among 34,000 pairs on the
   noisy 1M-record benchmark district, where none was measured). Hard rules on top:
   two valid, different id numbers (or two different other documents) are two
   people, unless the ids are one transposition apart and every other field agrees;
   the same id number is one person unless the names differ outright and the
   weights say otherwise; without id evidence a pair needs the phone, the birth
   year, a name that sounds the same and no contrary sex (name and birth year alone
   never link); a check-digit failure is evidence of a typo, not of another person.
5. **Groups**: connected components of accepted pairs, guarded against chaining: a
   component holding two firm, different id numbers (not joined by an accepted
   transposition) or more than ``max_group`` records is re-clustered greedily by
   weight under those constraints, and a record that matches two conflicting
   identities about equally well joins neither.

The canonical key of a group is its smallest ``person_id``, or, with ``existing=``
(incremental linking), the key its known members already have. Incremental linking
compares only pairs with a new record, plus the pairs inside each existing group (so a
corrected record can leave its group); it never re-links the rest of the district.

Everything is a function of the keys table (``person_id``, ``birth_year``, ``gender``
and the ``lk_*`` columns): :func:`link_keys` links any such table, e.g. a province's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .dataset import Dataset
from .normalize import ID_BAD, ID_NONE, ID_OTHER, ID_VALID

RULE_ID = "id_number"
RULE_FALLBACK = "name+birth_year+phone"

FIELDS = ("id_number", "name", "birth", "phone", "gender")
LEVELS: dict[str, tuple[str, ...]] = {
    "id_number": ("missing", "exact", "check_digit", "typo", "transposed", "different", "conflict"),
    "name": ("missing", "exact", "pinyin", "fuzzy_pinyin", "different"),
    "birth": ("missing", "date", "date_differs_same_year", "date_differs", "year", "year_off_by_one",
              "year_differs"),
    "phone": ("missing", "exact", "different"),
    "gender": ("missing", "same", "different"),
}
# Levels compared under the same data (both ids' birth dates known, or not): u is
# estimated within each mode.
_MODES: dict[str, tuple[tuple[int, ...], ...]] = {
    "id_number": ((1, 2, 3, 4, 5, 6),), "name": ((1, 2, 3, 4),), "birth": ((1, 2, 3), (4, 5, 6)),
    "phone": ((1, 2),), "gender": ((1, 2),),
}
# Levels whose u is the frequency of the agreed value (term-frequency adjustment).
_TF_LEVEL = {"id_number": 1, "name": 1, "phone": 1}

ID_EXACT, ID_CHECK, ID_TYPO, ID_TRANSPOSED, ID_DIFFERENT, ID_CONFLICT = 1, 2, 3, 4, 5, 6


def _default_m() -> dict[str, dict[str, float]]:
    # P(level | same person, both values present). Set from what each kind of noise
    # does to real records; EM could refine them, the defaults are deliberately modest.
    return {
        "id_number": {"exact": 0.92, "check_digit": 0.005, "typo": 0.04, "transposed": 0.005,
                      "different": 0.005, "conflict": 0.0},
        "name": {"exact": 0.85, "pinyin": 0.08, "fuzzy_pinyin": 0.04, "different": 0.03},
        "birth": {"date": 0.96, "date_differs_same_year": 0.03, "date_differs": 0.01,
                  "year": 0.95, "year_off_by_one": 0.03, "year_differs": 0.02},
        "phone": {"exact": 0.75, "different": 0.25},
        "gender": {"same": 0.995, "different": 0.005},
    }


def _default_u0() -> dict[str, dict[str, float]]:
    # Prior u (two different people) used where the data are too few to estimate it:
    # one pseudo-observation at this value joins the sampled pairs.
    return {
        "id_number": {"exact": 1e-6, "check_digit": 1e-7, "typo": 1e-6, "transposed": 1e-7,
                      "different": 0.01, "conflict": 0.99},
        "name": {"exact": 1e-3, "pinyin": 3e-4, "fuzzy_pinyin": 5e-4, "different": 0.998},
        "birth": {"date": 3e-5, "date_differs_same_year": 0.015, "date_differs": 0.985,
                  "year": 0.015, "year_off_by_one": 0.03, "year_differs": 0.955},
        "phone": {"exact": 1e-6, "different": 1.0},
        "gender": {"same": 0.5, "different": 0.5},
    }


@dataclass(frozen=True)
class LinkageModel:
    """Parameters of the probabilistic linkage.

    ``threshold`` is the posterior match probability a pair needs; with the prior
    (``duplicates_per_record`` over the ``population``, at least ``min_population``)
    it fixes the weight threshold, and ``1 - threshold`` bounds the expected share of
    false matches among accepted pairs (most accepted pairs are far above it: the
    expected count is reported per run). ``keep_margin`` (bits) is the benefit of the
    doubt a pair inside an existing group gets when linking incrementally: a link
    breaks when the evidence turns against it (a corrected id), not when new records
    shift the term frequencies by a hair.
    """

    threshold: float = 0.99
    duplicates_per_record: float = 0.05
    population: int | None = None
    min_population: int = 100_000
    max_block: int = 2_000
    max_group: int = 8
    ambiguity_margin: float = 10.0
    keep_margin: float = 3.0
    u_sample: int = 500_000
    seed: int = 0
    m: dict[str, dict[str, float]] = field(default_factory=_default_m)
    u0: dict[str, dict[str, float]] = field(default_factory=_default_u0)

    def prior_log2_odds(self, n_records: int) -> float:
        """log2 odds that two random records are one person."""
        pop = self.population or max(n_records, self.min_population)
        lam = min(0.5, 2 * self.duplicates_per_record / max(pop, 2))
        return float(np.log2(lam / (1 - lam)))

    def weight_threshold(self, n_records: int) -> float:
        """The summed match weight a pair needs to reach ``threshold``."""
        return float(np.log2(self.threshold / (1 - self.threshold)) - self.prior_log2_odds(n_records))


DEFAULT_MODEL = LinkageModel()


# --------------------------------------------------------------------------- keys

@dataclass
class _Keys:
    pid: np.ndarray
    idn: np.ndarray
    region: np.ndarray
    date: np.ndarray
    seq: np.ndarray
    swap_even: np.ndarray
    swap_odd: np.ndarray
    kind: np.ndarray
    year: np.ndarray
    sex: np.ndarray
    name: np.ndarray
    pinyin: np.ndarray
    fuzzy: np.ndarray
    phone: np.ndarray

    @property
    def n(self) -> int:
        return len(self.pid)


def _str_hash(s: pd.Series) -> np.ndarray:
    """int64 hashes of (already pseudonymised) strings, 0 for missing: for tables without lk_ keys."""
    obj = s.astype(object)
    miss = obj.isna().to_numpy()
    h = pd.util.hash_array(obj.where(~miss, "").to_numpy(dtype=object)).view(np.int64).copy()
    h[h == 0] = 1
    h[miss] = 0
    return h


def _keys(persons: pd.DataFrame) -> _Keys:
    n = len(persons)
    zero = np.zeros(n, dtype=np.int64)

    def num(col: str, fallback: np.ndarray, dtype: Any = np.int64) -> np.ndarray:
        if col in persons.columns:
            return persons[col].to_numpy(dtype=dtype, na_value=0)
        return fallback.astype(dtype)

    has_lk = "lk_id" in persons.columns
    idn = num("lk_id", _str_hash(persons["id_number"]) if "id_number" in persons else zero)
    name = num("lk_name", _str_hash(persons["name"]) if "name" in persons else zero)
    phone = num("lk_phone", _str_hash(persons["phone"]) if "phone" in persons else zero)
    # Without lk_ keys nothing is known of an id's form: any two different ids conflict.
    kind = num("lk_id_kind", np.where(idn != 0, ID_OTHER, ID_NONE), np.int8) if has_lk else \
        np.where(idn != 0, ID_OTHER, ID_NONE).astype(np.int8)
    id_year = num("lk_id_year", zero, np.int16)
    by = persons["birth_year"].to_numpy(dtype=float, na_value=np.nan) if "birth_year" in persons else \
        np.full(n, np.nan)
    year = np.where(np.isnan(by), id_year, np.nan_to_num(by)).astype(np.int16)
    id_sex = num("lk_id_sex", np.full(n, -1), np.int8)
    if "gender" in persons.columns:
        g = persons["gender"]
        if not isinstance(g.dtype, pd.CategoricalDtype):
            g = g.astype("category")
        code = np.array([1 if c == "male" else 0 if c == "female" else -1 for c in g.cat.categories] + [-1],
                        dtype=np.int8)[g.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
        sex = np.where(code >= 0, code, id_sex).astype(np.int8)
    else:
        sex = id_sex
    return _Keys(
        pid=persons["person_id"].to_numpy(dtype=object), idn=idn, region=num("lk_id_region", zero),
        date=num("lk_id_date", zero), seq=num("lk_id_seq", zero), swap_even=num("lk_id_swap_even", zero),
        swap_odd=num("lk_id_swap_odd", zero), kind=kind,
        year=year, sex=sex, name=name, pinyin=num("lk_pinyin", name), fuzzy=num("lk_fuzzy", name), phone=phone,
    )


# --------------------------------------------------------------------------- blocking

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


def _block_pairs(key: np.ndarray, max_block: int, need: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """All pairs (i < j by position in the block) of records sharing a non-zero key.

    Returns (i, j, skipped, n_skipped_blocks): ``skipped`` marks records in blocks over
    ``max_block``. With ``need``, only blocks holding a needed record are expanded.
    """
    n = len(key)
    skipped = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(key != 0)
    order = rows[np.argsort(key[rows])]  # pairs come out the same whatever the order within a block
    k = key[order]
    if len(k) < 2:
        return np.array([], np.int64), np.array([], np.int64), skipped, 0
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    sizes = np.diff(np.r_[starts, len(k)])
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
    # sound and the birth year.
    return [
        ("id_number", k.idn),
        ("id_birth_date+sequence", _combine(k.date, k.seq)),
        ("id_transposed_even", k.swap_even),
        ("id_transposed_odd", k.swap_odd),
        ("fuzzy_pinyin+birth_year", _combine(k.fuzzy, k.year.astype(np.int64))),
        ("phone", k.phone),
    ]


def _candidates(k: _Keys, model: LinkageModel, new: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Candidate pairs from every blocking rule, each pair once."""
    rules = _block_rules(k)
    done: list[tuple[np.ndarray, np.ndarray]] = []
    out_i, out_j = [], []
    stats: dict[str, float] = {}
    for name, key in rules:
        i, j, skipped, n_big = _block_pairs(key, model.max_block, need=new)
        keep = np.ones(len(i), dtype=bool)
        if new is not None:
            keep &= new[i] | new[j]
        for pkey, pskip in done:  # already proposed by an earlier rule
            keep &= ~((pkey[i] == pkey[j]) & (pkey[i] != 0) & ~pskip[i])
        out_i.append(i[keep])
        out_j.append(j[keep])
        stats[f"pairs_{name}"] = int(keep.sum())
        stats[f"skipped_blocks_{name}"] = n_big
        done.append((key, skipped))
    return np.concatenate(out_i), np.concatenate(out_j), stats


# --------------------------------------------------------------------------- comparisons

def _agree(a: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    x = a[i]
    return (x == a[j]) & (x != 0)


def _levels(conds: list[tuple[np.ndarray, int]], n: int) -> np.ndarray:
    """The first matching level of each pair (0 where none): np.select without its copies."""
    out = np.zeros(n, dtype=np.int8)
    for cond, lv in reversed(conds):
        out[cond] = lv
    return out


def _compare(k: _Keys, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Agreement level (int8 code into LEVELS) of every field for the pairs (i, j)."""
    m = len(i)
    ida, idb = k.idn[i], k.idn[j]
    present = (ida != 0) & (idb != 0)
    exact = present & (ida == idb)
    del ida, idb
    ka, kb = k.kind[i], k.kind[j]
    shaped = ((ka == ID_VALID) | (ka == ID_BAD)) & ((kb == ID_VALID) | (kb == ID_BAD))
    seg = (_agree(k.region, i, j).astype(np.int8) + _agree(k.date, i, j) + _agree(k.seq, i, j))
    diff = present & ~exact
    check = diff & shaped & (seg == 3)
    typo = diff & shaped & ~check & ((ka == ID_BAD) | (kb == ID_BAD)) & (seg >= 2)
    both_valid = (ka == ID_VALID) & (kb == ID_VALID)
    transposed = diff & both_valid & (_agree(k.swap_even, i, j) | _agree(k.swap_odd, i, j))
    conflict = diff & ~check & ~typo & ~transposed & (both_valid | ((ka == ID_OTHER) & (kb == ID_OTHER)))
    idl = _levels([(exact, ID_EXACT), (check, ID_CHECK), (typo, ID_TYPO), (transposed, ID_TRANSPOSED),
                   (conflict, ID_CONFLICT), (present, ID_DIFFERENT)], m)

    na, nb = k.name[i], k.name[j]
    npres = (na != 0) & (nb != 0)
    namel = _levels([(npres & (na == nb), 1), (npres & (k.pinyin[i] == k.pinyin[j]), 2),
                     (npres & (k.fuzzy[i] == k.fuzzy[j]), 3), (npres, 4)], m)
    del na, nb

    da, db = k.date[i], k.date[j]
    ya, yb = k.year[i].astype(np.int32), k.year[j].astype(np.int32)
    dates = (da != 0) & (db != 0)
    years = (ya != 0) & (yb != 0)
    dy = np.abs(ya - yb)
    birth = _levels([(dates & (da == db), 1), (dates & years & (dy == 0), 2), (dates, 3),
                     (years & (dy == 0), 4), (years & (dy == 1), 5), (years, 6)], m)

    pa, pb = k.phone[i], k.phone[j]
    ppres = (pa != 0) & (pb != 0)
    phone = _levels([(ppres & (pa == pb), 1), (ppres, 2)], m)

    sa, sb = k.sex[i], k.sex[j]
    spres = (sa >= 0) & (sb >= 0)
    gender = _levels([(spres & (sa == sb), 1), (spres, 2)], m)
    return {"id_number": idl, "name": namel, "birth": birth, "phone": phone, "gender": gender}


# --------------------------------------------------------------------------- weights

@dataclass
class _Weights:
    table: dict[str, np.ndarray]      # weight per level code (missing = 0)
    tf: dict[str, np.ndarray]         # per-record log2 u of the agreed value, for TF levels
    m_tf: dict[str, float]
    u: dict[str, np.ndarray]


def _estimate(k: _Keys, model: LinkageModel) -> _Weights:
    """u per level from a seeded sample of random pairs; term frequencies per record."""
    n = k.n
    rng = np.random.default_rng(model.seed)
    if n < 2:
        si, sj = np.array([], np.int64), np.array([], np.int64)
    elif n * (n - 1) // 2 <= model.u_sample:
        si, sj = np.triu_indices(n, 1)
    else:
        si = rng.integers(0, n, model.u_sample)
        sj = rng.integers(0, n - 1, model.u_sample)
        sj = sj + (sj >= si)  # never a record with itself
    levels = _compare(k, si, sj)
    table, us = {}, {}
    for f in FIELDS:
        names = LEVELS[f]
        counts = np.bincount(levels[f], minlength=len(names)).astype(float)
        u = np.ones(len(names))
        w = np.zeros(len(names))
        for mode in _MODES[f]:
            total = counts[list(mode)].sum()
            for lv in mode:
                u0 = model.u0[f][names[lv]]
                u[lv] = (counts[lv] + 1.0) / (total + 1.0 / u0)
                m = model.m[f][names[lv]]
                w[lv] = np.log2(m / u[lv]) if m > 0 else -np.inf
        table[f], us[f] = w, u
    pop = max(n, model.population or 0, model.min_population)
    tf, m_tf = {}, {}
    for f, arr in (("id_number", k.idn), ("name", k.name), ("phone", k.phone)):
        present = arr != 0
        codes = pd.factorize(arr[present])[0]
        c = np.ones(n)
        c[present] = np.bincount(codes)[codes]
        # Others holding the same value, over the population: the pair itself is not chance.
        tf[f] = np.log2(np.maximum(c - 1.0, 1.0) / pop)
        m_tf[f] = model.m[f]["exact"]
    return _Weights(table=table, tf=tf, m_tf=m_tf, u=us)


def _score(levels: dict[str, np.ndarray], wt: _Weights, i: np.ndarray) -> np.ndarray:
    total = np.zeros(len(i), dtype=np.float64)
    for f in FIELDS:
        w = wt.table[f][levels[f]]
        if f in _TF_LEVEL:
            hit = levels[f] == _TF_LEVEL[f]
            w = np.where(hit, np.log2(wt.m_tf[f]) - wt.tf[f][i], w)
        total += w
    return total


def _accept(levels: dict[str, np.ndarray], weight: np.ndarray, threshold: float) -> np.ndarray:
    idl, name, birth, phone, gender = (levels[f] for f in FIELDS)
    id_pos = np.isin(idl, (ID_CHECK, ID_TYPO, ID_TRANSPOSED))
    # Without id evidence a pair needs the phone, a name that sounds the same and the
    # birth year: name and birth year alone never link (a district has namesakes).
    triple = (phone == 1) & np.isin(name, (1, 2, 3)) & np.isin(birth, (1, 2, 4)) & (gender != 2)
    # A transposition between two valid ids counts only when everything else agrees: the
    # name sounds the same, the birth year is the same, no phone or gender differs.
    all_else = np.isin(name, (1, 2)) & np.isin(birth, (1, 2, 4)) & (phone != 2) & (gender != 2)
    ok = (weight >= threshold) & (idl != ID_CONFLICT) & (id_pos | triple)
    # The same id number is the same person (the identifier the law gives), unless the names
    # differ outright and the weights do not carry it: then it is a mistyped id that landed on
    # another person's number.
    same_id = (idl == ID_EXACT) & ((name != 4) | (weight >= threshold))
    return same_id | (ok & ((idl != ID_TRANSPOSED) | all_else))


# --------------------------------------------------------------------------- groups

def _firm_ids(k: _Keys) -> np.ndarray:
    """Id numbers that identify a person firmly (valid, or another document); 0 otherwise."""
    return np.where(np.isin(k.kind, (ID_VALID, ID_OTHER)), k.idn, 0)


def _groups(k: _Keys, i: np.ndarray, j: np.ndarray, w: np.ndarray, transposed: np.ndarray,
            model: LinkageModel) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Component label per record, and which accepted edges the chaining guard kept."""
    n = k.n
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    firm = _firm_ids(k)
    size = np.bincount(comp, minlength=comp.max() + 1 if n else 0)
    has = firm != 0
    n_ids = pd.Series(firm[has]).groupby(comp[has]).nunique().reindex(range(len(size)), fill_value=0).to_numpy()
    n_tr = np.bincount(comp[i[transposed]], minlength=len(size))
    bad = (n_ids > 1 + n_tr) | (size > model.max_group)
    kept = np.ones(len(i), dtype=bool)
    stats: dict[str, float] = {"components_reclustered": int(bad.sum())}
    if not bad.any():
        return comp, kept, stats
    next_label = comp.max() + 1
    edge_bad = bad[comp[i]]
    eidx = np.flatnonzero(edge_bad)
    order = np.argsort(comp[i[eidx]], kind="stable")
    eidx = eidx[order]
    ecomp = comp[i[eidx]]
    bounds = np.flatnonzero(np.r_[True, ecomp[1:] != ecomp[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = eidx[a:b]
        labels, keep_local = _recluster(i[sel], j[sel], w[sel], transposed[sel], firm, model)
        kept[sel] = keep_local
        for nodes in labels:
            comp[nodes] = next_label
            next_label += 1
    stats["edges_cut"] = int((~kept).sum())
    return comp, kept, stats


def _recluster(ei: np.ndarray, ej: np.ndarray, ew: np.ndarray, etr: np.ndarray, firm: np.ndarray,
               model: LinkageModel) -> tuple[list[list[int]], np.ndarray]:
    """Greedy clustering of one suspicious component: strongest edges first, never two firm
    ids in one group (unless joined by a transposition edge), never more than max_group."""
    nodes = np.unique(np.r_[ei, ej])
    # A record without a firm id that matches two firm identities about equally well joins neither.
    drop = np.zeros(len(ei), dtype=bool)
    for r in nodes:
        if firm[r]:
            continue
        mine = np.flatnonzero((ei == r) | (ej == r))
        other = np.where(ei[mine] == r, ej[mine], ei[mine])
        fid = firm[other]
        best: dict[int, float] = {}
        for f, wt in zip(fid, ew[mine]):
            if f:
                best[int(f)] = max(best.get(int(f), -np.inf), float(wt))
        if len(best) >= 2:
            top = sorted(best.values(), reverse=True)
            if top[0] - top[1] < model.ambiguity_margin:
                drop[mine] = True
    parent = {int(r): int(r) for r in nodes}
    ids = {int(r): ({int(firm[r])} if firm[r] else set()) for r in nodes}
    size = {int(r): 1 for r in nodes}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keep = np.zeros(len(ei), dtype=bool)
    for e in np.argsort(-ew, kind="stable"):
        if drop[e]:
            continue
        a, b = find(int(ei[e])), find(int(ej[e]))
        if a == b:
            keep[e] = True
            continue
        merged = ids[a] | ids[b]
        allowed = len(merged) <= 1 or (etr[e] and len(ids[a]) == 1 and len(ids[b]) == 1)
        if not allowed or size[a] + size[b] > model.max_group:
            continue
        parent[b] = a
        ids[a], size[a] = merged, size[a] + size[b]
        keep[e] = True
    out: dict[int, list[int]] = {}
    for r in nodes:
        out.setdefault(find(int(r)), []).append(int(r))
    return list(out.values()), keep


# --------------------------------------------------------------------------- the result

@dataclass
class Linkage:
    """One linkage run: the key per record, the scored candidate pairs and the figures."""

    key: pd.Series
    pairs: pd.DataFrame
    stats: dict[str, float]


def _prior_keys(pid: np.ndarray, existing: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code of each record's earlier key, -1 for a new record; the earlier keys by code).

    Arrow's hash look-up: pandas' isin/map on a million string ids build a Python object
    per id and took seconds."""
    pos = pc.index_in(pa.array(pid, type=pa.string()),
                      value_set=pa.array(existing.index.to_numpy(dtype=object), type=pa.string()))
    pos = pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    codes, uniq = pd.factorize(existing.to_numpy(dtype=object))
    prior = np.where(pos >= 0, codes[np.maximum(pos, 0)], -1)
    return prior, np.asarray(uniq, dtype=object)


def _existing_pairs(prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of known records inside one existing group (re-checked, so a corrected record can leave)."""
    i, j, _, _ = _block_pairs(prior.astype(np.int64) + 1, max_block=10**9)
    return i, j


def _keep_keys(pid: np.ndarray, comp: np.ndarray, key: np.ndarray, prior: np.ndarray,
               uniq: np.ndarray) -> np.ndarray:
    """Earlier keys carried over to the new groups.

    A group takes the earlier key of its known records (the smallest, when a new
    record joined two old groups). When an earlier link no longer holds (a corrected id
    number), several groups claim one old key; two people must never share a key, so
    it stays with the group holding the record it was named after (else the first
    group) and the others keep their own smallest person_id.
    """
    known = prior >= 0
    cp = pd.DataFrame({"comp": comp[known], "prior": prior[known]}).drop_duplicates()
    n_old = cp.groupby("comp")["prior"].transform("size").to_numpy()
    many = cp[n_old > 1]
    if len(many):  # the smallest earlier key by its text
        many = many.assign(text=uniq[many["prior"].to_numpy()]).sort_values(["comp", "text"]) \
            .drop_duplicates("comp")[["comp", "prior"]]
    chosen = pd.concat([cp[n_old == 1], many])
    comp_prior = np.full(int(comp.max()) + 1 if len(comp) else 0, -1, dtype=np.int64)
    comp_prior[chosen["comp"].to_numpy()] = chosen["prior"].to_numpy()
    rec_prior = comp_prior[comp]
    has = rec_prior >= 0
    named = np.zeros(len(pid), dtype=bool)
    named[has] = pid[has] == uniq[rec_prior[has]]
    claims = pd.DataFrame({"comp": comp[has], "prior": rec_prior[has], "named": named[has]}) \
        .groupby("comp", as_index=False).agg(prior=("prior", "first"), named=("named", "any"))
    owner = claims.sort_values(["prior", "named", "comp"], ascending=[True, False, True]) \
        .drop_duplicates("prior")
    owner_of = np.full(len(uniq), -1, dtype=np.int64)
    owner_of[owner["prior"].to_numpy()] = owner["comp"].to_numpy()
    keeps = has & (owner_of[np.maximum(rec_prior, 0)] == comp)
    out = key.copy()
    out[keeps] = uniq[rec_prior[keeps]]
    return out


def link_keys(keys: pd.DataFrame, existing: pd.Series | None = None,
              model: LinkageModel = DEFAULT_MODEL) -> Linkage:
    """Link the records of a keys table (``person_id``, ``birth_year``, ``gender``, ``lk_*``).

    ``existing`` is an earlier ``person_key`` Series: its records keep their keys; only
    pairs involving a new record, and pairs inside an existing group, are compared.
    """
    persons = keys.reset_index(drop=True)
    if "person_id" not in persons.columns:
        raise ValueError("link_keys: the keys table needs a 'person_id' column")
    if persons["person_id"].isna().any() or persons["person_id"].duplicated().any():
        raise ValueError("link_keys: column 'person_id' has missing or duplicate values; each record needs "
                         "its own id")
    return _link(persons, existing, model)


def _link(persons: pd.DataFrame, existing: pd.Series | None, model: LinkageModel) -> Linkage:
    k = _keys(persons)
    n = k.n
    new = None
    if existing is not None:
        prior_code, prior_keys = _prior_keys(k.pid, existing)
        new = prior_code < 0
    i, j, stats = _candidates(k, model, new)
    if existing is not None:
        ei, ej = _existing_pairs(prior_code)
        # Both records old: never among the candidates, which all involve a new record.
        i, j = np.r_[i, ei], np.r_[j, ej]
        stats["pairs_existing_groups"] = len(ei)
    wt = _estimate(k, model)
    levels = _compare(k, i, j)
    weight = _score(levels, wt, i)
    t = model.weight_threshold(n)
    judged = weight
    if existing is not None and len(ei):
        judged = weight.copy()
        judged[len(i) - len(ei):] += model.keep_margin
    acc = _accept(levels, judged, t)
    prior = model.prior_log2_odds(n)
    prob = 1.0 / (1.0 + np.exp2(-np.clip(weight + prior, -1000, 1000)))
    ai, aj = i[acc], j[acc]
    comp, kept, gstats = _groups(k, ai, aj, weight[acc], levels["id_number"][acc] == ID_TRANSPOSED, model)
    stats.update(gstats)
    ids = k.pid
    # The smallest person_id names a group; only groups of two or more need a look.
    multi = np.bincount(comp)[comp] > 1
    key_arr = ids.copy()
    if multi.any():
        sub = pd.Series(ids[multi]).groupby(comp[multi]).transform("min")
        key_arr[multi] = sub.to_numpy(dtype=object)
    if existing is not None:
        key_arr = _keep_keys(ids, comp, key_arr, prior_code, prior_keys)
    out = pd.Series(key_arr, index=pd.Index(ids, name="person_id"), name="person_key", dtype=object)
    accepted_kept = np.zeros(len(i), dtype=bool)
    accepted_kept[np.flatnonzero(acc)[kept]] = True
    pairs = pd.DataFrame({"i": i, "j": j, "weight": weight, "match_probability": prob, "accepted": acc,
                          "kept": accepted_kept, **levels})
    stats.update({
        "records": n, "candidate_pairs": len(i), "accepted_pairs": int(acc.sum()),
        "kept_pairs": int(accepted_kept.sum()), "weight_threshold": t, "prior_log2_odds": prior,
        "expected_false_matches": float((1.0 - prob[accepted_kept]).sum()),
        "persons": int((np.bincount(comp) > 0).sum()),
    })
    return Linkage(key=out, pairs=pairs, stats=stats)


def link_persons(ds: Dataset, existing: pd.Series | None = None,
                 model: LinkageModel = DEFAULT_MODEL) -> pd.Series:
    """Map every ``person_id`` to a canonical person key (a Series named ``person_key``).

    ``existing`` is an earlier result: people it knows keep their key, new records
    join the group they link to, or start their own. The result is cached on the
    dataset when ``existing`` is not given (and the default model is used).
    """
    return _linkage(ds, existing, model).key


def _linkage(ds: Dataset, existing: pd.Series | None, model: LinkageModel) -> Linkage:
    cacheable = existing is None and model is DEFAULT_MODEL
    if cacheable and "linkage" in ds.cache:
        return ds.cache["linkage"]
    res = _link(ds.persons, existing, model)  # person_id: unique and present by the contract
    if cacheable:
        ds.cache["linkage"] = res
        ds.cache["person_key"] = res.key
    return res


def linkage_summary(ds: Dataset) -> dict[str, float]:
    """Figures of the dataset's linkage: candidate and accepted pairs per blocking rule,
    the weight threshold, the expected number of false matches among kept pairs, the
    components the chaining guard re-clustered."""
    return dict(_linkage(ds, None, DEFAULT_MODEL).stats)


def _rule(levels: pd.DataFrame) -> pd.Series:
    """A short name of the agreeing evidence: ``id_number`` when the id is the same."""
    parts = []
    idl = levels["id_number"]
    parts.append(np.where(idl.isin([ID_CHECK, ID_TYPO, ID_TRANSPOSED]),
                          "id_number~" + idl.map(dict(enumerate(LEVELS["id_number"]))).astype(str), ""))
    nm = levels["name"]
    parts.append(np.select([nm == 1, nm == 2, nm == 3], ["name", "name~pinyin", "name~fuzzy_pinyin"], ""))
    b = levels["birth"]
    parts.append(np.select([b == 1, b.isin([2, 4])], ["birth_date", "birth_year"], ""))
    parts.append(np.where(levels["phone"] == 1, "phone", ""))
    joined = pd.Series(["+".join(p for p in row if p) for row in zip(*parts)], index=levels.index, dtype=object)
    return joined.where(idl != ID_EXACT, RULE_ID)


def explain_links(ds: Dataset) -> pd.DataFrame:
    """The evidence behind every link: one row per accepted pair inside one group.

    Columns: person_key, person_id, linked_to (the pair, ``linked_to`` the smaller id),
    rule (the agreeing evidence, ``id_number`` when the id is the same), weight (summed
    log2 match weight), match_probability, and the agreement level of each field
    (id_number, name, birth, phone, gender). Levels only: never a value. Records that
    stand alone are not listed.
    """
    res = _linkage(ds, None, DEFAULT_MODEL)
    p = res.pairs[res.pairs["kept"]]
    ids = res.key.index.to_numpy(dtype=object)
    a, b = ids[p["i"].to_numpy()], ids[p["j"].to_numpy()]
    swap = a < b
    out = pd.DataFrame({"person_id": np.where(swap, b, a), "linked_to": np.where(swap, a, b)})
    out.insert(0, "person_key", out["person_id"].map(res.key))
    lv = p[list(FIELDS)].reset_index(drop=True)
    out["rule"] = _rule(lv).to_numpy()
    out["weight"] = p["weight"].round(2).to_numpy()
    out["match_probability"] = p["match_probability"].to_numpy()
    for f in FIELDS:
        out[f] = pd.Categorical.from_codes(lv[f].to_numpy(), categories=list(LEVELS[f]))
    same = out["person_key"].to_numpy() == out["linked_to"].map(res.key).to_numpy()
    return out[same].sort_values(["person_key", "person_id", "linked_to"], ignore_index=True)
