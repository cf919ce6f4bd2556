"""Batch scoring: chunks of transactions scored by the scorer the online API uses, each chunk's
scores and log rows written in a thread while the next chunk is scored (at most two chunks in
memory). One lookup of each distinct entity, one forward pass and two commits per chunk."""

import concurrent.futures
import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from serving import heap
from serving.prediction_log import prediction_rows
from serving.scoring import DECISIONS, Scorer

SCORE_COLUMNS = ["transaction_id", "event_timestamp", "day", "scored_at", "model_version",
                 "score", "decision", "reasons"]  # fmt: skip

# write(log rows or None for none, replace): `replace` on the first chunk, so that a re-run
# replaces the partition's earlier rows instead of adding to them.
Writer = Callable[[pa.Table | None, bool], None]


@dataclass
class BatchOutcome:
    rows: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    scoring_s: float = 0.0


def score_chunks(
    scorer: Scorer,
    chunks: Iterable[pa.Table],
    write: Writer,
    as_of: dt.datetime | None = None,
    on_chunk: Callable[[int, int], None] = lambda index, rows: None,
) -> BatchOutcome:
    """Score every chunk and write its log rows; nothing to score still writes (replacing the
    earlier rows with none). A failed write fails the run, after the chunk being scored."""
    scored_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    outcome = BatchOutcome()
    writing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="delta-write")
    with heap.settled(), writing as writer:
        written = None
        for index, chunk in enumerate(chunks):
            scored = scorer.score(chunk, as_of)
            for decision in DECISIONS:
                count = int(np.count_nonzero(scored.decisions == decision))
                outcome.decisions[decision] = outcome.decisions.get(decision, 0) + count
            if written is not None:
                written.result()  # the previous chunk's commits come first (and fail the run)
            log = prediction_rows(scored, scorer.inputs, "batch", scored_at)
            written = writer.submit(write, log, index == 0)
            outcome.rows += chunk.num_rows
            on_chunk(index, chunk.num_rows)
        if written is not None:
            written.result()
    if outcome.rows == 0:
        write(None, True)
    outcome.scoring_s = time.perf_counter() - started
    return outcome
