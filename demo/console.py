"""What the person running the demo sees: numbered stages with their times on the terminal,
while everything else the process and its children write goes to the log."""

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class Console:
    """Lines for the person running the demo: on the terminal, and in the log for context."""

    def __init__(self, *streams: TextIO):
        self.streams = streams

    def print(self, line: str = "") -> None:
        for stream in self.streams:
            print(line, file=stream, flush=True)


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[Console]:
    """File descriptors 1 and 2 into `log` (this process's prints, warnings and logging, and
    what Spark's JVM, dbt and every child process write); a Console that still reaches the
    terminal (and the log). Both are restored on exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    try:
        yield Console(terminal, sys.stdout)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in zip((1, 2), saved, strict=True):
            os.dup2(original, fd)
            os.close(original)
        terminal.close()


class Stages:
    """Numbered stages, each with its wall time, for the summary."""

    def __init__(self, total: int, console: Console):
        self.total, self.number, self.timings = total, 0, []
        self.console = console
        self._started = time.perf_counter()
        self._name: str | None = None

    def next(self, name: str) -> None:
        self._close()
        self.number += 1
        self._name = name
        self._started = time.perf_counter()
        self.console.print(f"[{self.number}/{self.total}] {name}")

    def say(self, line: str) -> None:
        self.console.print(f"      {line}")

    @property
    def current(self) -> str:
        return f"stage {self.number}/{self.total} ({self._name})" if self._name else "the start"

    def _close(self) -> None:
        if self._name is not None:
            self.timings.append(time.perf_counter() - self._started)
            self._name = None

    def report(self) -> str:
        self._close()
        return "stage times: " + ", ".join(
            f"[{number}] {seconds:.0f} s" for number, seconds in enumerate(self.timings, 1)
        )
