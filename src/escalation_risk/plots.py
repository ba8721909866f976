"""Figures for analysts' notebooks and reports.

Every function draws one picture and returns its matplotlib ``Figure``. Pass
``ax`` to draw into an axes of your own (a panel of a bigger figure); without it
a new ``Figure`` is made with the object API, not pyplot, so the functions run
headless (Agg), leave no figure open and display inline in Jupyter.

Labels come in Chinese or English: ``lang="zh"``, ``"en"`` or ``"auto"`` (the
default: Chinese). The Chinese font comes with the install: Noto Sans CJK SC from
the ``mplfonts`` dependency, registered with matplotlib on first use, so no system
font or configuration is needed (an installed CJK font is preferred when present).
Were no CJK font found at all, Chinese would render as empty boxes, so the labels
would fall back to English with a warning. :func:`find_cjk_font` tells which font
is used.

What the figures show and need:

- :func:`neighbourhood`: the graph around one dispute (a Dataset or a graph).
- :func:`score_distribution`: probabilities by alert level (a scores frame).
- :func:`calibration`: predicted against observed rates (an ``Evaluation``).
- :func:`precision_at_budget`: precision and recall against the alert budget.
- :func:`reason_waterfall`: SHAP contributions of one dispute, bias to score.
- :func:`importance`: global mean |SHAP| per feature.
- :func:`dispute_history`, :func:`grid_history`: risk over nights.
- :func:`metrics_by_group`: the fairness view of an ``Evaluation``.
- :func:`alert_map`: alerts by grid at the grid's centroid (no basemap).
- :func:`drift_table`, :func:`feature_drift`: feature shift between periods.

No figure shows personal data: persons appear as the tail of their pseudonymous
key, disputes by their id and category.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
import warnings
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from .stability import BINS, psi

Lang = Literal["en", "zh", "auto"]

LEVEL_COLOURS = {"red": "#d62728", "orange": "#ff7f0e", "yellow": "#e6b800", "blue": "#1f77b4"}
LEVEL_ORDER = ("red", "orange", "yellow", "blue")
SCORER_COLOURS = {"model": "#d62728", "logistic_regression": "#1f77b4", "checklist": "#7f7f7f"}
SCORER_STYLES = {"model": "-", "logistic_regression": "--", "checklist": ":"}

# Family names (matched case-insensitively as substrings) of fonts with CJK glyphs.
# The font that comes with the install (the mplfonts package ships Noto Sans CJK SC).
BUNDLED_CJK_FONT = "NotoSansCJKsc-Regular.otf"
CJK_FONT_NAMES = ("Noto Sans CJK", "Noto Serif CJK", "Source Han Sans", "Source Han Serif",
                  "WenQuanYi", "SimHei", "Microsoft YaHei", "PingFang", "Heiti", "Hiragino Sans GB",
                  "AR PL UMing", "AR PL UKai", "Droid Sans Fallback", "Sarasa")
# File-name patterns of the same fonts: matplotlib's font cache is built once and
# misses fonts installed afterwards, so the files are looked for too.
_CJK_FILE_PATTERN = re.compile(r"(notosanscjk|notoserifcjk|sourcehan|wqy|simhei|msyh|pingfang|"
                               r"droidsansfallback|uming|ukai|sarasa)", re.I)
_CJK_CHAR = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")

_WARNED = False

# Labels: key -> (English, Chinese).
_TEXT: dict[str, tuple[str, str]] = {
    "probability": ("probability of a crime within the horizon", "转刑事案件概率"),
    "disputes": ("disputes", "纠纷数"),
    "score_distribution": ("Scores by alert level", "各预警等级的风险分布"),
    "red": ("red", "红色"), "orange": ("orange", "橙色"), "yellow": ("yellow", "黄色"), "blue": ("blue", "蓝色"),
    "threshold": ("threshold", "阈值"),
    "predicted": ("mean predicted probability", "平均预测概率"),
    "observed": ("observed rate", "实际发生率"),
    "perfect": ("perfectly calibrated", "完美校准"),
    "calibration": ("Calibration (equal-count bins)", "校准曲线（等频分箱）"),
    "model": ("model", "模型"), "logistic_regression": ("logistic regression", "逻辑回归"),
    "checklist": ("checklist", "风险清单"),
    "budget": ("alert budget (share of disputes alerted)", "预警预算（预警纠纷占比）"),
    "precision": ("precision", "精确率"), "recall": ("recall", "召回率"),
    "base_rate": ("base rate", "基础发生率"),
    "precision_at_budget": ("Precision and recall against the alert budget", "不同预警预算下的精确率与召回率"),
    "bias": ("average dispute (bias)", "平均纠纷（基准）"),
    "others": ("{n} other features", "其他 {n} 项特征"),
    "final": ("this dispute", "该纠纷"),
    "log_odds": ("contribution to the log-odds (SHAP)", "对对数几率的贡献（SHAP）"),
    "waterfall": ("Why this score: {d}", "风险原因：{d}"),
    "calibrated": ("calibrated probability {p:.1%}", "校准后概率 {p:.1%}"),
    "raises": ("raises risk", "提高风险"), "lowers": ("lowers risk", "降低风险"),
    "importance": ("What drives the scores (mean |SHAP|)", "影响风险的主要因素（平均|SHAP|）"),
    "mean_abs_shap": ("mean |contribution to the log-odds|", "平均|对对数几率的贡献|"),
    "night": ("night", "日期"),
    "dispute_history": ("Risk over time: {d}", "风险变化：{d}"),
    "grid_history": ("Risk over time by grid", "各网格风险变化"),
    "grid_mean": ("{g} mean", "{g} 平均"), "grid_max": ("{g} max", "{g} 最高"),
    "metrics_by_group": ("Alerts by group (alerts at the orange threshold)", "分组预警表现（橙色阈值）"),
    "alert_rate": ("alert rate", "预警率"), "alert_precision": ("precision of alerts", "预警精确率"),
    "alert_recall": ("recall of alerts", "预警召回率"), "observed_rate": ("observed rate", "实际发生率"),
    "mean_predicted": ("mean predicted", "平均预测"), "roc_auc": ("ROC AUC", "ROC AUC"),
    "gender": ("gender", "性别"), "age_band": ("age band", "年龄段"), "hukou": ("hukou", "户籍"),
    "dispute_category": ("category", "纠纷类别"),
    "alert_map": ("Alerts by grid", "各网格预警分布"),
    "lon": ("longitude", "经度"), "lat": ("latitude", "纬度"),
    "alerts_n": ("{n} alert(s)", "{n} 条预警"),
    "no_alerts": ("grid without alerts", "无预警网格"),
    "no_coordinates": ("places have no coordinates (lat/lon)", "地点缺少经纬度"),
    "neighbourhood": ("Neighbourhood of {d}", "{d} 的关系网络"),
    "drift": ("Feature shift between periods", "特征分布漂移"),
    "smd": ("standardised mean difference", "标准化均值差"),
    "psi": ("population stability index (PSI)", "群体稳定性指数（PSI）"),
    "psi_watch": ("PSI 0.1: watch", "PSI 0.1：关注"), "psi_act": ("PSI 0.25: act", "PSI 0.25：需处理"),
}


# --------------------------------------------------------------------------- fonts and language

@lru_cache(maxsize=1)
def _cjk_font_cached() -> str | None:
    from matplotlib import font_manager as fm

    names = sorted({f.name for f in fm.fontManager.ttflist})
    for want in CJK_FONT_NAMES:
        for name in names:
            if want.lower() in name.lower():
                return name
    bundled = bundled_cjk_font_file()
    if bundled is not None:
        fm.fontManager.addfont(str(bundled))
        return fm.FontProperties(fname=str(bundled)).get_name()
    for path in sorted(fm.findSystemFonts()):
        if _CJK_FILE_PATTERN.search(path.rsplit("/", 1)[-1]):
            try:
                fm.fontManager.addfont(path)
                return fm.FontProperties(fname=path).get_name()
            except Exception:  # an unreadable font file is no reason to fail a plot
                continue
    return None


def bundled_cjk_font_file() -> Path | None:
    """Noto Sans CJK SC as shipped by the ``mplfonts`` dependency, or None.

    Located without importing ``mplfonts`` (whose import pulls in a command-line
    framework): the font is all that is used, registered with matplotlib's font
    manager for this process, so no configuration or system font is needed.
    """
    spec = importlib.util.find_spec("mplfonts")
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / "fonts" / BUNDLED_CJK_FONT
        if path.is_file():
            return path
    return None


def find_cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None."""
    return _cjk_font_cached()


