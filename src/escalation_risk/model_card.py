"""The model card: what a trained model is for, what it is not for, and how well it does.

``write_model_card(model, out_dir)`` writes ``MODEL_CARD.md`` and the calibration
plot ``calibration.png`` beside it, from the model's manifest only (so a card can
be regenerated from a saved model directory at any time).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .features import REGISTRY  # noqa: E402
from .model.fairness import fairness_comparison  # noqa: E402  (its home before model/fairness.py)

METRIC_COLUMNS = ["roc_auc", "average_precision", "brier", "ece", "precision@1%", "precision@5%",
                  "precision@10%", "recall@5%", "recall@10%"]


INT_COLUMNS = {"count", "n", "positives"}


def _fmt(v, column: str = "") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if column in INT_COLUMNS:
        return f"{int(v)}"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c], c) for c in cols) + " |")
    return "\n".join(lines)


def _iv(v, lo, hi) -> str:
    return "—" if v != v else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _with_intervals(rows: pd.DataFrame, keep: list[str], figures: dict[str, tuple[str, str, str]]) -> pd.DataFrame:
    """The columns ``keep`` of ``rows`` as they are, then each figure (label: its estimate,
    lo and hi columns) as ``estimate [lo, hi]``."""
    out: dict = {c: rows[c] for c in keep}
    out.update({label: [_iv(*r) for r in rows[list(cols)].to_numpy()] for label, cols in figures.items()})
    return pd.DataFrame(out)


# The columns of an :func:`~escalation_risk.model.fairness.equalised_comparison` table.
_PRECISION_FPR = {"precision": ("precision", "precision_lo", "precision_hi"),
                  "false-positive rate": ("fpr", "fpr_lo", "fpr_hi")}


def _fairness_table(f: pd.DataFrame, keep: list[str]) -> tuple[str, pd.DataFrame]:
    """A :func:`fairness_comparison` table for the card, and its precision column's name."""
    p_col = [c for c in f.columns if c.startswith("precision@")][0]
    r_col = [c for c in f.columns if c.startswith("fpr@")][0]
    return p_col, _with_intervals(f, keep + ["n", "escalated"], {
        "AUC": ("roc_auc", "roc_auc_lo", "roc_auc_hi"), p_col: (p_col, "precision_lo", "precision_hi"),
        "false-positive rate": (r_col, "fpr_lo", "fpr_hi")})


def _calibration_plot(curves: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    top = max(0.05, float(curves[["mean_predicted", "observed"]].max().max()) * 1.05) if len(curves) else 1.0
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="perfect calibration")
    for scorer, g in curves.groupby("scorer", sort=False):
        ax.plot(g["mean_predicted"], g["observed"], marker="o", lw=1.5, label=scorer.replace("_", " "))
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted probability (quantile bin)")
    ax.set_ylabel("observed escalation rate")
    ax.set_title("Calibration, out-of-time windows")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _scorer_table(metrics: pd.DataFrame) -> str:
    """One row per scorer (the index), the card's metric columns."""
    scorers = metrics[[c for c in METRIC_COLUMNS if c in metrics.columns]].copy()
    scorers.insert(0, "scorer", scorers.index)
    return _table(scorers)


def _interval_table(ev) -> str:
    iv = ev.interval_table() if ev.intervals is not None else None
    if iv is None or not len(iv):
        return ""
    iv = iv.reset_index()
    return ("\n95% bootstrap intervals (a dispute scored on several nights is resampled whole; a "
            "`model - x` row is the model's paired lead over scorer x):\n\n" + _table(iv) + "\n")


