"""Writing generated tables to disk, one file per table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path, fmt: str = "parquet",
                 truth: pd.DataFrame | None = None) -> Path:
    """Write one ``NAME.parquet`` (or ``NAME.csv``) per table; truth goes to ``truth/``."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def _write(df: pd.DataFrame, path: Path) -> None:
        if fmt == "parquet":
            df.to_parquet(path.with_suffix(".parquet"), index=False)
        else:
            df.to_csv(path.with_suffix(".csv"), index=False, encoding="utf-8", date_format="%Y-%m-%dT%H:%M:%S")

    for name, df in tables.items():
        _write(df, out / name)
    if truth is not None:
        (out / "truth").mkdir(exist_ok=True)
        _write(truth, out / "truth" / "person_truth")
    return out
