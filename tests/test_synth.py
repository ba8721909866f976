"""Tests of the synthetic district generator: contract shape, integrity and the mechanism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import KEY

from escalation_risk.contract import TABLES
from escalation_risk.synth import generate_district, generate_tables, write_tables

N = 2000
END = pd.Timestamp("2025-07-01")  # export night: the day after the default end


@pytest.fixture(scope="module")
def district():
    return generate_tables(N, seed=11)


@pytest.fixture(scope="module")
def tables(district):
    return district[0]


@pytest.fixture(scope="module")
def truth(district):
    return district[1]


def _labels(tables: dict[str, pd.DataFrame], horizon_days: int = 90) -> pd.DataFrame:
    """The contract's default label, for disputes with a full horizon before the export."""
    inc, par = tables["incidents"], tables["incident_parties"]
    d = inc[inc.kind == "dispute"][["incident_id", "reported_at", "category"]]
    c = inc[inc.kind == "criminal_case"][["incident_id", "occurred_at", "related_incident_id"]]
    pp = par[par.party_type == "person"]
    dp = pp.merge(d, on="incident_id")
    cp = pp.merge(c, on="incident_id")
    m = dp.merge(cp, on="party_id", suffixes=("", "_c"))
    win = pd.Timedelta(days=horizon_days)
    m = m[(m.occurred_at > m.reported_at) & (m.occurred_at <= m.reported_at + win)]
    r = c.merge(d, left_on="related_incident_id", right_on="incident_id", suffixes=("_c", ""))
    r = r[(r.occurred_at > r.reported_at) & (r.occurred_at <= r.reported_at + win)]
    pos = set(m.incident_id) | set(r.incident_id)
    d = d[d.reported_at <= END - win].copy()
    d["y"] = d.incident_id.isin(pos)
    return d


def test_same_seed_same_frames_other_seed_differs():
    a, ta = generate_tables(300, seed=5)
    b, tb = generate_tables(300, seed=5)
    c, _ = generate_tables(300, seed=6)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    pd.testing.assert_frame_equal(ta, tb)
    assert not a["incidents"].equals(c["incidents"])


def test_every_table_has_exactly_the_contract_columns(tables):
    assert set(tables) == set(TABLES)
    for name, df in tables.items():
        assert list(df.columns) == TABLES[name].column_names, name
        assert len(df) > 0, name


def test_codes_keys_and_required_columns(tables):
    for name, df in tables.items():
        for col in TABLES[name].columns:
            s = df[col.name]
            if col.required:
                assert s.notna().all(), (name, col.name)
            if col.unique:
                assert s.is_unique, (name, col.name)
            if col.codes is not None:
                bad = set(s.dropna().unique()) - set(col.codes)
                assert not bad, (name, col.name, bad)
            if col.kind == "timestamp":
                assert pd.api.types.is_datetime64_any_dtype(s), (name, col.name, s.dtype)
            if col.min is not None:
                assert (s.dropna() >= col.min).all(), (name, col.name)
    inc = tables["incidents"]
    crime = inc.kind == "criminal_case"
    from escalation_risk.contract import DISPUTE_CATEGORIES, OFFENCE_CATEGORIES
    assert inc.loc[crime, "category"].isin(OFFENCE_CATEGORIES).all()
    assert inc.loc[~crime, "category"].isin(DISPUTE_CATEGORIES).all()


def test_references_resolve(tables):
    for name, df in tables.items():
        for col in TABLES[name].columns:
            if col.ref is None:
                continue
            t, c = col.ref
            vals = df[col.name].dropna()
            assert vals.isin(tables[t][c]).all(), (name, col.name)
    par = tables["incident_parties"]
    people = par.party_type == "person"
    assert par.loc[people, "party_id"].isin(tables["persons"].person_id).all()
    assert par.loc[~people, "party_id"].isin(tables["organizations"].org_id).all()
    assert not par.duplicated(["incident_id", "party_id"]).any()
    assert tables["incidents"].incident_id.isin(par.incident_id).all()


