"""The data contract in code: one declarative spec per table.

This module is the single source of truth for what ``escalation_risk`` reads
(``docs/data-contract.md`` is the same contract in prose). Loaders, validators,
the sample generator and the feature code all read these specs; nothing else in
the package hard-codes a column list or a code list.

Each record carries an *availability time*: the moment it exists for scoring.
Features for ``(dispute, as_of)`` may only use records whose availability time is
at or before ``as_of``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CONTRACT_VERSION = "1.1"

Kind = Literal["id", "str", "text", "int", "float", "bool", "timestamp", "code", "pii"]

GENDERS = ("male", "female", "unknown")
HUKOU = ("local", "migrant", "unknown")
EMPLOYMENT = ("employed", "unemployed", "retired", "student", "unknown")
FLAGS = ("mental_health", "substance", "community_correction", "prior_violence", "key_person", "other")
PLACE_TYPES = ("residential", "rural_village", "commercial", "industrial", "public", "other")
TENURES = ("owned", "rented", "collective", "unknown")
MEMBER_ROLES = ("head", "spouse", "partner", "child", "parent", "sibling", "tenant", "other")
ORG_TYPES = ("enterprise", "bank", "insurer", "property_management", "landlord", "government", "other")
INCIDENT_KINDS = ("dispute", "police_call", "complaint", "petition", "criminal_case")
DISPUTE_CATEGORIES = (
    "marriage_family", "neighbor", "debt", "labor_wage", "land_housing", "property_management",
    "traffic", "medical", "consumer_finance", "contract", "other",
)
OFFENCE_CATEGORIES = (
    "assault", "intentional_injury", "homicide", "arson", "property_damage",
    "threat_intimidation", "affray", "illegal_detention", "other",
)
# One categorical for both vocabularies; the kind decides which half is legal.
CATEGORIES = DISPUTE_CATEGORIES + tuple(c for c in OFFENCE_CATEGORIES if c not in DISPUTE_CATEGORIES)
SOURCES = (
    "police_110", "grid_worker", "mediation_center", "hotline_12345", "petition_office",
    "court", "walk_in", "other",
)
STATUSES = ("open", "mediating", "resolved", "failed", "transferred", "closed")
PARTY_TYPES = ("person", "organization")
PARTY_ROLES = ("complainant", "respondent", "victim", "suspect", "witness", "other")
MEDIATOR_TYPES = (
    "grid_worker", "people_mediation_committee", "police", "court", "lawyer",
    "industry_committee", "other",
)
MEDIATION_OUTCOMES = ("agreement", "partial", "failed", "pending")
# Attributes whose history person_attributes may hold (1.1), with their codes.
ATTRIBUTE_CODES = {"hukou": HUKOU, "employment": EMPLOYMENT}
ATTRIBUTES = tuple(ATTRIBUTE_CODES)
ATTRIBUTE_VALUES = tuple(dict.fromkeys(v for codes in ATTRIBUTE_CODES.values() for v in codes))
RELATIONS = (
    "spouse", "ex_spouse", "partner", "parent_child", "sibling", "relative", "neighbor",
    "landlord_tenant", "employer_employee", "creditor_debtor", "acquaintance", "other",
)
# Every id (kind ``id``): a letter or digit, then letters, digits, ``_ . : / -``; at most 128
# characters (the store's width). Nothing a spreadsheet would run as a formula, no spaces.
ID_PATTERN = re.compile(r"[^\W_][\w.:/-]{0,127}")
ID_RULE = "not a safe id (a letter or digit, then letters, digits, _ . : / or -; at most 128 characters)"


def is_safe_id(value: str) -> bool:
    """Whether ``value`` follows :data:`ID_PATTERN`."""
    return ID_PATTERN.fullmatch(value) is not None


# ID_PATTERN on ASCII text (where Python's \w is [A-Za-z0-9_]), for Arrow's RE2.
_ASCII_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,127}$"


def safe_ids(values) -> np.ndarray:
    """:func:`is_safe_id` of many non-missing strings at once (a district has ten million ids):
    ASCII values through Arrow's regex engine, any other through :data:`ID_PATTERN` itself."""
    arr = pa.array(values, type=pa.large_string()) if not isinstance(values, (pa.Array, pa.ChunkedArray)) \
        else values
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    out = pc.match_substring_regex(arr, _ASCII_ID_PATTERN).to_numpy(zero_copy_only=False).astype(bool)
    other = np.flatnonzero(~pc.string_is_ascii(arr).to_numpy(zero_copy_only=False).astype(bool))
    if len(other):
        out[other] = [is_safe_id(v) for v in arr.take(pa.array(other)).to_pylist()]
    return out


# Offences that count as violence for place, network and history features.
VIOLENT_OFFENCES = ("assault", "intentional_injury", "homicide", "arson", "affray",
                    "illegal_detention", "threat_intimidation")


@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``required`` columns must be present and non-null; the others may be absent
    (they are added as nulls) or null. ``ref`` names ``(table, column)`` that each
    non-null value must exist in.
    """

    name: str
    kind: Kind
    required: bool = False
    unique: bool = False
    codes: tuple[str, ...] | None = None
    min: float | None = None
    ref: tuple[str, str] | None = None
    doc: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract: its columns, key and availability times."""

    name: str
    columns: tuple[Column, ...]
    required: bool = False
    key: str | None = None
    available_at: tuple[str, ...] = ()
    doc: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


