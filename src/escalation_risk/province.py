"""A province: many districts, people followed across districts; what is province-specific in the night.

A province export (data contract 1.1, "A province") is a folder of district dataset
folders named by district code. Ids are unique inside a district only, so everything
here and every output carries a ``district`` column beside the district's own ids. A
district's folder is a province of one district (:func:`districts_of`).

The night itself is :func:`escalation_risk.nightly.run_night`, one pipeline for a
district and a province. What it needs from here, as per-district tasks an engine (this
process, or Spark: :mod:`escalation_risk.spark`) can run apart:

1. **linkage keys** (:func:`linkage_keys`): each district's persons as pseudonyms and
   hashed keys;
2. **the cross-district part**, computed once (:func:`cross_district`): the province's
   persons linked by :func:`province_keys`, the same probabilistic linkage
   (:func:`~escalation_risk.linking.link_keys`) a model trained on the province uses
   (:func:`province_dataset`); then each district hands over the records of its people
   seen elsewhere (:func:`district_shared_history`): their incidents, party rows,
   the mediations of those incidents and their flags. Small beside a district;
3. **scores** (:func:`score_loaded`): each district is scored from its own data linked by
   the province's keys plus the cross-district part, so a party's history features see
   their records in every district. Inside the task those foreign records take internal
   ids of the form ``~DISTRICT/ID`` (never written anywhere: scores, the store and
   files carry the district's own ids and a ``district`` column).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from .clock import to_moment
from .contract import TABLES
from .dataset import Dataset, empty_table, load_dataset, resolve_pseudonym_key
from .features import CHUNK, history_index
from .forks import Forked, in_parallel, workers, worth_forking
from .linking import Linkage, link_keys
from .memory import give_back_memory
from .model import RiskModel, open_points
from .normalize import KEY_COLUMNS
from .pseudonym_keys import KEY_ENV, KEY_FILE_ENV, find_key
from .response import compute_trend

log = logging.getLogger(__name__)
T = TypeVar("T")

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


# --------------------------------------------------------------------------- districts of a night

def districts_of(data: str | os.PathLike | Dataset, district: str | None = None) -> dict[str, Path | Dataset]:
    """The districts a data folder stands for: district code -> folder (or the Dataset given).

    A province folder gives its districts (only ``district`` when named); a district's
    folder, or a Dataset, is a province of one district: code ``""`` (a lone district,
    as the store records it), or ``district`` when named, or, for a folder inside a
    province folder, the folder's name (``prov/330101`` is district ``330101``).
    """
    if isinstance(data, Dataset):
        return {district or "": data}
    path = Path(data)
    if is_province(path):
        folders: dict[str, Path | Dataset] = dict(open_province(path).folders)
        if district is None:
            return folders
        if district not in folders:
            raise ProvinceError(f"{path}: no district {district!r} (districts: {', '.join(map(str, folders))})")
        return {district: folders[district]}
    if not path.is_dir():
        raise FileNotFoundError(f"data folder not found: {path}")
    return {district or "": path}


def folder_district(path: str | os.PathLike) -> str | None:
    """The district code a folder inside a province folder stands for (its name), else None."""
    p = Path(path).resolve()
    return p.name if p.is_dir() and not is_province(p) and is_province(p.parent) else None


# --------------------------------------------------------------------------- step 1: link keys

def known_key(pseudonym_key: str | bytes | os.PathLike | None) -> bytes | None:
    """The pseudonym key as bytes for district tasks (an executor has no environment of
    ours), or None when none is set: an export already pseudonymised needs none, and a
    raw one says so when loaded."""
    return find_key(pseudonym_key, argument="pseudonym_key", env=KEY_ENV, file_env=KEY_FILE_ENV)


#: The columns of a persons table the linkage reads (pseudonyms and hashed keys only).
LINK_KEY_COLUMNS = ("person_id", "birth_year", "gender", *KEY_COLUMNS)


def linkage_keys(ds: Dataset, district: str) -> pd.DataFrame:
    """A district's persons as the province linkage reads them: district, person_id and
    :data:`LINK_KEY_COLUMNS` (pseudonyms and hashed keys: nothing personal travels)."""
    cols = [c for c in LINK_KEY_COLUMNS if c in ds.persons.columns]
    out = ds.persons[cols].reset_index(drop=True)
    out.insert(0, "district", district)
    return out


# --------------------------------------------------------------------------- step 2: cross-district

_KEY_COLUMNS = ["district", "person_id", "key_district", "key_person"]


def province_keys(keys: pd.DataFrame) -> pd.DataFrame:
    """One person key for every person of the province, by the linkage training uses.

    ``keys`` are the :func:`linkage_keys` of every district, in district order. Their ids
    are qualified ``DISTRICT/ID`` and linked together by :func:`~.linking.link_keys`, the
    function :func:`~.linking.link_persons` runs on :func:`province_dataset` when a model
    is trained on the province: a person with a mistyped id has one history in
    training and at night. Returns district, person_id and the person's province key as
    (key_district, key_person): the group's smallest qualified id, two columns.
    """
    if keys.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in _KEY_COLUMNS})
    district = keys["district"].astype(str)
    pid = keys["person_id"].astype(str)
    qualified = keys.drop(columns="district").assign(person_id=(district + "/" + pid).to_numpy())
    key = link_keys(qualified).key
    parts = key.reindex(qualified["person_id"]).astype(str).str.split("/", n=1, expand=True)
    return pd.DataFrame({"district": district.to_numpy(dtype=object), "person_id": pid.to_numpy(dtype=object),
                         "key_district": parts[0].to_numpy(dtype=object),
                         "key_person": parts[1].to_numpy(dtype=object)})


def _shared(keys: pd.DataFrame) -> pd.DataFrame:
    """The rows of persons seen in two districts or more."""
    if keys.empty:
        return keys
    n = keys.groupby(["key_district", "key_person"])["district"].transform("nunique")
    return keys[n >= 2].reset_index(drop=True)


def district_shared_history(ds: Dataset, district: str, links: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The records of this district's people who are also seen elsewhere (step 2).

    ``links`` holds (district, person_id, key_district, key_person) of those people.
    Their person rows (with their province key), the incidents they are a party to
    (place and related incident dropped: those ids mean nothing in another district),
    their person-party rows, the mediations of those incidents and their flags; each
    table with ``district``.
    """
    mine = links[links["district"] == district]
    pids = set(mine["person_id"])
    persons = ds.persons[ds.persons["person_id"].isin(pids)].copy()
    by_id = mine.set_index("person_id")
    persons["key_district"] = persons["person_id"].map(by_id["key_district"]).astype(object)
    persons["key_person"] = persons["person_id"].map(by_id["key_person"]).astype(object)
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


