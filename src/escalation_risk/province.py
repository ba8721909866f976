"""A province: many districts, one pipeline, with people followed across districts.

A province export (data contract 1.1, "A province") is a folder of district dataset
folders named by district code. Ids are unique inside a district only, so everything
here and every output carries a ``district`` column beside the district's own ids.

The night of a province runs in three steps of per-district tasks, so that an engine
(this process, or Spark: :mod:`escalation_risk.spark`) can run each district apart:

1. **link keys** (:func:`district_link_keys`): each district's persons, pseudonymised
   on load, give their linkage identifiers and their local person key;
2. **the cross-district part**, computed once: :func:`province_links` joins the local
   person groups of different districts that share an id number (or, without one, the
   same name + birth year + phone, unambiguous in the province): the people seen in
   several districts; then each district hands over those people's records
   (:func:`district_shared_history`): their incidents, their party rows, the
   mediations of those incidents and their flags. Both are small beside a district;
3. **scores** (:func:`score_district`): each district is scored from its own folder
   plus the cross-district part, so a party's history features see their records in
   every district. Inside the task those foreign records take internal ids of the
   form ``~DISTRICT/ID`` (never written anywhere: scores, the store and files carry
   the district's own ids and a ``district`` column).

The trend against earlier nights is applied on the driver from the store, and each
district's night is recorded in its own transaction (:func:`run_province_night`), so
re-running a district's night changes nothing and districts may be recorded at once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import outputs
from .alerts import AlertStore, NightSummary
from .contract import TABLES
from .dataset import Dataset, _read_table, empty_table, load_dataset, resolve_pseudonym_key
from .linking import DEFAULT_MODEL, Linkage, _linkage, link_persons
from .model import RiskModel, load_model, open_points
from .response import compute_trend

log = logging.getLogger(__name__)

#: Identifiers that link records of one person (pseudonymised on load).
LINK_COLUMNS = ("id_number", "name", "birth_year", "phone")
#: Tables of the shared histories, in the order a district task appends them.
SHARED_TABLES = ("persons", "incidents", "incident_parties", "mediations", "person_flags")
_FOREIGN = "~"  # internal ids of foreign records start with this (sorts after every real id)
_DATA_FILES = ("persons.parquet", "persons.csv")


class ProvinceError(ValueError):
    """A province folder that cannot be read as one (no districts, a bad district name)."""


@dataclass(frozen=True)
class Province:
    """A province export: district code -> dataset folder, in code order."""

    path: Path
    folders: dict[str, Path]

    @property
    def districts(self) -> list[str]:
        """The district codes, sorted."""
        return list(self.folders)


def open_province(path: str | os.PathLike) -> Province:
    """The districts of a province folder: every sub-folder holding a persons table."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"province folder not found: {root}")
    folders = {p.name: p for p in sorted(root.iterdir())
               if p.is_dir() and any((p / f).exists() for f in _DATA_FILES)}
    if not folders:
        raise ProvinceError(f"{root}: no district folders (sub-folders with a persons table) found")
    bad = [d for d in folders if len(d) > 64 or d.startswith(_FOREIGN) or "/" in d]
    if bad:
        raise ProvinceError(f"{root}: district folder name(s) {bad} are not district codes "
                            f"(at most 64 characters, not starting with {_FOREIGN!r})")
    return Province(root, folders)


def is_province(path: str | os.PathLike) -> bool:
    """True when ``path`` holds district folders rather than a district's tables."""
    root = Path(path)
    return root.is_dir() and not any((root / f).exists() for f in _DATA_FILES) and any(
        p.is_dir() and any((p / f).exists() for f in _DATA_FILES) for p in root.iterdir())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux: ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- step 1: link keys

def district_link_keys(folder: str | os.PathLike, district: str, pseudonym_key: str | bytes | None = None
                       ) -> pd.DataFrame:
    """The linkage identifiers of a district's persons, pseudonymised, with their local key.

    Reads the persons table only. Columns: district, person_id, local_key and
    :data:`LINK_COLUMNS`.
    """
    raw = _read_table(Path(folder), "persons")
    if raw is None:
        raise ProvinceError(f"district {district}: no persons table in {folder}")
    empties = {t: empty_table(t) for t in ("places", "incidents", "incident_parties")}
    ds = Dataset.from_frames(errors="quarantine", pseudonym_key=pseudonym_key, persons=raw, **empties)
    return _keys_of(ds, district)


