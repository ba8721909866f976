"""What the district benchmark (``run.py``) and the province benchmark (``province.py``) share.

Their command line's common options (persons, seed, model, the markdown file, the
temporary folder), the machine and git lines of a section's header, and writing a
section into ``BENCHMARKS.md`` between its markers.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def parser(description: str, *, persons: int | None, seed: int = 0, model: str | None = None,
           out_help: str = "markdown file to update ('': none)") -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes: ``--persons`` (required
    when ``persons`` is None), ``--seed``, ``--model`` (a model directory; ``model`` its
    default), ``--out`` (BENCHMARKS.md by default), ``--tmp`` and ``--keep``."""
    ap = argparse.ArgumentParser(description=description)
    if persons is None:
        ap.add_argument("--persons", type=int, required=True)
    else:
        ap.add_argument("--persons", type=int, default=persons, help="persons per district")
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--model", default=model, help="model directory" + (" (default: %(default)s)" if model else
                                                                        ": load it instead of training"))
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help=out_help)
    ap.add_argument("--tmp", default=None, help="parent of the temp folder")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    return ap


def machine() -> str:
    """This machine's cores and memory, as a section's header says them."""
    return f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB"


def git_rev() -> str:
    """The checkout's short commit."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=ROOT).stdout.strip()


def utc_now() -> str:
    """The date and time a section is written, in UTC."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def write_section(path: Path, section: str, marker: str, intro: str = "") -> None:
    """Put ``section`` between ``<!-- MARKER -->`` and ``<!-- /MARKER -->`` in ``path``:
    replaced when they are there, else added at the end of the ``## Runs`` part (before
    the next ``## `` heading), or at the end. A missing file starts from ``intro``."""
    begin, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    block = f"{begin}\n{section}\n{end}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else intro
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", lambda _m: block, text, flags=re.S)
    else:
        runs = text.find("\n## Runs")
        nxt = text.find("\n## ", runs + 1) if runs >= 0 else -1
        if nxt >= 0:
            text = text[:nxt].rstrip("\n") + "\n\n" + block + text[nxt:]
        else:
            text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")
