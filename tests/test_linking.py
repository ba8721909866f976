"""Record linkage: which person records are one person, and why."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import KEY, valid_id

from escalation_risk.dataset import Dataset
from escalation_risk.linking import RULE_FALLBACK, RULE_ID, explain_links, link_persons

COLUMNS = ["person_id", "name", "birth_year", "phone", "id_number"]


def dataset(rows: list[tuple]) -> Dataset:
    persons = pd.DataFrame(rows, columns=COLUMNS)
    # Quarantine, as a nightly load would: an id that fails its check is reported and
    # blanked, while its linkage keys keep it as evidence of a typo.
    return Dataset.from_frames(
        pseudonym_key=KEY, persons=persons, errors="quarantine",
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        incidents=pd.DataFrame({"incident_id": ["i"], "kind": "dispute", "category": "debt",
                                "occurred_at": "2024-01-01", "reported_at": "2024-01-01"}),
        incident_parties=pd.DataFrame({"incident_id": ["i"], "party_id": [rows[0][0]], "party_type": "person"}),
    )


def groups(key: pd.Series) -> set[frozenset[str]]:
    return {frozenset(v) for v in key.groupby(key).groups.values()}


def same(key: pd.Series, *ids: str) -> bool:
    return key.loc[list(ids)].nunique() == 1


def test_equal_id_numbers_link_whatever_else_differs():
    # Formatting differences in the id number are normalised before hashing; two valid,
    # different id numbers are two people even when name, birth year and phone agree.
    key = link_persons(dataset([
        ("police-1", "Wang Wei", 1980, "138 0000 0001", "11010119800101007x"),
        ("mediation-7", "王伟", None, None, "110101 19800101007X"),
        ("other", "Wang Wei", 1980, "13800000001", "220101198001010016"),
    ]))
    assert same(key, "police-1", "mediation-7")
    assert key["police-1"] == "mediation-7"  # the smallest person_id names the group
    assert key["other"] == "other"


def test_name_birth_year_phone_links_a_record_without_id():
    key = link_persons(dataset([
        ("a", "Li Na", 1982, "13800000002", valid_id("ID2")),
        ("b", "Li Na", 1982, "+86 138-0000-0002", None),  # same phone once normalised
        ("c", "Li Na", 1982, "13800000002", None),
    ]))
    assert same(key, "a", "b", "c")


def test_two_records_without_id_link_on_the_triple():
    key = link_persons(dataset([("a", "Li Na", 1982, "13900000009", None), ("b", "Li Na", 1982, "13900000009", None)]))
    assert same(key, "a", "b")


def test_namesakes_are_not_merged():
    key = link_persons(dataset([
        ("a", "Zhang Wei", 1985, "13900000001", valid_id("IDA")),
        ("b", "Zhang Wei", 1985, "13900000002", valid_id("IDB")),  # another phone, another id
        ("c", "Zhang Wei", 1985, "13900000003", None),  # another phone, no id
        ("d", "Zhang Wei", 1985, "13900000001", valid_id("IDD")),  # same phone, different id: still two people
    ]))
    assert key.nunique() == 4


def test_name_and_birth_year_alone_do_not_link():
    key = link_persons(dataset([
        ("a", "Zhang Wei", 1985, None, valid_id("IDA")),
        ("b", "Zhang Wei", 1985, None, None),
        ("c", "Zhang Wei", 1985, "13900000003", None),
    ]))
    assert key.nunique() == 3


def test_ambiguous_triple_joins_nobody():
    # The phone is shared by two people with different id numbers (a family phone):
    # a record carrying only that triple could be either, so it stays alone.
    key = link_persons(dataset([
        ("a", "Chen Jie", 1990, "13700000000", valid_id("ID-A")),
        ("b", "Chen Jie", 1990, "13700000000", valid_id("ID-B")),
        ("c", "Chen Jie", 1990, "13700000000", None),
    ]))
    assert key.nunique() == 3
    assert explain_links(dataset([
        ("a", "Chen Jie", 1990, "13700000000", valid_id("ID-A")),
        ("b", "Chen Jie", 1990, "13700000000", valid_id("ID-B")),
        ("c", "Chen Jie", 1990, "13700000000", None),
    ])).empty


def test_records_missing_fields_stand_alone():
    key = link_persons(dataset([
        ("a", None, None, None, None), ("b", None, None, None, None),
        ("c", "Liu Yang", 1970, None, None), ("d", "Liu Yang", 1970, None, None),
        ("e", "Liu Yang", None, "13600000000", None), ("f", "Liu Yang", None, "13600000000", None),
    ]))
    assert key.nunique() == 6
    assert (key.index == key.to_numpy()).all()


def test_result_shape():
    key = link_persons(dataset([("b", None, None, None, valid_id("X")), ("a", None, None, None, valid_id("X"))]))
    assert key.name == "person_key" and key.index.name == "person_id"
    assert list(key.index) == ["b", "a"]
    assert set(key) == {"a"}


ROWS = [
    ("p01", "Wang Wei", 1980, "13800000001", valid_id("ID1")),
    ("p02", "Wang Wei", 1980, "13800000001", None),
    ("p03", "Wang Wei", 1980, None, valid_id("ID1")),
    ("p04", "Li Na", 1982, "13800000002", None),
    ("p05", "Li Na", 1982, "13800000002", None),
    ("p06", "Zhang Wei", 1985, "13900000001", valid_id("IDA")),
    ("p07", "Zhang Wei", 1985, "13900000002", valid_id("IDB")),
    ("p08", None, None, None, None),
    ("p09", "Chen Jie", 1990, "13700000000", valid_id("ID-A")),
    ("p10", "Chen Jie", 1990, "13700000000", valid_id("ID-B")),
    ("p11", "Chen Jie", 1990, "13700000000", None),
]


def test_deterministic_and_order_free():
    a = link_persons(dataset(ROWS))
    b = link_persons(dataset(ROWS))
    pd.testing.assert_series_equal(a, b)
    rng = np.random.default_rng(0)
    for _ in range(5):
        shuffled = [ROWS[i] for i in rng.permutation(len(ROWS))]
        c = link_persons(dataset(shuffled))
        pd.testing.assert_series_equal(c.sort_index(), a.sort_index())
    assert groups(a) == {frozenset({"p01", "p02", "p03"}), frozenset({"p04", "p05"}), frozenset({"p06"}),
                         frozenset({"p07"}), frozenset({"p08"}), frozenset({"p09"}), frozenset({"p10"}),
                         frozenset({"p11"})}


def test_result_is_cached_on_the_dataset():
    ds = dataset(ROWS)
    assert link_persons(ds) is link_persons(ds)


def test_incremental_linking_keeps_keys_and_attaches_new_records():
    before = link_persons(dataset(ROWS))
    new = ROWS + [
        ("a00", "Wang Wei", 1980, None, valid_id("ID1")),  # a later duplicate whose id sorts first
        ("a01", "Li Na", 1982, "13800000002", None),  # joins p04/p05 by the triple
        ("z99", "Someone New", 2000, None, valid_id("IDZ")),  # a new person
    ]
    fresh = link_persons(dataset(new))
    assert fresh["p01"] == "a00"  # without the old keys the group would be renamed...
    after = link_persons(dataset(new), existing=before)
    assert (after.loc[before.index] == before).all()  # ...with them, nobody's key changes
    assert after["a00"] == before["p01"] == "p01"
    assert after["a01"] == before["p04"]
    assert after["z99"] == "z99"


def test_incremental_with_unknown_records_only():
    before = link_persons(dataset(ROWS[:3]))
    after = link_persons(dataset(ROWS[3:]), existing=before)
    assert set(after) == set(link_persons(dataset(ROWS[3:])))


def test_explain_links_names_the_rule():
    ds = dataset(ROWS)
    ex = explain_links(ds)
    assert list(ex.columns) == ["person_key", "person_id", "linked_to", "rule", "weight", "match_probability",
                                "id_number", "name", "birth", "phone", "gender", "hukou", "employment", "counterparty",
                                "place", "household_held", "incident_kinds"]
    rules = {(r.person_id, r.linked_to): r.rule for r in ex.itertuples()}
    assert rules[("p03", "p01")] == RULE_ID
    assert rules[("p02", "p01")] == RULE_FALLBACK
    assert rules[("p05", "p04")] == RULE_FALLBACK
    assert set(ex["person_key"]) == {"p01", "p04"}
    assert not set(ex["person_id"]) & {"p06", "p07", "p08", "p09", "p10", "p11"}
    # Every linked record is explained, and every explanation is within one group.
    key = link_persons(ds)
    linked = key[key.map(key.value_counts()) > 1].index
    assert set(ex["person_id"]) | set(ex["linked_to"]) == set(linked)
    assert (ex["person_id"].map(key) == ex["linked_to"].map(key)).all()


def test_no_raw_identifier_reaches_the_output():
    ex = explain_links(dataset(ROWS))
    text = ex.to_csv() + link_persons(dataset(ROWS)).to_csv()
    for raw in ("Wang Wei", "13800000001", valid_id("ID1")):
        assert raw not in text


@pytest.mark.parametrize("n", [2000])
def test_many_records_link_vectorised(n):
    rng = np.random.default_rng(1)
    base = rng.integers(0, n // 2, n)
    rows = [(f"r{i:05d}", f"name{b}", 1950 + b % 50, f"13{b:09d}", valid_id(f"ID{b}") if rng.random() < 0.6 else None)
            for i, b in enumerate(base)]
    key = link_persons(dataset(rows))
    truth = pd.Series(base, index=[r[0] for r in rows])
    # Each true person maps to exactly one key and no key spans two people.
    assert (truth.groupby(key.reindex(truth.index).to_numpy()).nunique() == 1).all()
    assert (key.reindex(truth.index).groupby(truth.to_numpy()).nunique() == 1).all()


def test_incremental_split_never_leaves_two_people_under_one_key():
    # p5 and p9 shared an id number; the id of p9 was then corrected. The old key must
    # not stay on both: it stays with the record it was named after.
    before = link_persons(dataset([("p5", "A", 1980, "13900000001", valid_id("X")),
                                   ("p9", "A", 1981, "13900000002", valid_id("X")),
                                   ("p7", "A", 1982, "13900000003", valid_id("X"))]))
    assert set(before) == {"p5"}
    after = link_persons(dataset([("p5", "A", 1980, "13900000001", valid_id("X")),
                                  ("p9", "A", 1981, "13900000002", valid_id("Y")),
                                  ("p7", "A", 1982, "13900000003", valid_id("Y"))]), existing=before)
    assert after["p5"] == "p5"
    assert after["p9"] == after["p7"] == "p7"
    # Named record gone from its old group: the first group by position keeps the key.
    after = link_persons(dataset([("p9", "A", 1981, "13900000002", valid_id("Y")),
                                  ("p7", "A", 1982, "13900000003", valid_id("Z"))]), existing=before)
    assert after.nunique() == 2 and "p5" in set(after)


def test_incremental_merge_of_two_old_groups_takes_one_old_key():
    before = link_persons(dataset([("p1", "B", 1980, "13900000001", valid_id("X")),
                                   ("p2", "B", 1981, "13900000002", None)]))
    assert before.nunique() == 2
    after = link_persons(dataset([("p1", "B", 1980, "13900000001", valid_id("X")),
                                  ("p2", "B", 1981, "13900000002", None),
                                  ("p0", "B", 1981, "13900000002", valid_id("X"))]), existing=before)
    assert set(after) == {"p1"}


def test_sample_district_linkage_against_truth():
    """On the committed sample: every duplicated person found, no two people merged."""
    from pathlib import Path

    import pandas as pd

    from escalation_risk import load_dataset
    from escalation_risk.linking import link_persons

    root = Path(__file__).resolve().parents[1] / "data" / "sample"
    ds = load_dataset(root, pseudonym_key=KEY)
    key = link_persons(ds)
    truth = pd.read_parquet(root / "truth" / "person_truth.parquet").set_index("person_id")["true_person"]
    df = pd.DataFrame({"key": key, "true": truth.reindex(key.index)})
    assert df["true"].notna().all()
    dup = df[df.groupby("true")["key"].transform("size") > 1]
    recall = dup.groupby("true")["key"].nunique().eq(1).mean()
    assert dup["true"].nunique() > 100
    assert recall >= 0.99
    assert (df.groupby("key")["true"].nunique() == 1).all()


# --------------------------------------------------------------------------- normalisation

from escalation_risk.linking import LEVELS, LinkageModel, link_keys, linkage_summary  # noqa: E402
from escalation_risk.normalize import (  # noqa: E402
    ID_BAD,
    ID_OTHER,
    ID_VALID,
    gb11643_check_digit,
    id_birth_date,
    id_kind,
    id_sex,
    is_valid_id,
    linkage_keys,
    name_pinyin,
    normalise_id,
    normalise_name,
    normalise_phone,
)

# The worked example of GB 11643-1999: 11010519491231002X, a woman born 1949-12-31.
STD_ID = "11010519491231002X"


def test_check_digit_known_answers():
    assert gb11643_check_digit("11010519491231002") == "X"
    assert gb11643_check_digit("44052418800101001") == "4"  # 195 mod 11 = 8 -> "4"
    assert is_valid_id(STD_ID) and is_valid_id(STD_ID.lower())
    assert not is_valid_id("110105194912310021")  # one check digit off
    assert not is_valid_id("11010519491231003X")  # one body digit off: the check catches it
    with pytest.raises(ValueError):
        gb11643_check_digit("1101051949123100")


def test_fifteen_digit_ids_become_eighteen():
    # The 15-digit form drops the century and the check digit.
    out = normalise_id(pd.Series(["110105491231002", "440524800101001"]))
    assert list(out) == [STD_ID, "440524198001010013"]  # 196 mod 11 = 9 -> "3"
    assert (id_kind(out) == ID_VALID).all()


def test_id_formatting_is_normalised():
    raw = pd.Series(["１１０１０５１９４９１２３１００２ｘ", "110105 19491231 002x", "110105-19491231-002X",
                     " 11010519491231002x ", "", None, "ID-A", "IDA"])
    out = normalise_id(raw)
    assert list(out[:4]) == [STD_ID] * 4
    assert out[4] is None and out[5] is None
    assert out[6] != out[7]  # separators go only from resident ids: two other documents stay two
    kinds = id_kind(out)
    assert list(kinds[6:]) == [ID_OTHER, ID_OTHER]
    assert id_kind(normalise_id(pd.Series(["110105194912310021", "110105194913310023"]))).tolist() == \
        [ID_BAD, ID_BAD]  # a failing check digit; an impossible birth date


def test_birth_date_and_sex_from_the_id():
    ids = normalise_id(pd.Series([STD_ID, "440524198001010014", "ID-A", None]))
    assert list(id_birth_date(ids)) == ["19491231", "19800101", None, None]
    assert list(id_sex(ids)) == [0, 1, -1, -1]  # 17th digit: even female, odd male


def test_names_and_phones_are_normalised():
    names = normalise_name(pd.Series(["陳 偉", "王\u3000伟", "Wang Wei", "张伟", None]))
    assert list(names) == ["陈伟", "王伟", "wangwei", "张伟", None]
    tone, fuzzy = name_pinyin(pd.Series(["张伟", "章玮", "陈伟", "程伟", "wangwei", "王伟"]))
    assert tone[0] == tone[1] == "zhangwei"  # homophones
    assert tone[2] != tone[3] and fuzzy[2] == fuzzy[3]  # chen/cheng: near homophones
    assert tone[4] == tone[5]
    phones = normalise_phone(pd.Series(["+86 138-0000-0001", "１３８００００００01", "0086 13800000001", " "]))
    assert list(phones) == ["13800000001"] * 3 + [None]


def test_linkage_keys_hold_no_raw_value():
    raw = pd.DataFrame({"name": ["张伟"], "id_number": [STD_ID], "phone": ["13800000001"]})
    keys = linkage_keys(raw, b"k" * 32)
    text = keys.to_csv()
    for v in ("张伟", "zhangwei", STD_ID, "19491231", "13800000001", "110105"):
        assert v not in text
    other = linkage_keys(raw, b"j" * 32)
    assert (keys["lk_id"] != other["lk_id"]).all()  # keyed: another key, other hashes


# --------------------------------------------------------------------------- linkage decisions

P = ["person_id", "name", "birth_year", "phone", "id_number", "gender"]


def people(rows: list[tuple], background: int = 0, seed: int = 0) -> Dataset:
    """A dataset of ``rows`` plus ``background`` unrelated people (realistic frequencies)."""
    rng = np.random.default_rng(seed)
    extra = []
    for b in range(background):
        body = f"3301{rng.integers(10, 99)}{rng.integers(1940, 2005)}{rng.integers(1, 13):02d}" \
               f"{rng.integers(1, 29):02d}{rng.integers(0, 1000):03d}"
        extra.append((f"bg{b:05d}", f"姓{b}名", int(body[6:10]), f"139{rng.integers(0, 10**8):08d}",
                      body + gb11643_check_digit(body), "male" if int(body[16]) % 2 else "female"))
    persons = pd.DataFrame(rows + extra, columns=P)
    # Quarantine, as a nightly load would: an id that fails its check is reported and
    # blanked, while its linkage keys keep it as evidence of a typo.
    return Dataset.from_frames(
        pseudonym_key=KEY, persons=persons, errors="quarantine",
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        incidents=pd.DataFrame({"incident_id": ["i"], "kind": "dispute", "category": "debt",
                                "occurred_at": "2024-01-01", "reported_at": "2024-01-01"}),
        incident_parties=pd.DataFrame({"incident_id": ["i"], "party_id": [persons["person_id"][0]],
                                       "party_type": "person"}),
    )


def idn(body17: str) -> str:
    return body17 + gb11643_check_digit(body17)


A = idn("33010619800315123")


def test_old_and_new_id_of_one_person_link():
    ds = people([("a", "张伟", 1980, None, A, "male"), ("b", "張偉", None, None, "330106800315123", None)], 500)
    key = link_persons(ds)
    assert key["a"] == key["b"]
    assert explain_links(ds).set_index("person_id").loc["b", "rule"] == "id_number"


def test_check_digit_failure_is_a_typo_not_another_person():
    typo_check = A[:17] + ("0" if A[17] != "0" else "1")
    typo_body = A[:15] + str((int(A[15]) + 3) % 10) + A[16:]  # a body digit, check not recomputed
    ds = people([("a", "张伟", 1980, None, A, "male"), ("b", "张伟", 1980, None, typo_check, "male"),
                 ("c", "张伟", 1980, None, typo_body, "male")], 500)
    key = link_persons(ds)
    assert key["a"] == key["b"] == key["c"]
    ex = explain_links(ds).set_index(["person_id", "linked_to"])
    assert ex.loc[("b", "a"), "id_number"] == "check_digit"
    assert ex.loc[("c", "a"), "id_number"] == "typo"


def test_two_valid_ids_are_two_people_unless_one_transposition_and_all_else_agrees():
    swapped = idn(A[:14] + A[15] + A[14] + A[16])  # two sequence digits swapped, check recomputed
    assert is_valid_id(swapped) and swapped != A
    other = idn(A[:14] + "777")
    rows = [("a", "张伟", 1980, "13811112222", A, "male"), ("b", "张伟", 1980, "13811112222", swapped, "male"),
            ("c", "张伟", 1980, "13811112222", other, "male")]
    key = link_persons(people(rows, 500))
    assert key["a"] == key["b"] != key["c"]
    ex = explain_links(people(rows, 500))
    assert set(ex["id_number"]) == {"transposed"}
    # The same transposition with another phone: two people.
    rows[1] = ("b", "张伟", 1980, "13899998888", swapped, "male")
    key = link_persons(people(rows, 500))
    assert len({key["a"], key["b"], key["c"]}) == 3


def test_an_id_typed_onto_another_persons_number_does_not_merge_two_people():
    # Same id number, but nothing else agrees: a mistyped id that landed on a real one.
    rows = [("a", "张春磊", 1994, "17770771634", A, "male"), ("b", "李丽云", 1994, "13079409668", A, "male"),
            ("c", "张春磊", None, None, A, None)]
    key = link_persons(people(rows, 500))
    assert key["a"] == key["c"] != key["b"]


def test_homophone_and_traditional_names_link_with_birth_and_phone():
    rows = [("a", "张伟", 1980, "13811112222", None, "male"), ("b", "章玮", 1980, "+86 138 1111 2222", None, "male"),
            ("c", "陳偉", 1975, "13722223333", None, "male"), ("d", "陈伟", 1975, "13722223333", None, "male"),
            ("e", "程伟", 1975, "13722223333", None, "male"),
            ("f", "李娜", 1990, "13633334444", None, "female"), ("g", "王芳", 1990, "13633334444", None, "female")]
    ds = people(rows, 500)
    key = link_persons(ds)
    assert key["a"] == key["b"]
    assert key["c"] == key["d"] == key["e"]
    assert key["f"] != key["g"]  # one family phone, two names: two people
    # A family phone, one surname, one birth year, homophone given names, another sex: two people.
    key = link_persons(people([("h", "王华", 1979, "18533900879", None, "male"),
                               ("w", "王花", 1979, "18533900879", None, "female")], 500))
    assert key["h"] != key["w"]
    lv = explain_links(ds).set_index(["person_id", "linked_to"])
    assert lv.loc[("b", "a"), "name"] == "pinyin"
    assert lv.loc[("d", "c"), "name"] == "exact"
    assert lv.loc[("e", "c"), "name"] == "fuzzy_pinyin"


def test_namesakes_with_a_common_name_and_birth_year_stay_apart():
    # Forty people called 张伟 born in 1985, each with an own phone or none, some with an
    # id number: nothing but name and birth year (and gender) agrees between any two.
    rng = np.random.default_rng(3)
    rows = []
    for k in range(40):
        body = f"330106{1985}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}{k:03d}"
        rows.append((f"z{k:02d}", "张伟", 1985, f"1370000{k:04d}" if k % 3 else None,
                     idn(body[:17]) if k % 2 else None, "male"))
    key = link_persons(people(rows, 2000))
    assert key.loc[[r[0] for r in rows]].nunique() == 40


def test_chaining_is_guarded():
    # c links a by the phone, d links b by an id typo, c and d share another phone: the
    # chain a-c-d-b would put two valid id numbers in one group. It must not.
    b_id = idn("33010619800315456")
    d_id = b_id[:15] + str((int(b_id[15]) + 1) % 10) + b_id[16:]
    rows = [("a", "张伟", 1980, "13811112222", A, "male"), ("b", "张伟", 1980, None, b_id, "male"),
            ("c", "张伟", 1980, "13811112222", None, "male"), ("d", "张伟", 1980, "13811112222", d_id, "male")]
    ds = people(rows, 500)
    key = link_persons(ds)
    assert key["a"] != key["b"]
    assert linkage_summary(ds)["components_reclustered"] >= 1
    # No group anywhere holds two different valid id numbers.
    p = ds.persons.assign(key=key.reindex(ds.persons["person_id"]).to_numpy())
    valid = p[p["lk_id_kind"] == ID_VALID]
    assert (valid.groupby("key")["lk_id"].nunique() <= 1).all()


def test_explain_links_shows_levels_never_values():
    rows = [("a", "张伟", 1980, "13811112222", A, "male"), ("b", "章伟", 1980, "13811112222", None, "male")]
    ex = explain_links(people(rows, 200))
    assert len(ex) == 1
    for f in ("id_number", "name", "birth", "phone", "gender"):
        assert set(ex[f].astype(str)) <= set(LEVELS[f])
    row = ex.iloc[0]
    assert (row["id_number"], row["name"], row["birth"], row["phone"]) == ("missing", "pinyin", "year", "exact")
    assert 0.99 <= row["match_probability"] <= 1 and row["weight"] > 0
    text = ex.to_csv()
    for raw in ("张伟", "章伟", "zhang", A, "13811112222", "1980"):
        assert raw not in text


def test_threshold_states_its_false_match_rate():
    model = LinkageModel(threshold=0.999)
    ds = people([("a", "张伟", 1980, "13811112222", A, "male")], 1000)
    res = link_keys(ds.persons, model=model)
    assert res.stats["threshold"] == 0.999  # shown with the figures (linkage_summary)
    p = 2.0 ** -res.stats["weight_threshold"] * 2.0 ** -res.stats["prior_log2_odds"]
    assert abs(1 / (1 + p) - 0.999) < 1e-9  # the weight threshold is the stated probability
    assert res.stats["expected_false_matches"] >= 0
    assert LinkageModel(threshold=0.9).weight_threshold(10**6) < model.weight_threshold(10**6)


def test_link_keys_is_the_same_function_of_the_keys_table():
    ds = people([("a", "张伟", 1980, "13811112222", A, "male"), ("b", "章伟", 1980, "13811112222", None, "male")],
                300)
    keys = ds.persons[["person_id", "birth_year", "gender"] + [c for c in ds.persons.columns if c.startswith("lk_")]]
    pd.testing.assert_series_equal(link_keys(keys).key, link_persons(ds))


def test_incremental_links_only_new_records():
    old_rows = [("a", "张伟", 1980, "13811112222", A, "male"), ("b", "李娜", 1990, "13633334444", None, "female"),
                ("c", "李娜", 1990, "13633334444", None, "female"),
                ("f", "王强", 1960, "13900001111", None, "male"), ("g", "赵敏", 1962, "13900001111", None, "female")]
    before = link_persons(people(old_rows, 300))
    new_rows = old_rows + [("n1", "張偉", 1980, None, "330106800315123", "male"),  # old 15-digit form
                           ("n2", "王芳", 1970, "13555556666", None, "female")]
    ds = people(new_rows, 300)
    res = link_keys(ds.persons, existing=before)
    after = res.key
    assert (after.loc[before.index] == before).all()
    assert after["n1"] == before["a"]
    assert after["n2"] == "n2"
    # Only pairs with a new record were blocked, plus the pairs inside old groups.
    ids = after.index.to_numpy()
    pairs = res.pairs
    both_old = ~pd.Series(ids[pairs["i"]]).str.startswith("n").to_numpy() & \
        ~pd.Series(ids[pairs["j"]]).str.startswith("n").to_numpy()
    assert both_old.sum() == res.stats["pairs_existing_groups"] == 1  # b-c
    # f and g (a family phone) are compared when the whole district is linked, not now.
    assert res.stats["candidate_pairs"] < link_keys(ds.persons).stats["candidate_pairs"]
    assert after["f"] != after["g"]


# --------------------------------------------------------------------------- a noisy district

def test_noisy_district_recall_and_false_merges():
    """Duplicates written with every kind of noise: recall of true pairs >= 0.97 and at most
    one false merge per 10,000 records."""
    from escalation_risk.synth import generate_tables

    tables, truth = generate_tables(30000, seed=5, linkage_noise=0.25)
    kinds = truth["noise"][truth["noise"] != ""].str.split(",").explode().value_counts()
    for k in ("id_old15", "id_typo", "id_check", "id_transposed", "id_format", "name_homophone",
              "name_traditional", "name_spacing", "phone_changed", "phone_format"):
        assert kinds.get(k, 0) >= 5, k
    persons = tables["persons"]
    ds = Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", persons=persons, places=tables["places"].head(1),
                             incidents=pd.DataFrame({"incident_id": ["i"], "kind": "dispute", "category": "debt",
                                                     "occurred_at": "2024-01-01", "reported_at": "2024-01-01"}),
                             incident_parties=pd.DataFrame({"incident_id": ["i"], "party_id": [persons["person_id"][0]],
                                                            "party_type": "person"}))
    key = link_persons(ds)
    t = truth.set_index("person_id")["true_person"].reindex(key.index)
    sizes = t.value_counts()
    true_pairs = int((sizes * (sizes - 1) // 2).sum())
    found = pd.DataFrame({"t": t.to_numpy(), "k": key.to_numpy()}).groupby(["t", "k"]).size()
    recall = float((found * (found - 1) // 2).sum()) / true_pairs
    false_merges = int((pd.Series(t.to_numpy()).groupby(key.to_numpy()).nunique() - 1).sum())
    assert true_pairs > 800
    assert recall >= 0.97, recall
    assert false_merges <= len(key) / 10_000, false_merges


def test_sample_command_writes_linkage_noise_with_its_truth(tmp_path):
    from click.testing import CliRunner

    from escalation_risk.cli import main as cli

    out = tmp_path / "noisy"
    res = CliRunner().invoke(cli, ["sample", str(out), "--persons", "400", "--seed", "3", "--linkage-noise", "1"])
    assert res.exit_code == 0, res.output
    truth = pd.read_parquet(out / "truth" / "person_truth.parquet")
    dup = truth[truth.duplicated("true_person", keep=False)]
    noisy = truth.loc[truth["noise"] != "", "person_id"]
    assert len(noisy) > 0 and set(noisy) <= set(dup["person_id"])  # noise only on duplicate records
    assert CliRunner().invoke(cli, ["sample", str(out), "--persons", "400", "--linkage-noise", "2"]).exit_code == 2


def test_tables_without_linkage_keys_still_link_on_the_pseudonyms():
    # Frames pseudonymised elsewhere (no lk_ columns): equal pseudonyms link, different
    # documents stay apart, the no-id rule holds.
    ds = dataset(ROWS)
    bare = ds.persons.drop(columns=[c for c in ds.persons.columns if c.startswith("lk_")])
    again = Dataset.from_frames(pseudonymised=True, persons=bare, places=ds.places, incidents=ds.incidents,
                                incident_parties=ds.incident_parties)
    assert not any(c.startswith("lk_") for c in again.persons.columns)
    assert groups(link_persons(again)) == groups(link_persons(ds))


# --------------------------------------------------------------------------- learnt weights

from escalation_risk import linking  # noqa: E402
from escalation_risk.linking import GRAPH_MODEL, em_m, estimate_u, graph_evidence, linkage_parameters  # noqa: E402
from escalation_risk.linking.model import _MODES, DEFAULT_MODEL  # noqa: E402
from escalation_risk.linking.parameters import _m_default, _random_pairs  # noqa: E402


def _planted(rng: np.random.Generator, probs: np.ndarray, size: int) -> np.ndarray:
    return rng.choice(len(probs), size=size, p=probs / probs.sum()).astype(np.int8)


def test_em_recovers_planted_m_and_u_recovers_planted_u():
    # Planted: for each field, how a match and a non-match show its levels (level 0,
    # missing, never drawn). EM sees only the levels, with u from the non-matches.
    rng = np.random.default_rng(7)
    m_true = {"name": np.array([0, 0.80, 0.10, 0.04, 0.02, 0.04]), "phone": np.array([0, 0.70, 0.30]),
              "gender": np.array([0, 0.97, 0.03]), "counterparty": np.array([0, 0.45, 0.55])}
    u_true = {"name": np.array([0, 0.02, 0.01, 0.01, 0.005, 0.955]), "phone": np.array([0, 0.001, 0.999]),
              "gender": np.array([0, 0.5, 0.5]), "counterparty": np.array([0, 0.01, 0.99])}
    n, lam = 60_000, 0.2
    match = rng.random(n) < lam
    levels = {}
    for f in m_true:
        lv = np.empty(n, dtype=np.int8)
        lv[match] = _planted(rng, m_true[f], int(match.sum()))
        lv[~match] = _planted(rng, u_true[f], int((~match).sum()))
        levels[f] = lv
    # u from random pairs: here a large sample of non-matches.
    randoms = {f: _planted(rng, u_true[f], 400_000) for f in m_true}
    for f in set(LEVELS) - set(m_true):  # fields not planted: all missing
        randoms[f] = np.zeros(400_000, dtype=np.int8)
    u = estimate_u(randoms, DEFAULT_MODEL)
    for f in m_true:
        assert np.allclose(u[f][1:], u_true[f][1:], atol=0.003, rtol=0.1), (f, u[f], u_true[f])
    m, share = em_m(levels, u, _m_default(DEFAULT_MODEL), tuple(m_true))
    assert abs(share - match.mean()) < 0.01
    for f in m_true:
        assert np.allclose(m[f][1:], m_true[f][1:], atol=0.015), (f, m[f], m_true[f])
        for mode in _MODES[f]:
            assert abs(m[f][list(mode)].sum() - 1) < 1e-9


def test_em_learns_an_implied_field_where_it_is_not_implied():
    # Matches sharing a household all show "both" in a household (implied by the household),
    # matches elsewhere mostly "one side". EM's m of household_held must be read where the
    # household does not imply it, as its weight is applied; the shared-household pairs
    # would otherwise pull m of "both" up to about a half.
    rng = np.random.default_rng(5)
    n, lam = 40_000, 0.3
    match = rng.random(n) < lam
    shared = match & (rng.random(n) < 0.5)
    m_true = {"name": np.array([0, 0.9, 0.05, 0.02, 0.01, 0.02])}
    u_true = {"name": np.array([0, 0.02, 0.01, 0.01, 0.005, 0.955])}
    levels = {"name": np.empty(n, dtype=np.int8)}
    levels["name"][match] = _planted(rng, m_true["name"], int(match.sum()))
    levels["name"][~match] = _planted(rng, u_true["name"], int((~match).sum()))
    levels["place"] = np.where(shared, 1, 5).astype(np.int8)  # 1: the same household
    held = np.array([0, 0.9, 0.1, 0, 0])  # where the household does not imply it
    levels["household_held"] = _planted(rng, held, n)
    levels["household_held"][shared] = 2  # "both"
    u = {"name": u_true["name"], "household_held": np.array([0, 0.5, 0.01, 0.5, 0.01])}
    m, _ = em_m(levels, u, _m_default(DEFAULT_MODEL), ("name",), update=("household_held",))
    assert abs(m["household_held"][2] - 0.1) < 0.03, m["household_held"]


def test_u_from_random_pairs_of_a_keys_table():
    # 40 names and 20 birth years drawn uniformly: two random records share a name with
    # probability 1/40 and a birth year with 1/20, whatever else they hold.
    rng = np.random.default_rng(3)
    n = 4000
    keys = pd.DataFrame({"person_id": [f"r{i}" for i in range(n)], "birth_year": rng.integers(1960, 1980, n),
                         "gender": None, "lk_name": rng.integers(1, 41, n), "lk_phone": rng.integers(1, 10**9, n)})
    res = link_keys(keys)
    par = res.parameters.set_index(["field", "level"])
    assert abs(par.loc[("name", "exact"), "u"] - 1 / 40) < 0.004
    assert abs(par.loc[("birth", "year"), "u"] - 1 / 20) < 0.006
    si, sj = _random_pairs(n, 1000, 0)
    assert (si != sj).all() and len(si) == 1000


# --------------------------------------------------------------------------- graph evidence

def district(rows: list[tuple], parties: list[tuple[str, str, str]], background: int = 1500,
             recorded_at: dict[str, str] | None = None, at: dict[str, str] | None = None) -> Dataset:
    """People ``rows`` plus ``background`` people, each background pair in a dispute of its
    own at a place of its own, all of them also against one big organisation; ``parties``
    are extra (incident_id, party_id, reported_at) rows, the incident at a place named by it
    (or by ``at``: incident_id -> place_id)."""
    rng = np.random.default_rng(1)
    extra = [(f"bg{b:05d}", f"背景{b}", int(rng.integers(1940, 2005)), f"139{rng.integers(0, 10**8):08d}", None,
              "male" if b % 2 else "female") for b in range(background)]
    persons = pd.DataFrame(rows + extra, columns=P)
    if recorded_at:
        persons["recorded_at"] = persons["person_id"].map(recorded_at)
    inc, par = [], []
    for b in range(0, background - 1, 2):
        inc.append((f"bi{b}", f"pl{b}", "2023-01-01"))
        par += [(f"bi{b}", f"bg{b:05d}", "person"), (f"bi{b}", f"bg{b + 1:05d}", "person")]
        inc.append((f"bo{b}", "pl-bank", "2023-02-01"))
        par += [(f"bo{b}", f"bg{b:05d}", "person"), (f"bo{b}", "bank", "organization")]
    for iid, pid, when in parties:
        if iid not in {i[0] for i in inc}:
            inc.append((iid, (at or {}).get(iid, f"pl-{iid}"), when))
        par.append((iid, pid, "organization" if pid == "bank" else "person"))
    places = sorted({i[1] for i in inc})
    return Dataset.from_frames(
        pseudonym_key=KEY, persons=persons, errors="quarantine",
        places=pd.DataFrame({"place_id": places, "grid_id": [f"g{k % 7}" for k in range(len(places))]}),
        organizations=pd.DataFrame({"org_id": ["bank"], "org_type": ["bank"]}),
        incidents=pd.DataFrame({"incident_id": [i[0] for i in inc], "kind": "dispute", "category": "debt",
                                "occurred_at": [i[2] for i in inc], "reported_at": [i[2] for i in inc],
                                "place_id": [i[1] for i in inc]}),
        incident_parties=pd.DataFrame(par, columns=["incident_id", "party_id", "party_type"]),
    )


# a and b: one person (no id number on b, phone changed), only name and birth year agree.
PAIR = [("a", "郑晓燕", 1976, "13811112222", A, "female"), ("b", "郑晓燕", 1976, "13799990000", None, "female"),
        ("x", "冯建国", 1950, "13655554444", None, "male")]


def test_name_birth_year_and_a_shared_counterpart_link_name_and_birth_year_alone_do_not():
    # The default model (training's and the night's linkage) reads no graph evidence: the pair stays apart.
    ds = district(PAIR, [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02"),
                         ("n2", "x", "2024-03-02")])
    assert link_persons(ds)["a"] != link_persons(ds)["b"]
    alone = link_persons(district(PAIR, []), model=GRAPH_MODEL)
    assert alone["a"] != alone["b"]
    # Both records meet the same neighbour x, in two disputes at his door.
    ds = district(PAIR, [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02"),
                         ("n2", "x", "2024-03-02")])
    key = link_persons(ds, model=GRAPH_MODEL)
    assert key["a"] == key["b"] != key["x"]
    ex = explain_links(ds, GRAPH_MODEL).set_index(["person_id", "linked_to"])
    assert ex.loc[("b", "a"), "counterparty"] == "shared"
    assert "counterparty" in ex.loc[("b", "a"), "rule"]
    # A counterpart shared by a thousand records (the bank) counts for little: no link.
    ds = district(PAIR, [("o1", "a", "2024-01-10"), ("o1", "bank", "2024-01-10"), ("o2", "b", "2024-03-02"),
                         ("o2", "bank", "2024-03-02")])
    key = link_persons(ds, model=GRAPH_MODEL)
    assert key["a"] != key["b"]
    lv = explain_links(ds, GRAPH_MODEL)
    assert lv.empty or not ({"a", "b"} <= set(lv["person_id"]) | set(lv["linked_to"]))


def test_graph_evidence_never_links_different_names_or_birth_years():
    rows = [("a", "郑晓燕", 1976, "13811112222", A, "female"), ("b", "郑晓燕", 1977, None, None, "female"),
            ("c", "刘芳", 1976, None, None, "female"), ("x", "冯建国", 1950, "13655554444", None, "male")]
    ds = district(rows, [(f"n{k}", p, "2024-01-10") for k, p in enumerate("abc")] +
                  [(f"n{k}", "x", "2024-01-10") for k in range(3)])
    key = link_persons(ds, model=GRAPH_MODEL)
    assert key.loc[["a", "b", "c"]].nunique() == 3


def test_graph_evidence_is_read_as_known_at_the_moment():
    parties = [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-06-02"),
               ("n2", "x", "2024-06-02")]
    ds = district(PAIR, parties)
    before, after = link_persons(ds, model=GRAPH_MODEL, as_of="2024-03-01"), \
        link_persons(ds, model=GRAPH_MODEL, as_of="2024-07-01")
    assert before["a"] != before["b"]  # the dispute that ties b to x was not yet reported
    assert after["a"] == after["b"]
    # The same as linking the dataset cut at that moment.
    pd.testing.assert_series_equal(before, link_persons(ds.cut("2024-03-01"), model=GRAPH_MODEL))
    pd.testing.assert_series_equal(after.sort_index(),
                                   link_persons(ds.cut("2024-07-01"), model=GRAPH_MODEL).sort_index())
    ev = graph_evidence(ds.tables(), as_of="2024-03-01")
    assert "b" not in set(ev.loc[ev["kind"] == "counterparty", "person_id"].astype(str))


def test_a_person_record_links_only_from_when_it_was_recorded():
    rows = [("a", "张伟", 1980, "13811112222", A, "male"), ("b", "張偉", 1980, None, A, "male")]
    ds = district(rows, [], background=50, recorded_at={"a": "2023-01-01", "b": "2024-05-01"})
    assert link_persons(ds)["b"] == "a"  # as of the export
    early = link_persons(ds, as_of="2024-04-30")
    assert early["b"] == "b" and early["a"] == "a"
    assert link_persons(ds, as_of="2024-05-01")["b"] == "a"
    cut = ds.cut("2024-04-30")
    assert link_persons(cut)["b"] == "b"
    blank = cut.persons.set_index("person_id")
    assert blank.loc["b", "lk_id"] == 0 and pd.isna(blank.loc["b", "id_number"])
    assert blank.loc["a", "lk_id"] != 0  # a record already recorded keeps its identifiers


def test_look_alike_characters_are_a_name_level_below_the_sound():
    rows = [("a", "王伟", 1980, "13811112222", None, "male"), ("b", "王伦", 1980, "13811112222", None, "male"),
            ("c", "李明", 1990, None, A, "male"), ("d", "李朋", 1990, None, A, "male")]
    ds = people(rows, 500)
    key = link_persons(ds)
    assert key["a"] == key["b"] and key["c"] == key["d"]
    ex = explain_links(ds).set_index(["person_id", "linked_to"])
    assert ex.loc[("b", "a"), "name"] == "shape"
    par = linkage_parameters(ds).set_index(["field", "level"])
    assert par.loc[("name", "fuzzy_pinyin"), "weight"] > par.loc[("name", "different"), "weight"]
    assert par.loc[("name", "shape"), "weight"] > par.loc[("name", "different"), "weight"]
    # A look-alike name and the birth year alone (the phone differs) never link.
    key = link_persons(people([("a", "王伟", 1980, "13811112222", None, "male"),
                               ("b", "王伦", 1980, "13899998888", None, "male")], 500))
    assert key["a"] != key["b"]


def test_parameters_are_saved_with_the_linkage_and_shown_without_values():
    ds = district(PAIR, [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02"),
                         ("n2", "x", "2024-03-02")])
    par = linkage_parameters(ds, GRAPH_MODEL)
    assert list(par.columns) == ["field", "level", "m", "u", "weight", "term_frequency", "m_from"]
    assert set(par["field"]) == set(LEVELS)
    for f, g in par.groupby("field"):
        assert list(g["level"]) == list(LEVELS[f][1:])
    assert ((par["m"] >= 0) & (par["m"] <= 1) & (par["u"] > 0) & (par["u"] <= 1)).all()
    ex = explain_links(ds, GRAPH_MODEL)
    pd.testing.assert_frame_equal(ex.attrs["parameters"], par)
    assert ex.attrs["threshold"] == GRAPH_MODEL.threshold == 0.95
    assert linkage_summary(ds, GRAPH_MODEL)["threshold"] == 0.95 and linkage_summary(ds)["threshold"] == 0.99
    text = par.to_csv() + ex.to_csv()
    for raw in ("郑晓燕", "zheng", A, "13811112222", "13799990000", "1976"):
        assert raw not in text


def test_a_place_shared_at_overlapping_times_weighs_more_than_the_place_alone():
    # A market where 300 background records each had one incident, a month apart in turn over
    # years; a and b (one person: no id on b, phone changed) each had one incident there.
    market = [(f"m{k}", f"bg{k:05d}", str((pd.Timestamp("2019-01-05") + pd.Timedelta(days=5 * k)).date()))
              for k in range(300)]
    at = {f"m{k}": "pl-market" for k in range(300)} | {"ma": "pl-market", "mb": "pl-market"}

    def pair(b_when: str) -> pd.Series:
        ds = district(PAIR, market + [("ma", "a", "2024-01-10"), ("mb", "b", b_when)], at=at)
        res = linking.linker._linkage(ds, None, GRAPH_MODEL)
        ids = res.key.index.to_numpy(dtype=object)
        p = res.pairs
        hit = p[(ids[p["i"]] == "a") & (ids[p["j"]] == "b") | (ids[p["i"]] == "b") & (ids[p["j"]] == "a")]
        assert len(hit) == 1
        return hit.iloc[0]

    close, far = pair("2024-01-20"), pair("2021-06-01")
    assert LEVELS["place"][close["place"]] == "place_overlapping"
    assert LEVELS["place"][far["place"]] == "place"
    # The market shared years apart says little (300 records hold it): no link.
    assert not far["accepted"]
    assert close["weight"] > far["weight"] + 3
    ev = graph_evidence(district(PAIR, [("ma", "a", "2024-01-10")], at=at).tables())
    mine = ev[ev["person_id"].astype(str) == "a"]
    assert (mine["kind"] == "place_time").sum() == 2  # the report's window and the next
    assert (mine["kind"] == "place").sum() == 1


def test_graph_evidence_does_not_depend_on_the_order_or_repetition_of_evidence_rows():
    from escalation_risk.linking.evidence import _graph_arrays

    ds = district(PAIR, [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02"),
                         ("n2", "x", "2024-03-02")], background=300)
    ev = graph_evidence(ds.tables())
    mixed = pd.concat([ev, ev.head(500)]).sample(frac=1.0, random_state=4).reset_index(drop=True)
    mixed.attrs = {}  # a frame from elsewhere: rows repeated, in any order
    pid = ds.persons["person_id"].to_numpy(dtype=object)
    a, b = _graph_arrays(ev, pid), _graph_arrays(mixed, pid)
    assert a is not None and b is not None
    for kind in a.mats:
        assert (a.mats[kind] != b.mats[kind]).nnz == 0
        np.testing.assert_array_equal(a.counts[kind], b.counts[kind])
        # A count is how many records hold the item.
        np.testing.assert_array_equal(a.counts[kind], np.asarray(a.mats[kind].sum(axis=0)).ravel())
    # The matrices made straight from the tables (as_frame=False) are the frame's evidence.
    direct = graph_evidence(ds.tables(), as_frame=False)
    for kind in a.mats:
        per_record = np.diff(direct.mats[kind].indptr)
        np.testing.assert_array_equal(per_record, np.diff(a.mats[kind].indptr))
        assert sorted(direct.counts[kind][direct.counts[kind] > 0]) == sorted(a.counts[kind][a.counts[kind] > 0])
    key = link_keys(ds.persons, model=GRAPH_MODEL, graph=ev)
    for other in (mixed, direct):
        res = link_keys(ds.persons, model=GRAPH_MODEL, graph=other)
        pd.testing.assert_series_equal(key.key, res.key)
        np.testing.assert_allclose(key.pairs["weight"], res.pairs["weight"])
    # Records in another order (or some missing): the evidence follows them.
    order = np.random.default_rng(2).permutation(len(pid))[:-3]
    moved = direct.for_records(pid[order])
    for kind in direct.mats:
        assert (moved.mats[kind] != direct.mats[kind][order]).nnz == 0


def _one_dispute_tables(ids: list[str]) -> dict[str, pd.DataFrame]:
    """Persons of these text ids, the first three parties to one dispute at one place."""
    return {
        "persons": pd.DataFrame({"person_id": pd.Series(ids, dtype="str")}),
        "places": pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        "incidents": pd.DataFrame({"incident_id": ["i1"], "kind": "dispute", "category": "labor_wage",
                                   "occurred_at": pd.Timestamp("2024-01-01"),
                                   "reported_at": pd.Timestamp("2024-01-02"), "place_id": "pl"}),
        "incident_parties": pd.DataFrame({"incident_id": "i1", "party_id": ids[:3], "party_type": "person"}),
    }


def test_linkage_takes_the_evidence_ids_only_from_a_column_of_the_same_dtype():
    """Evidence built from the text ids "1", "2", ... reads alike the numbers 1, 2, ... as
    Arrow text: a linkage of the numbers keeps its own ids, not the evidence's strings."""
    ids = [str(i) for i in range(1, 7)]
    tables = _one_dispute_tables(ids)
    ev = graph_evidence(tables, as_frame=False)
    text = tables["persons"]["person_id"]
    numbers = pd.Series(range(1, 7), dtype=np.int64)
    assert ev.same_ids(text) and ev.same_ids(text.copy())
    assert not ev.same_ids(numbers) and not ev.same_ids(text.astype(object))
    keys = pd.DataFrame({"person_id": numbers, "birth_year": 1970, "gender": "male"})
    res = link_keys(keys, model=GRAPH_MODEL, graph=ev)
    assert [type(v) for v in res.key.index] == [int] * 6 and res.key.index.tolist() == list(range(1, 7))
    with_text = link_keys(keys.assign(person_id=text), model=GRAPH_MODEL, graph=ev)
    assert with_text.key.index.tolist() == ids
    # The same linkage otherwise: keys (record ids themselves) of the same text, the same pairs.
    assert [type(v) for v in res.key] == [int] * 6 and res.key.astype(str).tolist() == with_text.key.tolist()
    assert res.pairs.shape == with_text.pairs.shape


