"""What worked: the escalation rate after each response plan, against comparable
disputes that got another plan.

The units are the disputes the alert store recorded: each at its first alert (the
first night it reached red, orange or yellow), or at its first score when it never
did, with the level, probability and plan of that night. Its outcome is the default
label from that night (a criminal case within the horizon sharing a person party
or naming the dispute, :func:`~escalation_risk.labels.make_labels`), with the
store's recorded outcomes of closed alerts fed in; disputes whose horizon is not
over in the data are left out.

A plan given to riskier disputes must not be blamed for their risk, so each plan
is compared with disputes of the same category and a similar score that got
another plan: strata of category x score band (:func:`score_band`, half a unit of
log-odds wide by default), the
other plans' escalation rate in each stratum weighted by the plan's own disputes
there (the effect on the disputes that got the plan). Disputes of a stratum without
any comparison are reported as unmatched. Intervals: Wilson for rates, normal
approximation for the matched difference (each stratum's binomial variances).

This is observational (:data:`CAVEAT`): plans are chosen by rules and people from
what they see, and matching on the score and the category removes only what the
score and the category capture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from .alerts import AlertStore
from .dataset import Dataset
from .labels import DEFAULT_HORIZON_DAYS, make_labels
from .response import ALERT_LEVELS

__all__ = ["CAVEAT", "plan_units", "score_band", "plan_effects", "format_plan_report", "plot_plan_effects",
           "REPORT_COLUMNS"]

CAVEAT = ("Observational: plans were not assigned at random. Each plan is compared with disputes of the same "
          "category and a similar score that got another plan, which removes the risk the score and the category "
          "capture and nothing else; read a difference as a lead to test, not as a proven effect.")

REPORT_COLUMNS = ["group_by", "group", "plan", "n", "escalated", "rate", "rate_lo", "rate_hi", "n_matched",
                  "n_controls", "matched_rate", "control_rate", "effect", "effect_lo", "effect_hi", "naive_effect"]


def plan_units(store: AlertStore, ds: Dataset, *, horizon_days: int = DEFAULT_HORIZON_DAYS) -> pd.DataFrame:
    """One row per dispute the store scored: dispute_id, as_of, category, level,
    probability, plan, alerted, handled (someone acted on its alert), status and
    outcome of its alert (if any), escalated.

    ``as_of`` is the night of the dispute's first alert, or of its first score when it
    never reached an alert level. Disputes missing from ``ds`` or whose horizon after
    ``as_of`` is not over in the data are left out (counts in ``out.attrs``).
    """
    s = store.scores()
    cols = ["dispute_id", "as_of", "category", "level", "probability", "plan", "alerted", "handled",
            "alert_status", "alert_outcome", "escalated"]
    if s.empty:
        return pd.DataFrame(columns=cols)
    s = s.sort_values(["dispute_id", "as_of"], kind="stable")
    s["alerted"] = s["level"].isin(ALERT_LEVELS)
    # The first alert if there is one, else the first score: sort alerts first, keep one per dispute.
    first = s.sort_values(["dispute_id", "alerted", "as_of"], ascending=[True, False, True], kind="stable") \
        .drop_duplicates("dispute_id").reset_index(drop=True)
    inc = ds.incidents
    cat = inc.loc[inc["kind"] == "dispute"].set_index("incident_id")["category"].astype(object)
    first["category"] = first["dispute_id"].map(cat)
    missing = int(first["category"].isna().sum())
    first = first.dropna(subset=["category"]).reset_index(drop=True)
    alerts = store.alerts().sort_values("alert_id").drop_duplicates("dispute_id", keep="first")
    a = alerts.set_index("dispute_id")
    first["alert_status"] = first["dispute_id"].map(a["status"]).where(first["alerted"])
    first["alert_outcome"] = first["dispute_id"].map(a["outcome"]).where(first["alerted"])
    # Handled: someone acted on the alert (assigned it or moved its status), not only the nightly job.
    ev = store.events()
    acted = set(ev.loc[ev["event"].isin(["assigned", "status", "closed"]), "alert_id"])
    first["handled"] = first["dispute_id"].map(a["alert_id"]).isin(acted) & first["alerted"]
    y = make_labels(ds, first[["dispute_id", "as_of"]], horizon_days=horizon_days, outcomes=store.outcomes())
    first["escalated"] = y.to_numpy()
    unlabelled = int(first["escalated"].isna().sum())
    out = first.dropna(subset=["escalated"]).reset_index(drop=True)
    out["escalated"] = out["escalated"].astype(int)
    out = out[cols]
    out.attrs.update({"not_in_data": missing, "horizon_not_over": unlabelled, "horizon_days": horizon_days})
    return out


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def score_band(p: np.ndarray, width: float = 0.5) -> np.ndarray:
    """The score band of each probability: bands of ``width`` on the log-odds scale, so
    the rare high scores, where risk climbs fastest, are split as finely as the rest."""
    q = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.floor(np.log(q / (1 - q)) / width).astype(np.int64)


def _matched(y: np.ndarray, treated: np.ndarray, stratum: np.ndarray, z: float) -> dict[str, float]:
    """Effect on the treated of being treated, stratum by stratum (exact matching on the stratum)."""
    strata, inv = np.unique(stratum, return_inverse=True)
    nt = np.bincount(inv, weights=treated, minlength=len(strata))
    nc = np.bincount(inv, weights=~treated, minlength=len(strata))
    yt = np.bincount(inv, weights=y * treated, minlength=len(strata))
    yc = np.bincount(inv, weights=y * ~treated, minlength=len(strata))
    ok = (nt > 0) & (nc > 0)
    out = {"n_matched": int(nt[ok].sum()), "n_controls": int(nc[ok].sum()), "matched_rate": np.nan,
           "control_rate": np.nan,
           "effect": np.nan, "effect_lo": np.nan, "effect_hi": np.nan}
    if not ok.any():
        return out
    w = nt[ok] / nt[ok].sum()
    rt, rc = yt[ok] / nt[ok], yc[ok] / nc[ok]
    # Variances from rates shrunk by one success and one failure, so an all-zero stratum still counts.
    vt = ((yt[ok] + 1) / (nt[ok] + 2)) * (1 - (yt[ok] + 1) / (nt[ok] + 2)) / nt[ok]
    vc = ((yc[ok] + 1) / (nc[ok] + 2)) * (1 - (yc[ok] + 1) / (nc[ok] + 2)) / nc[ok]
    effect = float(np.sum(w * (rt - rc)))
    se = float(np.sqrt(np.sum(w ** 2 * (vt + vc))))
    out.update(matched_rate=float(np.sum(w * rt)), control_rate=float(np.sum(w * rc)), effect=effect,
               effect_lo=max(effect - z * se, -1.0), effect_hi=min(effect + z * se, 1.0))
    return out


def plan_effects(units: pd.DataFrame, *, by: Sequence[str] = ("overall", "level", "category"),
                 band_width: float = 0.5, min_n: int = 1, z: float = 1.96) -> pd.DataFrame:
    """The escalation rate after each plan and its matched comparison (:data:`REPORT_COLUMNS`).

    ``units`` has columns category, probability, plan and escalated (0/1), as
    :func:`plan_units` gives. ``by``: ``overall`` and/or any column of ``units``
    (``level``, ``category``): the report is made within each of its groups. Plans
    with fewer than ``min_n`` disputes in a group are left out. ``naive_effect`` is
    the plain difference from every other plan in the group, for contrast.
    """
    need = {"category", "probability", "plan", "escalated"}
    missing = sorted(need - set(units.columns))
    if missing:
        raise ValueError(f"units: missing column(s) {missing}; build them with plan_units()")
    if not band_width > 0:
        raise ValueError(f"band_width must be positive, got {band_width}")
    rows: list[dict[str, Any]] = []
    for dim in by:
        if dim != "overall" and dim not in units.columns:
            raise ValueError(f"by: {dim!r} is neither 'overall' nor a column of units")
        groups = [("all", units)] if dim == "overall" else list(units.groupby(dim, sort=True, observed=True))
        for name, g in groups:
            y = g["escalated"].to_numpy(dtype=float)
            band = score_band(g["probability"].to_numpy(dtype=float), band_width)
            stratum = g["category"].astype(str).to_numpy() + "|" + band.astype(str)
            plans = g["plan"].astype(str).to_numpy()
            for plan in sorted(set(plans)):
                t = plans == plan
                n, k = int(t.sum()), int(y[t].sum())
                if n < min_n:
                    continue
                lo, hi = _wilson(k, n)
                naive = float(y[t].mean() - y[~t].mean()) if (~t).any() else np.nan
                rows.append({"group_by": dim, "group": str(name), "plan": plan, "n": n, "escalated": k,
                             "rate": k / n, "rate_lo": lo, "rate_hi": hi, **_matched(y, t, stratum, z),
                             "naive_effect": naive})
    out = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    out.attrs["caveat"] = CAVEAT
    return out


def format_plan_report(report: pd.DataFrame, units: pd.DataFrame | None = None) -> str:
    """The report as readable text, with the caveat first."""
    lines = ["What worked: escalation after each response plan", "", f"Caveat. {CAVEAT}", ""]
    if units is not None:
        a = units.attrs
        lines.append(f"{len(units)} disputes with an observed outcome ({a.get('horizon_days', '?')}-day horizon); "
                     f"left out: {a.get('horizon_not_over', 0)} whose horizon is not over, "
                     f"{a.get('not_in_data', 0)} not in the data.")
        lines.append("")
    for dim, g in report.groupby("group_by", sort=False):
        lines.append(f"By {dim}:")
        for r in g.itertuples(index=False):
            comp = ("no comparable disputes with another plan" if pd.isna(r.effect) else
                    f"the {r.n_matched} matched {r.matched_rate:.1%} vs {r.control_rate:.1%} for comparable "
                    f"disputes with other plans: "
                    f"{r.effect:+.1%} [{r.effect_lo:+.1%}, {r.effect_hi:+.1%}]")
            where = "" if dim == "overall" else f"{r.group}: "
            lines.append(f"  {where}{r.plan}: {r.escalated}/{r.n} escalated, {r.rate:.1%} "
                         f"[{r.rate_lo:.1%}, {r.rate_hi:.1%}]; {comp}")
        lines.append("")
    return "\n".join(lines)


def plot_plan_effects(report: pd.DataFrame, *, group_by: str = "overall", ax: Any = None) -> Any:
    """A forest plot: each plan's matched difference in escalation rate with its interval,
    and the naive difference as a hollow marker. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    r = report[(report["group_by"] == group_by) & report["effect"].notna()]
    if group_by != "overall":
        r = r.assign(plan=r["group"] + " / " + r["plan"])
    r = r.sort_values("effect", kind="stable")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * max(len(r), 3) + 1.2))
    ypos = np.arange(len(r))
    ax.errorbar(r["effect"], ypos, xerr=[r["effect"] - r["effect_lo"], r["effect_hi"] - r["effect"]],
                fmt="o", color="C0", capsize=3, label="matched on category and score")
    ax.scatter(r["naive_effect"], ypos, facecolors="none", edgecolors="C3", label="naive (all other plans)")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(ypos)
    ax.set_yticklabels([f"{p} (n={n})" for p, n in zip(r["plan"], r["n"])])
    ax.set_xlabel("difference in escalation rate vs comparable disputes with another plan")
    ax.set_title("What worked (observational)")
    ax.legend(loc="best", fontsize="small")
    return ax
