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
    # Personal attributes the value is derived from ("gender", "hukou", "age"): what
    # ``train(..., exclude=[...])`` removes with the attribute.
    uses: tuple[str, ...] = ()

    def sentence(self, value, lang: Literal["en", "zh"] = "en") -> str:
        """The readable reason for this feature at ``value`` alone (see
        :mod:`.sentences`; a reason about several parties reads more of the row there)."""
        from .sentences import render
        return render(self.name, {self.name: value}, lang)


class Registry:
    """An ordered set of features; the order is the model's column order."""

    def __init__(self) -> None:
        self._features: dict[str, Feature] = {}
        self._described: dict[str, Feature] = {}

    def add(self, *features: Feature) -> None:
        for f in features:
            if f.name in self._features:
                raise ValueError(f"feature {f.name!r} registered twice")
            self._features[f.name] = f

    def describe(self, *features: Feature) -> None:
        """Make features findable by name (``registry[name]``, ``name in registry``) for
        their reasons, without adding them to the registry's own ordered list: the text
        features of a custom lexicon, which only the models trained with it compute."""
        for f in features:
            if f.name not in self._features:
                self._described[f.name] = f

    def __getitem__(self, name: str) -> Feature:
        return self._features[name] if name in self._features else self._described[name]

    def __contains__(self, name: str) -> bool:
        return name in self._features or name in self._described

    def __iter__(self):
        return iter(self._features.values())

    def __len__(self) -> int:
        return len(self._features)

    @property
    def names(self) -> list[str]:
        return list(self._features)

    def table(self) -> pd.DataFrame:
        """One row per feature: name, family, kind, English and Chinese description, note,
        and the personal attributes it is derived from."""
        return pd.DataFrame([{"name": f.name, "family": f.family, "kind": f.kind, "en": f.en, "zh": f.zh,
                              "note": f.note, "uses": ",".join(f.uses)} for f in self])

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(f.family for f in self))

    def excluded(self, exclude) -> list[str]:
        """The features removed by ``exclude``: personal attributes (:data:`SENSITIVE`), with
        every feature derived from them, and/or whole families by name. Raises
        ``ValueError`` naming an entry that is neither."""
        out: list[str] = []
        for item in exclude or ():
            if item in SENSITIVE:
                out += [f.name for f in self if item in f.uses]
            elif item in self.families:
                out += [f.name for f in self if f.family == item]
            else:
                raise ValueError(f"exclude: {item!r} is neither a personal attribute ({', '.join(SENSITIVE)}) "
                                 f"nor a feature family ({', '.join(self.families)})")
        return list(dict.fromkeys(out))


SENSITIVE = ("gender", "hukou", "age")  # attributes a model can be asked to do without
REGISTRY = Registry()
