"""The analysts' notebooks run top to bottom on the sample, in this interpreter.

Deselect with ``pytest -m "not notebooks"`` (they take a minute or two); ``make test``
runs them.

Which Python runs the cells: a kernel named ``python3`` resolves to whichever
``python3`` kernelspec Jupyter finds first (a user-level one in
``~/.local/share/jupyter/kernels`` wins over the venv's), so it may not be the
interpreter running the tests, and the cells would then import another
installation of escalation_risk or none. To rule that out, each test run writes
a throw-away kernelspec whose ``argv`` is ``sys.executable`` into a temporary
folder put first on ``JUPYTER_PATH``, and names that kernel explicitly. Nothing
is installed into the venv or the user's Jupyter folders. The first test checks
the kernel's ``sys.executable`` is ours.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "escalation-risk-tests"
CELL_TIMEOUT = 300


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, monkeypatch_module):
    """A kernelspec for this very interpreter, first on JUPYTER_PATH."""
    path = tmp_path_factory.mktemp("jupyter")
    spec = path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "escalation_risk tests", "language": "python"}))
    monkeypatch_module.setenv("JUPYTER_PATH", os.pathsep.join([str(path), os.environ.get("JUPYTER_PATH", "")]))
    # Figures render headless; the notebooks pick up the repository's sample and model by relative path.
    monkeypatch_module.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for var in ("ESCALATION_RISK_DATA", "ESCALATION_RISK_MODEL"):
        monkeypatch_module.delenv(var, raising=False)
    return KERNEL


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _run(nb, kernel: str):
    client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    return client.execute()


def test_the_kernel_is_this_interpreter(kernel):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    out = _run(nb, kernel).cells[0].outputs[0]["text"].strip()
    assert Path(out).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_runs(kernel, name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"{name}: outputs are committed; clear them"
    try:
        nb = _run(nb, kernel)
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{name}: a cell failed:\n{e}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []))
    assert images >= 1, f"{name}: no figure was displayed"
