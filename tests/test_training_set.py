"""The training set: matured labels only, point-in-time features, a split by time."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pytest

from assets.features import feast_registry
from assets.training_set import training_set
from assets.velocity import velocity_schema
from lakehouse.delta import overwrite_days, read_days
from lakehouse.training import mature_labels, temporal_split
from resources import build_resources
from tests.test_features import D1, D2, _write_gold

D3 = dt.date(2026, 1, 3)
UTC = dt.UTC
TS = pa.timestamp("us", tz="UTC")


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), UTC)


def _labels(rows: list[tuple[str, dt.datetime, dt.datetime | None]]) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "transaction_id": [r[0] for r in rows],
            "event_timestamp": pa.array([r[1] for r in rows], TS),
            "day": pa.array([r[1].date() for r in rows], pa.date32()),
            "customer_id": ["C1"] * n,
            "card_id": ["K1"] * n,
            "merchant_id": ["M1"] * n,
            "merchant_category": ["grocery"] * n,
            "merchant_country": ["US"] * n,
            "device_id": ["D1"] * n,
            "channel": ["pos"] * n,
            "amount_usd": [10.0] * n,
            "is_fraud": [r[2] is not None for r in rows],
            "reported_at": pa.array([r[2] for r in rows], TS),
            "reason_code": [None] * n,
            "label_delay_days": [None] * n,
        },
        schema=pa.schema(
            [("transaction_id", pa.string()), ("event_timestamp", TS), ("day", pa.date32())]
            + [
                (c, pa.string())
                for c in (
                    "customer_id",
                    "card_id",
                    "merchant_id",
                    "merchant_category",
                    "merchant_country",
                    "device_id",
                    "channel",
                )
            ]
            + [
                ("amount_usd", pa.float64()),
                ("is_fraud", pa.bool_()),
                ("reported_at", TS),
                ("reason_code", pa.string()),
                ("label_delay_days", pa.float64()),
            ]
        ),
    )


def test_a_label_matures_when_its_window_closes_an_early_report_does_not_make_it_final():
    cutoff = _at(D3, 0)
    labels = _labels(
        [
            ("reported_window_closed", _at(D1, 3), _at(D1, 20)),
            ("reported_window_open", _at(D2, 10), _at(D2, 20)),
            ("reported_too_late", _at(D1, 1), _at(D3, 5)),
            ("window_open", _at(D2, 12), None),
            ("window_closed", _at(D1, 2), None),
        ]
    )
    matured = mature_labels(labels, cutoff, maturity_days=1)
    assert dict(
        zip(*(matured.column(c).to_pylist() for c in ("transaction_id", "label")), strict=True)
    ) == {
        "reported_window_closed": 1,
        "reported_too_late": 0,  # its window closed before the cut-off and no report was known
        "window_closed": 0,
    }


def test_the_split_follows_time_and_keeps_an_instant_in_one_split():
    times = [_at(D1, h) for h in range(20)] + [_at(D2, 0)] * 5
    split = temporal_split(pa.chunked_array([pa.array(times, TS)]), 0.2, 0.2).to_pylist()
    order = {"train": 0, "validation": 1, "test": 2}
    assert [order[s] for s in split] == sorted(order[s] for s in split)
    assert set(split[-5:]) == {"test"}
    with pytest.raises(ValueError, match="leave rows to train on"):
        temporal_split(pa.chunked_array([pa.array(times, TS)]), 0.5, 0.5)


def test_training_rows_get_only_features_known_before_their_time(fraud_home):
    _write_gold(fraud_home)  # customer C1: day 1 features (seed 1), day 2 features (seed 2)
    labels = _labels(
        [
            ("before_any_feature", _at(D1, 8), None),
            ("on_day_2", _at(D2, 10), _at(D3, 1)),
            ("on_day_3", _at(D3, 9), None),
        ]
    )
    stranger = _labels([("unknown_customer", _at(D2, 11), None)])
    stranger = stranger.set_column(3, "customer_id", pa.array(["C9"]))  # never seen by gold
    labels = pa.concat_tables([labels, stranger])
    overwrite_days(str(fraud_home / "lakehouse/gold/transaction_labels"), labels, D1, D3)
    resources = build_resources()
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([feast_registry], resources=resources, instance=instance).success
    result = dg.materialize(
        [training_set],
        resources=resources,
        instance=instance,
        run_config={"ops": {"features__training_set": {"config": {
            "maturity_days": 1, "cutoff": _at(D3, 12).isoformat(),
            "validation_share": 0.0, "test_share": 0.0,
        }}}},
    )  # fmt: skip
    assert result.success
    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert [(c.check_name, c.passed) for c in checks] == [("point_in_time_correct", True)]
    rows = {
        r["transaction_id"]: r
        for r in read_days(str(fraud_home / "lakehouse/features/training_set"), D1, D3).to_pylist()
    }
    # on_day_3 has not matured; rows without features stay, with the defaults and the flag
    assert set(rows) == {"before_any_feature", "on_day_2", "unknown_customer"}
    assert rows["unknown_customer"]["customer_daily__txn_count_30d"] == 0
    assert rows["unknown_customer"]["customer_daily__missing"] is True
    assert rows["unknown_customer"]["merchant_daily__txn_count_30d"] == 4 * 10 + 2
    assert rows["unknown_customer"]["merchant_daily__missing"] is False
    # Day-2 features are known only at the end of day 2: a day-2 transaction sees day 1's.
    assert rows["on_day_2"]["customer_daily__txn_count_30d"] == 1 * 10 + 2
    assert rows["on_day_2"]["label"] == 1
    assert rows["before_any_feature"]["customer_daily__txn_count_30d"] == 0
    assert rows["before_any_feature"]["label"] == 0


def _velocity(rows: list[tuple[str, dt.datetime, int]]) -> pa.Table:
    """Card velocity history rows (card, pushed at, 10-minute count)."""
    return pa.Table.from_pylist(
        [
            {"card_id": card, "txn_count_10m": n, "txn_count_1h": n, "amount_sum_1h": n * 1.5,
             "event_timestamp": at, "day": at.date()}
            for card, at, n in rows
        ],
        schema=velocity_schema("card_id"),
    )  # fmt: skip


def test_velocity_joins_the_value_pushed_before_the_transaction_never_its_own(fraud_home):
    _write_gold(fraud_home)
    ten = _at(D2, 10)
    labels = _labels([("t_at_ten", ten, None), ("t_later", _at(D2, 13), None)])
    overwrite_days(str(fraud_home / "lakehouse/gold/transaction_labels"), labels, D2, D2)
    # 09:30 knows 5 card transactions; 10:00 is t_at_ten's own push and counts it.
    history = _velocity([("K1", ten - dt.timedelta(minutes=30), 5), ("K1", ten, 6)])
    overwrite_days(str(fraud_home / "lakehouse/features/card_velocity"), history, D2, D2)
    resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
    assert dg.materialize([feast_registry], resources=resources, instance=instance).success
    result = dg.materialize(
        [training_set], resources=resources, instance=instance,
        run_config={"ops": {"features__training_set": {"config": {
            "maturity_days": 1, "cutoff": _at(D3, 20).isoformat(),
            "validation_share": 0.0, "test_share": 0.0,
        }}}},
    )  # fmt: skip
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["violations"].value == 0
    rows = {
        r["transaction_id"]: r
        for r in read_days(str(fraud_home / "lakehouse/features/training_set"), D1, D3).to_pylist()
    }
    assert rows["t_at_ten"]["card_velocity__txn_count_10m"] == 5
    assert rows["t_at_ten"]["card_velocity__missing"] is False
    # three hours after the last push the 1-hour TTL has passed: defaults and the flag
    assert rows["t_later"]["card_velocity__txn_count_10m"] == 0
    assert rows["t_later"]["card_velocity__missing"] is True
    assert rows["t_later"]["customer_velocity__missing"] is True
