"""The daily briefing: one self-contained HTML page per night (日结日清).

What the page holds, from the alert store and the district's data as known on the
night: counts by level for the night and the nights before (trend), the new red and
orange alerts with their reasons and plans, the overdue alerts by owner, a heat table
of the grids where risk concentrates (态势感知), the governance index of the night's
period with its change, and the drift line of the night.

The page is one file: inline CSS, no script, no font, image or link fetched from
anywhere (a Content-Security-Policy ``default-src 'none'`` says so to the browser as
well), readable on a phone (viewport meta, tables that scroll sideways). Chinese by
default, English with ``lang="en"``. Only pseudonymous ids (dispute and alert ids) and
the staff names the store already holds appear; never a party's name, id or phone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from ._version import __version__
from .alerts import AlertStore
from .alerts.district import district_view
from .clock import to_moment
from .dataset import Dataset
from .governance import INDICATORS, governance_index
from .response import PLANS

__all__ = ["build_briefing", "write_briefing", "write_night_briefing", "LANGS"]

LANGS = ("zh", "en")
_LEVELS = ("red", "orange", "yellow", "blue")
_TEMPLATE = "briefing.html.j2"
_INDEX_TEMPLATE = "briefing_index.html.j2"

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "矛盾纠纷风险日报", "counts": "今日风险等级统计", "night": "日期", "scored": "在评纠纷",
        "red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色", "new_alerts": "新增预警",
        "trend": "近几日走势", "vs_prev": "较前一日", "new_ro": "新增红色、橙色预警", "alert": "预警",
        "dispute": "纠纷", "level": "等级", "probability": "风险概率", "reasons": "主要原因", "plan": "处置方案",
        "owner": "责任人", "due": "办结时限", "none": "无", "overdue": "超期未处置预警（按责任人）",
        "count": "数量", "oldest": "最长超期（天）", "alerts": "预警编号", "heat": "网格风险热力表",
        "grid": "网格", "open": "在评纠纷", "expected": "预计转刑案（件）", "mean_p": "平均风险",
        "governance": "基层治理指数", "unit": "单位", "period": "周期", "composite": "综合指数",
        "change": "变化", "not_enough": "数据不足", "no_store": "无预警库", "drift": "模型漂移监测",
        "drift_none": "本次未检测模型漂移。", "footer": "仅含假名化编号；不含当事人姓名、证件号或电话。",
        "model": "模型版本", "more": "另有 {n} 条未列出", "unknown": "（未知）", "no_run": "预警库中无该日记录。",
        "gov_note": "分值 0–100；“数据不足”表示样本少于阈值。",
        "districts": "各区县", "district": "区县", "overdue_n": "超期预警", "total": "合计",
    },
    "en": {
        "title": "Daily dispute-risk briefing", "counts": "Tonight's counts by level", "night": "Night",
        "scored": "Scored", "red": "Red", "orange": "Orange", "yellow": "Yellow", "blue": "Blue",
        "new_alerts": "New alerts", "trend": "Recent nights", "vs_prev": "vs the night before",
        "new_ro": "New red and orange alerts", "alert": "Alert", "dispute": "Dispute", "level": "Level",
        "probability": "Probability", "reasons": "Reasons", "plan": "Plan", "owner": "Owner", "due": "Due",
        "none": "None", "overdue": "Overdue alerts by owner", "count": "Count", "oldest": "Most overdue (days)",
        "alerts": "Alerts", "heat": "Where risk concentrates: grids", "grid": "Grid", "open": "Open disputes",
        "expected": "Expected escalations", "mean_p": "Mean risk", "governance": "Governance index",
        "unit": "Unit", "period": "Period", "composite": "Composite", "change": "Change",
        "not_enough": "not enough data", "no_store": "no store", "drift": "Model drift",
        "drift_none": "Drift was not checked for this night.",
        "footer": "Pseudonymous ids only; no party's name, id number or phone.", "model": "Model",
        "more": "{n} more not listed", "unknown": "(unknown)", "no_run": "The store holds no run for this night.",
        "gov_note": "Scores 0-100; 'not enough data' when too few records.",
        "districts": "Districts", "district": "District", "overdue_n": "Overdue", "total": "Total",
    },
}


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("escalation_risk", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _num(v: Any, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:,.{digits}f}"


def _signed(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{v:+.{digits}f}"


def _counts(store: AlertStore, night: pd.Timestamp, nights: int) -> dict[str, Any]:
    runs = store.runs()
    runs = runs[runs["as_of"] <= night].sort_values("as_of")
    # One row per night: the latest model's run of it.
    runs = runs.drop_duplicates("as_of", keep="last").tail(nights)
    rows: list[dict[str, Any]] = [
        {"night": f"{r.as_of:%Y-%m-%d}", "scored": int(r.n_scored),
         **{lv: int(getattr(r, f"n_{lv}")) for lv in _LEVELS}, "new": int(r.n_new_alerts)}
        for r in runs.itertuples()]
    tonight = rows[-1] if rows and runs["as_of"].iloc[-1] == night else None
    prev = rows[-2] if tonight is not None and len(rows) > 1 else None
    change = {k: (tonight[k] - prev[k]) for k in ("scored", *_LEVELS, "new")} if tonight and prev else None
    peak = max([r["red"] + r["orange"] for r in rows] + [1])
    for r in rows:
        r["bar"] = round(100 * (r["red"] + r["orange"]) / peak)
    return {"tonight": tonight, "change": change, "rows": rows,
            "model": runs["model_version"].iloc[-1] if len(runs) else ""}


def _plan_text(code: str, lang: str) -> str:
    p = PLANS.get(code)
    return code if p is None else (p.zh if lang == "zh" else p.en)


def _reason_list(v: Any) -> list[str]:
    """Reasons as a list, from a list or the JSON text a store column may hold."""
    if isinstance(v, str):
        v = json.loads(v) if v.strip().startswith("[") else [v]
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    return [str(x) for x in v]


def _new_alerts(store: AlertStore, night: pd.Timestamp, lang: str, scores: pd.DataFrame | None,
                limit: int) -> tuple[list[dict[str, Any]], int]:
    a = store.alerts(level=["red", "orange"])
    a = a[a["raised_at"] == night]
    a = a.assign(rank=a["level"].map({"red": 0, "orange": 1})).sort_values(["rank", "probability"],
                                                                          ascending=[True, False])
    own: dict[str, list[str]] = {}
    col = "reasons_zh" if lang == "zh" else "reasons"
    if scores is not None and col in scores.columns:
        own = {str(d): list(r) for d, r in zip(scores["dispute_id"], scores[col])}
    # A store that keeps the reasons in both languages has a reasons_zh column.
    # A night recorded with one language only (older stores, other writers) shows that one.
    stored = a[col] if col in a.columns else a["reasons"]
    a = a.assign(shown=[_reason_list(v) or _reason_list(en) for v, en in zip(stored, a["reasons"])])
    rows = [{"alert_id": int(r.alert_id), "dispute_id": r.dispute_id, "level": r.level,
             "probability": f"{r.probability:.1%}", "reasons": own.get(str(r.dispute_id), r.shown),
             "plan": _plan_text(r.plan, lang), "owner": r.owner, "due": f"{r.due_at:%Y-%m-%d %H:%M}"}
            for r in a.head(limit).itertuples()]
    return rows, max(0, len(a) - limit)


def _overdue(store: AlertStore, night: pd.Timestamp) -> list[dict[str, Any]]:
    od = store.overdue(now=night)
    if od.empty:
        return []
    rows = []
    for owner, g in od.groupby("owner", sort=False):
        rows.append({"owner": owner, "count": len(g), **{lv: int((g["level"] == lv).sum()) for lv in _LEVELS[:3]},
                     "oldest": f"{g['overdue_by'].max() / pd.Timedelta(days=1):.1f}",
                     "alerts": ", ".join(str(i) for i in g["alert_id"].head(8))
                     + (" …" if len(g) > 8 else "")})
    return sorted(rows, key=lambda r: (-r["count"], str(r["owner"])))


def _heat(ds: Dataset, store: AlertStore, night: pd.Timestamp, t: dict[str, str], limit: int) -> list[dict[str, Any]]:
    s = store.scores(as_of=night)
    if s.empty:
        return []
    s = s.drop_duplicates("dispute_id", keep="last")
    place = ds.incidents.set_index(ds.incidents["incident_id"].astype(object))["place_id"].astype(object)
    grid = ds.places.set_index("place_id")["grid_id"].astype(object)
    g = s["dispute_id"].map(place).map(grid).fillna(t["unknown"])
    s = s.assign(grid=g.to_numpy())
    agg = s.groupby("grid").agg(open=("dispute_id", "size"), expected=("probability", "sum"),
                                mean_p=("probability", "mean"),
                                red=("level", lambda x: int((x == "red").sum())),
                                orange=("level", lambda x: int((x == "orange").sum())),
                                yellow=("level", lambda x: int((x == "yellow").sum())))
    agg = agg.sort_values(["expected", "open"], ascending=False).head(limit)
    top = float(agg["expected"].max()) or 1.0
    return [{"grid": grid_id, "open": int(r.open), "red": int(r.red), "orange": int(r.orange),
             "yellow": int(r.yellow), "expected": f"{r.expected:.1f}", "mean_p": f"{r.mean_p:.1%}",
             # Heat: the share of the hottest grid's expected escalations, as the cell's red alpha.
             "heat": f"{0.08 + 0.6 * r.expected / top:.2f}"}
            for grid_id, r in agg.iterrows()]


def _governance(ds: Dataset, store: AlertStore, night: pd.Timestamp, by: str, period: str,
                t: dict[str, str], lang: str) -> dict[str, Any]:
    g = governance_index(ds, store, by=by, period=period, as_of=night)
    per = pd.Period(night, freq=period)
    g = g[g["period"] == per]
    names = [*INDICATORS, "composite"]
    heads = [(INDICATORS[k][0] if lang == "zh" else INDICATORS[k][1]) for k in INDICATORS] + [t["composite"]]
    rows = []
    for unit, grp in g.groupby("unit", sort=True):
        cells = []
        by_ind = grp.set_index("indicator")
        for k in names:
            if k not in by_ind.index:
                cells.append({"score": "–", "change": "", "direction": "", "note": ""})
                continue
            r = by_ind.loc[k]
            if r["status"] != "ok":
                note = t["no_store"] if r["status"] == "no alert store" else t["not_enough"]
                cells.append({"score": "–", "change": "", "direction": "", "note": note})
            else:
                ch = r["change"]
                direction = "" if not np.isfinite(ch) or round(ch, 1) == 0 else "better" if ch > 0 else "worse"
                cells.append({"score": _num(r["score"], 1), "change": _signed(ch), "direction": direction,
                              "note": ""})
        rows.append({"unit": unit, "cells": cells})
    return {"period": str(per), "heads": heads, "rows": rows}


def build_briefing(ds: Dataset, store: AlertStore | str, night: Any, *, lang: str = "zh",
                   drift: Any = None, scores: pd.DataFrame | None = None, by: str = "town",
                   period: str = "M", nights: int = 7, limit: int = 50, district: str | None = None) -> str:
    """The briefing of ``night`` as one HTML string (see the module docstring).

    ``district``: the district of a province store the page is about (its runs, alerts
    and scores only; ``None``: the whole store, a lone district's).

    ``drift`` is a :class:`~escalation_risk.drift.DriftReport` (or None: not checked);
    ``scores`` the night's scores from the nightly job, whose ``reasons_zh`` give the
    Chinese reasons when the store holds only one language. ``by`` and ``period`` choose
    the governance table's units; ``nights`` how many nights the trend shows.
    """
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {LANGS}, got {lang!r}")
    t = TEXT[lang]
    when = to_moment(night, what="night")  # a date: the end of that night's day
    st = district_view(AlertStore(store) if isinstance(store, str) else store, district)
    counts = _counts(st, when, nights)
    new, more = _new_alerts(st, when, lang, scores, limit)
    if drift is None:
        drift_line, drift_level = t["drift_none"], "none"
    else:
        drift_line = drift.verdict_zh if lang == "zh" else drift.verdict
        drift_level = drift.verdict.split(":", 1)[0]
    page = _env().get_template(_TEMPLATE).render(
        t=t, lang=lang, place=district or "", html_lang="zh-CN" if lang == "zh" else "en", night=f"{when:%Y-%m-%d}",
        levels=_LEVELS, counts=counts, new_alerts=new, more=t["more"].format(n=more) if more else "",
        overdue=_overdue(st, when), heat=_heat(ds, st, when, t, limit),
        governance=_governance(ds, st, when, by, period, t, lang), drift_line=drift_line,
        drift_level=drift_level, version=__version__, num=_num, signed=_signed)
    return page


def write_briefing(ds: Dataset, store: AlertStore | str, night: Any, out_dir: str | Path = "out", **kwargs: Any
                   ) -> Path:
    """Write ``OUT/briefing-<night>.html`` (``briefing-<night>.en.html`` in English; with
    ``district=CODE``, ``briefing-<night>-CODE.html``); returns the path."""
    when = to_moment(night, what="night")  # a date: the end of that night's day
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / _page_name(when, kwargs.get("lang", "zh"), kwargs.get("district"))
    path.write_text(build_briefing(ds, store, when, **kwargs), encoding="utf-8")
    return path


def _page_name(when: pd.Timestamp, lang: str, district: str | None = None) -> str:
    # A whole day (its start, or its end as the nightly job reads a date) is named by its date.
    whole_day = when in (when.normalize(), when.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1))
    tag = when.strftime("%Y-%m-%d") if whole_day else when.strftime("%Y-%m-%dT%H%M%S")
    if district:
        tag = f"{tag}-{district}"
    return f"briefing-{tag}.html" if lang == "zh" else f"briefing-{tag}.{lang}.html"


def build_briefing_index(store: AlertStore | str, night: Any, districts: Sequence[str], *, lang: str = "zh",
                         drifts: Mapping[str, Any] | None = None) -> str:
    """A province's night on one page: each district's counts, linking to the district's page."""
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {LANGS}, got {lang!r}")
    t = TEXT[lang]
    when = to_moment(night, what="night")  # a date: the end of that night's day
    st = AlertStore(store) if isinstance(store, str) else store
    runs = st.runs()
    runs = runs[runs["as_of"] == when]
    rows: list[dict[str, Any]] = []
    model = ""
    for code in districts:
        r = runs[runs["district"] == code].tail(1)
        run = None
        if len(r):
            x = r.iloc[0]
            model = str(x["model_version"])
            run = {"scored": int(x["n_scored"]), **{lv: int(x[f"n_{lv}"]) for lv in _LEVELS},
                   "new": int(x["n_new_alerts"]), "overdue": int(x["n_overdue"])}
        d = (drifts or {}).get(code)
        rows.append({"district": code, "page": _page_name(when, lang, code), "run": run,
                     "drift": "" if d is None else (d.verdict_zh if lang == "zh" else d.verdict)})
    found = [r["run"] for r in rows if r["run"]]
    total = {k: sum(r[k] for r in found) for k in found[0]} if found else None
    return _env().get_template(_INDEX_TEMPLATE).render(
        t=t, lang=lang, html_lang="zh-CN" if lang == "zh" else "en", night=f"{when:%Y-%m-%d}", place="",
        levels=_LEVELS, counts={"model": model}, districts=rows, total=total, version=__version__)


def write_night_briefing(datasets: Mapping[str, Callable[[], Dataset]], store: AlertStore, night: Any,
                         out_dir: str | Path, *, lang: str = "zh", drifts: Mapping[str, Any] | None = None,
                         scores: Mapping[str, pd.DataFrame] | None = None, **kwargs: Any) -> dict[str, Path]:
    """The briefing of a night: a lone district's page (district ``""``), or a province's
    index and one page per district. ``datasets`` gives each district's data when asked
    (one district in memory at a time); ``kwargs`` go to :func:`build_briefing`.
    Returns ``{"briefing": index or page, "briefing CODE": page, ...}``."""
    drifts, scores = drifts or {}, scores or {}
    codes = list(datasets)
    if codes == [""]:
        return {"briefing": write_briefing(datasets[""](), store, night, out_dir, lang=lang, drift=drifts.get(""),
                                           scores=scores.get(""), **kwargs)}
    files = {f"briefing {c}": write_briefing(datasets[c](), store, night, out_dir, lang=lang, drift=drifts.get(c),
                                             scores=scores.get(c), district=c, **kwargs) for c in codes}
    when = to_moment(night, what="night")  # a date: the end of that night's day
    index = Path(out_dir) / _page_name(when, lang)
    index.write_text(build_briefing_index(store, when, codes, lang=lang, drifts=drifts), encoding="utf-8")
    return {"briefing": index, **files}
