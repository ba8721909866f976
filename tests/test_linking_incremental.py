"""Incremental linkage (linking.incremental): new records linked against a kept state equal
the full re-link of every record with the same frozen parameters."""

import numpy as np
import pandas as pd
import pytest
from tests.conftest import KEY

from escalation_risk.dataset import Dataset
from escalation_risk.linking import DEFAULT_MODEL
from escalation_risk.linking.incremental import Frozen, LinkState, link_new, relink
from escalation_risk.linking.linker import _link


@pytest.fixture(scope="module")
def noisy_persons():
    from escalation_risk.idnumbers import gb11643_check_digit
    from escalation_risk.synth import generate_tables

    tables, _ = generate_tables(3000, seed=7, linkage_noise=0.25)
    # Namesakes born the same year: A and B are two people until R carries A's id number and
    # B's phone (a bridge; two such trios).
    rows = []
    for t, stem in enumerate(("33010219800312457", "11010819750621883")):
        idn = stem + gb11643_check_digit(stem)
        one = {"birth_year": int(stem[6:10]), "gender": "male", "hukou": "local", "employment": "employed",
               "name": ("欧阳明远", "司马青云")[t]}
        rows += [{**one, "person_id": f"Z{t}-A", "id_number": idn, "phone": f"1391234567{t}"},
                 {**one, "person_id": f"Z{t}-B", "id_number": None, "phone": f"1398765432{t}"},
                 {**one, "person_id": f"Z{t}-R", "id_number": idn, "phone": f"1398765432{t}"}]
    tables["persons"] = pd.concat([tables["persons"], pd.DataFrame(rows)], ignore_index=True)
    return Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **tables).persons


