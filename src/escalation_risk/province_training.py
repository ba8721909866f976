"""A province trained by districts: examples made per district, a seeded sample, one fit.

``train PROVINCE`` by :func:`~escalation_risk.province.province_dataset` joins every
district into one Dataset on one machine. :func:`train_province` never does: each
district task (here, or on a Spark executor: ``engine="spark"``) loads its district,
links it province-wide as the night does (:func:`~escalation_risk.province.with_shared_history`:
the province's linkage and the records other districts hold about its people), cuts it
at the cutoff and makes its **examples**: the disputes at report time (and re-scored
while open, with ``rescore_every_days``), each with its label and its features, as the
night would compute them. On Spark each task writes them as Parquet
(``WORK/examples/night=train-CUTOFF/district=CODE``) and returns counts only.

**The sample** (stated in the model card, ``training_data.sample``): by point. With
``max_points`` set and the province holding more examples, a point is kept when a
seeded hash of (district, dispute, moment) falls under ``max_points / examples``: the
same points whatever the engine, the order of the tasks or the number of executors. The
driver reads the examples district by district and keeps the sampled rows only, so it
holds the sample, never the province. Then the one fitting step of a single district's
training (:func:`escalation_risk.model.training.fit_examples`) fits LightGBM: on the same
sample, the local and the Spark engine give the same booster.

What is not here: the text model (free text would have to travel to the driver: it is
off by default, and refused here when switched on), the store's recorded outcomes, and
the held-out evaluation after the cutoff (it reads the whole province: run
``evaluate`` on a district).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .clock import to_moment
from .dataset import Dataset, load_dataset
from .features import CATEGORICAL, REGISTRY, build_features, feature_names
from .features.text_model import NAME as TEXT_FEATURE
from .labels import DEFAULT_HORIZON_DAYS, data_end, make_labels
from .model import RiskModel, example_points
from .model.training import _config, fit_examples
from .province import (
    _FOREIGN,
    CrossDistrict,
    cross_district,
    known_key,
    open_province,
    peak_rss_mb,
    with_shared_history,
)

#: The columns of an examples table before the features.
EXAMPLE_COLUMNS = ("district", "dispute_id", "as_of", "label")


@dataclass
class DistrictExamples:
    """One district's examples and the facts the fit needs from it (small)."""

    district: str
    examples: pd.DataFrame
    first_reported: pd.Timestamp | None  # the district's first report known at the cutoff
    end: pd.Timestamp | None  # its last record
    fingerprint: str
    fingerprint_at_cutoff: str


def district_examples(ds: Dataset, district: str, cross: CrossDistrict, *, cutoff: Any,
                      horizon_days: int = DEFAULT_HORIZON_DAYS, config: dict | None = None) -> DistrictExamples:
    """A district's training examples: ``district``, ``dispute_id``, ``as_of``, ``label``
    (NaN where the horizon is not observed) and every feature, as known at ``cutoff``,
    linked province-wide by ``cross`` (the night's :func:`with_shared_history`)."""
    cfg = _config(config)
    _check_no_text(cfg)
    cutoff = to_moment(cutoff, what="cutoff")
    full = with_shared_history(ds, district, cross)
    known = full.cut(cutoff) if data_end(full) > cutoff else full
    if known is not full and "linkage" in full.cache:
        # The province's linkage, made from the whole export as training links: kept on the cut.
        known.cache["linkage"], known.cache["person_key"] = full.cache["linkage"], full.cache["person_key"]
    points = example_points(known, every_days=cfg["rescore_every_days"], max_rescores=cfg["max_rescores"],
                            until=cutoff, phase=cfg["rescore_phase"])
    points = points[~points["dispute_id"].astype(str).str.startswith(_FOREIGN)].reset_index(drop=True)
    y = make_labels(known, points, horizon_days=horizon_days, offences=cfg["offences"],
                    shared_party=cfg["shared_party"]).to_numpy(dtype=float)
    X = build_features(known, points)
    out = pd.DataFrame({"district": district, "dispute_id": points["dispute_id"].astype(str).to_numpy(dtype=object),
                        "as_of": points["as_of"].to_numpy(dtype="datetime64[ns]"), "label": y})
    X = X.drop(columns=[c for c in EXAMPLE_COLUMNS if c in X.columns]).reset_index(drop=True)
    out = pd.concat([out, X], axis=1)
    own = ds.incidents["reported_at"]
    first = ds.cut(cutoff).incidents["reported_at"].min() if data_end(ds) > cutoff else own.min()
    return DistrictExamples(district, typed(out), None if pd.isna(first) else pd.Timestamp(first),
                            None if pd.isna(end := data_end(ds)) else pd.Timestamp(end), ds.fingerprint(),
                            known.fingerprint())


def _check_no_text(cfg: dict) -> None:
    if TEXT_FEATURE not in REGISTRY.excluded(list(cfg["families_off"] or ())):
        raise ValueError("a province trained by districts leaves the text model out (staff's free text would "
                         "have to travel to the driver): keep 'text_model' in config families_off")


def typed(examples: pd.DataFrame) -> pd.DataFrame:
    """An examples table with one set of types whatever it came through (memory or Parquet):
    categories as the registry lists them, moments in ns, text as objects."""
    out = examples.copy()
    for c in CATEGORICAL:
        if c in out.columns:
            out[c] = pd.Categorical(out[c].astype(object), categories=list(REGISTRY[c].categories or ()))
    out["as_of"] = out["as_of"].astype("datetime64[ns]")
    for c in ("district", "dispute_id"):
        out[c] = out[c].astype(object)
    out["label"] = out["label"].astype(float)
    return out


