"""Real OS processes on one alert store, for tests/test_processes.py and
benchmarks/bench_delivery.py: each command below runs as its own ``python tests/procs.py``.

- ``nights URL SEED N``: record three nights of two districts (N disputes each, scores made
  from SEED) and queue each night's messages, as the nightly job does; prints ``ready``
  once imported and connected, ``recorded K`` after its K-th night (the moments a killer
  times itself from), then ``done``.
- ``record URL DISTRICT NIGHT N SEED GO [backfill]``: open the store, print ``ready``, and
  record one night once the file GO exists (so that processes start together); prints the
  summary as JSON.
- ``deliver URL HOOK LEASE GO``: deliver what is pending to HOOK once GO exists (the
  secret from $ESCALATION_RISK_NOTIFY_SECRET); prints the report as JSON.

Scores are synthetic and deterministic: the same SEED, district and night give the same
frame, so a killed run re-run and a clean run record the same thing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NIGHTS = (pd.Timestamp("2025-06-28"), pd.Timestamp("2025-06-29"), pd.Timestamp("2025-06-30"))
DISTRICTS = ("310101", "310104")
KEY_FINGERPRINT = "5a3b1c0d9e8f7a6b"  # a fingerprint, not a key
LEVELS = ((0.8, "red"), (0.5, "orange"), (0.3, "yellow"), (0.0, "blue"))


def night_scores(district: str, night: pd.Timestamp, n: int, seed: int) -> pd.DataFrame:
    """One district's scores for one night: the same arguments, the same frame."""
    rng = np.random.default_rng([seed, int(district), night.day_of_year])
    p = rng.beta(1.2, 4.0, size=n)
    level = [next(name for cut, name in LEVELS if x >= cut) for x in p]
    first = night == NIGHTS[0]
    trend = ["new"] * n if first else list(rng.choice(["rising", "steady", "falling"], size=n))
    return pd.DataFrame({
        "dispute_id": [f"D{district}-{i:05d}" for i in range(n)], "as_of": night, "probability": p,
        "level": level, "trend": trend, "delta": [None if first else 0.01] * n,
        "reasons": [["两次报警", "调解失败"]] * n, "reasons_zh": [["两次报警", "调解失败"]] * n,
        "plan": ["debt_mediation_judicial"] * n,
    })


def record(store: Any, district: str, night: pd.Timestamp, n: int, seed: int, *, backfill: bool = False) -> Any:
    """Record one night of one district as the nightly job does: under the district's
    recording lock (waiting for another night of it), then queue the night's messages."""
    from escalation_risk.alerts.notify import Notifier, Webhook

    frame = night_scores(district, night, n, seed)
    with store.recording_lock(timeout=120, district=district):
        summary = store.record_night(frame, night, "m1", district=district, backfill=backfill,
                                     input_fingerprint=f"{seed:064d}", key_fingerprint=KEY_FINGERPRINT)
    Notifier(store, Webhook("http://127.0.0.1:9/queue-only")).queue_night(night)
    return summary


def record_nights(url: str, seed: int, n: int, on_ready: Any = None, on_recorded: Any = None) -> None:
    """Three nights of two districts, in order, with their messages queued; ``on_recorded(k)``
    after the k-th."""
    from escalation_risk.alerts import AlertStore

    with AlertStore(url) as store:
        if on_ready is not None:
            on_ready()
        k = 0
        for night in NIGHTS:
            for district in DISTRICTS:
                record(store, district, night, n, seed)
                k += 1
                if on_recorded is not None:
                    on_recorded(k)


def _wait_for(go: str) -> None:
    while not Path(go).exists():
        time.sleep(0.005)


def main(argv: list[str]) -> None:
    command, url = argv[0], argv[1]
    if command == "nights":
        record_nights(url, int(argv[2]), int(argv[3]), on_ready=lambda: print("ready", flush=True),
                      on_recorded=lambda k: print(f"recorded {k}", flush=True))
        print("done", flush=True)
    elif command == "record":
        from escalation_risk.alerts import AlertStore

        district, night, n, seed, go = argv[2], pd.Timestamp(argv[3]), int(argv[4]), int(argv[5]), argv[6]
        with AlertStore(url) as store:
            print("ready", flush=True)
            _wait_for(go)
            summary = record(store, district, night, n, seed, backfill="backfill" in argv[7:])
        print(json.dumps(summary.as_dict()), flush=True)
    elif command == "deliver":
        from escalation_risk.alerts import AlertStore
        from escalation_risk.alerts.notify import Notifier, Webhook

        hook, lease, go = argv[2], float(argv[3]), argv[4]
        secret = os.environ["ESCALATION_RISK_NOTIFY_SECRET"].encode()
        with AlertStore(url) as store:
            notifier = Notifier(store, Webhook(hook, secret=secret, timeout_s=10), lease_s=lease, retries=3,
                                backoff_s=0.05, max_consecutive_failures=50)
            print("ready", flush=True)
            _wait_for(go)
            report = notifier.deliver()
        print(json.dumps({"delivered": report.delivered, "pending": report.pending, "attempts": report.attempts}),
              flush=True)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
