"""The prediction log: one row per score from every path (online, batch, stream), with what the
model read, for monitoring. A Delta table partitioned by the transaction's day."""

import datetime as dt
import json
import logging
import threading

import pyarrow as pa

log = logging.getLogger(__name__)

PATHS = ("online", "batch", "stream")
SCHEMA = pa.schema(
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
        ("features", pa.string()),  # JSON object: every model input of the row
    ]
)


def prediction_rows(scored, inputs: list[str], path: str, scored_at: dt.datetime) -> pa.Table:
    """The log rows of a `serving.scoring.Scored` batch scored on `path`."""
    if path not in PATHS:
        raise ValueError(f"path {path!r} is not one of {PATHS}")
    frame = scored.frame
    stamps = [t.astimezone(dt.UTC) for t in frame["event_timestamp"]]
    used = frame[inputs].to_dict("records")
    return pa.table(
        {
            "transaction_id": frame["transaction_id"].tolist(),
            "event_timestamp": stamps,
            "day": [t.date() for t in stamps],
            "scored_at": [scored_at] * len(frame),
            "path": [path] * len(frame),
            "model_version": [scored.model_version] * len(frame),
            "score": scored.scores.astype("float64"),
            "decision": scored.decisions,
            "reasons": scored.reasons,
            "degraded": [scored.degraded] * len(frame),
            "features": [json.dumps(row, default=_plain) for row in used],
        },
        schema=SCHEMA,
    )


def _plain(value):
    """numpy scalars and the like, as JSON numbers or booleans."""
    return value.item() if hasattr(value, "item") else str(value)


class PredictionLogWriter:
    """Appends log rows to the Delta table in the background, one commit per `flush_s` seconds
    (or `max_rows` rows), so a request never waits on a commit. `close()` writes what is left."""

    def __init__(self, uri: str, flush_s: float = 2.0, max_rows: int = 5000):
        self.uri, self.flush_s, self.max_rows = uri, flush_s, max_rows
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def add(self, rows: pa.Table) -> None:
        with self._wake:
            self._pending.append(rows)
            self._rows += rows.num_rows
            if self._rows >= self.max_rows:
                self._wake.notify()

    def _take(self) -> pa.Table | None:
        with self._wake:
            pending, self._pending, self._rows = self._pending, [], 0
        return pa.concat_tables(pending) if pending else None

    def _write(self) -> None:
        from lakehouse.delta import append_rows

        rows = self._take()
        if rows is None:
            return
        try:
            append_rows(self.uri, rows)
        except Exception:  # the service keeps scoring; the rows are retried with the next flush
            log.exception("prediction log: %d rows not written, retrying", rows.num_rows)
            with self._wake:
                self._pending.insert(0, rows)
                self._rows += rows.num_rows

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._closed:
                    self._wake.wait(self.flush_s)
                closed = self._closed
            self._write()
            if closed:
                return

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)
