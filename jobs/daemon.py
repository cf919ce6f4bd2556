"""The Dagster daemon as `make demo` runs it: started on this DAGSTER_HOME and workspace, so that
sensors and schedules really fire, and stopped with everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from resources.settings import REPO_ROOT

FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


class Daemon:
    """`dagster-daemon run` in its own process group, its output in `log`."""

    def __init__(self, log: Path):
        self.log = log
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> Daemon:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(Path(sys.executable).parent / "dagster-daemon"),
            "run",
            "-w",
            "workspace.yaml",
        ]
        with self.log.open("ab") as out:
            # A session of its own: the daemon, its code server and the runs it launches stop
            # together, and a Ctrl-C of the demo reaches them through `__exit__` only.
            self._process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __exit__(self, *exc) -> None:
        if not self.alive():
            return
        group = os.getpgid(self._process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self._process.wait()


def wait_for_run(
    instance: dg.DagsterInstance,
    job_name: str,
    tags: dict[str, str],
    timeout_s: float,
    daemon: Daemon,
    progress: Callable[[str], None] = print,
) -> dg.DagsterRun | None:
    """The newest run of `job_name` with `tags` once it has finished; None past `timeout_s`
    (or when the daemon has died). `progress` hears each change of its state."""
    deadline = time.monotonic() + timeout_s
    last_said = None
    while time.monotonic() < deadline and daemon.alive():
        runs = instance.get_runs(dg.RunsFilter(job_name=job_name, tags=tags), limit=1)
        state = f"{job_name} {runs[0].run_id[:8]}: {runs[0].status.value}" if runs else None
        if state and state != last_said:
            progress(state)
            last_said = state
        if runs and runs[0].status in FINISHED:
            return runs[0]
        time.sleep(2)
    return None
