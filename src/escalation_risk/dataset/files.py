"""Reading a district's folder: one ``NAME.csv`` or ``NAME.parquet`` per table, with the
line of the file each problem was found on."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import TABLES
from ..pseudonym_keys import resolve_pseudonym_key
from .build import ErrorsMode
from .frame import Dataset, _build
from .problems import PROBLEM_COLUMNS, DataValidationError, _structural
from .pseudonyms import PSEUDONYMISED_MARKER


def _read_table(folder: Path, name: str) -> pd.DataFrame | None:
    pq, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    if pq.exists():
        try:
            return pd.read_parquet(pq)
        except Exception as e:  # pyarrow raises several types for a non-Parquet file
            raise _structural(name, "", f"{pq.name} is not a readable Parquet table ({type(e).__name__})") from None
    if csv.exists():
        try:
            return pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise _structural(name, "", f"{csv.name} is not UTF-8 text (bad byte at offset {e.start})") from None
        except pd.errors.EmptyDataError:
            raise _structural(name, "", f"{csv.name} is empty: expected a header row") from None
        except pd.errors.ParserError as e:
            raise _structural(name, "", f"{csv.name} is not a CSV table ({str(e).splitlines()[0]})") from None
    return None


def load_dataset(path: str | os.PathLike, *, errors: ErrorsMode = "raise",
                 pseudonym_key: str | bytes | os.PathLike[str] | None = None) -> Dataset:
    """Read and validate a folder of contract tables (``NAME.csv`` or ``NAME.parquet``).

    ``errors="raise"`` raises :class:`DataValidationError` on any bad row;
    ``errors="quarantine"`` keeps the good rows and reports the bad ones in
    ``ds.quarantine``. Missing required tables or columns always raise.
    Personal identifiers are replaced by keyed hashes on load.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {folder}")
    # A folder written by Dataset.write already holds pseudonyms: hashing them again
    # would need the key for nothing and call every pseudonym a malformed id number.
    key = None if (folder / PSEUDONYMISED_MARKER).exists() else resolve_pseudonym_key(pseudonym_key)
    tables = {}
    for name in TABLES:
        df = _read_table(folder, name)
        if df is not None:
            tables[name] = df
    try:
        ds = _build(tables, errors=errors, key=key, source=str(folder))
    except DataValidationError as e:
        if e.problems["row"].isna().all():
            raise
        raise DataValidationError(_with_lines(e.problems, folder)[0]) from None
    _add_line_numbers(ds, folder)
    return ds


def _csv_lines(path: Path) -> np.ndarray:
    """The line of the file each data record starts on (the header is line 1); a quoted
    cell spanning lines makes this differ from row + 2."""
    starts = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        last = 0
        for i, rec in enumerate(reader):
            if i > 0 and rec:  # pandas skips blank lines too
                starts.append(last + 1)
            last = reader.line_num
    return np.asarray(starts, dtype=np.int64)


def _with_lines(problems: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The problems with a ``line`` column (the CSV file's line number), and the line
    of every record of the CSV tables that had problems."""
    q = problems.copy()
    q["line"] = pd.array([pd.NA] * len(q), dtype="Int64")
    found: dict[str, np.ndarray] = {}
    for name in pd.unique(q["table"]) if len(q) else []:
        path = folder / f"{name}.csv"
        if (folder / f"{name}.parquet").exists() or not path.exists():
            continue
        lines = found[name] = _csv_lines(path)
        mine = (q["table"] == name) & q["row"].notna()
        rows = q.loc[mine, "row"].astype("int64").to_numpy()
        if len(lines):
            q.loc[mine, "line"] = pd.array(lines[np.minimum(rows, len(lines) - 1)], dtype="Int64")
    order = [*PROBLEM_COLUMNS[:2], "line", *PROBLEM_COLUMNS[2:]]
    return q[order + [c for c in q.columns if c not in order]], found


def _add_line_numbers(ds: Dataset, folder: Path) -> None:
    """Give every problem in a CSV table the file's line number, and every rejected row its ``_line``."""
    ds.quarantine, found = _with_lines(ds.quarantine, folder)
    for name, lines in found.items():
        if name in ds.rejected:
            r = ds.rejected[name]
            ds.rejected[name] = r.assign(_line=lines[r["_row"].to_numpy()])

