"""The training set: labels matured or known so far (weighted for reports still to come),
point-in-time features, a split that holds cards out over the newest days."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.features import feast_registry
from assets.training_set import training_set
from features.velocity import velocity_schema
from lakehouse.delta import overwrite_days, read_days
from lakehouse.training import (
    card_buckets,
    estimate_report_delay,
    holdout_split,
    labels_known_so_far,
    mature_labels,
    training_labels,
)
from resources import build_resources
from tests.support.gold import D1, D2, write_gold

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


@pytest.mark.unit
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


def _population(seed: int, days: int, per_day: int, fraud_rate: float, cutoff: dt.datetime):
    """Transactions over `days` before `cutoff`, frauds reported after a lognormal delay (median
    12 days, as the simulator's) capped at 45: the labels table as of the cut-off, and the
    truth (which transactions are frauds)."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    times = [cutoff - dt.timedelta(seconds=float(s)) for s in rng.uniform(0, days * 86400, n)]
    fraud = rng.random(n) < fraud_rate
    delay = np.clip(rng.lognormal(np.log(12), 0.7, n), 1, 44.99)
    reported = [
        t + dt.timedelta(days=float(d)) if f and t + dt.timedelta(days=float(d)) <= cutoff else None
        for t, d, f in zip(times, delay, fraud, strict=True)
    ]
    labels = _labels(
        [(f"t{i}", t, r) for i, (t, r) in enumerate(zip(times, reported, strict=True))]
    )
    return labels, dict(zip([f"t{i}" for i in range(n)], fraud, strict=True))


@pytest.mark.unit
def test_known_labels_weighted_by_the_report_delay_recover_the_true_fraud_rate_of_recent_days():
    """Ground truth: the newest 30 days hold 2% fraud; only the reports known so far are seen.
    Unweighted, recent days look almost clean; weighted, their fraud rate is the true one."""
    cutoff = _at(dt.date(2026, 6, 1), 0)
    labels, truth = _population(seed=5, days=120, per_day=600, fraud_rate=0.02, cutoff=cutoff)
    delay = estimate_report_delay(labels, cutoff, maturity_days=45)
    # the estimated delay is the simulated one: lognormal, median 12 days
    assert abs(np.median(delay.delays_s) / 86400 - 12) < 1.0
    known = labels_known_so_far(labels, cutoff, delay, min_reported_share=0.1).to_pandas()
    age_days = (cutoff - known["event_timestamp"]).dt.total_seconds() / 86400
    assert age_days.min() >= 4.5  # younger rows: fewer than a tenth of their frauds are known
    recent = known[age_days < 30]
    true_rate = np.mean([truth[t] for t in recent["transaction_id"]])
    seen_rate = recent["label"].mean()
    weighted_rate = np.average(recent["label"], weights=recent["weight"])
    assert seen_rate < 0.75 * true_rate
    assert abs(weighted_rate - true_rate) < 0.2 * true_rate
    # matured rows and unreported ones weigh 1; an early report weighs more the younger it is
    assert (known.loc[(age_days >= 45) | (known["label"] == 0), "weight"] == 1).all()
    early = known[(known["label"] == 1) & (age_days < 45)].assign(age=age_days)
    assert early["weight"].min() > 1 and early.sort_values("age")["weight"].is_monotonic_decreasing


@pytest.mark.unit
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    share=st.floats(0.05, 0.6),
    cut_hour=st.integers(0, 23),
)
def test_known_labels_never_use_a_report_or_a_transaction_after_the_cutoff(seed, share, cut_hour):
    cutoff = _at(dt.date(2026, 6, 1), cut_hour)
    labels, _ = _population(seed=seed, days=90, per_day=60, fraud_rate=0.05, cutoff=cutoff)
    later = cutoff + dt.timedelta(days=3)  # reports that arrive after the cut-off exist too
    late = _labels([("late", cutoff - dt.timedelta(days=2), later)])
    labels = pa.concat_tables([labels, late])
    known, meta = training_labels(labels, cutoff, "known_so_far", 45, share)
    rows = known.to_pandas()
    assert (
        rows["event_timestamp"] <= cutoff - dt.timedelta(days=meta["youngest_row_age_days"] - 0.1)
    ).all()
    reported_late = rows["reported_at"].notna() & (rows["reported_at"] > cutoff)
    assert (rows.loc[reported_late, "label"] == 0).all()
    assert (rows["weight"] >= 1).all() and (rows["weight"] <= 1 / share + 1e-9).all()


@pytest.mark.unit
def test_too_few_closed_windows_to_estimate_the_delay_is_a_clear_refusal():
    cutoff = _at(D3, 0)
    labels = _labels([("a", _at(D1, 3), _at(D1, 20)), ("b", _at(D2, 1), None)])
    with pytest.raises(ValueError, match="at least 30 are needed"):
        training_labels(labels, cutoff, "known_so_far", 1, 0.1)
    matured, meta = training_labels(labels, cutoff, "matured", 1, 0.1)
    assert meta == {"label_policy": "matured"} and matured["weight"].to_pylist() == [1.0]