def resolve_lang(lang: Lang = "auto") -> Literal["en", "zh"]:
    """``"zh"`` or ``"en"``: Chinese only when asked for (or ``auto``) and a CJK font exists.

    Warns once per process when Chinese labels are replaced by English ones.
    """
    global _WARNED
    if lang not in ("en", "zh", "auto"):
        raise ValueError(f"lang must be 'en', 'zh' or 'auto', got {lang!r}")
    if lang == "en":
        return "en"
    if find_cjk_font() is not None:
        return "zh"
    if not _WARNED:
        _WARNED = True
        warnings.warn("no CJK font is installed (looked for Noto Sans CJK, WenQuanYi, SimHei, Source Han and "
                      "others), so Chinese labels were replaced by English ones; install one (e.g. the "
                      "fonts-noto-cjk package) to get Chinese labels", UserWarning, stacklevel=3)
    return "en"


def _t(key: str, lang: str, **kw) -> str:
    en, zh = _TEXT.get(key, (key, key))
    s = zh if lang == "zh" else en
    return s.format(**kw) if kw else s


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    root = ax.figure
    assert isinstance(root, Figure), "draw into axes of a top-level Figure"
    return root, ax


def _finish(fig: Figure, lang: str) -> Figure:
    """Give every text the CJK font when in Chinese; flag stray CJK text otherwise."""
    font = find_cjk_font()
    texts = fig.findobj(Text)
    if lang == "zh" and font is not None:
        bold = _has_bold(font)
        for t in texts:
            if not _CJK_CHAR.search(t.get_text() or ""):
                continue  # Latin-only text keeps the default font (and its bold)
            # DejaVu first keeps Latin and digits as usual; CJK glyphs fall back to the CJK font.
            t.set_fontfamily(["DejaVu Sans", font])
            if not bold and t.get_fontweight() not in ("normal", 400, "regular"):
                t.set_fontweight("normal")  # no bold face: matplotlib would log a miss at every draw
    elif font is None and any(_CJK_CHAR.search(t.get_text() or "") for t in texts):
        warnings.warn("a label holds Chinese characters but no CJK font is installed; it will show boxes",
                      UserWarning, stacklevel=3)
    return fig