def test_ids_are_coded_exactly_from_their_bytes():
    from escalation_risk.linking.ids import _encode, _positions

    ids = ["abcdefghijk", "abcdefghijkl", None, "x", "abcdefghijk", "abcdefgh", "abcdefg", "郑", "x", "zz",
           "abcdefghijkl", "abcdefg"]
    codes = np.concatenate(_encode(pd.Series(ids[:8]), pd.Series(ids[8:])))
    # One code per distinct id across both columns, -1 where missing.
    for a, ca in zip(ids, codes):
        assert (ca == -1) == (a is None)
        for b, cb in zip(ids, codes):
            if a is not None and b is not None:
                assert (ca == cb) == (a == b), (a, b)
    # Short ids, mixed lengths (persons and organisations in one column), missing values.
    index = pd.Series(["P01", "P0002", "O7", "abcdefgh"])
    assert _positions(pd.Series(["O7", "P01", "P1", None, "abcdefgh", "P0002"]), index).tolist() == \
        [2, 0, -1, -1, 3, 1]
    # An index stored in order, queries in order (a binary search) or not (the hash table).
    ordered = pd.Series(["I001", "I002", "I010", "J1"])
    assert _positions(pd.Series(["I001", "I001", "I002", "I003", None, "J1"]), ordered).tolist() == \
        [0, 0, 1, -1, -1, 3]
    assert _positions(pd.Series(["J1", "I001", "I010", "I002", "K", "I001"]), ordered).tolist() == \
        [3, 0, 2, 1, -1, 0]
    # Ids longer than eight bytes take the exact slow path: same answers.
    long = pd.Series(["person-000001", "person-000002"])
    assert _positions(pd.Series(["person-000002", "person-00000", "person-000001"]), long).tolist() == [1, -1, 0]


