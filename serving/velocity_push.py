"""Where the stream worker's velocity features go: Feast's push sources, written in-process
(`InlinePush`) or by a child process (`BackgroundPush`), so that Feast's per-row cost of a push
(~45 us a row) runs beside the scoring loop instead of inside it."""

import atexit
import logging
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable

import pandas as pd

log = logging.getLogger(__name__)

# A push function: (push source name, rows with the entity key, event_timestamp and features).
Push = Callable[[str, pd.DataFrame], None]


class InlinePush:
    """Pushes each batch's rows before returning (tests, and a worker on a quiet stream)."""

    def __init__(self, push: Push):
        self._push = push

    def push(self, source: str, rows: list[dict]) -> None:
        self._push(source, pd.DataFrame(rows))

    def wait_ready(self, timeout_s: float = 0) -> None:
        pass

    def close(self) -> None:
        pass


class BackgroundPush:
    """Pushes from a child process: rows sent while a push is in flight wait, merged by entity
    (only the newest row of an entity is kept: the online store holds one), and go together with
    the next push. Under load pushes grow instead of queueing; the online values trail the
    worker by about one push."""

    def __init__(self, open_push: Callable[[], Push], entity_keys: dict[str, str]):
        context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
        self._queue = context.Queue(maxsize=1000)
        self._ready = context.Event()
        self._process = context.Process(
            target=_push_forever,
            args=(self._queue, self._ready, open_push, entity_keys, os.getpid()),
            name="velocity-push",
            daemon=True,
        )
        self._process.start()
        # The child ignores SIGTERM, which is all multiprocessing's own exit hook sends before
        # it joins its children for ever: a worker leaving without `close` (an error) would hang.
        # Hooks run last-registered first, so this one kills the child before that join.
        atexit.register(self._kill_child)

    def push(self, source: str, rows: list[dict]) -> None:
        self._queue.put((source, rows))

    def wait_ready(self, timeout_s: float = 120) -> None:
        """Until the child has opened the feature store (its imports take seconds)."""
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"velocity push: the child was not ready in {timeout_s:g} s")

    def close(self, timeout_s: float = 60) -> None:
        """Push what was sent, then stop the child."""
        self._queue.put(None)
        self._process.join(timeout_s)
        if self._process.is_alive():
            log.warning("velocity push: child still busy after %.0f s; killed", timeout_s)
        self._kill_child()
        # Rows the child will never read must not hold this process's exit (a full pipe).
        self._queue.cancel_join_thread()

    def _kill_child(self) -> None:
        if self._process.is_alive():
            self._process.kill()  # SIGKILL: the child ignores SIGTERM
            self._process.join(10)


def _push_forever(
    updates, ready, open_push: Callable[[], Push], entity_keys: dict, parent: int
) -> None:
    # Stopped by its worker (after the last rows), not by the signals sent to the worker's group.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    push = open_push()
    ready.set()
    while True:
        try:
            first = updates.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the worker died (SIGKILL): nothing more will come
                return
            continue
        newest: dict[str, dict] = {}  # per source: entity -> its newest row
        stop = _merge(newest, first, entity_keys)
        while not stop:
            try:
                stop = _merge(newest, updates.get_nowait(), entity_keys)
            except queue.Empty:
                break
        for source, rows in newest.items():
            try:
                push(source, pd.DataFrame(list(rows.values())))
            except Exception:  # velocity goes stale for a moment; scoring goes on
                log.exception("velocity push to %s failed (%d rows)", source, len(rows))
        if stop:
            return


def _merge(newest: dict, update, entity_keys: dict) -> bool:
    """Add one update (or the stop mark, None: returns True) to the newest rows per entity."""
    if update is None:
        return True
    source, rows = update
    key, merged = entity_keys[source], newest.setdefault(source, {})
    for row in rows:  # in time order: a later row of an entity replaces its earlier one
        merged[row[key]] = row
    return False
