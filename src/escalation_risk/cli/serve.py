"""``escalation-risk serve``: the alert desk and the JSON API under uvicorn."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..desk import Desk

from .. import collector
from .alerts import DEFAULT_STORE, STORE_ENV
from .cases import INDEX_ENV
from .errors import check_store_url, fail, open_store

SECRET_ENV = "ESCALATION_RISK_DESK_SECRET"
SECRET_FILE_ENV = "ESCALATION_RISK_DESK_SECRET_FILE"
PROXY_ENV = "ESCALATION_RISK_TRUSTED_PROXIES"


@click.command("serve")
@click.option("--store", "store_url", envvar=STORE_ENV, default=DEFAULT_STORE, show_default=True, metavar="URL",
              callback=check_store_url, help=f"Alert store, a SQLAlchemy URL (env {STORE_ENV}).")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Model directory (made by `escalation-risk train`).")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The district's data folder: the scorer's history, and where each dispute's grid is.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--secret-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help=f"Key that signs the session cookies (default ${SECRET_ENV} or the file in ${SECRET_FILE_ENV}; "
                   "without one a random key is made and sessions end when the server stops).")
@click.option("--secure-cookies/--no-secure-cookies", default=False, show_default=True,
              help="Send cookies over HTTPS only (behind a TLS proxy).")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, metavar="IP|NETWORK", envvar=PROXY_ENV,
              help="A reverse proxy whose X-Forwarded-For is believed (repeat for several; env "
                   f"{PROXY_ENV}, comma-separated). Default none: the connecting address is the client's.")
@click.option("--case-index", "case_index_dir", envvar=INDEX_ENV, default=None,
              type=click.Path(exists=True, file_okay=False),
              help=f"Tonight's case index (`escalation-risk cases --build-index DIR`, env {INDEX_ENV}); "
                   "default: built from --data in the background after start.")
@click.option("--score-processes", default=0, show_default=True, type=click.IntRange(0, 64),
              help="Score the API's calls in this many forked processes (about one per core): concurrent "
                   "calls then run at once instead of one after another. 0: in the server's own process.")
def serve(store_url: str, model_dir: str, data_dir: str, host: str, port: int, secret_file: str | None,
          secure_cookies: bool, trusted_proxies: tuple[str, ...], case_index_dir: str | None,
          score_processes: int) -> None:
    """Serve the alert desk (pages for workers and supervisors) and the JSON API."""
    import uvicorn

    from ..cases import CaseIndexLoadError, load_case_index, use_case_index
    from ..dataset import load_dataset
    from ..desk import Desk, create_app
    from ..desk.app import check_proxies
    from ..desk.pool import ScorePool
    from ..model import load_model
    from ..pseudonym_keys import PseudonymKeyError, find_key
    from ..scoring import Scorer

    log = logging.getLogger("escalation_risk.desk")
    try:
        proxies = check_proxies([p for value in trusted_proxies for p in value.split(",") if p.strip()])
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--trusted-proxy") from None
    try:
        secret = find_key(None if secret_file is None else _path(secret_file), argument="--secret-file",
                          env=SECRET_ENV, file_env=SECRET_FILE_ENV)
    except PseudonymKeyError as e:
        fail(str(e).replace("pseudonym key", "desk secret"))
    if secret is None:
        log.warning("no desk secret given: a random one signs the cookies; sessions end when the server stops")
    with open_store(store_url) as store:
        try:
            model = load_model(model_dir)
            scorer = Scorer(model, load_dataset(data_dir))
            if case_index_dir:
                use_case_index(scorer.history, load_case_index(case_index_dir, model))
        except (OSError, ValueError, CaseIndexLoadError) as e:
            fail(e)
        desk = Desk(store, scorer)
        # What is loaded stays for the server's life: out of the collector's sight, a full
        # collection no longer walks the modules and the history (131-275 ms at a million
        # persons, landing in some request: escalation_risk.collector), and forked scorers do
        # not copy its pages by touching them.
        collector.freeze_loaded()
        # Forked before any thread starts and before the model first runs (see desk.pool).
        pool = ScorePool(scorer, score_processes)
        # The case index and the alert list are built while the server already answers.
        threading.Thread(target=_warm, args=(desk,), name="desk-warm", daemon=True).start()
        app = create_app(desk, secret_key=secret, secure_cookies=secure_cookies, trusted_proxies=proxies,
                         pool=pool)
        click.echo(f"serving the desk on http://{host}:{port}/ (model {model.version})", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                    proxy_headers=False, server_header=False)


def _warm(desk: Desk) -> None:
    desk.warm()
    collector.keep_frozen()  # the caches just built live as long as the server: keep the collector off them too


def _path(p: str) -> os.PathLike[str]:
    from pathlib import Path
    return Path(p)
