"""tests/pg.py fails, never skips, when the PostgreSQL server (or psycopg) is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_missing_postgresql_binaries_fail_the_postgresql_tests(tmp_path):
    (tmp_path / "conftest.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "import pg\n"
        "pg._bindir = lambda: None  # as on a machine without the server\n"
        "from pg import pg_server, store_url  # noqa: F401\n")
    (tmp_path / "test_uses_postgres.py").write_text(
        "def test_store(store_url):\n    assert store_url\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "PostgreSQL server binaries not found" in out and "ensure-java-postgres.sh" in out
    assert "1 passed, 1 error" in out and "skipped" not in out  # the SQLite half ran; nothing skipped
