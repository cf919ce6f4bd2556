"""Shadow scoring: a model that scores the transactions another one answered, after the answer,
in a thread of its own, off the answer's path: it never changes an answer, and no answer waits
for it (it does share the CPU). Its scores go to the prediction log with path `shadow` and its
version (`monitoring/shadow_comparison` compares the two). The batches waiting when the thread
comes round, every `gather_s` (0.5 s), are scored together (one forward pass and one set of log
rows, where the API's batches are often one transaction each), with the rules' reason codes
(its reasons answer no one). Past `max_waiting` batches waiting, new ones are dropped and
counted, never queued without bound."""

import dataclasses
import datetime as dt
import logging
import queue
import threading
import time

import numpy as np
import pyarrow as pa

log = logging.getLogger("serving.shadow")
TOGETHER = 1024  # waiting batches scored in one pass, at most


class ShadowScoring:
    def __init__(self, log_writer, metrics, max_waiting: int = 5000, gather_s: float = 0.5):
        self.log, self.metrics, self.gather_s = log_writer, metrics, gather_s
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
        closing = False
        while not closing:
            items = [self._waiting.get()]
            if items[0] is not None:
                time.sleep(self.gather_s)  # the batches of the next moments, in one pass
            while len(items) < TOGETHER and not self._waiting.empty():
                items.append(self._waiting.get_nowait())
            closing = None in items
            waiting = [item for item in items if item is not None]
            try:
                groups = _together(waiting)
            except Exception:  # batches that cannot be put together are scored one by one
                log.exception("shadow: %d batches scored one by one", len(waiting))
                groups = waiting
            for lineup, scored in groups:
                self._score(lineup, scored)

    def _score(self, lineup, scored) -> None:
        try:
            shadowed = lineup.shadow_scores(scored)
        except Exception as error:  # a broken shadow costs its own scores, nothing else
            log.warning("shadow v%s failed to score: %s", lineup.shadow.model_version, error)
            self.metrics.shadow_dropped.inc(len(scored.scores))
            return
        if shadowed is None:
            return
        self.metrics.observe_scored(shadowed, "shadow")
        self.log.add_scored(shadowed, lineup.shadow.inputs, "shadow", dt.datetime.now(dt.UTC),
                            wait=False)  # fmt: skip


def _together(items: list) -> list:
    """The batches as (lineup, scored) groups of one shadow, one answering version and one
    degradation, each group's features as one frame."""
    groups: dict = {}
    for lineup, scored in items:
        key = (id(lineup.shadow), scored.model_version, scored.degraded_by, tuple(scored.frame))
        groups.setdefault(key, (lineup, []))[1].append(scored)
    merged = []
    for lineup, batch in groups.values():
        first = batch[0]
        if len(batch) > 1:
            frame = {name: np.concatenate([s.frame[name] for s in batch]) for name in first.frame}
            first = dataclasses.replace(
                first, frame=frame, scores=np.concatenate([s.scores for s in batch]),
                decisions=np.concatenate([s.decisions for s in batch]),
                reasons=pa.concat_arrays([s.reasons for s in batch]),
            )  # fmt: skip
        merged.append((lineup, first))
    return merged
