import pytest

from escalation_risk.idnumbers import (
    gb11643_check_digit, is_valid_id, is_valid_mobile, normalise_id, normalise_phone,
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
