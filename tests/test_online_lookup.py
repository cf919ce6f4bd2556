"""The project's online lookup path and the freshness check, on SQLite and on Redis: defaults and
a flag for unknown or stale entities, pushed velocity values, stale online stores."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.features import feast_registry, online_store, online_store_fresh
from assets.partitions import range_tags
from demo.services import flush_redis_db
from features.lookup import OnlineFeatures
from resources import build_resources
from tests.support.gold import D1, D2, write_gold
from tests.support.online_store import REDIS_TEST_DB

NOW = dt.datetime.now(dt.UTC)
RECENT = (NOW.date() - dt.timedelta(days=2), NOW.date() - dt.timedelta(days=1))
ROW = {"customer_id": "C1", "merchant_id": "M1", "card_id": "K1", "device_id": "D1",
       "merchant_country": "US"}  # fmt: skip
STRANGER = {**ROW, "customer_id": "nobody", "card_id": "K9"}


def _online_store_run(days):
    """Registry, then the online store for `days` with its freshness check."""
    resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
    assert dg.materialize([feast_registry], resources=resources, instance=instance).success
    return dg.materialize(
        [online_store, online_store_fresh],
        resources=resources,
        instance=instance,
        tags=range_tags(*days),
    )


def _freshness(result):
    return next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "fresh_within_ttl"
    )


@pytest.fixture
def fresh(fraud_home, online_kind):
    """Gold features of the last two days, materialized online."""
    write_gold(fraud_home, days=RECENT)
    assert _online_store_run(RECENT).success
    return build_resources()["feast"].store()


def _push(store, entity: str, key: str, at: dt.datetime, count: int) -> None:
    from feast.data_source import PushMode

    rows = pd.DataFrame(
        {
            f"{entity}_id": [key],
            "txn_count_10m": [count],
            "txn_count_1h": [count * 2],
            "amount_sum_1h": [count * 10.5],
            "event_timestamp": [at],
        }
    )
    store.push(f"{entity}_velocity_push", rows, to=PushMode.ONLINE)


def _lists(looked_up: dict) -> dict[str, list]:
    return {column: values.tolist() for column, values in looked_up.items()}


@pytest.mark.integration
def test_known_entities_get_their_newest_values_unknown_ones_defaults_and_a_flag(fresh):
    lookup = OnlineFeatures.for_service(fresh, "fraud_model_v1")
    rows = [ROW, STRANGER, {**ROW, "device_id": "D2"}, {**ROW, "device_id": None}]
    got = _lists(lookup.lookup(rows))
    assert len(lookup.columns) == 45 and set(got) == {*lookup.columns, *lookup.flags}
    assert got["customer_daily__txn_count_30d"] == [2 * 10 + 2, 0, 2 * 10 + 2, 2 * 10 + 2]
    c1_max = pytest.approx(2 + 4 / 8)
    assert got["customer_daily__amount_max_30d"] == [c1_max, 0.0, c1_max, c1_max]
    assert got["customer_daily__missing"] == [False, True, False, False]
    assert got["merchant_daily__fraud_rate_30d"] == [pytest.approx(5 + 1 / 8)] * 4
    assert got["merchant_daily__missing"] == [False] * 4
    # (customer, device): C1 knows D1, not D2 nor "no device"; nobody knows nothing
    assert got["customer_device__txn_count_30d"] == [7 * 10, 0, 0, 0]
    assert got["customer_device__missing"] == [False, True, True, True]
    assert got["customer_country__missing"] == [False, True, False, False]
    assert got["card_velocity__txn_count_1h"] == [0] * 4  # nothing pushed yet
    assert got["card_velocity__missing"] == [True] * 4
    # no report history: no counts, and the longest "days since" there is
    assert got["merchant_fraud_reports__fraud_reports_decayed_7d"] == [0.0] * 4
    assert got["merchant_fraud_reports__days_since_report"] == [60.0] * 4
    assert got["merchant_fraud_reports__missing"] == [True] * 4


@pytest.mark.integration
def test_values_older_than_the_ttl_read_as_missing(fresh):
    lookup = OnlineFeatures.for_service(fresh, "fraud_model_v1")
    # C1's newest daily value is stamped today 00:00; two days later (the TTL) it is stale.
    later = _lists(lookup.lookup([ROW], as_of=NOW + dt.timedelta(days=2, hours=1)))
    assert later["customer_daily__missing"] == [True]
    assert later["customer_daily__txn_count_30d"] == [0]
    assert lookup.lookup([ROW])["customer_daily__missing"].tolist() == [False]


@pytest.mark.integration
def test_pushed_velocity_values_are_read_back_until_their_ttl_passes(fresh):
    lookup = OnlineFeatures.for_service(fresh, "fraud_model_v1")
    _push(fresh, "card", "K1", NOW - dt.timedelta(minutes=5), count=3)
    _push(fresh, "customer", "C1", NOW - dt.timedelta(hours=2), count=4)  # older than 1 h TTL
    got = _lists(lookup.lookup([ROW]))
    assert got["card_velocity__txn_count_10m"] == [3]
    assert got["card_velocity__amount_sum_1h"] == [pytest.approx(31.5)]
    assert got["card_velocity__missing"] == [False]
    assert got["customer_velocity__txn_count_10m"] == [0]
    assert got["customer_velocity__missing"] == [True]
    _push(fresh, "card", "K1", NOW - dt.timedelta(minutes=1), count=5)
    assert lookup.lookup([ROW])["card_velocity__txn_count_10m"].tolist() == [5]


@pytest.mark.integration
def test_a_remembering_lookup_reads_each_entity_once_and_answers_as_the_store_did(fresh):
    plain = OnlineFeatures.for_service(fresh, "fraud_model_v1")
    batch = OnlineFeatures.for_service(fresh, "fraud_model_v1", remember=True)
    _push(fresh, "card", "K1", NOW - dt.timedelta(minutes=5), count=3)
    first = [ROW, STRANGER, ROW]
    assert _lists(batch.lookup(first)) == _lists(plain.lookup(first))
    read = []
    store_reader = batch._reader._reader
    real_read = store_reader.read
    store_reader.read = lambda uniques: read.append(uniques) or real_read(uniques)
    _push(fresh, "card", "K1", NOW - dt.timedelta(minutes=1), count=5)  # after the run began
    second = [STRANGER, {**ROW, "customer_id": "C2"}, ROW]
    got = _lists(batch.lookup(second))
    assert [u[("customer_id",)] for u in read] == [["C2"]]  # C1 and nobody came from memory
    assert got["card_velocity__txn_count_10m"] == [0, 3, 3]  # K1 as the run first read it
    assert plain.lookup([ROW])["card_velocity__txn_count_10m"].tolist() == [5]


@pytest.mark.integration
def test_a_store_that_answers_but_holds_nothing_is_told_apart(fresh, online_kind, fraud_home):
    for remember in (False, True):
        assert OnlineFeatures.for_service(fresh, "fraud_model_v1", remember).holds_any()
    if online_kind == "redis":  # restarted without its data
        flush_redis_db(REDIS_TEST_DB)
    else:  # every table emptied
        import sqlite3

        with sqlite3.connect(fraud_home / "feast" / "online_store.db") as store:
            tables = store.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            for (table,) in tables.fetchall():
                store.execute(f'DELETE FROM "{table}"')
    emptied = OnlineFeatures.for_service(build_resources()["feast"].store(), "fraud_model_v1")
    assert not emptied.holds_any()
    assert emptied.lookup([ROW])["customer_daily__missing"].tolist() == [True]  # it answers


@pytest.mark.integration
def test_a_row_without_a_join_key_is_refused_with_the_key_named(fresh):
    lookup = OnlineFeatures.for_service(fresh, "fraud_model_v1")
    with pytest.raises(ValueError, match="card_id"):
        lookup.lookup([{"customer_id": "C1", "merchant_id": "M1"}])


@pytest.mark.integration
def test_the_freshness_check_passes_on_recent_features(fraud_home, online_kind):
    write_gold(fraud_home, days=RECENT)
    check = _freshness(_online_store_run(RECENT))
    assert check.passed
    assert check.metadata["stale_entities"].value == 0


@pytest.mark.integration
def test_the_freshness_check_fails_with_the_stale_count_on_old_features(fraud_home, online_kind):
    write_gold(fraud_home, days=(D1, D2))
    result = _online_store_run((D1, D2))
    assert result.success  # a warning: the store still serves, and says it is stale
    check = _freshness(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["stale_entities"].value == 5  # C1, C2, M1, (C1, D1), (C1, US)
    assert "customer_daily" in check.description and "merchant_daily" in check.description


@pytest.mark.integration
def test_the_fast_readers_agree_with_feasts_own_online_read(fresh):
    from features.lookup import _Entities
    from features.stores import FeastReader

    lookup = OnlineFeatures.for_service(fresh, "fraud_model_v1")
    _push(fresh, "card", "K1", NOW - dt.timedelta(minutes=5), count=3)
    rows = [ROW, {**ROW, "customer_id": "C2", "merchant_id": "M9"}, ROW]
    uniques = _Entities(rows, lookup.key_sets).uniques
    fast = lookup._reader.read(uniques)
    assert type(lookup._reader).__name__ == f"{fresh.config.online_store.type.title()}Reader"
    assert fast == FeastReader(fresh, lookup.views).read(uniques)
    merchant_stamps = fast[[v.name for v in lookup.views].index("merchant_daily")][0]
    assert merchant_stamps[0] is not None and merchant_stamps[1] is None  # M9 is unknown


@pytest.mark.integration
def test_production_settings_redis_online_and_a_postgres_registry(fraud_home, monkeypatch):
    from demo.services import ensure_redis, flush_redis_db, fresh_postgres_database

    ensure_redis()
    flush_redis_db(REDIS_TEST_DB)
    monkeypatch.setenv("FEAST_ONLINE_STORE", f"redis://127.0.0.1:6379,db={REDIS_TEST_DB}")
    monkeypatch.setenv("FEAST_REGISTRY", fresh_postgres_database("fraud_feast_registry_test"))
    write_gold(fraud_home, days=RECENT)
    assert _online_store_run(RECENT).success
    store = build_resources()["feast"].store()
    assert store.config.registry.registry_type == "sql"
    assert not (fraud_home / "feast" / "registry.db").exists()
    assert {v.name for v in store.list_feature_views()} >= {"customer_daily", "merchant_daily"}
    got = OnlineFeatures.for_service(store, "fraud_model_v1").lookup([ROW])
    assert got["customer_daily__txn_count_30d"].tolist() == [2 * 10 + 2]


@pytest.mark.unit
@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=3))
def test_entity_keys_are_serialized_as_feast_serializes_them(values):
    from feast.infra.key_encoding_utils import serialize_entity_key

    from features.keys import entity_key, string_key_serializer

    join_keys = tuple(sorted(f"key_{i}" for i in range(len(values))))
    entity = values[0] if len(values) == 1 else tuple(values)
    expected = serialize_entity_key(entity_key(join_keys, entity), 3)
    assert string_key_serializer(join_keys)(entity) == expected
