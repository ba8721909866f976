"""Model signing: hashes catch damage, the HMAC signature catches a deliberate change."""

from __future__ import annotations

import json

import pytest

from escalation_risk.artifacts import ModelLoadError, _content_digest, sha256_file
from escalation_risk.model import load_model

SIGNING = "SAMPLE-ONLY model signing key for tests, 32+ bytes"
OTHER = "another SAMPLE-ONLY signing key, also 32+ bytes long"


def _forge(d):
    """Change the thresholds and redo every hash, as someone with write access could."""
    m = json.loads((d / "manifest.json").read_text())
    m["thresholds"]["red"] = 0.999
    m["manifest_sha256"] = _content_digest(m)
    (d / "manifest.json").write_text(json.dumps(m, indent=2))


def test_signed_model_loads_and_a_forged_one_is_refused(small_model, tmp_path, monkeypatch):
    d = tmp_path / "signed"
    monkeypatch.setenv("ESCALATION_RISK_SIGNING_KEY", SIGNING)
    small_model.save(d)
    assert (d / "manifest.sig").is_file()
    assert load_model(d).version == small_model.version
    _forge(d)
    monkeypatch.delenv("ESCALATION_RISK_SIGNING_KEY")
    assert load_model(d).thresholds["red"] == 0.999  # hashes alone cannot tell
    monkeypatch.setenv("ESCALATION_RISK_SIGNING_KEY", SIGNING)
    with pytest.raises(ModelLoadError, match="signature does not match"):
        load_model(d)


def test_with_a_key_configured_unsigned_or_foreign_models_are_refused(small_model, tmp_path, monkeypatch):
    unsigned = tmp_path / "unsigned"
    small_model.save(unsigned)
    assert not (unsigned / "manifest.sig").exists()
    assert sha256_file(unsigned / "model.txt") == json.loads((unsigned / "manifest.json").read_text())["files"][
        "model.txt"]
    monkeypatch.setenv("ESCALATION_RISK_SIGNING_KEY", SIGNING)
    with pytest.raises(ModelLoadError, match="manifest.sig: missing"):
        load_model(unsigned)
    other = tmp_path / "other"
    monkeypatch.setenv("ESCALATION_RISK_SIGNING_KEY", OTHER)
    small_model.save(other)
    monkeypatch.setenv("ESCALATION_RISK_SIGNING_KEY", SIGNING)
    with pytest.raises(ModelLoadError, match="signed with another key"):
        load_model(other)
    monkeypatch.setenv("ESCALATION_RISK_SIGNING_KEY", "short")
    with pytest.raises(ValueError, match="at least 32"):
        load_model(other)
