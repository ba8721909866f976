"""``train`` and ``evaluate``: the model side of the command line."""

from __future__ import annotations

import click
import pandas as pd

from ..dataset import DataValidationError, load_dataset
from ..pseudonym_keys import PseudonymKeyError
from .errors import check_store_url, fail, open_store
from .params import MOMENT, RANGE_START


def _load(data_dir: str):
    from ..province import is_province, province_dataset
    try:
        if is_province(data_dir):  # a province: its districts as one training set (see province_dataset)
            return province_dataset(data_dir)
        return load_dataset(data_dir)
    except PseudonymKeyError as e:
        fail(e)
    except DataValidationError as e:
        click.echo(str(e), err=True)
        raise SystemExit(1) from None


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--cutoff", required=True, type=MOMENT,
              help="Train on what was known at this moment (a date: the end of that day).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Model directory to write.")
@click.option("--horizon", default=90, show_default=True, type=click.IntRange(min=1), help="Label horizon in days.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--rescore-every", "rescore_every", default=None, type=click.IntRange(min=1),
              help="Also train on open disputes re-scored every N days (as the nightly job sees them).")
@click.option("--max-rescores", default=6, show_default=True, type=click.IntRange(min=1))
@click.option("--rescore-phase", "rescore_phase", default="fixed", show_default=True,
              type=click.Choice(["fixed", "spread"]),
              help="With --rescore-every: re-score at whole periods after the report (fixed) or at a point "
              "drawn inside each period (spread, as nights fall on any day of a dispute's life).")
@click.option("--bags", default=1, show_default=True, type=click.IntRange(min=1),
              help="Average this many boosters, each with its own row and feature subsamples (1: one booster).")
@click.option("--store", default=None, callback=lambda c, p, v: v if v is None else check_store_url(c, p, v),
              help="Alert store URL: feed the recorded outcomes of closed alerts into the labels.")
@click.option("--exclude", default="", help="Comma-separated personal attributes (gender,hukou,age) the model must do "
              "without, with every feature derived from them, and/or feature families. Nothing by default.")
@click.option("--equalise-fpr", "equalise_fpr", default=None,
              type=click.Choice(["gender", "hukou", "age_band", "dispute_category"]),
              help="Also fit per-group thresholds giving every group of this attribute the same false-positive "
              "rate at the alert budget; the card shows them and their cost in precision.")
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="spark (a province): examples made per district on Spark executors, a seeded sample by "
              "point (--max-points) fitted on this machine; local: the province's districts joined here.")
@click.option("--spark-master", default=None, help="With --engine spark: e.g. local[2] or spark://HOST:PORT.")
@click.option("--max-points", default=None, type=click.IntRange(min=1),
              help="With --engine spark: fit on a seeded sample of at most this many examples (by point).")
