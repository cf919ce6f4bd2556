"""The prediction log: one row per score from every path (online, batch, stream), with what the
model read, for monitoring. A Delta table partitioned by the transaction's day."""

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.delta import Appender
from ml.preprocessing import row_count
from serving.journal import Journal, orphaned
from serving.metrics import ServingMetrics

log = logging.getLogger(__name__)

# `shadow`: a model that scored the same transactions after the answer was sent, never deciding
PATHS = ("online", "batch", "stream", "shadow")
# Scored batches built into rows at once: 1,500 one-row batches held the GIL ~15 ms in one go
# (a stall every request of an API worker waited out); a hundred, about one.
_BUILD_SLICE = 100
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
        ("model_ms", pa.float64()),  # the forward pass of the row's batch
        ("route", pa.string()),  # during a canary rollout: canary or stable
        ("error", pa.string()),  # why the canary did not answer (the stable version did)
    ]
)


def prediction_rows(scored, inputs: list[str], path: str, scored_at: dt.datetime) -> pa.Table:
    """The log rows of a `serving.scoring.Scored` batch scored on `path`."""
    return prediction_rows_of([(scored, scored_at)], inputs, path)


def prediction_rows_of(batches: list, inputs: list[str], path: str) -> pa.Table:
    """The log rows of several (`Scored`, scored at) batches of one path and model, built at
    once: building costs per column, so a hundred one-row batches cost about one."""
    if path not in PATHS:
        raise ValueError(f"path {path!r} is not one of {PATHS}")
    scoreds = [scored for scored, _ in batches]
    frames = [scored.frame for scored in scoreds]
    frame = _concat(frames, ["transaction_id", "event_timestamp", *inputs])
    # per row, the index of its batch: what is constant within a batch is taken from it
    batch_of = pa.array(np.repeat(np.arange(len(frames)), [row_count(f) for f in frames]))
    stamps = pc.cast(pa.array(frame["event_timestamp"]), COLUMNS.field("event_timestamp").type)
    per_batch = {
        "scored_at": pa.array([at for _, at in batches], COLUMNS.field("scored_at").type),
        "model_version": pa.array([s.model_version for s in scoreds], pa.string()),
        "degraded": pa.array([s.degraded for s in scoreds], pa.bool_()),
        "model_ms": pa.array([s.model_s * 1000 for s in scoreds], pa.float64()),
        "route": pa.array([s.route for s in scoreds], pa.string()),
        "error": pa.array([s.error for s in scoreds], pa.string()),
    }
    per_batch = {name: values.take(batch_of) for name, values in per_batch.items()}
    columns = {
        "transaction_id": pa.array(frame["transaction_id"], pa.string()),
        "event_timestamp": stamps,
        "day": pc.cast(stamps, pa.date32()),
        "scored_at": per_batch["scored_at"],
        "path": pa.repeat(pa.scalar(path), row_count(frame)),
        "model_version": per_batch["model_version"],
        "score": pa.array(np.concatenate([s.scores for s in scoreds]), pa.float64()),
        "decision": pa.array(np.concatenate([s.decisions for s in scoreds]), pa.string()),
        "reasons": pa.concat_arrays([s.reasons for s in scoreds]),
        "degraded": per_batch["degraded"],
        "model_ms": per_batch["model_ms"],
        "route": per_batch["route"],
        "error": per_batch["error"],
    }
    return pa.table({**columns, "features": features_struct(frame, inputs)})


def _concat(frames: list[dict], columns: list[str]) -> dict:
    """Scored frames (column arrays) as one, with `columns`."""
    if len(frames) == 1:
        return frames[0]
    return {c: np.concatenate([f[c] for f in frames]) for c in columns}


def features_struct(frame, inputs: list[str]) -> pa.StructArray:
    """The model's inputs of each row: flags as booleans, categories as strings, every other
    input as a double (one type per field whichever path logged it)."""
    arrays = []
    for name in inputs:
        column = frame[name]
        if column.dtype == bool:
            arrays.append(pa.array(column, pa.bool_()))
        elif column.dtype == object:
            arrays.append(pa.array(column, pa.string()))
        else:
            arrays.append(pa.array(column.astype("float64"), pa.float64()))
    if not arrays:
        return pa.array([{}] * row_count(frame), pa.struct([]))
    return pa.StructArray.from_arrays(arrays, names=inputs)


