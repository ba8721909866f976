"""``drift``: per-feature PSI and missing-rate change, the score, calibration and a verdict."""

from __future__ import annotations

import json
import os

import click
import pandas as pd

from ..dataset import DataValidationError
from .districts import district_option, folders, heading
from .errors import fail
from .params import MOMENT, RANGE_START


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--model", "model_dir", default=lambda: os.environ.get("ESCALATION_RISK_MODEL", "models/default"),
              show_default="$ESCALATION_RISK_MODEL or models/default", type=click.Path(file_okay=False))
@click.option("--from", "start", required=True, type=RANGE_START,
              help="Start of the recent window, e.g. 2025-01-01 (from the start of that day).")
@click.option("--to", "end", required=True, type=MOMENT,
              help="End of the recent window, e.g. 2025-06-30 (to the end of that day).")
@click.option("--reference-from", "ref_start", default=None, type=RANGE_START,
              help="Reference window (default: the model's validation window).")
@click.option("--reference-to", "ref_end", default=None, type=MOMENT)
@click.option("--max-points", type=click.IntRange(min=100), default=5000, show_default=True,
              help="At most this many dispute-nights per window (a seeded sample).")
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True), default=0.25, show_default=True,
              help="A feature whose PSI exceeds this moved.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@district_option
def drift(data_dir: str, model_dir: str, start: pd.Timestamp, end: pd.Timestamp, ref_start: pd.Timestamp | None,
          ref_end: pd.Timestamp | None, max_points: int, threshold: float, fmt: str, district: str | None) -> None:
    """Has DATA_DIR drifted, between --from and --to, from what the model was validated on?

    A province folder: each district's report (JSON: a list, each with its ``district``)."""
    from ..artifacts import ModelLoadError
    from ..dataset import load_dataset
    from ..drift import drift_report
    from ..model import load_model
    s, e, rs, re_ = start, end, ref_start, ref_end
    if (rs is None) != (re_ is None):
        raise click.BadParameter("give both --reference-from and --reference-to, or neither",
                                 param_hint="--reference-from")
    found = folders(data_dir, district)
    try:
        model = load_model(model_dir)
    except (ModelLoadError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    reports = []
    for code, folder in found.items():
        try:
            ds = load_dataset(folder)
            rep = drift_report(model, ds, start=s, end=e, reference=None if rs is None else (rs, re_),
                               max_points=max_points, threshold=threshold)
        except (DataValidationError, FileNotFoundError, ValueError) as exc:
            fail(f"{f'district {code}: ' if code else ''}{exc}")
        reports.append((code, rep))
    if fmt == "json":
        outs = []
        for code, rep in reports:
            out = {"reference": [str(rep.reference[0]), str(rep.reference[1])],
                   "recent": [str(rep.recent[0]), str(rep.recent[1])], "n_reference": rep.n_reference,
                   "n_recent": rep.n_recent, "features": json.loads(rep.features.to_json(orient="records")),
                   "score": rep.score, "calibration": rep.calibration, "verdict": rep.verdict,
                   "verdict_zh": rep.verdict_zh, "moved": rep.moved}
            outs.append({"district": code, **out} if code else out)
        click.echo(json.dumps(outs if len(outs) > 1 or reports[0][0] else outs[0], ensure_ascii=False, indent=1))
    else:
        click.echo("\n\n".join(f"{heading(code)}\n{rep}" if code else str(rep) for code, rep in reports))
