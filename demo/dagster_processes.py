"""Dagster's processes as `make demo` and the tests run them: the daemon (so that sensors and
schedules really fire) or the webserver, on this DAGSTER_HOME and workspace, stopped with
everything they started; and waiting for a run they launch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from settings.env import REPO_ROOT

FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


class DagsterProcess:
    """A Dagster command (`dagster-daemon run`, `dagster dev`, …) of the venv, run from the
    repository root in its own process group, its output in `log`; stopped with all it started."""

    def __init__(self, arguments: list[str], log: Path):
        self.arguments, self.log = arguments, log
        self._process: subprocess.Popen | None = None

    def __enter__(self):
        self.log.parent.mkdir(parents=True, exist_ok=True)
        executable = str(Path(sys.executable).parent / self.arguments[0])
        with self.log.open("ab") as out:
            # A session of its own: the process, its code server and the runs it launches stop
            # together, and a Ctrl-C of the caller reaches them through `__exit__` only.
            self._process = subprocess.Popen(
                [executable, *self.arguments[1:]], cwd=REPO_ROOT, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
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


class Daemon(DagsterProcess):
    """`dagster-daemon run` on this DAGSTER_HOME and the repository's workspace."""

    def __init__(self, log: Path):
        super().__init__(["dagster-daemon", "run", "-w", "workspace.yaml"], log)


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