def test_several_columns_looked_up_at_once_give_what_pandas_gives():
    from escalation_risk.linking.evidence import _Index

    rng = np.random.default_rng(5)
    # Ids of mixed lengths up to eight bytes (the integer path), some the buffer's last bytes.
    pool = np.array([f"P{v}" for v in rng.choice(10**6, 400, replace=False)] + ["O7", "x", "abcdefgh"], dtype=object)
    for stored in (np.sort(pool), rng.permutation(pool)):  # an index in order, and not
        index = pd.Series(stored)
        want = pd.Index(stored)
        queries = [pd.Series(np.where(rng.random(n) < 0.1, None, rng.choice(np.r_[pool, ["P-1", "zz"]], n)))
                   for n in (1, 50, 999)]
        queries.append(pd.Series(np.sort(pool)[::3]))  # queries in order: the binary search
        got = _Index(index).find_many(*queries)
        for q, g in zip(queries, got):
            expected = np.where(q.isna(), -1, want.get_indexer(q.fillna("missing")))
            assert g.tolist() == expected.tolist()


def test_a_rare_name_sound_with_the_birth_year_and_a_place_links_a_common_one_does_not():
    # Two pairs, each one person written twice (a homophone name, no id and no phone on the
    # second record), each pair's two incidents at one door ten days apart: the same
    # evidence but for how common the name's sound is. 郑晓燕/郑小燕 is one pair's sound; 300
    # other people with ids are called 张伟 and born in 1980, like c/d (张伟/章伟).
    rng = np.random.default_rng(5)
    common = []
    for k in range(300):
        body = f"3301061980{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}{rng.integers(0, 500) * 2 + 1:03d}"
        common.append((f"zw{k:03d}", "张伟", 1980, f"137{rng.integers(0, 10**8):08d}",
                       body + gb11643_check_digit(body), "male"))
    rows = [("a", "郑晓燕", 1976, "13811112222", A, "female"), ("b", "郑小燕", 1976, None, None, "female"),
            ("c", "张伟", 1980, "13822223333", idn("33010619800101001"), "male"),
            ("d", "章伟", 1980, None, None, "male")] + common
    parties = [("ia", "a", "2024-01-10"), ("ib", "b", "2024-01-20"), ("ic", "c", "2024-01-10"),
               ("id", "d", "2024-01-20")]
    ds = district(rows, parties, at={"ia": "door1", "ib": "door1", "ic": "door2", "id": "door2"})
    res = linking.linker._linkage(ds, None, GRAPH_MODEL)
    ids = res.key.index.to_numpy(dtype=object)
    p = res.pairs

    def pair(x: str, y: str) -> pd.Series:
        hit = p[((ids[p["i"]] == x) & (ids[p["j"]] == y)) | ((ids[p["i"]] == y) & (ids[p["j"]] == x))]
        assert len(hit) == 1
        return hit.iloc[0]

    rare, common_ = pair("a", "b"), pair("c", "d")
    for row in (rare, common_):  # the same levels: same sound, birth year, place at overlapping times
        assert LEVELS["name"][row["name"]] == "pinyin" and LEVELS["place"][row["place"]] == "place_overlapping"
    assert rare["weight"] > common_["weight"] + 6  # log2 of ~300 holders of the sound against 1
    key = res.key
    assert key["a"] == key["b"]
    assert key["c"] != key["d"]
    # Without the place, the rare name and the birth year alone still do not link.
    alone = link_persons(district(rows, []), model=GRAPH_MODEL)
    assert alone["a"] != alone["b"]