@lru_cache(maxsize=8)
def _has_bold(font: str) -> bool:
    from matplotlib import font_manager as fm

    return any(f.name == font and isinstance(f.weight, int) and f.weight >= 600 for f in fm.fontManager.ttflist)


def _wrap(s: str, lang: str, width: int = 46) -> str:
    # Chinese has no spaces to break at and its glyphs are twice as wide.
    w = width // 2 if _CJK_CHAR.search(s) else width
    return "\n".join(textwrap.wrap(s, w, break_long_words=True)) if len(s) > w else s


def _level_name(level: str, lang: str) -> str:
    return _t(level, lang) if level in LEVEL_COLOURS else str(level)


# --------------------------------------------------------------------------- graph

def neighbourhood(data, dispute_id: str, *, as_of=None, k: int = 2, max_nodes: int = 300,
                  ax: Axes | None = None, lang: Lang = "auto", seed: int = 0) -> Figure:
    """The graph within ``k`` hops of a dispute, nodes coloured by type, parties highlighted.

    ``data`` is a Dataset (its graph is built at ``as_of``) or a graph from
    :func:`escalation_risk.build_graph`. Grids are reached but not walked through.
    When the ``k``-hop graph has more than ``max_nodes`` nodes, places are no
    longer walked through, then fewer hops are drawn (down to 1); the title says so. Persons are labelled by the tail of
    their pseudonymous key.
    """
    from .graph import build_graph, draw_neighbourhood
    from .graph import neighbourhood as _hood

    lang = resolve_lang(lang)
    G = data if hasattr(data, "nodes") else build_graph(data, as_of=as_of)
    H = _hood(G, dispute_id, k=k)
    hops, note = k, f"k={k}"
    # A crowded ball is unreadable: a busy address or a mass wage dispute reaches hundreds
    # of nodes in two hops. First stop walking through places, then take fewer hops.
    if len(H) > max_nodes:
        H = _hood(G, dispute_id, k=k, stop_at=("grid", "place"))
        note = f"k={k}, not through places"
    while len(H) > max_nodes and hops > 1:
        hops -= 1
        H = _hood(G, dispute_id, k=hops, stop_at=("grid", "place"))
        note = f"k={hops}, not through places"
    fig, ax = _axes(ax, (9, 7))
    draw_neighbourhood(H, ax=ax, seed=seed)
    title = _t("neighbourhood", lang, d=H.graph["center"])
    ax.set_title(f"{title} ({note})", fontsize=10)
    return _finish(fig, lang)


# --------------------------------------------------------------------------- scores

