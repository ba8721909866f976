"""The districts a data folder stands for on the command line: a district, a province, one of its districts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

DISTRICT_HELP = ("With a province folder: only this district (its code, the name of its folder). A folder "
                 "inside a province folder is that district.")


def district_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--district CODE``: one district of a province folder."""
    return click.option("--district", default=None, metavar="CODE", help=DISTRICT_HELP)(f)


def folders(data_dir: str, district: str | None) -> dict[str, Path]:
    """District code -> folder for DATA_DIR: a province's districts (or the one named), a
    district folder inside a province (its name), else a lone district (code ``""``);
    an unknown district is exit 2."""
    from ..province import ProvinceError, districts_of, folder_district
    try:
        found = districts_of(data_dir, district if district is not None else folder_district(data_dir))
    except ProvinceError as e:
        raise click.BadParameter(str(e), param_hint="--district") from None
    return {code: Path(str(src)) for code, src in found.items()}


def in_store(code: str, recorded: list[str]) -> str:
    """The district a store holds a folder's nights under: ``code``, or ``""`` when the
    store holds only a lone district (the folder was run on its own)."""
    return "" if code and code not in recorded and "" in recorded else code


def heading(code: str) -> str:
    """The line above one district's output (nothing for a lone district)."""
    return f"== district {code} ==" if code else ""