def test_graph_u_is_read_among_namesakes_known_to_be_two_people():
    # 60 pairs of namesakes (same name and birth year, two valid ids: two people), each
    # pair in one dispute with the other: among namesakes, sharing a counterpart is common,
    # so a shared counterpart says less than random pairs would make it say.
    rng = np.random.default_rng(9)
    twins, parties = [], [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02"),
                          ("n2", "x", "2024-03-02")]
    for k in range(60):
        for side in (0, 1):
            body = f"3301061975{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}{rng.integers(0, 999):03d}"
            twins.append((f"t{k:02d}{side}", f"双{k}", 1975, None, body + gb11643_check_digit(body), "male"))
        parties += [(f"q{k}", f"t{k:02d}0", "2024-02-01"), (f"q{k}", f"t{k:02d}1", "2024-02-01"),
                    (f"q{k}", f"r{k}", "2024-02-01")]
        twins.append((f"r{k}", f"邻{k}", 1960, None, None, "female"))
    plain = linking.linker._linkage(district(PAIR, parties[:4]), None, GRAPH_MODEL)
    near = linking.linker._linkage(district(PAIR + twins, parties), None, GRAPH_MODEL)
    assert near.stats["namesake_pairs_for_graph_u"] >= 60 > plain.stats["namesake_pairs_for_graph_u"]
    assert near.stats["graph_u_namesakes_over_random_counterparty_shared"] > 2
    par = {r: x.parameters.set_index(["field", "level"]).loc[("counterparty", "shared"), "u"] for r, x in
           (("plain", plain), ("near", near))}
    assert par["near"] > par["plain"]


