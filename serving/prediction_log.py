"""The prediction log: one row per score from every path (online, batch, stream), with what the
model read, for monitoring. A Delta table partitioned by the transaction's day."""

import datetime as dt
import json

import pyarrow as pa

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
