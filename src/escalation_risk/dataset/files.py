"""Reading a district's folder: one ``NAME.csv`` or ``NAME.parquet`` per table, with the
line of the file each problem was found on."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import TABLES
from ..outputs import restore_text
from ..pseudonym_keys import KEY_ENV, KEY_FILE_ENV, find_key
from .build import ErrorsMode
from .frame import Dataset, _build
from .markers import check_pseudonyms, folder_key
from .problems import PROBLEM_COLUMNS, DataValidationError, _structural


def _read_table(folder: Path, name: str, *, written: bool = False) -> pd.DataFrame | None:
    """One table of ``folder`` (None when absent). ``written``: the folder was written by
    :meth:`Dataset.write`, whose CSV text cells are undone from their formula-safe form."""
    pq, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    if pq.exists():
        try:
            return pd.read_parquet(pq)
        except Exception as e:  # pyarrow raises several types for a non-Parquet file
            raise _structural(name, "", f"{pq.name} is not a readable Parquet table ({type(e).__name__})") from None
    if csv.exists():
        try:
            df = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
            return restore_text(df) if written else df
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
    # A folder written by Dataset.write already holds pseudonyms: hashed again they would
    # be every one a malformed id number. Its marker names the key they were made with,
    # which must be the caller's (when one is set); raw data need a key.
    given = find_key(pseudonym_key, argument="pseudonym_key", env=KEY_ENV, file_env=KEY_FILE_ENV)
    key, fingerprint = folder_key(folder, given)
    tables: dict[str, pd.DataFrame | Callable[[], pd.DataFrame | None]]
    if key is None:
        read: dict[str, pd.DataFrame] = {}
        for name in TABLES:
            df = _read_table(folder, name, written=True)
            if df is not None:
                read[name] = df
        check_pseudonyms(folder, read)
        tables = dict(read)
    else:
        # Raw tables are read one at a time as they are validated, each freed once parsed:
        # a million-person district's raw tables (2.4 GB) never sit beside the parsed ones.
        tables = {name: partial(_read_table, folder, name) for name in TABLES
                  if (folder / f"{name}.parquet").exists() or (folder / f"{name}.csv").exists()}
    try:
        ds = _build(tables, errors=errors, key=key, source=str(folder))
    except DataValidationError as e:
        if e.problems["row"].isna().all():
            raise
        raise DataValidationError(_with_lines(e.problems, folder)[0]) from None
    ds.key_fingerprint = fingerprint
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

