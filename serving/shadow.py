"""Shadow scoring: a model that scores the transactions another one answered, after the answer,
in a thread of its own, so that it never delays or changes an answer. Its scores go to the
prediction log with path `shadow` and its version (`monitoring/shadow_comparison` compares the
two). Past `max_waiting` batches waiting, new ones are dropped and counted, never queued
without bound."""

import datetime as dt
import logging
import queue
import threading

log = logging.getLogger("serving.shadow")


class ShadowScoring:
    def __init__(self, log_writer, metrics, max_waiting: int = 1000):
        self.log, self.metrics = log_writer, metrics
        self._waiting: queue.Queue = queue.Queue(max_waiting)
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def submit(self, lineup, scored) -> None:
        """Score `scored`'s batch with `lineup`'s shadow later (nothing without a shadow)."""
        if lineup.shadow is None:
            return
        try:
            self._waiting.put_nowait((lineup, scored))
        except queue.Full:
            self.metrics.shadow_dropped.inc(len(scored.scores))

    def close(self) -> None:
        """Score what waits, then stop."""
        self._waiting.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while (item := self._waiting.get()) is not None:
            lineup, scored = item
            try:
                shadowed = lineup.shadow_scores(scored)
            except Exception as error:  # a broken shadow costs its own scores, nothing else
                log.warning("shadow v%s failed to score: %s", lineup.shadow.model_version, error)
                self.metrics.shadow_dropped.inc(len(scored.scores))
                continue
            if shadowed is None:
                continue
            self.metrics.observe_scored(shadowed, "shadow")
            self.log.add_scored(shadowed, lineup.shadow.inputs, "shadow", dt.datetime.now(dt.UTC),
                                wait=False)  # fmt: skip
