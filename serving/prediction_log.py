"""The prediction log: one row per score from every path (online, batch, stream), with what the
model read, for monitoring. A Delta table partitioned by the transaction's day."""

import datetime as dt
import logging
import threading
from collections.abc import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

PATHS = ("online", "batch", "stream")
# Every column but `features`, a struct of the model's inputs whose fields follow the model
# (a new model's new inputs are added to the table's schema when it first logs them).
COLUMNS = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("day", pa.date32()),
        ("scored_at", pa.timestamp("us", tz="UTC")),
        ("path", pa.string()),
        ("model_version", pa.string()),
        ("score", pa.float64()),
        ("decision", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("degraded", pa.bool_()),
    ]
)


def prediction_rows(scored, inputs: list[str], path: str, scored_at: dt.datetime) -> pa.Table:
    """The log rows of a `serving.scoring.Scored` batch scored on `path`."""
    if path not in PATHS:
        raise ValueError(f"path {path!r} is not one of {PATHS}")
    frame, n = scored.frame, len(scored.frame)
    stamps = pc.cast(pa.array(frame["event_timestamp"]), COLUMNS.field("event_timestamp").type)
    columns = {
        "transaction_id": pa.array(frame["transaction_id"], pa.string()),
        "event_timestamp": stamps,
        "day": pc.cast(stamps, pa.date32()),
        "scored_at": pa.repeat(pa.scalar(scored_at, COLUMNS.field("scored_at").type), n),
        "path": pa.repeat(pa.scalar(path), n),
        "model_version": pa.repeat(pa.scalar(scored.model_version), n),
        "score": pa.array(scored.scores, pa.float64()),
        "decision": pa.array(scored.decisions, pa.string()),
        "reasons": scored.reasons,
        "degraded": pa.repeat(pa.scalar(scored.degraded), n),
    }
    return pa.table({**columns, "features": features_struct(frame, inputs)})


def features_struct(frame, inputs: list[str]) -> pa.StructArray:
    """The model's inputs of each row: flags as booleans, categories as strings, every other
    input as a double (one type per field whichever path logged it)."""
    arrays = []
    for name in inputs:
        column = frame[name]
        if column.dtype == bool:
            arrays.append(pa.array(column, pa.bool_()))
        elif column.dtype == object or isinstance(column.dtype, pd.StringDtype):
            arrays.append(pa.array(column, pa.string()))
        else:
            arrays.append(pa.array(column.astype("float64"), pa.float64()))
    if not arrays:
        return pa.array([{}] * len(frame), pa.struct([]))
    return pa.StructArray.from_arrays(arrays, names=inputs)


class PredictionLogWriter:
    """Appends log rows to the Delta table in the background, one commit per `flush_s` seconds
    (or once `max_rows` rows wait), so that scoring never waits on a commit. The callback given
    with rows runs once they are committed (the stream worker acknowledges its messages there).
    A failed commit is retried with the next flush; past `max_pending_rows` waiting, `add`
    blocks until the store takes them. `close()` writes what is left."""

    def __init__(
        self,
        uri: str,
        flush_s: float = 2.0,
        max_rows: int = 5000,
        max_pending_rows: int = 200_000,
    ):
        self.uri, self.flush_s, self.max_rows = uri, flush_s, max_rows
        self.max_pending_rows = max_pending_rows
        self._pending: list[tuple[pa.Table, Callable[[], None] | None]] = []
        self._rows = 0
        self._wake = threading.Condition()
        self._committing = threading.Lock()  # one commit at a time: `flush` or the thread
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def add(self, rows: pa.Table, on_written: Callable[[], None] | None = None) -> None:
        with self._wake:
            while self._rows >= self.max_pending_rows and not self._closed:
                self._wake.wait()
            self._pending.append((rows, on_written))
            self._rows += rows.num_rows
            if self._rows >= self.max_rows:
                self._wake.notify_all()

    def flush(self) -> bool:
        """Commit what waits now; False if the commit failed (the rows wait for the next one)."""
        with self._committing:
            return self._write()

    def _write(self) -> bool:
        from lakehouse.delta import append_rows

        with self._wake:
            pending = self._pending[:]
        if not pending:
            return True
        try:
            append_rows(self.uri, pa.concat_tables([t for t, _ in pending]), evolve_schema=True)
        except Exception:  # scoring goes on; the rows are retried with the next flush
            log.exception("prediction log: %d batches not written, retrying", len(pending))
            return False
        with self._wake:
            del self._pending[: len(pending)]
            self._rows -= sum(t.num_rows for t, _ in pending)
            self._wake.notify_all()
        for _, on_written in pending:
            try:
                if on_written is not None:
                    on_written()
            except Exception:  # e.g. an ack lost: the message comes back and is found logged
                log.exception("prediction log: a callback after a commit failed")
        return True

    def _run(self) -> None:
        failed = False
        while True:
            with self._wake:
                if not self._closed and (failed or self._rows < self.max_rows):
                    self._wake.wait(self.flush_s)
                closed = self._closed
            failed = not self.flush()
            if closed:
                return

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout=30)
