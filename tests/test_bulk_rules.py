"""The bulk (vectorised) forms of the loader's and the index's rules give what the
one-value-at-a-time forms give, on the values where they could part: missing, empty,
full-width digits, non-ASCII letters, other Unicode digits, stray whitespace."""

import hashlib
import hmac
import json

import numpy as np
import pandas as pd
import pytest

from escalation_risk.alerts.rows import _dumps, _dumps_rows, _reasons_list
from escalation_risk.contract import is_safe_id, safe_ids
from escalation_risk.dataset.build import _isin
from escalation_risk.dataset.parsing import STR_DTYPE, _as_str, _categorical, _unsafe_ids
from escalation_risk.dataset.pseudonyms import _normalise_pii, hmac_hex20, pseudonymise
from escalation_risk.features.lexicon import load_lexicon
from escalation_risk.idnumbers import is_valid_mobile, valid_mobiles
from escalation_risk.lookup import id_positions
from escalation_risk.night_scores import _for_csv
from escalation_risk.normalize import hash64

KEY = b"test-key-for-bulk-rules-0123456789abcdef"

TRICKY = ["13812345678", "+86 138-1234-5678", "0086 13812345678", "8613812345678", "868613812345678",
          "１３８１２３４５６７８", "１３８-1234-5678", "\u0663" + "3812345678", "12812345678", "1381234567",
          "", " ", "abc", "13812345678\n", "\u3000" + "13812345678", "张三", "Zhāng Sān", "王 · 小明",
          "11010519491231002X", "11010519491231002x", "１１０１０５１９４９１２３１００２Ｘ", "110105491231002",
          "A1", "a_b.c:d/e-f", "_a", "-a", "1" * 128, "1" * 129, "é1", "x\u00e9", "中文", "a b", "a\n"]


@pytest.mark.parametrize("key", [KEY, b"k", b"x" * 64, b"y" * 65, b"z" * 200])
def test_hmac_in_bulk_is_hmac(key):
    values = [v for v in TRICKY] + ["\ud7ff", "🙂", "a" * 1000]
    want = [hmac.new(key, b"name:" + v.encode(), hashlib.sha256).hexdigest()[:20] for v in values]
    assert hmac_hex20(key, b"name:", values) == want


@pytest.mark.parametrize("column", ["name", "id_number", "phone"])
def test_pseudonymise_equals_one_value_at_a_time(column):
    raw = pd.Series(TRICKY + [None, np.nan, "", "  "], dtype=object)
    got = pseudonymise(raw, KEY, column)
    norm = _normalise_pii(column, raw)
    for i, v in enumerate(norm.tolist()):
        if isinstance(v, str):
            assert got.iloc[i] == hmac.new(KEY, column.encode() + b":" + v.encode(), hashlib.sha256).hexdigest()[:20]
        else:
            assert pd.isna(got.iloc[i])
    # The same person written two ways gets one pseudonym (the point of normalising first).
    if column == "phone":
        assert got.iloc[0] == got.iloc[1] == got.iloc[5]


def test_mobiles_in_bulk_equal_one_at_a_time():
    values = pd.unique(pd.Series(TRICKY, dtype=STR_DTYPE).dropna())
    assert valid_mobiles(values).tolist() == [is_valid_mobile(v) for v in values]
    assert valid_mobiles(list(TRICKY)).tolist() == [is_valid_mobile(v) for v in TRICKY]
    assert valid_mobiles([]).tolist() == []
    assert valid_mobiles(["１３８１２３４５６７８"]).tolist() == [True]  # full-width digits: the scalar rule


def test_safe_ids_in_bulk_equal_one_at_a_time():
    values = TRICKY + ["Z9", "a$", "a" * 127 + "é"]
    assert safe_ids(values).tolist() == [is_safe_id(v) for v in values]
    assert safe_ids(values).any() and not safe_ids(values).all()


@pytest.mark.parametrize("dtype", [object, STR_DTYPE])
def test_id_columns_judged_row_by_row_equal_each_distinct_id_judged(dtype):
    """The loader's id rule over a column (Arrow strings: row by row) against each value's own verdict."""
    values = [*TRICKY, "Z9", "a$", None, np.nan, "a" * 128, "a" * 129]
    column = _as_str(pd.Series(values, dtype=dtype))
    want = [isinstance(v, str) and not is_safe_id(v) for v in column.astype(object).where(column.notna(), None)]
    got = _unsafe_ids(column)
    assert got.tolist() == want and any(want) and not all(want)


@pytest.mark.parametrize("dtype", [object, STR_DTYPE])
def test_code_columns_made_categorical_in_arrow_equal_pandas(dtype):
    categories = ["person", "organization", "é"]
    values = pd.Series(["person", None, "organization", "x", "", "PERSON", "é", np.nan, "person "], dtype=dtype)
    got = _categorical(values, categories)
    want = pd.Categorical(values.astype(object).where(values.notna()).where(values.isin(categories)),
                          categories=categories)
    assert got.dtype == want.dtype and got.codes.tolist() == want.codes.tolist()
    assert got.codes.tolist() == [0, -1, 1, -1, -1, -1, 2, -1, -1]


