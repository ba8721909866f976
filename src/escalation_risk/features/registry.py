"""The feature registry: every feature described once, in English and Chinese.

Reason codes, the model card and the docs all read these descriptions. A
description is a sentence template: ``{v}`` is the feature's value for the
dispute being explained (formatted as a whole number for counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd


@dataclass(frozen=True)
class Feature:
    """One feature: name, family, readable sentences, type and categories."""

    name: str
    family: str
    en: str
    zh: str
    kind: Literal["count", "number", "flag", "category"] = "count"
    categories: tuple[str, ...] | None = None
    # What is and is not counted, where a reader could wonder (the scored dispute's own records).
    note: str = ""

    def sentence(self, value, lang: Literal["en", "zh"] = "en") -> str:
        """The readable reason for this feature at ``value`` alone (see
        :mod:`.sentences`; a reason about several parties reads more of the row there)."""
        from .sentences import render
        return render(self.name, {self.name: value}, lang)


class Registry:
    """An ordered set of features; the order is the model's column order."""

    def __init__(self) -> None:
        self._features: dict[str, Feature] = {}

    def add(self, *features: Feature) -> None:
        for f in features:
            if f.name in self._features:
                raise ValueError(f"feature {f.name!r} registered twice")
            self._features[f.name] = f

    def __getitem__(self, name: str) -> Feature:
        return self._features[name]

    def __contains__(self, name: str) -> bool:
        return name in self._features

    def __iter__(self):
        return iter(self._features.values())

    def __len__(self) -> int:
        return len(self._features)

    @property
    def names(self) -> list[str]:
        return list(self._features)

    def table(self) -> pd.DataFrame:
        """One row per feature: name, family, kind, English and Chinese description, note."""
        return pd.DataFrame([{"name": f.name, "family": f.family, "kind": f.kind, "en": f.en, "zh": f.zh,
                              "note": f.note} for f in self])


REGISTRY = Registry()
