"""The environment switch and the daily schedule."""

import datetime as dt

import dagster as dg
import pytest

from resources import build_resources
from settings.env import fraud_env

pytestmark = pytest.mark.unit


def test_local_resources_live_under_fraud_home(fraud_home):
    resources = build_resources()
    assert resources["lakehouse"].uri("silver", "transactions") == str(
        fraud_home / "lakehouse/silver/transactions"
    )
    assert resources["lakehouse"].landing_path == fraud_home / "landing"
    assert resources["spark"].remote is None


def test_prod_resources_read_lakehouse_uri_and_spark_remote(fraud_home, monkeypatch):
    monkeypatch.setenv("FRAUD_ENV", "prod")
    monkeypatch.setenv("LAKEHOUSE_URI", "s3://bucket/lakehouse")
    monkeypatch.setenv("SPARK_REMOTE", "sc://spark:15002")
    resources = build_resources()
    with dg.build_resources(
        {"lakehouse": resources["lakehouse"], "spark": resources["spark"]}
    ) as r:
        assert (
            r.lakehouse.uri("gold", "transaction_labels")
            == "s3://bucket/lakehouse/gold/transaction_labels"
        )
        assert r.spark.remote == "sc://spark:15002"


def test_an_unknown_environment_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("FRAUD_ENV", "staging")
    with pytest.raises(ValueError, match="local, prod"):
        fraud_env()


def test_the_daily_schedule_runs_yesterday():
    from definitions import defs

    schedule = defs.resolve_schedule_def("daily_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 1, 8, 2, tzinfo=dt.UTC)
    )
    [request] = list(schedule.evaluate_tick(context).run_requests)
    assert request.partition_key == "2026-01-07"


@pytest.mark.parametrize("text", ["abc", "0", "1.5", "-0.1", "nan"])
def test_a_canary_share_that_is_not_a_share_is_refused_with_its_value(text, monkeypatch):
    from settings.env import canary_share

    monkeypatch.setenv("FRAUD_CANARY_SHARE", text)
    with pytest.raises(ValueError, match=f"FRAUD_CANARY_SHARE='{text}'"):
        canary_share()


def test_a_canary_share_in_range_is_read_and_unset_means_all_at_once(monkeypatch):
    from settings.env import canary_share

    monkeypatch.setenv("FRAUD_CANARY_SHARE", "0.1")
    assert canary_share() == 0.1
    monkeypatch.delenv("FRAUD_CANARY_SHARE")
    assert canary_share() == 1.0
