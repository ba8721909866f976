"""``validate`` and ``sample``: the data side of the command line."""

from __future__ import annotations

from pathlib import Path

import click

from .. import outputs
from ..dataset import DataValidationError, load_dataset, mark_synthetic
from ..pseudonym_keys import KEY_FILE_ENV, PseudonymKeyError, generate_key_file
from .districts import district_option, folders, heading
from .errors import fail


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write every problem found (table, row, column, value, reason) to this CSV.")
@click.option("--show", default=20, show_default=True, help="How many problems to print.")
@district_option
def validate(data_dir: str, report: str | None, show: int, district: str | None) -> None:
    """Validate DATA_DIR (a district's folder, or a province's: each district) against the
    data contract; exit 1 if any row breaks it."""
    import pandas as pd
    problems = []
    for code, folder in folders(data_dir, district).items():
        try:
            ds = load_dataset(folder, errors="quarantine")
        except PseudonymKeyError as e:
            fail(e)
        except DataValidationError as e:  # structural: missing table/column, unreadable file
            click.echo(f"{f'district {code}: ' if code else ''}{e}", err=True)
            raise SystemExit(1) from None
        if code:
            click.echo(heading(code))
        click.echo(ds.summary().to_string(index=False))
        q = ds.quarantine
        if len(q):
            click.echo(f"\n{len(q)} problem(s) in {sum(len(r) for r in ds.rejected.values())} row(s):", err=True)
            click.echo(q.head(show).to_string(index=False), err=True)
            problems.append(q.assign(district=code)[["district", *q.columns]] if code else q)
            continue
        inc = ds.incidents
        click.echo(f"\nvalid: {len(inc)} incidents from {inc['reported_at'].min():%Y-%m-%d} "
                   f"to {inc['reported_at'].max():%Y-%m-%d}; "
                   f"{int((inc['kind'] == 'dispute').sum())} disputes, "
                   f"{int((inc['kind'] == 'criminal_case').sum())} criminal cases")
    if report:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        outputs.to_csv(pd.concat(problems, ignore_index=True) if problems else ds.quarantine, "quarantine", report)
    if problems:
        raise SystemExit(1) from None


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--persons", default=20000, show_default=True, help="People in the district.")
@click.option("--seed", default=0, show_default=True)
@click.option("--start", default="2021-07-01", show_default=True)
@click.option("--end", default="2025-06-30", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--late-facts/--no-late-facts", default=True, show_default=True,
              help="Write contract 1.1's facts recorded after a report (--no-late-facts: a 1.0 export).")
@click.option("--linkage-noise", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of duplicate person records written with record-linkage noise.")
@click.option("--realistic-residence", is_flag=True,
              help="Households that moved, and second-system records listed in households, as a register "
                   "keeps them (off: the default sample's residence).")
def sample(out_dir: str, persons: int, seed: int, start: str, end: str, fmt: str, late_facts: bool,
           linkage_noise: float, realistic_residence: bool) -> None:
    """Generate a synthetic district in the contract's shape into OUT_DIR."""
    from ..synth import generate_tables, write_tables
    tables, truth = generate_tables(persons, seed=seed, start=start, end=end, late_facts=late_facts,
                                    linkage_noise=linkage_noise, realistic_residence=realistic_residence)
    write_tables(tables, out_dir, fmt=fmt, truth=truth)
    # Generated data: the public sample key may read this folder, and only such a folder.
    mark_synthetic(out_dir)
    counts = ", ".join(f"{k}={len(v)}" for k, v in tables.items())
    click.echo(f"wrote {out_dir}: {counts}")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False))
def keygen(path: str) -> None:
    """Write a new random pseudonym key to PATH, readable only by you.

    Keep it safe and keep it: pseudonyms made with another key never match these, so
    losing it splits every person's history. An existing file is never overwritten.
    """
    try:
        out = generate_key_file(path)
    except FileExistsError:
        fail(f"{path} already exists; a key is never overwritten (choose another path)")
    except OSError as e:
        fail(f"cannot write {path}: {e.strerror}")
    click.echo(f"wrote a new pseudonym key to {out} (mode 600). Use it with --key-file {out} "
               f"or {KEY_FILE_ENV}={out}")