@pytest.mark.unit
@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 47 * 24)), min_size=1, max_size=120),
    st.sampled_from([0.0, 0.15, 0.3]),
    st.sampled_from([0.0, 0.15]),
    st.sampled_from([1.0, 7.0, 35.0]),
)
def test_held_out_cards_are_recent_rows_never_trained_on_there(rows, test, validation, days):
    cards = np.array([f"card-{c}" for c, _ in rows], dtype=object)
    times = [_at(D1, 0) + dt.timedelta(hours=h) for _, h in rows]
    split = np.array(
        holdout_split(pa.chunked_array([pa.array(times, TS)]), cards, validation, test, days)
    )
    window_from = max(times) - dt.timedelta(days=days)
    in_window = np.array([t >= window_from for t in times])
    assert set(split[~in_window]) <= {"train"}  # older rows of every card train
    for card in set(cards):
        # In the window a card is in one split: a held-out card never trains there.
        assert len(set(split[(cards == card) & in_window])) <= 1
    bucket = dict(zip(cards, card_buckets(cards), strict=True))
    expected = [
        "train" if not recent else "test" if bucket[c] < test
        else "validation" if bucket[c] < test + validation else "train"
        for c, recent in zip(cards, in_window, strict=True)
    ]  # fmt: skip
    assert split.tolist() == expected


@pytest.mark.unit
def test_a_card_keeps_its_place_across_training_sets_and_shares_hold_over_many_cards():
    cards = np.array([f"card-{i}" for i in range(20_000)], dtype=object)
    buckets = card_buckets(cards)
    assert np.array_equal(card_buckets(cards[::-1]), buckets[::-1])  # not the row's position
    assert abs(np.mean(buckets < 0.3) - 0.3) < 0.02 and 0 <= buckets.min() < buckets.max() < 1
    times = pa.chunked_array([pa.array([_at(D1, 0)] * 3, TS)])
    with pytest.raises(ValueError, match="leave cards to train on"):
        holdout_split(times, cards[:3], 0.5, 0.5, 35)
    with pytest.raises(ValueError, match="holdout_days must be positive"):
        holdout_split(times, cards[:3], 0.1, 0.1, 0)


@pytest.mark.integration
def test_training_rows_get_only_features_known_before_their_time(fraud_home):
    write_gold(fraud_home)  # customer C1: day 1 features (seed 1), day 2 features (seed 2)
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
            "label_policy": "matured", "maturity_days": 1, "cutoff": _at(D3, 12).isoformat(),
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


@pytest.mark.integration
def test_velocity_joins_the_value_pushed_before_the_transaction_never_its_own(fraud_home):
    write_gold(fraud_home)
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
            "label_policy": "matured", "maturity_days": 1, "cutoff": _at(D3, 20).isoformat(),
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


@pytest.mark.integration
def test_the_duckdb_store_gives_what_feasts_file_store_gives(fraud_home):
    """The configured offline store's get_historical_features (DuckDB as-of joins) against
    Feast's file store on the same rows, to 1e-6: before any value, within and past each view's
    TTL, unknown entities, a missing device, and velocity pushes at the very row's time."""
    from features.offline import JUST_BEFORE, file_store_features, joined_at, point_in_time_join

    write_gold(fraud_home)
    pushes = [("K1", _at(D2, 9) + dt.timedelta(minutes=m), m) for m in (0, 20, 50, 55)]
    overwrite_days(str(fraud_home / "lakehouse/features/card_velocity"), _velocity(pushes), D2, D2)
    assert dg.materialize([feast_registry], resources=build_resources()).success
    store = build_resources()["feast"].store()
    rng = np.random.default_rng(3)
    start = dt.datetime.combine(D1, dt.time(), UTC)
    times = [start + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 5 * 24 * 60, 300)]
    times += [p[1] for p in pushes] + [p[1] + dt.timedelta(hours=1) for p in pushes]
    # at the very time a value becomes known: the gold rows' midnights, a push's time just after
    times += [start + dt.timedelta(days=d) for d in (1, 1, 2, 2)]
    times += [p[1] + JUST_BEFORE for p in pushes]
    n = len(times)
    rows = pd.DataFrame(
        {
            "customer_id": rng.choice(["C1", "C2", "C9"], n),
            "merchant_id": rng.choice(["M1", "M7"], n),
            "card_id": rng.choice(["K1", "K2"], n),
            "device_id": rng.choice(np.array(["D1", "D2", None], dtype=object), n),
            "merchant_country": rng.choice(["US", "FR"], n),
            "event_timestamp": times,
        }
    )
    for name in ("customer_daily", "merchant_daily", "customer_device", "customer_country",
                 "card_velocity"):  # fmt: skip
        view = store.get_feature_view(name)
        at = rows[[*view.join_keys, "event_timestamp"]]
        ours = point_in_time_join(store, at, [view]).filter(like=f"{name}__")
        at = at.assign(event_timestamp=at.event_timestamp - joined_at(view))
        feasts = file_store_features(store, at, [view])
        for column in ours.columns:
            got, want = ours[column].astype(float), feasts[column].astype(float)
            assert np.allclose(got, want, rtol=0, atol=1e-6, equal_nan=True), (name, column)
        assert ours.notna().any().all() and ours.isna().any().any(), name  # both cases seen


