#!/usr/bin/env python
"""Record linkage at scale: speed, memory and quality against the generator's truth.

    python benchmarks/linkage.py --persons 1000000 [--noise 0.25] [--cache DIR]

Generates a district whose duplicate person records carry linkage noise
(``synth.generate_tables(linkage_noise=...)``), then measures:

- the linkage keys made on load (``normalize.linkage_keys`` on the raw persons);
- the graph evidence (``linking.graph_evidence``: counterparts, households, places, grids);
- ``linking.link_keys`` on the whole keys table with the graph levels on and off: wall
  and CPU seconds, the peak RSS over the stage's start (a thread samples VmRSS every
  10 ms), candidate pairs per blocking rule;
- recall of true duplicate pairs (overall, per kind of noise, and on the pairs left with
  only name and birth year plus graph evidence), false merges (extra true persons under
  one key) per 10,000 records, the expected false matches the model states for its
  threshold, and the trained parameters;
- incremental linking of the last 1% of records against the key of the rest.

Prints one markdown section (paste it into BENCHMARKS.md). ``--cache`` keeps the
generated tables and truth as Parquet, so a re-run skips generation.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from escalation_risk import linking, normalize  # noqa: E402
from escalation_risk.contract import ATTRIBUTES  # noqa: E402
from escalation_risk.known import UNKNOWN  # noqa: E402
from escalation_risk.memory import batch_memory  # noqa: E402
from escalation_risk.synth import generate_tables  # noqa: E402

KEY = b"benchmark-linkage-key-0123456789"


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    """Peak VmRSS while the block runs, sampled by a thread; raised to the process
    high-water mark (VmHWM) when that grew during the block (a C call holding the GIL
    can hide a short spike from the thread)."""

    def __enter__(self) -> Peak:
        self.start = _rss_mb()
        self.hwm0 = _rss_mb("VmHWM")
        self.peak = self.start
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            self._stop.wait(0.01)

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())
        hwm = _rss_mb("VmHWM")
        if hwm > self.hwm0:
            self.peak = max(self.peak, hwm)


def _pairs_found(true: np.ndarray, key: np.ndarray) -> tuple[int, int]:
    sizes = pd.Series(true).value_counts()
    total = int((sizes * (sizes - 1) // 2).sum())
    found = pd.DataFrame({"t": true, "k": key}).groupby(["t", "k"]).size()
    return int((found * (found - 1) // 2).sum()), total


def _attribute_noise(persons: pd.DataFrame, truth: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """``persons`` with ``share`` of the duplicate records (every record of a true person but its
    first) holding a hukou and an employment redrawn from the table's known values at their
    frequencies (so a redraw may keep the value), each attribute drawn apart (seeded)."""
    rng = np.random.default_rng([seed, 28])
    tp = truth.set_index("person_id")["true_person"].reindex(persons["person_id"]).to_numpy()
    dup = pd.Series(tp).duplicated().to_numpy() & ~pd.isna(tp)
    out = persons.copy()
    for col in ATTRIBUTES:
        v = out[col].astype(object).to_numpy(copy=True)
        known = v[(v != UNKNOWN) & ~pd.isna(v)]
        hit = dup & (rng.random(len(v)) < share)
        v[hit] = rng.choice(known, int(hit.sum()))
        out[col] = pd.Categorical(v, dtype=persons[col].dtype) if isinstance(persons[col].dtype, pd.CategoricalDtype) \
            else v
    return out


def _quality(res: linking.Linkage, truth: pd.DataFrame, persons: pd.DataFrame, graph_shared: pd.Series
             ) -> dict:
    """Recall of true duplicate pairs (overall, per kind of noise, per evidence left) and false merges."""
    key = res.key.to_numpy()
    t = truth.set_index("person_id").reindex(res.key.index)
    true = t["true_person"].to_numpy()
    found, total = _pairs_found(true, key)
    false_merges = int((pd.Series(true).groupby(key).nunique() - 1).sum())
    noise = t["noise"].fillna("").to_numpy() if "noise" in t else np.full(len(t), "")
    no_id = persons.set_index("person_id")["id_number"].reindex(res.key.index).isna().to_numpy()
    dup = pd.DataFrame({"t": true, "k": key, "noise": noise, "no_id": no_id})
    dup = dup[dup.groupby("t")["t"].transform("size") == 2]
    per = dup.groupby("t").agg(ok=("k", "nunique"), noise=("noise", lambda s: ",".join(x for x in s if x)),
                               no_id=("no_id", "any"))
    per["ok"] = per["ok"] == 1
    # No id number on one side and the phone changed: only name and birth year are left
    # of the identifiers (never enough alone); with graph evidence shared they may link.
    per["name_birth_only"] = per["no_id"] & per["noise"].str.contains("phone_changed")
    per["evidence"] = graph_shared["evidence"].reindex(per.index).fillna("").to_numpy(dtype=object)
    per["name_level"] = graph_shared["name"].reindex(per.index).fillna("").to_numpy(dtype=object)
    per["graph"] = per["evidence"] != ""
    kinds = per.assign(kind=per["noise"].str.split(",")).explode("kind")
    by_kind = kinds.groupby(kinds["kind"].replace("", "(none)"))["ok"].agg(["mean", "size"])
    # False merges by the noise on the records of each key holding two or more true persons
    # (a key counts once per kind of noise among its records; "(none)": no noise on any).
    every = pd.DataFrame({"t": true, "k": key, "noise": noise})
    bad_keys = every.groupby("k")["t"].nunique()
    bad = every[every["k"].isin(bad_keys.index[bad_keys > 1])]
    fm_kinds = bad.assign(kind=bad["noise"].str.split(",")).explode("kind")
    fm_kinds = fm_kinds[fm_kinds["kind"] != ""]
    fm_by_kind = fm_kinds.drop_duplicates(["k", "kind"]).groupby("kind").size().to_dict()
    noisy = set(fm_kinds["k"])
    fm_by_kind["(none)"] = len(set(bad["k"]) - noisy)
    # False merges on an id number: two true persons of one key whose records share an id
    # number and differ in name (the rule that keeps a shared id when names differ reads the weight).
    who = persons.set_index("person_id")[["id_number", "name"]].reindex(res.key.index)
    bad = bad.assign(id=who["id_number"].to_numpy()[bad.index], name=who["name"].to_numpy()[bad.index])
    same_id_keys = set()
    for (k, _), g in bad.dropna(subset=["id"]).groupby(["k", "id"]):
        rows = list(zip(g["t"], g["name"], strict=True))
        if any(a[0] != b[0] and a[1] != b[1] for i, a in enumerate(rows) for b in rows[i + 1:]):
            same_id_keys.add(k)
    nb = per[per["name_birth_only"]]
    return {"recall": found / max(total, 1), "found": found, "total": total, "false_merges": false_merges,
            "fm_same_id_names_differ": len(same_id_keys), "records": len(key), "by_kind": by_kind,
            "fm_by_kind": fm_by_kind, "nb_pairs": len(nb),
            "nb_graph_pairs": int(nb["graph"].sum()),
            "nb_graph_recall": float(nb.loc[nb["graph"], "ok"].mean()) if nb["graph"].any() else float("nan"),
            "nb_recall": float(nb["ok"].mean()) if len(nb) else float("nan"),
            "nb_by_evidence": nb[nb["graph"]].groupby("evidence")["ok"].agg(["mean", "size"]),
            "nb_by_name": nb[nb["graph"]].groupby("name_level")["ok"].agg(["mean", "size"]),
            "nb_graph_no_grid_recall": float(nb.loc[nb["graph"] & (nb["evidence"] != "grid only"), "ok"].mean())
            if (nb["graph"] & (nb["evidence"] != "grid only")).any() else float("nan"),
            "nb_graph_no_grid_pairs": int((nb["graph"] & (nb["evidence"] != "grid only")).sum()),
            "other_recall": float(per.loc[~per["name_birth_only"], "ok"].mean())}


def _graph_route(res: linking.Linkage, truth: pd.DataFrame) -> pd.DataFrame:
    """The candidate pairs only the graph can settle (no id evidence, the phone not the same,
    the name's sound or shape and the birth year the same, no contrary sex), by the strongest
    graph evidence shared and whether one record or both are in a household: how many are one
    person and how many two, and how many of each linked."""
    p = res.pairs
    ids = res.key.index.to_numpy(dtype=object)
    tp = truth.set_index("person_id")["true_person"].reindex(ids).to_numpy()
    one = tp[p["i"].to_numpy()] == tp[p["j"].to_numpy()]
    route = ~p["id_number"].isin([1, 2, 3, 4, 6]) & (p["phone"] != 1) & p["name"].isin([1, 2, 3, 4]) \
        & p["birth"].isin([1, 2, 4]) & (p["gender"] != 2)
    pl, cp = p["place"].to_numpy(), p["counterparty"].to_numpy() == 1
    ev = np.select([cp & np.isin(pl, (1, 2, 3)), cp, pl == 1, pl == 2, pl == 3, pl == 4],
                   ["counterparty+place", "counterparty", "household", "place at overlapping times", "place",
                    "grid only"], "nothing shared")
    hh = p["household_held"].to_numpy()
    held = np.select([np.isin(hh, (1, 3)), np.isin(hh, (2, 4))], ["one", "both"], "neither")
    d = pd.DataFrame({"evidence": ev, "household": held, "one": one, "linked": p["kept"].to_numpy()})[route.to_numpy()]
    return d.groupby(["evidence", "household"]).agg(
        one_person=("one", "sum"), two_people=("one", lambda x: int((~x).sum())),
        linked_one=("linked", lambda x: int((x & d.loc[x.index, "one"]).sum())),
        linked_two=("linked", lambda x: int((x & ~d.loc[x.index, "one"]).sum())))


def _kinds_m(res: linking.Linkage, truth: pd.DataFrame) -> list[list[str]]:
    """Per (id evidence, household mode) of the candidate pairs that are one person, how many
    show disjoint incident kinds, beside the m the model learnt for that mode."""
    p = res.pairs
    ids = res.key.index.to_numpy(dtype=object)
    tp = truth.set_index("person_id")["true_person"].reindex(ids).to_numpy()
    one = tp[p["i"].to_numpy()] == tp[p["j"].to_numpy()]
    lv, idl = p["incident_kinds"].to_numpy(), p["id_number"].to_numpy()
    par = res.parameters.set_index(["field", "level"])
    rows = []
    for label, sel in (("one id number", idl == 1), ("id missing on one", idl == 0)):
        for mode, (dis, sh) in (("both or neither in a household", (1, 2)), ("one only in a household", (3, 4))):
            hit = one & sel & np.isin(lv, (dis, sh))
            d = int((hit & (lv == dis)).sum())
            name = linking.LEVELS["incident_kinds"][dis]
            m = float(par.loc[("incident_kinds", name), "m"]) if ("incident_kinds", name) in par.index else float("nan")
            rows.append([label, mode, f"{int(hit.sum()):,}", f"{d / max(int(hit.sum()), 1):.3f}", f"{m:.3f}"])
    return rows


def _time_overlap(tables: dict, keys: pd.DataFrame, res: linking.Linkage, truth: pd.DataFrame,
                  windows: tuple[int, ...] = (30, 90, 180)) -> list[list[str]]:
    """Whether pairs whose closest shared whereabouts is a grid share it at overlapping times:
    a (grid, window of the report) item per incident of a record, and the next window."""
    from escalation_risk.linking.evidence import _matrix
    from escalation_risk.linking.ids import _codes, _Index, _positions

    inc, parties, places = tables["incidents"], tables["incident_parties"], tables["places"]
    person = (parties["party_type"] == "person").to_numpy()
    rec = _Index(keys["person_id"]).find(parties["party_id"][person])
    pos = _positions(parties["incident_id"][person], inc["incident_id"])
    ok = (rec >= 0) & (pos >= 0)
    rec, pos = rec[ok], pos[ok]
    place = _Index(places["place_id"]).find(inc["place_id"])[pos]
    grid = np.where(place >= 0, _codes(places["grid_id"])[np.maximum(place, 0)], -1)
    t = inc["reported_at"].to_numpy("datetime64[ns]")[pos]
    dated = (grid >= 0) & ~np.isnat(t)
    rec, grid, t = rec[dated], grid[dated], t[dated].view(np.int64)
    p = res.pairs
    i, j = p["i"].to_numpy(), p["j"].to_numpy()
    ids = res.key.index.to_numpy(dtype=object)
    tp = truth.set_index("person_id")["true_person"].reindex(ids).to_numpy()
    one = tp[i] == tp[j]
    grid_only = (p["place"].to_numpy() == 4) & (p["counterparty"].to_numpy() != 1)
    idl, name, birth = p["id_number"].to_numpy(), p["name"].to_numpy(), p["birth"].to_numpy()
    same_id = grid_only & (idl == 1) & (name != 5)
    namesakes = grid_only & (idl == 6) & np.isin(name, (1, 2, 3)) & np.isin(birth, (1, 2, 4))
    route = grid_only & ~np.isin(idl, (1, 2, 3, 4, 6)) & (p["phone"].to_numpy() != 1) \
        & np.isin(name, (1, 2, 3, 4)) & np.isin(birth, (1, 2, 4)) & (p["gender"].to_numpy() != 2)
    rows = []
    for days in windows:
        w = t // np.int64(days * 86_400 * 10**9)
        w = w - w.min(initial=0)
        nw = int(w.max(initial=0)) + 2
        code = grid * nw + w
        m = _matrix(np.r_[rec, rec], np.r_[code, code + 1], len(keys), (int(grid.max(initial=0)) + 1) * nw)

        def share(sel: np.ndarray, m=m) -> np.ndarray:
            a, b = i[sel], j[sel]
            return np.asarray(m[a].multiply(m[b]).sum(axis=1)).ravel() > 0 if len(a) else np.zeros(0, bool)
        r1, r2 = route & one, route & ~one
        rows.append([f"{days} days", f"{share(same_id).mean():.3f} of {same_id.sum():,}",
                     f"{share(namesakes).mean():.3f} of {namesakes.sum():,}",
                     f"{int(share(r1).sum())} of {int(r1.sum())}", f"{int(share(r2).sum())} of {int(r2.sum())}"])
    return rows


def _graph_shared(keys: pd.DataFrame, evidence, truth: pd.DataFrame) -> pd.DataFrame:
    """Per true person with two records: the strongest graph evidence the two share (a
    counterpart, household, place or grid; every item compared), and their name level."""
    from escalation_risk.linking.comparisons import _compare, _compare_graph
    from escalation_risk.linking.evidence import _graph_arrays
    from escalation_risk.linking.keys import _keys

    pid = keys["person_id"].to_numpy(dtype=object)
    tp = truth.set_index("person_id")["true_person"].reindex(pid).to_numpy()
    df = pd.DataFrame({"t": tp, "r": np.arange(len(pid))})
    df = df[df.groupby("t")["t"].transform("size") == 2].sort_values(["t", "r"])
    i, j = df["r"].to_numpy()[0::2], df["r"].to_numpy()[1::2]
    levels, _ = _compare_graph(_graph_arrays(evidence, pid), i, j)
    # The strongest graph evidence the two records share ("" for none).
    pl = levels["place"]
    cp = levels["counterparty"] == 1
    best = np.select([cp & np.isin(pl, (1, 2, 3)), cp, pl == 1, pl == 2, pl == 3, pl == 4],
                     ["counterparty+place", "counterparty", "household", "place at overlapping times",
                      "place", "grid only"], "")
    name = linking.LEVELS["name"]
    nl = _compare(_keys(keys), i, j, graph=False)["name"]
    return pd.DataFrame({"evidence": best, "name": np.asarray(name, dtype=object)[nl]},
                        index=df["t"].to_numpy()[0::2])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, required=True)
    ap.add_argument("--noise", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--realistic-residence", action="store_true",
                    help="generate with synth's realistic_residence: households that moved, police records in "
                         "households")
    ap.add_argument("--attribute-noise", type=float, default=0.0,
                    help="share of duplicate records whose hukou and employment are redrawn (seeded; the generator "
                         "copies them, real systems disagree: a status changed, a clerk guessed)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="the graph model's posterior threshold (default: GRAPH_MODEL's own)")
    ap.add_argument("--cache", default=None, help="folder to keep the generated tables and truth in")
    ap.add_argument("--no-incremental", action="store_true", help="skip the incremental 1%% step")
    ap.add_argument("--plain-memory", action="store_true",
                    help="time the evidence and the link without the batch's memory settings (memory.batch_memory), "
                         "which link_persons and the night run them under")
    ap.add_argument("--prepare", action="store_true", help="only generate the district into --cache, then stop")
    ap.add_argument("--reuse-keys", action="store_true",
                    help="read the linkage keys an earlier run kept in --cache (the keys step then times a read)")
    args = ap.parse_args(argv)
    graph_model = linking.GRAPH_MODEL if args.threshold is None else \
        dataclasses.replace(linking.GRAPH_MODEL, threshold=args.threshold)
    n = args.persons
    cache = Path(args.cache) if args.cache else None
    stem = f"tables-{n}-{args.seed}-{args.noise}" + ("-residence" if args.realistic_residence else "")
    names = ("persons", "incidents", "incident_parties", "places", "households", "household_members", "relations")
    if cache and (cache / stem / "truth.parquet").exists():
        tables = {t: pd.read_parquet(cache / stem / f"{t}.parquet") for t in names}
        truth = pd.read_parquet(cache / stem / "truth.parquet")
    else:
        full, truth = generate_tables(n, seed=args.seed, linkage_noise=args.noise,
                                      realistic_residence=args.realistic_residence)
        tables = {t: full[t] for t in names}
        del full
        if cache:
            (cache / stem).mkdir(parents=True, exist_ok=True)
            for t, df in tables.items():
                df.to_parquet(cache / stem / f"{t}.parquet")
            truth.to_parquet(cache / stem / "truth.parquet")
    if args.prepare:
        return
    # Coded columns as loading makes them (a Dataset's code columns are categorical).
    tables["incidents"]["kind"] = tables["incidents"]["kind"].astype("category")
    if args.attribute_noise:
        tables["persons"] = _attribute_noise(tables["persons"], truth, args.attribute_noise, args.seed)
    persons = tables["persons"]
    load0 = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()

    normalize.linkage_keys(persons.head(50), KEY)  # imports and character tables, once per process
    with Peak() as pk:
        if args.reuse_keys and cache and (cache / stem / "keys.parquet").exists():
            keys = pd.read_parquet(cache / stem / "keys.parquet")  # made by an earlier run with this KEY
        else:
            lk = normalize.linkage_keys(persons, KEY)
            keys = pd.concat([persons[["person_id", "birth_year", "gender", *ATTRIBUTES]], lk], axis=1)
            del lk
            if cache:
                keys.to_parquet(cache / stem / "keys.parquet")
    for col in ATTRIBUTES:  # as the persons table states them (--attribute-noise; keys kept without them)
        keys[col] = persons[col].to_numpy()
    # As link_persons runs them: inside the batch's memory settings (--plain-memory: without).
    settings = contextlib.nullcontext() if args.plain_memory else batch_memory(allocators=False)
    with settings:
        with Peak() as pg:
            evidence = linking.graph_evidence({**tables, "persons": keys}, as_frame=False)
        with Peak() as pl:
            res = linking.link_keys(keys, model=graph_model, graph=evidence)
    with Peak() as po:
        off = linking.link_keys(keys)  # the default model: identifiers only
    shared = _graph_shared(keys, evidence, truth)
    q_on = _quality(res, truth, persons, shared)
    q_off = _quality(off, truth, persons, shared)
    st = res.stats

    if not args.no_incremental:
        # Incremental: the last 1% of records are new.
        cut = int(len(keys) * 0.99)
        before = linking.link_keys(keys.iloc[:cut], model=graph_model, graph=evidence).key
        with Peak() as pi:
            inc = linking.link_keys(keys, existing=before, model=graph_model, graph=evidence)
        moved = int((inc.key.loc[before.index] != before).sum())
    load1 = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()

    rules = ", ".join(f"{k[6:]} {v:,}" for k, v in st.items() if k.startswith("pairs_") and k[6:] in
                      [r for r, _ in linking.blocking._block_rules(linking.keys._keys(keys.head(0)))])
    print(f"### Record linkage, {len(keys):,} person records ({n:,} persons, noise {args.noise}, seed {args.seed}"
          + (", realistic residence" if args.realistic_residence else "")
          + (f", attribute noise {args.attribute_noise}" if args.attribute_noise else "") + ")")
    print()
    print(f"- load at start: `{load0}`; at end: `{load1}`; peak RSS of the process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB; machine: {platform.node()}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print()
    print("| step | wall s | CPU s | memory over start MB | notes |")
    print("|---|---:|---:|---:|---|")
    keys_step = "read from the cache (`--reuse-keys`)" if args.reuse_keys else "`normalize.linkage_keys`"
    print(f"| linkage keys on load ({keys_step}) | {pk.wall:.2f} | {pk.cpu:.2f} | "
          f"{pk.peak - pk.start:,.0f} | {len(keys):,} records, {len(normalize.KEY_COLUMNS)} keys |")
    print(f"| graph evidence (`linking.graph_evidence`) | {pg.wall:.2f} | {pg.cpu:.2f} | {pg.peak - pg.start:,.0f} | "
          f"{sum(m.nnz for m in evidence.mats.values()):,} items "
          f"({', '.join(f'{k} {m.nnz:,}' for k, m in evidence.mats.items())}; as sparse matrices, "
          f"`as_frame=False`) |")
    print(f"| link the district, graph levels on (`link_keys(model=GRAPH_MODEL, graph=...)`) | {pl.wall:.2f} | "
          f"{pl.cpu:.2f} | {pl.peak - pl.start:,.0f} | {st['candidate_pairs']:,} candidate pairs ({rules}); "
          f"{st['accepted_pairs']:,} accepted ({st['pairs_linked_by_graph_evidence']:,} on name, birth year and "
          f"graph evidence), {st.get('edges_cut', 0)} cut by the chaining guard in {st['components_reclustered']} "
          f"components |")
    split = ", ".join(f"{k[4:]} {v:.2f}" for k, v in st.items() if k.startswith("cpu_"))
    print(f"| CPU split of the link, graph levels on (`Linkage.stats['cpu_*']`) | | "
          f"{sum(v for k, v in st.items() if k.startswith('cpu_')):.2f} | | {split} (evidence build: the row above) |")
    print(f"| **evidence build + link, graph levels on** | {pg.wall + pl.wall:.2f} | **{pg.cpu + pl.cpu:.2f}** | "
          f"{max(pg.peak - pg.start, 0) + max(pl.peak - pl.start, 0):,.0f} | the target: at most 5 s; "
          f"{'without' if args.plain_memory else 'inside'} the batch's memory settings |")
    print(f"| link the district, graph levels off (`DEFAULT_MODEL`) | {po.wall:.2f} | {po.cpu:.2f} | "
          f"{po.peak - po.start:,.0f} | {off.stats['accepted_pairs']:,} accepted |")
    if not args.no_incremental:
        print(f"| link the last 1% against the rest (`existing=`, graph on) | {pi.wall:.2f} | {pi.cpu:.2f} | "
              f"{pi.peak - pi.start:,.0f} | {inc.stats['candidate_pairs']:,} candidate pairs "
              f"({inc.stats['pairs_existing_groups']:,} inside existing groups); {moved} of {len(before):,} earlier "
              f"records changed key |")
    print()
    for label, q in (("on", q_on), ("off", q_off)):
        print(f"Graph levels **{label}**: recall of true duplicate pairs **{q['recall']:.4f}** "
              f"({q['found']:,} of {q['total']:,}); false merges **{q['false_merges']}** "
              f"({q['false_merges'] / q['records'] * 1e4:.2f} per 10,000 records; "
              f"{q['fm_same_id_names_differ']} keys join two true persons by one id number under different "
              f"names). "
              f"{q['nb_pairs']:,} duplicate pairs have only name and birth year left of the identifiers "
              f"(no id number on one side, phone changed), {q['nb_graph_pairs']:,} of them with graph evidence "
              f"shared: recall **{q['nb_graph_recall']:.3f}** on those, {q['nb_recall']:.3f} on all "
              f"{q['nb_pairs']:,}; recall over the other pairs: {q['other_recall']:.4f}. By the strongest graph "
              f"evidence shared: " + ", ".join(f"{k} {r['mean']:.3f} ({int(r['size'])} pairs)"
                                                for k, r in q["nb_by_evidence"].iterrows()) + "; by the name's "
              "level: " + ", ".join(f"{k} {r['mean']:.3f} ({int(r['size'])} pairs)"
                                      for k, r in q["nb_by_name"].iterrows())
              + f". Without the grid-only pairs: recall {q['nb_graph_no_grid_recall']:.3f} over "
              f"{q['nb_graph_no_grid_pairs']:,} pairs.")
        print()
    print(f"Expected false matches stated by the model (graph on) at threshold {graph_model.threshold}: "
          f"{st['expected_false_matches']:.2f} (weight threshold {st['weight_threshold']:.1f} bits); "
          f"EM share of matches per session: "
          + ", ".join(f"{k[20:]} {v:.3f}" for k, v in st.items() if k.startswith("em_share_of_matches_")) + ".")
    print()
    print(f"Graph levels' u among namesakes (same name sound and birth year, two valid ids: two people; "
          f"{st.get('namesake_pairs_for_graph_u', 0):,} pairs), over u among random pairs: "
          + ", ".join(f"{k.split('_u_namesakes_over_random_')[1]} {v:.2f}" for k, v in st.items()
                       if "_u_namesakes_over_random_" in k)
          + ".")
    print()
    print("Candidate pairs only the graph can settle (no id evidence, the phone not the same, name sound "
          "or shape and birth year the same; graph on), by the strongest graph evidence shared and the records "
          "in a household (one of the two, both, neither): pairs that are one person and two, and how many of "
          "each were linked:")
    print()
    print("| evidence | in a household | one person | two people | linked, one person | linked, two people |")
    print("|---|---|---:|---:|---:|---:|")
    for (ev, held), r in _graph_route(res, truth).iterrows():
        print(f"| {ev} | {held} | {int(r['one_person']):,} | {int(r['two_people']):,} | {int(r['linked_one']):,} | "
              f"{int(r['linked_two']):,} |")
    print()
    print("Time overlap (the grid at overlapping times, measured, not a level): how often two records "
          "share a grid through incidents reported within a window of each other (each incident names its "
          "window and the next). m: the pairs with one id number whose closest shared whereabouts is a "
          "grid; u: such namesakes with two valid ids; and the candidate pairs above that share a grid only:")
    print()
    print("| window | m (one id, grid only) | u (namesakes, grid only) | grid-only pairs, one person | "
          "grid-only pairs, two people |")
    print("|---|---:|---:|---:|---:|")
    for row in _time_overlap(tables, keys, res, truth):
        print("| " + " | ".join(row) + " |")
    print()
    print("incident_kinds' m (the share of one person's candidate pairs seen in disjoint kinds, from the "
          "truth) where the model learns it (one id number on both records) and where it is applied most "
          "(the id missing on one record), per household mode:")
    print()
    print("| pairs of one person | mode | pairs | disjoint | the model's m(disjoint) |")
    print("|---|---|---:|---:|---:|")
    for row in _kinds_m(res, truth):
        print("| " + " | ".join(row) + " |")
    print()
    print("Recall by kind of noise on the duplicate record:")
    print()
    print("| noise | pairs | recall, graph on | recall, graph off | false merges, graph on | false merges, graph off |")
    print("|---|---:|---:|---:|---:|---:|")
    both = q_on["by_kind"].join(q_off["by_kind"]["mean"].rename("off"))
    for kind, row in both.sort_values("size", ascending=False).iterrows():
        print(f"| {kind} | {int(row['size']):,} | {row['mean']:.3f} | {row['off']:.3f} | "
              f"{int(q_on['fm_by_kind'].get(kind, 0))} | {int(q_off['fm_by_kind'].get(kind, 0))} |")
    print()
    print("Trained parameters (graph on; `linkage_parameters`):")
    print()
    print("| field | level | m | u | weight (bits) | m from |")  # m from: em, same_id (pairs with one id), default
    print("|---|---|---:|---:|---:|---|")
    for r in res.parameters.itertuples():
        tf = " (TF)" if r.term_frequency else ""
        print(f"| {r.field} | {r.level}{tf} | {r.m:.4f} | {r.u:.2e} | {r.weight:.1f} | {r.m_from} |")


if __name__ == "__main__":
    main()
