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
    ax.set_title("Calibration on the validation window")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _scorer_table(ev) -> str:
    scorers = ev.metrics[[c for c in METRIC_COLUMNS if c in ev.metrics.columns]].copy()
    scorers.insert(0, "scorer", scorers.index)
    return _table(scorers)


def _held_out(test, nights) -> str:
    """The section on disputes after the cutoff, which training never saw."""
    if test is None:
        return ("## Held-out test\nNo disputes after the cutoff had a fully observed horizon in the "
                "training data; run `escalation-risk evaluate` on newer data.\n")
    per = test.period
    span = f"{str(per.get('start', ''))[:10]} .. {str(per.get('end', ''))[:10]}"
    text = (f"## Held-out test (after the cutoff)\nNeither training, early stopping, calibration nor the "
            f"thresholds saw these disputes: these are the figures to expect.\n\n"
            f"**At report time** (the contract's backtest): disputes reported {span} whose horizon ends "
            f"inside the data, {per.get('n', '?')} disputes, {per.get('positives', '?')} escalated.\n\n"
            f"{_scorer_table(test)}\n")
    if nights is not None:
        text += (f"\n**On nightly runs** (what the nightly job scores): every dispute open on the 10th of each "
                 f"month after the cutoff, {nights.period.get('n', '?')} dispute-nights, "
                 f"{nights.period.get('positives', '?')} escalated.\n\n{_scorer_table(nights)}\n")
    return text


def _time_varying(m: dict) -> str:
    """Which facts the training data dated (contract 1.1): what the backtest could check."""
    facts = m["training_data"].get("time_varying_facts")
    if facts is None:
        return ("Time-varying facts: not recorded (a model trained before contract 1.1: parties, outcomes, "
                "hukou and employment were read as of the export).\n")
    return ("Time-varying facts in the training data (what the backtest could check, and what it took as "
            "unchanged):\n\n" + "\n".join(f"- {f}" for f in facts) + "\n")


def write_model_card(model, out_dir, test=None, nights=None) -> Path:
    r"""Write ``MODEL_CARD.md`` and ``calibration.png`` into ``out_dir``; return the card's path.

    ``test`` and ``nights`` are optional :class:`~escalation_risk.model.Evaluation`\ s on
    disputes after the cutoff (held out): at report time, and open on monthly nights.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = model.manifest
    val = m["metrics"]["validation"]
    tr = m["training"]
    lab = m["labels"]
    scorers = pd.DataFrame(val["scorers"]).T
    scorers = scorers[[c for c in METRIC_COLUMNS if c in scorers.columns]]
    scorers.insert(0, "scorer", scorers.index)
    by_group = pd.DataFrame(val["by_group"])
    curves = pd.DataFrame(val["calibration"])
    _calibration_plot(curves, out / "calibration.png")
    imp = pd.DataFrame(m.get("importance", []))
    if len(imp):
        imp["description"] = [REGISTRY[f].en.replace("{v}", "N") if f in REGISTRY else "" for f in imp["feature"]]
    periods = tr["periods"]
    offences = "all offences" if lab["offences"] is None else ", ".join(lab["offences"])
    th = m["thresholds"]
    budget = m.get("budget", {})

    text = f"""# Model card: escalation risk (民转刑预警) — {m['model_version']}

Trained {m['created_at']} with escalation-risk {m['library_version']} and LightGBM {m['lightgbm_version']};
data cut at **{m['cutoff'][:10]}**, seed {m['seed']}. Training data fingerprint
`{m['training_data']['fingerprint'][:16]}…` (at the cutoff: `{m['training_data']['fingerprint_at_cutoff'][:16]}…`).

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
Disputes scored at their report time{(' and every ' + str(tr['config']['rescore_every_days']) + ' days while open') if tr['config'].get('rescore_every_days') else ''}.
A dispute escalates when a criminal case ({offences}) occurs in the {lab['horizon_days']} days after the
moment scored and {'shares a person party with the dispute (after record linkage) or ' if lab['shared_party'] else ''}names the
dispute as its origin. Only records available at the moment scored shape the features.

| split | as_of from | as_of to | examples | escalated |
|---|---|---|---|---|
| training | {periods['train_as_of'][0][:10]} | {periods['train_as_of'][1][:10]} | {tr['n_train']} | {tr['positives_train']} |
| validation | {periods['validation_as_of'][0][:10]} | {periods['validation_as_of'][1][:10]} | {tr['n_validation']} | {tr['positives_validation']} |

{_time_varying(m)}
Training examples end one horizon before the validation window, and the validation labels end
at the cutoff, so no label window overlaps another split. {tr['best_iteration']} trees
(early stopping on the validation window); probabilities calibrated there with
**{m['calibration']['method']}** (lower cross-validated Brier score).

{_held_out(test, nights)}
## Metrics (validation window)
These come from the window used for early stopping, calibration and thresholds, so they
are optimistic, the calibration error most of all. The model against a logistic regression on the same features and a DASH/ODARA-style checklist
(number of yes-answers: prior police calls, prior violence or crime, threats, weapon, violence
described, failed mediation, concerns on record, follow-up reports, cohabiting intimate
partners, repeated conflict between the parties). Precision and recall at the top 1/5/10% of
disputes; ECE over 10 equal-count bins.

{_table(scorers)}

![calibration](calibration.png)

Alert thresholds (probability at or above): red {th['red']:.3f}, orange {th['orange']:.3f},
yellow {th['yellow']:.3f}, for budgets {', '.join(f'{k} {v:.0%}' for k, v in budget.items())} of the validation window.

## Per-group metrics (validation window)
Groups are taken from the dispute's parties: gender mix, the youngest party's age band, whether
any party lacks local hukou, and the dispute category. Alerts at the orange threshold (top 5%).
Differences in alert rate largely follow differences in observed escalation; check that alert
precision and recall do not differ much between groups before use.

{_table(by_group) if len(by_group) else '(none)'}

## What drives the scores
Mean |SHAP| on the validation window, top features:

{_table(imp[['feature', 'mean_abs_shap', 'description']].head(15)) if len(imp) else '(none)'}

## Limitations
- The label sees only crimes that were recorded and linked to the dispute's parties; crimes
  against or by people not named in the dispute, or not reported, are missed.
- Record linkage errors move history between people; features use the canonical person key.
- Metrics come from one validation window just before the cutoff; quality drifts with time
  and with recording practices. Re-evaluate on new months and retrain regularly.
- Small groups give noisy per-group metrics (see `count`).
- Reasons are SHAP contributions of features that raised the score: associations in the data,
  not causes, and never a reason to act against a person.
"""
    path = out / "MODEL_CARD.md"
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["write_model_card"]
