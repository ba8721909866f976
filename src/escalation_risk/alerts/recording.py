"""Recording a night: scores, the run, raised and updated alerts, in one transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import pandas as pd
import sqlalchemy as sa

from .bulk import insert_dicts, insert_rows
from .errors import NightConflictError, StoreKeyError
from .lifecycle import (
    ACTIVE_STATUSES,
    DUE_DAYS,
    LEVEL_RANK,
    LEVELS,
    due_at,
    tighten_due,
)
from .locking import Locking
from .rows import _ROW_COLUMNS, _now, _score_rows, _timestamp
from .tables import alerts_table, events_table, replaced_runs_table, replaced_scores_table, runs_table, scores_table


@dataclass(frozen=True)
class NightSummary:
    """What one nightly run did to the store.

    ``by_level`` counts the disputes scored at each level; ``rising`` counts scored
    disputes whose trend is rising; ``overdue`` counts open, unresolved alerts past
    due at ``as_of``. ``already_recorded`` is true when this night had been recorded
    before and nothing changed (the counts are those of the first recording).
    """

    as_of: pd.Timestamp
    model_version: str
    n_scored: int
    by_level: dict[str, int] = field(default_factory=dict)
    new_alerts: int = 0
    updated_alerts: int = 0
    rising: int = 0
    overdue: int = 0
    already_recorded: bool = False
    district: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (as_of as ISO text), for JSON output and logs."""
        out = asdict(self)
        out["as_of"] = pd.Timestamp(self.as_of).isoformat()
        return out

    def __str__(self) -> str:
        levels = ", ".join(f"{k} {v}" for k, v in self.by_level.items())
        again = " (already recorded; nothing changed)" if self.already_recorded else ""
        where = f"district {self.district} " if self.district else ""
        return (
            f"{where}{pd.Timestamp(self.as_of):%Y-%m-%d} model {self.model_version}: "
            f"{self.n_scored} scored ({levels}); {self.new_alerts} new alerts, "
            f"{self.updated_alerts} updated, {self.rising} rising, {self.overdue} overdue"
            f"{again}"
        )



