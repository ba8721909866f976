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
"""

from ._pandera_import import import_pandera  # noqa: E402
from ._version import __version__  # noqa: E402,F401

import_pandera()  # before any module that validates: see _pandera_import

from .alerts import AlertStore  # noqa: E402
from .briefing import write_briefing  # noqa: E402
from .contract import CONTRACT_VERSION  # noqa: E402
from .dataset import Dataset, DataValidationError, load_dataset  # noqa: E402
from .drift import drift_report  # noqa: E402
from .features import build_features, feature_table  # noqa: E402
from .governance import governance_index  # noqa: E402
from .graph import build_graph, neighbourhood  # noqa: E402
from .labels import make_labels  # noqa: E402
from .linking import explain_links, link_persons  # noqa: E402
from .model import RiskModel, backtest, evaluate, load_model, train  # noqa: E402
from .nightly import run_night  # noqa: E402
from .scoring import RiskAssessment, Scorer, score_dispute  # noqa: E402

__all__ = [
    "CONTRACT_VERSION", "DataValidationError", "Dataset", "load_dataset",
    "link_persons", "explain_links", "build_graph", "neighbourhood",
    "build_features", "feature_table", "make_labels",
    "RiskModel", "train", "evaluate", "backtest", "load_model",
    "RiskAssessment", "Scorer", "score_dispute",
    "AlertStore", "run_night",
    "governance_index", "drift_report", "write_briefing",
    "__version__",
]
