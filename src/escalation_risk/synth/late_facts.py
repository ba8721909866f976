"""Facts recorded after the report (contract 1.1): parties added later, outcomes typed in
later, attribute histories, and notes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from escalation_risk.contract import EMPLOYMENT, OFFENCE_CATEGORIES

from .draws import _Groups, _sig
from .formats import _days_to_ts, _fmt_ids
from .params import VISIT_WEEKS
from .texts import _EN_AFTER_CRIME, _EN_KW, _EN_VISIT, _ZH_AFTER_CRIME, _ZH_KW, _ZH_VISIT
from .vocab import _K, _PR


def _late_facts(rng: np.random.Generator, *, p: dict, e: dict, n: int, T: float, new_of: np.ndarray,
                kind: np.ndarray, cat: np.ndarray, rep: np.ndarray, closed: np.ndarray, ep_of: np.ndarray,
                pinc: np.ndarray, ppid: np.ndarray, ptype: np.ndarray, prole: np.ndarray, med_t: np.ndarray,
                cs_p: np.ndarray, cs_t: np.ndarray) -> dict:
    """Facts recorded after the report (contract 1.1), drawn from their own random stream so
    that every 1.0 table of a seed stays as it was.

    - parties added later: a household member of the suspect put on the dispute days
      after an escalation (35%), a relative of a party joining a dispute (4%), a crime's
      witness named weeks after the report (half of them);
    - outcomes typed in days after the session (35% of mediations);
    - hukou and employment histories written back from the export values: a suspect
      unemployed at export lost their job months after the crime; some locals were
      migrants before; some people were registered only during the period (unknown before);
    - notes: return visits in the first weeks, with danger words as likely as the heat then
      found makes them, and a note on the dispute after its escalation to a crime.
    """
    out: dict = {}
    hh = _Groups(p["hh"], np.arange(n), p["H"])
    persons_on = set((pinc[ptype == 0].astype(np.int64) * (n + 1) + ppid[ptype == 0]).tolist())
    # -- a witness of a crime named only later
    added = np.full(len(pinc), np.nan)
    wit = np.flatnonzero((ptype == 0) & (prole == _PR["witness"]) & (kind[pinc] == _K["criminal_case"]))
    wit = wit[rng.random(len(wit)) < 0.5]
    tw = rep[pinc[wit]] + rng.uniform(1, 30, len(wit))
    added[wit[tw < T]] = tw[tw < T]
    out["party_added"] = added
    # -- new parties: a relative of the suspect after an escalation; a relative joining a quarrel
    esc = np.flatnonzero(~np.isnan(e["t_esc"]))
    crime = new_of[e["crime_inc"]]
    disp = new_of[e["inc"][esc]]
    ok = (crime >= 0) & (disp >= 0)
    esc, crime, disp, susp = esc[ok], crime[ok], disp[ok], e["crime_susp"][ok]
    rel = hh.pick(rng, p["hh"][np.maximum(susp, 0)])
    t_rel = rep[crime] + rng.uniform(0.5, 20, len(crime))
    m1 = (rng.random(len(crime)) < 0.35) & (susp >= 0) & (rel >= 0) & (rel != susp) & (t_rel < T)
    d_all = np.flatnonzero((kind == _K["dispute"]) & (ep_of >= 0))
    a = e["a"][ep_of[d_all]]
    rel2 = hh.pick(rng, p["hh"][a])
    t_rel2 = rep[d_all] + rng.lognormal(np.log(10), 0.8, len(d_all))
    m2 = (rng.random(len(d_all)) < 0.04) & (rel2 >= 0) & (rel2 != a) & (t_rel2 < T)
    li = np.concatenate([disp[m1], d_all[m2]])
    lp = np.concatenate([rel[m1], rel2[m2]])
    lt = np.concatenate([t_rel[m1], t_rel2[m2]])
    new = ~np.isin(li.astype(np.int64) * (n + 1) + lp, np.fromiter(persons_on, np.int64, len(persons_on)))
    li, lp, lt = li[new], lp[new], lt[new]
    _, first = np.unique(li.astype(np.int64) * (n + 1) + lp, return_index=True)
    out["late_parties"] = (li[first], lp[first], lt[first])
    # -- outcomes typed in later
    delay = med_t + rng.lognormal(np.log(4), 0.9, len(med_t))
    out["outcome_at"] = np.where((rng.random(len(med_t)) < 0.35) & (delay < T), delay, np.nan)
    # -- attribute histories, consistent with the export-time values in persons
    ap, aa, av, at = [], [], [], []

    def rows(pid, attr, value, t):
        ap.append(pid); aa.append(np.full(len(pid), attr, dtype=object)); av.append(value); at.append(t)

    order = np.lexsort((cs_t, cs_p))
    cp, ct = cs_p[order], cs_t[order]
    first_crime = np.r_[True, cp[1:] != cp[:-1]] if len(cp) else np.zeros(0, bool)
    cp, ct = cp[first_crime], ct[first_crime]
    lost = ct + rng.uniform(60, 300, len(cp))
    m = (p["employment"][cp] == 1) & (lost < T) & (rng.random(len(cp)) < 0.8)
    cp, lost = cp[m], lost[m]
    rows(cp, "employment", np.full(len(cp), "employed", dtype=object), -rng.uniform(30, 2000, len(cp)))
    rows(cp, "employment", np.full(len(cp), "unemployed", dtype=object), lost)
    loc = np.flatnonzero((p["hukou"] == 0) & p["adult"] & (rng.random(n) < 0.03))
    rows(loc, "hukou", np.full(len(loc), "migrant", dtype=object), -rng.uniform(100, 3000, len(loc)))
    rows(loc, "hukou", np.full(len(loc), "local", dtype=object), rng.uniform(0, T, len(loc)))
    late = np.flatnonzero(p["adult"] & (rng.random(n) < 0.01))
    rows(late, "employment", np.asarray(EMPLOYMENT, dtype=object)[p["employment"][late]], rng.uniform(0, T, len(late)))
    out["attributes"] = tuple(np.concatenate(x) for x in (ap, aa, av, at))
    # -- notes: return visits, and what was written after an escalation
    ni, nt, nx = [], [], []
    d_ep = ep_of[d_all]
    for k, w in enumerate(VISIT_WEEKS):
        tv = np.maximum(e["t0"][d_ep] + 7.0 * (w + 1), rep[d_all]) + rng.uniform(0, 2, len(d_all))
        open_then = np.isnan(closed[d_all]) | (tv < closed[d_all])
        m = open_then & (tv < T) & (rng.random(len(d_all)) < 0.4)
        h = e["h_visit"][d_ep[m], k].astype(float)
        en = rng.random(m.sum()) < 0.10
        calm = h < 0.3
        text = np.where(en, np.where(calm, np.asarray(_EN_VISIT["calm"], object)[rng.integers(0, 2, m.sum())],
                                     np.asarray(_EN_VISIT["open"], object)[rng.integers(0, 2, m.sum())]),
                        np.where(calm, np.asarray(_ZH_VISIT["calm"], object)[rng.integers(0, 4, m.sum())],
                                 np.asarray(_ZH_VISIT["open"], object)[rng.integers(0, 4, m.sum())]))
        for key, pr in (("threat", _sig(-3.0 + 1.1 * h)), ("weapon", _sig(-4.4 + 1.0 * h))):
            hit = rng.random(m.sum()) < pr
            pick_zh = np.asarray(_ZH_KW[key], object)[rng.integers(0, len(_ZH_KW[key]), m.sum())]
            pick_en = np.asarray(_EN_KW[key], object)[rng.integers(0, len(_EN_KW[key]), m.sum())]
            text = np.where(hit, text + np.where(en, pick_en, pick_zh), text)
        ni.append(d_all[m]); nt.append(tv[m]); nx.append(text + np.where(en, ".", "。"))
    off = np.asarray(OFFENCE_CATEGORIES, object)[cat[crime]]
    t_note = rep[crime] + rng.uniform(0.5, 15, len(crime))
    m = (rng.random(len(crime)) < 0.6) & (t_note < T)
    en = rng.random(m.sum()) < 0.10
    ni.append(disp[m]); nt.append(t_note[m])
    nx.append(np.where(en, _EN_AFTER_CRIME, np.array([_ZH_AFTER_CRIME[o] for o in off[m]], dtype=object)) + "。")
    out["notes"] = (np.concatenate(ni), np.concatenate(nt), np.concatenate(nx))
    return out


def _add_late_fact_tables(tables: dict[str, pd.DataFrame], lf: dict, *, iid: np.ndarray, pid_str: np.ndarray,
                          pinc: np.ndarray, t_start: np.datetime64) -> None:
    """Write the late facts into ``tables``: ``added_at`` and the late parties, mediations'
    ``outcome_at``, and the ``person_attributes`` and ``incident_notes`` tables."""
    def ts(d):
        return _days_to_ts(t_start, d)

    parties, mediations = tables["incident_parties"], tables["mediations"]
    added = pd.Series(ts(lf["party_added"]))
    li, lp, lt = lf["late_parties"]
    parties = pd.concat([
        parties.assign(added_at=added.iloc[np.argsort(pinc, kind="stable")].to_numpy()),
        pd.DataFrame({"incident_id": iid[li], "party_id": pid_str[lp], "party_type": "person", "role": "other",
                      "added_at": ts(lt)})], ignore_index=True)
    tables["incident_parties"] = parties
    tables["mediations"] = mediations.assign(outcome_at=ts(lf["outcome_at"]))
    ap, aa, av, at = lf["attributes"]
    tables["person_attributes"] = pd.DataFrame({"person_id": pid_str[ap], "attribute": aa, "value": av,
                                                "recorded_at": ts(at)}).sort_values("recorded_at",
                                                                                    ignore_index=True)
    ni, nt, nx = lf["notes"]
    no = np.argsort(nt, kind="stable")
    tables["incident_notes"] = pd.DataFrame({
        "note_id": _fmt_ids("N", len(ni), max(7, len(str(len(ni))))), "incident_id": iid[ni[no]],
        "recorded_at": ts(nt[no]), "text": nx[no]})
