"""The missed-fraud signal read from the lakehouse: reports known by the day's end, each fraud
card once, first-party disputes left out of the window and of the reference alike."""

import datetime as dt

import pyarrow as pa
import pytest

from monitoring.drift_policy import DriftPolicy
from monitoring.windows import missed_fraud_counts
from resources.lakehouse import LakehouseResource

pytestmark = pytest.mark.unit
DAY = dt.date(2026, 5, 20)
UTC = dt.UTC
TS = pa.timestamp("us", tz="UTC")


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), UTC)


def _write(lakehouse: LakehouseResource, layer: str, table: str, rows: list[dict], schema):
    data = pa.Table.from_pylist(rows, schema=schema)
    days = [row["day"] for row in rows]
    lakehouse.overwrite(layer, table, data, min(days), max(days))


LABELS = pa.schema(
    [("transaction_id", pa.string()), ("day", pa.date32()), ("card_id", pa.string()),
     ("reported_at", TS), ("reason_code", pa.string())]
)  # fmt: skip
LOG = pa.schema(
    [("transaction_id", pa.string()), ("day", pa.date32()), ("path", pa.string()),
     ("model_version", pa.string()), ("score", pa.float64()), ("degraded", pa.bool_())]
)  # fmt: skip


def test_first_party_disputes_and_reports_after_the_day_are_notmissed_fraud_counts(tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path / "lake"), landing=str(tmp_path / "landing"))
    reference_day = DAY - dt.timedelta(days=40)
    # (id, card, score, reported at, reason): the window's transactions, all scored by v3.
    window = [
        ("caught", "c1", 0.9, _at(DAY, 8), "card_not_present"),
        ("missed", "c2", 0.1, _at(DAY, 9), "card_not_present"),
        ("missed-again", "c2", 0.2, _at(DAY, 9), "card_not_present"),
        ("friendly", "c3", 0.05, _at(DAY, 10), "not_recognised"),
        ("reported-tomorrow", "c4", 0.1, _at(DAY + dt.timedelta(days=1), 1), "counterfeit"),
        ("legitimate", "c5", 0.01, None, None),
        ("before-the-window", "c6", 0.1, _at(DAY, 11), "counterfeit"),
        ("store-down", "c7", 0.02, _at(DAY, 12), "counterfeit"),  # scored degraded
    ]
    days = {tid: DAY - dt.timedelta(days=1) for tid, *_ in window}
    days["before-the-window"] = DAY - dt.timedelta(days=7)  # the default window is 7 days
    _write(lakehouse, "gold", "transaction_labels", [
        {"transaction_id": t, "day": days[t], "card_id": c, "reported_at": at, "reason_code": why}
        for t, c, _, at, why in window
    ] + [
        {"transaction_id": "ref-friendly", "day": reference_day, "card_id": "r3",
         "reported_at": _at(reference_day, 5), "reason_code": "not_recognised"},
        {"transaction_id": "ref-missed", "day": reference_day, "card_id": "r2",
         "reported_at": _at(reference_day, 5), "reason_code": "counterfeit"},
    ], LABELS)  # fmt: skip
    _write(lakehouse, "monitoring", "prediction_log", [
        {"transaction_id": t, "day": days[t], "path": "online", "model_version": "3",
         "score": s, "degraded": t == "store-down"}
        for t, _, s, *_ in window
    ] + [{"transaction_id": "caught", "day": days["caught"], "path": "online",
          "model_version": "2", "score": 0.0, "degraded": False},
         {"transaction_id": "missed", "day": days["missed"], "path": "shadow",
          "model_version": "3", "score": 0.99, "degraded": False}], LOG)  # fmt: skip
    reference = pa.table({
        "transaction_id": ["ref-caught", "ref-missed", "ref-friendly", "ref-legit"],
        "day": pa.array([reference_day] * 4, pa.date32()),
        "card_id": ["r1", "r2", "r3", "r4"],
        "label": [1, 1, 1, 0],
        "score": [0.95, 0.2, 0.1, 0.01],
    })  # fmt: skip

    found = missed_fraud_counts(lakehouse, DAY, "3", reference, DriftPolicy())
    # c1 caught, c2 missed (twice, one card; v3's high score of `missed` as a shadow decided
    # nothing); c3 a first-party dispute; c4 reported after the day's end; c6 before the
    # window; c7 scored while the store was down (no judge of the model). The reference: r1
    # caught, r2 missed, r3 first-party.
    assert (found.cards, found.missed) == (2, 1)
    assert (found.reference_cards, found.reference_missed) == (2, 1)

    everything = DriftPolicy(first_party_reason_codes=())
    found = missed_fraud_counts(lakehouse, DAY, "3", reference, everything)
    assert (found.cards, found.missed) == (3, 2)
    assert (found.reference_cards, found.reference_missed) == (3, 2)


def test_no_labels_table_yet_counts_the_reference_alone(tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path / "lake"), landing=str(tmp_path / "landing"))
    reference = pa.table({
        "transaction_id": ["a", "b"], "day": pa.array([DAY, DAY], pa.date32()),
        "card_id": ["r1", "r2"], "label": [1, 1], "score": [0.9, 0.1],
    })  # fmt: skip
    found = missed_fraud_counts(lakehouse, DAY, "1", reference, DriftPolicy())
    counts = (found.cards, found.missed, found.reference_cards, found.reference_missed)
    assert counts == (0, 0, 2, 1)
