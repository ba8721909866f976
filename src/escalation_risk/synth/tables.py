"""The district's contract tables: :func:`generate_tables` in named steps, and the frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from escalation_risk.contract import (
    CONTRACT_1_1,
    DISPUTE_CATEGORIES,
    EMPLOYMENT,
    FLAGS,
    GENDERS,
    HUKOU,
    INCIDENT_KINDS,
    MEDIATION_OUTCOMES,
    MEDIATOR_TYPES,
    MEMBER_ROLES,
    OFFENCE_CATEGORIES,
    ORG_TYPES,
    PARTY_ROLES,
    PLACE_TYPES,
    RELATIONS,
    SOURCES,
    STATUSES,
    TABLES,
    TENURES,
)

from .background import _background
from .draws import _sig
from .episodes import _episodes
from .flags import Flags, _flags
from .formats import _days_to_ts, _fmt_ids
from .geography import _geography
from .households import Memberships, _memberships
from .late_facts import _add_late_fact_tables, _late_facts
from .organizations import _organizations
from .people import _people
from .person_records import Identities, PoliceRecords, _identities, _police_records
from .records import Records, _Acc, _export_records
from .relations import _relations_at_export, _static_relations
from .residence import _realistic_residence
from .simulation import _episode_parties, _escalations, _simulate
from .vocab import _K, DISTRICT_NAME


def generate_tables(n_persons: int, seed: int = 0, start: str = "2021-07-01",
                    end: str = "2025-06-30", late_facts: bool = True, linkage_noise: float = 0.0,
                    realistic_residence: bool = False) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Generate a synthetic district: the contract tables and the person truth.

    Returns ``(tables, person_truth)``: ``tables`` maps each contract table name to a
    DataFrame with exactly the contract's columns (raw, with fake PII on persons);
    ``person_truth(person_id, true_person)`` maps every person_id, including the
    duplicate records of the police system, to the real person.

    ``late_facts`` (default) adds contract 1.1's facts recorded after a report (see
    :func:`.late_facts._late_facts`); they come from their own random stream, so the 1.0 tables and
    columns of a seed are the same either way. ``late_facts=False`` gives a 1.0 export.
    ``linkage_noise`` is the share of duplicate records written with record-linkage noise
    (package docstring). ``realistic_residence`` adds households that moved during the period
    and lists some of the police system's duplicate records in households (:mod:`.residence`),
    on a random stream of its own: without it every table is as it always was.
    """
    if not 0.0 <= float(linkage_noise) <= 1.0:
        raise ValueError(f"linkage_noise must be between 0 and 1, got {linkage_noise!r}")
    if int(n_persons) < 50:
        raise ValueError(f"n_persons must be at least 50, got {n_persons!r}")
    n = int(n_persons)
    rng = np.random.default_rng(seed)
    t_start = np.datetime64(pd.Timestamp(start).normalize().to_datetime64(), "s")
    t_end = np.datetime64(pd.Timestamp(end).normalize().to_datetime64(), "s")
    if t_end <= t_start:
        raise ValueError(f"end must be after start, got start={start!r} end={end!r}")
    T = float((t_end - t_start) / np.timedelta64(1, "D")) + 1.0  # the end day is included
    year0 = pd.Timestamp(start).year

    # The steps draw from ``rng`` in this order, and the order is the output: a step moved
    # or a draw added changes every table after it for the same seed.
    d = _district(rng, n, T, year0)
    rec = _export_records(rng, d.acc, d.e, d.p, T)
    mem = _memberships(rng, d.p, d.g, d.e, n, T)
    relations = _relations_at_export(rng, d.e, d.rel, mem.divorces, T)
    fl = _flags(rng, d.p, rec, n, T)
    ident = _identities(rng, d.p, n, seed, linkage_noise)
    police, rec, fl = _police_records(rng, d.p, ident, rec, fl, n, seed, linkage_noise)
    if realistic_residence:
        mem = _realistic_residence(seed, d.p, d.g, mem, police, rec, n)
    ids = _ids(rng, n, police.n_dup, d.o, d.g, mem, rec)
    persons, truth = _person_frames(rng, d.p, ident, police, ids, n, linkage_noise)
    tables = {"persons": persons, **_record_frames(d.g, d.o, rec, mem, relations, fl, ids, t_start)}
    if late_facts:
        lf = _late_facts(np.random.default_rng([int(seed), 11]), p=d.p, e=d.e, n=n, T=T, new_of=rec.new_of,
                         kind=rec.kind, cat=rec.cat, rep=rec.rep, closed=rec.closed, ep_of=rec.ep_of, pinc=rec.pinc,
                         ppid=rec.ppid, ptype=rec.ptype, prole=rec.prole, med_t=rec.med_t, cs_p=fl.cs_p, cs_t=fl.cs_t)
        _add_late_fact_tables(tables, lf, iid=ids.iid, pid_str=ids.pid_str, pinc=rec.pinc, t_start=t_start)
    return _contract_columns(tables, late_facts), truth