def _held_out(test, nights, reason: str | None = None) -> str:
    """The section on disputes after the cutoff, which training never saw."""
    if test is None:
        why = f" ({reason})" if reason else ""
        return ("## Held-out test\n**No held-out figure**: no dispute reported after the cutoff has its "
                f"horizon inside the data{why}. The metrics below are out-of-time validation "
                "figures from before the cutoff; run `escalation-risk evaluate` on newer data for a true "
                "test.\n")
    per = test.period
    span = f"{str(per.get('start', ''))[:10]} .. {str(per.get('end', ''))[:10]}"
    text = (f"## Held-out test (after the cutoff)\nNeither training, the parameter search, early stopping, "
            f"calibration nor the thresholds saw these disputes: these are the figures to expect.\n\n"
            f"**At report time** (the contract's backtest): disputes reported {span} whose horizon ends "
            f"inside the data, {per.get('n', '?')} disputes, {per.get('positives', '?')} escalated.\n\n"
            f"{_scorer_table(test.metrics)}\n{_interval_table(test)}")
    if nights is not None:
        text += (f"\n**On nightly runs** (what the nightly job scores): the disputes first reported after the "
                 f"cutoff, each night it was open (the 10th of each month), {nights.period.get('n', '?')} "
                 f"dispute-nights, {nights.period.get('positives', '?')} escalated. Disputes already open at "
                 f"the cutoff are left out: many were training examples.\n\n{_scorer_table(nights.metrics)}\n"
                 f"{_interval_table(nights)}")
    return text


def _time_varying(m: dict) -> str:
    """Which facts the training data dated (contract 1.1): what the backtest could check."""
    facts = m["training_data"].get("time_varying_facts")
    if facts is None:
        return ("Time-varying facts: not recorded (a model trained before contract 1.1: parties, outcomes, "
                "hukou and employment were read as of the export).\n")
    return ("Time-varying facts in the training data (what the backtest could check, and what it took as "
            "unchanged):\n\n" + "\n".join(f"- {f}" for f in facts) + "\n")


def _fairness_section(fairness: pd.DataFrame | None, m: dict) -> str:
    ex = m["features"].get("excluded") or {}
    asked = ex.get("requested") or []
    derived = [f for f in ex.get("features", []) if f in REGISTRY and set(REGISTRY[f].uses) & set(asked)]
    used = ("Nothing was excluded: the model reads every feature, including those derived from gender, "
            "hukou and age." if not asked else
            f"Excluded on request: **{', '.join(asked)}**, and with them every feature derived from them: "
            f"{', '.join(f'`{f}`' for f in derived) or 'none'}.")
    off = ex.get("families_off") or []
    used += ("" if not off else f" Families left out by the default setting (they did not earn their place, below): "
             f"{', '.join(off)}.")
    if fairness is None or not len(fairness):
        hint = (" No comparison with the same training on every feature was made for this card (`escalation-risk "
                "train --exclude ...` writes one)." if asked else " Train with `--exclude gender,hukou,age` for a card "
                "comparing the model with and without them.")
        return "## Personal attributes (fairness as a setting)\n" + used + hint + "\n"
    p_col, tab = _fairness_table(fairness, ["model", "attribute", "group"])
    return f"""## Personal attributes (fairness as a setting)
{used}

The same training with and without the personal attributes, on the held-out disputes (first
reported after the cutoff, at report time). The alert budget alerts the top
{p_col.split('@')[1]} of all disputes with one threshold for everyone; per group, the precision of
its alerts and its false-positive rate (the share of its disputes that did not escalate and were
alerted). 95% bootstrap intervals.

{_table(tab)}
"""


def _rescores(cfg: dict) -> str:
    """The card's words for the re-scores of open disputes the model was trained on."""
    every = cfg.get("rescore_every_days")
    if not every:
        return ""
    if cfg.get("rescore_phase", "fixed") == "spread":
        return f" and once in every {every}-day period while open, at a day drawn inside the period"
    return f" and every {every} days while open"


def _bag_words(tr: dict) -> str:
    """How many boosters the model averages, their trees, and where the re-scores fall."""
    k = int(tr["config"].get("bags", 1))
    n = int(tr["best_iteration"])
    bag = (f"; a bag of **k = {k}** boosters with their own row and feature subsamples, the number chosen for "
           f"their mean, so **{k * n}** trees in all" if k > 1 else "; one booster (k = 1)")
    phase = (f"; re-scores at a **{tr['config'].get('rescore_phase', 'fixed')}** phase"
             if tr["config"].get("rescore_every_days") else "")
    return bag + phase