def _keys_of(ds: Dataset, district: str) -> pd.DataFrame:
    p = ds.persons
    key = link_persons(ds)
    out = pd.DataFrame({"district": district, "person_id": p["person_id"].astype(object).to_numpy(),
                        "local_key": key.reindex(p["person_id"]).astype(object).to_numpy()})
    for c in LINK_COLUMNS:
        out[c] = p[c].astype("float64" if c == "birth_year" else object).to_numpy()
    return out


# --------------------------------------------------------------------------- step 2: cross-district

def shared_identifier_rows(keys: pd.DataFrame) -> pd.DataFrame:
    """The rows whose id number, or full name + birth year + phone, occurs in two districts or more.

    Only these can link districts; an engine may filter with this rule where the keys
    live (it gives the same rows again when applied to its own result).
    """
    if keys.empty:
        return keys
    dist = keys["district"]
    has_id = keys["id_number"].notna()
    n_id = dist[has_id].groupby(keys.loc[has_id, "id_number"]).nunique()
    shared_id = has_id & keys["id_number"].map(n_id).fillna(0).ge(2)
    triple = keys[["name", "birth_year", "phone"]]
    full = triple.notna().all(axis=1)
    tkey = _triple_key(keys[full])
    n_t = dist[full].groupby(tkey).nunique()
    shared_t = pd.Series(False, index=keys.index)
    shared_t[full] = tkey.map(n_t).fillna(0).ge(2).to_numpy()
    return keys[shared_id | shared_t]


def _triple_key(rows: pd.DataFrame) -> pd.Series:
    return rows["name"].astype(str) + "|" + rows["birth_year"].astype("Int64").astype(str) + "|" + \
        rows["phone"].astype(str)


def province_links(keys: pd.DataFrame) -> pd.DataFrame:
    """The local person groups of different districts that are one person.

    ``keys`` are link-key rows of the province (:func:`district_link_keys`), all of them
    or only :func:`shared_identifier_rows`. Rules, as inside a district: equal id
    numbers link; where a record has no id number, name + birth year + phone link it
    unless that triple belongs to different id numbers somewhere in the province.
    Returns one row per local group in a person seen in two districts or more:
    district, local_key, and the person's province key as (key_district, key_person),
    the smallest (district, local_key) of the person: two columns, not one string.
    """
    rows = shared_identifier_rows(keys).reset_index(drop=True)
    cols = ["district", "local_key", "key_district", "key_person"]
    if rows.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    node = pd.MultiIndex.from_arrays([rows["district"], rows["local_key"]])
    node_id, nodes = pd.factorize(node)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    has_id = rows["id_number"].notna().to_numpy()
    if has_id.any():
        anchor = pd.Series(node_id[has_id]).groupby(rows.loc[has_id, "id_number"].to_numpy()).transform("min")
        src.append(node_id[has_id]); dst.append(anchor.to_numpy())
    full = rows[["name", "birth_year", "phone"]].notna().all(axis=1).to_numpy()
    if full.any():
        sub = rows[full]
        tkey = _triple_key(sub).to_numpy()
        n_ids = sub.groupby(tkey)["id_number"].nunique()
        ok = pd.Series(tkey).map(n_ids).to_numpy() <= 1
        # a record with an id number joins by its id; the triple joins the ones without
        ids_of = np.where(sub["id_number"].notna().to_numpy(), node_id[full], -1)
        g = pd.DataFrame({"t": tkey, "node": node_id[full], "with_id": ids_of})[ok]
        anchor_any = g.groupby("t")["node"].transform("min").to_numpy()
        with_id = g["with_id"].where(g["with_id"] >= 0)
        anchor_id = with_id.groupby(g["t"]).transform("min").to_numpy()
        anchor = np.where(np.isnan(anchor_id), anchor_any, anchor_id).astype(np.int64)
        src.append(g["node"].to_numpy()); dst.append(anchor)
    a, b = np.concatenate(src), np.concatenate(dst)
    n = len(nodes)
    _, comp = connected_components(coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n)), directed=False)
    out = pd.DataFrame({"district": nodes.get_level_values(0).astype(object),
                        "local_key": nodes.get_level_values(1).astype(object), "comp": comp})
    n_dist = out.groupby("comp")["district"].transform("nunique")
    out = out[n_dist >= 2].sort_values(["comp", "district", "local_key"])
    first = out.groupby("comp")[["district", "local_key"]].transform("first")
    out["key_district"], out["key_person"] = first["district"], first["local_key"]
    return out[cols].sort_values(["district", "local_key"], ignore_index=True)


