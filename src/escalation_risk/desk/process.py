"""The desk as a child process: ``escalation-risk serve`` on a free port, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["free_port", "served", "Served"]


class Served(str):
    """The base URL of a served desk; ``pid`` is the server's process id."""

    pid: int


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(store: str, model_dir: str | Path, data_dir: str | Path, log_file: str | Path, *,
           env: Mapping[str, str] | None = None, timeout: float = 180.0, warm: bool = False,
           args: Sequence[str] = ()) -> Iterator[Served]:
    """Run ``escalation-risk serve`` in its own process until the block ends; yields its base URL.

    Waits until ``/healthz`` answers (with ``warm``: until it says the caches are warm),
    raising ``RuntimeError`` with the end of the server's output if it stops or does not
    come up within ``timeout`` seconds; stops the process (its pid only) when the block
    is left (and so its scoring processes, which it stops). ``args``: more ``serve`` options."""
    port = free_port()
    cmd = [sys.executable, "-c", "from escalation_risk.cli import main; main()", "serve", "--store", store,
           "--model", str(model_dir), "--data", str(data_dir), "--port", str(port), *args]
    base = f"http://127.0.0.1:{port}"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("the desk stopped: " + Path(log_file).read_text(errors="replace")[-2000:])
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                        if r.status == 200 and (not warm or json.load(r).get("warm")):
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the desk did not come up in {timeout:.0f} s")
                time.sleep(0.3)
            url = Served(base)
            url.pid = proc.pid
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