def _linear_line(m: dict) -> str:
    """Whether the scores add the logistic regression's log-odds to the trees', and why."""
    choice = m.get("linear_choice")
    if not choice:
        return ("**Linear part:** none (the trees alone; "
                "`config={'linear': 'none'}` or a model trained before the setting existed).")
    cv = choice.get("cv") or {}
    why = (f" (cross-validated log-loss on the out-of-time windows: trees alone {cv['trees']:.5f}, blend "
           f"{cv['blend']:.5f})" if cv else "")
    lin = m.get("linear")
    if not lin:
        return f"**Linear part:** not used: the blend with the logistic regression did not beat the trees alone{why}."
    return (f"**Linear part:** the score's log-odds are {lin['w_trees']:.3f} x the trees' + {lin['w_linear']:.3f} x "
            f"the logistic regression's (the baseline below, refitted on all labelled history) "
            f"{lin['intercept']:+.3f}, weights fitted on the out-of-time windows{why}. Reasons add the "
            f"linear terms to the trees' SHAP values.")


def _equalised_section(m: dict, equalised: pd.DataFrame | None) -> str:
    """The per-group thresholds of ``config={"equalise_fpr": ...}``, and what they cost."""
    spec = m.get("equalised_fpr")
    if not spec:
        return ""

    def tab(rows: pd.DataFrame) -> str:
        return _table(_with_intervals(rows, ["rule", "group", "n", "escalated"], {
            "alerted": ("alerted", "alerted_lo", "alerted_hi"), **_PRECISION_FPR}))

    th = ", ".join(f"{g} {t:.3f}" for g, t in sorted(spec["thresholds"].items()))
    kept = spec.get("groups_kept_single") or []
    text = f"""## Equalised false-positive rates ({spec['attribute']})
Trained with `equalise_fpr={spec['attribute']!r}`: besides the one threshold ({spec['single']:.3f}, the top
{spec['budget']:.0%}), one threshold per {spec['attribute']} group so that every group has the same
false-positive rate ({spec['fpr']:.3f}) while {spec['budget']:.0%} of disputes are alerted, fitted on the
out-of-time validation predictions: {th}.{' Groups too small to fit, on the one threshold: ' + ', '.join(kept) + '.' if kept else ''}
Equal false-positive rates cost precision: the row `all` of each rule shows how much.
95% bootstrap intervals; thresholds held fixed.

Out-of-time validation windows (where the thresholds were fitted):

{tab(pd.DataFrame(spec['validation']))}
"""
    if equalised is not None and len(equalised):
        text += f"""
Held-out disputes (first reported after the cutoff, at report time; the same thresholds):

{tab(equalised)}
"""
    return text


def _fairness_benchmark_section() -> str:
    """Fairness measured on fresh districts (benchmarks/ablation.py --fairness; model/fairness.json)."""
    path = Path(__file__).parent / "model" / "fairness.json"
    if not path.is_file():
        return ""
    import json
    bench = json.loads(path.read_text(encoding="utf-8"))
    p_col, tab = _fairness_table(pd.DataFrame(bench["fairness"]), ["seed", "model", "attribute", "group"])
    text = f"""## With and without the personal attributes, on fresh districts
{bench['what']} One threshold alerting the top {p_col.split('@')[1]}; 95% bootstrap intervals.

{_table(tab)}
"""
    e = pd.DataFrame(bench.get("equalised", []))
    if len(e):
        etab = _with_intervals(e, ["seed", "model", "rule", "group", "n"], _PRECISION_FPR)
        text += f"""
One threshold against thresholds equalising the false-positive rate across the groups (fitted on each
model's out-of-time windows, `equalise_fpr`), on the same held-out disputes:

{_table(etab)}
"""
    return text


def _ablation_section() -> str:
    """The per-family ablation measured on fresh districts (benchmarks/ablation.py)."""
    from .model.training import ABLATION
    if not ABLATION:
        return ""
    rows = pd.DataFrame(ABLATION["rows"])

    def iv(v) -> str:
        return f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]"

    tab = pd.DataFrame({"seed": rows["seed"], "view": rows["view"], "without": rows["without"],
                        "Δ AUC": rows["roc_auc"].map(iv), "Δ P@5%": rows["precision@5%"].map(iv)})
    # A family measured after the table (its note keyed by its name): else the card would
    # list it as left out with no word on why.
    notes = [f"- **{fam}**: {ABLATION[fam]}" for fam in ABLATION.get("families_off", ())
             if isinstance(ABLATION.get(fam), str)]
    later = "\n\nMeasured after the table:\n" + "\n".join(notes) if notes else ""
    return f"""## Does each feature family earn its place
{ABLATION['what']} Δ: the full model minus the model trained without the family (paired
bootstrap 95% interval, resampled by dispute). {ABLATION['verdict']}

{_table(tab)}{later}
"""


