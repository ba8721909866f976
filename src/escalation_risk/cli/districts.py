"""The districts a data folder stands for on the command line: a district, a province, one of its districts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

DISTRICT_HELP = ("With a province folder: only this district (its code, the name of its folder). A folder "
                 "inside a province folder is that district when the store holds its nights.")


def district_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--district CODE``: one district of a province folder."""
    return click.option("--district", default=None, metavar="CODE", help=DISTRICT_HELP)(f)


def folders(data_dir: str, district: str | None, recorded: list[str] | None = None) -> dict[str, Path]:
    """District code -> folder for DATA_DIR: a province's districts (or the one named), else
    one district: ``--district``, or, for a folder inside a province folder whose name is
    a district in the store (``recorded``), that district; else a lone district (``""``).
    An unknown district is exit 2."""
    from ..province import ProvinceError, districts_of, folder_district
    if district is None and recorded is not None:
        name = folder_district(data_dir)
        district = name if name in recorded else None
    try:
        found = districts_of(data_dir, district)
    except ProvinceError as e:
        raise click.BadParameter(str(e), param_hint="--district") from None
    return {code: Path(str(src)) for code, src in found.items()}


def heading(code: str) -> str:
    """The line above one district's output (nothing for a lone district)."""
    return f"== district {code} ==" if code else ""
