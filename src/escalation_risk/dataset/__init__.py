"""Read, validate, quarantine and pseudonymise a district's tables.

``load_dataset`` reads a folder of ``NAME.csv`` / ``NAME.parquet`` files in the shape
of the data contract (:mod:`escalation_risk.contract`); ``Dataset.from_frames`` does
the same for DataFrames a notebook or a service already holds. Both go through one
pipeline:

1. structure: required tables and columns present, files readable as UTF-8 tables
   (problems here always raise: there is nothing sensible to keep);
2. identifiers checked (an id number with a valid GB 11643 check digit or the old
   15-digit form, an 11-digit mobile; a bad one is reported by rule and row, never
   its value, and treated as missing), then pseudonymisation of ``name``,
   ``id_number`` and ``phone`` with a keyed hash (HMAC-SHA256, a key of at least 32
   bytes: :mod:`.pseudonym_keys`), *before* anything else looks at the rows, so that
   no raw identifier can reach a DataFrame, a log line or an error message;
3. parsing of every column into its contract type (unparseable values are problems);
4. the contract's row rules, declared once as a pandera schema per table (codes,
   non-null, unique ids, ranges, ``reported_at >= occurred_at``, offence categories
   only on criminal cases);
5. references between tables, checked in dependency order so that the dependants of
   a rejected row are rejected with it.

With ``errors="raise"`` any problem raises :class:`DataValidationError`; with
``errors="quarantine"`` good rows are kept, a bad value in a column the record can
do without (a code, a number, a phone) is blanked with its row kept, and every other
bad row goes to ``ds.quarantine`` (one line per problem: table, row, line of a CSV
file, column, value masked, reason, action) and ``ds.rejected[table]`` (the row's ids,
codes, times and numbers; never free text or personal data). For each table, kept
rows plus rejected rows equal the rows read.

The package is split by noun: :mod:`.files` reads folders, :mod:`.parsing` turns cells
into contract types, :mod:`.validation` holds the row rules, :mod:`.build` validates a
district's tables together, :mod:`.frame` the :class:`Dataset`, :mod:`.pseudonyms` the
keyed hashing and :mod:`.problems` the error and report rows. Every name is importable
from here.
"""

from __future__ import annotations

from ..pseudonym_keys import KEY_ENV, KEY_FILE_ENV, PseudonymKeyError, resolve_pseudonym_key
from .build import ErrorsMode, _before_report, _isin, as_table, build_parts
from .files import _add_line_numbers, _csv_lines, _read_table, _with_lines, load_dataset
from .frame import Dataset, _build
from .markers import PSEUDONYMISED_MARKER, SYNTHETIC_MARKER, MarkerError, mark_synthetic
from .parsing import (
    BAD_TIMESTAMP,
    NOT_FINITE,
    STR_DTYPE,
    TIMESTAMP_FORMATS,
    _as_str,
    _bad,
    _finish_types,
    _missing,
    _parse_column,
    _parse_timestamp,
    _parse_timestamps,
    _record_value,
    as_records,
    empty_table,
    read_alike,
)
from .problems import (
    HIDDEN_COLUMNS,
    MAX_LISTED,
    NULLED,
    PROBLEM_COLUMNS,
    QUARANTINE_HINT,
    SET_ASIDE,
    DataValidationError,
    _problems,
    _require_columns,
    _short,
    _structural,
)
from .pseudonyms import BAD_ID, BAD_PHONE, _check_identifiers, _normalise_pii, pseudonymise
from .validation import (
    BEFORE_REPORT,
    OUTCOME_RULE,
    SMALL,
    VALUE_RULE,
    _check_records,
    _nullable,
    _parse_table,
    _plausibility,
    _schema_problems,
    _validate_records,
    parse_records,
    table_schema,
    validate_rows,
)

__all__ = [
    "BAD_ID", "BAD_PHONE", "BAD_TIMESTAMP", "BEFORE_REPORT", "HIDDEN_COLUMNS", "KEY_ENV", "KEY_FILE_ENV",
    "MAX_LISTED", "NOT_FINITE", "NULLED", "OUTCOME_RULE", "PROBLEM_COLUMNS", "PSEUDONYMISED_MARKER", "QUARANTINE_HINT",
    "SET_ASIDE",
    "SMALL", "STR_DTYPE", "SYNTHETIC_MARKER", "TIMESTAMP_FORMATS", "VALUE_RULE", "DataValidationError", "Dataset",
    "ErrorsMode", "MarkerError", "mark_synthetic",
    "PseudonymKeyError", "as_records", "as_table", "build_parts", "empty_table", "load_dataset", "parse_records",
    "pseudonymise", "read_alike", "resolve_pseudonym_key", "table_schema", "validate_rows",
]
# Private helpers other modules and tests reach for, importable from the old path too.
_PRIVATE = (_add_line_numbers, _as_str, _bad, _before_report, _build, _check_identifiers, _check_records,
            _csv_lines, _finish_types, _isin, _missing, _normalise_pii, _nullable, _parse_column, _parse_table,
            _parse_timestamp, _parse_timestamps, _plausibility, _problems, _read_table, _record_value,
            _require_columns, _schema_problems, _short, _structural, _validate_records, _with_lines)
