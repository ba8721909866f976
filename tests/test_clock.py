"""The one clock and the one moment rule (escalation_risk.clock)."""

import datetime as dt

import pandas as pd
import pytest

from escalation_risk import clock


@pytest.mark.parametrize("text", ["2025-06-30", "2025/06/30", "20250630", "2025-6-30"])
def test_a_date_naming_a_moment_is_the_end_of_that_day(text):
    assert clock.to_moment(text) == pd.Timestamp("2025-06-30 23:59:59.999999")
    assert clock.to_moment(text, role="start") == pd.Timestamp("2025-06-30")


def test_a_date_object_follows_the_same_rule():
    assert clock.to_moment(dt.date(2025, 6, 30)) == pd.Timestamp("2025-06-30 23:59:59.999999")
    assert clock.to_moment(dt.date(2025, 6, 30), role="start") == pd.Timestamp("2025-06-30")


@pytest.mark.parametrize("text, expected", [
    ("2025-06-30T18:00", "2025-06-30 18:00"),
    ("2025-06-30 18:00:05", "2025-06-30 18:00:05"),
    ("2025-06-30T18:00:05.25", "2025-06-30 18:00:05.25"),
])
def test_a_date_time_is_that_moment(text, expected):
    assert clock.to_moment(text) == pd.Timestamp(expected)


def test_an_offset_is_converted_to_the_zone_never_dropped(monkeypatch):
    monkeypatch.setenv(clock.TIMEZONE_ENV, "Asia/Shanghai")
    assert clock.to_moment("2025-06-30T16:00:00+00:00") == pd.Timestamp("2025-07-01 00:00")
    assert clock.to_moment("2025-06-30T16:00:00Z") == pd.Timestamp("2025-07-01 00:00")
    assert clock.to_moment("2025-06-30T10:00+0800") == pd.Timestamp("2025-06-30 10:00")
    aware = pd.Timestamp("2025-06-30T16:00:00", tz="UTC")
    assert clock.to_moment(aware) == pd.Timestamp("2025-07-01 00:00")


@pytest.mark.parametrize("bad", ["30/06/2025", "2025-13-01", "2025-02-30", "yesterday", "", "2025-06-30T25:00"])
def test_a_bad_value_is_refused_naming_what_and_the_value(bad):
    with pytest.raises(clock.MomentError, match=r"--as-of: .*" ):
        clock.to_moment(bad, what="--as-of")


def test_now_is_in_the_configured_zone_whatever_the_host_clock(monkeypatch):
    monkeypatch.setenv(clock.TIMEZONE_ENV, "Asia/Shanghai")
    utc = pd.Timestamp(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    shanghai = clock.now()
    assert abs((shanghai - utc) - pd.Timedelta(hours=8)) < pd.Timedelta(seconds=5)
    monkeypatch.setenv(clock.TIMEZONE_ENV, "UTC")
    assert abs(clock.now() - utc) < pd.Timedelta(seconds=5)


def test_an_unknown_zone_is_named(monkeypatch):
    monkeypatch.setenv(clock.TIMEZONE_ENV, "Mars/Olympus")
    with pytest.raises(clock.MomentError, match="Mars/Olympus"):
        clock.now()


def test_the_loader_reading_converts_offsets_and_flags_bad_values(monkeypatch):
    monkeypatch.setenv(clock.TIMEZONE_ENV, "Asia/Shanghai")
    text = pd.Series(["2025-06-30", "2025/06/30 08:00", "2025-06-30T16:00:00+00:00", "junk", None])
    out, bad = clock.parse_series(text)
    assert list(out[:3]) == [pd.Timestamp("2025-06-30"), pd.Timestamp("2025-06-30 08:00"),
                             pd.Timestamp("2025-07-01 00:00")]
    assert list(bad) == [False, False, False, True, False]
    assert clock.parse_one("2025-06-30T16:00:00+00:00") == pd.Timestamp("2025-07-01 00:00")
    assert clock.parse_one("junk") is None