def test_times_are_consistent(tables):
    inc = tables["incidents"]
    assert (inc.reported_at >= inc.occurred_at).all()
    assert (inc.reported_at < END).all()
    closed = inc.closed_at.notna()
    assert (inc.closed_at[closed] >= inc.occurred_at[closed]).all()
    med = tables["mediations"].merge(inc[["incident_id", "reported_at", "kind"]], on="incident_id")
    assert (med.held_at >= med.reported_at).all()
    assert (med.kind == "dispute").all()
    hm = tables["household_members"]
    both = hm.start_date.notna() & hm.end_date.notna()
    assert (hm.end_date[both] >= hm.start_date[both]).all()
    # related links point back in time
    rel = inc.dropna(subset=["related_incident_id"]).merge(
        inc[["incident_id", "reported_at"]], left_on="related_incident_id", right_on="incident_id", suffixes=("", "_r"))
    assert (rel.reported_at_r <= rel.reported_at).all()


def test_duplicate_person_records_are_in_truth(tables, truth):
    persons = tables["persons"]
    assert set(truth.person_id) == set(persons.person_id)
    sizes = truth.groupby("true_person").size()
    dup_share = (sizes > 1).sum() / truth.true_person.nunique()
    assert 0.02 < dup_share < 0.05
    dup = truth[truth.true_person.isin(sizes[sizes > 1].index)].merge(persons, on="person_id")
    g = dup.groupby("true_person")
    assert (g.name.nunique() == 1).all() and (g.birth_year.nunique() == 1).all()
    # most pairs share the id number; about a third of the police copies lack it but share name+year+phone
    no_id = dup[dup.id_number.isna()]
    assert len(no_id) > 0
    same_phone = no_id.merge(dup, on="true_person", suffixes=("", "_o"))
    same_phone = same_phone[same_phone.person_id != same_phone.person_id_o]
    assert (same_phone.phone == same_phone.phone_o).mean() > 0.9
    # both records of a person appear as incident parties
    parties = set(tables["incident_parties"].party_id)
    both = g.person_id.agg(lambda s: all(x in parties for x in s))
    assert both.sum() >= 10


def test_namesakes_and_missing_pii(tables, truth):
    p = tables["persons"].merge(truth, on="person_id")
    per_key = p.groupby(["name", "birth_year"]).true_person.nunique()
    assert (per_key > 1).sum() >= 3, "need different people sharing name and birth year"
    assert p.phone.isna().any() and p.id_number.isna().any()
    ids = p.id_number.dropna()
    assert ids.str.fullmatch(r"\d{17}[\dX]").all()
    digits = np.array([[int(ch) for ch in s[:17]] for s in ids.head(200)])
    w = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    check = np.array(list("10X98765432"))[(digits @ w) % 11]
    assert (check == ids.head(200).str[-1].to_numpy()).all()
    assert p.phone.dropna().str.fullmatch(r"1\d{10}").all()
    with_id = p.dropna(subset=["id_number"])
    assert (with_id.id_number.str[6:10].astype(int) == with_id.birth_year.astype(int)).all()


def test_escalation_rate_and_open_backlog_are_plausible(tables):
    lab = _labels(tables)
    assert 0.03 < lab.y.mean() < 0.12
    inc = tables["incidents"]
    d = inc[inc.kind == "dispute"]
    open_now = (d.closed_at.isna()).sum()
    assert 0.1 * N < open_now < 0.35 * N
    assert 0.1 < d.closed_at.isna().mean() < 0.3
    per_person = len(inc) / N
    assert 1.5 < per_person < 2.8
    # family conflicts escalate more often than consumer-finance ones
    by_cat = lab.groupby("category").y.mean()
    assert by_cat["marriage_family"] > by_cat["consumer_finance"]


