"""A standalone Spark cluster on this machine: a master and two workers, once per test session.

Started with the pyspark wheel's own ``bin/spark-class`` (no Spark download): each
process in its own process group on free ports, everything on 127.0.0.1, workers of one
core and 1 GB each; stopped by their process group ids at the end. ``local[N]`` runs
executors inside the driver's JVM and hides shipping, serialisation and file-visibility
mistakes: the province tests run here too. Without Java the fixture fails with the
reason (``scripts/ensure-java-postgres.sh`` installs it), never skips.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """The running cluster: its master URL, the processes and their logs."""

    master_url: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: Path = Path(".")

    def executor_pids(self) -> list[int]:
        """Pids of the executor JVMs the workers launched (children of our worker processes)."""
        out = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ")
                pgid = os.getpgid(int(p.name))
            except (OSError, ProcessLookupError):
                continue
            if b"CoarseGrainedExecutorBackend" in cmd and pgid in {q.pid for q in self.procs[1:]}:
                out.append(int(p.name))
        return sorted(out)

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)  # the worker's executors are in its group
            except ProcessLookupError:
                pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def _wait_for(log: Path, text: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"spark process exited ({proc.returncode}); log {log}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"no {text!r} in {log} after {seconds:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def start_cluster(workdir: Path, workers: int = 2, memory: str = "1g") -> Cluster:
    """Start a master and ``workers`` workers of one core each; wait until all are registered."""
    from escalation_risk.spark import java_missing
    why = java_missing()
    if why:
        raise RuntimeError(f"cannot start the Spark cluster: {why} (scripts/ensure-java-postgres.sh installs it)")
    import pyspark
    home = Path(pyspark.__file__).parent
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable, SPARK_LOG_DIR=str(workdir), SPARK_NO_DAEMONIZE="1")
    spark_class = str(home / "bin" / "spark-class")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    cluster = Cluster(url, logs=workdir)
    try:
        log = workdir / "master.log"
        with open(log, "wb") as f:
            cluster.procs.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                 "--webui-port", str(free_port())], stdout=f, stderr=subprocess.STDOUT, env=env,
                start_new_session=True))
        _wait_for(log, "I have been elected leader", cluster.procs[0], 120)
        for i in range(workers):
            wdir = workdir / f"worker{i}"
            wdir.mkdir()
            with open(workdir / f"worker{i}.log", "wb") as f:
                cluster.procs.append(subprocess.Popen(
                    [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                     "--cores", "1", "--memory", memory, "--webui-port", str(free_port()), "--work-dir", str(wdir)],
                    stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        for i in range(workers):
            _wait_for(workdir / f"worker{i}.log", "Successfully registered with master", cluster.procs[i + 1], 180)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Cluster:
    """A standalone master and two one-core workers for the whole session."""
    cluster = start_cluster(tmp_path_factory.mktemp("spark-cluster"))
    yield cluster
    cluster.stop()