def _no_history() -> dict[str, pd.DataFrame]:
    return {t: pd.DataFrame(columns=["district"]) for t in SHARED_TABLES}


@dataclass
class CrossDistrict:
    """The province's linkage and the records of its people seen in several districts.

    ``keys``: every person's province key (:func:`province_keys`), empty for a province
    of one district (which keeps its own linkage); ``history``: the shared people's
    records (:func:`district_shared_history`) of every district.
    """

    keys: pd.DataFrame
    history: dict[str, pd.DataFrame]

    @classmethod
    def empty(cls) -> CrossDistrict:
        """A province of one district: nothing linked across districts."""
        return cls(province_keys(pd.DataFrame()), _no_history())

    @classmethod
    def combine(cls, keys: pd.DataFrame, parts: Sequence[dict[str, pd.DataFrame]]) -> CrossDistrict:
        """Join the districts' shared histories (from any engine) in district order."""
        parts = sorted(parts, key=lambda p: str(p["persons"]["district"].iloc[0]) if len(p["persons"]) else "")
        history = {}
        for t in SHARED_TABLES:
            frames = [p[t] for p in parts if len(p[t])]
            history[t] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["district"])
        return cls(keys, history)

    @property
    def links(self) -> pd.DataFrame:
        """The keys of the persons seen in two districts or more."""
        return _shared(self.keys)

    @property
    def n_people(self) -> int:
        """Persons (province keys) seen in two districts or more."""
        return int(self.links[["key_district", "key_person"]].drop_duplicates().shape[0])

    def districts_sharing(self) -> set[str]:
        """The districts with at least one person seen elsewhere."""
        return set(self.links["district"])

    def for_district(self, district: str) -> CrossDistrict:
        """What one district task needs: its persons' keys and the records of its shared people."""
        keys = self.keys[self.keys["district"] == district].reset_index(drop=True)
        people = set(zip(self.links.loc[self.links["district"] == district, "key_district"],
                         self.links.loc[self.links["district"] == district, "key_person"]))
        hp = self.history["persons"]
        if not people or hp.empty:
            return CrossDistrict(keys, _no_history())
        ours = pd.Series([k in people for k in zip(hp["key_district"], hp["key_person"])], index=hp.index)
        persons = hp[ours & (hp["district"] != district)]
        pids = set(zip(persons["district"], persons["person_id"]))
        parties = self.history["incident_parties"]
        parties = parties[[k in pids for k in zip(parties["district"], parties["party_id"])]]
        incs = set(zip(parties["district"], parties["incident_id"]))

        def of_incidents(df: pd.DataFrame) -> pd.DataFrame:
            return df[[k in incs for k in zip(df["district"], df["incident_id"])]] if len(df) else df
        flags = self.history["person_flags"]
        flags = flags[[k in pids for k in zip(flags["district"], flags["person_id"])]] if len(flags) else flags
        history = {"persons": persons, "incidents": of_incidents(self.history["incidents"]),
                   "incident_parties": parties, "mediations": of_incidents(self.history["mediations"]),
                   "person_flags": flags}
        return CrossDistrict(keys, {t: df.reset_index(drop=True) for t, df in history.items()})


