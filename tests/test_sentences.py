"""Reasons a mediator can read: every feature's sentence at typical, zero and missing values."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from escalation_risk.features import REGISTRY
from escalation_risk.features.sentences import has_sentence, render

LATIN = re.compile(r"[A-Za-z]")
TRAILING_ZERO = re.compile(r"\d\.0\b")
LEFTOVERS = ("—", "{", "}", "nan", "NaN", "<NA>", "NaT", "?")


def _values(f) -> dict[str, object]:
    """Typical, zero and missing values of one feature (typical: a real figure, not 1)."""
    if f.kind == "category":
        return {"typical": (f.categories or ("other",))[0], "zero": (f.categories or ("other",))[-1],
                "missing": None}
    if f.kind == "flag":
        return {"typical": 1.0, "zero": 0.0, "missing": np.nan}
    if f.name == "log_amount":
        return {"typical": float(np.log1p(20000.0)), "zero": 0.0, "missing": np.nan}
    if f.name == "as_of_month":
        return {"typical": 6.0, "zero": 1.0, "missing": np.nan}
    return {"typical": 7.0 if f.kind == "count" else 12.4, "zero": 0.0, "missing": np.nan}


def _row(f, value) -> dict[str, object]:
    # A two-party dispute whose largest share is 4: totals are then told per party.
    row: dict[str, object] = {"n_person_parties": 2.0, f.name: value}
    if f.name.endswith("_sum"):
        row[f.name[:-4] + "_max"] = 4.0 if not pd.isna(value) and value else 0.0
    return row


def _faults(text: str, lang: str) -> list[str]:
    found = [f"contains {bad!r}" for bad in LEFTOVERS if bad in text]
    if re.search(r"\bNone\b(?! of)", text):
        found.append("contains a Python None")
    if TRAILING_ZERO.search(text):
        found.append("a number written with .0")
    if lang == "zh":
        if LATIN.search(text):
            found.append("Latin letters (an English code?) in Chinese text")
        if not text.endswith("。") or text.count("。") != 1:
            found.append("not one sentence ending in 。")
    else:
        if not ((text[0].isupper() or text[0].isdigit()) and text.endswith(".")) or ". " in text:
            found.append("not one sentence with a capital and a full stop")
        if re.search(r"\b1 (?!day\b|of\b)\w+s\b", text) and "1 later record" not in text:
            found.append("a plural after 1")
    return found


@pytest.mark.parametrize("name", REGISTRY.names)
def test_every_feature_reads_as_a_sentence(name):
    f = REGISTRY[name]
    assert has_sentence(name), f"{name} has no sentence of its own in features/sentences.py"
    texts = {}
    for case, value in _values(f).items():
        for lang in ("en", "zh"):
            text = render(name, _row(f, value), lang)
            faults = _faults(text, lang)
            assert not faults, f"{name} {case} {lang}: {text!r}: {faults}"
            texts[case, lang] = text
    for lang in ("en", "zh"):
        # Zero and missing are said in words of their own, not the typical sentence with a blank.
        assert texts["missing", lang] != texts["typical", lang]
        if f.kind != "category":
            assert texts["zero", lang] != texts["missing", lang]
    typical = texts["typical", "en"]
    if name.endswith("_sum"):  # 7 in all, at most 4 for one of the two parties: 4 and 3
        assert "4 and 3" in typical and "4 次和 3" in texts["typical", "zh"] or "4 个和 3" in texts["typical", "zh"], \
            typical
    elif f.kind in ("count", "number") and name not in ("log_amount", "as_of_month", "hist_trend_max"):
        assert re.search(r"\b(7|12)\b", typical), typical  # the real figure, rounded for days and ages


def test_counts_say_what_they_count():
    row = {"n_person_parties": 2.0, "hist_dispute_365d_max": 33.0, "hist_dispute_365d_sum": 62.0}
    assert render("hist_dispute_365d_sum", row, "en") == \
        "The two parties have 33 and 29 other disputes in the last year."
    assert render("hist_dispute_365d_sum", row, "zh") == "双方当事人近一年分别有 33 次和 29 次其他纠纷。"
    row = {"n_person_parties": 3.0, "hist_police_call_30d_max": 5.0, "hist_police_call_30d_sum": 6.0}
    assert render("hist_police_call_30d_sum", row, "en") == \
        "The 3 parties have 6 police calls in the last 30 days between them, at most 5 for one party."
    assert render("followup_police_calls", {"followup_police_calls": 1.0}, "en") == \
        "The police have been called once about this dispute."


def test_codes_and_absent_values_in_words():
    assert render("category", {"category": "debt"}, "zh") == "纠纷类别：债务纠纷。"
    assert render("category", {"category": "debt"}, "en") == "The dispute is about a debt."
    assert render("days_since_mediation", {"days_since_mediation": np.nan}, "en") == "There has been no mediation yet."
    assert render("days_since_mediation", {"days_since_mediation": np.nan}, "zh") == "尚未调解。"
    assert render("log_amount", {"log_amount": float(np.log1p(20000))}, "en") == "The money at stake is 20,000 yuan."
    assert render("hist_trend_max", {"hist_trend_max": 6.0}, "en").count("6 times") == 1
    # The registry's own entry point gives the same sentence.
    assert REGISTRY["category"].sentence("debt", "zh") == "纠纷类别：债务纠纷。"


def test_reasons_of_a_scored_dispute_carry_both_languages(small_model, small_district):
    scores = small_model.score(small_district, "2025-06-30")
    alerted = scores[scores["reasons"].map(len) > 0]
    assert len(alerted) > 0
    for en, zh in zip(alerted["reasons"], alerted["reasons_zh"]):
        assert len(en) == len(zh)
        for text in en:
            assert not _faults(text, "en"), text
        for text in zh:
            assert not _faults(text, "zh"), text
