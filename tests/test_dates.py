"""One reading of dates: for every entry point taking a date, a dispute reported that day is inside it.

A date naming a moment (an as_of, a night, a cutoff, ``--to``, ``--end``, ``--at``) is the
end of that day; a date opening a range (``--from``, ``--start``) its start
(:func:`escalation_risk.clock.to_moment`). The dispute used here was reported in the
afternoon of its day: read as the start of the day, every entry point would miss it.
"""

from __future__ import annotations

import json

import click
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import KEY

import escalation_risk as er
from escalation_risk.cases import build_case_index, similar_cases
from escalation_risk.cli import main
from escalation_risk.cli.params import Moment
from escalation_risk.clock import end_of_day, to_moment
from escalation_risk.drift import drift_report
from escalation_risk.estimators import _check_points
from escalation_risk.governance import governance_index
from escalation_risk.graph import build_graph
from escalation_risk.model import night_points, open_points, report_points


@pytest.fixture(scope="module")
def day(small_district) -> tuple[str, str]:
    """A dispute reported after midday on its day and still open at the day's end: (id, the day)."""
    inc = small_district.incidents
    d = inc[(inc["kind"] == "dispute") & (inc["reported_at"] >= pd.Timestamp("2024-06-01"))
            & (inc["reported_at"].dt.hour >= 12)]
    d = d[~(d["closed_at"] <= d["reported_at"].dt.normalize() + pd.Timedelta(days=1))]
    row = d.sort_values("reported_at", kind="stable").iloc[0]
    return str(row["incident_id"]), f"{row['reported_at']:%Y-%m-%d}"


def test_the_rule(day):
    _, d = day
    assert to_moment(d) == end_of_day(pd.Timestamp(d))
    assert to_moment(d, role="start") == pd.Timestamp(d)
    for same in (d.replace("-", "/"), d.replace("-", "")):
        assert to_moment(same) == to_moment(d)


def test_scoring_and_points(day, small_district, small_model):
    did, d = day
    assert did in set(small_model.score(small_district, d)["dispute_id"])
    assert did in set(open_points(small_district, d)["dispute_id"])
    assert did in set(report_points(small_district, d, d)["dispute_id"])     # [start of D, end of D]
    assert did not in set(report_points(small_district, None, pd.Timestamp(d))["dispute_id"])  # midnight: not yet
    # Monthly nights from a range's start (its day's start) to its end (its day's end), each
    # scored at the end of its day as the nightly job scores it.
    tenth = pd.Timestamp(d).replace(day=10)
    nights = night_points(small_district, start=tenth.strftime("%Y-%m-%d"),
                          end=(tenth + pd.DateOffset(months=1)).strftime("%Y-%m-%d"))
    assert sorted(set(nights["as_of"])) == [end_of_day(tenth), end_of_day(tenth + pd.DateOffset(months=1))]
    assert did in set(small_district.cut(d).incidents["incident_id"])
    pts = _check_points(pd.DataFrame({"dispute_id": [did], "as_of": [d]}), "RiskClassifier.fit")
    assert pts["as_of"].iloc[0] == to_moment(d)


def test_training_cutoff_is_the_end_of_its_day(small_model):
    assert pd.Timestamp(small_model.manifest["cutoff"]) == to_moment("2025-01-01")


def test_single_dispute_scorer(day, small_district, small_model):
    did, d = day
    ds = small_district
    row = ds.incidents.set_index("incident_id").loc[did]
    dispute = {c: (None if not isinstance(v, str) and pd.isna(v) else v) for c, v in row.items()}
    dispute.update(incident_id=did, closed_at=None, status="open", related_incident_id=None)
    parties = ds.incident_parties[ds.incident_parties["incident_id"] == did].to_dict("records")
    a = er.Scorer(small_model, ds).score_dispute(dispute, parties, as_of=d)  # not "reported in the future"
    assert 0 <= a.probability <= 1