# --------------------------------------------------------------------------- step 3: one district

def with_shared_history(ds: Dataset, district: str, cross: CrossDistrict) -> Dataset:
    """``ds`` linked by the province's linkage, plus the records other districts hold about its people.

    The result's person key (``link_persons``) is the province's: groups the province
    joins share one key, and foreign records map to the key of the same person here.
    A district with no keys in ``cross`` (a province of one) is returned as it is.
    """
    mine = cross.keys[cross.keys["district"] == district]
    if mine.empty:
        return ds

    def key_names(kd: pd.Series, kp: pd.Series) -> np.ndarray:
        # a person whose smallest record is here is named by that id, else by the foreign record's internal id
        kd, kp = kd.astype(str).to_numpy(dtype=object), kp.astype(str).to_numpy(dtype=object)
        return np.where(kd == district, kp, _FOREIGN + kd + "/" + kp)

    own = pd.Series(key_names(mine["key_district"], mine["key_person"]), index=mine["person_id"].astype(object))
    pid = ds.persons["person_id"].astype(object)
    local = own.reindex(pid).to_numpy(dtype=object)
    local = np.where(pd.isna(local), pid.to_numpy(dtype=object), local)
    key_of = pd.Series(local, index=pid.to_numpy())
    h = {t: cross.history[t] for t in SHARED_TABLES}
    foreign = {t: df[df["district"] != district] if len(df) else df for t, df in h.items()}
    fp = foreign["persons"]
    added: dict[str, pd.DataFrame] = {}
    if len(fp):
        groups_here = set(zip(mine["key_district"].astype(str), mine["key_person"].astype(str)))
        keep = np.array([k in groups_here for k in zip(fp["key_district"].astype(str),
                                                       fp["key_person"].astype(str))], dtype=bool)
        fp = fp[keep]
        fid = _qualify(fp["district"], fp["person_id"])
        key_of = pd.concat([key_of, pd.Series(key_names(fp["key_district"], fp["key_person"]),
                                              index=fid.to_numpy())])

        def with_ids(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
            df = df.copy()
            for c in cols:
                df[c] = _qualify(df["district"], df[c]).to_numpy()
            return df.drop(columns=[c for c in ("district", "key_district", "key_person") if c in df.columns])

        fparties = with_ids(foreign["incident_parties"], ["incident_id", "party_id"])
        fparties = fparties[fparties["party_id"].isin(set(key_of.index))]
        fincidents = with_ids(foreign["incidents"], ["incident_id"])
        fincidents = fincidents[fincidents["incident_id"].isin(set(fparties["incident_id"]))]
        fmed = with_ids(foreign["mediations"], ["mediation_id", "incident_id"])
        fmed = fmed[fmed["incident_id"].isin(set(fincidents["incident_id"]))]
        fflags = with_ids(foreign["person_flags"], ["person_id"])
        fflags = fflags[fflags["person_id"].isin(set(key_of.index))]
        added = {"persons": with_ids(fp, ["person_id"]), "incidents": fincidents, "incident_parties": fparties,
                 "mediations": fmed, "person_flags": fflags}
    tables = {t: _append(getattr(ds, t), added[t]) for t in added}
    out = dataclasses.replace(ds, **tables, cache={})
    person_key = key_of.astype(object).rename("person_key")
    person_key.index.name = "person_id"
    # The province's linkage, made once, is the linkage of this task: nothing is linked again.
    out.cache["linkage"] = Linkage(key=person_key, pairs=pd.DataFrame(),
                                   stats={"province_linkage": 1.0, "foreign_records": float(len(fp))})
    out.cache["person_key"] = person_key
    return out


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
    """What one district task returns: its scores (trend not yet applied) and what it cost."""

    district: str
    scores: pd.DataFrame
    seconds: float
    peak_rss_mb: float
    pid: int = field(default_factory=os.getpid)
    drift: Any = None  # the district's DriftReport, when the night checks drift
    #: An engine whose tasks write their scores (Spark) leaves ``scores`` empty and gives
    #: this reader of the written file instead: the driver holds one district at a time.
    reader: Callable[[], pd.DataFrame] | None = None

    def read(self) -> pd.DataFrame:
        """The district's scores (from the task's file, when it wrote one)."""
        return self.reader() if self.reader is not None else self.scores


def score_loaded(ds: Dataset, district: str, model: RiskModel, night: pd.Timestamp, cross: CrossDistrict,
                 *, thresholds: dict[str, float] | None = None,
                 drift: Callable[[Dataset], Any] | None = None) -> DistrictResult:
    """Score every dispute open at ``night`` in one loaded district, linked province-wide.

    The scores carry ``district`` first for a district of a province (not for a lone
    district, code ``""``) and trend ``new``: the trend needs the store's history and
    is applied by the night under the store's lock (:func:`apply_trend`).

    ``drift(ds)`` (the night's drift check of the district's own data) is run too, and
    its value is the result's ``drift``: by the scoring child after its half when the
    district is scored on its own data (it reads the index built for the scores), else
    after the scores. A district of :data:`~.forks.FORK_MIN_ROWS` incidents or more checks drift in a
    forked child even when its few open disputes are scored here: the check's features
    over the validation window, freed with the child, never add to this process's peak.
    """
    t0 = time.perf_counter()
    points = open_points(ds, night)
    full = with_shared_history(ds, district, cross)
    # The history index built first (cached on the data: a district scored on its own
    # data keeps it for the drift check), and the build's freed scratch given back
    # before the features are built.
    history_index(full, model.lexicon, fork=True)
    give_back_memory()
    large = worth_forking(len(ds.incidents))
    beside = partial(drift, ds) if drift is not None and full is ds else None
    scores, checked = score_points(model, full, points, thresholds=thresholds, then=beside,
                                   fork=True if beside is not None and large else None)
    if drift is not None and beside is None:
        checked = Forked(partial(drift, ds), fork=large).result()
    if district:
        scores.insert(0, "district", district)
    return DistrictResult(district, scores, time.perf_counter() - t0, peak_rss_mb(), drift=checked)


def score_points(model: RiskModel, ds: Dataset, points: pd.DataFrame, *, thresholds: dict[str, float] | None = None,
                 fork: bool | None = None, then: Callable[[], T] | None = None) -> tuple[pd.DataFrame, T | None]:
    """``model.score(ds, points)``, the points' second half scored by a forked child
    sharing ``ds``'s built history index (``fork=None``: when :func:`~.forks.workers`
    allows two processes and there are two slices of points or more), and ``then()``
    (None when not given), run by that child after its half, else here after the scores.
    Forked with ``then`` and at most one slice (:data:`~.features.CHUNK`) of points, the
    points are scored here and the child runs ``then()`` alone.

    A point's score does not depend on the slice it is scored in (its features read the
    index and the point only), so the halves, whatever their slices, give the scores one
    process gives. One child, not one for the scores and another for ``then``: two
    children beside this process each copied the pages they touched, their peaks together
    (a million people's night) over a gigabyte above one child's."""
    n = len(points)
    if fork is None:
        fork = workers() > 1 and n > CHUNK
    parent = os.getpid()
    if fork and then is not None and n <= CHUNK:
        # One point scored first, as below: the look-up tables built on first use shared with the child.
        model.score(ds, points.iloc[:1], thresholds=thresholds)
        # then() alone in the child: a failure there is run again here by the fork itself.
        return in_parallel(lambda: model.score(ds, points, thresholds=thresholds), then, fork=True)
    if not fork or n < 2:
        scores = model.score(ds, points, thresholds=thresholds)
        return scores, then() if then is not None else None
    # The child takes the odd slice: this process has more to do (the first point, reading
    # the child's scores back). A child with ``then`` to do after its half takes a slice less.
    cut = max(CHUNK, (n // 2) // CHUNK * CHUNK) if n > CHUNK else n // 2
    if then is not None and cut + CHUNK < n:
        cut += CHUNK
    first, second = points.iloc[:cut].reset_index(drop=True), points.iloc[cut:].reset_index(drop=True)
    # One point scored here first: the look-up tables built on first use (the hash tables of
    # the index's ids and pairs) are then made once and shared, not made again by the child.
    model.score(ds, first.iloc[:1], thresholds=thresholds)

    def theirs() -> tuple[pd.DataFrame, T | _Failed | None]:
        scored = _in_slices(model, ds, second, thresholds)
        return scored, _marked(then, parent) if then is not None else None

    mine, (other, checked) = in_parallel(lambda: _in_slices(model, ds, first, thresholds), theirs, fork=True)
    return pd.concat([mine, other], ignore_index=True), _or_again(checked, then)


@dataclass(frozen=True)
class _Failed:
    """What a forked child sends back in place of a ``then()`` that failed (the error's
    type only: a message may carry data)."""

    error: str


def _marked(then: Callable[[], T], parent: int) -> T | _Failed:
    """``then()``; in a forked child, a failure of it marked rather than raised, so the
    parent runs ``then`` again and not the whole half of scores before it."""
    if os.getpid() == parent:  # not forked (no process left): a failure is this process's own
        return then()
    try:
        return then()
    except Exception as e:  # noqa: BLE001 - run again by the parent, where it fails for real
        return _Failed(type(e).__name__)


def _or_again(done: T | _Failed | None, then: Callable[[], T] | None) -> T | None:
    """The child's ``then()``, or, where it failed there, ``then()`` run again here (only
    it: the child's half of the scores came back whole)."""
    if isinstance(done, _Failed) and then is not None:
        log.warning("then() failed in the scoring child (%s): run again here", done.error)
        return then()
    return done  # type: ignore[return-value]  # not a _Failed: the child's value


#: Points a forked half is scored at a time (a quarter of :data:`~.features.CHUNK`).
FORKED_SLICE = CHUNK // 4


def _in_slices(model: RiskModel, ds: Dataset, points: pd.DataFrame,
               thresholds: dict[str, float] | None) -> pd.DataFrame:
    """``model.score(ds, points)`` :data:`FORKED_SLICE` points at a time, each slice's freed
    scratch given back before the next. Two processes scoring side by side each held a
    slice's scratch (~350 MB for 16,384 points at a million people) and kept the freed
    heap resident; a point's score does not depend on the points scored with it."""
    if len(points) <= FORKED_SLICE:
        return model.score(ds, points, thresholds=thresholds)
    parts = []
    for lo in range(0, len(points), FORKED_SLICE):
        parts.append(model.score(ds, points.iloc[lo:lo + FORKED_SLICE].reset_index(drop=True), thresholds=thresholds))
        give_back_memory()
    return pd.concat(parts, ignore_index=True)


def score_district(folder: str | os.PathLike | Dataset, district: str, model: RiskModel, as_of: Any,
                   cross: CrossDistrict, *, pseudonym_key: str | bytes | None = None,
                   thresholds: dict[str, float] | None = None) -> DistrictResult:
    """:func:`score_loaded` on a district's folder (loaded with quarantine) or Dataset."""
    ds = folder if isinstance(folder, Dataset) else load_dataset(folder, errors="quarantine",
                                                                 pseudonym_key=pseudonym_key)
    return score_loaded(ds, district, model, to_moment(as_of, what="as_of"), cross, thresholds=thresholds)


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


def cross_district(province: Province | Mapping[str, Path | Dataset], mapper: Mapper = local_map, *,
                   pseudonym_key: str | bytes | None = None, link_rows: Any = None,
                   keys: pd.DataFrame | None = None) -> CrossDistrict:
    """Steps 1 and 2 over a whole province with ``mapper`` running the district tasks.

    ``province`` maps district codes to folders or loaded Datasets (a local engine
    hands over what it loaded). ``keys``: the :func:`linkage_keys` of every district
    when the caller has them already. A province of one district is
    :meth:`CrossDistrict.empty`. ``link_rows`` is accepted for older callers and not
    used: the province linkage reads every person's keys, not rows prefiltered by
    exact identifiers.
    """
    del link_rows
    key = known_key(pseudonym_key)
    sources = dict(province.folders if isinstance(province, Province) else province)
    if len(sources) < 2:
        return CrossDistrict.empty()

    def data(code: str, src: Path | Dataset) -> Dataset:
        return src if isinstance(src, Dataset) else load_dataset(src, errors="quarantine", pseudonym_key=key)

    if keys is None:
        keys = pd.concat(mapper(lambda it: linkage_keys(data(*it), it[0]), list(sources.items())),
                         ignore_index=True)
    pk = province_keys(keys)
    links = _shared(pk)
    if links.empty:
        return CrossDistrict(pk, _no_history())
    sharing = sorted(set(links["district"]))
    parts = mapper(lambda it: district_shared_history(data(*it), it[0], links), [(d, sources[d]) for d in sharing])
    return CrossDistrict.combine(pk, parts)


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


def run_province_night(path: str | os.PathLike, model: str | os.PathLike | RiskModel, as_of: Any,
                       **options: Any) -> Any:
    """The night of a province folder: :func:`escalation_risk.nightly.run_night`, every step and
    option of a district's night (engine ``"local"`` or ``"spark"``); returns its
    :class:`~escalation_risk.night_report.NightReport`."""
    from .nightly import run_night
    return run_night(path, model, as_of, **options)
