"""The data contract in code: loading, validation, quarantine, pseudonymisation."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import KEY, late_tables, tiny_tables

from escalation_risk import Dataset, DataValidationError, load_dataset
from escalation_risk.contract import TABLES
from escalation_risk.pseudonym_keys import PseudonymKeyError, generate_key_file, resolve_pseudonym_key

RAW_PII = ["张伟", "李娜", "王强", "赵敏", "11010519491231002X", "110101198202023459", "13800000001",
           "13800000002", "13800000004", "138-0000-0001"]


def _write(tables: dict[str, pd.DataFrame], folder, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False)
        else:
            df.to_parquet(folder / f"{name}.parquet", index=False)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_every_table(tmp_path, fmt):
    direct = Dataset.from_frames(pseudonym_key=KEY, **tiny_tables())
    _write(tiny_tables(), tmp_path / fmt, fmt)
    loaded = load_dataset(tmp_path / fmt, pseudonym_key=KEY)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(direct, name), check_dtype=True)
    assert loaded.quarantine.empty


def test_dataset_write_and_reload_keeps_pseudonyms(tmp_path, tiny_ds):
    tiny_ds.write(tmp_path / "out", fmt="parquet")
    frames = {p.stem: pd.read_parquet(p) for p in (tmp_path / "out").glob("*.parquet")}
    again = Dataset.from_frames(pseudonymised=True, **frames)
    pd.testing.assert_frame_equal(again.persons, tiny_ds.persons)
    assert tiny_ds.fingerprint() == again.fingerprint()


def test_types_are_parsed(tiny_ds):
    inc = tiny_ds.incidents
    assert str(inc["reported_at"].dtype) == "datetime64[ns]"
    assert isinstance(inc["kind"].dtype, pd.CategoricalDtype)
    assert inc["amount"].dtype == "float64"
    assert str(tiny_ds.persons["birth_year"].dtype) == "Int64"


def test_missing_optional_tables_are_empty_with_columns():
    t = tiny_tables()
    ds = Dataset.from_frames(pseudonym_key=KEY, persons=t["persons"], places=t["places"],
                             incidents=t["incidents"].assign(related_incident_id=None),
                             incident_parties=t["incident_parties"][t["incident_parties"].party_type == "person"])
    assert ds.mediations.empty and list(ds.mediations.columns) == TABLES["mediations"].column_names
    assert str(ds.mediations["held_at"].dtype) == "datetime64[ns]"


# ----------------------------------------------------------------------------- each rule

def _break(table: str, row: int, column: str, value) -> dict[str, pd.DataFrame]:
    t = late_tables()
    df = t[table].astype(object)
    df.loc[row, column] = value
    t[table] = df
    return t


RULES = [
    ("persons", 1, "birth_year", "nineteen", "not a number"),
    ("persons", 1, "gender", "robot", "unknown code"),
    ("persons", 1, "person_id", "p1", "duplicate id"),
    ("incidents", 2, "reported_at", "2024-13-45", "not an ISO 8601 timestamp"),
    ("incidents", 2, "reported_at", "2024-03-01", "must not be before occurred_at"),
    ("incidents", 2, "amount", -5, "must be >= 0"),
    ("incidents", 2, "amount", "lots", "not a number"),
    ("incidents", 2, "category", "assault", "an offence code only on criminal cases"),
    ("incidents", 2, "kind", None, "required value is missing"),
    ("incidents", 2, "place_id", "nowhere", "refers to a missing place"),
    ("incident_parties", 4, "incident_id", "zz", "refers to a missing incident"),
    ("incident_parties", 4, "party_id", "ghost", "refers to a missing person"),
    ("incident_parties", 7, "party_id", "o9", "refers to a missing organization"),
    ("household_members", 2, "household_id", "h9", "refers to a missing household"),
    ("mediations", 1, "incident_id", "zz", "refers to a missing incident"),
    ("relations", 1, "relation", "rival", "unknown code"),
    ("person_flags", 0, "recorded_at", "yesterday", "not an ISO 8601 timestamp"),
    # contract 1.1
    ("incident_parties", 11, "added_at", "2024-03-01", "must not be before its incident's reported_at"),
    ("incident_parties", 11, "added_at", "soon", "not an ISO 8601 timestamp"),
    ("mediations", 1, "outcome_at", "2024-03-19", "must not be before held_at"),
    ("person_attributes", 0, "value", "migrant", "not one of its attribute's codes"),
    ("person_attributes", 2, "value", "employed", "not one of its attribute's codes"),
    ("person_attributes", 1, "attribute", "salary", "unknown code"),
    ("person_attributes", 1, "person_id", "ghost", "refers to a missing person"),
    ("person_attributes", 1, "recorded_at", None, "required value is missing"),
    ("incident_notes", 0, "recorded_at", "2024-03-01T23:00:00", "must not be before its incident's reported_at"),
    ("incident_notes", 1, "incident_id", "zz", "refers to a missing incident"),
    ("incident_notes", 1, "note_id", "n1", "duplicate id"),
]


@pytest.mark.parametrize("table,row,column,value,reason", RULES)
def test_each_rule_strict_names_table_column_row(table, row, column, value, reason):
    with pytest.raises(DataValidationError) as e:
        Dataset.from_frames(pseudonym_key=KEY, **_break(table, row, column, value))
    msg = str(e.value)
    assert f"table {table!r}" in msg and f"column {column!r}" in msg and f"row {row}" in msg
    assert reason in msg
    assert msg.rstrip().endswith('load with errors="quarantine".')  # the way to keep the good rows
    p = e.value.problems
    assert ((p["table"] == table) & (p["column"] == column) & (p["row"] == row)).any()


@pytest.mark.parametrize("table,row,column,value,reason", RULES)
def test_each_rule_quarantine_conserves_rows(table, row, column, value, reason):
    t = _break(table, row, column, value)
    ds = Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **t)
    q = ds.quarantine
    assert ((q["table"] == table) & (q["row"] == row) & q["reason"].str.contains(reason, regex=False)).any()
    for name in TABLES:
        kept = len(getattr(ds, name))
        rejected = len(ds.rejected.get(name, ()))
        assert kept + rejected == len(t[name]) == ds.rows_read[name], name


def test_quarantine_cascades_to_dependants():
    # A rejected incident takes its parties and mediations with it, with a reason each.
    ds = Dataset.from_frames(pseudonym_key=KEY, errors="quarantine",
                             **_break("incidents", 0, "reported_at", "not a date"))
    assert "d1" not in set(ds.incidents["incident_id"])
    assert not ds.incident_parties["incident_id"].isin(["d1"]).any()
    assert len(ds.rejected["mediations"]) == 2
    assert (ds.quarantine.query("table == 'mediations'")["reason"] == "refers to a missing incident").all()


def test_many_problems_are_counted(tables):
    tables["persons"] = tables["persons"].assign(gender="robot")
    with pytest.raises(DataValidationError) as e:
        Dataset.from_frames(pseudonym_key=KEY, **tables)
    assert len(e.value.problems) >= 5


def test_structural_problems_raise_even_in_quarantine(tables):
    with pytest.raises(DataValidationError, match="required table is missing") as e:
        Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", persons=tables["persons"],
                            places=tables["places"], incidents=tables["incidents"])
    assert "errors=" not in str(e.value)  # quarantine would not help: not suggested
    t = tiny_tables()
    t["incidents"] = t["incidents"].drop(columns=["reported_at"])
    with pytest.raises(DataValidationError, match="column 'reported_at'.*required column is missing"):
        Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **t)


def test_unknown_columns_are_kept(tables):
    tables["persons"]["favourite_colour"] = "blue"
    ds = Dataset.from_frames(pseudonym_key=KEY, **tables)
    assert "favourite_colour" in ds.persons.columns


def test_not_utf8_file(tmp_path):
    _write(tiny_tables(), tmp_path, "csv")
    (tmp_path / "persons.csv").write_bytes("person_id,name\np1,张伟\n".encode("gbk"))
    with pytest.raises(DataValidationError, match="persons.csv is not UTF-8"):
        load_dataset(tmp_path, pseudonym_key=KEY)


def test_not_a_table(tmp_path):
    _write(tiny_tables(), tmp_path, "parquet")
    (tmp_path / "places.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataValidationError, match="places.parquet is not a readable Parquet table"):
        load_dataset(tmp_path, pseudonym_key=KEY)
    (tmp_path / "places.parquet").unlink()
    (tmp_path / "places.csv").write_text("")
    with pytest.raises(DataValidationError, match="places.csv is empty"):
        load_dataset(tmp_path, pseudonym_key=KEY)


def test_booleans_and_bad_errors_argument(tables):
    with pytest.raises(ValueError, match="errors must be"):
        Dataset.from_frames(pseudonym_key=KEY, errors="ignore", **tables)


# ----------------------------------------------------------------------------- pseudonymisation

def _everything_as_text(ds: Dataset) -> str:
    parts = [df.astype(str).to_csv() for df in ds.tables().values()]
    parts += [df.astype(str).to_csv() for df in ds.rejected.values()]
    parts.append(ds.quarantine.astype(str).to_csv())
    return "\n".join(parts)


def test_no_raw_identifier_anywhere(tmp_path, tiny_ds):
    text = _everything_as_text(tiny_ds)
    for raw in RAW_PII:
        assert raw not in text
    assert "13800000001" not in text and "11010519491231002X" not in text


def test_no_raw_identifier_in_errors_about_those_rows():
    t = tiny_tables()
    t["persons"] = t["persons"].astype(object)
    t["persons"].loc[0, "gender"] = "robot"
    t["persons"].loc[1, "person_id"] = "p1"
    with pytest.raises(DataValidationError) as e:
        Dataset.from_frames(pseudonym_key=KEY, **t)
    ds = Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **t)
    for raw in RAW_PII:
        assert raw not in str(e.value)
        assert raw not in e.value.problems.to_csv()
    assert all(raw not in _everything_as_text(ds) for raw in RAW_PII)


K1 = "first SAMPLE-ONLY key for tests, 32+ bytes"
K2 = "second SAMPLE-ONLY key for tests, 32+ bytes"


def test_pseudonyms_are_keyed_and_normalised(tables):
    a = Dataset.from_frames(pseudonym_key=K1, **tiny_tables())
    b = Dataset.from_frames(pseudonym_key=K1, **tiny_tables())
    c = Dataset.from_frames(pseudonym_key=K2, **tiny_tables())
    assert a.persons["name"].equals(b.persons["name"])
    assert not (a.persons["name"] == c.persons["name"]).any()
    # Same phone written two ways gets the same pseudonym (p1 and p3).
    ph = a.persons.set_index("person_id")["phone"]
    assert ph["p1"] == ph["p3"]


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("ESCALATION_RISK_PSEUDONYM_KEY", K1)
    a = Dataset.from_frames(**tiny_tables())
    b = Dataset.from_frames(pseudonym_key=K1, **tiny_tables())
    assert a.persons["name"].equals(b.persons["name"])


def test_no_key_is_refused_with_how_to_make_one():
    with pytest.raises(PseudonymKeyError, match="escalation-risk keygen PATH"):
        Dataset.from_frames(**tiny_tables())


@pytest.mark.parametrize("key,match", [
    ("", "0 bytes"), ("short", "at least 32"), ("a" * 40, "too repetitive"),
    ("escalation-risk-development-key", "published development key"),
])
def test_weak_keys_are_refused(key, match, monkeypatch):
    with pytest.raises(PseudonymKeyError, match=match):
        Dataset.from_frames(pseudonym_key=key, **tiny_tables())
    monkeypatch.setenv("ESCALATION_RISK_PSEUDONYM_KEY", key)  # an empty variable is no key either
    with pytest.raises(PseudonymKeyError, match=match):
        Dataset.from_frames(**tiny_tables())


def test_key_file_from_keygen(tmp_path, monkeypatch):
    path = generate_key_file(tmp_path / "district.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64
    with pytest.raises(FileExistsError):
        generate_key_file(path)  # never overwrites a key
    monkeypatch.setenv("ESCALATION_RISK_PSEUDONYM_KEY_FILE", str(path))
    a = Dataset.from_frames(**tiny_tables())
    b = Dataset.from_frames(pseudonym_key=path, **tiny_tables())
    c = Dataset.from_frames(pseudonym_key=path.read_text().strip(), **tiny_tables())
    assert a.persons["name"].equals(b.persons["name"]) and a.persons["name"].equals(c.persons["name"])
    monkeypatch.setenv("ESCALATION_RISK_PSEUDONYM_KEY_FILE", str(tmp_path / "nope.key"))
    with pytest.raises(PseudonymKeyError, match="does not exist"):
        Dataset.from_frames(**tiny_tables())


def test_the_sample_key_is_committed_and_usable():
    key = resolve_pseudonym_key(Path(__file__).parents[1] / "data" / "sample" / "SAMPLE_KEY")
    assert key.startswith(b"SAMPLE-ONLY")


def test_cut_keeps_only_what_was_known(tiny_ds):
    cut = tiny_ds.cut("2024-03-31")
    assert set(cut.incidents["incident_id"]) == {"d1", "c1", "x1"}
    assert cut.incidents.set_index("incident_id").loc["c1", "closed_at"] == pd.Timestamp("2024-03-11")
    assert len(cut.mediations) == 2 and len(cut.person_flags) == 2
    # A membership that ends later is still running at the cut.
    assert cut.household_members["end_date"].isna().all()


# ----------------------------------------------------------------------------- small-request engine

@pytest.mark.parametrize("table,row,column,value,reason", RULES)
def test_record_engine_reports_what_the_frame_engine_reports(table, row, column, value, reason):
    """validate_rows answers a service's few rows record by record; it must agree exactly
    with the vectorised engine used for files (same problems, same messages)."""
    from escalation_risk.dataset import validate_rows
    t = _break(table, row, column, value)[table]
    results = {}
    for engine in ("frame", "records"):
        try:
            results[engine] = validate_rows(table, t, pseudonym_key=KEY, engine=engine)
        except DataValidationError as e:
            results[engine] = e.problems.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    a, b = results["frame"], results["records"]
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


@pytest.mark.parametrize("table", ["incidents", "incident_parties", "mediations", "persons", "relations",
                                   "household_members", "places", "person_attributes", "incident_notes"])
def test_record_engine_types_match_frame_engine(table):
    from escalation_risk.dataset import validate_rows
    t = late_tables()[table]
    a = validate_rows(table, t, pseudonym_key=KEY, engine="frame")
    b = validate_rows(table, t, pseudonym_key=KEY, engine="records")
    pd.testing.assert_frame_equal(a, b)


def test_csv_with_byte_order_mark(tmp_path):
    """Spreadsheet exports often start with a UTF-8 BOM; the header must still be read."""
    _write(tiny_tables(), tmp_path, "csv")
    text = (tmp_path / "persons.csv").read_text(encoding="utf-8")
    (tmp_path / "persons.csv").write_text(text, encoding="utf-8-sig")
    ds = load_dataset(tmp_path, pseudonym_key=KEY)
    assert list(ds.persons["person_id"]) == ["p1", "p2", "p3", "p4", "p5"]


# ----------------------------------------------------------------------------- input checks (issue 14)

def test_malformed_identifiers_are_reported_without_value_and_the_person_kept():
    t = tiny_tables()
    t["persons"] = t["persons"].astype(object)
    t["persons"].loc[0, "id_number"] = "110105194912310021"  # wrong check digit
    t["persons"].loc[1, "phone"] = "1380000000"  # 10 digits
    with pytest.raises(DataValidationError, match="GB 11643 check digit"):
        Dataset.from_frames(pseudonym_key=KEY, **t)
    ds = Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **t)
    assert len(ds.persons) == 5 and not ds.rejected
    p = ds.persons.set_index("person_id")
    assert pd.isna(p.loc["p1", "id_number"]) and pd.isna(p.loc["p2", "phone"])
    q = ds.quarantine
    assert set(q["column"]) == {"id_number", "phone"} and (q["value"] == "").all()
    assert (q["action"] == "value set to missing, row kept").all()
    text = q.to_csv()
    assert "110105194912310021" not in text and "1380000000" not in text
    # p1 still takes part in its disputes: nothing cascaded.
    assert len(ds.incident_parties) == len(t["incident_parties"])


def test_one_bad_non_essential_field_keeps_the_person_and_their_links():
    t = _break("persons", 0, "gender", "robot")
    ds = Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **t)
    assert "p1" in set(ds.persons["person_id"])
    assert pd.isna(ds.persons.set_index("person_id").loc["p1", "gender"])
    for name in ("incident_parties", "relations", "household_members"):
        assert len(getattr(ds, name)) == len(t[name]), name
    row = ds.quarantine.iloc[0]
    assert (row["column"], row["action"]) == ("gender", "value set to missing, row kept")
    # An id or a time the record cannot do without still sets the row aside.
    ds = Dataset.from_frames(pseudonym_key=KEY, errors="quarantine",
                             **_break("incidents", 0, "closed_at", "soon"))
    assert "d1" not in set(ds.incidents["incident_id"])
    assert (ds.quarantine["action"] == "row set aside").all()


@pytest.mark.parametrize("table,row,column,value,reason", [
    ("persons", 1, "birth_year", 2999, "in the future"),
    ("incidents", 2, "amount", float("inf"), "not a finite number"),
    ("incidents", 2, "amount", "inf", "not a finite number"),
    ("incidents", 2, "reported_at", "2024.04.02", "not an ISO 8601 timestamp"),
    ("incidents", 2, "reported_at", "20240402", "not an ISO 8601 timestamp"),
])
def test_more_input_rules(table, row, column, value, reason):
    with pytest.raises(DataValidationError, match=reason):
        Dataset.from_frames(pseudonym_key=KEY, **_break(table, row, column, value))


def test_documented_date_forms_are_accepted():
    for value in ("2024/04/02", "2024-04-02 08:30", "2024-04-02T08:30:00+08:00", "2024-4-2"):
        ds = Dataset.from_frames(pseudonym_key=KEY, **_break("incidents", 2, "reported_at", value))
        got = ds.incidents.set_index("incident_id").loc["d2", "reported_at"]
        assert got.date() == pd.Timestamp("2024-04-02").date()
    # A mix of naive and offset times is no crash either.
    t = _break("incidents", 2, "closed_at", "2024-05-01T00:00:00Z")
    assert len(Dataset.from_frames(pseudonym_key=KEY, **t).incidents) == 6


def test_reports_give_the_csv_line_and_never_free_text(tmp_path):
    t = tiny_tables()
    t["incidents"] = t["incidents"].astype(object)
    # A description over three lines: the bad row below is not on line row + 2.
    t["incidents"].loc[0, "description"] = "张三 身份证 11010519491231002X\n电话 13812345678\n第三行"
    t["incidents"].loc[2, "category"] = "王五 13912345678"
    t["incidents"].loc[2, "description"] = "secret text 13812345678"
    _write(t, tmp_path, "csv")
    ds = load_dataset(tmp_path, pseudonym_key=KEY, errors="quarantine")
    q = ds.quarantine.query("table == 'incidents'")
    assert set(q["row"]) == {2} and set(q["line"]) == {6}  # header, d1 on lines 2-4, c1 on 5
    # A bad code is shown by its length only: a name typed there is not repeated.
    assert q["value"].iloc[0] == "[14 characters]"
    rej = ds.rejected["incidents"]
    assert "description" not in rej.columns and rej["_line"].tolist() == [6]
    assert rej["category"].tolist() == ["[14 characters]"]
    text = "\n".join(df.astype(str).to_csv() for df in ds.rejected.values()) + ds.quarantine.to_csv()
    for raw in ("secret text", "13812345678", "13912345678", "11010519491231002X", "张伟", "王五"):
        assert raw not in text
    with pytest.raises(DataValidationError, match=r"row 2 \(line 6 of the file\)"):
        load_dataset(tmp_path, pseudonym_key=KEY)


# ----------------------------------------------------------------------------- new rows as records (Scorer.add)

_D = dt.datetime(2024, 5, 2, 9, 30)
NEW_ROWS = [
    ("incidents", [{"incident_id": "n1", "kind": "dispute", "category": "neighbor", "occurred_at": "2024-05-01",
                    "reported_at": pd.Timestamp("2024-05-02"), "place_id": "pl1", "source": "walk_in",
                    "status": "open", "amount": 1200, "description": "  楼上漏水 "}]),
    # an integer beside a missing value: a frame reads 1200 as 1200.0 (the frame is made)
    ("incidents", [{"incident_id": "n1", "kind": "dispute", "category": "neighbor", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl1", "source": "walk_in", "amount": 1200},
                   {"incident_id": "n2", "kind": "police_call", "category": "neighbor", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl2", "source": "police_110", "amount": None,
                    "related_incident_id": "n1"}]),
    ("incidents", [{"incident_id": 7, "kind": "dispute", "category": "neighbor", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl1", "source": "walk_in"},
                   {"incident_id": "n8", "kind": "dispute", "category": "neighbor", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl1", "source": "walk_in", "related_incident_id": 7}]),
    # a column outside the contract (our_ref)
    ("incidents", [{"incident_id": "n1", "kind": "dispute", "category": "neighbor", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl1", "source": "walk_in", "our_ref": np.int64(3)}]),
    ("incident_parties", [{"incident_id": "d1", "party_id": "p5", "party_type": "person", "role": "other",
                           "added_at": np.datetime64("2024-04-01T10:00")},
                          {"incident_id": "d2", "party_id": "o1", "party_type": "ORGANIZATION ", "role": "other"}]),
    ("mediations", [{"mediation_id": "m9", "incident_id": "d2", "held_at": _D, "mediator_type": "court",
                     "outcome": "failed", "outcome_at": None}]),
    ("persons", [{"person_id": "p9", "birth_year": np.int64(1991), "gender": "female", "hukou": "local",
                  "employment": "employed", "name": " 王 芳", "id_number": None, "phone": "13800000009"}]),
    # aware times, converted to the zone as the frame converts an aware column (never stripped)
    ("incidents", [{"incident_id": "n1", "kind": "dispute", "category": "neighbor",
                    "occurred_at": dt.datetime(2024, 5, 2, 1, 30, tzinfo=dt.timezone.utc),
                    "reported_at": pd.Timestamp("2024-05-02 09:30", tz="UTC"), "place_id": "pl1",
                    "source": "walk_in"}]),
    # missing text as None beside NaN (and pd.NA): both missing, as the frame's strings read them
    ("incidents", [{"incident_id": "n1", "kind": "dispute", "category": "neighbor", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl1", "source": "walk_in", "description": None,
                    "related_incident_id": np.nan, "amount": None},
                   {"incident_id": "n2", "kind": "dispute", "category": "neighbor", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl1", "source": "walk_in", "description": float("nan"),
                    "related_incident_id": None, "amount": np.nan, "closed_at": pd.NA}]),
    # refused: a code, a reference, a duplicate, a party added before its incident's report, a bad time
    ("incidents", [{"incident_id": "n1", "kind": "dispute", "category": "assault", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl1", "source": "walk_in"}]),
    ("incidents", [{"incident_id": "d1", "kind": "dispute", "category": "neighbor", "occurred_at": _D,
                    "reported_at": _D, "place_id": "pl-none", "source": "walk_in"}]),
    ("incident_parties", [{"incident_id": "d1", "party_id": "p-none", "party_type": "person", "role": "other",
                           "added_at": "2024-01-01"}]),
    ("mediations", [{"mediation_id": "m1", "incident_id": "d2", "held_at": "2024-06-01", "mediator_type": "court",
                     "outcome": "failed", "outcome_at": "2024-05-01"}]),
    ("persons", [{"person_id": "p1", "birth_year": 2999, "gender": "robot", "hukou": "local",
                  "employment": "employed", "name": "王芳", "id_number": "110105194912310021", "phone": None}]),
]


@pytest.fixture(scope="module")
def late_ds():
    return Dataset.from_frames(pseudonym_key=KEY, **late_tables())


@pytest.mark.parametrize("table,records", NEW_ROWS)
def test_new_rows_given_as_records_equal_the_rows_append_adds_from_their_frame(late_ds, table, records,
                                                                                monkeypatch):
    """Dataset.new_rows (what Scorer.add validates its records with) gives the rows append
    adds when given the records' frame, in the same types, or refuses them with the same
    problems: the record engine reads records as given only where a frame reads them alike."""
    from escalation_risk.dataset import build, read_alike

    def outcome(fn):
        try:
            return fn()
        except DataValidationError as e:
            return e.problems
    def appended():
        return getattr(late_ds.append(pseudonym_key=KEY, **{table: pd.DataFrame(records)}), table) \
            .iloc[len(getattr(late_ds, table)):].reset_index(drop=True)
    got = outcome(lambda: late_ds.new_rows(pseudonym_key=KEY, **{table: records})[table])
    small_frame = outcome(appended)  # a few rows of a frame: the record engine reads them too
    monkeypatch.setattr(build, "SMALL", 0)
    want = outcome(appended)  # the frame engine
    # A column outside the contract keeps its rows' type (append's is the join's: the history lacks it).
    pd.testing.assert_frame_equal(got, want, check_dtype="our_ref" not in got.columns)
    pd.testing.assert_frame_equal(small_frame, want)
    # read as records unless an integer sits beside a missing value (rows 1, 2) or a column is not the contract's (3)
    i = NEW_ROWS.index((table, records))
    assert read_alike(TABLES[table], records) == (i not in (1, 2, 3))
    # refused: the last five, and row 2 (a frame reads its second row's 7 as 7.0: no such incident)
    assert ("reason" in got.columns) == (i >= len(NEW_ROWS) - 5 or i == 2)


def test_new_rows_are_the_rows_append_adds(late_ds):
    rows = dict(NEW_ROWS[1:2] + NEW_ROWS[4:7])
    got = late_ds.new_rows(pseudonym_key=KEY, **rows)
    grown = late_ds.append(pseudonym_key=KEY, **{t: pd.DataFrame(r) for t, r in rows.items()})
    assert set(got) == set(rows)
    for t in rows:
        pd.testing.assert_frame_equal(got[t], getattr(grown, t).iloc[len(getattr(late_ds, t)):].reset_index(drop=True))
        assert len(got[t]) == len(rows[t])


def test_reference_checks_two_at_a_time_equal_one_at_a_time(monkeypatch):
    """A large table's reference checks run by two threads: the same problems, in the same order."""
    from escalation_risk import forks

    t = late_tables()
    for table, row, column, value, reason in RULES:
        if "missing" in reason and "required" not in reason or "before its incident" in reason:
            df = t[table].astype(object)
            df.loc[row, column] = value
            t[table] = df

    def quarantine(workers: str) -> pd.DataFrame:
        monkeypatch.setenv(forks.WORKERS_ENV, workers)
        monkeypatch.setattr(forks, "FORK_MIN_ROWS", 1)
        return Dataset.from_frames(pseudonym_key=KEY, errors="quarantine", **t).quarantine

    one, two = quarantine("1"), quarantine("2")
    pd.testing.assert_frame_equal(one, two)
    reasons = set(one["reason"])
    assert {"refers to a missing incident", "refers to a missing person (party_type person)",
            "refers to a missing organization (party_type organization)"} <= reasons, reasons
    assert any("before its incident" in r for r in reasons)