def test_ids_of_one_prefix_and_digits_are_found_by_index_as_pandas_finds_them():
    from escalation_risk.linking.ids import _digits, _Index

    rng = np.random.default_rng(3)
    stored = np.array([f"P{v:07d}" for v in rng.choice(200_000, 500, replace=False)], dtype=object)
    index = _Index(pd.Series(rng.permutation(stored)))
    assert index.row_of is not None  # the array-index path
    want = pd.Index(index.ids)
    pool = np.r_[stored, ["P0000000", "P9999999", "Q0000001", "P000001", "P00000x1", "O123"]]
    queries = [pd.Series(np.where(rng.random(n) < 0.1, None, rng.choice(pool, n))) for n in (1, 40, 900)]
    queries.append(pd.Series(rng.choice(stored, 30)))  # all of the index's form
    for q, got in zip(queries, index.find_many(*queries)):
        expected = np.where(q.isna(), -1, want.get_indexer(q.fillna("missing")))
        assert got.tolist() == expected.tolist()
    # Only one prefix and one width of digits reads as numbers; anything else is no match.
    assert _digits(pd.Series(["G0012", None, "G9999"])).value.tolist() == [12, 0, 9999]
    assert _digits(pd.Series(["123456789012", "000000000001"])).value.tolist() == [123456789012, 1]
    for other in (["A1x", "A12"], ["P1", "Q2"], ["1", "22"], ["P1", "P1 "], ["P+1", "P01"], ["Ｐ12", "Ｐ34"],
                  ["P１", "P1"], [None, None]):
        assert _digits(pd.Series(other, dtype=object)) is None, other
    assert _digits(pd.Series(["P-7", "P-8"])).value.tolist() == [7, 8]  # the prefix is all before the digits
    # One byte width, one prefix, ASCII: only the decimal check refuses these (a sign, a
    # full-width digit: "P1１" is five bytes as "P1234" is, a space).
    for other in (["P01", "P+1"], ["P1234", "P1１"], ["P01", "P 1"]):
        assert len({len(v.encode()) for v in other}) == 1, other
        assert _digits(pd.Series(other, dtype=object)) is None, other


def test_ids_read_as_integers_agree_with_arrows_kernels():
    """Ids of up to eight bytes are read from their bytes as integers (SWAR digits, block by
    block); every answer must be the one Arrow's kernels and pandas give, chunked or sliced,
    with a mask, and for the last ids of a buffer (whose 8-byte read would pass its end)."""
    import pyarrow as pa

    from escalation_risk.linking import ids

    def by_arrow(values):
        fast, ids._digits_words = ids._digits_words, lambda chunks: None
        try:
            return ids._digits(values)
        finally:
            ids._digits_words = fast

    rng = np.random.default_rng(5)
    cases = [[f"P{v:07d}" for v in rng.integers(0, 10**7, 3000)], [f"L{v:06d}" for v in range(0, 10**6, 977)],
             [f"{v:08d}" for v in rng.integers(0, 10**8, 50)], ["G0001", "G0420"], ["AB001", "AB999"], ["7"],
             ["P0000001", "P000000:"], ["P0000001", "P00000/1"], ["P0000001", "Q0000001"], ["A1B0001", "A1B0002"],
             ["P0000001", "P000001"], ["P\u00e9001", "P\u00e9002"], ["P", "Q"]]
    for case in cases:
        half = len(case) // 2
        chunked = pa.chunked_array([pa.array(case[:half], pa.large_string()), pa.array(case[half:], pa.large_string())])
        for values in (pd.Series(case, dtype="str"), pd.Series(pd.arrays.ArrowExtensionArray(chunked)),
                       pa.array(["x"] + case, pa.large_string()).slice(1)):
            got, want = ids._digits(values), by_arrow(values)
            assert (got is None) == (want is None), case[:2]
            if got is not None:
                assert (got.prefix, got.width, got.value.tolist()) == (want.prefix, want.width, want.value.tolist())
    # Look-ups by the integer reads, with a mask (a parties column: persons' and organisations' ids).
    stored = pd.Series([f"P{v:07d}" for v in rng.choice(10**6, 2000, replace=False)], dtype="str")
    index = ids._Index(stored)
    assert index.row_of is not None and index.row_of.dtype == np.int32
    query = np.array(list(rng.choice(stored.to_numpy(dtype=object), 5000)) + ["P9999999", "O123", "P0000000"],
                     dtype=object)
    query[rng.random(len(query)) < 0.2] = "O77"  # an organisation's id, of another width
    mask = np.array([not q.startswith("O") for q in query])
    chunks = pa.chunked_array([pa.array(query[:1000], pa.large_string()), pa.array(query[1000:], pa.large_string())])
    expected = np.where(mask, pd.Index(stored.to_numpy(dtype=object)).get_indexer(query), -1)
    assert index.find_where(pd.Series(pd.arrays.ArrowExtensionArray(chunks)), mask).tolist() == expected.tolist()
    assert index.find(pd.Series(query[mask], dtype="str")).tolist() == expected[mask].tolist()


def test_masked_look_up_of_another_width_reads_otherwise_in_the_same_dtype():
    """A masked-in id of another width than the index's (P0000001 beside P000001) leaves the
    integer read: the look-up falls back to the ids' bytes and still answers rows in the
    dtype of the fast path's rows."""
    from escalation_risk.linking.ids import _digit_rows, _Index

    index = _Index(pd.Series(["P000001", "P000002", "P000003"]))
    assert index.row_of is not None and index.digits is not None
    query = pd.Series(["P000003", "O12", "P0000001", "P000001", "P000009"], dtype="str")
    mask = np.array([True, False, True, True, True])
    assert _digit_rows(query, index.row_of, index.digits.prefix, index.digits.width, mask) is None  # the fallback
    got = index.find_where(query, mask)
    assert got.tolist() == [2, -1, -1, 0, -1]
    assert got.dtype == index.row_of.dtype == np.int32
    # Masked out, the id of another width is not read: the fast path, the same dtype.
    fast = index.find_where(query, np.array([True, False, False, True, True]))
    assert fast.tolist() == [2, -1, -1, 0, -1] and fast.dtype == np.int32


def test_ids_of_any_arrow_type_read_as_their_text():
    import pyarrow as pa

    from escalation_risk.linking.ids import _digits, _encode, _Index

    text = ["P003", None, "P001", "P002", "P001"]
    forms = {
        "dictionary": pa.array(text).dictionary_encode(),
        "binary": pa.array([None if v is None else v.encode() for v in text], type=pa.binary()),
        # chunks of a dictionary column with different dictionaries
        "chunked": pa.chunked_array([pa.array(text[:2]).dictionary_encode(), pa.array(text[2:]).dictionary_encode()]),
        "chunked strings": pa.chunked_array([pa.array(text[:3]), pa.array(text[3:])]),
    }
    want = _digits(pd.Series(text, dtype=object))
    assert want is not None and want.value.tolist() == [3, 0, 1, 2, 1]
    index = _Index(pd.Series(["P001", "P002", "P003"]))
    codes = _encode(pd.Series(text, dtype=object))[0]
    for name, arr in forms.items():
        got = _digits(arr)
        assert got is not None, name
        assert got.value.tolist() == want.value.tolist() and got.valid.tolist() == want.valid.tolist(), name
        assert index.find_many(arr)[0].tolist() == [2, -1, 0, 1, 0], name
        assert _encode(arr)[0].tolist() == codes.tolist(), name


def test_mixed_ids_read_as_arrow_writes_each_alone():
    """A value's text does not depend on its neighbours: 1.0 reads '1' beside a string as in a
    float column, so an id column of mixed objects still finds the float keys."""
    from escalation_risk.lookup import arrow_strings, id_positions

    mixed = pd.Series(["x", 1.0, True, None], dtype=object)
    assert arrow_strings(mixed).to_pylist() == ["x", "1", "true", None]
    assert arrow_strings(pd.Series([1.0, 2.0])).to_pylist() == ["1", "2"]
    assert id_positions(pd.Series([1.0, 2.0]), mixed).tolist() == [-1, 0, -1, -1]


def test_mass_incidents_tie_no_counterparts_in_the_evidence():
    from escalation_risk.known import MAX_GROUP

    n = MAX_GROUP + 1
    ids = [f"w{i:03d}" for i in range(n)]
    ds = Dataset.from_frames(
        pseudonym_key=KEY,
        persons=pd.DataFrame({"person_id": ids}),
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        incidents=pd.DataFrame({"incident_id": ["mass", "small"], "kind": "dispute", "category": "labor_wage",
                                "occurred_at": "2024-01-01", "reported_at": "2024-01-02", "place_id": "pl"}),
        incident_parties=pd.DataFrame({"incident_id": ["mass"] * n + ["small"] * 2,
                                       "party_id": ids + ids[:2], "party_type": "person"}),
    )
    ev = graph_evidence(ds.tables())
    cp = ev[ev["kind"] == "counterparty"]
    # Only the small incident's two parties name a counterpart: the mass incident ties nobody.
    assert sorted(cp["person_id"].astype(str)) == ["w000", "w001"]
    assert cp["item"].nunique() == 2
    # Its places still count: every party was at the place.
    assert (ev["kind"] == "place").sum() == n


def test_mass_incident_keeps_the_parties_there_by_the_cap():
    from escalation_risk.known import MAX_GROUP

    ids = [f"w{i:03d}" for i in range(MAX_GROUP + 1)]
    late = ids[-1]
    # MAX_GROUP parties on time, one added later (the group is then over the cap), one row repeated.
    rows = ids[:MAX_GROUP] + [late, ids[0]]
    added = [None] * MAX_GROUP + ["2024-03-01", None]
    ds = Dataset.from_frames(
        pseudonym_key=KEY,
        persons=pd.DataFrame({"person_id": ids}),
        places=pd.DataFrame({"place_id": ["pl"], "grid_id": ["g"]}),
        incidents=pd.DataFrame({"incident_id": ["mass"], "kind": "dispute", "category": "labor_wage",
                                "occurred_at": "2024-01-01", "reported_at": "2024-01-02", "place_id": "pl"}),
        incident_parties=pd.DataFrame({"incident_id": "mass", "party_id": rows, "party_type": "person",
                                       "added_at": pd.to_datetime(added)}),
    )
    cp = graph_evidence(ds.tables())
    cp = cp[cp["kind"] == "counterparty"]
    # The first MAX_GROUP name each other (the repeated row once); the late one is tied to nobody.
    assert len(cp) == MAX_GROUP * (MAX_GROUP - 1) == 2_450
    assert set(cp["person_id"].astype(str)) == set(ids[:MAX_GROUP])
    assert cp["item"].nunique() == MAX_GROUP
    assert not cp.duplicated().any()


def test_next_window_items_are_kept_when_the_key_does_not_fit_in_64_bits(monkeypatch):
    from escalation_risk.linking import evidence

    rng = np.random.default_rng(7)
    rec, item = rng.integers(-1, 50, 2000), rng.integers(-1, 30, 2000)  # item 29's next window is past the width
    for also_next in (False, True):
        fast = evidence._matrix(rec, item, 50, 30, also_next=also_next)
        with monkeypatch.context() as m:
            m.setattr(evidence, "_KEY_BITS", 0)  # every key over the budget: the fallback
            slow = evidence._matrix(rec, item, 50, 30, also_next=also_next)
        slow.sort_indices()
        assert slow.shape == fast.shape and slow.dtype == fast.dtype
        assert np.array_equal(slow.indptr, fast.indptr) and np.array_equal(slow.indices, fast.indices)
        assert (slow.data == 1).all() and (fast.data == 1).all()
    assert fast.nnz > evidence._matrix(rec, item, 50, 30).nnz  # the next windows are there


def test_items_with_the_next_window_are_those_of_both_windows():
    from escalation_risk.linking.evidence import _matrix

    rng = np.random.default_rng(5)
    rec, item = rng.integers(0, 50, 2000), rng.integers(0, 30, 2000)
    both = _matrix(np.r_[rec, rec], np.r_[item, item + 1], 50, 31)
    merged = _matrix(rec, item, 50, 31, also_next=True)
    assert (both != merged).nnz == 0 and np.array_equal(both.indptr, merged.indptr)
    assert np.array_equal(both.indices, merged.indices)