class _District(NamedTuple):
    """The district as simulated: people, places, organisations, static relations, episodes
    and every record they left (internal indices, days from the start)."""

    p: dict
    g: dict
    o: dict
    rel: dict
    e: dict
    acc: _Acc


def _district(rng: np.random.Generator, n: int, T: float, year0: int) -> _District:
    """Build the district and run its episodes and background events to the end of the period."""
    p = _people(rng, n, year0)
    g = _geography(rng, p, n)
    o = _organizations(rng, p, g, n)
    # prior violence on record before the data begins
    p["pv0"] = rng.random(n) < _sig(-5.3 + 1.4 * p["aggr"]) * p["adult"]
    rel = _static_relations(rng, p, g, o, n, T)
    acc = _Acc()
    e = _episodes(rng, p, g, o, n, T)
    _simulate(rng, p, g, o, e, acc, T)
    _escalations(rng, p, o, e, acc)
    _episode_parties(e, acc, rng)
    _background(rng, p, g, o, acc, n, T)
    return _District(p=p, g=g, o=o, rel=rel, e=e, acc=acc)


@dataclass
class _Ids:
    """The ids written into the tables, by internal index."""

    perm: np.ndarray  # position of each person record among the person_ids
    pid_str: np.ndarray
    oid_str: np.ndarray
    plid: np.ndarray
    hid: np.ndarray
    gid: np.ndarray
    iid: np.ndarray
    mid: np.ndarray
    tp_true: np.ndarray


def _ids(rng: np.random.Generator, n: int, n_dup: int, o: dict, g: dict, mem: Memberships, rec: Records) -> _Ids:
    """Ids of persons (shuffled), organisations, places, households, grids, incidents,
    mediations and true persons."""
    n_tot = n + n_dup
    N = len(rec.kind)
    hh_place, med_inc = mem.hh_place, rec.med_inc
    pw = max(6, len(str(n_tot)))
    perm = rng.permutation(n_tot)  # ids carry no information about households or duplicates
    pid_str = _fmt_ids("P", n_tot, pw)[perm]
    ow = max(5, len(str(o["n_org"])))
    oid_str = _fmt_ids("O", o["n_org"], ow)
    n_pl = len(g["pl_grid"])
    plid = _fmt_ids("L", n_pl, max(6, len(str(n_pl))))
    hid = _fmt_ids("H", len(hh_place), max(6, len(str(len(hh_place)))))
    gid = _fmt_ids("G", g["n_grid"], max(4, len(str(g["n_grid"]))))
    iid = _fmt_ids("I", N, max(7, len(str(N))))
    mid = _fmt_ids("M", len(med_inc), max(7, len(str(len(med_inc)))))
    tp_true = _fmt_ids("T", n, max(6, len(str(n))))
    return _Ids(perm=perm, pid_str=pid_str, oid_str=oid_str, plid=plid, hid=hid, gid=gid, iid=iid, mid=mid,
                tp_true=tp_true)


