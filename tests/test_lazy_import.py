"""The package imports its public names on first use (PEP 562): ``import escalation_risk``
loads no model, graph or plotting library, and every public name still imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import escalation_risk as er

HEAVY = ("lightgbm", "sklearn", "networkx", "matplotlib", "escalation_risk.model", "escalation_risk.desk",
         "escalation_risk.plots", "escalation_risk.graph", "escalation_risk.scoring")


def _fresh(code: str) -> str:
    """stdout of ``code`` run by a new interpreter (this one has imported everything already)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_importing_the_package_loads_no_heavy_library():
    loaded = _fresh(f"import sys, escalation_risk; print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == ""
    # The loader alone does not need them either.
    loaded = _fresh(f"import sys, escalation_risk as er; er.load_dataset; "
                    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == ""


def test_a_public_name_is_imported_on_first_use():
    assert _fresh("import sys, escalation_risk as er; a = 'lightgbm' in sys.modules; er.train; "
                  "print(a, 'lightgbm' in sys.modules)") == "False True"


@pytest.mark.parametrize("name", er.__all__)
def test_every_public_name_is_the_object_of_its_module(name):
    from_import = {}
    exec(f"from escalation_risk import {name} as value", from_import)  # noqa: S102
    got = from_import["value"]
    assert got is getattr(er, name)
    if name != "__version__":
        assert got is getattr(importlib.import_module(f"escalation_risk.{er._WHERE[name]}"), name)
    assert name in dir(er)


def test_star_import_and_submodules_as_attributes():
    assert _fresh("from escalation_risk import *; print(load_dataset.__name__, Scorer.__name__)") == \
        "load_dataset Scorer"
    assert _fresh("import escalation_risk as er; print(er.response.__name__, er.model.RiskModel.__name__)") == \
        "escalation_risk.response RiskModel"
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        er.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        er.__no_such_dunder__  # noqa: B018


def test_type_checkers_see_each_lazy_name_from_its_module():
    """The ``if TYPE_CHECKING:`` imports (what mypy reads) name the same modules as ``_WHERE``
    (what ``__getattr__`` imports), name for name."""
    tree = ast.parse(Path(er.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {a.name: imp.module for imp in block.body if isinstance(imp, ast.ImportFrom) for a in imp.names}
    assert seen == er._WHERE