def district_shared_history(ds: Dataset, district: str, links: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The records of this district's people who are also seen elsewhere (step 2).

    Their person rows, the incidents they are a party to (place and related incident
    dropped: those ids mean nothing in another district), their person-party rows,
    the mediations of those incidents and their flags; each table with ``district``
    and persons with their ``local_key``.
    """
    mine = links.loc[links["district"] == district, "local_key"]
    key = link_persons(ds)
    pids = key.index[key.isin(set(mine)).to_numpy()]
    persons = ds.persons[ds.persons["person_id"].isin(pids)].copy()
    persons["local_key"] = persons["person_id"].map(key).astype(object)
    parties = ds.incident_parties
    parties = parties[(parties["party_type"] == "person") & parties["party_id"].isin(pids)].copy()
    incidents = ds.incidents[ds.incidents["incident_id"].isin(set(parties["incident_id"]))].copy()
    incidents["place_id"] = incidents["place_id"].where(pd.Series(False, index=incidents.index))
    incidents["related_incident_id"] = incidents["related_incident_id"].where(
        pd.Series(False, index=incidents.index))
    mediations = ds.mediations[ds.mediations["incident_id"].isin(set(incidents["incident_id"]))].copy()
    flags = ds.person_flags[ds.person_flags["person_id"].isin(pids)].copy()
    out = {"persons": persons, "incidents": incidents, "incident_parties": parties, "mediations": mediations,
           "person_flags": flags}
    for df in out.values():
        df.insert(0, "district", district)
    return {t: df.reset_index(drop=True) for t, df in out.items()}


@dataclass
class CrossDistrict:
    """The cross-district part of a province, computed once and given to every district task."""

    links: pd.DataFrame
    history: dict[str, pd.DataFrame]

    @classmethod
    def empty(cls) -> CrossDistrict:
        """No person seen in two districts."""
        return cls(province_links(pd.DataFrame(columns=["district", "person_id", "local_key", *LINK_COLUMNS])),
                   {t: pd.DataFrame(columns=["district"]) for t in SHARED_TABLES})

    @classmethod
    def combine(cls, links: pd.DataFrame, parts: Sequence[dict[str, pd.DataFrame]]) -> CrossDistrict:
        """Join the districts' shared histories (from any engine) in district order."""
        parts = sorted(parts, key=lambda p: str(p["persons"]["district"].iloc[0]) if len(p["persons"]) else "")
        history = {}
        for t in SHARED_TABLES:
            frames = [p[t] for p in parts if len(p[t])]
            history[t] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["district"])
        return cls(links, history)

    @property
    def n_people(self) -> int:
        """Persons (province keys) seen in two districts or more."""
        return int(self.links[["key_district", "key_person"]].drop_duplicates().shape[0])

    def districts_sharing(self) -> set[str]:
        """The districts with at least one person seen elsewhere."""
        return set(self.links["district"])


# --------------------------------------------------------------------------- step 3: one district

