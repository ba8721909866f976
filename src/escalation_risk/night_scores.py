"""A night's scores file: ``OUT/scores-<night>.csv``, written district by district, by a
forked child for a large lone district while the night is recorded, and published only
once the store has the night."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path

import pandas as pd

from . import outputs
from .forks import Forked, workers, worth_forking


def _for_csv(scores: pd.DataFrame) -> pd.DataFrame:
    out = scores.copy()
    for c in ("reasons", "reasons_zh", "reason_features"):
        if c in out.columns:
            # Most rows share a few lists (the blue rows' empty one): each written once.
            memo: dict[tuple, str] = {}
            out[c] = [memo[t] if t in memo else memo.setdefault(t, json.dumps(list(t), ensure_ascii=False))
                      for t in map(tuple, out[c])]
    return out


class DistrictScores(Mapping[str, pd.DataFrame]):
    """A night's recorded scores by district, each read when asked (one district at a time):
    :attr:`NightReport.by_district`, the scores CSV's and the briefing's source."""

    def __init__(self, readers: dict[str, Callable[[], pd.DataFrame]]) -> None:
        self._readers = readers

    def __getitem__(self, district: str) -> pd.DataFrame:
        return self._readers[district]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


def _scores_tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _write_scores_csv(scores: Mapping[str, pd.DataFrame], path: Path, *, publish: bool = True) -> None:
    """The night's scores CSV, written district by district (renamed into place when whole;
    ``publish=False``: left in its temporary file, :func:`_scores_tmp`)."""
    tmp = _scores_tmp(path)
    first = True
    for code in scores:
        outputs.to_csv(_for_csv(scores[code]), "scores", tmp, date_format="%Y-%m-%dT%H:%M:%S.%f",
                       mode="w" if first else "a", header=first)
        first = False
    if first:  # no district: an empty file with the header, as before
        outputs.to_csv(_for_csv(pd.DataFrame()), "scores", tmp)
    if publish:
        os.replace(tmp, path)


class _ScoresWriter:
    """The scores CSV of a lone district written by a forked child while the night is
    recorded (the file is published only once the store has the night, as before): the
    writing costs the night nothing but a fork. A province's CSV, a small night's, or one
    process's, is written after the recording."""

    def __init__(self, out: Path | None, tag: str, districts: int) -> None:
        self.path = out / f"scores-{tag}.csv" if out is not None else None
        self._fork = districts == 1 and workers() > 1
        self._job: Forked[None] | None = None

    def start(self, district: str, scores: pd.DataFrame) -> None:
        """Called with the district's scores, trend applied, before they are recorded."""
        if self.path is None or not self._fork or not worth_forking(len(scores)):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._job = Forked(partial(_write_scores_csv, {district: scores}, self.path, publish=False))

    def publish(self, scored: Mapping[str, pd.DataFrame], written: bool) -> Path | None:
        """The CSV put in place when the night was recorded (``written``); else nothing left behind."""
        if self.path is None:
            return None
        if self._job is not None:
            if not written:
                self.cancel()  # not waited for: the file would be removed
                return None
            try:
                self._job.result()  # redone here if the child failed
                os.replace(_scores_tmp(self.path), self.path)
            except BaseException:
                _scores_tmp(self.path).unlink(missing_ok=True)
                raise
            finally:
                self._job = None
            return self.path
        if not written:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_scores_csv(scored, self.path)
        return self.path

    def cancel(self) -> None:
        """The night failed: no child left writing, no temporary file left behind."""
        if self._job is not None:
            self._job.cancel()
            self._job = None
            if self.path is not None:
                _scores_tmp(self.path).unlink(missing_ok=True)


