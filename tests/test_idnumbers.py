import pytest

from escalation_risk.idnumbers import (
    gb11643_check_digit,
    is_valid_id,
    is_valid_mobile,
    normalise_id,
    normalise_phone,
)


def test_check_digit_of_the_standard_example():
    # GB 11643-1999's worked example: 11010519491231002X
    assert gb11643_check_digit("11010519491231002") == "X"
    assert gb11643_check_digit("44052418800101001") == "4"


def test_valid_and_invalid_ids():
    assert is_valid_id("11010519491231002X")
    assert is_valid_id("11010519491231002x")  # lower-case check character
    assert is_valid_id(" 440524188001010014 ")
    assert not is_valid_id("110105194912310021")  # wrong check digit
    assert not is_valid_id("11010519491331002X")  # month 13 (check digit recomputed below)
    bad_date = "110105194913310" + "02"
    assert not is_valid_id(bad_date + gb11643_check_digit(bad_date))
    assert is_valid_id("110105491231002")  # old 15-digit form
    assert not is_valid_id("110105491331002")
    assert not is_valid_id("12345")
    assert not is_valid_id("")
    assert normalise_id(" 1101 05x ") == "110105X"


def test_check_digit_rejects_bad_input():
    with pytest.raises(ValueError):
        gb11643_check_digit("123")


def test_mobiles():
    assert is_valid_mobile("13812345678")
    assert is_valid_mobile("+86 138-1234-5678")
    assert normalise_phone("0086 13812345678") == "13812345678"
    assert not is_valid_mobile("1381234567")
    assert not is_valid_mobile("12812345678")
    assert not is_valid_mobile("021-12345678")


def _oracle(s: str) -> bool:
    """The scalar rule as it was written before it was vectorised (datetime.date, regex)."""
    import datetime as dt
    import re

    from escalation_risk.idnumbers import normalise_id

    def date_ok(y, m, d):
        try:
            dt.date(y, m, d)
        except ValueError:
            return False
        return True

    s = normalise_id(s)
    if re.fullmatch(r"[0-9]{17}[0-9X]", s):
        check = "10X98765432"[sum(int(c) * w for c, w in zip(s[:17], (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8,
                                                                        4, 2))) % 11]
        return date_ok(int(s[6:10]), int(s[10:12]), int(s[12:14])) and check == s[17]
    if re.fullmatch(r"[0-9]{15}", s):
        return date_ok(1900 + int(s[6:8]), int(s[8:10]), int(s[10:12]))
    return False


def test_vectorised_id_check_agrees_with_the_scalar_rule():
    """valid_ids (the loader's vectorised check) against the rule written out per value, on
    valid numbers, every kind of near miss and junk: the same verdict for each."""
    import numpy as np

    from escalation_risk.idnumbers import gb11643_check_digit, is_valid_id, valid_ids

    rng = np.random.default_rng(3)
    values = ["", "x", "1" * 17, "1" * 19, "１１０１０１１９９００３０７１２３Ｘ", " 110101 19900307 123x ",
              "11010190030712", "110101900229123",
              "110101000229123", "110101200002291234", "11010119000229123X", "11010119960229123X",
              "\t11010119900307123x\x1c", "110101\x1f900307123", "110101 19900307\u3000123X", "1101011990030712\u00b3X",
              "11010119900307123\u0130"]
    for _ in range(3000):
        y, m, d = int(rng.integers(1890, 2030)), int(rng.integers(0, 14)), int(rng.integers(0, 33))
        first = f"{int(rng.integers(110000, 660000))}{y:04d}{m:02d}{d:02d}{int(rng.integers(0, 1000)):03d}"
        good = first + gb11643_check_digit(first)
        values += [good, first + str(int(rng.integers(0, 10))), good.lower(), good[:6] + good[8:14] + good[14:17],
                   good[:10] + "A" + good[11:], good[:4] + "\v" + good[4:], "\uff11" + good[1:]]
    got = valid_ids(values)
    want = np.array([_oracle(v) for v in values])
    assert (got == want).all(), [v for v, g, w in zip(values, got, want) if g != w][:5]
    assert want.sum() > 1000 and (~want).sum() > 1000
    assert [is_valid_id(v) for v in values[:200]] == list(want[:200])
