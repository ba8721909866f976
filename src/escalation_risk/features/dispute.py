"""The dispute itself: its category and source, money at stake, age, follow-up
records that name it, mediation attempts so far (an outcome counts from its
``outcome_at``), the notes written on it so far, and the danger words in its text
(the description as first recorded plus the notes recorded by as_of)."""

from __future__ import annotations

import numpy as np

from ..contract import DISPUTE_CATEGORIES, SOURCES
from .common import group_max, group_sum
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY

FAMILY = "dispute"


def register(lexicon) -> None:
    """Add this family's features, with their sentences in English and Chinese, to the
    registry (the keyword features from ``lexicon``)."""
    R = REGISTRY.add
    R(Feature("category", FAMILY, "dispute category: {v}", "纠纷类别：{v}", "category", DISPUTE_CATEGORIES),
      Feature("source", FAMILY, "reported through: {v}", "来源：{v}", "category", SOURCES),
      Feature("log_amount", FAMILY, "money at stake (log CNY {v})", "涉及金额（对数 {v}）", "number"),
      Feature("days_open", FAMILY, "open for {v} days", "已持续 {v} 天", "number"),
      Feature("report_lag_days", FAMILY, "reported {v} days after it happened", "事发 {v} 天后才报告", "number"),
      Feature("as_of_month", FAMILY, "month of the year {v}", "月份 {v}", "number"),
      Feature("n_person_parties", FAMILY, "{v} people involved", "涉及 {v} 人"),
      Feature("n_org_parties", FAMILY, "{v} organisations involved", "涉及 {v} 个单位"),
      Feature("followups", FAMILY, "{v} later records (calls, complaints, petitions) about this dispute",
              "该纠纷后续已有 {v} 条报警、投诉或信访记录"),
      Feature("followups_30d", FAMILY, "{v} records about this dispute in the last 30 days",
              "近30天该纠纷新增 {v} 条记录"),
      Feature("followup_police_calls", FAMILY, "{v} police calls about this dispute",
              "该纠纷已报警 {v} 次"),
      Feature("followup_complaints", FAMILY, "{v} complaints about this dispute", "该纠纷已投诉 {v} 次"),
      Feature("followup_petitions", FAMILY, "{v} petitions about this dispute", "该纠纷已信访 {v} 次"),
      Feature("mediations", FAMILY, "{v} mediation attempts so far", "已调解 {v} 次"),
      Feature("mediations_failed", FAMILY, "{v} failed mediations", "调解失败 {v} 次"),
      Feature("last_mediation_failed", FAMILY, "the last mediation failed", "最近一次调解失败", "flag"),
      Feature("days_since_mediation", FAMILY, "{v} days since the last mediation", "距上次调解 {v} 天", "number"),
      Feature("notes", FAMILY, "{v} notes written on this dispute so far (visits, progress)",
              "该纠纷至今已有 {v} 条回访或进展记录"),
      Feature("notes_danger", FAMILY, "{v} notes on this dispute mention threats, weapons or violence",
              "该纠纷有 {v} 条回访记录提到威胁、凶器或暴力"),
      Feature("latest_note_danger", FAMILY, "the latest note on this dispute mentions threats, weapons or violence",
              "最近一条回访记录提到威胁、凶器或暴力", "flag"))
    R(*text_features(lexicon))