@pytest.mark.integration
def test_a_source_without_devices_joins_no_device_feature(fraud_home):
    """Every row without a device (a source that lacks the field): the device view's features
    are all missing, and the other views still join."""
    from features.offline import point_in_time_join

    write_gold(fraud_home)
    assert dg.materialize([feast_registry], resources=build_resources()).success
    store = build_resources()["feast"].store()
    rows = pd.DataFrame(
        {"customer_id": ["C1", "C1"], "merchant_id": ["M1", "M1"], "card_id": ["K1", "K1"],
         "device_id": [None, None], "merchant_country": ["US", "US"],
         "event_timestamp": [_at(D2, 10), _at(D3, 10)]}
    )  # fmt: skip
    views = [store.get_feature_view(name) for name in ("customer_daily", "customer_device")]
    joined = point_in_time_join(store, rows, views)
    assert joined.filter(like="customer_device__").isna().all().all()
    assert joined["customer_daily__txn_count_30d"].notna().all()


def _many_cards_labels() -> pa.Table:
    """Twelve transactions of days 1-2 on twelve cards, every third a fraud reported on day 2;
    the first one without a device."""
    rows = [
        (f"t{i:02d}", _at(D1 if i < 6 else D2, 1 + i), _at(D2, 23) if i % 3 == 0 else None)
        for i in range(12)
    ]
    labels = _labels(rows)
    labels = labels.set_column(4, "card_id", pa.array([f"K{i}" for i in range(12)]))
    devices = pa.array([None] + ["D1"] * 11, pa.string())
    return labels.set_column(labels.schema.get_field_index("device_id"), "device_id", devices)


def _build_training_set(instance, chunk_rows: int, raise_on_error: bool = True):
    return dg.materialize(
        [training_set], resources=build_resources(), instance=instance,
        run_config={"ops": {"features__training_set": {"config": {
            "label_policy": "matured", "maturity_days": 1, "cutoff": _at(D3, 23).isoformat(),
            "validation_share": 0.25, "test_share": 0.25, "holdout_days": 1.0,
            "chunk_rows": chunk_rows,
        }}}},
        raise_on_error=raise_on_error,
    )  # fmt: skip


@pytest.mark.integration
def test_a_training_set_built_in_chunks_is_the_one_built_at_once(fraud_home):
    write_gold(fraud_home)
    labels = _many_cards_labels()
    overwrite_days(str(fraud_home / "lakehouse/gold/transaction_labels"), labels, D1, D2)
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([feast_registry], resources=build_resources(), instance=instance).success
    uri = str(fraud_home / "lakehouse/features/training_set")
    built = {}
    for chunk_rows in (1000, 5, 1):
        result = _build_training_set(instance, chunk_rows)
        [check] = result.get_asset_check_evaluations()
        assert check.passed and check.metadata["rows_checked"].value == 12
        metadata = {
            k: v.value for k, v in result.asset_materializations_for_node(
                "features__training_set")[0].metadata.items()
        }  # fmt: skip
        assert metadata["chunks"] == -(-12 // chunk_rows)
        table = read_days(uri, D1, D2)
        built[chunk_rows] = (table.sort_by("transaction_id").to_pylist(), table.schema, metadata)
    whole, schema, metadata = built[1000]
    assert {r["split"] for r in whole} == {"train", "validation", "test"}
    assert sum(r["label"] for r in whole) == 4
    assert schema.field("device_id").type == pa.string()  # not null-typed by a chunk of one
    for chunk_rows in (5, 1):
        rows, chunked_schema, chunked_metadata = built[chunk_rows]
        assert rows == whole and chunked_schema == schema
        for key in ("splits", "rows_missing_a_view", "absent_fields", "feature_columns"):
            assert chunked_metadata[key] == metadata[key], key


@pytest.mark.integration
def test_a_build_that_fails_in_a_later_chunk_leaves_the_last_training_set_whole(
    fraud_home, monkeypatch
):
    from deltalake import DeltaTable

    import features.training_set as module

    write_gold(fraud_home)
    labels = _many_cards_labels()
    overwrite_days(str(fraud_home / "lakehouse/gold/transaction_labels"), labels, D1, D2)
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([feast_registry], resources=build_resources(), instance=instance).success
    assert _build_training_set(instance, 1000).success
    uri = str(fraud_home / "lakehouse/features/training_set")
    before, version = read_days(uri, D1, D2).sort_by("transaction_id"), DeltaTable(uri).version()

    join, calls = module.point_in_time_join, []

    def failing_on_the_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("the offline store went away")
        return join(*args, **kwargs)

    monkeypatch.setattr(module, "point_in_time_join", failing_on_the_third_chunk)
    assert not _build_training_set(instance, 4, raise_on_error=False).success
    assert len(calls) == 3
    assert DeltaTable(uri).version() == version  # nothing committed
    assert read_days(uri, D1, D2).sort_by("transaction_id").equals(before)