def _held_out(persons: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """Records to add later: duplicates of known people, people of their own, and bridges
    (a record without which its group falls apart into two people)."""
    full = _link(persons, None, DEFAULT_MODEL)
    frozen = Frozen.of(full, len(persons))
    key = full.key
    size = key.map(key.value_counts())
    dup = [p for p in key.index[(size > 1) & (key.index != key)][:12]]
    alone = list(key.index[size == 1][::97][:6])
    bridges = ["Z0-R", "Z1-R"]
    for b in bridges:  # one person with R, two without
        assert key[b] == key[b[:3] + "A"] == key[b[:3] + "B"]
        rest = persons[persons["person_id"] != b]
        kr = relink(rest, None, frozen).key
        assert kr[b[:3] + "A"] != kr[b[:3] + "B"]
    return dup, alone, bridges


def test_incremental_linkage_equals_a_full_relink_with_frozen_parameters(noisy_persons):
    persons = noisy_persons
    dup, alone, bridges = _held_out(persons)
    assert len(dup) >= 6 and len(alone) >= 4 and bridges, "the district holds every case (the test bites)"
    held = dup + alone + bridges
    base = persons[~persons["person_id"].isin(held)].reset_index(drop=True)
    res = _link(base, None, DEFAULT_MODEL)
    frozen = Frozen.of(res, len(base))
    state = LinkState.build(base, res.key, frozen)
    current, keys = base, res.key
    by_id = persons.set_index("person_id", drop=False)
    # Adds of one to three records, mixing the kinds; a bridge last in its add.
    batches = [[dup[0]], [alone[0], dup[1]], [dup[2], dup[3], alone[1]], [bridges[0]], [alone[2]],
               [dup[4], alone[3]], [dup[5]], *([[bridges[1]]] if len(bridges) > 1 else []), [dup[6], dup[7]]]
    seen = {"joined": 0, "own": 0, "links_two": 0}
    for batch in batches:
        new = by_id.loc[batch].reset_index(drop=True)
        linked = link_new(state, new)
        both = pd.concat([current, new], ignore_index=True)
        full = relink(both, keys, frozen)
        ref = full.key
        # Every pair compared, weighed and decided as the full re-link did.
        mine = linked.pairs.assign(lo=lambda d: np.minimum(d["i"], d["j"]), hi=lambda d: np.maximum(d["i"], d["j"]))
        theirs = full.pairs.assign(lo=lambda d: np.minimum(d["i"], d["j"]), hi=lambda d: np.maximum(d["i"], d["j"]))
        got = mine.merge(theirs, on=["lo", "hi"], how="outer", suffixes=("", "_full"), indicator=True)
        in_mine = got["_merge"] != "right_only"
        assert (got.loc[in_mine, "_merge"] == "both").all(), "a pair the full re-link did not compare"
        assert np.allclose(got.loc[in_mine, "weight"], got.loc[in_mine, "weight_full"], rtol=0, atol=1e-9)
        assert (got.loc[in_mine, "accepted"] == got.loc[in_mine, "accepted_full"]).all()
        # The full re-link's pairs with a new record are all among them.
        new_pos = np.arange(len(current), len(both))
        assert not (~in_mine & (np.isin(got["lo"], new_pos) | np.isin(got["hi"], new_pos))).any()
        old_same = (ref.reindex(keys.index).to_numpy(dtype=object) == keys.to_numpy(dtype=object)).all()
        if linked.keys is None:
            assert not old_same, f"{batch}: the incremental linkage saw known people's keys change; the full did not"
            seen["links_two"] += 1
            state = LinkState.build(both, ref, frozen)  # what a rebuild starts from
        else:
            assert old_same, f"{batch}: the full re-link changed known keys; the incremental did not see it"
            pd.testing.assert_series_equal(linked.keys, ref.reindex(new["person_id"]), check_names=False)
            for pid, k in linked.keys.items():
                seen["own" if k == pid and (ref == k).sum() == 1 else "joined"] += 1
            # The records of the groups joined: the new records and the known members of their groups.
            ids = np.r_[current["person_id"].to_numpy(dtype=object), new["person_id"].to_numpy(dtype=object)]
            assert set(ids[linked.joined]) == set(ref.index[ref.isin(linked.keys.to_numpy())])
            state = linked.state
        current, keys = both, ref
    assert seen["joined"] >= 6 and seen["own"] >= 3 and seen["links_two"] >= 1, seen
    # The state after every add holds the same groups as the full linkage of everyone.
    assert state.n == len(current)


def test_frozen_parameters_fix_the_threshold_and_the_weights(noisy_persons):
    """A full re-link with frozen parameters over the very records they were trained on is
    the linkage itself; more records move only the term frequencies' counts."""
    persons = noisy_persons
    res = _link(persons, None, DEFAULT_MODEL)
    frozen = Frozen.of(res, len(persons))
    again = relink(persons, None, frozen)
    pd.testing.assert_series_equal(again.key, res.key)
    assert again.stats["weight_threshold"] == res.stats["weight_threshold"]
    pd.testing.assert_frame_equal(again.parameters, res.parameters)


def test_a_merged_state_links_later_records_as_the_unmerged_one(noisy_persons):
    """The records linked since the state was built, merged into its base (what a fold of
    the index does), leave no delta, and every later add gets the keys, pairs and weights
    the unmerged state gives, which are the full re-link's with the frozen parameters."""
    persons = noisy_persons
    dup, alone, bridges = _held_out(persons)
    held = dup + alone + bridges
    base = persons[~persons["person_id"].isin(held)].reset_index(drop=True)
    res = _link(base, None, DEFAULT_MODEL)
    frozen = Frozen.of(res, len(base))
    state = LinkState.build(base, res.key, frozen)
    by_id = persons.set_index("person_id", drop=False)
    current, keys = base, res.key
    for batch in ([dup[0]], [alone[0], dup[1]], [dup[2], alone[1]]):
        new = by_id.loc[batch].reset_index(drop=True)
        linked = link_new(state, new)
        assert linked.keys is not None and linked.state is not None
        state, current = linked.state, pd.concat([current, new], ignore_index=True)
        keys = pd.concat([keys, linked.keys])
    assert state.delta.n == 5, "records pending in the delta (the test bites)"
    merged = state.merged()
    assert merged.delta.n == 0 and merged.base.n == state.n == len(current)
    assert merged.frozen is state.frozen and (merged.keys == state.keys).all()
    assert (merged.base.pid == np.r_[state.base.pid, state.delta.pid]).all()
    assert merged.merged() is merged
    later = [[dup[3]], [alone[2], dup[4]], [bridges[0]], [dup[5], alone[3]]]
    kinds = set()
    for batch in later:
        new = by_id.loc[batch].reset_index(drop=True)
        a, b = link_new(state, new), link_new(merged, new)
        both = pd.concat([current, new], ignore_index=True)
        ref = relink(both, keys, frozen).key
        cols = ["i", "j", "accepted"]
        pd.testing.assert_frame_equal(a.pairs.sort_values(["i", "j"])[cols].reset_index(drop=True),
                                      b.pairs.sort_values(["i", "j"])[cols].reset_index(drop=True))
        assert np.allclose(a.pairs.sort_values(["i", "j"])["weight"], b.pairs.sort_values(["i", "j"])["weight"],
                           rtol=0, atol=1e-9)
        if a.keys is None:
            assert b.keys is None
            kinds.add("changes known keys")
            # What a rebuild starts from: a new state over every record, with the same frozen parameters.
            state = merged = LinkState.build(both, ref, frozen)
        else:
            assert b.keys is not None and a.state is not None and b.state is not None
            pd.testing.assert_series_equal(a.keys, b.keys)
            pd.testing.assert_series_equal(b.keys, ref.reindex(new["person_id"]), check_names=False)
            assert (np.sort(a.joined) == np.sort(b.joined)).all()
            kinds.add("linked")
            state, merged = a.state, b.state
        current, keys = both, ref
    assert kinds == {"linked", "changes known keys"}, kinds


def _keep_keys_by_pandas(pid, comp, key, prior, uniq):
    """groups._keep_keys as it was written with pandas (before numpy): the reference."""
    known = prior >= 0
    cp = pd.DataFrame({"comp": comp[known], "prior": prior[known]}).drop_duplicates()
    n_old = cp.groupby("comp")["prior"].transform("size").to_numpy()
    many = cp[n_old > 1]
    if len(many):
        many = many.assign(text=uniq[many["prior"].to_numpy()]).sort_values(["comp", "text"]) \
            .drop_duplicates("comp")[["comp", "prior"]]
    chosen = pd.concat([cp[n_old == 1], many])
    comp_prior = np.full(int(comp.max()) + 1 if len(comp) else 0, -1, dtype=np.int64)
    comp_prior[chosen["comp"].to_numpy()] = chosen["prior"].to_numpy()
    rec_prior = comp_prior[comp]
    has = rec_prior >= 0
    named = np.zeros(len(pid), dtype=bool)
    named[has] = pid[has] == uniq[rec_prior[has]]
    claims = pd.DataFrame({"comp": comp[has], "prior": rec_prior[has], "named": named[has]}) \
        .groupby("comp", as_index=False).agg(prior=("prior", "first"), named=("named", "any"))
    owner = claims.sort_values(["prior", "named", "comp"], ascending=[True, False, True]).drop_duplicates("prior")
    owner_of = np.full(len(uniq), -1, dtype=np.int64)
    owner_of[owner["prior"].to_numpy()] = owner["comp"].to_numpy()
    keeps = has & (owner_of[np.maximum(rec_prior, 0)] == comp)
    out = key.copy()
    out[keeps] = uniq[rec_prior[keeps]]
    return out


def test_earlier_keys_are_kept_as_the_pandas_rule_kept_them():
    """groups._keep_keys (numpy since it is on every incremental link's path) gives the keys of
    its pandas form on 3,000 random cases: groups joining several earlier keys, an earlier key
    claimed by several groups (with and without the record it was named after), new records."""
    from escalation_risk.linking.groups import _keep_keys

    rng = np.random.default_rng(7)
    hard = 0
    for case in range(3000):
        n = int(rng.integers(1, 40))
        pid = np.array([f"P{rng.integers(0, 60):03d}" for _ in range(n)], dtype=object)
        pid = pd.unique(pid)
        n = len(pid)
        comp = rng.integers(0, max(1, n // 2), n)
        comp = pd.factorize(comp)[0].astype(np.int64)  # labels 0..k-1, as connected components give
        n_keys = int(rng.integers(1, 8))
        uniq = np.array(sorted({*rng.choice(pid, min(n_keys, n), replace=False).tolist(),
                                *[f"Q{x}" for x in rng.integers(0, 9, 2)]}), dtype=object)
        rng.shuffle(uniq)
        prior = np.where(rng.random(n) < 0.7, rng.integers(0, len(uniq), n), -1).astype(np.int64)
        key = np.array([f"K{c}" for c in comp], dtype=object)
        got = _keep_keys(pid, comp, key, prior, uniq)
        want = _keep_keys_by_pandas(pid, comp, key, prior, uniq)
        assert got.tolist() == want.tolist(), case
        seen = pd.DataFrame({"c": comp, "p": prior})[prior >= 0].drop_duplicates()
        hard += int(seen["c"].duplicated().any() and seen["p"].duplicated().any())
    assert hard > 100  # groups with several earlier keys and keys with several groups both occurred


def test_group_keys_of_a_few_records_are_named_as_of_many(monkeypatch):
    """groups._named takes a few records in numpy and many through pandas' group-by: the
    same smallest person_id per group either way (ids with CJK, full-width and Latin text)."""
    from escalation_risk.linking import groups

    rng = np.random.default_rng(3)
    alphabet = ["P", "p", "Ｐ", "张", "Z", "0", "é", "-"]
    for case in range(300):
        n = int(rng.integers(1, 60))
        ids = pd.unique(np.array(["".join(rng.choice(alphabet, 3)) + str(i % 7) for i in range(n)], dtype=object))
        comp = rng.integers(0, max(1, len(ids) // 3), len(ids)).astype(np.int64)
        few = groups._named(ids, comp)
        monkeypatch.setattr(groups, "SMALL_GROUPS", -1)
        many = groups._named(ids, comp)
        monkeypatch.undo()
        assert few.tolist() == many.tolist(), case