def train(data_dir: str, cutoff: pd.Timestamp, out_dir: str, horizon: int, seed: int, rescore_every: int | None,
          max_rescores: int, store: str | None, exclude: str, equalise_fpr: str | None = None, engine: str = "local",
          spark_master: str | None = None, max_points: int | None = None, rescore_phase: str = "fixed",
          bags: int = 1) -> None:
    """Train a model on DATA_DIR as known at --cutoff, save it with its model card into --out."""
    from ..features import build_features
    from ..model import train as train_model
    from ..model_card import write_model_card
    if rescore_phase != "fixed" and not rescore_every:
        raise click.BadParameter("--rescore-phase places the re-scores of --rescore-every",
                                 param_hint="--rescore-phase")
    # The defaults stay out of the config, so a model trained without these options is unchanged.
    extra: dict = {**({"bags": bags} if bags > 1 else {}),
                   **({"rescore_phase": rescore_phase} if rescore_phase != "fixed" else {})}
    if engine == "spark" and equalise_fpr:
        raise click.BadParameter("--equalise-fpr is not built for --engine spark", param_hint="--engine")
    if engine == "spark":
        return _train_on_spark(data_dir, cutoff, out_dir, horizon, seed, rescore_every, max_rescores, store,
                               exclude, spark_master, max_points, extra)
    if spark_master or max_points:
        raise click.BadParameter("--spark-master and --max-points are for --engine spark", param_hint="--engine")
    ds = _load(data_dir)
    newest = ds.incidents["reported_at"].max()
    if pd.isna(newest):
        fail("the data hold no incident: there is nothing to learn from")
    try:
        config: dict = {**({"rescore_every_days": rescore_every, "max_rescores": max_rescores}
                           if rescore_every else {}), **extra}
        if equalise_fpr:
            config["equalise_fpr"] = equalise_fpr
        outcomes = None
        if store:
            with open_store(store, create=False) as st:
                outcomes = st.outcomes()
        model = train_model(ds, cutoff=cutoff, horizon_days=horizon, seed=seed, config=config, outcomes=outcomes,
                            exclude=[x.strip() for x in exclude.split(",") if x.strip()])
    except ValueError as e:
        click.echo(f"training failed: {e}", err=True)
        raise SystemExit(1) from None
    model.save(out_dir)
    test, nights, why_not = _held_out(model, ds, cutoff, horizon)
    if why_not:
        click.echo(f"no held-out test: {why_not}", err=True)
    fairness = equalised = None
    excluding = bool(model.manifest["features"]["excluded"]["requested"])
    if test is not None and (excluding or equalise_fpr):
        # The held-out disputes' features under this model, built once for both comparisons.
        pts, y = _labelled_report_points(ds, cutoff, horizon)
        Xm = build_features(ds, pts, lexicon=model.lexicon, text=model.text_model)
        if excluding:
            fairness = _with_and_without(model, ds, pts, y, Xm, cutoff, horizon, seed, config, outcomes)
        if equalise_fpr:
            equalised = _equalised_held_out(model, Xm, y, seed)
    card = write_model_card(model, out_dir, test=test, nights=nights, no_test_reason=why_not, fairness=fairness,
                            equalised=equalised)
    val = model.manifest["metrics"]["validation"]
    table = pd.DataFrame(val["scorers"]).T[["roc_auc", "average_precision", "brier", "ece", "precision@1%",
                                            "precision@5%", "precision@10%", "recall@5%"]]
    click.echo(f"model {model.version} saved to {out_dir} (card: {card.name})")
    click.echo(f"out-of-time validation windows {val['period']['start'][:10]} .. {val['period']['end'][:10]}: "
               f"{val['period']['n']} disputes, {val['period']['positives']} escalated")
    click.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if test is not None:
        click.echo(f"held-out after the cutoff, disputes at report time: {test.table()}")
    if nights is not None:
        click.echo(f"held-out after the cutoff, disputes first reported after it, open on monthly nights: "
                   f"{nights.table()}")


def _train_on_spark(data_dir: str, cutoff: pd.Timestamp, out_dir: str, horizon: int, seed: int,
                    rescore_every: int | None, max_rescores: int, store: str | None, exclude: str,
                    spark_master: str | None, max_points: int | None, extra: dict | None = None) -> None:
    """``train PROVINCE --engine spark``: :func:`escalation_risk.province_training.train_province`."""
    from .. import spark as er_spark
    from ..model_card import write_model_card
    from ..province import is_province
    from ..province_training import train_province
    if not is_province(data_dir):
        raise click.BadParameter("--engine spark trains a province folder (a folder of district folders)",
                                 param_hint="DATA_DIR")
    if store or exclude:
        raise click.BadParameter("--store and --exclude are not built for --engine spark", param_hint="--engine")
    config = {**({"rescore_every_days": rescore_every, "max_rescores": max_rescores} if rescore_every else {}),
              **(extra or {})} or None
    try:
        session = er_spark.session(spark_master)
        model = train_province(data_dir, cutoff=cutoff, engine="spark", spark=session, max_points=max_points,
                               seed=seed, horizon_days=horizon, config=config)
    except (ValueError, er_spark.SparkUnavailableError, PseudonymKeyError) as e:
        click.echo(f"training failed: {e}", err=True)
        raise SystemExit(1) from None
    model.save(out_dir)
    card = write_model_card(model, out_dir, no_test_reason="a province trained by districts on Spark: the held-out "
                            "evaluation reads the whole province; run `evaluate` on a district")
    sample = model.manifest["training_data"]["sample"]
    click.echo(f"model {model.version} saved to {out_dir} (card: {card.name}); trained on {sample['sampled']} of "
               f"{sample['examples']} examples of {len(sample['districts'])} districts (sample by point, seed {seed})")


