"""Text signals: a documented, extensible lexicon of danger words in Chinese and English.

The lexicon lives in ``escalation_risk/lexicon/signals.json``: one list of regular
expressions per signal (threat, revenge, weapon, drinking, self-harm, violence,
repeated petitions, agitation, group action), matched case-insensitively by RE2 (the
engine pyarrow uses: no look-around or back-references). Pass another file to
:func:`load_lexicon` to extend or trim it; every signal becomes the pair of features
``text_<signal>`` and ``followup_text_<signal>``
(:func:`escalation_risk.features.feature_names`), a removed signal's pair is gone,
and ``build_features(ds, points, lexicon=...)`` / ``train(..., lexicon=...)`` use it.
A model trained with a custom lexicon stores it in its manifest and scores with it.
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

from ..dataset.parsing import arrow_strings

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
        # Groups are made non-capturing (only a yes/no is wanted); escaped parentheses
        # and parentheses inside bracket classes are literal text and stay as written.
        return "(?i)(?:" + "|".join(_non_capturing(p) for p in patterns) + ")"

    def to_dict(self) -> dict:
        """The lexicon in its JSON file's shape (for a model's manifest)."""
        return {"_labels": {k: list(v) for k, v in self.labels.items()},
                **{k: list(v) for k, v in self.patterns.items()}}

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
        if isinstance(texts, pa.Array):
            arr = texts
        elif isinstance(texts, pd.Series) and isinstance(texts.dtype, pd.StringDtype):
            # An Arrow-backed column (a loaded district's): read in place, no Python string per text.
            arr = pc.fill_null(arrow_strings(texts), "")
        else:
            arr = pa.array(pd.Series(texts, dtype=object).where(pd.notna(texts), "").astype(str).tolist(),
                           type=pa.string())
        out = np.zeros((len(arr), len(self.patterns)), dtype=np.int8)
        for j, pats in enumerate(self.patterns.values()):
            out[:, j] = pc.match_substring_regex(arr, self._regex(pats)).to_numpy(zero_copy_only=False)
        return out


def _non_capturing(pattern: str) -> str:
    """``pattern`` with every capturing group ``(`` made ``(?:``; escapes (``\\(``) and
    bracket classes (``[(（]``) are copied untouched."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":  # a leading ] is a literal member of the class
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(pattern[i:j + 1])
            i = j + 1
        elif c == "(" and not pattern.startswith("(?", i):
            out.append("(?:")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def lexicon_from_dict(raw: dict, where: str = "lexicon") -> Lexicon:
    """A :class:`Lexicon` from the JSON shape (signal -> patterns, ``_labels``, ``_doc``);
    every pattern is compiled by RE2 here so that a bad one is named at load time."""
    labels = {k: tuple(v) for k, v in raw.get("_labels", {}).items()}
    patterns = {}
    for k, v in raw.items():
        if k.startswith("_"):
            continue
        if not k.isidentifier() or not isinstance(v, list) or not v or not all(isinstance(p, str) for p in v):
            raise ValueError(f"{where}: signal {k!r} must be a name (letters, digits, _) with a non-empty "
                             f"list of regular expressions")
        patterns[k] = tuple(v)
    for k in patterns:
        labels.setdefault(k, (k.replace("_", " "), k))
    lex = Lexicon(patterns=patterns, labels={k: labels[k] for k in patterns})
    probe = pa.array([""], type=pa.string())
    for k, pats in patterns.items():
        try:
            pc.match_substring_regex(probe, lex._regex(pats))
        except pa.ArrowInvalid as e:
            bad = [p for p in pats if not _compiles(probe, p)]
            raise ValueError(f"{where}: signal {k!r}: pattern(s) {bad} are not valid RE2 ({e})") from None
    return lex


def _compiles(probe: pa.Array, pattern: str) -> bool:
    try:
        pc.match_substring_regex(probe, Lexicon._regex((pattern,)))
        return True
    except pa.ArrowInvalid:
        return False


@lru_cache(maxsize=8)
def load_lexicon(path: str | None = None) -> Lexicon:
    """Read a lexicon JSON (default: the one shipped with the package)."""
    if path is None:
        text = resources.files("escalation_risk").joinpath("lexicon/signals.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return lexicon_from_dict(json.loads(text), where=str(path or "signals.json"))
