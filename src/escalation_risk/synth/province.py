"""A synthetic province: districts generated one at a time, some people registered in two."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .tables import generate_tables
from .writing import write_tables


def generate_province(n_districts: int, n_persons: int, seed: int = 0, shared: float = 0.02,
                      start: str = "2021-07-01", end: str = "2025-06-30") -> dict[str, dict[str, pd.DataFrame]]:
    """A synthetic province: district code -> raw contract tables (see :func:`iter_province`)."""
    return dict(iter_province(n_districts, n_persons, seed=seed, shared=shared, start=start, end=end))


def iter_province(n_districts: int, n_persons: int, seed: int = 0, shared: float = 0.02,
                  start: str = "2021-07-01", end: str = "2025-06-30"):
    """The districts of a synthetic province, one at a time: (district code, raw contract tables).

    Each district is :func:`generate_tables` with its own seed, so ids repeat across
    districts (they are unique inside a district only). A fraction ``shared`` of each
    district's people (after the first) are people of the previous district
    registered here too: their name, id number, phone, birth year and gender are
    copied from a person there, so linkage joins them and their histories span both.
    """
    if n_districts < 1 or not 0 <= shared < 1:
        raise ValueError(f"need n_districts >= 1 and 0 <= shared < 1, got {n_districts!r}, {shared!r}")
    rng = np.random.default_rng(seed)
    prev: pd.DataFrame | None = None
    for i in range(n_districts):
        tables, _ = generate_tables(n_persons, seed=seed * 1000 + i, start=start, end=end)
        persons = tables["persons"]
        if prev is not None and shared > 0:
            # people with one record and an id number on both sides, so one copy makes one link
            def single(p: pd.DataFrame) -> np.ndarray:
                ok = p["id_number"].notna() & ~p["id_number"].duplicated(keep=False)
                return np.flatnonzero(ok.to_numpy())
            here, there = single(persons), single(prev)
            k = min(int(round(shared * len(persons))), len(here), len(there))
            dst = rng.choice(here, size=k, replace=False)
            src = rng.choice(there, size=k, replace=False)
            persons = persons.copy()
            for c in ("name", "id_number", "phone", "birth_year", "gender"):
                persons.loc[persons.index[dst], c] = prev[c].to_numpy()[src]
            tables["persons"] = persons
        yield f"3301{i + 1:02d}", tables
        prev = persons


def write_province(province, out_dir: str | Path, fmt: str = "parquet") -> Path:
    """Write a province (a dict or :func:`iter_province`): one dataset folder per district code."""
    out = Path(out_dir)
    for code, tables in (province.items() if isinstance(province, dict) else province):
        write_tables(tables, out / code, fmt=fmt)
    return out