def score_distribution(scores: pd.DataFrame, *, thresholds: Mapping[str, float] | None = None,
                       ax: Axes | None = None, lang: Lang = "auto", bins: int = 40) -> Figure:
    """Histogram of probabilities (log scale) stacked by alert level.

    ``scores`` has ``probability`` and ``level`` (``RiskModel.score``,
    ``run_night(...).scores`` or ``AlertStore.scores()``); ``thresholds`` (e.g.
    ``model.thresholds``) adds a line per level.
    """
    lang = resolve_lang(lang)
    fig, ax = _axes(ax, (8, 4.5))
    p = scores["probability"].to_numpy(dtype=float)
    p = p[np.isfinite(p)]
    lo, hi = (max(p.min(), 1e-4), max(p.max(), 2e-4)) if len(p) else (1e-3, 1.0)
    # Probabilities span orders of magnitude and the alerts sit in the thin tail.
    edges = np.geomspace(lo * 0.95, min(hi * 1.05, 1.0), bins + 1)
    present = [lv for lv in LEVEL_ORDER if (scores["level"] == lv).any()][::-1]
    data = [scores.loc[scores["level"] == lv, "probability"].to_numpy(dtype=float) for lv in present]
    if data:
        ax.hist(data, bins=list(edges), stacked=True, color=[LEVEL_COLOURS[lv] for lv in present],
                label=[f"{_level_name(lv, lang)} ({len(d)})" for lv, d in zip(present, data)])
    for lv, t in (thresholds or {}).items():
        if lv in LEVEL_COLOURS:
            ax.axvline(t, color=LEVEL_COLOURS[lv], linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel(_t("probability", lang))
    ax.set_ylabel(_t("disputes", lang))
    ax.set_title(_t("score_distribution", lang))
    if data:
        ax.legend(frameon=False)
    return _finish(fig, lang)


def _evaluation_parts(evaluation) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    metrics = getattr(evaluation, "metrics", None)
    calib = getattr(evaluation, "calibration", None)
    if metrics is None and calib is None and isinstance(evaluation, pd.DataFrame):
        if "mean_predicted" in evaluation.columns and "observed" in evaluation.columns:
            calib = evaluation
        else:
            metrics = evaluation
    return metrics, calib


def calibration(evaluation, *, scorers: Sequence[str] | None = None, ax: Axes | None = None,
                lang: Lang = "auto") -> Figure:
    """Mean predicted probability against the observed rate per bin, model beside baselines.

    ``evaluation`` is an ``Evaluation`` (``escalation_risk.evaluate``) or its
    ``calibration`` frame (mean_predicted, observed, count, scorer). Marker area
    follows the bin's count.
    """
    lang = resolve_lang(lang)
    _, cal = _evaluation_parts(evaluation)
    if cal is None:
        raise ValueError("calibration needs an Evaluation or its calibration frame "
                         "(columns mean_predicted, observed, count, scorer)")
    if "scorer" not in cal.columns:
        cal = cal.assign(scorer="model")
    fig, ax = _axes(ax, (6, 5.5))
    names = list(scorers) if scorers is not None else list(dict.fromkeys(cal["scorer"]))
    top = 0.0
    for name in names:
        c = cal[cal["scorer"] == name].sort_values("mean_predicted")
        if c.empty:
            continue
        x, y = c["mean_predicted"].to_numpy(float), c["observed"].to_numpy(float)
        n = c["count"].to_numpy(float) if "count" in c.columns else np.full(len(c), 100.0)
        colour = SCORER_COLOURS.get(name, "#2ca02c")
        ax.plot(x, y, SCORER_STYLES.get(name, "-"), color=colour, label=_t(name, lang), zorder=2)
        ax.scatter(x, y, s=15 + 60 * n / max(n.max(), 1), color=colour, zorder=3)
        top = max(top, np.nanmax(x), np.nanmax(y))
    top = top * 1.08 if top > 0 else 1.0
    ax.plot([0, top], [0, top], color="black", linewidth=0.8, alpha=0.6, label=_t("perfect", lang), zorder=1)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(_t("predicted", lang))
    ax.set_ylabel(_t("observed", lang))
    ax.set_title(_t("calibration", lang))
    ax.legend(frameon=False, loc="upper left")
    return _finish(fig, lang)


_AT = re.compile(r"^(precision|recall)@([\d.]+)%$")


def precision_at_budget(evaluation, *, scorers: Sequence[str] | None = None, ax: Axes | None = None,
                        lang: Lang = "auto") -> Figure:
    """Precision (solid) and recall (dashed) against the alert budget, one colour per scorer.

    ``evaluation`` is an ``Evaluation`` or its ``metrics`` frame; the budgets are
    its ``precision@k%`` / ``recall@k%`` columns, so evaluate with many budgets
    (``budgets=[i / 100 for i in range(1, 21)]``) for a smooth curve.
    """
    lang = resolve_lang(lang)
    metrics, _ = _evaluation_parts(evaluation)
    if metrics is None:
        raise ValueError("precision_at_budget needs an Evaluation or its metrics frame")
    cols: dict[str, Any] = {}
    for c in metrics.columns:
        m = _AT.match(str(c))
        if m:
            cols.setdefault(m.group(1), []).append((float(m.group(2)), c))
    if not cols.get("precision"):
        raise ValueError("the metrics have no precision@k% columns; evaluate with budgets=...")
    fig, ax = _axes(ax, (7.5, 4.5))
    names = list(scorers) if scorers is not None else list(metrics.index)
    for name in names:
        if name not in metrics.index:
            continue
        colour = SCORER_COLOURS.get(name, "#2ca02c")
        for what, style in (("precision", "-"), ("recall", "--")):
            pts = sorted(cols.get(what, []))
            if not pts:
                continue
            x = [b for b, _ in pts]
            y = [float(metrics.loc[name, c]) for _, c in pts]
            ax.plot(x, y, style, marker="o", markersize=3, color=colour)
    if "base_rate" in metrics.columns and len(metrics):
        ax.axhline(float(metrics["base_rate"].iloc[0]), color="black", linewidth=0.8, alpha=0.6)
    handles = [Line2D([], [], color=SCORER_COLOURS.get(n, "#2ca02c"), label=_t(n, lang))
               for n in names if n in metrics.index]
    handles += [Line2D([], [], color="black", linestyle="-", label=_t("precision", lang)),
                Line2D([], [], color="black", linestyle="--", label=_t("recall", lang)),
                Line2D([], [], color="black", alpha=0.6, linewidth=0.8, label=_t("base_rate", lang))]
    ax.legend(handles=handles, frameon=False, fontsize=8, ncols=2)
    ax.set_xlabel(_t("budget", lang) + " %")
    ax.set_ylim(0, 1)
    ax.set_title(_t("precision_at_budget", lang))
    return _finish(fig, lang)


# --------------------------------------------------------------------------- explanations

def _feature_label(name: str, value: Any, lang: str) -> str:
    from .features import REGISTRY

    if name not in REGISTRY:
        return name
    return REGISTRY[name].sentence(value, "zh" if lang == "zh" else "en")


def _feature_description(name: str, lang: str) -> str:
    from .features import REGISTRY

    if name not in REGISTRY:
        return name
    f = REGISTRY[name]
    return (f.zh if lang == "zh" else f.en).replace("{v}", "…" if f.kind == "category" else "n")


def reason_waterfall(model, X: pd.DataFrame, row: int | str = 0, *, top: int = 8, ax: Axes | None = None,
                     lang: Lang = "auto") -> Figure:
    """How one dispute's score is built: bias, then each leading feature's SHAP contribution.

    ``X`` holds features (:func:`escalation_risk.build_features`); ``row`` is a
    position or a dispute_id. The ``top`` features with the largest |contribution|
    get a bar each, labelled with the registry's sentence for their value; the rest
    are summed into one bar. Contributions add up, on the log-odds scale, to the
    booster's raw score; the calibrated probability is written beside it.
    """
    lang = resolve_lang(lang)
    if isinstance(row, str):
        pos = np.flatnonzero(X["dispute_id"].astype(str).to_numpy() == row)
        if len(pos) == 0:
            raise KeyError(f"no dispute_id {row!r} in X")
        row = int(pos[0])
    x1 = X.iloc[[row]]
    C = model.contributions(x1).iloc[0]
    bias = float(C["bias"])
    contrib = C.drop("bias")
    order = contrib.abs().sort_values(ascending=False, kind="stable").index
    lead = list(order[:top])
    rest = float(contrib[order[top:]].sum()) if len(order) > top else 0.0
    labels = [_t("bias", lang)]
    starts, widths = [0.0], [bias]
    run = bias
    for f in lead:
        c = float(contrib[f])
        labels.append(_wrap(_feature_label(f, x1[f].iloc[0], lang), lang))
        starts.append(run)
        widths.append(c)
        run += c
    if len(order) > top:
        labels.append(_t("others", lang, n=len(order) - top))
        starts.append(run)
        widths.append(rest)
        run += rest
    labels.append(_t("final", lang))
    starts.append(0.0)
    widths.append(run)
    prob = float(model.predict_proba(x1)[0])

    fig, ax = _axes(ax, (9, 0.45 * len(labels) + 1.6))
    y = np.arange(len(labels))[::-1]
    colours = ["#7f7f7f"] + ["#d62728" if w > 0 else "#2ca02c" for w in widths[1:-1]] + ["#404040"]
    ax.barh(y, widths, left=starts, color=colours, height=0.6)
    for yi, s, w in zip(y[1:-1], starts[1:-1], widths[1:-1]):
        ax.annotate(f"{w:+.2f}", (s + w, yi), xytext=(3 if w >= 0 else -3, 0), textcoords="offset points",
                    va="center", ha="left" if w >= 0 else "right", fontsize=7)
    ax.annotate(_t("calibrated", lang, p=prob), (run, y[-1]), xytext=(4, 0), textcoords="offset points",
                va="center", ha="left" if run >= 0 else "right", fontsize=8,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "#404040"})
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(_t("log_odds", lang))
    did = str(x1["dispute_id"].iloc[0]) if "dispute_id" in x1.columns else str(row)
    ax.set_title(_t("waterfall", lang, d=did), fontsize=10)
    ax.legend(handles=[Patch(color="#d62728", label=_t("raises", lang)),
                       Patch(color="#2ca02c", label=_t("lowers", lang))], frameon=False, fontsize=8,
              loc="upper right")
    ax.margins(x=0.15)
    return _finish(fig, lang)