def text_features(lexicon) -> list[Feature]:
    """The pair of features of each signal of ``lexicon``: in the dispute's own text (the
    description as first recorded plus the notes written by as_of), and in the later
    records about it."""
    out = []
    for s in lexicon.signals:
        en, zh = lexicon.labels[s]
        out += [Feature(f"text_{s}", FAMILY, en, zh, "flag"),
                Feature(f"followup_text_{s}", FAMILY, f"{{v}} later record(s) about this dispute: {en}",
                        f"后续 {{v}} 条记录：{zh}")]
    return out


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The dispute features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    t = P.t
    out: dict[str, np.ndarray] = {
        "category": P.category, "source": P.source,
        "log_amount": np.log1p(np.clip(P.amount, 0, None)),
        "days_open": (t - P.rep) / DAY,
        "report_lag_days": np.maximum(P.rep - P.occ, 0) / DAY,
        "as_of_month": P.as_of.astype("datetime64[M]").astype(int) % 12 + 1.0,
        "n_person_parties": np.bincount(P.pp_pt, minlength=n)[:n].astype(float),
        "n_org_parties": np.bincount(P.op_pt, minlength=n)[:n].astype(float),
    }
    fu = idx.followups
    owner, pos = fu.expand(P.d, None, t)
    out["followups"] = np.bincount(owner, minlength=n)[:n].astype(float)
    out["followups_30d"] = group_sum(n, owner, fu.t[pos] > t[owner] - 30 * DAY)
    kinds = fu.payload["kind"][pos]
    for k, name in (("police_call", "followup_police_calls"), ("complaint", "followup_complaints"),
                    ("petition", "followup_petitions")):
        out[name] = group_sum(n, owner, kinds == k)
    sig = idx.inc_signals[fu.payload["inc"][pos]]
    # Notes recorded by as_of: the history's (the dispute is a record) and those given online.
    n_pt, n_t, n_sig = notes_known(idx, P)
    for j, s in enumerate(idx.lexicon.signals):
        out[f"text_{s}"] = np.maximum(P.signals[:, j].astype(float), group_max(n, n_pt, n_sig[:, j]))
        out[f"followup_text_{s}"] = group_sum(n, owner, sig[:, j])
    danger = np.asarray(n_sig[:, idx.danger_columns()].any(axis=1), dtype=bool)
    out["notes"] = np.bincount(n_pt, minlength=n)[:n].astype(float)
    out["notes_danger"] = group_sum(n, n_pt, danger)
    last_note = group_max(n, n_pt, n_t, empty=np.nan)
    latest = n_t == last_note[n_pt]
    out["latest_note_danger"] = group_max(n, n_pt[latest], danger[latest])

    m_pt, m_t, m_failed = mediations_known(idx, P)
    out["mediations"] = np.bincount(m_pt, minlength=n)[:n].astype(float)
    out["mediations_failed"] = group_sum(n, m_pt, m_failed)
    last_t = group_max(n, m_pt, m_t, empty=np.nan)
    # The last session's outcome; ties at the same moment count as failed if any failed.
    at_last = m_t == last_t[m_pt]
    out["last_mediation_failed"] = group_max(n, m_pt[at_last], m_failed[at_last], empty=0.0)
    out["days_since_mediation"] = (t - last_t) / DAY
    return out


def notes_known(idx: HistoryIndex, P: PointSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes on each point's dispute recorded by its as_of, the history's and those
    given online: (point, recorded_at seconds, signal matrix)."""
    t = P.t
    nl = idx.notes
    no, npos = nl.expand(P.d, None, t)
    x_pt, x_t, x_sig = P.extra_notes
    keep = x_t <= t[x_pt] if len(x_pt) else np.zeros(0, bool)
    n_pt = np.concatenate([no, x_pt[keep]])
    n_t = np.concatenate([nl.t[npos], x_t[keep]])
    n_sig = np.concatenate([idx.note_signals[nl.payload["row"][npos]],
                            x_sig.reshape(len(x_pt), len(idx.lexicon.signals))[keep]])
    return n_pt, n_t, n_sig


def mediations_known(idx: HistoryIndex, P: PointSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sessions on each point's dispute held by its as_of, the history's and those
    given online: (point, held_at seconds, failed as known at as_of)."""
    t = P.t
    med = idx.mediations
    mo, mpos = med.expand(P.d, None, t)
    m_pt = np.concatenate([mo, P.extra_mediations["pt"]])
    m_t = np.concatenate([med.t[mpos], P.extra_mediations["t"]])
    m_failed = np.concatenate([med.payload["failed"][mpos], P.extra_mediations["failed"]])
    m_out = np.concatenate([med.payload["out_t"][mpos], P.extra_mediations["out_t"]])
    keep = m_t <= t[m_pt]
    # Before its outcome_at a mediation has been held and its outcome is pending.
    m_failed = m_failed & (m_out <= t[m_pt])
    return m_pt[keep], m_t[keep], m_failed[keep]