def with_shared_history(ds: Dataset, district: str, cross: CrossDistrict) -> Dataset:
    """``ds`` plus the records other districts hold about its people, linked province-wide.

    The result's person key (``link_persons``) is the district's own, except that
    groups the province joins share one key, and foreign records map to the key of
    the same person here.
    """
    links = cross.links
    key = link_persons(ds)
    if links.empty or district not in cross.districts_sharing():
        return ds
    comp = links.set_index(["district", "local_key"])[["key_district", "key_person"]]
    here = links[links["district"] == district]
    # the key of each province person in this district: its smallest local key here
    canon = here.groupby(["key_district", "key_person"])["local_key"].min()

    def canonical(districts: pd.Series, local_keys: pd.Series, default: pd.Series) -> pd.Series:
        idx = pd.MultiIndex.from_arrays([districts.to_numpy(dtype=object), local_keys.to_numpy(dtype=object)])
        person = comp.reindex(idx)
        pk = pd.MultiIndex.from_frame(person.fillna(""))
        found = canon.reindex(pk).to_numpy(dtype=object)
        return pd.Series(np.where(pd.isna(found), default.to_numpy(dtype=object), found), index=default.index)

    local = canonical(pd.Series(district, index=key.index), key, key)
    h = {t: cross.history[t] for t in SHARED_TABLES}
    foreign = {t: df[df["district"] != district] for t, df in h.items()}
    fp = foreign["persons"]
    if fp.empty:
        return ds
    fid = _qualify(fp["district"], fp["person_id"])
    fkey = canonical(fp["district"], fp["local_key"], pd.Series([None] * len(fp), index=fp.index))
    keep = fkey.notna().to_numpy()  # a person with no group here has no dispute here to inform
    person_key = pd.concat([local, pd.Series(fkey.to_numpy()[keep], index=fid.to_numpy()[keep])])
    person_key.index.name = "person_id"
    person_key.name = "person_key"

    def with_ids(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
        df = df.copy()
        for c in cols:
            df[c] = _qualify(df["district"], df[c]).to_numpy()
        return df.drop(columns=[c for c in ("district", "local_key") if c in df.columns])

    fpers = with_ids(fp[keep], ["person_id"])
    fparties = with_ids(foreign["incident_parties"], ["incident_id", "party_id"])
    fparties = fparties[fparties["party_id"].isin(set(person_key.index))]
    fincidents = with_ids(foreign["incidents"], ["incident_id"])
    fincidents = fincidents[fincidents["incident_id"].isin(set(fparties["incident_id"]))]
    fmed = with_ids(foreign["mediations"], ["mediation_id", "incident_id"])
    fmed = fmed[fmed["incident_id"].isin(set(fincidents["incident_id"]))]
    fflags = with_ids(foreign["person_flags"], ["person_id"])
    fflags = fflags[fflags["person_id"].isin(set(person_key.index))]
    added = {"persons": fpers, "incidents": fincidents, "incident_parties": fparties, "mediations": fmed,
             "person_flags": fflags}
    tables = {t: _append(getattr(ds, t), added[t]) for t in SHARED_TABLES}
    out = dataclasses.replace(ds, **tables, cache={})
    # The province's linkage, made once, is the linkage of this task: nothing is linked again.
    local_run = _linkage_of(ds)
    out.cache["linkage"] = Linkage(key=person_key.astype(object), pairs=local_run.pairs,
                                   stats={**local_run.stats, "foreign_records": float(keep.sum())})
    out.cache["person_key"] = out.cache["linkage"].key
    return out


def _linkage_of(ds: Dataset) -> Linkage:
    return _linkage(ds, None, DEFAULT_MODEL)


def _qualify(district: pd.Series, ids: pd.Series) -> pd.Series:
    """Internal ids of foreign records inside one district task (never written out)."""
    return _FOREIGN + district.astype(str) + "/" + ids.astype(str)


def _append(mine: pd.DataFrame, more: pd.DataFrame) -> pd.DataFrame:
    if more.empty:
        return mine
    more = more[list(mine.columns)]
    out = pd.concat([mine, more], ignore_index=True)
    for c in mine.columns:  # keep the contract's dtypes (categoricals, strings) as they were
        if out[c].dtype != mine[c].dtype:
            out[c] = out[c].astype(mine[c].dtype)
    return out


@dataclass
class DistrictResult:
    """What one district task returns: its scores (trend not yet applied) and its load report."""

    district: str
    scores: pd.DataFrame
    quarantine: pd.DataFrame
    rejected: dict[str, pd.DataFrame]
    quarantined_rows: int
    seconds: float
    peak_rss_mb: float
    pid: int = field(default_factory=os.getpid)


def score_district(folder: str | os.PathLike, district: str, model: RiskModel, as_of: Any, cross: CrossDistrict,
                   *, pseudonym_key: str | bytes | None = None, thresholds: dict[str, float] | None = None
                   ) -> DistrictResult:
    """Score every dispute open at ``as_of`` in one district, seeing its people's records province-wide.

    The scores have ``district`` first and trend ``new``: the trend needs the store's
    history and is applied by the caller (:func:`apply_trend`).
    """
    t0 = time.perf_counter()
    night = pd.Timestamp(as_of)
    ds = load_dataset(folder, errors="quarantine", pseudonym_key=pseudonym_key)
    points = open_points(ds, night)
    full = with_shared_history(ds, district, cross)
    scores = model.score(full, points, thresholds=thresholds)
    scores.insert(0, "district", district)
    quarantine = ds.quarantine.copy()
    quarantine.insert(0, "district", district)
    return DistrictResult(district, scores, quarantine, dict(ds.rejected),
                          sum(len(r) for r in ds.rejected.values()), time.perf_counter() - t0, peak_rss_mb())


def apply_trend(scores: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Set trend and delta of one district's scores against its previous scores in the store."""
    out = scores.copy()
    trend, delta = compute_trend(out, previous)
    out["trend"], out["delta"] = trend, delta
    return out


# --------------------------------------------------------------------------- engines

#: map(function, items) -> results, in the order of items: the one thing an engine does.
Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


def local_map(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """The local engine: one district after another, in this process."""
    return [fn(i) for i in items]


def cross_district(province: Province, mapper: Mapper = local_map, *,
                   pseudonym_key: str | bytes | None = None,
                   link_rows: Callable[[list[tuple[str, str]], bytes], pd.DataFrame] | None = None) -> CrossDistrict:
    """Steps 1 and 2 over a whole province with ``mapper`` running the district tasks."""
    key = resolve_pseudonym_key(pseudonym_key)
    items = list(province.folders.items())
    if link_rows is not None:  # the engine keeps the keys and hands back the shared rows only
        rows = link_rows([(d, str(f)) for d, f in items], key)
    else:
        rows = pd.concat(mapper(lambda it: district_link_keys(it[1], it[0], key), items), ignore_index=True)
    links = province_links(rows)
    if links.empty:
        return CrossDistrict(links, CrossDistrict.empty().history)
    sharing = sorted(set(links["district"]))

    def history(it: tuple[str, Path]) -> dict[str, pd.DataFrame]:
        ds = load_dataset(it[1], errors="quarantine", pseudonym_key=key)
        return district_shared_history(ds, it[0], links)

    parts = mapper(history, [(d, province.folders[d]) for d in sharing])
    return CrossDistrict.combine(links, parts)


# --------------------------------------------------------------------------- training

def province_dataset(path: str | os.PathLike, *, max_districts: int | None = None, seed: int = 0,
                     mapper: Mapper = local_map, pseudonym_key: str | bytes | None = None) -> Dataset:
    """The districts of a province as one Dataset, to train one model on (``train`` on a province).

    Every district is loaded by a district task (on Spark when ``mapper`` is Spark's);
    the driver joins them: ids become ``DISTRICT/ID`` inside this training set only
    (the model keeps no id), so the same id in two districts is two records, while
    linkage over the union joins the same person across districts, as the nightly
    job does. Large provinces are sampled by district: ``max_districts`` districts
    drawn with ``seed`` (whole districts, so each keeps its people's histories whole).
    """
    province = open_province(path)
    codes = province.districts
    if max_districts is not None and len(codes) > max_districts:
        rng = np.random.default_rng(seed)
        codes = sorted(rng.choice(codes, size=max_districts, replace=False).tolist())
    key = resolve_pseudonym_key(pseudonym_key)
    parts = mapper(lambda it: _qualified(load_dataset(it[1], errors="quarantine", pseudonym_key=key), it[0]),
                   [(d, province.folders[d]) for d in codes])
    tables = {}
    for name in TABLES:
        frames = [p[name] for p in parts if name in p]
        tables[name] = pd.concat(frames, ignore_index=True) if frames else empty_table(name)
    return Dataset.from_frames(pseudonymised=True, **tables)


def _qualified(ds: Dataset, district: str) -> dict[str, pd.DataFrame]:
    out = {}
    for name, spec in TABLES.items():
        df = getattr(ds, name, None)
        if df is None:
            continue
        df = df.copy()
        for col in spec.columns:
            if col.kind == "id" and col.name in df.columns:
                v = df[col.name]
                df[col.name] = (district + "/" + v.astype(object).where(v.notna(), None)).where(v.notna())
        for col in spec.columns:
            if col.kind in ("code",) and col.name in df.columns:
                df[col.name] = df[col.name].astype(object)
        out[name] = df
    return out


@dataclass
class ProvinceReport:
    """What a province night did: one store summary per district, the files, the timings."""

    summaries: dict[str, NightSummary]
    scores: pd.DataFrame
    quarantined_rows: int
    cross_people: int
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    tasks: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __str__(self) -> str:
        lines = [str(s) for s in self.summaries.values()]
        lines.append(f"province: {len(self.summaries)} districts, {len(self.scores)} disputes scored, "
                     f"{self.cross_people} people seen in several districts")
        if self.quarantined_rows:
            lines.append(f"quarantined rows: {self.quarantined_rows} (see {self.files.get('quarantine')})")
        return "\n".join(lines)


def run_province_night(path: str | os.PathLike, model: str | os.PathLike | RiskModel, as_of: Any, *,
                       store: str | AlertStore = "sqlite:///alerts.db", out_dir: str | os.PathLike | None = "out",
                       engine: str = "local", spark: Any = None, spark_master: str | None = None,
                       thresholds: dict[str, float] | None = None,
                       pseudonym_key: str | bytes | None = None) -> ProvinceReport:
    """One night over every district of a province, on the local engine or on Spark.

    ``as_of`` is read as a district's night is (a date is the end of that day).

    Both engines run the same district tasks and give the same scores; the driver
    writes ``scores-<night>.csv`` (with ``district``) and records each district's night
    in its own transaction. Safe to run again: a district already recorded that night
    changes nothing.
    """
    from .nightly import _for_csv, _night_tag, resolve_night  # a district's night: same moment, same files

    night = resolve_night(as_of)
    tag = _night_tag(night)
    province = open_province(path)
    rm = model if isinstance(model, RiskModel) else load_model(model)
    key = resolve_pseudonym_key(pseudonym_key)
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    if engine == "local":
        mapper: Mapper = local_map
        link_rows = None
    elif engine == "spark":
        from . import spark as er_spark
        session = spark if spark is not None else er_spark.session(spark_master)
        mapper = er_spark.district_mapper(session)
        link_rows = er_spark.link_rows_filter(session)
    else:
        raise ValueError(f"engine must be 'local' or 'spark', got {engine!r}")

    t0 = time.perf_counter()
    cross = cross_district(province, mapper, pseudonym_key=key, link_rows=link_rows)
    seconds["cross_district"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    results: list[DistrictResult] = mapper(
        lambda it: score_district(it[1], it[0], rm, night, cross, pseudonym_key=key, thresholds=thresholds),
        list(province.folders.items()))
    seconds["score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    st = store if isinstance(store, AlertStore) else AlertStore(str(store))
    summaries: dict[str, NightSummary] = {}
    scored: list[pd.DataFrame] = []
    for r in results:
        previous = st.previous_scores(r.scores["dispute_id"].tolist(), before=night, district=r.district)
        s = apply_trend(r.scores, previous)
        scored.append(s)
        summaries[r.district] = st.record_night(s, night, rm.version, district=r.district)
    if not isinstance(store, AlertStore):
        st.dispose()
    seconds["record"] = time.perf_counter() - t0
    scores = pd.concat(scored, ignore_index=True) if scored else pd.DataFrame()

    files: dict[str, Path] = {}
    quarantined = sum(r.quarantined_rows for r in results)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files["scores"] = out / f"scores-{tag}.csv"
        outputs.to_csv(_for_csv(scores), "scores", files["scores"])
        if quarantined:
            files["quarantine"] = out / f"quarantine-{tag}.csv"
            outputs.to_csv(pd.concat([r.quarantine for r in results if len(r.quarantine)], ignore_index=True),
                           "quarantine", files["quarantine"])
            for r in results:
                for name, rows in r.rejected.items():
                    rej = out / f"rejected-{tag}" / r.district
                    rej.mkdir(parents=True, exist_ok=True)
                    outputs.to_csv(rows, f"rejected/{name}", rej / f"{name}.csv")
    seconds["total"] = time.perf_counter() - t_all
    tasks = pd.DataFrame([{"district": r.district, "disputes": len(r.scores), "seconds": r.seconds,
                           "peak_rss_mb": r.peak_rss_mb, "pid": r.pid} for r in results])
    return ProvinceReport(summaries, scores, quarantined, cross.n_people, files, seconds, tasks)
