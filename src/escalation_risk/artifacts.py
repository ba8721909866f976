"""Saving and loading a trained model without pickle.

A model directory holds plain files only:

- ``model.txt``: the LightGBM booster in its own text format;
- ``calibrator.json``: the calibration map (Platt a, b or isotonic X/Y arrays);
- ``baselines.json``: the logistic-regression and checklist baselines as numbers;
- ``text_model.json``: the text model's numbers (hashed n-gram columns, idf, weights;
  never a string of the texts), for a model that reads ``text_model_score``;
- ``manifest.json``: features (names, dtypes, categories), label settings,
  thresholds, metrics, the training data's fingerprint, cutoff, seed, versions,
  creation time, the SHA-256 of every other file, and a digest of its own content.

Loading checks all of it before anything is parsed: a missing or foreign
directory, a file whose hash differs, an edited manifest, a library of another
major.minor version, or a feature list the installed library does not compute
any more each raise :class:`ModelLoadError` naming the file. Nothing is ever
unpickled, so a model directory can be reviewed and cannot run code.

Hashes catch damage, not a deliberate change: whoever edits a file can fix its
hash too. Against that, a model is signed: with a signing key (the argument, or
``$ESCALATION_RISK_SIGNING_KEY_FILE`` / ``$ESCALATION_RISK_SIGNING_KEY``, made like a
pseudonym key with ``escalation-risk keygen``), saving writes ``manifest.sig``, an
HMAC-SHA256 of the manifest (which holds every other file's hash), and loading
with a key configured refuses a model that is unsigned or whose signature does not
match. Without a key configured, loading checks the hashes only and says so.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._version import __version__

FORMAT = "escalation-risk-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.txt"
CALIBRATOR_FILE = "calibrator.json"
BASELINES_FILE = "baselines.json"
MANIFEST_FILE = "manifest.json"
TEXT_MODEL_FILE = "text_model.json"  # only for a model that reads text_model_score
HASHED_FILES = (MODEL_FILE, CALIBRATOR_FILE, BASELINES_FILE)
SIGNATURE_FILE = "manifest.sig"
SIGNING_KEY_ENV = "ESCALATION_RISK_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "ESCALATION_RISK_SIGNING_KEY_FILE"

log = logging.getLogger(__name__)


class ModelLoadError(ValueError):
    """A model directory that cannot be trusted or used; the message names the file."""


def resolve_signing_key(key: str | bytes | os.PathLike[str] | None = None) -> bytes | None:
    """The model signing key: the argument (a key or a key file's path), else
    ``$ESCALATION_RISK_SIGNING_KEY``, else the file in ``$ESCALATION_RISK_SIGNING_KEY_FILE``,
    else None (models are then neither signed nor checked for a signature)."""
    from .pseudonym_keys import find_key
    return find_key(key, argument="signing_key", env=SIGNING_KEY_ENV, file_env=SIGNING_KEY_FILE_ENV)


def _signature(key: bytes, manifest_bytes: bytes) -> str:
    return hmac.new(key, b"escalation-risk-model:" + manifest_bytes, hashlib.sha256).hexdigest()


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read a megabyte at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _content_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's content without its own digest (canonical JSON)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=True, allow_nan=True)
                          .encode()).hexdigest()


def _dump(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=True) + "\n", encoding="utf-8")


def write_model_dir(out_dir, *, booster_text: str, calibrator: dict, baselines: dict, manifest: dict,
                    signing_key: Any = None, text_model: dict | None = None) -> Path:
    """Write the model files, then the manifest with their hashes and its own digest,
    then its signature when a signing key is given or configured."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_text(booster_text, encoding="utf-8")
    _dump(calibrator, out / CALIBRATOR_FILE)
    _dump(baselines, out / BASELINES_FILE)
    hashed: tuple[str, ...] = HASHED_FILES
    if text_model is not None:
        (out / TEXT_MODEL_FILE).write_text(json.dumps(text_model, separators=(",", ":")) + "\n", encoding="utf-8")
        hashed = hashed + (TEXT_MODEL_FILE,)
    elif (out / TEXT_MODEL_FILE).exists():
        (out / TEXT_MODEL_FILE).unlink()  # an earlier model's text model would only mislead
    manifest = dict(manifest)
    manifest["format"] = FORMAT
    manifest["format_version"] = FORMAT_VERSION
    manifest["files"] = {name: sha256_file(out / name) for name in hashed}
    manifest["manifest_sha256"] = _content_digest(manifest)
    _dump(manifest, out / MANIFEST_FILE)
    key = resolve_signing_key(signing_key)
    sig = out / SIGNATURE_FILE
    if key is not None:
        sig.write_text(_signature(key, (out / MANIFEST_FILE).read_bytes()) + "\n", encoding="ascii")
    elif sig.exists():
        sig.unlink()  # a stale signature of an earlier model would only mislead
    return out


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:2])