@pytest.mark.parametrize("dtype", [object, STR_DTYPE])
def test_id_positions_equal_get_indexer(dtype):
    keys = pd.Series(["P1", "P2", "é3", "P4", "１"], dtype=dtype)
    ids = pd.Series(["P2", None, "P9", "é3", "P1", np.nan, "P2", "１", "1", ""], dtype=dtype)
    want = pd.Index(keys.to_numpy(dtype=object)).get_indexer(ids.to_numpy(dtype=object))
    assert id_positions(keys, ids).tolist() == want.tolist()
    assert id_positions(pd.Index(keys.to_numpy(dtype=object)), ids.to_numpy(dtype=object)).tolist() == want.tolist()
    assert id_positions(keys, ids.iloc[:0]).tolist() == []
    assert id_positions(keys.iloc[:0], ids).tolist() == [-1] * len(ids)


def test_isin_equals_pandas_isin():
    values = pd.Series(["a", None, "b", "é", "x", np.nan] * 30, dtype=STR_DTYPE)  # past the small-set path
    keys = pd.Series(["a", "é", None] * 20, dtype=STR_DTYPE)
    want = values.astype(object).isin(set(keys.dropna())) & values.notna()
    assert _isin(values, keys).tolist() == want.tolist()
    assert _isin(values.astype(object), keys.astype(object)).tolist() == want.tolist()


def test_hash64_of_integers_is_the_hash_of_their_digits():
    ints = np.array([0, 7, -3, 10**17 + 3, 2**62], dtype=np.int64)
    texts = pd.Series([None, "7", "-3", str(10**17 + 3), str(2**62)], dtype=object)
    got, want = hash64(ints, KEY, "k"), hash64(texts, KEY, "k")
    assert got.tolist() == want.tolist() and got[0] == 0 and (got[1:] != 0).all()


def test_lexicon_reads_an_arrow_column_as_it_reads_objects():
    lex = load_lexicon()
    texts = ["他说要砍死对方", None, "", "双方因噪音发生口角", np.nan, "Threat: 杀了你"] * 20
    arrow = lex.matrix(pd.Series(texts, dtype=STR_DTYPE))
    objects = lex.matrix(pd.Series(texts, dtype=object))
    records = lex.matrix(pd.Series(texts, dtype=object), engine="re2")
    assert (arrow == objects).all() and (arrow == records).all()
    assert arrow.sum() > 0


def test_reasons_written_once_per_list_equal_one_per_row():
    reasons = [[], ["a", "乙"], [], ("a", "乙"), np.array(["x"]), None, "[\"y\"]", ["a", "乙"]]
    idx = pd.RangeIndex(len(reasons))
    assert _dumps_rows(idx, reasons) == [_dumps(_reasons_list(r, "row")) for r in reasons]
    scores = pd.DataFrame({"dispute_id": [f"D{i}" for i in range(4)],
                           "reasons": [[], ["甲", "b"], [], ["甲", "b"]], "reasons_zh": [[], ["甲"], [], ["甲"]],
                           "reason_features": [[], ["f"], [], ["f"]]})
    out = _for_csv(scores)
    for c in ("reasons", "reasons_zh", "reason_features"):
        assert out[c].tolist() == [json.dumps(list(v), ensure_ascii=False) for v in scores[c]]


@pytest.mark.parametrize("dtype", [STR_DTYPE, pd.StringDtype(), object])
def test_csv_cells_of_a_text_column_equal_one_cell_at_a_time(dtype):
    from escalation_risk.outputs import _cell, _cell_text

    s = pd.Series(["=1+2", "+x", "-", "@a", "\tq", "\rr", "ok", "", None, "中=", " =a"], dtype=dtype)
    got = _cell_text(s).tolist()
    want = [_cell(v) for v in s.astype(object).tolist()]
    assert [repr(v) for v in got] == [repr(v) for v in want]
    assert got[0] == "'=1+2" and got[6] == "ok"



@pytest.mark.parametrize("dtype", [object, STR_DTYPE])
def test_names_normalised_once_give_the_same_pseudonyms(dtype):
    """The loader normalises the raw names once (for the linkage keys) and hands them to
    pseudonymise: the same pseudonyms as normalising the stripped values there, padded,
    blank, full-width, traditional and non-text values included."""
    from escalation_risk.normalize import normalise_name
    values = TRICKY + [" 李四 ", "\u00a0王五\u00a0", "\u3000赵六", "x\u2003", "張三", "ＡＢ", "a·b", None]
    raw = pd.Series(values, dtype=object)
    if dtype is object:
        raw = pd.concat([raw, pd.Series([123, np.nan], dtype=object)], ignore_index=True)
    else:
        raw = raw.astype(STR_DTYPE)
    given = normalise_name(raw)
    padded = np.array([isinstance(v, str) and v != v.strip() for v in raw.astype(object)])
    assert (given.notna().to_numpy() & padded).any()  # the values normalised again are exercised
    pd.testing.assert_series_equal(pseudonymise(raw, KEY, "name", normalised=given), pseudonymise(raw, KEY, "name"))
