"""Text signals: a documented, extensible lexicon of danger words in Chinese and English.

The lexicon lives in ``escalation_risk/lexicon/signals.json``: one list of regular
expressions per signal (threat, revenge, weapon, drinking, self-harm, violence,
repeated petitions, agitation, group action). Pass another file to
:func:`load_lexicon` to extend it; every signal becomes a pair of features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import re2

# Up to this many texts, RE2's own Python binding (patterns compiled once) reads them;
# more go through Arrow's vectorised RE2, which compiles the patterns on every call
# (3 ms: most of one score_dispute). One engine, RE2, either way; a test holds the two
# paths to the same matrix on a whole district's texts.
FEW_TEXTS = 64

@dataclass(frozen=True)
class Lexicon:
    """Signals with their patterns and their readable labels (English, Chinese)."""

    patterns: dict[str, tuple[str, ...]]
    labels: dict[str, tuple[str, str]]

    @property
    def signals(self) -> list[str]:
        return list(self.patterns)

    @staticmethod
    def _regex(patterns: tuple[str, ...]) -> str:
        # Groups inside the patterns are made non-capturing: only a yes/no is wanted.
        body = "|".join(p.replace("(?:", "(").replace("(", "(?:").replace("(?:?", "(?") for p in patterns)
        return "(?i)(?:" + body + ")"

    @cached_property
    def _compiled(self) -> list:
        return [re2.compile(self._regex(pats)) for pats in self.patterns.values()]

    def matrix(self, texts: pd.Series, engine: str = "auto") -> np.ndarray:
        """0/1 matrix (len(texts) x signals): which signals each text shows.

        RE2 reads every text, a district's or a single dispute's, so batch and online
        features agree to the bit. ``engine``: "auto", "arrow" (vectorised) or "re2"
        (compiled once, for a handful of texts).
        """
        if engine == "re2" or (engine == "auto" and len(texts) <= FEW_TEXTS and not isinstance(texts, pa.Array)):
            values = [t if isinstance(t, str) else "" for t in
                      (texts.tolist() if isinstance(texts, pd.Series) else list(texts))]
            return np.array([[1 if rx.search(t) else 0 for rx in self._compiled] for t in values],
                            dtype=np.int8).reshape(len(values), len(self.patterns))
        # pyarrow's RE2 engine directly: the same engine for one text or millions, and
        # without pandas' per-call overhead, which dominated single-dispute scoring.
        arr = pa.array(pd.Series(texts, dtype=object).where(pd.notna(texts), "").astype(str).tolist()
                       if not isinstance(texts, pa.Array) else texts, type=pa.string())
        out = np.zeros((len(arr), len(self.patterns)), dtype=np.int8)
        for j, pats in enumerate(self.patterns.values()):
            out[:, j] = pc.match_substring_regex(arr, self._regex(pats)).to_numpy(zero_copy_only=False)
        return out


@lru_cache(maxsize=8)
def load_lexicon(path: str | None = None) -> Lexicon:
    """Read a lexicon JSON (default: the one shipped with the package)."""
    if path is None:
        text = resources.files("escalation_risk").joinpath("lexicon/signals.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    raw = json.loads(text)
    labels = {k: tuple(v) for k, v in raw.get("_labels", {}).items()}
    patterns = {k: tuple(v) for k, v in raw.items() if not k.startswith("_")}
    for k in patterns:
        labels.setdefault(k, (k.replace("_", " "), k))
    return Lexicon(patterns=patterns, labels=labels)
