"""MkDocs hook: the feature table page is rendered from the feature registry at build time,
so the documentation can never disagree with the features the library computes."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- feature-table -->"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    import escalation_risk as er

    table = er.feature_table()
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return markdown.replace(MARKER, "\n".join(lines))