def sample_mask(examples: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """The seeded sample by point: a row is kept when the hash of (seed, district, dispute,
    moment) falls under ``fraction`` of the hash range (the same rows on any engine)."""
    if fraction >= 1.0:
        return np.ones(len(examples), dtype=bool)
    key = hashlib.sha256(f"escalation-risk-sample-{seed}".encode()).hexdigest()[:16]
    cols = examples[["district", "dispute_id"]].astype(str).assign(
        as_of=examples["as_of"].astype("datetime64[ns]").astype("int64"))
    h = pd.util.hash_pandas_object(cols, index=False, hash_key=key).to_numpy(dtype=np.uint64)
    return h < np.uint64(min(fraction, 1.0) * float(2 ** 64 - 1))


def fit_province(parts: Iterable[tuple[DistrictExamples | dict[str, Any], pd.DataFrame]], *, cutoff: Any,
                 total: int, max_points: int | None, seed: int, horizon_days: int, config: dict | None,
                 engine: str) -> RiskModel:
    """Fit on the sampled examples of every district. ``parts`` yields, district by district
    in code order, the district's facts and its examples (read one at a time)."""
    cfg = _config(config)
    _check_no_text(cfg)
    cutoff = to_moment(cutoff, what="cutoff")
    fraction = 1.0 if max_points is None or total <= max_points else max_points / total
    kept, firsts, ends, prints, at_cut, codes = [], [], [], [], [], []
    for facts, ex in parts:
        f = facts if isinstance(facts, dict) else facts.__dict__
        codes.append(f["district"])
        prints.append(f"{f['district']}:{f['fingerprint']}")
        at_cut.append(f"{f['district']}:{f['fingerprint_at_cutoff']}")
        if f["first_reported"] is not None:
            firsts.append(pd.Timestamp(f["first_reported"]))
        if f["end"] is not None:
            ends.append(pd.Timestamp(f["end"]))
        ex = typed(ex)
        kept.append(ex[sample_mask(ex, fraction, seed)])
        del ex
    if not firsts:
        raise ValueError("the province holds no incident known at the cutoff: there is nothing to learn from")
    examples = pd.concat(kept, ignore_index=True)
    del kept
    names = feature_names(None)
    start = min(firsts) + pd.Timedelta(days=cfg["burn_in_days"])
    digest = hashlib.sha256("\n".join(prints).encode()).hexdigest()
    training_data = {
        "fingerprint": digest, "fingerprint_at_cutoff": hashlib.sha256("\n".join(at_cut).encode()).hexdigest(),
        "source": f"province of {len(codes)} districts, trained by districts on engine {engine}",
        "sample": {"by": "point", "seed": seed, "fraction": fraction, "max_points": max_points,
                   "examples": int(total), "sampled": int(len(examples)), "districts": codes,
                   "rule": "a point is kept when the seeded hash of (district, dispute, moment) falls under "
                           "the fraction"},
    }
    return fit_examples(examples, lambda pts, labelled: pts["label"].to_numpy(dtype=float),
                        lambda pts: pts[[n for n in names if n in pts.columns]].copy(), cfg,
                        cutoff=cutoff, end=max(ends), start=start, horizon_days=horizon_days, seed=seed,
                        exclude=None, training_data=training_data)


def train_province(path: str | os.PathLike, *, cutoff: Any, engine: str = "local", spark: Any = None,
                   max_points: int | None = None, seed: int = 0, horizon_days: int = DEFAULT_HORIZON_DAYS,
                   config: dict | None = None, pseudonym_key: str | bytes | None = None,
                   work_dir: str | os.PathLike | None = None) -> RiskModel:
    """Train one model on a province, district by district (module docstring): examples per
    district (``engine`` ``"local"``: here, one district at a time; ``"spark"``: on the
    executors of ``spark``, written as Parquet under ``work_dir``), a seeded sample of at
    most ``max_points`` points (None: every point), one LightGBM fit on the driver."""
    province = open_province(path)
    key = known_key(pseudonym_key)
    cutoff = to_moment(cutoff, what="cutoff")
    if engine == "spark":
        from .spark import province_examples
        facts, reader = province_examples(spark, province, key, cutoff=cutoff, horizon_days=horizon_days,
                                          config=config, work_dir=work_dir)
        total = sum(int(f["examples"]) for f in facts)
        parts: Iterable[Any] = ((f, reader(f["district"])) for f in facts)
        return fit_province(parts, cutoff=cutoff, total=total, max_points=max_points, seed=seed,
                            horizon_days=horizon_days, config=config, engine="spark")
    if engine != "local":
        raise ValueError(f"engine must be 'local' or 'spark', got {engine!r}")
    cross = cross_district(province, pseudonym_key=key)
    made = [district_examples(load_dataset(folder, errors="quarantine", pseudonym_key=key), code,
                              cross.for_district(code), cutoff=cutoff, horizon_days=horizon_days, config=config)
            for code, folder in sorted(province.folders.items())]
    total = sum(len(d.examples) for d in made)
    return fit_province(((d, d.examples) for d in made), cutoff=cutoff, total=total, max_points=max_points,
                        seed=seed, horizon_days=horizon_days, config=config, engine="local")


def examples_task_facts(d: DistrictExamples) -> dict[str, Any]:
    """What a district's examples task sends to the driver: counts and facts, no table."""
    return {"district": d.district, "examples": len(d.examples), "first_reported": d.first_reported,
            "end": d.end, "fingerprint": d.fingerprint, "fingerprint_at_cutoff": d.fingerprint_at_cutoff,
            "peak_rss_mb": peak_rss_mb(), "pid": os.getpid()}

