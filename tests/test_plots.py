"""Every figure draws something, into its own Figure or a given axes, in both languages,
the install's own CJK font renders Chinese, and the missing-font path falls back to
English with one warning."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")  # headless, whatever the environment says

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import KEY  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import escalation_risk as er  # noqa: E402
from escalation_risk import plots  # noqa: E402

NIGHTS = ("2025-06-23", "2025-06-30")


@pytest.fixture(scope="module")
def district():
    from escalation_risk.synth import generate_district
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate_district(3000, seed=3, pseudonym_key=KEY)


@pytest.fixture(scope="module")
def model(district):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return er.train(district, cutoff="2025-01-01", seed=0, config={"num_boost_round": 150})


@pytest.fixture(scope="module")
def evaluation(model, district):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.evaluate(district, start="2024-07-01", budgets=[i / 100 for i in range(1, 11)])


@pytest.fixture(scope="module")
def store(model, district):
    st = er.AlertStore("sqlite://")
    for night in NIGHTS:
        er.run_night(district, model, night, store=st, out_dir=None)
    yield st
    st.dispose()


@pytest.fixture(scope="module")
def scores(store):
    return store.scores()


@pytest.fixture(scope="module")
def features(district, scores):
    last = scores[scores["as_of"] == scores["as_of"].max()]
    return er.build_features(district, last[["dispute_id", "as_of"]])


@pytest.fixture(scope="module")
def dispute(district):
    """An open dispute with two person parties: a small, readable neighbourhood."""
    inc, ip = district.incidents, district.incident_parties
    t = pd.Timestamp(NIGHTS[-1])
    open_ = inc[(inc["kind"] == "dispute") & (inc["reported_at"] <= t) & ~(inc["closed_at"] <= t)]
    n = ip[ip["party_type"] == "person"].groupby("incident_id").size()
    return str(open_[open_["incident_id"].map(n) == 2]["incident_id"].iloc[0])


@pytest.fixture
def cases(district, model, evaluation, store, scores, features, dispute):
    """name -> callable(ax=..., lang=...) drawing one figure."""
    recorded = scores["dispute_id"].value_counts()
    twice = str(recorded[recorded == len(NIGHTS)].index[0])
    half = len(features) // 2
    table = plots.drift_table(features.iloc[:half], features.iloc[half:])
    return {
        "neighbourhood": lambda **kw: plots.neighbourhood(district, dispute, as_of=NIGHTS[-1], **kw),
        "score_distribution": lambda **kw: plots.score_distribution(scores, thresholds=model.thresholds, **kw),
        "calibration": lambda **kw: plots.calibration(evaluation, **kw),
        "precision_at_budget": lambda **kw: plots.precision_at_budget(evaluation, **kw),
        "reason_waterfall": lambda **kw: plots.reason_waterfall(model, features, 0, top=5, **kw),
        "importance": lambda **kw: plots.importance(model, features, **kw),
        "importance_manifest": lambda **kw: plots.importance(model, **kw),
        "dispute_history": lambda **kw: plots.dispute_history(store, twice, thresholds=model.thresholds, **kw),
        "grid_history": lambda **kw: plots.grid_history(scores, district, **kw),
        "metrics_by_group": lambda **kw: plots.metrics_by_group(evaluation, **kw),
        "alert_map": lambda **kw: plots.alert_map(store.alerts(), district, **kw),
        "feature_drift": lambda **kw: plots.feature_drift(table, **kw),
    }


def _drawn(ax) -> int:
    return len(ax.lines) + len(ax.patches) + len(ax.collections) + len(ax.images)


CASES = ["neighbourhood", "score_distribution", "calibration", "precision_at_budget", "reason_waterfall",
         "importance", "importance_manifest", "dispute_history", "grid_history", "metrics_by_group",
         "alert_map", "feature_drift"]


@pytest.mark.parametrize("name", CASES)
def test_each_plot_draws_into_a_new_figure(cases, name):
    fig = cases[name](lang="en")
    assert isinstance(fig, Figure)
    assert fig.axes and sum(_drawn(ax) for ax in fig.axes) > 0
    fig.canvas.draw()  # renders without error, headless


@pytest.mark.parametrize("name", CASES)
def test_each_plot_draws_into_a_given_axes(cases, name):
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    out = cases[name](ax=ax, lang="en")
    assert out is fig
    assert _drawn(ax) > 0


def test_no_cjk_font_falls_back_to_english_with_one_warning(cases, monkeypatch):
    monkeypatch.setattr(plots, "find_cjk_font", lambda: None)
    monkeypatch.setattr(plots, "_WARNED", False)
    with pytest.warns(UserWarning, match="no CJK font"):
        fig = cases["calibration"](lang="zh")
    texts = " ".join(t.get_text() for t in fig.findobj(Text))
    assert "Calibration" in texts and not plots._CJK_CHAR.search(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: the next figures stay quiet
        for name in ("metrics_by_group", "reason_waterfall", "score_distribution"):
            fig = cases[name](lang="auto")
            assert not plots._CJK_CHAR.search(" ".join(t.get_text() for t in fig.findobj(Text)))


def test_a_cjk_font_comes_with_the_install():
    # The install's own font, whatever the machine has: Noto Sans CJK from mplfonts.
    path = plots.bundled_cjk_font_file()
    assert path is not None and path.is_file()
    assert plots.find_cjk_font() is not None
    assert plots.resolve_lang("auto") == "zh"


def test_chinese_labels_use_the_cjk_font_and_render_every_glyph(cases):
    font = plots.find_cjk_font()
    assert font is not None
    fig = cases["reason_waterfall"](lang="zh")
    chinese = [t for t in fig.findobj(Text) if plots._CJK_CHAR.search(t.get_text())]
    assert chinese and all(font in t.get_fontfamily() for t in chinese)
    # Drawing is where matplotlib finds a missing glyph ("Glyph ... missing from font").
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FigureCanvasAgg(fig).draw()
    assert not [w for w in caught if "missing from" in str(w.message)], [str(w.message) for w in caught]


def test_english_is_english(cases):
    fig = cases["metrics_by_group"](lang="en")
    assert not plots._CJK_CHAR.search(" ".join(t.get_text() for t in fig.findobj(Text)))


def test_bad_lang_is_refused(cases):
    with pytest.raises(ValueError, match="lang"):
        cases["calibration"](lang="fr")


def test_drift_table_finds_a_shift():
    rng = np.random.default_rng(0)
    a = pd.DataFrame({"same": rng.poisson(2, 2000).astype(float), "moved": rng.poisson(2, 2000).astype(float)})
    b = pd.DataFrame({"same": rng.poisson(2, 2000).astype(float), "moved": rng.poisson(5, 2000).astype(float)})
    t = plots.drift_table(a, b).set_index("feature")
    assert t.loc["moved", "psi"] > 0.25 > 0.1 > t.loc["same", "psi"]
    assert t.loc["moved", "smd"] > 1 and abs(t.loc["same", "smd"]) < 0.1


def test_map_without_coordinates_says_so(district, store):
    class NoCoords:
        places = district.places.assign(lat=np.nan, lon=np.nan)
        incidents = district.incidents

    fig = plots.alert_map(store.alerts(), NoCoords(), lang="en")
    assert "no coordinates" in " ".join(t.get_text() for t in fig.findobj(Text))


def test_no_personal_identifiers_in_the_graph_labels(cases, district):
    fig = cases["neighbourhood"](lang="en")
    texts = " ".join(t.get_text() for t in fig.findobj(Text))
    raw_ids = set(district.persons["person_id"].astype(str))
    assert not any(tok in raw_ids for tok in texts.replace("\n", " ").split())
