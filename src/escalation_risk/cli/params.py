"""The one reading of a date on the command line: the kernel's moment rule as click types."""

from __future__ import annotations

from typing import Any

import click
import pandas as pd

from .. import clock


class Moment(click.ParamType):
    """A date or date-time by :func:`escalation_risk.clock.to_moment`: a date naming a
    moment (``--as-of``, a night, ``--cutoff``, ``--at``) is the end of that day, a date
    opening a range (``--from``, ``--start``) its start; an offset is converted to the zone."""

    name = "DATE"

    def __init__(self, role: clock.Role = "moment") -> None:
        self.role: clock.Role = role

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> pd.Timestamp:
        if isinstance(value, pd.Timestamp):
            return value
        what = param.opts[0] if param is not None and param.opts else "date"
        try:
            return clock.to_moment(value, role=self.role, what=what)
        except clock.MomentError as exc:
            self.fail(str(exc).removeprefix(f"{what}: "), param, ctx)


#: A date naming a moment: its end. ``--as-of``, a night, ``--cutoff``, ``--to``, ``--at``.
MOMENT = Moment("moment")
#: A date opening a range: its start. ``--from``, ``--start``.
RANGE_START = Moment("start")