def read_model_dir(path, *, expected_features: list[str] | None = None, signing_key: Any = None) -> dict:
    """Verify a model directory and return its parts: booster_text, calibrator, baselines, manifest.

    With a signing key given or configured, the manifest's signature must be there and match."""
    d = Path(path)
    if not d.is_dir():
        raise ModelLoadError(f"{d}: not a directory")
    mpath = d / MANIFEST_FILE
    if not mpath.is_file():
        raise ModelLoadError(f"{mpath}: missing; {d} is not an escalation-risk model directory")
    key = resolve_signing_key(signing_key)
    sig = d / SIGNATURE_FILE
    if key is not None:
        if not sig.is_file():
            raise ModelLoadError(f"{sig}: missing; a signing key is configured, so only signed models are loaded "
                                 "(sign it by saving it again with the key)")
        expected = _signature(key, mpath.read_bytes())
        if not hmac.compare_digest(sig.read_text(encoding="ascii", errors="replace").strip(), expected):
            raise ModelLoadError(f"{sig}: the signature does not match: the model was changed after it was signed, "
                                 "or signed with another key")
    else:
        log.info("%s: no signing key configured; checking file hashes only (they catch damage, not a "
                 "deliberate change)", d)
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{mpath}: not valid JSON ({e}); the file was damaged or edited") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelLoadError(f"{mpath}: not an escalation-risk model manifest (format "
                             f"{manifest.get('format') if isinstance(manifest, dict) else None!r})")
    if manifest.get("manifest_sha256") != _content_digest(manifest):
        raise ModelLoadError(f"{mpath}: content does not match its digest; the manifest was edited")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"{mpath}: format version {manifest.get('format_version')} is not supported "
                             f"(expected {FORMAT_VERSION})")
    saved = manifest.get("library_version", "?")
    if _major_minor(saved) != _major_minor(__version__):
        raise ModelLoadError(f"{mpath}: trained with escalation-risk {saved}, which is not compatible with "
                             f"the installed {__version__} (major.minor must match); retrain the model")
    files = manifest.get("files") or {}
    for name in HASHED_FILES + ((TEXT_MODEL_FILE,) if TEXT_MODEL_FILE in files else ()):
        fpath = d / name
        if not fpath.is_file():
            raise ModelLoadError(f"{fpath}: missing")
        if name not in files or sha256_file(fpath) != files[name]:
            raise ModelLoadError(f"{fpath}: SHA-256 does not match the manifest; the file was changed or "
                                 f"replaced")
    if expected_features is not None and manifest.get("features", {}).get("names") != list(expected_features):
        raise ModelLoadError(f"{mpath}: the model's feature list differs from the features this version of "
                             f"escalation-risk computes; retrain the model")
    try:
        calibrator = json.loads((d / CALIBRATOR_FILE).read_text(encoding="utf-8"))
        baselines = json.loads((d / BASELINES_FILE).read_text(encoding="utf-8"))
        text_model = json.loads((d / TEXT_MODEL_FILE).read_text(encoding="utf-8")) \
            if TEXT_MODEL_FILE in files else None
    except json.JSONDecodeError as e:  # hashes matched, so the writer itself was wrong
        raise ModelLoadError(f"{d}: unreadable JSON ({e})") from None
    return {"booster_text": (d / MODEL_FILE).read_text(encoding="utf-8"), "calibrator": calibrator,
            "baselines": baselines, "manifest": manifest, "text_model": text_model}



def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN becomes None, numpy scalars become Python ones."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, (pd.Timestamp, _dt.datetime, _dt.date)):
        return pd.Timestamp(obj).isoformat()
    return obj


__all__ = ["ModelLoadError", "jsonable", "write_model_dir", "read_model_dir", "resolve_signing_key",
           "SIGNATURE_FILE", "sha256_file", "MODEL_FILE",
           "CALIBRATOR_FILE", "BASELINES_FILE", "MANIFEST_FILE"]