def importance(model, X: pd.DataFrame | None = None, *, top: int = 15, ax: Axes | None = None,
               lang: Lang = "auto") -> Figure:
    """The ``top`` features by mean |SHAP| over ``X``, labelled with their descriptions.

    Without ``X``, the importance stored in the model's manifest (its validation
    window) is drawn.
    """
    lang = resolve_lang(lang)
    if X is not None:
        imp = model.importance(X)[["feature", "mean_abs_shap"]]
    else:
        imp = pd.DataFrame(model.manifest.get("importance", []), columns=["feature", "mean_abs_shap"])
    imp = imp.head(top).iloc[::-1]
    fig, ax = _axes(ax, (8, 0.32 * len(imp) + 1.4))
    labels = [_wrap(_feature_description(f, lang), lang, 56) for f in imp["feature"]]
    ax.barh(np.arange(len(imp)), imp["mean_abs_shap"].to_numpy(float), color="#1f77b4")
    ax.set_yticks(np.arange(len(imp)), labels, fontsize=8)
    ax.set_xlabel(_t("mean_abs_shap", lang))
    ax.set_title(_t("importance", lang), fontsize=10)
    return _finish(fig, lang)


# --------------------------------------------------------------------------- over time

def _score_frame(scores) -> pd.DataFrame:
    if hasattr(scores, "scores") and callable(scores.scores):  # an AlertStore
        return scores.scores()
    return scores


