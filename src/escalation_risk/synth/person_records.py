"""Person records: the identifiers each record holds (namesakes, missing ids and phones) and
the police system's duplicate records of people who meet the police."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .draws import _NONE
from .flags import Flags
from .noise import _linkage_noise, _shared_family_phones
from .people import _id_numbers, _phones
from .records import Records
from .vocab import _FL, _K


@dataclass
class Identities:
    """Name, id number and phone of each person's first record (None: not recorded)."""

    names: np.ndarray
    idn_all: np.ndarray  # everyone's id number, recorded or not
    idn: np.ndarray
    phone: np.ndarray


@dataclass
class PoliceRecords:
    """The second person_id the police system made for some people."""

    n_dup: int
    dup_src: np.ndarray  # the person each duplicate record is of, in duplicate order
    true_of: np.ndarray  # the person behind every person_id: first records, then duplicates
    name: np.ndarray
    idn: np.ndarray
    phone: np.ndarray
    noise: np.ndarray  # linkage noise written on each duplicate ("": none)


def _identities(rng: np.random.Generator, p: dict, n: int, seed: int, linkage_noise: float) -> Identities:
    """Identifiers of the first records: deliberate namesakes, id numbers and phones, some
    missing; with linkage noise, families sharing the head's phone."""
    male = p["male"]
    by = p["birth_year"].copy()
    names = p["name"].copy()
    adults = np.flatnonzero(p["adult"])
    srt = adults[np.lexsort((by[adults], male[adults]))]
    same = (by[srt[1:]] == by[srt[:-1]]) & (male[srt[1:]] == male[srt[:-1]]) & (p["hh"][srt[1:]] != p["hh"][srt[:-1]])
    cand = np.flatnonzero(same)
    ns = cand[rng.random(len(cand)) < 0.006]
    names[srt[ns + 1]] = names[srt[ns]]
    idn_all = _id_numbers(rng, by, male, p["hukou"] == 0)
    idn = idn_all.copy()
    phone = _phones(rng, n)
    no_phone = (p["age"] < 14) | (rng.random(n) < 0.04)
    no_id = rng.random(n) < np.where(p["hukou"] == 1, 0.05, 0.015)
    phone = np.where(no_phone, _NONE, phone)
    idn = np.where(no_id, _NONE, idn)
    if linkage_noise > 0:
        phone = _shared_family_phones(seed, p, phone, linkage_noise)
    return Identities(names=names, idn_all=idn_all, idn=idn, phone=phone)


def _police_records(rng: np.random.Generator, p: dict, ident: Identities, rec: Records, fl: Flags, n: int, seed: int,
                    linkage_noise: float) -> tuple[PoliceRecords, Records, Flags]:
    """Duplicate records of people who meet the police, mostly on police calls and crimes.

    Returns them with the records and flags where the police record takes the person's
    place; a duplicated person whose first record lacked the id number gets it back (in
    ``ident.idn``)."""
    kind, pinc, ppid, fp, ff = rec.kind, rec.pinc, rec.ppid, fl.fp, fl.ff
    names, idn_all, idn, phone = ident.names, ident.idn_all, ident.idn, ident.phone
    person_rows = rec.ptype == 0
    pol = (kind == _K["police_call"]) | (kind == _K["criminal_case"])
    in_pol = np.zeros(n, bool)
    in_pol[ppid[person_rows & pol[pinc]]] = True
    in_any = np.zeros(n, bool)
    in_any[ppid[person_rows]] = True
    w = p["adult"] * (1.0 + 6.0 * in_pol + 1.0 * in_any)
    n_dup = int(round(0.035 * n))
    dup_src = np.sort(rng.choice(n, size=n_dup, replace=False, p=w / w.sum()))
    no_id_dup = (rng.random(n_dup) < 1 / 3) & (phone[dup_src] != None)  # noqa: E711
    # the police copy of an id-less person keeps only name, birth year and phone
    dup_phone = np.where(no_id_dup, phone[dup_src], np.where(rng.random(n_dup) < 0.6, phone[dup_src], _NONE))
    # A duplicated person whose first record lacked the id number gets their own one back.
    idn[dup_src[~no_id_dup]] = np.where(idn[dup_src[~no_id_dup]] == None,  # noqa: E711
                                        idn_all[dup_src[~no_id_dup]], idn[dup_src[~no_id_dup]])
    dup_idn = np.where(no_id_dup, _NONE, idn[dup_src])
    dup_of = np.full(n, -1)
    dup_of[dup_src] = n + np.arange(n_dup)
    swap = person_rows & pol[pinc] & (dup_of[np.where(person_rows, ppid, 0)] >= 0) & (rng.random(len(ppid)) < 0.7)
    ppid = np.where(swap, dup_of[np.where(person_rows, ppid, 0)], ppid)
    # police flags on a duplicated person sometimes land on the police record
    fswap = np.isin(ff, [_FL["prior_violence"], _FL["community_correction"]]) & (dup_of[fp] >= 0) & (rng.random(len(fp)) < 0.5)
    fp = np.where(fswap, dup_of[fp], fp)
    true_of = np.concatenate([np.arange(n), dup_src])
    dup_name = names[dup_src]
    dup_noise = np.full(n_dup, "", dtype=object)
    if linkage_noise > 0:
        dup_name, dup_idn, dup_phone, dup_noise = _linkage_noise(
            np.random.default_rng([seed, 17]), dup_name, dup_idn, dup_phone, float(linkage_noise))
    police = PoliceRecords(n_dup=n_dup, dup_src=dup_src, true_of=true_of, name=dup_name, idn=dup_idn,
                           phone=dup_phone, noise=dup_noise)
    return police, replace(rec, ppid=ppid), replace(fl, fp=fp)