class Recording(Locking):
    """Recording nights (a mixin of :class:`AlertStore`)."""

    # -- the nightly run -------------------------------------------------------

    def record_night(
        self,
        scores: pd.DataFrame,
        as_of: Any,
        model_version: str,
        *,
        alert_levels: Sequence[str] = ("red", "orange", "yellow"),
        raised_by: str = "system",
        input_fingerprint: str | None = None,
        key_fingerprint: str | None = None,
        replace: bool = False,
        backfill: bool = False,
        district: str | None = None,
    ) -> NightSummary:
        """Record one night's scores and raise or update alerts, all in one transaction.

        ``district`` names the district of a province the night is for (default: the
        one value of the scores' ``district`` column, else ``""``, a lone district).
        Each district's night is its own transaction and is idempotent on its own;
        nights of different districts may be recorded at the same time.

        ``scores`` has columns dispute_id, probability, level, trend, reasons, plan
        and optionally as_of (must equal ``as_of``) and delta. Recording the same
        night (``as_of`` and ``model_version``) again changes nothing and returns the
        first recording's summary with ``already_recorded=True``.

        A dispute reaching a level in ``alert_levels`` without an open alert gets one,
        owned by ``raised_by``. An open alert follows its dispute's latest score; a
        change of level or trend is logged as an ``updated`` event, a rise in level
        tightens the due time, and a drop to blue leaves the alert open for a person
        to close.

        ``input_fingerprint`` identifies the night's input. A night already recorded
        from the same input is a no-op; from a different one it raises
        :class:`NightConflictError` unless ``replace``, which moves the first
        recording (run and scores) to ``replaced_runs``/``replaced_scores`` and
        records this one. A night older than the newest recorded night is refused
        unless ``backfill``: its trends would be computed against the wrong night.
        ``key_fingerprint`` names the pseudonym key the night's ids were made with
        (``pseudonym_keys.key_fingerprint``). The store keeps it with its first night and
        refuses a night under another key with :class:`StoreKeyError`, whatever
        ``replace`` says: ids made with two keys never meet in one store.
        The whole step holds the store's recording lock (:meth:`recording_lock`).
        """
        night, district = _night_of(scores, as_of, model_version, district)
        bad = [lvl for lvl in alert_levels if lvl not in DUE_DAYS]
        if bad:
            raise ValueError(
                f"alert_levels: {bad} cannot raise alerts; expected a subset of {tuple(DUE_DAYS)}"
            )
        rows = _score_rows(scores, night)
        started = _now(None)

        with self.recording_lock(district=district), \
                self.engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            done = _decide(conn, district, night, model_version, input_fingerprint=input_fingerprint,
                           key_fingerprint=key_fingerprint, replace=replace, backfill=backfill)
            if done is not None and not replace:
                return _summary_from_run(done, already_recorded=True)
            if done is not None:
                _archive_run(conn, dict(done), input_fingerprint, started)

            inserted = conn.execute(
                sa.insert(runs_table).values(district=district, as_of=night, model_version=model_version,
                                             started_at=started, input_fingerprint=input_fingerprint,
                                             key_fingerprint=key_fingerprint)
            ).inserted_primary_key
            assert inserted is not None  # an INSERT of one row always has one
            run_id = inserted[0]
            # The night's constants are bound once, not per row (bulk.insert_rows).
            insert_rows(conn, scores_table, _ROW_COLUMNS, list(map(itemgetter(*_ROW_COLUMNS), rows)),
                        {"district": district, "as_of": night, "model_version": model_version},
                        plain=("probability", "delta"))  # _score_rows made them float or None
            new, updated = _apply_alerts(conn, rows, night, model_version, tuple(alert_levels), raised_by,
                                         district)
            overdue = conn.execute(
                sa.select(sa.func.count()).select_from(alerts_table).where(
                    alerts_table.c.district == district,
                    alerts_table.c.status.in_(ACTIVE_STATUSES), alerts_table.c.due_at < night,
                )
            ).scalar_one()
            counts = Counter(r["level"] for r in rows)
            by_level = {lvl: counts[lvl] for lvl in LEVELS}
            rising = sum(r["trend"] == "rising" for r in rows)
            conn.execute(
                sa.update(runs_table)
                .where(runs_table.c.run_id == run_id)
                .values(
                    finished_at=_now(None),
                    n_scored=len(rows),
                    n_new_alerts=new,
                    n_updated_alerts=updated,
                    n_rising=rising,
                    n_overdue=overdue,
                    **{f"n_{lvl}": n for lvl, n in by_level.items()},
                )
            )
        return NightSummary(
            as_of=pd.Timestamp(night),
            model_version=model_version,
            n_scored=len(rows),
            by_level=by_level,
            new_alerts=new,
            updated_alerts=updated,
            rising=rising,
            overdue=overdue,
            district=district,
        )


    def check_night(
        self,
        scores: pd.DataFrame,
        as_of: Any,
        model_version: str,
        *,
        input_fingerprint: str | None = None,
        key_fingerprint: str | None = None,
        replace: bool = False,
        backfill: bool = False,
        district: str | None = None,
    ) -> NightSummary | None:
        """Raise the refusal :meth:`record_night` would raise for this night, writing nothing.

        The same rule as :meth:`record_night` (a corrected export without ``replace``, an
        older night without ``backfill``, another pseudonym key). Returns the first
        recording's summary (``already_recorded=True``) when recording would be a no-op,
        else None. The answer holds only while the district's :meth:`recording_lock` is
        held from this check to the recording: a province's night checks every district
        under all their locks before recording any, so a refusal of one records none.
        """
        night, district = _night_of(scores, as_of, model_version, district)
        with self.engine.connect() as conn:
            done = _decide(conn, district, night, model_version, input_fingerprint=input_fingerprint,
                           key_fingerprint=key_fingerprint, replace=replace, backfill=backfill)
        if done is not None and not replace:
            return _summary_from_run(done, already_recorded=True)
        return None


def _night_of(scores: Any, as_of: Any, model_version: str, district: str | None) -> tuple[datetime, str]:
    """The night and the district a night's arguments name, checked."""
    night = _timestamp(as_of, "as_of")
    if not isinstance(model_version, str) or not model_version:
        raise ValueError(f"model_version: expected a non-empty str, got {model_version!r}")
    return night, _night_district(scores, district)