def dispute_history(scores, dispute_id: str, *, thresholds: Mapping[str, float] | None = None,
                    ax: Axes | None = None, lang: Lang = "auto") -> Figure:
    """One dispute's probability night by night, points coloured by level.

    ``scores`` is an ``AlertStore`` or its ``scores()`` frame; ``thresholds``
    (e.g. ``model.thresholds``) draws the level boundaries.
    """
    lang = resolve_lang(lang)
    s = _score_frame(scores)
    s = s[s["dispute_id"].astype(str) == str(dispute_id)].sort_values("as_of")
    if s.empty:
        raise KeyError(f"no scores recorded for dispute {dispute_id!r}")
    fig, ax = _axes(ax, (7.5, 4))
    t = pd.to_datetime(s["as_of"])
    ax.plot(t, s["probability"], color="#404040", linewidth=1, zorder=1)
    ax.scatter(t, s["probability"], c=[LEVEL_COLOURS.get(lv, "#bcbd22") for lv in s["level"]], s=45,
               zorder=2, edgecolors="black", linewidths=0.5)
    for lv, th in (thresholds or {}).items():
        if lv in LEVEL_COLOURS:
            ax.axhline(th, color=LEVEL_COLOURS[lv], linestyle="--", linewidth=1,
                       label=f"{_level_name(lv, lang)} {_t('threshold', lang)}")
    tops = [float(s["probability"].max()), *(v for k, v in (thresholds or {}).items() if k in LEVEL_COLOURS)]
    ax.set_ylim(0, max(max(tops) * 1.15, 0.01))
    ax.set_xlabel(_t("night", lang))
    ax.set_ylabel(_t("probability", lang))
    ax.set_title(_t("dispute_history", lang, d=dispute_id), fontsize=10)
    if thresholds:
        ax.legend(frameon=False, fontsize=8)
    ax.tick_params(axis="x", labelrotation=30)
    return _finish(fig, lang)


def _grid_of(ds) -> pd.Series:
    """grid_id of each incident_id, through its place."""
    inc = ds.incidents[["incident_id", "place_id"]]
    grid = inc["place_id"].map(ds.places.set_index("place_id")["grid_id"])
    return pd.Series(grid.to_numpy(dtype=object), index=inc["incident_id"].to_numpy(dtype=object))


def grid_history(scores, ds, grid_ids: Iterable[str] | None = None, *, top: int = 5, ax: Axes | None = None,
                 lang: Lang = "auto") -> Figure:
    """Mean (solid) and maximum (dashed) probability of each grid's open disputes per night.

    ``scores`` is an ``AlertStore`` or a frame with dispute_id, as_of and
    probability; ``ds`` maps disputes to grids. Without ``grid_ids``, the ``top``
    grids with the highest maximum on the latest night.
    """
    lang = resolve_lang(lang)
    s = _score_frame(scores).copy()
    s["grid_id"] = s["dispute_id"].astype(object).map(_grid_of(ds))
    s["as_of"] = pd.to_datetime(s["as_of"])
    agg = s.dropna(subset=["grid_id"]).groupby(["grid_id", "as_of"])["probability"].agg(["mean", "max"])
    agg = agg.reset_index()
    if grid_ids is None:
        last = agg[agg["as_of"] == agg["as_of"].max()]
        grid_ids = last.sort_values("max", ascending=False)["grid_id"].head(top).tolist()
    grid_ids = list(grid_ids)
    fig, ax = _axes(ax, (8, 4.5))
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    for i, g in enumerate(grid_ids):
        a = agg[agg["grid_id"] == g].sort_values("as_of")
        colour = cmap(i % 10)
        ax.plot(a["as_of"], a["mean"], "-o", color=colour, markersize=4, label=_t("grid_mean", lang, g=g))
        ax.plot(a["as_of"], a["max"], "--^", color=colour, markersize=4, label=_t("grid_max", lang, g=g))
    ax.set_xlabel(_t("night", lang))
    ax.set_ylabel(_t("probability", lang))
    ax.set_title(_t("grid_history", lang), fontsize=10)
    ax.legend(frameon=False, fontsize=7, ncols=2)
    ax.tick_params(axis="x", labelrotation=30)
    return _finish(fig, lang)


