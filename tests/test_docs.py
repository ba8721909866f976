"""The documentation site builds with every warning an error: API reference from the
docstrings, the guides, the data contract and the feature table from the registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_documentation_builds_strict(tmp_path):
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(site)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("load_dataset", "build_features", "score_dispute", "RiskModel", "RiskClassifier"):
        assert name in api
    features = (site / "features" / "index.html").read_text(encoding="utf-8")
    import escalation_risk as er
    table = er.feature_table()
    assert all(name in features for name in table["name"])
    assert "纠纷" in features  # the Chinese column made it
