"""escalation_risk: early warning of disputes likely to turn into crimes (民转刑).

The public API is this page; everything else is importable but not promised::

    import escalation_risk as er
    ds = er.load_dataset("data/sample")          # validated, pseudonymised tables
    key = er.link_persons(ds)                     # person_id -> canonical person
    G = er.build_graph(ds, as_of="2025-06-30")    # networkx graph of 人房企事物
    H = er.neighbourhood(G, "D1", k=2)            # the k-hop graph around one dispute
    X = er.build_features(ds, points)             # points: dispute_id, as_of
    y = er.make_labels(ds, points, horizon_days=90)
    model = er.train(ds, cutoff="2025-01-01")     # calibrated LightGBM + manifest
    model.save("models/default"); model = er.load_model("models/default")
    scores = model.score(ds, "2025-06-30")        # every dispute open that night
    a = er.Scorer(model, ds).score_dispute(dispute, parties)
    g = er.governance_index(ds, store, by="grid", period="M")   # five indicators + composite
    d = er.drift_report(model, ds, start="2025-01-01", end="2025-06-30")
    er.write_briefing(ds, store, "2025-06-30", "out")             # out/briefing-2025-06-30.html
    cases = er.similar_cases(model, ds, dispute_id, as_of, k=10)  # the typical-case library

The names above are imported when first used (PEP 562), so ``import escalation_risk``
does not load pandera, LightGBM, scikit-learn, networkx or the plots: a loader-only job
pays for what it uses. (The CLI and the Spark engine import the night, and so the model,
at their own import.) Submodules (``er.linking``) load the same way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# Each public name and the module that defines it: the one list __getattr__ and __all__ read.
_WHERE = {
    "CONTRACT_VERSION": "contract",
    "DataValidationError": "dataset", "Dataset": "dataset", "load_dataset": "dataset",
    "link_persons": "linking", "explain_links": "linking",
    "build_graph": "graph", "neighbourhood": "graph",
    "build_features": "features", "feature_table": "features",
    "make_labels": "labels",
    "RiskModel": "model", "train": "model", "evaluate": "model", "backtest": "model", "load_model": "model",
    "RiskAssessment": "scoring", "Scorer": "scoring", "score_dispute": "scoring",
    "CaseIndex": "cases", "build_case_index": "cases", "similar_cases": "cases", "typical_cases": "cases",
    "AlertStore": "alerts", "run_night": "nightly",
    "governance_index": "governance", "drift_report": "drift", "write_briefing": "briefing",
}

if TYPE_CHECKING:  # what __getattr__ gives, for type checkers and editors
    from .alerts import AlertStore  # noqa: F401
    from .briefing import write_briefing  # noqa: F401
    from .cases import CaseIndex, build_case_index, similar_cases, typical_cases  # noqa: F401
    from .contract import CONTRACT_VERSION  # noqa: F401
    from .dataset import Dataset, DataValidationError, load_dataset  # noqa: F401
    from .drift import drift_report  # noqa: F401
    from .features import build_features, feature_table  # noqa: F401
    from .governance import governance_index  # noqa: F401
    from .graph import build_graph, neighbourhood  # noqa: F401
    from .labels import make_labels  # noqa: F401
    from .linking import explain_links, link_persons  # noqa: F401
    from .model import RiskModel, backtest, evaluate, load_model, train  # noqa: F401
    from .nightly import run_night  # noqa: F401
    from .scoring import RiskAssessment, Scorer, score_dispute  # noqa: F401

__all__ = [*_WHERE, "__version__"]


if not TYPE_CHECKING:  # hidden from mypy, which would otherwise take any misspelt name for Any
    def __getattr__(name: str) -> Any:
        """A public name, imported from its module on first use (then kept here); or a submodule."""
        module = _WHERE.get(name)
        if module is not None:
            value = getattr(importlib.import_module(f".{module}", __name__), name)
        elif not name.startswith("__"):
            try:
                value = importlib.import_module(f".{name}", __name__)
            except ModuleNotFoundError as e:
                if e.name != f"{__name__}.{name}":
                    raise  # the submodule exists; something it imports does not
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
