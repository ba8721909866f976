"""The quality bar on fresh districts: the model against both baselines, held out.

For each seed given, generate a district that is not the committed sample, train on
what was known at the cutoff (``train(..., holdout=...)``), and score every dispute
first reported in the following year at its report time (labels observed). Prints, per
seed, ROC AUC, average precision, precision at the 5% budget and calibration error
for the model, the logistic regression and the checklist, each with its 95% bootstrap
interval, the model's paired lead over each baseline, and which targets it meets:

- AUC >= 0.76 and precision in the top 5% >= 0.40,
- ECE < 0.02,
- the model ahead of the logistic regression (AUC).

With ``--screenings`` it also reduces each district to a data set of screenings (ages,
criminal history and dispute categories only; no text, places, households, flags, ties,
mediations, calls, complaints or petitions) and compares the model there with a
logistic regression on the youngest party's age and the parties' prior offence count.

    python benchmarks/quality.py --persons 40000 --seeds 11 13 17 --screenings
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import escalation_risk as er
from escalation_risk.features import build_features
from escalation_risk.labels import make_labels
from escalation_risk.model import report_points
from escalation_risk.model.metrics import bootstrap_intervals
from escalation_risk.synth import generate_district

COLUMNS = ["roc_auc", "average_precision", "precision@5%", "ece"]


def screenings(ds: er.Dataset) -> er.Dataset:
    """``ds`` reduced to people with a birth year, disputes and criminal cases with their
    category and person parties: what a screening record set holds."""
    inc = ds.incidents[ds.incidents["kind"].isin(["dispute", "criminal_case"])]
    inc = inc[["incident_id", "kind", "category", "occurred_at", "reported_at"]]
    par = ds.incident_parties
    par = par[par["incident_id"].isin(inc["incident_id"]) & (par["party_type"] == "person")]
    return er.Dataset.from_frames(pseudonymised=True, persons=ds.persons[["person_id", "birth_year"]],
                                  places=ds.places.iloc[:0][["place_id", "grid_id"]], incidents=inc,
                                  incident_parties=par[["incident_id", "party_id", "party_type", "role"]])


def _two_feature_logistic(ds: er.Dataset, cutoff: pd.Timestamp, end: pd.Timestamp, horizon: int, seed: int):
    """A logistic regression on age and prior offences, trained on every labelled dispute
    before the cutoff (the same history the model had), scored on the held-out year."""
    def frame(data, start, stop):
        pts = report_points(data, start, stop)
        y = make_labels(data, pts, horizon_days=horizon).to_numpy()
        X = build_features(data, pts)
        A = np.column_stack([X["age_min"].fillna(X["age_min"].median()),
                             np.log1p(X["hist_crime_suspect_all_sum"].fillna(0))])
        return A, y
    A, y = frame(ds.cut(cutoff), None, cutoff - pd.Timedelta(days=horizon))
    ok = ~np.isnan(y)
    lr = LogisticRegression(max_iter=1000, random_state=seed).fit(A[ok], y[ok])
    At, yt = frame(ds, cutoff, end)
    okt = ~np.isnan(yt)
    return yt[okt], lr.predict_proba(At[okt])[:, 1]


def _targets(m: pd.DataFrame) -> dict[str, bool]:
    return {"AUC>=0.76": m.loc["model", "roc_auc"] >= 0.76, "P@5%>=0.40": m.loc["model", "precision@5%"] >= 0.40,
            "ECE<0.02": m.loc["model", "ece"] < 0.02,
            "ahead of LR": m.loc["model", "roc_auc"] > m.loc["logistic_regression", "roc_auc"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--persons", type=int, default=40000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 13, 17])
    ap.add_argument("--cutoff", default="2024-07-01")
    ap.add_argument("--horizon", type=int, default=90)
    ap.add_argument("--screenings", action="store_true", help="Also compare on the screenings-only reduction.")
    args = ap.parse_args()
    # Synthetic districts: the committed sample key, public on purpose.
    key = Path(__file__).resolve().parents[1] / "data" / "sample" / "SAMPLE_KEY"
    cutoff = pd.Timestamp(args.cutoff)
    end = cutoff + pd.DateOffset(years=1)
    rows, scr_rows = [], []
    for seed in args.seeds:
        t0 = time.perf_counter()
        ds = generate_district(args.persons, seed=seed, pseudonym_key=key)
        model = er.train(ds, cutoff=cutoff, horizon_days=args.horizon, holdout=(cutoff, end))
        ev = model.holdout
        m = ev.metrics
        met = _targets(m)
        chosen = model.manifest["training"]["search"][model.manifest["training"]["chosen"]]
        print(f"\nseed {seed}: {ev.period.get('n')} disputes reported {cutoff:%Y-%m-%d} .. {end:%Y-%m-%d}, "
              f"{ev.period.get('positives')} escalated; parameter set {chosen['params']}, {chosen['n_trees']} trees, "
              f"{model.calibrator['method']} calibration; {time.perf_counter() - t0:.0f} s")
        print(ev.interval_table().to_string())
        print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))
        rows.append({"seed": seed, **{f"model {c}": m.loc["model", c] for c in COLUMNS},
                     "LR roc_auc": m.loc["logistic_regression", "roc_auc"],
                     "checklist roc_auc": m.loc["checklist", "roc_auc"],
                     "LR precision@5%": m.loc["logistic_regression", "precision@5%"], **met})
        if args.screenings:
            t0 = time.perf_counter()
            sc = screenings(ds)
            ms = er.train(sc, cutoff=cutoff, horizon_days=args.horizon, holdout=(cutoff, end))
            y2, p2 = _two_feature_logistic(sc, cutoff, end, args.horizon, seed)
            ys = ms.holdout.period["n"]
            pm = ms.predict_proba(build_features(sc, report_points(sc, cutoff, end)))
            lab = make_labels(sc, report_points(sc, cutoff, end), horizon_days=args.horizon).to_numpy()
            ok = ~np.isnan(lab)
            assert ok.sum() == ys == len(y2)
            iv = bootstrap_intervals(y2, {"model": (pm[ok], pm[ok]), "LR(age, priors)": (p2, p2)},
                                     metrics=("roc_auc", "precision@5%"), seed=seed)
            iv = iv.assign(text=iv.apply(lambda r: f"{r['estimate']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]", axis=1))
            print(f"screenings only ({ys} disputes, {int(y2.sum())} escalated, {time.perf_counter() - t0:.0f} s):")
            print(iv.pivot(index="scorer", columns="metric", values="text").to_string())
            est = iv.set_index(["scorer", "metric"])["estimate"]
            scr_rows.append({"seed": seed, "model roc_auc": est[("model", "roc_auc")],
                             "LR(age, priors) roc_auc": est[("LR(age, priors)", "roc_auc")],
                             "at least as good": est[("model", "roc_auc")] >= est[("LR(age, priors)", "roc_auc")]})
    print("\n" + pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if scr_rows:
        print("\n" + pd.DataFrame(scr_rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