def write_model_card(model, out_dir, test=None, nights=None, no_test_reason: str | None = None,
                     fairness: pd.DataFrame | None = None, equalised: pd.DataFrame | None = None) -> Path:
    r"""Write ``MODEL_CARD.md`` and ``calibration.png`` into ``out_dir``; return the card's path.

    ``test`` and ``nights`` are optional :class:`~escalation_risk.model.Evaluation`\ s on
    disputes first reported after the cutoff (held out): at report time, and open on
    monthly nights. Without ``test`` the model's own holdout (``train(..., holdout=...)``)
    is used when it has one; otherwise the card says there is no held-out figure, and
    why (``no_test_reason``). ``fairness`` (:func:`fairness_comparison`) adds the model
    with and without the personal attributes; the card always says which were used.
    ``equalised`` (:func:`escalation_risk.model.fairness.equalised_comparison` on held-out
    disputes) adds the held-out figures of a model trained with ``equalise_fpr``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if test is None:
        test = getattr(model, "holdout", None)
    m = model.manifest
    val = m["metrics"]["validation"]
    tr = m["training"]
    lab = m["labels"]
    by_group = pd.DataFrame(val["by_group"])
    curves = pd.DataFrame(val["calibration"])
    _calibration_plot(curves, out / "calibration.png")
    imp = pd.DataFrame(m.get("importance", []))
    if len(imp):
        imp["description"] = [REGISTRY[f].en.replace("{v}", "N") if f in REGISTRY else "" for f in imp["feature"]]
    periods = tr["periods"]
    folds = periods.get("folds", [])
    search = [{"set": i, "parameters": ", ".join(f"{k}={v}" for k, v in r["params"].items()),
               "trees": r["n_trees"], "window log-loss": f"{r['window_log_loss']:.5f}", "window AUC": r["window_auc"],
               "chosen": "yes" if i == tr.get("chosen") else ""}
              for i, r in enumerate(tr.get("search", []))]
    offences = "all offences" if lab["offences"] is None else ", ".join(lab["offences"])
    th = m["thresholds"]
    budget = m.get("budget", {})

    text = f"""# Model card: escalation risk (民转刑预警) — {m['model_version']}

Trained {m['created_at']} with escalation-risk {m['library_version']} and LightGBM {m['lightgbm_version']};
data cut at **{m['cutoff'][:10]}**, seed {m['seed']}. Training data fingerprint
`{m['training_data']['fingerprint'][:16]}…` (at the cutoff: `{m['training_data']['fingerprint_at_cutoff'][:16]}…`).{_sample_line(m)}

## Intended use
Ranking the open disputes of a district by the chance that a crime involving their parties
follows within **{lab['horizon_days']} days**, so that grid workers, mediators and police look first
at the few disputes most likely to turn violent, with the reasons that raised each score and
a suggested response plan. A probability of 0.2 means that about one in five such disputes
escalated in the validation period.

## Not intended use
- **No automatic decisions about people.** The score is a prompt to look, not a finding. A
  person reviews every alert and decides what to do; nothing may be done to a party (detention,
  sanction, denial of a service, a record) because of a score.
- Not a measure of anyone's guilt, character or dangerousness, and not for use outside dispute
  prevention (credit, employment, housing, immigration, sentencing).
- Not valid for data from another district or period without re-validation (`escalation-risk
  evaluate`), nor after a change in how disputes are recorded.

## Data and label
Disputes scored at their report time{_rescores(tr['config'])}.
A dispute escalates when a criminal case ({offences}) occurs in the {lab['horizon_days']} days after the
moment scored and {'shares a person party with the dispute (after record linkage) or ' if lab['shared_party'] else ''}names the
dispute as its origin. Only records available at the moment scored shape the features.

