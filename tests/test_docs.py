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


def test_guides_python_blocks_run_as_written(tmp_path, monkeypatch):
    """Every ```python block of the guides runs as written, from a repository root whose
    data/sample is a small generated district (raw, with the sample key beside it)."""
    import re
    import shutil

    from escalation_risk.synth import generate_tables, write_tables
    tables, _ = generate_tables(4000, seed=2)
    write_tables(tables, tmp_path / "data" / "sample")
    shutil.copy(ROOT / "data" / "sample" / "SAMPLE_KEY", tmp_path / "data" / "sample" / "SAMPLE_KEY")
    monkeypatch.chdir(tmp_path)
    blocks = [(md.relative_to(ROOT), code) for md in sorted((ROOT / "docs").rglob("*.md"))
              for code in re.findall(r"```python\n(.*?)```", md.read_text(encoding="utf-8"), re.S)]
    assert len(blocks) >= 1
    for where, code in blocks:
        exec(compile(code, str(where), "exec"), {"__name__": "__guide__"})  # noqa: S102 (our own docs)
    assert (tmp_path / "models" / "mine" / "manifest.json").is_file()


def test_make_docs_builds_the_site():
    """``make docs`` is the strict build the test above runs."""
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\ndocs: " in make and "mkdocs build --strict" in make.split("\ndocs: ", 1)[1].split("\n\n", 1)[0]