def _decide(conn: sa.Connection, district: str, night: datetime, model_version: str, *,
            input_fingerprint: str | None, key_fingerprint: str | None, replace: bool,
            backfill: bool) -> Any:
    """The one rule for whether a district's night may be recorded (record and check share it).

    Raises the refusal, naming the district of a province; else returns the run already
    recorded for this night (a no-op unless ``replace``), or None."""
    _check_key(conn, key_fingerprint)
    where = f"district {district}: " if district else ""
    done = conn.execute(
        sa.select(runs_table).where(
            runs_table.c.district == district,
            runs_table.c.as_of == night, runs_table.c.model_version == model_version,
        )
    ).mappings().first()
    if done is not None and not replace:
        if input_fingerprint is None or done["input_fingerprint"] in (None, input_fingerprint):
            return done
        raise NightConflictError(
            f"{where}night {night.isoformat()} was recorded at {_fmt(done['started_at'])} from different "
            f"input (fingerprint {str(done['input_fingerprint'])[:12]}, this input "
            f"{input_fingerprint[:12] if input_fingerprint else None}); nothing was written. "
            "If the export was corrected, record it again with replace (--replace): the first "
            "recording stays in the audit trail")
    # The replaced run has this very night, so counting it or not never changes "older".
    newest = conn.execute(sa.select(sa.func.max(runs_table.c.as_of))
                          .where(runs_table.c.district == district)).scalar()
    if newest is not None and night < newest and not backfill:
        raise NightConflictError(
            f"{where}night {night.isoformat()} is older than the newest recorded night {newest.isoformat()}; "
            "its trends would be computed against the wrong night; nothing was written. Record it with "
            "backfill (--backfill) if that is what you mean")
    return done


def _night_district(scores: Any, district: str | None) -> str:
    """The district of one night's scores: the argument, else the scores' one value."""
    found: list[str] = []
    if isinstance(scores, pd.DataFrame) and "district" in scores.columns and len(scores):
        found = sorted({str(d) for d in scores["district"].dropna().unique()})
        if scores["district"].isna().any() or len(found) > 1 or (district is not None and found != [district]):
            raise ValueError(
                f"scores: column 'district' must hold the one district of the night "
                f"({district!r} given), got {found}{' and missing values' if scores['district'].isna().any() else ''}"
            )
    if district is None:
        district = found[0] if found else ""
    if not isinstance(district, str) or len(district) > 64:
        raise ValueError(f"district: expected a str of at most 64 characters, got {district!r}")
    return district



def _summary_from_run(run: Any, *, already_recorded: bool) -> NightSummary:
    return NightSummary(
        as_of=pd.Timestamp(run["as_of"]),
        model_version=run["model_version"],
        n_scored=run["n_scored"],
        by_level={lvl: run[f"n_{lvl}"] for lvl in LEVELS},
        new_alerts=run["n_new_alerts"],
        updated_alerts=run["n_updated_alerts"],
        rising=run["n_rising"],
        overdue=run["n_overdue"],
        already_recorded=already_recorded,
        district=run["district"],
    )


def _check_key(conn: sa.Connection, key_fingerprint: str | None) -> None:
    """Refuse a night under another pseudonym key than the store's recorded nights."""
    if key_fingerprint is None:
        return
    if not isinstance(key_fingerprint, str) or not 8 <= len(key_fingerprint) <= 64:
        raise ValueError(f"key_fingerprint: expected a str of 8 to 64 characters, got {key_fingerprint!r}")
    r = runs_table
    other = conn.execute(sa.select(r.c.key_fingerprint).where(
        r.c.key_fingerprint.is_not(None), r.c.key_fingerprint != key_fingerprint).limit(1)).scalar()
    if other is not None:
        # The fingerprints name the keys without showing them; neither is a secret.
        raise StoreKeyError(
            f"this store was recorded with another pseudonym key (fingerprint {other}, this night's key "
            f"{key_fingerprint}); nothing was written. Its ids were made with that key: use the store of this "
            "key, or the key of this store")


def _archive_run(conn: sa.Connection, done: dict[str, Any], fingerprint: str | None, at: datetime) -> None:
    """Move a recorded night (run and scores) to the replaced_* tables."""
    inserted = conn.execute(sa.insert(replaced_runs_table).values(
        replaced_at=at, replaced_by_fingerprint=fingerprint, old_run_id=done["run_id"],
        **{k: v for k, v in done.items() if k != "run_id"})).inserted_primary_key
    assert inserted is not None
    replaced_id = inserted[0]
    s = scores_table
    night = (s.c.district == done["district"], s.c.as_of == done["as_of"],
             s.c.model_version == done["model_version"])
    cols = [c.name for c in s.columns if c.name != "score_id"]
    conn.execute(sa.insert(replaced_scores_table).from_select(
        ["replaced_id", *cols], sa.select(sa.literal(replaced_id), *(s.c[c] for c in cols)).where(*night)))
    conn.execute(sa.delete(s).where(*night))
    conn.execute(sa.delete(runs_table).where(runs_table.c.run_id == done["run_id"]))