def test_graph_m_is_read_on_pairs_with_one_id_number_and_a_missing_id_is_weighed():
    from escalation_risk.synth import generate_tables

    tables, _ = generate_tables(4000, seed=7, linkage_noise=0.25)
    ds = Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **tables)
    res = linking.linker._linkage(ds, None, GRAPH_MODEL)
    par = res.parameters.set_index(["field", "level"])
    assert (par.loc[["counterparty", "place"], "m_from"] == "same_id").all()
    # m of each place level is its share among the pairs with one id number whose records both
    # hold places (one pseudo-observation aside).
    p = res.pairs
    one = p[(p["id_number"] == LEVELS["id_number"].index("exact")) & (p["name"] != LEVELS["name"].index("different"))
            & (p["place"] != 0)]
    share = one["place"].value_counts(normalize=True)
    for code, level in enumerate(LEVELS["place"]):
        if code:
            assert abs(par.loc[("place", level), "m"] - share.get(code, 0.0)) < 0.02, level
    # A duplicate lacks an id number more often than a random pair does: the missing level weighs.
    missing = par.loc[("id_number", "missing")]
    assert missing["m"] > missing["u"] and missing["weight"] > 0


def test_a_shared_grid_says_less_between_records_seen_in_many_grids():
    # a and b: one name and birth year, no id on b, the phone changed; they share one grid.
    rng = np.random.default_rng(4)
    n = 600
    keys = pd.DataFrame({"person_id": [f"r{k:03d}" for k in range(n)],
                         "name": [f"名{k}" for k in range(n)], "birth_year": rng.integers(1950, 2000, n),
                         "gender": "male", "id_number": [f"X{k}" for k in range(n)],
                         "phone": [f"1{k:010d}" for k in range(n)]})
    keys.loc[:1, ["person_id", "name", "birth_year", "id_number"]] = [["a", "郑晓燕", 1976, "X-a"],
                                                                      ["b", "郑晓燕", 1976, None]]
    grid = pd.DataFrame({"person_id": keys["person_id"], "kind": "grid", "item": rng.integers(10, 40, n)})
    grid.loc[:1, "item"] = 1

    def weight(extra: int) -> float:
        more = pd.DataFrame({"person_id": np.repeat(["a", "b"], extra), "kind": "grid",
                             "item": np.r_[np.arange(100, 100 + extra), np.arange(200, 200 + extra)]})
        res = link_keys(keys, model=GRAPH_MODEL, graph=pd.concat([grid, more], ignore_index=True))
        ids = keys["person_id"].to_numpy()
        hit = res.pairs[(ids[res.pairs["i"]] == "a") & (ids[res.pairs["j"]] == "b")]
        assert LEVELS["place"][hit["place"].iloc[0]] == "grid"
        return float(hit["weight"].iloc[0])

    # Each holding six grids, the two share one by chance 36 times as often as holding one each.
    assert weight(0) > weight(5) + 4


def _residents(seed: int, n: int) -> tuple[pd.DataFrame, np.random.Generator]:
    """Keys of ``n`` residents, each with their own name, id number and phone (and the generator)."""
    rng = np.random.default_rng(seed)
    keys = pd.DataFrame({"person_id": [f"r{k:04d}" for k in range(n)], "name": [f"名{k}" for k in range(n)],
                         "birth_year": rng.integers(1950, 2000, n), "gender": "male",
                         "id_number": [f"X{k}" for k in range(n)], "phone": [f"1{k:010d}" for k in range(n)]})
    return keys, rng


def _second_records(keys: pd.DataFrame, k: int) -> pd.DataFrame:
    """A second system's records of the first ``k`` residents: the same keys, another phone."""
    dup = keys.iloc[:k].copy()
    dup["person_id"] = [f"d{r:04d}" for r in range(k)]
    dup["phone"] = [f"2{r:010d}" for r in range(k)]
    return dup


