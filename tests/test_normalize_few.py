"""The one-value forms of ``normalize``'s rules (a service's few rows) against the vectorised
ones (a district's million): the same values, value by value, on text built to break them."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from conftest import KEY

from escalation_risk import normalize as nz
from escalation_risk.dataset.pseudonyms import pseudonymise
from escalation_risk.idnumbers import gb11643_check_digit


def _chars() -> list[str]:
    """Characters the rules treat specially, and a seeded sample of the rest of Unicode."""
    picked = {chr(c) for c in range(0x00, 0x250)}  # ASCII, Latin-1, Latin extended (case quirks)
    picked |= {chr(c) for c in range(0x110000) if chr(c).isspace() or chr(c).isdecimal()}
    picked |= {chr(c) for c in range(0xFF00, 0xFFF0)} | {chr(c) for c in range(0x3000, 0x3100)}
    picked |= {chr(c) for c in range(0x2000, 0x2070)} | set("ßİıǅǈǋΣσςﬀﬁ·•・．－／")
    picked |= set("張陳偉倫己已巳劉趙錢孫鄭馮衛蔣韓楊閻")
    rng = random.Random(0)
    picked |= {chr(c) for c in rng.sample(range(0x110000), 1500) if not 0xD800 <= c < 0xE000}
    return sorted(picked)


def _values() -> list[object]:
    stem = "11010119800101123"
    good = stem + gb11643_check_digit(stem)
    vals: list[object] = [None, np.nan, pd.NA, "", " ", "\u3000", "-", "·", good, good.lower(), good[:-1] + "x",
                          "110101800101123", "１１０１０１８００１０１１２３", "110101 800101 123",
                          "1101-0180-0101-123",
                          "11010119800101123Ｘ", " 11010119800101123x ", "ID-A", "IDA", "id.a", "G1234567",
                          "+86 138 0013 8000", "0086-13800138000", "１３８００１３８０００", "138.0013.8000", "12345",
                          "欧阳·明远", "欧阳 明远", "歐陽明遠", "張偉", "张伟", "張 偉", "Zhang Wei", "ZHANG-WEI",
                          "ｚｈａｎｇ ｗｅｉ",
                          "阿卜杜拉・买买提", "陈己", "陈已", "刘伦", "赵巳", "\t王\n小 明\r"]
    for c in _chars():
        vals += [c, f"王{c}明", f"{c}13800138000"]
        if c.isascii() or not c.isdecimal():  # an id of other decimal digits fails on both paths (the last test)
            vals += [f"11010{c}800101123", f"110101198001011{c}3X", f"1101018001011{c}3"]
    return vals


VALUES = _values()
RULES = {"id": nz.normalise_id, "phone": nz.normalise_phone, "name": nz.normalise_name}


def _vectorised(rule, values: list[object], **kw) -> pd.Series:
    """The rule on a long column (more than ``FEW`` values: the vectorised path)."""
    assert len(values) > nz.FEW
    return rule(pd.Series(values, dtype=object), **kw)


def _same(a: object, b: object) -> bool:
    return (nz._missing(a) and nz._missing(b)) or (type(a) is type(b) and a == b)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_few_values_are_normalised_as_a_column_of_them_is(rule):
    fn = RULES[rule]
    whole = _vectorised(fn, VALUES).tolist()
    for i in range(0, len(VALUES), 3):  # three at a time, as an add's few rows
        chunk = pd.Series(VALUES[i:i + 3], dtype=object, index=range(i + 7, i + 7 + len(VALUES[i:i + 3])), name=rule)
        got = fn(chunk)
        assert list(got.index) == list(chunk.index) and got.name == rule and got.dtype == object
        for j, v in enumerate(got.tolist()):
            assert _same(v, whole[i + j]), (rule, i + j)  # the row, never the value (it may be personal)


def test_the_short_path_is_taken_for_plain_text_and_keeps_index_name_and_dtype():
    s = pd.Series(["歐陽 明遠", None, "Zhang Wei"], index=[5, 9, 2], name="name")
    few = nz._text(s)
    assert isinstance(few, nz._Few) and few.rows() == ["歐陽 明遠", None, "Zhang Wei"]
    assert isinstance(nz._text(pd.Series(["ß"])), nz._Many)  # case rules differ between Python and Arrow
    assert isinstance(nz._text(pd.Series(["ß"]), plain=False), nz._Few)  # no case changed: Python's
    assert isinstance(nz._text(pd.Series([12345])), nz._Many)  # not text: Arrow (its own conversion)
    assert isinstance(nz._text(pd.Series(["a"] * (nz.FEW + 1))), nz._Many)
    long = pd.Series(s.tolist() * 20, name="name")
    pd.testing.assert_series_equal(nz.normalise_name(s), nz.normalise_name(long).iloc[:3].set_axis(s.index))


def test_many_values_take_each_step_once_per_distinct_value():
    """The Arrow engine works on the distinct values and gives each row its own: a column of
    repeats is normalised as its distinct values are, row by row."""
    base = ["張 偉", None, "ｚｈａｎｇ ｗｅｉ", "", "11010519491231002x", "李四"]
    rows = [base[i % len(base)] for i in (np.arange(200) * 7) % 11]
    t = nz._text(pd.Series(rows, dtype=object))
    assert isinstance(t, nz._Many) and len(t.u) == len({v for v in rows if v is not None})
    for rule in RULES.values():
        got = rule(pd.Series(rows, dtype=object)).tolist()
        one = dict(zip(base, rule(pd.Series(base * 6, dtype=object)).tolist()[:len(base)]))
        assert all(_same(g, one[v]) for g, v in zip(got, rows))


def test_pinyin_and_shape_of_a_few_names_are_those_of_a_column():
    names = nz.normalise_name(pd.Series(VALUES, dtype=object))
    tone, fuzzy = nz.name_pinyin(names)
    shape = nz.name_shape(names)
    for i in range(0, len(names), 4):
        few = names.iloc[i:i + 4]
        t, f = nz.name_pinyin(few)
        for got, want in ((t, tone), (f, fuzzy), (nz.name_shape(few), shape)):
            assert list(got.index) == list(few.index)
            assert all(_same(a, b) for a, b in zip(got.tolist(), want.iloc[i:i + 4].tolist())), i


def test_linkage_keys_and_pseudonyms_of_a_few_rows_are_those_of_the_whole_table():
    rng = random.Random(1)
    n = 600
    persons = pd.DataFrame({"person_id": [f"p{i}" for i in range(n)],
                            "name": [rng.choice(VALUES) for _ in range(n)],
                            "id_number": [rng.choice(VALUES) for _ in range(n)],
                            "phone": [rng.choice(VALUES) for _ in range(n)]})
    key = KEY.encode()
    whole = nz.linkage_keys(persons, key)
    pseud = {c: pseudonymise(persons[c], key, c) for c in ("name", "id_number", "phone")}
    for i in range(0, n, 5):
        rows = persons.iloc[i:i + 5]
        pd.testing.assert_frame_equal(nz.linkage_keys(rows, key), whole.iloc[i:i + 5])
        for c, want in pseud.items():
            pd.testing.assert_series_equal(pseudonymise(rows[c], key, c), want.iloc[i:i + 5])


def test_ids_of_non_ascii_digits_are_other_documents_on_both_paths():
    """Digits of another script (NFKC keeps Arabic-Indic digits) are no resident id: not
    converted, not checked, read as another document, never an encoding error that
    would fail the whole column."""
    odd = ["١" * 15, "١١٠١٠٥١٩٤٩١٢٣١٠٠٠٢", "110105194912310002"]
    many = pd.Series(odd * (nz.FEW + 1), dtype=object)
    norm = nz.normalise_id(many)
    assert norm.tolist()[:3] == odd
    for i in range(3):
        assert nz.normalise_id(pd.Series([odd[i]], dtype=object)).tolist() == [odd[i]]
    whole = nz._id_parts(norm)
    part = nz._id_parts(norm.iloc[:3])
    for k, v in whole.items():
        np.testing.assert_array_equal(part[k], v[:3], err_msg=k)
    assert whole["kind"][0] == whole["kind"][1] == nz.ID_OTHER and whole["kind"][2] != nz.ID_OTHER


def test_id_parts_and_hashes_of_a_few_values_are_those_of_a_column():
    ids = nz.normalise_id(pd.Series(VALUES, dtype=object))
    stems = [f"{r:06d}{y:04d}{m:02d}{d:02d}{s:03d}" for r, y, m, d, s in
             [(110101, 1980, 1, 1, 123), (440305, 2000, 2, 29, 7), (440305, 1900, 2, 29, 8), (110101, 1879, 12, 31, 1),
              (990000, 2024, 13, 1, 0), (0, 1996, 4, 31, 999), (123456, 2001, 2, 28, 10)]]
    extra = [s + gb11643_check_digit(s) for s in stems] + [s + "0" for s in stems] + [s + "X" for s in stems]
    ids = pd.concat([ids, pd.Series(extra, dtype=object)], ignore_index=True)
    whole = nz._id_parts(ids)
    key = KEY.encode()
    hashed = {salt: nz.hash64(ids, key, salt) for salt in ("id_number", "name")}
    swaps = nz.hash64(whole["swap_even"], key, "s")
    for i in range(0, len(ids), 4):
        few = ids.iloc[i:i + 4]
        part = nz._id_parts(few)
        for k, v in whole.items():
            np.testing.assert_array_equal(part[k], v[i:i + 4], err_msg=k)
            assert part[k].dtype == v.dtype
        for salt in ("id_number", "name"):
            np.testing.assert_array_equal(nz.hash64(few, key, salt), hashed[salt][i:i + 4])
        np.testing.assert_array_equal(nz.hash64(part["swap_even"], key, "s"), swaps[i:i + 4])



_READINGS = """
import hashlib, os, sys
if sys.argv[1] == "ours":  # escalation_risk loads pypinyin
    from escalation_risk.normalize import _pinyin_of as read
    read("张")
    import pypinyin.constants
    assert pypinyin.constants.PHRASES_DICT == {} and "PYPINYIN_NO_PHRASES" not in os.environ
else:  # pypinyin loaded as anyone else would: with its phrases
    from pypinyin import Style, lazy_pinyin
    import pypinyin.constants
    assert len(pypinyin.constants.PHRASES_DICT) > 10_000
    read = lambda ch: "".join(lazy_pinyin(ch, style=Style.NORMAL, errors="default"))
from pypinyin.pinyin_dict import pinyin_dict
chars = [chr(c) for c in sorted(pinyin_dict)]
print(len(chars), hashlib.sha256("|".join(read(ch) for ch in chars).encode()).hexdigest())
"""


def test_names_read_without_pypinyins_phrases_as_with_them():
    """normalize loads pypinyin without its phrase dictionary (194,000 objects the garbage
    collector walks): a character's reading is the same as with it, for every character
    pypinyin knows; the switch is not left in the environment."""
    import subprocess
    import sys

    def run(which: str) -> str:
        out = subprocess.run([sys.executable, "-c", _READINGS, which], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip()

    ours, theirs = run("ours"), run("phrases")
    assert int(ours.split()[0]) > 20_000
    assert ours == theirs
