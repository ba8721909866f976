"""The Dataset: a validated, pseudonymised district, one typed DataFrame per contract table."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from ..contract import CONTRACT_1_1, PII_COLUMNS, TABLE_ORDER, TABLES
from ..known import cut_tables
from ..outputs import protect_text
from ..pseudonym_keys import PseudonymKeyError, key_fingerprint, resolve_pseudonym_key
from .build import ErrorsMode, build_parts
from .markers import is_synthetic, mark_synthetic, write_pseudonymised_marker
from .parsing import empty_table
from .problems import PROBLEM_COLUMNS

#: Rows of a table hashed at a time by :meth:`Dataset.fingerprint`.
FINGERPRINT_ROWS = 262_144

# --------------------------------------------------------------------------- the Dataset

@dataclass
class Dataset:
    """A validated, pseudonymised district: one typed DataFrame per contract table.

    Missing optional tables are empty frames with the right columns. ``quarantine``
    lists every problem found in rows that were set aside (empty when the input was
    clean), ``rejected`` holds those rows per table, ``rows_read`` how many rows each
    table had.
    """

    persons: pd.DataFrame
    places: pd.DataFrame
    incidents: pd.DataFrame
    incident_parties: pd.DataFrame
    households: pd.DataFrame
    household_members: pd.DataFrame
    organizations: pd.DataFrame
    mediations: pd.DataFrame
    person_flags: pd.DataFrame
    relations: pd.DataFrame
    # Contract 1.1 tables: empty for a 1.0 export.
    person_attributes: pd.DataFrame = field(default_factory=lambda: empty_table("person_attributes"))
    incident_notes: pd.DataFrame = field(default_factory=lambda: empty_table("incident_notes"))
    quarantine: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBLEM_COLUMNS))
    rejected: dict[str, pd.DataFrame] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)
    source: str | None = None
    # The fingerprint of the key the pseudonyms were made with (None: not known).
    key_fingerprint: str | None = field(default=None, compare=False)
    # Derived structures (person key, indexes) cached by higher layers; not data.
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frames(cls, *, errors: ErrorsMode = "raise", pseudonym_key: str | bytes | os.PathLike[str] | None = None,
                    pseudonymised: bool = False, **tables: pd.DataFrame) -> Dataset:
        """Build a Dataset from DataFrames named like the contract's tables, with full validation.

        ``pseudonymised=True`` says the personal-data columns already hold pseudonyms
        (frames taken from another Dataset) so they are not hashed twice; ``pseudonym_key``
        then only names the key they were made with (:attr:`key_fingerprint`).
        """
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise TypeError(f"unknown table(s) {sorted(unknown)}; the contract's tables are {sorted(TABLES)}")
        if pseudonymised:
            made_with = None if pseudonym_key is None else key_fingerprint(resolve_pseudonym_key(pseudonym_key))
            out = _build(dict(tables), errors=errors, key=None, source=None)
            out.key_fingerprint = made_with
            return out
        return _build(dict(tables), errors=errors, key=resolve_pseudonym_key(pseudonym_key), source=None)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The contract tables by name."""
        return {name: getattr(self, name) for name in TABLES}

    def summary(self) -> pd.DataFrame:
        """Rows read, kept and quarantined per table, plus the span of incident times."""
        rows = []
        for name in TABLE_ORDER:
            kept = len(getattr(self, name))
            rows.append({"table": name, "read": self.rows_read.get(name, kept), "kept": kept,
                         "quarantined": len(self.rejected.get(name, ()))})
        return pd.DataFrame(rows)

    def append(self, *, errors: ErrorsMode = "raise", pseudonym_key: str | bytes | os.PathLike[str] | None = None,
               **tables: pd.DataFrame) -> Dataset:
        """A new Dataset: this one plus new rows, validated like a file (only the new rows
        are checked, against this dataset's ids and references)."""
        out = Dataset(**self._checked(tables, errors, pseudonym_key, joined=True))
        out.key_fingerprint = self.key_fingerprint if self.key_fingerprint is not None else out.key_fingerprint
        return out

    def new_rows(self, *, errors: ErrorsMode = "raise", pseudonym_key: str | bytes | os.PathLike[str] | None = None,
                 **tables: pd.DataFrame | list[dict]) -> dict[str, pd.DataFrame]:
        """The rows :meth:`append` would add, by table (the tables given), validated by the
        same checks against this dataset, without joining them to its tables: what a service
        adding a few rows to a history it keeps itself needs. A table may be given as a list
        of records (read as ``pd.DataFrame(records)``)."""
        parts = self._checked(tables, errors, pseudonym_key, joined=False)
        return {name: parts[name] for name in tables}

    def _checked(self, tables: dict, errors: ErrorsMode, pseudonym_key, *, joined: bool) -> dict:
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise TypeError(f"unknown table(s) {sorted(unknown)}; the contract's tables are {sorted(TABLES)}")
        # Only tables with personal data need the key (new incidents alone do not).
        key = resolve_pseudonym_key(pseudonym_key) if any(PII_COLUMNS.get(t) for t in tables) else None
        if key is not None and self.key_fingerprint not in (None, key_fingerprint(key)):
            raise PseudonymKeyError("the new rows' pseudonym key is not the one this dataset's pseudonyms were "
                                    "made with: mixed in, every person's history would split; use the same key")
        return build_parts(dict(tables), errors=errors, key=key, source=self.source, base=self, joined=joined)

    def cut(self, as_of) -> Dataset:
        """The dataset as it stood at ``as_of``, by the rules of :mod:`escalation_risk.known`.

        Incidents reported later vanish with their parties, notes and mediations; a
        party added later is not yet on its incident; an outcome recorded later is
        pending; a closing after ``as_of`` is blank (status open); people's hukou and
        employment are as they stood. Used to test point-in-time correctness.
        """
        return Dataset(**cut_tables(self.tables(), as_of), source=self.source, key_fingerprint=self.key_fingerprint)

    def write(self, path: str | os.PathLike, fmt: Literal["parquet", "csv"] = "parquet", *,
              pseudonym_key: str | bytes | os.PathLike[str] | None = None, synthetic: bool | None = None) -> Path:
        """Write every table as ``NAME.parquet`` or ``NAME.csv`` (pseudonyms, never raw PII).

        A ``PSEUDONYMISED`` marker says the folder holds pseudonyms and names the key they
        were made with (:attr:`key_fingerprint`, or that of ``pseudonym_key`` when the
        dataset does not know it): :func:`load_dataset` reads it back without hashing them
        again, and refuses it with another key. ``synthetic`` (default: as the folder the
        dataset was read from) writes the ``SYNTHETIC`` marker. CSV text cells a spreadsheet
        would run as formulas are written inert and read back as they were."""
        fp = self.key_fingerprint
        if fp is None:
            if pseudonym_key is None:
                raise PseudonymKeyError("the key this dataset's pseudonyms were made with is not known: pass "
                                        "pseudonym_key= to write them (the folder's marker names it)")
            fp = key_fingerprint(resolve_pseudonym_key(pseudonym_key))
        if synthetic is None:
            synthetic = self.source is not None and is_synthetic(Path(self.source))
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        write_pseudonymised_marker(out, fp)
        if synthetic:
            mark_synthetic(out)
        for name, df in self.tables().items():
            if fmt == "parquet":
                df.to_parquet(out / f"{name}.parquet", index=False)
            else:
                protect_text(df).to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
        return out

    def fingerprint(self) -> str:
        """SHA-256 over the content of every table: identifies the training data in a manifest."""
        h = hashlib.sha256()
        for name in TABLE_ORDER:
            df = getattr(self, name)
            if name in CONTRACT_1_1 and not len(df) and not CONTRACT_1_1[name]:
                continue  # an absent 1.1 table: a 1.0 export keeps its fingerprint
            if name in CONTRACT_1_1:
                df = df.drop(columns=[c for c in CONTRACT_1_1[name] if df[c].isna().all()])
            h.update(name.encode())
            # A row's hash is its own (each value's hash, combined across the row), so the
            # rows hashed a block at a time give the same bytes as all at once, without the
            # whole of a text column as Python strings (hundreds of MB at a million people).
            for start in range(0, len(df), FINGERPRINT_ROWS):
                part = df.iloc[start:start + FINGERPRINT_ROWS]
                h.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={len(getattr(self, n))}" for n in TABLE_ORDER)
        q = f", quarantined={len(self.quarantine)}" if len(self.quarantine) else ""
        return f"Dataset({counts}{q})"



def _build(tables: dict[str, pd.DataFrame], *, errors: ErrorsMode, key: bytes | None,
           source: str | None, base: Dataset | None = None) -> Dataset:
    """Validate ``tables`` into a Dataset (see :func:`.build.build_parts`)."""
    return Dataset(**build_parts(tables, errors=errors, key=key, source=source, base=base))
