"""Run a command and sample the resident memory of its whole process tree (Spark's JVM too)."""

import subprocess
import threading
import time

import psutil


def run_measured(command: list[str], env: dict | None = None, interval: float = 0.1):
    """(exit code, wall seconds, peak RSS in bytes of the command and all its descendants)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    done.set()
    sampler.join()
    return code, time.perf_counter() - started, peak