def _codes(vocab, idx: np.ndarray) -> np.ndarray:
    """Vocabulary words of code indices."""
    return np.asarray(vocab, dtype=object)[idx]


def _person_frames(rng: np.random.Generator, p: dict, ident: Identities, police: PoliceRecords, ids: _Ids, n: int,
                   linkage_noise: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``persons`` (first records, then the police system's) and ``person_truth``, in person_id
    order. Draws once: the employment a police record says."""
    by, male = p["birth_year"], p["male"]
    n_dup, dup_src, perm, pid_str, tp_true = police.n_dup, police.dup_src, ids.perm, ids.pid_str, ids.tp_true
    names, idn, phone = ident.names, ident.idn, ident.phone
    dup_name, dup_idn, dup_phone, dup_noise, true_of = police.name, police.idn, police.phone, police.noise, police.true_of
    persons = pd.DataFrame({
        "person_id": pid_str,
        "birth_year": pd.array(np.concatenate([by, by[dup_src]]), dtype="Int64"),
        "gender": _codes(GENDERS, np.concatenate([np.where(male, 0, 1), np.where(male[dup_src], 0, 1)])),
        "hukou": _codes(HUKOU, np.concatenate([p["hukou"], p["hukou"][dup_src]])),
        "employment": _codes(EMPLOYMENT, np.concatenate([p["employment"], np.where(rng.random(n_dup) < 0.5, p["employment"][dup_src], 4)])),
        "name": np.concatenate([names, dup_name]),
        "id_number": np.concatenate([idn, dup_idn]),
        "phone": np.concatenate([phone, dup_phone]),
    })
    persons = persons.iloc[np.argsort(perm, kind="stable")].reset_index(drop=True)
    truth = pd.DataFrame({"person_id": pid_str, "true_person": tp_true[true_of]})
    if linkage_noise > 0:
        truth["noise"] = np.concatenate([np.full(n, "", dtype=object), dup_noise])
    truth = truth.iloc[np.argsort(perm, kind="stable")].reset_index(drop=True)
    return persons, truth


def _record_frames(g: dict, o: dict, rec: Records, mem: Memberships,
                   rels: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], fl: Flags, ids: _Ids,
                   t_start: np.datetime64) -> dict[str, pd.DataFrame]:
    """Every contract 1.0 table but persons, as frames of ids and codes (the order is the one
    callers have always seen)."""

    def ts(d):
        return _days_to_ts(t_start, d)

    pid_str, oid_str, plid, hid, gid, iid, mid = ids.pid_str, ids.oid_str, ids.plid, ids.hid, ids.gid, ids.iid, ids.mid
    kind, cat, occ, rep, status, closed, desc, related = (rec.kind, rec.cat, rec.occ, rec.rep, rec.status, rec.closed,
                                                          rec.description, rec.related)
    pinc, ppid, ptype, prole = rec.pinc, rec.ppid, rec.ptype, rec.prole
    med_inc, med_t, med_type, med_out = rec.med_inc, rec.med_t, rec.med_type, rec.med_out
    hh_place, tenure = mem.hh_place, mem.tenure
    mem_hh, mem_pid, mem_role, mem_start, mem_end = mem.hh, mem.pid, mem.role, mem.start, mem.end
    ra, rb, rt, rs = rels
    fp, ff, ftt = fl.fp, fl.ff, fl.ftt
    places = pd.DataFrame({
        "place_id": plid, "grid_id": gid[g["pl_grid"]], "town": g["town_name"][g["grid_town"][g["pl_grid"]]],
        "district": DISTRICT_NAME, "place_type": _codes(PLACE_TYPES, g["pl_type"]),
        "lat": np.round(g["pl_ll"][:, 0], 6), "lon": np.round(g["pl_ll"][:, 1], 6),
    })
    households = pd.DataFrame({"household_id": hid, "place_id": plid[hh_place], "tenure": _codes(TENURES, tenure)})
    members = pd.DataFrame({
        "household_id": hid[mem_hh], "person_id": pid_str[mem_pid], "role": _codes(MEMBER_ROLES, mem_role),
        "start_date": ts(mem_start), "end_date": ts(mem_end),
    })
    orgs = pd.DataFrame({"org_id": oid_str, "org_type": _codes(ORG_TYPES, o["type"]), "place_id": plid[o["place"]],
                         "name": o["name"]})
    incidents = pd.DataFrame({
        "incident_id": iid, "kind": _codes(INCIDENT_KINDS, kind),
        "category": np.where(kind == _K["criminal_case"], _codes(OFFENCE_CATEGORIES, np.where(kind == _K["criminal_case"], cat, 0)),
                             _codes(DISPUTE_CATEGORIES, np.where(kind == _K["criminal_case"], 0, cat))),
        "occurred_at": ts(occ), "reported_at": ts(rep),
        "place_id": np.where(rec.place >= 0, plid[np.maximum(rec.place, 0)], None),
        "source": _codes(SOURCES, rec.source), "status": _codes(STATUSES, status), "closed_at": ts(closed),
        "amount": np.round(rec.amount, 2), "description": desc,
        "related_incident_id": np.where(related >= 0, iid[np.maximum(related, 0)], None),
    })
    parties = pd.DataFrame({
        "incident_id": iid[pinc],
        "party_id": np.where(ptype == 0, pid_str[np.where(ptype == 0, ppid, 0)], oid_str[np.where(ptype == 1, ppid, 0)]),
        "party_type": _codes(("person", "organization"), ptype), "role": _codes(PARTY_ROLES, prole),
    })
    parties = parties.iloc[np.argsort(pinc, kind="stable")].reset_index(drop=True)
    mediations = pd.DataFrame({
        "mediation_id": mid, "incident_id": iid[med_inc], "held_at": ts(med_t),
        "mediator_type": _codes(MEDIATOR_TYPES, med_type), "outcome": _codes(MEDIATION_OUTCOMES, med_out),
    })
    relations = pd.DataFrame({"person_a": pid_str[ra], "person_b": pid_str[rb], "relation": _codes(RELATIONS, rt),
                              "since": ts(rs)})
    fo = np.argsort(ftt, kind="stable")
    flags = pd.DataFrame({"person_id": pid_str[fp[fo]], "flag": _codes(FLAGS, ff[fo]), "recorded_at": ts(ftt[fo])})
    return {
        "person_flags": flags, "places": places, "households": households,
        "household_members": members, "organizations": orgs, "incidents": incidents,
        "incident_parties": parties, "mediations": mediations, "relations": relations,
    }


def _contract_columns(tables: dict[str, pd.DataFrame], late_facts: bool) -> dict[str, pd.DataFrame]:
    """Each table with exactly its contract columns, in contract order (1.0's without late facts);
    persons gain their null ``recorded_at``."""
    # persons.recorded_at left null: every record known throughout (training's features read
    # one linkage, as of the export; see escalation_risk.linking on availability).
    tables["persons"] = tables["persons"].assign(
        recorded_at=pd.Series(pd.NaT, index=tables["persons"].index, dtype=tables["incidents"]["reported_at"].dtype))
    for name, df in tables.items():
        cols = TABLES[name].column_names
        if not late_facts:  # a 1.0 export: without the columns contract 1.1 added
            cols = [c for c in cols if c not in CONTRACT_1_1.get(name, ())]
        tables[name] = df[cols]
    return tables


def generate_district(n_persons: int, seed: int = 0, start: str = "2021-07-01", end: str = "2025-06-30",
                      pseudonym_key: str | bytes | None = None, late_facts: bool = True):
    """Generate a district and load it as a validated, pseudonymised ``Dataset``."""
    from escalation_risk.dataset import Dataset  # lazy: the loader imports heavier modules

    tables, _ = generate_tables(n_persons, seed=seed, start=start, end=end, late_facts=late_facts)
    return Dataset.from_frames(pseudonym_key=pseudonym_key, **tables)