C = Column
TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec("persons", (
            C("person_id", "id", required=True, unique=True),
            C("birth_year", "int", min=1880),
            C("gender", "code", codes=GENDERS),
            C("hukou", "code", codes=HUKOU),
            C("employment", "code", codes=EMPLOYMENT),
            C("name", "pii"), C("id_number", "pii"), C("phone", "pii"),
            C("recorded_at", "timestamp", doc="optional: when the source system created the record; it "
                                              "links (record linkage) only from then"),
        ), required=True, key="person_id", available_at=("recorded_at",), doc="人: people"),
        TableSpec("person_flags", (
            C("person_id", "id", required=True, ref=("persons", "person_id")),
            C("flag", "code", required=True, codes=FLAGS),
            C("recorded_at", "timestamp", required=True),
        ), available_at=("recorded_at",), doc="concerns on record, point in time"),
        TableSpec("person_attributes", (
            C("person_id", "id", required=True, ref=("persons", "person_id")),
            C("attribute", "code", required=True, codes=ATTRIBUTES),
            C("value", "code", required=True, codes=ATTRIBUTE_VALUES, doc="one of its attribute's codes"),
            C("recorded_at", "timestamp", required=True),
        ), available_at=("recorded_at",),
            doc="how hukou and employment stood over time (1.1): a value holds from its recorded_at "
                "until the person's next row for the same attribute"),
        TableSpec("places", (
            C("place_id", "id", required=True, unique=True),
            C("grid_id", "id", required=True),
            C("town", "str"), C("district", "str"),
            C("place_type", "code", codes=PLACE_TYPES),
            C("lat", "float"), C("lon", "float"),
        ), required=True, key="place_id", doc="房/地: addresses, buildings, village plots"),
        TableSpec("households", (
            C("household_id", "id", required=True, unique=True),
            C("place_id", "id", required=True, ref=("places", "place_id")),
            C("tenure", "code", codes=TENURES),
        ), key="household_id", doc="户: households"),
        TableSpec("household_members", (
            C("household_id", "id", required=True, ref=("households", "household_id")),
            C("person_id", "id", required=True, ref=("persons", "person_id")),
            C("role", "code", codes=MEMBER_ROLES),
            C("start_date", "timestamp"), C("end_date", "timestamp"),
        ), available_at=("start_date", "end_date"), doc="who lives in which household, when"),
        TableSpec("organizations", (
            C("org_id", "id", required=True, unique=True),
            C("org_type", "code", codes=ORG_TYPES),
            C("place_id", "id", ref=("places", "place_id")),
            C("name", "text", doc="free text typed by staff: never written out"),
        ), key="org_id", doc="企: organisations"),
        TableSpec("incidents", (
            C("incident_id", "id", required=True, unique=True),
            C("kind", "code", required=True, codes=INCIDENT_KINDS),
            C("category", "code", required=True, codes=CATEGORIES),
            C("occurred_at", "timestamp", required=True),
            C("reported_at", "timestamp", required=True),
            C("place_id", "id", ref=("places", "place_id")),
            C("source", "code", codes=SOURCES),
            C("status", "code", codes=STATUSES, doc="state at export time: never a feature"),
            C("closed_at", "timestamp"),
            C("amount", "float", min=0.0),
            C("description", "text"),
            C("related_incident_id", "id", ref=("incidents", "incident_id")),
        ), required=True, key="incident_id", available_at=("reported_at", "closed_at"),
            doc="事: disputes, police calls, complaints, petitions, criminal cases"),
        TableSpec("incident_parties", (
            C("incident_id", "id", required=True, ref=("incidents", "incident_id")),
            C("party_id", "id", required=True),
            C("party_type", "code", required=True, codes=PARTY_TYPES),
            C("role", "code", codes=PARTY_ROLES),
            C("added_at", "timestamp", doc="1.1: on the incident from then; null = from its reported_at"),
        ), required=True, available_at=("added_at",), doc="who took part in an incident, and how"),
        TableSpec("mediations", (
            C("mediation_id", "id", required=True, unique=True),
            C("incident_id", "id", required=True, ref=("incidents", "incident_id")),
            C("held_at", "timestamp", required=True),
            C("mediator_type", "code", codes=MEDIATOR_TYPES),
            C("outcome", "code", codes=MEDIATION_OUTCOMES),
            C("outcome_at", "timestamp", doc="1.1: outcome recorded then; pending before; null = at held_at"),
        ), key="mediation_id", available_at=("held_at", "outcome_at"), doc="调解: mediation sessions"),
        TableSpec("incident_notes", (
            C("note_id", "id", required=True, unique=True),
            C("incident_id", "id", required=True, ref=("incidents", "incident_id")),
            C("recorded_at", "timestamp", required=True),
            C("text", "text"),
        ), key="note_id", available_at=("recorded_at",),
            doc="what was written about an incident after its report (1.1): visits, progress, later facts"),
        TableSpec("relations", (
            C("person_a", "id", required=True, ref=("persons", "person_id")),
            C("person_b", "id", required=True, ref=("persons", "person_id")),
            C("relation", "code", required=True, codes=RELATIONS),
            C("since", "timestamp"),
        ), available_at=("since",), doc="known ties between people (undirected)"),
    )
}
del C

# Tables are validated in this order so that a quarantined row's dependants are
# quarantined with it (a party of a rejected incident is itself unusable).
TABLE_ORDER = (
    "persons", "places", "organizations", "households", "household_members",
    "person_flags", "person_attributes", "relations", "incidents", "incident_parties", "mediations",
    "incident_notes",
)
# Tables and columns that contract 1.1 added; a 1.0 export simply lacks them.
CONTRACT_1_1 = {"incident_parties": ("added_at",), "mediations": ("outcome_at",),
                "person_attributes": (), "incident_notes": ()}
REQUIRED_TABLES = tuple(n for n, t in TABLES.items() if t.required)
PII_COLUMNS = {n: tuple(c.name for c in t.columns if c.kind == "pii") for n, t in TABLES.items()}
