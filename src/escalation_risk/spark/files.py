"""The files district tasks write and read: one Parquet file per dataset, night and district."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote, unquote

import pandas as pd

from ..model import RiskModel, load_model

_LONE = "__HIVE_DEFAULT_PARTITION__"  # the partition of a lone district (code "")

#: What this process's driver collected from district tasks since the count was reset (a
#: benchmark's figure): ``bytes`` of the task rows (pickled), ``scores_bytes`` of score files read.
COLLECTED: dict[str, int] = {"bytes": 0, "scores_bytes": 0}


def partition(root: Path, tag: str, district: str) -> Path:
    """The folder of one district's night in a dataset: ``ROOT/night=TAG/district=CODE``."""
    return root / f"night={tag}" / f"district={quote(district, safe='') if district else _LONE}"


def _write(df: pd.DataFrame, folder: Path) -> None:
    """One Parquet file per district and night, renamed into place: a retried task replaces it."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{uuid.uuid4().hex}.tmp"  # Spark and pyarrow skip names starting with "."
    pq.write_table(pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False), tmp)
    os.replace(tmp, folder / "part-0.parquet")


def _read(folder: Path) -> pd.DataFrame | None:
    """One district's file of a dataset, or None when the task wrote none."""
    import pyarrow.parquet as pq
    f = folder / "part-0.parquet"
    return pq.read_table(f).to_pandas() if f.exists() else None


def _read_all(root: Path, only: set[str] | None = None) -> pd.DataFrame | None:
    """Every district of one night of a (small) dataset (or the districts ``only``), in
    district order, with ``district``."""
    if not root.is_dir():
        return None
    frames = []
    names = None if only is None else {partition(Path(), "", c).name for c in only}
    for d in sorted(root.iterdir()):
        if names is not None and d.name not in names:
            continue
        if d.name.startswith("district=") and (df := _read(d)) is not None:
            code = d.name.split("=", 1)[1]
            df.insert(0, "district", "" if code == _LONE else unquote(code))
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else None


def _model_files(model: RiskModel | str | os.PathLike) -> dict[str, bytes]:
    """The model directory's files as bytes: what the broadcast carries, once."""
    if isinstance(model, RiskModel):
        with tempfile.TemporaryDirectory() as tmp:
            model.save(tmp)
            return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    return {p.name: p.read_bytes() for p in Path(model).iterdir() if p.is_file()}


_MODELS: dict[str, RiskModel] = {}  # per executor process: the broadcast model, loaded once


def _model_of(files: dict[str, bytes]) -> RiskModel:
    digest = hashlib.sha256(b"".join(files[k] for k in sorted(files))).hexdigest()
    if digest not in _MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            _MODELS[digest] = load_model(tmp)  # verified against its manifest, as on the driver
    return _MODELS[digest]


def _read_recorded(folder: Path) -> pd.DataFrame:
    s = _read(folder)
    if s is None:
        raise FileNotFoundError(f"no recorded scores in {folder}")
    return _as_local(s)


def _as_local(s: pd.DataFrame) -> pd.DataFrame:
    """A scores frame read from Parquet as the local engine holds it: lists, object text."""
    for c in ("reasons", "reasons_zh", "reason_features"):
        if c in s.columns:
            s[c] = [list(v) for v in s[c]]
    return s.astype({c: object for c in s.columns if s[c].dtype == "str" or str(s[c].dtype) == "string"})


def _one_file_per_district(night_dir: Path) -> None:
    """Rename a Spark-written partitioned dataset to one ``part-0.parquet`` per district."""
    import pyarrow.parquet as pq
    for d in night_dir.iterdir():
        if not d.name.startswith("district="):
            continue
        parts = sorted(d.glob("part-*.parquet"))
        if len(parts) == 1 and parts[0].name == "part-0.parquet":
            continue
        frame = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
        for p in parts:
            p.unlink()
        _write(frame, d)