def test_heat_shows_in_the_record(tables):
    # a larger district: the lift of threat words is real but modest (~1.6x), noisy at 2,000 people
    big, _ = generate_tables(10000, seed=1)
    lab = _labels(big)
    desc = big["incidents"].set_index("incident_id").loc[lab.incident_id, "description"]
    threat = desc.str.contains("报复|要他好看|付出代价|弄死|revenge|make them pay").to_numpy()
    y = lab.y.to_numpy()
    assert y[threat].mean() > 1.2 * y[~threat].mean()
    # follow-ups carry the dispute's parties and often name it
    fu = tables["incidents"].query("kind in ['police_call', 'complaint', 'petition']")
    linked = fu.related_incident_id.notna().mean()
    assert 0.2 < linked < 0.8
    crime = tables["incidents"].query("kind == 'criminal_case'")
    assert 0.1 < crime.related_incident_id.notna().mean() < 0.7


def test_group_wage_disputes_and_mediations(tables):
    inc, par, org = tables["incidents"], tables["incident_parties"], tables["organizations"]
    wage = inc[(inc.kind == "dispute") & (inc.category == "labor_wage")]
    comp = par[par.incident_id.isin(wage.incident_id) & (par.role == "complainant")].groupby("incident_id").size()
    assert (comp >= 3).any()
    resp = par[par.incident_id.isin(wage.incident_id) & (par.party_type == "organization")]
    assert resp.party_id.isin(org.org_id[org.org_type == "enterprise"]).all()
    assert set(tables["mediations"].outcome) == {"agreement", "partial", "failed", "pending"}
    assert {"spouse", "ex_spouse", "parent_child", "neighbor", "landlord_tenant", "employer_employee",
            "creditor_debtor", "acquaintance"} <= set(tables["relations"].relation)


def test_flags_are_point_in_time(tables):
    flags, inc, par = tables["person_flags"], tables["incidents"], tables["incident_parties"]
    assert {"prior_violence", "mental_health", "substance", "community_correction", "key_person"} <= set(flags.flag)
    susp = par[par.role == "suspect"].merge(inc[["incident_id", "reported_at"]], on="incident_id")
    first = susp.groupby("party_id").reported_at.min()
    pv = flags[flags.flag == "prior_violence"].merge(first.rename("first_case"), left_on="person_id", right_index=True)
    assert (pv.recorded_at > pv.first_case).any(), "some violence flags come after the case"
    assert (flags.recorded_at < pd.Timestamp("2021-07-01")).any(), "some flags predate the data"


def test_both_languages_in_descriptions(tables):
    desc = tables["incidents"].description.dropna()
    en = desc.str.contains(r"^[\x00-\x7f]+$")
    assert 0.05 < en.mean() < 0.15
    assert desc[~en].str.contains("[\u4e00-\u9fff]").all()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_round_trip_through_files(tmp_path, fmt):
    tabs, truth = generate_tables(300, seed=2)
    out = write_tables(tabs, tmp_path / fmt, fmt=fmt, truth=truth)
    assert sorted(p.stem for p in out.glob(f"*.{fmt}")) == sorted(tabs)
    assert (out / "truth" / f"person_truth.{fmt}").exists()
    for name, df in tabs.items():
        path = out / f"{name}.{fmt}"
        if fmt == "parquet":
            back = pd.read_parquet(path)
        else:
            back = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        assert list(back.columns) == list(df.columns)
        assert len(back) == len(df)
        for col in TABLES[name].columns:
            if col.kind == "timestamp":
                got = pd.to_datetime(back[col.name])
                pd.testing.assert_series_equal(got, df[col.name], check_dtype=False, check_names=False)
            elif col.kind in ("id", "code", "pii", "str", "text"):
                want = df[col.name].astype(object).where(df[col.name].notna(), None)
                got = back[col.name].astype(object).where(back[col.name].notna(), None)
                assert got.tolist() == want.tolist(), (name, col.name)