def _fmt(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M}"


def _apply_alerts(
    conn: sa.Connection,
    rows: list[dict[str, Any]],
    night: datetime,
    model_version: str,
    alert_levels: tuple[str, ...],
    who: str,
    district: str = "",
) -> tuple[int, int]:
    """Raise new alerts and bring open ones up to tonight's scores; returns (new, updated)."""
    a = alerts_table
    open_alerts = {
        r["dispute_id"]: dict(r)
        for r in conn.execute(sa.select(a).where(a.c.status != "closed", a.c.district == district)).mappings()
    }
    to_raise: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    due_tonight = {lvl: due_at(lvl, night).to_pydatetime() for lvl in alert_levels}
    for r in rows:
        current = open_alerts.get(r["dispute_id"])
        if current is None:
            if r["level"] in alert_levels:
                to_raise.append(
                    {
                        **{k: r[k] for k in ("dispute_id", "level", "probability", "trend", "delta", "reasons",
                                             "plan", "reasons_zh")},
                        "model_version": model_version,
                        "district": district,
                        "status": "raised",
                        "owner": who,
                        "raised_by": who,
                        "raised_at": night,
                        "due_at": due_tonight[r["level"]],
                        "updated_at": night,
                        "status_at": night,
                        "last_as_of": night,
                    }
                )
            continue
        # A backfilled older night is kept in the score history but must not roll
        # an alert back to an older picture.
        if night < current["last_as_of"]:
            continue
        due = current["due_at"]
        if LEVEL_RANK[r["level"]] > LEVEL_RANK[current["level"]]:
            due = tighten_due(due, r["level"], night).to_pydatetime()
        changes = []
        if r["level"] != current["level"]:
            changes.append(f"level {current['level']} -> {r['level']}")
        if r["trend"] != current["trend"]:
            changes.append(f"trend {current['trend']} -> {r['trend']}")
        if due != current["due_at"]:
            changes.append(f"due {_fmt(current['due_at'])} -> {_fmt(due)}")
        to_update.append(
            {
                "b_alert_id": current["alert_id"],
                **{k: r[k] for k in ("level", "probability", "trend", "delta", "reasons", "plan", "reasons_zh")},
                "model_version": model_version,
                "due_at": due,
                "updated_at": night,
                "last_as_of": night,
            }
        )
        if changes:
            events.append(
                {
                    "alert_id": current["alert_id"],
                    "at": night,
                    "who": who,
                    "event": "updated",
                    "from_status": current["status"],
                    "to_status": current["status"],
                    "owner": current["owner"],
                    "note": "; ".join(changes),
                }
            )
    if to_update:
        conn.execute(
            # executemany: the SET clause takes the column keys of the parameter dicts.
            sa.update(a).where(a.c.alert_id == sa.bindparam("b_alert_id")),
            to_update,
        )
    if to_raise:
        insert_dicts(conn, a, to_raise)
        raised = {r["dispute_id"] for r in to_raise}
        by_dispute = {r["dispute_id"]: r for r in to_raise}
        new_ids = conn.execute(
            sa.select(a.c.alert_id, a.c.dispute_id).where(
                a.c.status == "raised", a.c.raised_at == night, a.c.district == district
            )
        ).all()
        for alert_id, dispute_id in sorted(new_ids):
            if dispute_id not in raised:
                continue
            r = by_dispute[dispute_id]
            events.append(
                {
                    "alert_id": alert_id,
                    "at": night,
                    "who": who,
                    "event": "raised",
                    "from_status": None,
                    "to_status": "raised",
                    "owner": who,
                    "note": f"{r['level']}, p={r['probability']:.2f}, trend {r['trend']}, model {model_version}",
                }
            )
    if events:
        insert_dicts(conn, events_table, events)
    return len(to_raise), sum(e["event"] == "updated" for e in events)