def _labelled_report_points(ds, cutoff: pd.Timestamp, horizon: int):
    """The held-out disputes at report time after the cutoff whose label is known, and their labels."""
    from ..labels import make_labels
    from ..model import report_points
    pts = report_points(ds, cutoff, None)
    y = make_labels(ds, pts, horizon_days=horizon).to_numpy()
    known = ~pd.isna(y)
    return pts[known].reset_index(drop=True), y[known]


def _with_and_without(model, ds, pts: pd.DataFrame, y, Xm: pd.DataFrame, cutoff: pd.Timestamp, horizon: int,
                      seed: int, config, outcomes):
    """The excluding model beside the same training with nothing excluded, on the held-out
    disputes at report time ``pts`` (labels ``y``, the excluding model's features ``Xm``),
    for the card's fairness table."""
    from ..features import build_features
    from ..model import train as train_model
    from ..model.fairness import fairness_comparison
    from ..model.metrics import group_attributes
    full = train_model(ds, cutoff=cutoff, horizon_days=horizon, seed=seed, config=config, outcomes=outcomes)
    # The full model's text score comes from its own text model: a second build only when it has one.
    X = Xm if full.text_model is None and model.text_model is None else \
        build_features(ds, pts, lexicon=model.lexicon, text=full.text_model)
    asked = ",".join(model.manifest["features"]["excluded"]["requested"])
    return fairness_comparison({"all features": full.predict_proba(X), f"without {asked}": model.predict_proba(Xm)},
                               y, group_attributes(X)[["gender", "hukou", "age_band"]], seed=seed)


def _equalised_held_out(model, X: pd.DataFrame, y, seed: int):
    """One threshold against the model's equalised ones on the held-out disputes at report
    time (features ``X``, labels ``y``)."""
    from ..model.fairness import equalised_comparison, group_of
    spec = model.manifest["equalised_fpr"]
    return equalised_comparison(model.predict_proba(X), y, group_of(X, spec["attribute"]), spec, seed=seed)


def _held_out(model, ds, cutoff: pd.Timestamp, horizon: int):
    """The held-out evaluations after the cutoff (at report time; open on monthly nights,
    disputes first reported after the cutoff only), and why there are none when so.

    Training on everything up to today is the production call: with the cutoff at (or
    after) the data's end there is nothing to test on, and the reason says so."""
    from ..labels import data_end
    from ..model import night_points
    end = data_end(ds)
    if cutoff >= end:
        return None, None, (f"the cutoff {cutoff:%Y-%m-%d %H:%M} is at or after the data's last record "
                            f"({end:%Y-%m-%d %H:%M}): no dispute after it to test on. To measure the model, "
                            f"train with an earlier cutoff (at least {horizon} days before the end)")
    try:  # the months after the cutoff, where labels are already observed, are a true test
        test = model.evaluate(ds, start=cutoff, intervals=True)
    except ValueError as e:
        return None, None, str(e)
    try:
        pts = night_points(ds, start=cutoff, horizon_days=horizon)
        rep = ds.incidents.set_index("incident_id").loc[pts["dispute_id"], "reported_at"].to_numpy()
        # Disputes open at the cutoff were training examples: leave them out of the test.
        pts = pts[rep >= cutoff.to_datetime64()].reset_index(drop=True)
        nights = model.evaluate(ds, points=pts, intervals=True)
    except ValueError as e:
        return test, None, f"no monthly night after the cutoff to test on ({e})"
    return test, nights, None


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="A model directory written by `train`.")
@click.option("--start", default=None, type=RANGE_START,
              help="First report date scored, from the start of that day (default: the model's cutoff).")
@click.option("--end", default=None, type=MOMENT,
              help="Last report date scored, to the end of that day (default: the end of the data).")
def evaluate(data_dir: str, model_dir: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> None:
    """Print the model's and the baselines' metrics on DATA_DIR's disputes at report time."""
    from ..model import load_model
    try:
        model = load_model(model_dir)
    except ValueError as e:  # ModelLoadError is a ValueError
        click.echo(f"cannot load the model: {e}", err=True)
        raise SystemExit(1) from None
    ds = _load(data_dir)
    try:
        ev = model.evaluate(ds, start=start, end=end, intervals=True)
    except ValueError as e:
        click.echo(f"evaluation failed: {e}", err=True)
        raise SystemExit(1) from None
    click.echo(f"model {model.version} on {data_dir}")
    click.echo(ev.table())
    click.echo("time-varying facts in these data (what this evaluation could check):")
    for fact in ev.period["time_varying_facts"]:
        click.echo(f"  - {fact}")
