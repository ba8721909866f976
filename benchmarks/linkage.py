#!/usr/bin/env python
"""Record linkage at scale: speed, memory and quality against the generator's truth.

    python benchmarks/linkage.py --persons 1000000 [--noise 0.25] [--cache DIR]

Generates a district whose duplicate person records carry linkage noise
(``synth.generate_tables(linkage_noise=...)``), then measures:

- the linkage keys made on load (``normalize.linkage_keys`` on the raw persons);
- ``linking.link_keys`` on the whole keys table: wall and CPU seconds, the peak RSS
  over the stage's start (a thread samples VmRSS every 10 ms), candidate pairs per
  blocking rule;
- recall of true duplicate pairs (overall and per kind of noise), false merges (extra
  true persons under one key) per 10,000 records, and the expected false matches the
  model states for its threshold;
- incremental linking of the last 1% of records against the key of the rest.

Prints one markdown section (paste it into BENCHMARKS.md). ``--cache`` keeps the
generated persons and truth as Parquet, so a re-run skips generation.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, required=True)
    ap.add_argument("--noise", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--cache", default=None, help="folder to keep the generated persons and truth in")
    args = ap.parse_args(argv)
    n = args.persons
    cache = Path(args.cache) if args.cache else None
    stem = f"persons-{n}-{args.seed}-{args.noise}"
    if cache and (cache / f"{stem}.parquet").exists():
        persons = pd.read_parquet(cache / f"{stem}.parquet")
        truth = pd.read_parquet(cache / f"{stem}-truth.parquet")
    else:
        tables, truth = generate_tables(n, seed=args.seed, linkage_noise=args.noise)
        persons = tables["persons"]
        del tables
        if cache:
            cache.mkdir(parents=True, exist_ok=True)
            persons.to_parquet(cache / f"{stem}.parquet")
            truth.to_parquet(cache / f"{stem}-truth.parquet")
    load0 = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()

    normalize.linkage_keys(persons.head(50), KEY)  # imports and character tables, once per process
    with Peak() as pk:
        lk = normalize.linkage_keys(persons, KEY)
    keys = pd.concat([persons[["person_id", "birth_year", "gender"]], lk], axis=1)
    del lk
    with Peak() as pl:
        res = linking.link_keys(keys)
    st = res.stats
    key = res.key.to_numpy()
    t = truth.set_index("person_id").reindex(res.key.index)
    true = t["true_person"].to_numpy()
    found, total = _pairs_found(true, key)
    false_merges = int((pd.Series(true).groupby(key).nunique() - 1).sum())

    # Recall per kind of noise: pairs whose duplicate record carries that kind.
    noise = t["noise"].fillna("").to_numpy() if "noise" in t else np.full(len(t), "")
    no_id = persons.set_index("person_id")["id_number"].reindex(res.key.index).isna().to_numpy()
    dup = pd.DataFrame({"t": true, "k": key, "noise": noise, "no_id": no_id})
    dup = dup[dup.groupby("t")["t"].transform("size") == 2]
    per = dup.groupby("t").agg(ok=("k", "nunique"), noise=("noise", lambda s: ",".join(x for x in s if x)),
                               no_id=("no_id", "any"))
    per["ok"] = per["ok"] == 1
    # Pairs the rules refuse by design: no id number on one side and the phone changed
    # leave name and birth year alone, which never link.
    refused = per["no_id"] & per["noise"].str.contains("phone_changed")
    linkable_recall = float(per.loc[~refused, "ok"].mean())
    kinds = per.assign(kind=per["noise"].str.split(",")).explode("kind")
    by_kind = kinds.groupby(kinds["kind"].replace("", "(none)"))["ok"].agg(["mean", "size"])

    # Incremental: the last 1% of records are new.
    cut = int(len(keys) * 0.99)
    before = linking.link_keys(keys.iloc[:cut]).key
    with Peak() as pi:
        inc = linking.link_keys(keys, existing=before)
    moved = int((inc.key.loc[before.index] != before).sum())
    load1 = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()

    rules = ", ".join(f"{k[6:]} {v:,}" for k, v in st.items() if k.startswith("pairs_"))
    print(f"### Record linkage, {len(keys):,} person records ({n:,} persons, noise {args.noise}, seed {args.seed})")
    print()
    print(f"- load at start: `{load0}`; at end: `{load1}`")
    print()
    print("| step | wall s | CPU s | memory over start MB | notes |")
    print("|---|---:|---:|---:|---|")
    print(f"| linkage keys on load (`normalize.linkage_keys`) | {pk.wall:.2f} | {pk.cpu:.2f} | "
          f"{pk.peak - pk.start:,.0f} | {len(keys):,} records, {len(normalize.KEY_COLUMNS)} keys |")
    print(f"| link the district (`link_keys`) | {pl.wall:.2f} | {pl.cpu:.2f} | {pl.peak - pl.start:,.0f} | "
          f"{st['candidate_pairs']:,} candidate pairs ({rules}); {st['accepted_pairs']:,} accepted, "
          f"{st.get('edges_cut', 0)} cut by the chaining guard in {st['components_reclustered']} components |")
    print(f"| link the last 1% against the rest (`existing=`) | {pi.wall:.2f} | {pi.cpu:.2f} | "
          f"{pi.peak - pi.start:,.0f} | {inc.stats['candidate_pairs']:,} candidate pairs "
          f"({inc.stats['pairs_existing_groups']:,} inside existing groups); {moved} of {len(before):,} earlier "
          f"records changed key |")
    print()
    print(f"Quality against the truth: recall of true duplicate pairs **{found / max(total, 1):.4f}** "
          f"({found:,} of {total:,}); false merges **{false_merges}** ({false_merges / len(keys) * 1e4:.2f} per "
          f"10,000 records); expected false matches stated by the model at threshold "
          f"{linking.DEFAULT_MODEL.threshold}: {st['expected_false_matches']:.2f} "
          f"(weight threshold {st['weight_threshold']:.1f} bits). {int(refused.sum()):,} duplicate pairs have no "
          f"id number on one side and a changed phone (only name and birth year left, which never link); "
          f"recall over the other pairs: **{linkable_recall:.4f}**.")
    print()
    print("Recall by kind of noise on the duplicate record:")
    print()
    print("| noise | pairs | recall |")
    print("|---|---:|---:|")
    for kind, row in by_kind.sort_values("size", ascending=False).iterrows():
        print(f"| {kind} | {int(row['size']):,} | {row['mean']:.3f} |")


if __name__ == "__main__":
    main()