def test_generate_district_validates_clean():
    ds = generate_district(600, seed=4, pseudonym_key=KEY)
    summary = ds.summary()
    assert (summary.quarantined == 0).all(), summary
    raw, _ = generate_tables(600, seed=4)
    assert len(ds.incidents) == len(raw["incidents"])
    # PII is pseudonymised on load
    assert not ds.persons.name.isin(raw["persons"].name).any()


def test_rejects_nonsense_arguments():
    with pytest.raises(ValueError, match="n_persons"):
        generate_tables(3)
    with pytest.raises(ValueError, match="end must be after start"):
        generate_tables(100, start="2025-01-01", end="2024-01-01")


def test_realistic_residence_moves_households_and_houses_police_records():
    plain, truth = generate_tables(3000, seed=3)
    real, truth_r = generate_tables(3000, seed=3, realistic_residence=True)
    # Its own random stream: every other table, and the truth, as without the option.
    pd.testing.assert_frame_equal(truth, truth_r)
    for name in plain:
        if name not in ("households", "household_members"):
            pd.testing.assert_frame_equal(plain[name], real[name])
    hh, mem, places = real["households"], real["household_members"], real["places"]
    assert hh["household_id"].is_unique and mem["household_id"].isin(hh["household_id"]).all()
    assert not (mem["start_date"] > mem["end_date"]).any()
    # Police records (a person's second person_id) are members of households now, and none was before.
    # Without the option every first record is in a household, and no police record is.
    twice = truth_r[truth_r["true_person"].duplicated(keep=False)]
    second = twice[~twice["person_id"].isin(plain["household_members"]["person_id"])]["person_id"]
    assert len(second) == twice["true_person"].nunique() > 50
    housed = mem[mem["person_id"].isin(second)]
    assert 0.2 < housed["person_id"].nunique() / len(second) < 0.5
    # ...mostly in a household their person's first record is a member of (now or before a move);
    # some in another household of the same grid (a relative's address), as "other".
    tp = truth_r.set_index("person_id")["true_person"]
    firsts = mem[~mem["person_id"].isin(second)]
    first_hh = set(zip(firsts["household_id"], firsts["person_id"].map(tp)))
    same = np.array([(h, tp[p]) in first_hh for h, p in zip(housed["household_id"], housed["person_id"])])
    assert 0.75 < same.mean() < 0.95
    assert (housed["role"][~same] == "other").all()
    grid_of = hh.set_index("household_id")["place_id"].map(places.set_index("place_id")["grid_id"])
    own = firsts.assign(t=firsts["person_id"].map(tp)).groupby("t")["household_id"].first().map(grid_of)
    assert (housed["household_id"][~same].map(grid_of).to_numpy()
            == housed["person_id"][~same].map(tp).map(own).to_numpy()).all()
    # Households that moved: an earlier home in another grid, ended on the day the current one starts.
    new = hh[~hh["household_id"].isin(plain["households"]["household_id"])]
    assert len(new) > 0
    grid = places.set_index("place_id")["grid_id"]
    old = mem[mem["household_id"].isin(new["household_id"]) & ~mem["person_id"].isin(second)]
    assert old["end_date"].notna().all()
    now = mem[mem["person_id"].isin(old["person_id"]) & ~mem["household_id"].isin(new["household_id"])]
    moved = old.merge(now, on="person_id", suffixes=("_old", "_now"))
    assert (moved["end_date_old"] == moved["start_date_now"]).all()
    home = hh.set_index("household_id")["place_id"].map(grid)
    assert (moved["household_id_old"].map(home) != moved["household_id_now"].map(home)).mean() > 0.9
    # Nobody's incident comes before their household's move (it was simulated at the current home).
    par = real["incident_parties"].merge(real["incidents"][["incident_id", "reported_at"]], on="incident_id")
    first_inc = par.groupby("party_id")["reported_at"].min()
    assert not (moved["person_id"].map(first_inc) < moved["start_date_now"]).any()