| set | as_of from | as_of to | examples | escalated |
|---|---|---|---|---|
| final model (all labelled history) | {periods['train_as_of'][0][:10]} | {periods['train_as_of'][1][:10]} | {tr['n_train']} | {tr['positives_train']} |
| out-of-time windows (choosing) | {periods['validation_as_of'][0][:10]} | {periods['validation_as_of'][1][:10]} | {tr['n_validation']} | {tr['positives_validation']} |

{_time_varying(m)}
**How it was chosen.** {len(folds)} rolling-origin windows cover the validation period; for each,
a booster learns from the examples whose labels end before the window starts (a one-horizon
gap) and predicts the window. Those out-of-time predictions chose the parameter set (lowest
fold-averaged log-loss), the number of trees (**{tr['best_iteration']}**, where that log-loss is
lowest{_bag_words(tr)}), the calibration (**{m['calibration']['method']}**, lower cross-validated Brier score on
them) and the alert thresholds. The final booster was then refitted with those settings on
*all* labelled history up to the cutoff; the calibration map was never fitted on its own
training scores.

{_table(pd.DataFrame(search)) if len(search) else ''}

{_linear_line(m)}

{_held_out(test, nights, no_test_reason)}
## Metrics (out-of-time validation windows)
Out-of-time predictions of the fold boosters (each trained on less history than the final
model) on the windows that also chose the settings, calibration and thresholds: slightly
optimistic for the choice, pessimistic for the amount of history. The held-out test above is
the figure to quote. The baselines here are also fitted per fold, out of time. The model against a logistic regression on the same features and a DASH/ODARA-style checklist
(number of yes-answers: prior police calls, prior violence or crime, threats, weapon, violence
described, failed mediation, concerns on record, follow-up reports, cohabiting intimate
partners, repeated conflict between the parties). Precision and recall at the top 1/5/10% of
disputes; ECE over 10 equal-count bins.

{_scorer_table(pd.DataFrame(val['scorers']).T)}

![calibration](calibration.png)

Alert thresholds (probability at or above): red {th['red']:.3f}, orange {th['orange']:.3f},
yellow {th['yellow']:.3f}, for budgets {', '.join(f'{k} {v:.0%}' for k, v in budget.items())} of the out-of-time windows.

## Per-group metrics (out-of-time validation windows)
Groups are taken from the dispute's parties: gender mix, the youngest party's age band, whether
any party lacks local hukou, and the dispute category. Alerts at the orange threshold (top 5%).
Differences in alert rate largely follow differences in observed escalation; check that alert
precision and recall do not differ much between groups before use.

{_table(by_group) if len(by_group) else '(none)'}

{_fairness_section(fairness, m)}
{_equalised_section(m, equalised)}
{_fairness_benchmark_section()}
{_ablation_section()}
## What drives the scores
Mean |SHAP| of the final model on the validation windows' examples, top features:

{_table(imp[['feature', 'mean_abs_shap', 'description']].head(15)) if len(imp) else '(none)'}

## Limitations
- The label sees only crimes that were recorded and linked to the dispute's parties; crimes
  against or by people not named in the dispute, or not reported, are missed.
- Record linkage errors move history between people; features use the canonical person key.
- Quality drifts with time and with recording practices: the held-out figures describe the
  months after the cutoff only. Re-evaluate on new months and retrain regularly.
- Small groups give noisy per-group metrics (see `count`).
- Reasons are SHAP contributions of features that raised the score: associations in the data,
  not causes, and never a reason to act against a person.
"""
    path = out / "MODEL_CARD.md"
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["write_model_card", "fairness_comparison"]


def _sample_line(m: dict) -> str:
    """The training sample of a province trained by districts, as the card states it."""
    sample = m["training_data"].get("sample")
    if not sample:
        return ""
    return (f"\nTrained by districts ({len(sample['districts'])} districts): a sample **by point**, seed "
            f"{sample['seed']}: {sample['sampled']:,} of {sample['examples']:,} examples (fraction "
            f"{sample['fraction']:.4g}; {sample['rule']}).")