def test_drift_window(day, small_district, small_model):
    _, d = day
    rep = drift_report(small_model, small_district, start=d, end=d, reference=(d, d), max_points=200)
    assert rep.recent == (pd.Timestamp(d), to_moment(d))
    assert rep.n_recent >= len(open_points(small_district, d).head(200)) > 0


def test_governance_counts_the_day(day, small_district):
    _, d = day
    g = governance_index(small_district, by="district", as_of=d, min_denominator=1)
    part = g[g["indicator"] == "participation"]
    inc = small_district.incidents
    disputes = inc[(inc["kind"] == "dispute") & (inc["reported_at"] <= to_moment(d))]
    assert part["denominator"].sum() == len(disputes)
    assert (disputes["reported_at"].dt.strftime("%Y-%m-%d") == d).any()


def test_cases_and_graph(day, small_district, small_model):
    did, d = day
    idx = build_case_index(small_model, small_district, d)
    assert did in set(idx.dispute_id) and idx.night == to_moment(d)
    out = similar_cases(small_model, small_district, did, d, k=3, index=idx)
    assert out.attrs["query"]["dispute_id"] == did
    g = build_graph(small_district, as_of=d)
    assert any(str(n).endswith(did) for n in g.nodes)


def test_the_store(day, small_district, small_model, tmp_path):
    did, d = day
    with er.AlertStore(f"sqlite:///{tmp_path / 'a.db'}") as st:
        summary = st.record_night(small_model.score(small_district, d), d, small_model.version)
        assert summary.as_of == to_moment(d)
        assert did in set(st.scores()["dispute_id"])


def test_cli(day, small_district, small_model, tmp_path):
    did, d = day
    data, model_dir = tmp_path / "data", tmp_path / "model"
    small_district.write(data)
    small_model.save(model_dir)
    env = {"ESCALATION_RISK_PSEUDONYM_KEY": KEY}
    runner = CliRunner()
    r = runner.invoke(main, ["cases", str(data), "--dispute", did, "--as-of", d, "--model", str(model_dir),
                             "--k", "2", "--format", "json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["query"]["as_of"] == to_moment(d).isoformat()
    r = runner.invoke(main, ["governance", str(data), "--by", "district", "--as-of", d.replace("-", ""),
                             "--min-denominator", "1", "--format", "json"], env=env)
    assert r.exit_code == 0, r.output
    part = [x for x in json.loads(r.output) if x["indicator"] == "participation"]
    inc = small_district.incidents
    assert sum(x["denominator"] for x in part) == int(((inc["kind"] == "dispute")
                                                       & (inc["reported_at"] <= to_moment(d))).sum())
    r = runner.invoke(main, ["drift", str(data), "--model", str(model_dir), "--from", d, "--to", d,
                             "--reference-from", d, "--reference-to", d, "--max-points", "100", "--format", "json"],
                      env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["recent"] == [str(pd.Timestamp(d)), str(to_moment(d))]


# Every date option of the command line is the one click type, with the role its name says.
# By parameter name: ``--to`` of ``drift`` is ``end``, ``--to`` of ``alerts assign`` an owner.
MOMENT_OPTIONS = {"as_of", "at", "now", "cutoff", "end", "ref_end"}
START_OPTIONS = {"start", "ref_start"}
# sample's --start/--end are the span the generator draws synthetic records in, not a
# moment of the data.
NOT_MOMENTS = {"sample"}


def _commands(group: click.Group, prefix: str = ""):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_every_date_option_is_the_one_type():
    seen = 0
    for name, cmd in _commands(main):
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.name not in MOMENT_OPTIONS | START_OPTIONS \
                    or name in NOT_MOMENTS:
                continue
            seen += 1
            assert isinstance(p.type, Moment), f"{name} {p.opts[0]}: {p.type!r} is not cli.params.Moment"
            want = "start" if p.name in START_OPTIONS else "moment"
            assert p.type.role == want, f"{name} {p.opts[0]}: role {p.type.role}, expected {want}"
    assert seen >= 15
