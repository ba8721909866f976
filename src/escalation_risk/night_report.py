"""A night's report: what :func:`escalation_risk.nightly.run_night` did, district by district."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .alerts import NightSummary
from .alerts.notify import DeliveryReport
from .drift import DriftReport


@dataclass
class NightReport:
    """What a night did: one store summary per district, the files, what was quarantined."""

    summaries: dict[str, NightSummary]
    #: Each district's recorded scores (trend applied), read when asked: :attr:`scores`
    #: joins them; :meth:`scores_of` reads one (the driver's memory stays one district's).
    by_district: Mapping[str, pd.DataFrame]
    quarantined_rows: int
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # this process's CPU time per step
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # this process's high-water RSS at each step's end
    rss_mb: dict[str, float] = field(default_factory=dict)  # this process's RSS at each step's end (Linux)
    drifts: dict[str, DriftReport | None] = field(default_factory=dict)
    nulled_values: int = 0
    delivery: DeliveryReport | None = None  # webhook messages of the night, when asked for
    cross_people: int = 0  # persons seen in two districts or more
    tasks: pd.DataFrame = field(default_factory=pd.DataFrame)
    store: str = ""  # where the night was recorded (the resolved URL, password hidden)

    @property
    def scores(self) -> pd.DataFrame:
        """Every district's scores of the night, in district order (read now: a province's
        whole night in memory; :meth:`scores_of` reads one district)."""
        frames = list(self.by_district.values())
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def scores_of(self, district: str) -> pd.DataFrame:
        """One district's scores of the night."""
        return self.by_district[district]

    @property
    def districts(self) -> list[str]:
        """The district codes of the night (``[""]``: a lone district)."""
        return list(self.summaries)

    @property
    def summary(self) -> NightSummary:
        """The night's summary: a lone district's, or the province's totals (district ``"*"``)."""
        if len(self.summaries) == 1:
            return next(iter(self.summaries.values()))
        s = list(self.summaries.values())
        return NightSummary(
            as_of=s[0].as_of, model_version=s[0].model_version, n_scored=sum(x.n_scored for x in s),
            by_level={lv: sum(x.by_level.get(lv, 0) for x in s) for lv in s[0].by_level},
            new_alerts=sum(x.new_alerts for x in s), updated_alerts=sum(x.updated_alerts for x in s),
            rising=sum(x.rising for x in s), overdue=sum(x.overdue for x in s),
            already_recorded=all(x.already_recorded for x in s), district="*")

    @property
    def drift(self) -> DriftReport | None:
        """A lone district's drift report (a province's are in ``drifts``)."""
        return next(iter(self.drifts.values())) if len(self.drifts) == 1 else None

    def __str__(self) -> str:
        if len(self.summaries) == 1:
            lines = [f"night {self.summary.as_of.isoformat()}: {self.summary}"]
        else:
            lines = [f"night {self.summary.as_of.isoformat()}:"] + [str(s) for s in self.summaries.values()]
            lines.append(f"province: {len(self.summaries)} districts, {self.summary.n_scored} disputes scored, "
                         f"{self.cross_people} people seen in several districts")
        if self.quarantined_rows:
            lines.append(f"quarantined rows: {self.quarantined_rows} (see {self.files.get('quarantine')})")
        for code, d in self.drifts.items():
            if d is not None:
                lines.append(f"drift{f' {code}' if code else ''}: {d.verdict}")
        if self.nulled_values:
            lines.append(f"values set to missing in kept rows: {self.nulled_values} "
                         f"(see {self.files.get('quarantine')})")
        if self.delivery is not None:
            lines.append(f"messages: {self.delivery}")
        return "\n".join(lines)


