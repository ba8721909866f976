"""MkDocs hooks: the feature table page is rendered from the feature registry at build time,
so the documentation can never disagree with the features the library computes; a
``<!-- readme: HEADING -->`` marker brings in that section of the README, so a rule
written there (what a date means, for one) has one text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MARKER = "<!-- feature-table -->"
README = Path(__file__).resolve().parents[1] / "README.md"
_README_MARKER = re.compile(r"<!-- readme: (.+?) -->")


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def readme_section(heading: str) -> str:
    """The body of the README section titled ``heading`` (to the next heading of its level or above)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(#+) (.*)", line)
        if m and m.group(2).strip() == heading:
            level = len(m.group(1))
            body = []
            for nxt in lines[i + 1:]:
                h = re.match(r"(#+) ", nxt)
                if h and len(h.group(1)) <= level:
                    break
                body.append(nxt)
            return "\n".join(body).strip() + "\n"
    raise ValueError(f"README.md has no section {heading!r}")


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    markdown = _README_MARKER.sub(lambda m: readme_section(m.group(1)), markdown)
    if MARKER not in markdown:
        return markdown
    import escalation_risk as er

    table = er.feature_table()
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return markdown.replace(MARKER, "\n".join(lines))