def test_household_held_by_one_record_only_is_weighed_and_judged_apart_when_an_id_is_missing():
    # 1,000 residents, each in a household; 150 have a second record (a second system's: in no
    # household), 100 of them carrying the id number, 50 without one. Background records
    # without an id are in no household either, so two different people of whom one lacks an id
    # show "one in a household" far more often than two with ids do.
    from escalation_risk.linking.comparisons import _compare_graph
    from escalation_risk.linking.evidence import _graph_arrays

    n = 1000
    keys, rng = _residents(5, n)
    keys.loc[rng.choice(n, 150, replace=False), "id_number"] = None  # residents without an id number
    dup = _second_records(keys, 150)
    dup.loc[dup.index[100:], "id_number"] = None
    keys = pd.concat([keys, dup], ignore_index=True)
    resident = keys["person_id"].str.startswith("r")
    members = pd.DataFrame({"person_id": keys.loc[resident, "person_id"], "kind": "household",
                            "item": np.arange(int(resident.sum())) // 3})
    res = link_keys(keys, model=GRAPH_MODEL, graph=members)
    par = res.parameters.set_index(["field", "level"])
    held = par.loc["household_held"]
    assert (held["m_from"] == "same_id").all()
    assert held.loc["one_side", "m"] > 0.95 and held.loc["one_side", "weight"] > 0 > held.loc["both", "weight"]
    assert held.loc["one_side_id_missing", "u"] > 2 * held.loc["one_side", "u"]
    assert 0 < held.loc["one_side_id_missing", "weight"] < held.loc["one_side", "weight"]
    # The levels of a few pairs: resident and their second record (with and without an id),
    # two residents, two second records.
    g = _graph_arrays(members, keys["person_id"].to_numpy(dtype=object))
    pos = {p: k for k, p in enumerate(keys["person_id"])}
    i = np.array([pos["r0000"], pos["r0120"], pos["r0000"], pos["d0000"]])
    j = np.array([pos["d0000"], pos["d0120"], pos["r0001"], pos["d0001"]])
    lost = np.array([False, True, False, False])
    got = _compare_graph(g, i, j, lost)[0]["household_held"]
    assert [LEVELS["household_held"][c] for c in got] == ["one_side", "one_side_id_missing", "both", "missing"]


def test_a_look_alike_name_with_the_birth_year_and_a_shared_counterpart_links():
    rows = [("a", "王伟", 1976, "13811112222", A, "male"), ("b", "王伦", 1976, "13799990000", None, "male"),
            ("x", "冯建国", 1950, "13655554444", None, "male")]
    # Two quarrels with the neighbour x at his door, two weeks apart: a police call (b) and a
    # mediation (a). A look-alike character weighs less than the sound; the graph carries it.
    shared = [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-01-24"),
              ("n2", "x", "2024-01-24")]
    door = {"n1": "pl-x", "n2": "pl-x"}
    ds = district(rows, shared, at=door)
    assert link_persons(ds)["a"] != link_persons(ds)["b"]  # identifiers only
    assert link_persons(district(rows, []), model=GRAPH_MODEL).loc[["a", "b"]].nunique() == 2
    key = link_persons(ds, model=GRAPH_MODEL)
    assert key["a"] == key["b"] != key["x"]
    ex = explain_links(ds, GRAPH_MODEL).set_index(["person_id", "linked_to"])
    assert ex.loc[("b", "a"), "name"] == "shape" and ex.loc[("b", "a"), "counterparty"] == "shared"
    assert ex.loc[("b", "a"), "place"] == "place_overlapping"


def test_household_held_and_the_counterparty_weigh_nothing_where_the_records_share_a_household():
    # 1,000 residents in households of three; 150 have a second record carrying their id number,
    # 60 of those listed in their resident's household too (a police resident record), 90 in none.
    # Two records sharing a household are both in one: "both" says nothing more there, and is
    # read (m) on the pairs that share none. A household's members share a counterpart (a
    # relative, their quarrel's other side) whether one person or two: it says nothing more either.
    from escalation_risk.linking.comparisons import _compare_graph
    from escalation_risk.linking.evidence import _graph_arrays
    from escalation_risk.linking.parameters import _score

    n = 1000
    keys, _ = _residents(6, n)
    dup = _second_records(keys, 150)
    keys = pd.concat([keys, dup], ignore_index=True)
    hh = np.arange(n) // 3
    members = pd.concat([
        pd.DataFrame({"person_id": keys["person_id"][:n], "kind": "household", "item": hh}),
        pd.DataFrame({"person_id": dup["person_id"][:60], "kind": "household", "item": hh[:60]}),
        pd.DataFrame({"person_id": keys["person_id"][:n], "kind": "counterparty", "item": 10_000 + hh}),
        pd.DataFrame({"person_id": dup["person_id"], "kind": "counterparty", "item": 10_000 + hh[:150]})])
    res = link_keys(keys, model=GRAPH_MODEL, graph=members)
    held = res.parameters.set_index(["field", "level"]).loc["household_held"]
    # Counted on every pair with one id number, "both" would have m 0.4; on those sharing no household, ~0.
    assert held.loc["both", "m"] < 0.05 and held.loc["both", "weight"] < -5
    p = res.pairs
    levels = {f: p[f].to_numpy() for f in linking.FIELDS}
    i, j = p["i"].to_numpy(), p["j"].to_numpy()
    shared = levels["place"] == 1
    assert (shared & (levels["household_held"] == 2)).sum() >= 60
    g = _graph_arrays(members, keys["person_id"].to_numpy(dtype=object))
    counts = _compare_graph(g, i, j, levels["id_number"] == 0)[1]  # the shared items' holders: TF applied
    for f in ("household_held", "counterparty"):
        without = {**levels, f: np.zeros(len(p), dtype=levels[f].dtype)}
        plain = _score(without, res.weights, i, counts, j, g.items_held())
        weighed = _score(levels, res.weights, i, counts, j, g.items_held())
        np.testing.assert_allclose(weighed, p["weight"].to_numpy())
        np.testing.assert_allclose(weighed[shared], plain[shared])
        elsewhere = ~shared & (levels[f] > 0)
        assert elsewhere.sum() >= 90 and (weighed[elsewhere] != plain[elsewhere]).all()


def test_sample_command_writes_the_realistic_residence_it_is_asked_for(tmp_path):
    # The flag reaches the generator: the same seed with and without it differs only where
    # residence is written (memberships), and without it equals the default sample command.
    from click.testing import CliRunner

    from escalation_risk.cli import main as cli

    args = ["--persons", "400", "--seed", "3", "--linkage-noise", "0.5", "--format", "csv"]
    for name, extra in (("plain", []), ("real", ["--realistic-residence"])):
        res = CliRunner().invoke(cli, ["sample", str(tmp_path / name), *args, *extra])
        assert res.exit_code == 0, res.output
    plain = pd.read_csv(tmp_path / "plain" / "household_members.csv")
    real = pd.read_csv(tmp_path / "real" / "household_members.csv")
    assert not plain.equals(real)
    assert pd.read_csv(tmp_path / "plain" / "persons.csv").equals(pd.read_csv(tmp_path / "real" / "persons.csv"))


# --------------------------------------------------------------------------- attributes and incident kinds

def test_em_recovers_a_planted_agreement_rate_of_the_attributes_read_only_when_the_model_compares_them():
    # 2,000 residents, hukou local or migrant (60/40), employment one of four; 300 have a
    # second record carrying their id number, whose hukou is the resident's in 90% of cases
    # and whose employment is in 70% (else redrawn among the others), "unknown" in 10%.
    keys, rng = _residents(8, 2000)
    hukou = np.array(["local", "migrant"])[(rng.random(2000) < 0.4).astype(int)]
    jobs = np.array(["employed", "unemployed", "retired", "student"])
    job = jobs[rng.integers(0, 4, 2000)]
    keys["hukou"], keys["employment"] = hukou, job
    dup = _second_records(keys, 300)
    flip = rng.random(300) >= 0.9
    dup.loc[flip, "hukou"] = np.where(hukou[:300][flip] == "local", "migrant", "local")
    moved = rng.random(300) >= 0.7
    dup.loc[moved, "employment"] = [jobs[(list(jobs).index(v) + int(rng.integers(1, 4))) % 4]
                                    for v in job[:300][moved]]
    dup.loc[rng.random(300) < 0.1, "hukou"] = "unknown"
    keys = pd.concat([keys, dup], ignore_index=True)
    res = link_keys(keys, model=GRAPH_MODEL)
    par = res.parameters.set_index(["field", "level"])
    assert (par.loc["hukou", "m_from"] == "em").all()
    h, e = par.loc["hukou"], par.loc["employment"]
    expect_hukou = (~flip[~(dup["hukou"] == "unknown").to_numpy()]).mean()
    assert abs(h.loc[["same_local", "same_migrant"], "m"].sum() - expect_hukou) < 0.03
    # A level per agreed value: two migrants agree by chance 0.16 of the time, two locals 0.36.
    assert abs(h.loc["same_migrant", "u"] - 0.4 ** 2) < 0.03 and abs(h.loc["same_local", "u"] - 0.6 ** 2) < 0.03
    assert h.loc["same_migrant", "weight"] > h.loc["same_local", "weight"] > 0 > h.loc["different", "weight"]
    assert abs(e.loc[[lv for lv in e.index if lv.startswith("same_")], "m"].sum() - (~moved).mean()) < 0.04
    ids = keys["person_id"].to_numpy()
    unknown = set(dup.loc[dup["hukou"] == "unknown", "person_id"])
    p = res.pairs
    hit = np.isin(ids[p["i"]], list(unknown)) | np.isin(ids[p["j"]], list(unknown))
    assert (p.loc[hit, "hukou"] == 0).all() and (p.loc[~hit, "hukou"] != 0).any()
    # The default model (the night's linkage) reads neither: missing everywhere, no weight.
    off = link_keys(keys)
    assert (off.pairs["hukou"] == 0).all() and (off.pairs["employment"] == 0).all()


def test_the_hukou_weighs_its_learnt_weight_and_explain_links_shows_same_never_the_value():
    # a and b: one name and birth year, no id on b, the phone changed; they share a counterpart.
    # Background people are local or migrant at random. b's hukou the same as a's, or not:
    # the pair's weight moves by the difference of the two levels' weights, no more.
    parties = [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02"),
               ("n2", "x", "2024-03-02")]

    def run(hukou_b: str) -> tuple[float, pd.DataFrame, pd.DataFrame]:
        ds = district(PAIR, parties)
        persons = ds.persons.copy()
        pid = persons["person_id"].to_numpy(dtype=object)
        rng = np.random.default_rng(2)
        hukou = np.where(rng.random(len(persons)) < 0.4, "migrant", "local")
        hukou[pid == "a"], hukou[pid == "b"] = "local", hukou_b
        persons["hukou"] = pd.Categorical(hukou, dtype=persons["hukou"].dtype)
        ds = dataclasses.replace(ds, persons=persons, cache={})
        res = linking.linker._linkage(ds, None, GRAPH_MODEL)
        p = res.pairs
        hit = p[(pid[p["i"]] == "a") & (pid[p["j"]] == "b") | (pid[p["i"]] == "b") & (pid[p["j"]] == "a")]
        return float(hit["weight"].iloc[0]), explain_links(ds, GRAPH_MODEL), res.parameters

    same, ex, par = run("local")
    other, ex_other, _ = run("migrant")
    w = par.set_index(["field", "level"])["weight"]
    assert w[("hukou", "different")] < 0 < w[("hukou", "same_local")]
    # (b's own hukou moves the random pairs' u by a hair)
    assert abs((same - other) - (w[("hukou", "same_local")] - w[("hukou", "different")])) < 0.01
    # Per pair, the level never states the value both records hold (a protected attribute).
    assert ex.set_index(["person_id", "linked_to"]).loc[("b", "a"), "hukou"] == "same"
    assert ex_other.set_index(["person_id", "linked_to"]).loc[("b", "a"), "hukou"] == "different"
    from escalation_risk.contract import ATTRIBUTE_VALUES
    for frame in (ex, ex_other):
        shown = {str(v) for c in frame.columns for v in frame[c].astype(object).unique()}
        assert not shown & ({*ATTRIBUTE_VALUES} | {f"same_{v}" for v in ATTRIBUTE_VALUES})
        assert set(frame["hukou"].cat.categories) == set(frame["employment"].cat.categories) == {
            "missing", "same", "different"}
    assert ("hukou", "different") in set(zip(ex.attrs["parameters"]["field"], ex.attrs["parameters"]["level"]))


def test_the_kinds_of_incident_each_record_is_party_to_as_of_a_moment():
    # a's incident is a dispute, b's a police call (at t2): disjoint kinds; before t2 b is party
    # to nothing (missing); a and x share the dispute's kind.
    from escalation_risk.linking.comparisons import _compare_graph
    from escalation_risk.linking.evidence import _graph_arrays

    ds = district(PAIR, [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02")])
    tables = ds.tables()
    inc = tables["incidents"].copy()
    inc["kind"] = inc["kind"].astype(object).where(inc["incident_id"] != "n2", "police_call")
    tables["incidents"] = inc
    pid = ds.persons["person_id"].to_numpy(dtype=object)
    pos = {p: k for k, p in enumerate(pid)}
    i, j = np.array([pos["a"], pos["a"]]), np.array([pos["b"], pos["x"]])

    def levels(as_of=None) -> list[str]:
        ev = graph_evidence(tables, as_of)
        assert "incident_kind" in set(ev["kind"].astype(str))
        got = _compare_graph(_graph_arrays(ev, pid), i, j)[0]["incident_kinds"]
        return [LEVELS["incident_kinds"][c] for c in got]

    assert levels() == ["disjoint", "shared"]
    assert levels("2024-02-01") == ["missing", "shared"]


def test_incident_kinds_m_read_on_the_pairs_with_one_id_recovers_a_planted_share():
    # 1,000 residents, each party to disputes (kind 0), a third to complaints too (kind 1);
    # 200 second records carrying their id number, party to police calls only (kind 2) in 70%
    # of cases, else to disputes. Two different people rarely show disjoint kinds (only a
    # second record against a resident), one person's two records mostly do.
    keys, rng = _residents(9, 1000)
    dup = _second_records(keys, 200)
    keys = pd.concat([keys, dup], ignore_index=True)
    police = rng.random(200) < 0.7
    kinds = pd.concat([
        pd.DataFrame({"person_id": keys["person_id"][:1000], "kind": "incident_kind", "item": 0}),
        pd.DataFrame({"person_id": keys["person_id"][:1000][rng.random(1000) < 1 / 3], "kind": "incident_kind",
                      "item": 1}),
        pd.DataFrame({"person_id": dup["person_id"], "kind": "incident_kind", "item": np.where(police, 2, 0)})])
    res = link_keys(keys, model=GRAPH_MODEL, graph=kinds)
    par = res.parameters.set_index(["field", "level"]).loc["incident_kinds"]
    assert (par["m_from"] == "same_id").all()
    assert abs(par.loc["disjoint", "m"] - police.mean()) < 0.03
    # Two random records show disjoint kinds when one is a police-only second record.
    alone = police.sum() / len(keys)
    assert abs(par.loc["disjoint", "u"] - 2 * alone * (1 - alone)) < 0.03
    assert par.loc["disjoint", "weight"] > 1 and par.loc["shared", "weight"] < 0


def test_kinds_seen_flags_each_record_and_kind_once():
    from escalation_risk.linking.evidence import _kinds_seen

    rng = np.random.default_rng(12)
    n = 300
    rec = rng.integers(-1, n, 5000)
    kind = rng.integers(-1, 5, 5000).astype(np.int8)
    got = _kinds_seen(rec, kind, n)
    want = {(int(r), int(k)) for r, k in zip(rec, kind) if r >= 0 and k >= 0}
    rows = np.repeat(np.arange(n), np.diff(got.indptr))
    assert set(zip(rows.tolist(), got.indices.tolist())) == want and (got.data == 1).all()
    assert got.shape == (n, 5) and got.has_sorted_indices


def test_the_attributes_compared_as_of_a_moment_follow_their_history():
    # b is a migrant at export, but was local until June (person_attributes): linked as of
    # March, a and b agree on hukou; as of the export, they differ.
    parties = [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02"),
               ("n2", "x", "2024-03-02")]
    ds = district(PAIR, parties)
    persons = ds.persons.copy()
    pid = persons["person_id"].to_numpy(dtype=object)
    persons["hukou"] = pd.Categorical(np.where(pid == "b", "migrant", "local"), dtype=persons["hukou"].dtype)
    history = pd.DataFrame({"person_id": ["b", "b"], "attribute": ["hukou", "hukou"], "value": ["local", "migrant"],
                            "recorded_at": pd.to_datetime(["2023-01-01", "2024-06-01"])})
    ds = dataclasses.replace(ds, persons=persons, person_attributes=history, cache={})

    def level(as_of=None) -> str:
        p = linking.linker._linkage(ds, None, GRAPH_MODEL, as_of=as_of).pairs
        hit = p[((pid[p["i"]] == "a") & (pid[p["j"]] == "b")) | ((pid[p["i"]] == "b") & (pid[p["j"]] == "a"))]
        return LEVELS["hukou"][int(hit["hukou"].iloc[0])]

    assert level("2024-04-01") == "same_local"
    assert level() == level("2024-07-01") == "different"


def test_em_weighs_the_attributes_with_the_u_read_among_namesakes_that_scoring_uses(monkeypatch):
    # 2,000 residents, hukou local (80%) or migrant; 300 second records carrying their id number;
    # 300 pairs of namesakes (same name and birth year, two valid ids), both migrants: among
    # namesakes two migrants are far commoner than among random pairs. Every EM step must weigh
    # the hukou with that u, the one the pairs are scored with, not the random pairs'.
    from escalation_risk.linking import parameters

    keys, rng = _residents(21, 2000)
    keys["hukou"] = np.where(rng.random(2000) < 0.2, "migrant", "local")
    keys["employment"] = "employed"
    dup = _second_records(keys, 300)
    twins = keys.iloc[300:600].copy()
    twins["person_id"] = [f"t{r:04d}" for r in range(300)]
    twins["id_number"] = [f"Y{r}" for r in range(300)]
    twins["phone"] = [f"3{r:010d}" for r in range(300)]
    keys.loc[300:599, "hukou"] = twins["hukou"] = "migrant"
    keys = pd.concat([keys, dup, twins], ignore_index=True)
    seen: list[np.ndarray] = []
    real = parameters.em_m

    def spy(levels, u, *args, **kwargs):
        if "hukou" in levels:
            seen.append(np.array(u["hukou"], dtype=float))
        return real(levels, u, *args, **kwargs)

    monkeypatch.setattr(parameters, "em_m", spy)
    res = link_keys(keys, model=GRAPH_MODEL)
    used = res.weights.u["hukou"]
    migrant = LEVELS["hukou"].index("same_migrant")
    assert res.stats["attribute_u_namesakes_over_random_hukou_same_migrant"] > 2
    assert seen and all(np.allclose(s, used) for s in seen)
    assert used[migrant] > 0.1  # random pairs: 0.04


def test_kinds_seen_gives_each_of_63_kinds_its_own_bit_and_refuses_64():
    from escalation_risk.linking.evidence import _graph_arrays

    def seen(width: int) -> np.ndarray:
        pid = np.array([f"p{k}" for k in range(width)], dtype=object)
        ev = pd.DataFrame({"person_id": pid, "kind": "incident_kind", "item": np.arange(width)})
        return _graph_arrays(ev, pid).kinds_seen()

    bits = seen(63)
    assert len(set(bits.tolist())) == 63 and (bits != 0).all()
    with pytest.raises(ValueError, match="64 kinds of incident"):
        seen(64)


def test_the_default_model_lists_and_compares_only_the_fields_it_weighs():
    # The default model reads neither the attributes nor graph evidence: no row of theirs in its
    # parameters, and its keys' attributes stay unread even where the table states them.
    from escalation_risk.linking.comparisons import _compare
    from escalation_risk.linking.keys import _keys
    from escalation_risk.linking.model import ATTRIBUTE_FIELDS

    keys, rng = _residents(23, 600)
    keys["hukou"] = np.where(rng.random(600) < 0.5, "migrant", "local")
    keys["employment"] = "employed"
    keys = pd.concat([keys, _second_records(keys, 100)], ignore_index=True)
    off = link_keys(keys)
    assert set(off.parameters["field"]) == {"id_number", "name", "birth", "phone", "gender"}
    on = link_keys(keys, model=GRAPH_MODEL)
    assert {"hukou", "employment"} <= set(on.parameters["field"])
    assert not set(on.parameters["field"]) & set(linking.GRAPH_FIELDS)  # no graph evidence given
    i, j = np.arange(100), np.arange(600, 700)
    read, unread = _keys(keys, True), _keys(keys, False)
    assert read.attributes and (read.hukou != 0).all() and not unread.attributes
    unread.hukou, unread.employment = read.hukou, read.employment  # codes present, flag off: never compared
    for f in ATTRIBUTE_FIELDS:
        assert (_compare(read, i, j)[f] != 0).all() and (_compare(unread, i, j)[f] == 0).all()


def test_the_staged_path_compares_the_attributes_only_when_asked_and_the_province_refuses_them():
    from escalation_risk.linking import stages as LS
    from escalation_risk.linking.comparisons import _compare
    from escalation_risk.linking.keys import _keys

    keys, rng = _residents(24, 300)
    keys["hukou"] = np.where(rng.random(300) < 0.5, "migrant", "local")
    keys["employment"] = np.where(rng.random(300) < 0.5, "retired", "employed")
    keys = pd.concat([keys, _second_records(keys, 50)], ignore_index=True)
    i, j = np.arange(50), np.arange(300, 350)
    staged = LS.compare(LS.keys_of(LS.key_columns(keys, attributes=True)), i, j)
    direct = _compare(_keys(keys, True), i, j)
    for f in ("hukou", "employment"):
        np.testing.assert_array_equal(staged[f], direct[f])
        assert (staged[f] != 0).all()
        assert (LS.compare(LS.keys_of(LS.key_columns(keys)), i, j)[f] == 0).all()
    from escalation_risk import spark_linkage as SL

    with pytest.raises(ValueError, match="attributes=False"):
        SL.link_province(None, Path("."), "t", GRAPH_MODEL)


def test_incident_kinds_judged_apart_when_one_record_only_is_in_a_household():
    # p0 and p2 in households, p1 and p4 in none. Kinds: p0 dispute, p1 police call, p2 dispute,
    # p4 police call.
    from escalation_risk.linking.comparisons import _compare_graph
    from escalation_risk.linking.evidence import _graph_arrays

    pid = np.array(["p0", "p1", "p2", "p4"], dtype=object)
    ev = pd.DataFrame({"person_id": ["p0", "p2", "p0", "p1", "p2", "p4"],
                       "kind": ["household", "household", "incident_kind", "incident_kind", "incident_kind",
                                "incident_kind"],
                       "item": [0, 1, 0, 1, 0, 1]})
    g = _graph_arrays(ev, pid)
    i, j = np.array([0, 0, 1, 2, 1]), np.array([1, 2, 3, 3, 2])
    got = _compare_graph(g, i, j)[0]["incident_kinds"]
    assert [LEVELS["incident_kinds"][c] for c in got] == [
        "disjoint_one_held", "shared", "shared", "disjoint_one_held", "disjoint_one_held"]


def test_an_attribute_with_history_rows_none_yet_by_the_moment_reads_missing():
    # b's hukou rows start in June: as of April it is unknown (the contract's first step), so
    # the pair's hukou level is missing, not b's exported value.
    parties = [("n1", "a", "2024-01-10"), ("n1", "x", "2024-01-10"), ("n2", "b", "2024-03-02"),
               ("n2", "x", "2024-03-02")]
    ds = district(PAIR, parties)
    persons = ds.persons.copy()
    pid = persons["person_id"].to_numpy(dtype=object)
    persons["hukou"] = pd.Categorical(np.full(len(pid), "local"), dtype=persons["hukou"].dtype)
    history = pd.DataFrame({"person_id": ["b"], "attribute": ["hukou"], "value": ["local"],
                            "recorded_at": pd.to_datetime(["2024-06-01"])})
    ds = dataclasses.replace(ds, persons=persons, person_attributes=history, cache={})

    def level(as_of) -> str:
        p = linking.linker._linkage(ds, None, GRAPH_MODEL, as_of=as_of).pairs
        hit = p[((pid[p["i"]] == "a") & (pid[p["j"]] == "b")) | ((pid[p["i"]] == "b") & (pid[p["j"]] == "a"))]
        return LEVELS["hukou"][int(hit["hukou"].iloc[0])]

    assert level("2024-04-01") == "missing"
    assert level("2024-07-01") == "same_local"


def test_the_attributes_cannot_let_name_and_birth_year_link_on_their_own():
    # a and b: name and birth year only (no id on b, phone changed), nothing shared in the graph;
    # both migrants and unemployed (the attributes' strongest agreement) among local, employed
    # neighbours: still two people.
    ds = district(PAIR, [("n1", "a", "2024-01-10"), ("n2", "b", "2024-03-02")])
    persons = ds.persons.copy()
    pid = persons["person_id"].to_numpy(dtype=object)
    pair = np.isin(pid, ["a", "b"])
    persons["hukou"] = pd.Categorical(np.where(pair, "migrant", "local"), dtype=persons["hukou"].dtype)
    persons["employment"] = pd.Categorical(np.where(pair, "unemployed", "employed"),
                                           dtype=persons["employment"].dtype)
    ds = dataclasses.replace(ds, persons=persons, cache={})
    res = linking.linker._linkage(ds, None, GRAPH_MODEL)
    p = res.pairs
    hit = p[((pid[p["i"]] == "a") & (pid[p["j"]] == "b")) | ((pid[p["i"]] == "b") & (pid[p["j"]] == "a"))]
    assert LEVELS["hukou"][int(hit["hukou"].iloc[0])] == "same_migrant"
    assert LEVELS["employment"][int(hit["employment"].iloc[0])] == "same_unemployed"
    w = res.parameters.set_index(["field", "level"])["weight"]
    assert w[("hukou", "same_migrant")] > 0 and w[("employment", "same_unemployed")] > 0
    key = link_persons(ds, model=GRAPH_MODEL)
    assert key["a"] != key["b"]


@pytest.mark.parametrize("block", [3, 7, 1 << 16])
@pytest.mark.parametrize("also_next", [False, True])
def test_matrix_blocks_agree_with_a_set_of_pairs(monkeypatch, block, also_next):
    """The evidence matrix read block by block (repeats across a block's edge, a next window
    already held, an item at the width's edge) holds exactly each (record, item) once, and
    (record, item + 1) below the width with ``also_next``."""
    from escalation_risk.linking import evidence

    monkeypatch.setattr(evidence, "_BLOCK", block)
    rng = np.random.default_rng(5)
    n, width = 40, 12
    rec = rng.integers(-1, n, 600).astype(np.int32)
    item = rng.integers(-1, width, 600)
    a = evidence._matrix(rec, item, n, width, also_next=also_next)
    want = {(int(r), int(t)) for r, t in zip(rec, item) if r >= 0 and t >= 0}
    if also_next:
        want |= {(r, t + 1) for r, t in want if t + 1 < width}
    got = a.tocoo()
    assert {(int(r), int(t)) for r, t in zip(got.row, got.col)} == want
    assert a.nnz == len(want) and a.has_sorted_indices
    assert all(np.all(np.diff(a.indices[a.indptr[r]:a.indptr[r + 1]]) > 0) for r in range(n))



@pytest.mark.parametrize("rows", ["none", "all_dropped"])
@pytest.mark.parametrize("n, width", [(0, None), (6, None), (6, 9), (6, 2**60)])
@pytest.mark.parametrize("also_next", [False, True])
def test_matrix_of_no_items_is_empty(rows, n, width, also_next):
    """No (record, item) left (none given, or every one with a missing record or item): a
    records x items matrix of the stated shape holding nothing, its rows in order."""
    from escalation_risk.linking import evidence

    rec = np.zeros(0, np.int32) if rows == "none" else np.array([-1, 2, -1], np.int32)
    item = np.zeros(0, np.int64) if rows == "none" else np.array([3, -1, -1], np.int64)
    if n == 0:
        rec = np.full(len(rec), -1, np.int32)
    a = evidence._matrix(rec, item, n, width, also_next=also_next)
    assert a.shape == (n, 0 if width is None else width) and a.nnz == 0
    assert len(a.indptr) == n + 1 and not a.indptr.any() and a.has_sorted_indices

@pytest.mark.parametrize("keyed", ["many", "one", "none", "no_records"])
def test_block_holders_are_term_frequencies(keyed):
    """The blocking's count of the records holding each key equals a count of the values;
    records without a key are left as they are (also when fewer than two records have one)."""
    from escalation_risk.linking.blocking import _block_pairs

    rng = np.random.default_rng(9)
    key = rng.integers(0, 30, 500).astype(np.int64)  # 0: missing
    if keyed != "many":
        key[:] = 0
        key[7] = 12 if keyed == "one" else 0
        key = key[:0] if keyed == "no_records" else key
    holders = np.full(len(key), 7.0)  # what the caller had: kept where there is no key
    i, _, skipped, _ = _block_pairs(key, max_block=15, holders=holders)  # blocks over 15 skipped: counted too
    counts = pd.Series(key).map(pd.Series(key).value_counts()).to_numpy(dtype=float)
    assert np.array_equal(holders, np.where(key != 0, counts, 7.0))
    assert (len(i) > 0) is (keyed == "many") and bool(skipped.any()) is (keyed == "many")


def _phone_rule_changed(rules, how):
    """Blocking rules whose ``phone`` rule is renamed, or keys on the phone and the id number
    under the same name (the blocking's counts of it are then not the phone's)."""
    from escalation_risk.linking.blocking import _combine

    def made(k):
        if how == "renamed":
            return [("phone_number" if name == "phone" else name, key) for name, key in rules(k)]
        return [(name, _combine(k.phone, k.idn) if name == "phone" else key) for name, key in rules(k)]
    return made


@pytest.mark.parametrize("phone_rule", ["as_is", "renamed", "combined"])
@pytest.mark.parametrize("incremental", [False, True])
def test_term_frequencies_from_the_blocking_equal_a_count(monkeypatch, phone_rule, incremental):
    """``_link``'s term frequencies, weights and keys are the same with the counts the blocking
    made (``TF_FROM_BLOCKING``) as with a count of the values; also when the ``phone`` rule is
    renamed, or its key is the phone combined with the id number."""
    from escalation_risk.linking import blocking, linker, parameters

    family, own = "13811110000", "13822223333"  # held by four people; by one person's three records
    rows = [("f1", "王大明", 1960, family, idn("11010119600101001"), "male"),
            ("f2", "李秀英", 1962, family, idn("11010119620202002"), "female"),
            ("f3", "王小明", 1990, family, None, "male"),
            ("f4", "王小红", 1993, family, idn("11010119930303004"), "female"),
            ("p1", "张伟", 1980, own, A, "male"), ("p2", "张伟", 1980, own, A, "male"),
            ("p3", "章伟", 1980, own, None, "male"), ("p4", "张伟", 1980, None, A, "male")]
    persons = people(rows, 300).persons.reset_index(drop=True)
    if phone_rule != "as_is":
        made = _phone_rule_changed(blocking._block_rules, phone_rule)
        for mod in (blocking, linker, parameters):
            monkeypatch.setattr(mod, "_block_rules", made)
        if phone_rule == "combined":
            k = linker._keys(persons, False)
            held = np.ones(k.n)
            blocking._block_pairs(dict(made(k))["phone"], 50, holders=held)
            phones = pd.Series(k.phone).map(pd.Series(k.phone).value_counts()).to_numpy(dtype=float)
            assert not np.array_equal(held, np.where(k.phone != 0, phones, 1.0))  # the test can tell them apart
    existing = linker._link(persons.iloc[2:], None, DEFAULT_MODEL).key if incremental else None
    assert linker.TF_FROM_BLOCKING  # the path under test is on
    on = linker._link(persons, existing, DEFAULT_MODEL)
    monkeypatch.setattr(linker, "TF_FROM_BLOCKING", ())
    off = linker._link(persons, existing, DEFAULT_MODEL)
    assert on.weights.tf.keys() == off.weights.tf.keys()
    # log2 u of the value: higher the more records hold it (4, 3, 1 of them).
    assert on.weights.tf["phone"][0] > on.weights.tf["phone"][4] > on.weights.tf["phone"][10]
    for f in on.weights.tf:
        np.testing.assert_array_equal(on.weights.tf[f], off.weights.tf[f], err_msg=f)
    np.testing.assert_array_equal(on.pairs["weight"], off.pairs["weight"])
    pd.testing.assert_frame_equal(on.parameters, off.parameters)
    pd.testing.assert_series_equal(on.key, off.key)


@pytest.mark.parametrize("form", ["digits", "ordered", "unordered", "long", "missing"])
@pytest.mark.parametrize("repeated", [False, True])
def test_index_says_whether_ids_are_unique_as_built_whatever_look_ups_follow(form, repeated):
    """``_Index.unique`` answers what was checked when the index was built: true only for
    ids found unique with none missing, and the same after look-ups (of any form) since."""
    from escalation_risk.linking.ids import _Index

    ids = {"digits": ["P000003", "P000001", "P000002", "P000007"], "ordered": ["a", "b", "c", "d"],
           "unordered": ["d", "b", "a", "c"], "long": ["person-0000001", "person-0000002", "x", "y"],
           "missing": ["a", None, "c", "d"]}[form]
    if repeated:
        ids = ids + [ids[2]]
    want = form in ("digits", "ordered", "unordered") and not repeated
    index = _Index(pd.Series(ids, dtype=object))
    assert index.unique() is want
    queries = [pd.Series(ids, dtype=object), pd.Series(["zz", "P000002", "a", "person-0000002"], dtype=object),
               pd.Series(["P000009", "P000001"], dtype=object)]
    for q in queries:
        index.find_many(q)
        index.find(q)
        assert index.unique() is want
    assert index.find(pd.Series([ids[2]], dtype=object))[0] >= 0  # found, whichever of its rows


@pytest.mark.parametrize("ids", [["P000001", "P000002", "P000003", "P000002"], ["a", "b", "c", "b"]])
def test_link_keys_refuses_repeated_ids_even_with_evidence_of_the_same_records(ids):
    """``link_keys`` trusts the evidence's own check of its records' ids (no second check)
    only where it found them unique: evidence built from a repeated id still has it refused."""
    tables = _one_dispute_tables(ids)
    keys = pd.DataFrame({"person_id": tables["persons"]["person_id"], "birth_year": 1970, "gender": "male"})
    ev = graph_evidence(tables, as_frame=False)
    assert ev.same_ids(keys["person_id"]) and not ev.unique_ids(keys["person_id"])
    with pytest.raises(ValueError, match="duplicate"):
        link_keys(keys, model=GRAPH_MODEL, graph=ev)
    # The same records without the repeat: trusted, and linked.
    tables["persons"] = tables["persons"].iloc[:3]
    ev = graph_evidence(tables, as_frame=False)
    assert ev.unique_ids(keys["person_id"].iloc[:3])
    assert len(link_keys(keys.iloc[:3], model=GRAPH_MODEL, graph=ev).key) == 3


def test_item_counts_refuse_negative_codes_as_bincount_does():
    """Counting codes is bincount's count, and a negative code (a missing row's -1) is refused,
    not counted as the last code."""
    from escalation_risk.linking.evidence import _count

    codes = np.random.default_rng(3).integers(0, 9, 200).astype(np.int32)
    np.testing.assert_array_equal(_count(codes, 12), np.bincount(codes, minlength=12))
    assert _count(codes[:0], 4).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="negative"):
        _count(np.r_[codes, -1].astype(np.int32), 12)


@pytest.mark.parametrize("values", [[5, 0, 5, 7, 5, 0, -3], [0, 0], []])
def test_term_counts_count_the_records_holding_each_value(values):
    """A record's term frequency is how many records hold its value (itself counted); a
    missing value (0) counts 1, or is left as it was in ``out``; read from a sort's runs alike."""
    from escalation_risk.linking.keys import _term_counts

    v = np.asarray(values, dtype=np.int64)
    held = pd.Series(v).map(pd.Series(v).value_counts()).to_numpy(dtype=float)
    want = np.where(v != 0, held, 1.0)
    np.testing.assert_array_equal(_term_counts(v), want)
    out = np.full(len(v), 9.0)
    assert _term_counts(v, out) is out
    np.testing.assert_array_equal(out, np.where(v != 0, held, 9.0))
    order = np.flatnonzero(v != 0)[np.argsort(v[v != 0], kind="stable")]
    sizes = np.unique(v[order], return_counts=True)[1]
    np.testing.assert_array_equal(_term_counts(v, np.ones(len(v)), order, sizes), want)