# --------------------------------------------------------------------------- fairness

def metrics_by_group(evaluation, *, metrics: Sequence[str] = ("alert_rate", "alert_precision", "alert_recall"),
                     attributes: Sequence[str] | None = None, min_count: int = 0, ax: Axes | None = None,
                     lang: Lang = "auto") -> Figure:
    """Per-group metrics of the model as grouped horizontal bars, one block per attribute.

    ``evaluation`` is an ``Evaluation`` or its ``by_group`` frame (attribute,
    group, count and the metrics). Groups smaller than ``min_count`` are left out;
    each label carries the group's size, since small groups swing widely.
    """
    lang = resolve_lang(lang)
    bg = getattr(evaluation, "by_group", evaluation)
    if not isinstance(bg, pd.DataFrame) or "attribute" not in bg.columns:
        raise ValueError("metrics_by_group needs an Evaluation or its by_group frame")
    attrs = list(attributes) if attributes is not None else list(dict.fromkeys(bg["attribute"]))
    bg = bg[bg["attribute"].isin(attrs)]
    if "count" in bg.columns:
        bg = bg[bg["count"] >= min_count]
    bg = bg.assign(_o=bg["attribute"].map({a: i for i, a in enumerate(attrs)})).sort_values(
        ["_o", "group"], kind="stable")
    fig, ax = _axes(ax, (8, 0.42 * len(bg) + 1.5))
    from matplotlib import colormaps

    cmap = colormaps["Set2"]
    n_m = len(metrics)
    h = 0.8 / max(n_m, 1)
    # Leave a gap between attribute blocks so the groups read as sets.
    ypos, y, prev = [], 0.0, None
    for a in bg["attribute"]:
        if prev is not None and a != prev:
            y += 0.6
        ypos.append(y)
        y += 1
        prev = a
    yarr = -np.asarray(ypos)
    for j, m in enumerate(metrics):
        if m not in bg.columns:
            raise ValueError(f"metrics: {m!r} is not a column of by_group ({', '.join(bg.columns)})")
        vals = bg[m].to_numpy(dtype=float)
        ax.barh(yarr + (j - (n_m - 1) / 2) * h, np.nan_to_num(vals), height=h, color=cmap(j),
                label=_t(m, lang))
    labels = [f"{_t(a, lang)} · {g}" + (f"  (n={int(c)})" if "count" in bg.columns else "")
              for a, g, c in zip(bg["attribute"], bg["group"], bg.get("count", pd.Series([0] * len(bg))))]
    ax.set_yticks(yarr, labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_title(_t("metrics_by_group", lang), fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return _finish(fig, lang)


# --------------------------------------------------------------------------- map

def alert_map(alerts: pd.DataFrame, ds, *, ax: Axes | None = None, lang: Lang = "auto") -> Figure:
    """Alerts by grid: a circle at each grid's centroid, sized by its number of alerts and
    coloured by its most severe level; grids without alerts as grey dots. No basemap.

    ``alerts`` has dispute_id and level (``AlertStore.alerts()`` or a scores
    frame, whose blue rows are ignored); ``ds`` gives places with lat/lon. When
    the places have no coordinates the axes say so instead of failing.
    """
    lang = resolve_lang(lang)
    fig, ax = _axes(ax, (7, 6.5))
    places = ds.places
    if not {"lat", "lon"} <= set(places.columns) or places[["lat", "lon"]].dropna().empty:
        ax.text(0.5, 0.5, _t("no_coordinates", lang), ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _finish(fig, lang)
    centre = places.dropna(subset=["lat", "lon"]).groupby("grid_id")[["lat", "lon"]].mean()
    ax.scatter(centre["lon"], centre["lat"], s=6, color="#cccccc", zorder=1, label=_t("no_alerts", lang))
    a = alerts[alerts["level"].isin(LEVEL_COLOURS) & (alerts["level"] != "blue")].copy()
    a["grid_id"] = a["dispute_id"].astype(object).map(_grid_of(ds))
    rank = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    a["_r"] = a["level"].map(rank)
    per = a.dropna(subset=["grid_id"]).groupby("grid_id").agg(n=("dispute_id", "size"), r=("_r", "min"))
    per = per.join(centre, how="inner")
    if len(per):
        size = 30 + 270 * per["n"] / per["n"].max()
        ax.scatter(per["lon"], per["lat"], s=size, c=[LEVEL_COLOURS[LEVEL_ORDER[int(r)]] for r in per["r"]],
                   alpha=0.75, edgecolors="black", linewidths=0.5, zorder=2)
        top = per.sort_values(["r", "n"], ascending=[True, False]).head(5)
        for g, row in top.iterrows():
            ax.annotate(str(g), (row["lon"], row["lat"]), xytext=(5, 5), textcoords="offset points", fontsize=7)
    handles = [Line2D([], [], marker="o", linestyle="", color=LEVEL_COLOURS[lv], markeredgecolor="black",
                      label=_level_name(lv, lang)) for lv in ("red", "orange", "yellow")]
    handles.append(Line2D([], [], marker="o", linestyle="", color="#cccccc", label=_t("no_alerts", lang)))
    if len(per):
        for n in sorted({1, int(per["n"].max())}):
            handles.append(Line2D([], [], marker="o", linestyle="", color="white", markeredgecolor="black",
                                  markersize=np.sqrt(30 + 270 * n / per["n"].max()),
                                  label=_t("alerts_n", lang, n=n)))
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="best")
    ax.set_xlabel(_t("lon", lang))
    ax.set_ylabel(_t("lat", lang))
    ax.set_aspect(1 / np.cos(np.deg2rad(float(centre["lat"].mean()))))  # a degree of longitude is shorter
    ax.set_title(_t("alert_map", lang), fontsize=10)
    return _finish(fig, lang)


# --------------------------------------------------------------------------- drift

def drift_table(X_ref: pd.DataFrame, X_new: pd.DataFrame, features: Sequence[str] | None = None, *,
                bins: int = BINS) -> pd.DataFrame:
    """How each numeric feature shifted from ``X_ref`` to ``X_new``.

    One row per feature: mean in each period, the standardised mean difference
    (difference over the pooled standard deviation), the PSI (the one of
    :func:`escalation_risk.drift.psi`, the ``drift`` command's: the reference's deciles,
    missing values a bin; above 0.1 worth watching, above 0.25 a real shift), and the share of
    missing values in each. Sorted by PSI, largest first. Default features: every
    numeric column both frames share, except ids and dates.
    """
    if features is None:
        features = [c for c in X_ref.columns if c in X_new.columns and c not in ("dispute_id", "as_of")
                    and pd.api.types.is_numeric_dtype(X_ref[c]) and pd.api.types.is_numeric_dtype(X_new[c])]
    rows = []
    for f in features:
        a = X_ref[f].to_numpy(dtype=float)
        b = X_new[f].to_numpy(dtype=float)
        ma, mb = np.nanmean(a) if np.isfinite(a).any() else np.nan, np.nanmean(b) if np.isfinite(b).any() else np.nan
        sd = np.sqrt((np.nanvar(a) + np.nanvar(b)) / 2) if np.isfinite(a).any() and np.isfinite(b).any() else np.nan
        smd = (mb - ma) / sd if sd and np.isfinite(sd) and sd > 0 else 0.0 if ma == mb else np.nan
        p = psi(a, b, bins=bins) if len(a) and len(b) else np.nan
        rows.append({"feature": f, "mean_ref": ma, "mean_new": mb, "smd": smd, "psi": p,
                     "missing_ref": float(np.isnan(a).mean()) if len(a) else np.nan,
                     "missing_new": float(np.isnan(b).mean()) if len(b) else np.nan})
    out = pd.DataFrame(rows, columns=["feature", "mean_ref", "mean_new", "smd", "psi", "missing_ref",
                                      "missing_new"])
    return out.sort_values("psi", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def feature_drift(table: pd.DataFrame, *, top: int = 15, ax: Axes | None = None, lang: Lang = "auto") -> Figure:
    """The ``top`` rows of :func:`drift_table` as bars of PSI, each labelled with the
    feature's description and its standardised mean difference."""
    lang = resolve_lang(lang)
    t = table.head(top).iloc[::-1]
    fig, ax = _axes(ax, (8.5, 0.34 * len(t) + 1.5))
    psi = t["psi"].to_numpy(dtype=float)
    colours = np.where(psi >= 0.25, "#d62728", np.where(psi >= 0.1, "#ff7f0e", "#1f77b4"))
    y = np.arange(len(t))
    ax.barh(y, np.nan_to_num(psi), color=colours)
    for yi, p, d in zip(y, psi, t["smd"].to_numpy(dtype=float)):
        if np.isfinite(p):
            ax.annotate(f"SMD {d:+.2f}", (p, yi), xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=7)
    ax.axvline(0.1, color="#ff7f0e", linestyle=":", linewidth=1, label=_t("psi_watch", lang))
    ax.axvline(0.25, color="#d62728", linestyle=":", linewidth=1, label=_t("psi_act", lang))
    ax.set_yticks(y, [_wrap(_feature_description(f, lang), lang, 56) for f in t["feature"]], fontsize=8)
    ax.set_xlabel(_t("psi", lang))
    ax.set_title(_t("drift", lang), fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.margins(x=0.2)
    return _finish(fig, lang)


__all__ = ["neighbourhood", "score_distribution", "calibration", "precision_at_budget", "reason_waterfall",
           "importance", "dispute_history", "grid_history", "metrics_by_group", "alert_map", "drift_table",
           "feature_drift", "find_cjk_font", "resolve_lang", "LEVEL_COLOURS", "CJK_FONT_NAMES"]
