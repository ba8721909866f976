"""Privacy by allow-list and cells that are not formulas: what the library writes out."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import KEY

from escalation_risk import outputs
from escalation_risk.cli import main
from escalation_risk.contract import TABLES
from escalation_risk.outputs import FORMULA_START, OUTPUTS

SRC = Path(__file__).resolve().parents[1] / "src" / "escalation_risk"

# What staff might type where it does not belong: a name, a phone and an id number.
NAME, PHONE, IDNUM = "张秘密", "13912345678", "11010519491231002X"
PLANT = f"{NAME} 电话{PHONE} 身份证{IDNUM}"
FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\tTAB", "\rCR"]


def _leaks(text: str) -> list[str]:
    return [t for t in (NAME, PHONE, IDNUM) if t in text]


# --------------------------------------------------------------------------- the writers

@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_every_csv_output_neutralises_formula_cells(name, tmp_path):
    o = OUTPUTS[name]
    n = len(FORMULAS)
    df = pd.DataFrame({c: [FORMULAS[(i + j) % n] for i in range(n)] for j, c in enumerate(o.columns)})
    for c in o.lengths:
        df[c] = FORMULAS
    df["not_declared"] = PLANT
    path = outputs.to_csv(df, name, tmp_path / "out.csv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(o.header)
    cells = [c for r in rows[1:] for c in r]
    assert len(cells) == n * len(o.header)
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    # The text survives, inert: an apostrophe, then what was there.
    assert {c[1:] for c in cells if c.startswith("'")} >= set(FORMULAS) if o.columns else True
    assert PLANT not in path.read_text(encoding="utf-8")


def test_a_cell_that_only_looks_like_a_number_is_left_alone():
    df = pd.DataFrame({"dispute_id": ["a-1"], "probability": [-0.5], "delta": [-0.25], "reasons": [["-x", "=y"]]})
    text = outputs.to_csv(df, "scores")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["probability"] == "-0.5" and row["delta"] == "-0.25" and row["dispute_id"] == "a-1"
    assert json.loads(row["reasons"]) == ["-x", "=y"]  # a JSON list starts with "[": inert as it is


def test_allow_list_drops_undeclared_columns_and_gives_free_text_as_its_length():
    df = pd.DataFrame({"alert_id": [1, 2], "outcome": [PLANT, None], "note": [PLANT, PLANT], "owner": ["wang", "li"]})
    out = outputs.allowed(df, "alerts")
    assert list(out.columns) == ["alert_id", "owner", "outcome_chars"]
    assert out["outcome_chars"].tolist()[0] == len(PLANT) and pd.isna(out["outcome_chars"].tolist()[1])
    assert outputs.only({"alert_id": 1, "outcome": PLANT, "secret": 1}, "alerts") == \
        {"alert_id": 1, "outcome_chars": len(PLANT)}
    assert list(outputs.allowed(out, "alerts").columns) == list(out.columns)  # cutting twice changes nothing
    with pytest.raises(KeyError, match="declare its columns"):
        outputs.allowed(df, "no such output")


def test_no_declared_output_carries_free_text_or_personal_data():
    hidden = {c.name for t in TABLES.values() for c in t.columns if c.kind in ("pii", "text")}
    hidden |= {"outcome", "note", "text_typed", "description", "id_number", "phone"}
    for o in OUTPUTS.values():
        if o.name.startswith("rejected/"):
            table = o.name.split("/", 1)[1]
            assert not {c.name for c in TABLES[table].columns if c.kind in ("pii", "text")} & set(o.columns)
        else:
            # `name`, `text` and `value` are legitimate elsewhere (the webhook's text is built by the library).
            assert not (hidden - {"name", "text"}) & set(o.columns), o.name
    assert "name" not in OUTPUTS["rejected/organizations"].columns


def test_the_webhook_body_is_declared():
    from escalation_risk.alerts.notify import alert_message
    msg = alert_message({"alert_id": 3, "dispute_id": "d1", "level": "red", "plan": "joint_visit",
                         "probability": 0.8, "trend": "new", "owner": "wang", "reasons": [], "reasons_zh": [],
                         "due_at": pd.Timestamp("2025-07-01"), "district": "330101"},
                        pd.Timestamp("2025-06-30").to_pydatetime(), kind="new")
    assert outputs.check_columns(msg, "webhook") == []


def test_protected_text_round_trips(tmp_path):
    df = pd.DataFrame({"t": [*FORMULAS, "'quoted", "''", "plain", None]}, dtype=object)
    p = outputs.protect_text(df)
    assert not [v for v in p["t"].dropna() if v.startswith(FORMULA_START)]
    back = outputs.restore_text(p)
    assert back["t"].tolist()[:-1] == df["t"].tolist()[:-1] and back["t"].isna().tolist()[-1]


def test_every_library_csv_goes_through_the_writer():
    """No module but the writer (and the synthetic generator, which writes raw input, and
    Dataset.write, which protects its text) calls to_csv or csv.writer."""
    # by path below the package, so that another module of the same name is not let through
    allowed_files = {"outputs.py", "synth/writing.py", "dataset/frame.py"}
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).as_posix() in allowed_files:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\.to_csv\(|csv\.writer|DictWriter", line) and "outputs.to_csv" not in line:
                offenders.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert offenders == []


# --------------------------------------------------------------------------- ids and report values

def test_a_formula_id_is_refused_by_name(tmp_path):
    from conftest import tiny_tables

    from escalation_risk import Dataset, DataValidationError, load_dataset
    t = tiny_tables()
    t["incidents"] = t["incidents"].astype(object)
    t["incidents"].loc[2, "incident_id"] = '=HYPERLINK("http://x","y")'
    t["incident_parties"] = t["incident_parties"].astype(object)
    t["incident_parties"].loc[t["incident_parties"]["incident_id"] == "d2", "incident_id"] = \
        '=HYPERLINK("http://x","y")'
    with pytest.raises(DataValidationError, match=r"table 'incidents', column 'incident_id', row 2: not a safe id") \
            as e:
        Dataset.from_frames(pseudonym_key=KEY, **t)
    assert "HYPERLINK" not in str(e.value)
    for name, df in t.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    ds = load_dataset(tmp_path, pseudonym_key=KEY, errors="quarantine")
    assert "d2" not in set(ds.incidents["incident_id"]) and len(ds.rejected["incidents"]) == 1
    assert ds.rejected["incidents"]["incident_id"].tolist() == ["[26 characters]"]
    assert "HYPERLINK" not in ds.quarantine.to_csv()


def test_record_engine_refuses_the_same_ids():
    from escalation_risk import DataValidationError
    from escalation_risk.dataset import validate_rows
    rows = [{"place_id": "-1", "grid_id": "g1"}, {"place_id": "ok.1", "grid_id": "@g"}]
    for engine in ("records", "frame"):
        with pytest.raises(DataValidationError) as e:
            validate_rows("places", rows, engine=engine)
        assert set(zip(e.value.problems["row"], e.value.problems["column"])) == {(0, "place_id"), (1, "grid_id")}


@pytest.mark.parametrize("column,value,shown", [
    ("amount", "-5", "'-5'"), ("amount", NAME, "[3 characters]"), ("amount", PHONE + "x", "[12 characters]"),
    ("closed_at", "2024-13-45", "'2024-13-45'"), ("closed_at", PLANT, f"[{len(PLANT)} characters]"),
    ("source", PLANT, f"[{len(PLANT)} characters]"), ("category", "Neighbour", "[9 characters]"),
])
def test_a_report_shows_only_numbers_and_dates(column, value, shown):
    from escalation_risk.dataset.problems import shown_value
    assert shown_value("incidents", column, value) == shown
    assert shown_value("incidents", "description", PLANT) == ""
    assert shown_value("persons", "name", PLANT) == ""


# --------------------------------------------------------------------------- markers

def _key_file(tmp_path: Path, key: str = KEY) -> Path:
    p = tmp_path / "key"
    p.write_text(key)
    p.chmod(0o600)
    return p


def test_marker_names_the_key_and_another_key_is_refused(tmp_path, tiny_ds):
    from escalation_risk import load_dataset
    from escalation_risk.dataset import MarkerError
    from escalation_risk.pseudonym_keys import key_fingerprint
    out = tiny_ds.write(tmp_path / "w", fmt="csv")
    marker = (out / "PSEUDONYMISED").read_text()
    assert f"key-fingerprint: {key_fingerprint(KEY.encode())}" in marker and KEY not in marker
    assert load_dataset(out, pseudonym_key=KEY).key_fingerprint == key_fingerprint(KEY.encode())
    assert load_dataset(out).key_fingerprint == key_fingerprint(KEY.encode())  # no key set: the marker's
    other = "another key, long enough to be accepted: 0123456789"
    with pytest.raises(MarkerError, match="made with another pseudonym key"):
        load_dataset(out, pseudonym_key=other)
    # An old marker without a fingerprint is refused, never trusted.
    (out / "PSEUDONYMISED").write_text("The personal-data columns of these tables hold keyed pseudonyms.\n")
    with pytest.raises(MarkerError, match="carries no key fingerprint"):
        load_dataset(out, pseudonym_key=KEY)


@pytest.mark.parametrize("column,value", [("id_number", IDNUM), ("phone", PHONE), ("name", NAME)])
def test_raw_identifiers_beside_the_marker_are_refused(tmp_path, tiny_ds, column, value):
    from escalation_risk import load_dataset
    from escalation_risk.dataset import MarkerError
    out = tiny_ds.write(tmp_path / "w", fmt="csv")
    persons = pd.read_csv(out / "persons.csv", dtype=str)
    persons.loc[1, column] = value
    persons.to_csv(out / "persons.csv", index=False)
    with pytest.raises(MarkerError, match=rf"table 'persons', column '{column}' holds 1 value") as e:
        load_dataset(out, pseudonym_key=KEY)
    assert value not in str(e.value)


def test_dataset_csv_keeps_formula_like_text_inert_and_reads_it_back(tmp_path, tiny_ds):
    from escalation_risk import load_dataset
    ds = tiny_ds
    ds.incidents["description"] = ds.incidents["description"].astype(object)
    ds.incidents.loc[0, "description"] = "=1+1 and more"
    ds.incidents.loc[1, "description"] = "'quoted"
    out = ds.write(tmp_path / "w", fmt="csv")
    cells = [c for r in csv.reader(open(out / "incidents.csv", newline="", encoding="utf-8")) for c in r]
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    back = load_dataset(out, pseudonym_key=KEY)
    assert back.incidents["description"].tolist()[:2] == ["=1+1 and more", "'quoted"]


def test_the_public_sample_key_needs_a_synthetic_folder(tmp_path):
    from conftest import tiny_tables

    from escalation_risk import load_dataset
    from escalation_risk.dataset import mark_synthetic
    from escalation_risk.pseudonym_keys import PseudonymKeyError
    sample_key = Path(__file__).resolve().parents[1] / "data" / "sample" / "SAMPLE_KEY"
    for name, df in tiny_tables().items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    with pytest.raises(PseudonymKeyError, match="no SYNTHETIC marker.*public sample key"):
        load_dataset(tmp_path, pseudonym_key=sample_key)
    mark_synthetic(tmp_path)
    ds = load_dataset(tmp_path, pseudonym_key=sample_key)
    # Written back, the folder stays synthetic and so readable with the sample key.
    out = ds.write(tmp_path / "w")
    assert (out / "SYNTHETIC").exists()
    (out / "SYNTHETIC").unlink()
    with pytest.raises(PseudonymKeyError, match="no SYNTHETIC marker"):
        load_dataset(out)


def test_the_committed_sample_is_synthetic():
    root = Path(__file__).resolve().parents[1] / "data" / "sample"
    assert (root / "SYNTHETIC").is_file()


def test_sample_command_writes_the_synthetic_marker(tmp_path):
    res = CliRunner().invoke(main, ["sample", str(tmp_path / "s"), "--persons", "200", "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s" / "SYNTHETIC").is_file()


# --------------------------------------------------------------------------- nothing typed leaks

def _planted(folder: Path, *, codes: bool) -> Path:
    """The small district's raw export with a name, a phone and an id number typed into
    every free-text column and, with ``codes``, into one row of every code, number and
    date column (rows the loader then sets aside or blanks)."""
    from escalation_risk.synth import generate_tables, write_tables
    tables, _ = generate_tables(4000, seed=2)
    for name, df in tables.items():
        df = df.astype({c.name: object for c in TABLES[name].columns if c.name in df.columns})
        for j, c in enumerate(TABLES[name].columns):
            if c.name not in df.columns or not len(df):
                continue
            if c.kind == "text" or (name == "persons" and c.name == "name"):
                df[c.name] = PLANT
            elif codes and c.kind in ("code", "int", "float", "timestamp", "bool"):
                df.loc[df.index[(7 * j + 3) % len(df)], c.name] = PLANT
        tables[name] = df
    return write_tables(tables, folder, fmt="csv")


def test_nothing_typed_by_staff_reaches_any_output(tmp_path, monkeypatch, small_model):
    from escalation_risk.alerts import AlertStore
    monkeypatch.setenv("ESCALATION_RISK_PSEUDONYM_KEY_FILE", str(_key_file(tmp_path)))
    dirty = _planted(tmp_path / "dirty", codes=True)
    data = _planted(tmp_path / "raw", codes=False)
    model = tmp_path / "model"
    small_model.save(model)
    out = tmp_path / "out"
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    said: list[str] = []

    def run(*args: str, ok: bool = True) -> str:
        res = CliRunner().invoke(main, list(args))
        said.append(res.output + (str(res.exception) if res.exception and not isinstance(res.exception,
                                                                                      SystemExit) else ""))
        if ok:  # a warning exit (quarantined rows, drift) is fine; a usage error or a crash is not
            assert res.exit_code != 2 and (res.exception is None or isinstance(res.exception, SystemExit)), \
                res.output + repr(res.exception)
        return res.stdout

    # Bad rows: the validation report, the quarantine report and the rejected rows.
    run("validate", str(dirty), "--report", str(out / "validate.csv"))
    run("nightly", str(dirty), "--model", str(model), "--as-of", "2024-06-30", "--store",
        f"sqlite:///{tmp_path / 'dirty.db'}", "--out", str(out), "--report")
    # Free text everywhere, in data every command can load.
    run("nightly", str(data), "--model", str(model), "--as-of", "2024-06-30", "--store", url, "--out",
        str(out / "clean"), "--report")
    with AlertStore(url) as st:
        alerts = st.alerts()
        assert len(alerts)
        for i, aid in enumerate(alerts["alert_id"].tolist()):
            aid = int(aid)
            st.assign(aid, to="wang", by="chief", note=PLANT, at="2024-07-01")
            st.update(aid, "in_progress", by="wang", note=PLANT, at="2024-07-02")
            st.update(aid, "resolved", by="wang", note=PLANT, at="2024-07-03")
            st.update(aid, "follow_up", by="wang", note=PLANT, at="2024-07-10")
            st.close(aid, by="wang", outcome=PLANT + f" #{i}", escalated_to_crime=False, note=PLANT, at="2024-07-11")
    run("briefing", str(data), "--store", url, "--as-of", "2024-06-30", "--model", str(model), "--out", str(out))
    index = tmp_path / "index"  # built once: each `cases` below would otherwise build its own
    run("cases", str(data), "--build-index", str(index), "--as-of", "2025-06-30", "--model", str(model))
    run("cases", str(data), "--typical", "--start", "2023-07-01", "--end", "2024-07-01", "--as-of", "2025-06-30",
        "--model", str(model), "--store", url, "--out", str(out / "typical"), "--index", str(index))
    lib = pd.read_csv(out / "typical" / "typical-cases.csv")
    # The outcome went through, as its length: the test exercises the path it guards.
    assert lib["alert_outcome_chars"].notna().any() and "alert_outcome" not in lib.columns
    for fmt in ("csv", "json", "table"):
        run("cases", str(data), "--typical", "--start", "2023-07-01", "--end", "2024-07-01", "--as-of", "2025-06-30",
            "--model", str(model), "--store", url, "--format", fmt, "--index", str(index))
        run("cases", str(data), "--dispute", str(lib["dispute_id"].iloc[0]), "--as-of", "2025-06-30",
            "--model", str(model), "--store", url, "--format", fmt, "--index", str(index))
        run("governance", str(data), "--store", url, "--format", fmt)
        run("plans-report", str(data), "--store", url, "--format", fmt)
        run("alerts", "list", "--all", "--format", fmt, "--store", url)
        run("alerts", "outcomes", "--format", fmt, "--store", url)
    run("drift", str(data), "--model", str(model), "--from", "2025-01-01", "--to", "2025-06-30", "--format", "json")
    written = sorted(p for p in out.rglob("*") if p.is_file())
    names = {p.name for p in written}
    assert {"validate.csv", "scores-2024-06-30.csv", "quarantine-2024-06-30.csv", "briefing-2024-06-30.html",
            "typical-cases.csv", "typical-cases.md"} <= names
    assert any(p.parent.name.startswith("rejected-") for p in written)
    leaks = {str(p.relative_to(out)): _leaks(p.read_text(encoding="utf-8")) for p in written}
    assert {k: v for k, v in leaks.items() if v} == {}
    assert [s for s in said if _leaks(s)] == []
    # The quarantine report still says where and why, and shows the bad number or date only.
    q = pd.read_csv(out / "quarantine-2024-06-30.csv", dtype=str)
    assert len(q) and q["value"].dropna().str.match(r"^\[\d+ characters\]$").all()
    assert np.isin(["amount", "category", "gender"], q["column"]).all()