class PredictionLogWriter:
    """Appends log rows to the Delta table in the background, one commit per `flush_s` seconds
    (or once `max_rows` rows wait), so that scoring never waits on a commit. The callback given
    with rows runs once they are committed (the stream worker acknowledges its messages there).
    Scored batches given to `add_scored` are turned into rows at the commit, all at once (the
    API's one-row batches would cost milliseconds each). A failed commit is retried with the
    next flush. Past `max_pending_rows` waiting, `accepting` is False and adding blocks until
    the store takes them, unless the caller says not to wait (the API sheds load instead).

    With `journal_dir`, every batch is written to a local journal (`serving.journal`) before
    `add` returns, and the journals of dead processes found there are replayed into the table,
    each row once. With `guard`, each commit goes through it: `guard(rows, commit)` calls
    `commit` with the rows to write (the stream worker: under a lock shared by its workers, less
    the rows another worker logs). `close()` writes what is left."""

    def __init__(
        self,
        uri: str,
        flush_s: float = 2.0,
        max_rows: int = 5000,
        max_pending_rows: int = 200_000,
        journal_dir: Path | None = None,
        guard: Callable[[pa.Table, Callable[[pa.Table], None]], None] | None = None,
        metrics: ServingMetrics | None = None,
    ):
        self.uri, self.flush_s, self.max_rows = uri, flush_s, max_rows
        self.metrics = metrics or ServingMetrics.off()
        self.max_pending_rows = max_pending_rows
        # (log rows, or a (Scored, inputs, path, scored at) batch; its row count; callback)
        self._pending: list[tuple[pa.Table | tuple, int, Callable[[], None] | None]] = []
        self._rows = 0
        self._wake = threading.Condition()
        self._committing = threading.Lock()  # one commit at a time: `flush` or the thread
        self._closed = False
        self._table = Appender(uri)
        self._journal = Journal(journal_dir) if journal_dir else None
        self.guard = guard or _unguarded
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        return self._rows

    @property
    def accepting(self) -> bool:
        """False while `max_pending_rows` rows or more wait for the store."""
        return self._rows < self.max_pending_rows

    def add(self, rows: pa.Table, on_written: Callable[[], None] | None = None) -> None:
        self._add(rows, rows.num_rows, on_written, wait=True)

    def add_scored(
        self,
        scored,
        inputs: list[str],
        path: str,
        scored_at: dt.datetime,
        on_written: Callable[[], None] | None = None,
        wait: bool = True,
    ) -> None:
        """A `serving.scoring.Scored` batch, logged as `prediction_rows` would; `wait=False`
        adds it even past `max_pending_rows` (the caller checked `accepting`)."""
        if path not in PATHS:
            raise ValueError(f"path {path!r} is not one of {PATHS}")
        item = (scored, tuple(inputs), path, scored_at)
        self._add(item, row_count(scored.frame), on_written, wait)

    def _add(self, item, rows: int, on_written, wait: bool) -> None:
        with self._wake:
            while wait and self._rows >= self.max_pending_rows and not self._closed:
                self._wake.wait()
            if self._journal is not None:
                self._journal.append(item)
            self._pending.append((item, rows, on_written))
            self._rows += rows
            if self._rows >= self.max_rows:
                self._wake.notify_all()

    def flush(self) -> bool:
        """Commit what waits now (and replay dead processes' journals); False if a commit
        failed (its rows wait for the next one)."""
        with self._committing:
            return self._replay_orphans() & self._write()

    def _write(self) -> bool:
        with self._wake:
            pending = self._pending[:]
            covered = self._journal.roll() if self._journal and pending else None
        self.metrics.log_pending.set(self._rows)
        if not pending:
            return True
        transaction = (self._journal.app_id, covered) if covered is not None else None

        def commit(rows: pa.Table) -> None:
            if rows.num_rows or transaction is not None:
                self._table.append(rows, evolve_schema=True, transaction=transaction)

        started = time.perf_counter()
        try:
            self.guard(_rows_of(pending), commit)
        except Exception:  # scoring goes on; the rows are retried with the next flush
            log.exception("prediction log: %d batches not written, retrying", len(pending))
            return False
        self.metrics.log_commit.observe(time.perf_counter() - started)
        if covered is not None:
            self._journal.release(covered)
        with self._wake:
            del self._pending[: len(pending)]
            self._rows -= sum(rows for _, rows, _ in pending)
            self._wake.notify_all()
        self.metrics.log_pending.set(self._rows)
        for _, _, on_written in pending:
            try:
                if on_written is not None:
                    on_written()
            except Exception:  # e.g. an ack lost: the message comes back and is found logged
                log.exception("prediction log: a callback after a commit failed")
        return True

    def _replay_orphans(self) -> bool:
        """Commit the records of dead processes' journals the table does not hold yet."""
        if self._journal is None:
            return True
        with orphaned(self._journal.directory) as orphans:
            for orphan in orphans:
                try:
                    done = self._table.transaction_version(orphan.app_id)
                    items = [
                        (item, 0, None)
                        for item in orphan.records(after=-1 if done is None else done)
                    ]
                    if items:
                        last = orphan.segments()[-1][0]
                        self._table.append(
                            _rows_of(items), evolve_schema=True, transaction=(orphan.app_id, last)
                        )
                        log.warning(
                            "prediction log: %d batches of a stopped process's journal replayed",
                            len(items),
                        )
                    orphan.remove()
                except Exception:
                    log.exception(
                        "prediction log: journal %s not replayed, retrying", orphan.app_id
                    )
                    return False
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
        if self._journal is not None:
            self._journal.close()


def _unguarded(rows: pa.Table, commit: Callable[[pa.Table], None]) -> None:
    commit(rows)


def _rows_of(pending: list) -> pa.Table:
    """One table of the writer's pending items: tables as they are, scored batches built
    together per path and model inputs."""
    tables, batches = [], {}
    for item, _, _ in pending:
        if isinstance(item, pa.Table):
            tables.append(item)
        else:
            scored, inputs, path, scored_at = item
            batches.setdefault((path, inputs), []).append((scored, scored_at))
    for (path, inputs), group in batches.items():
        for start in range(0, len(group), _BUILD_SLICE):
            tables.append(
                prediction_rows_of(group[start : start + _BUILD_SLICE], list(inputs), path)
            )
            time.sleep(0)  # the GIL to the server's threads between slices
    return pa.concat_tables(tables, promote_options="permissive")
