"""The merchants' report history asset on the lakehouse, and its values read three ways: the
history's own rows, the training set's point-in-time join, the online store after the daily
materialization. Each is the decayed sum of the reports known at its instant, by definition."""

import datetime as dt
import math

import dagster as dg
import pyarrow as pa
import pytest

from assets.metadata import materialized
from assets.partitions import range_tags
from features.report_decay import HORIZON, MAX_DAYS, SINCE, TAU_S, VIEW

pytestmark = pytest.mark.integration
JAN = [dt.date(2026, 1, d) for d in range(1, 6)]


def _at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 1, day, hour, tzinfo=dt.UTC)


# (transaction, transaction day, merchant, reported at; None: not a fraud)
LABELS = [
    ("t1", JAN[0], "M1", _at(2, 10)),
    ("t2", JAN[0], "M1", _at(3, 8)),
    ("t3", JAN[1], "M2", _at(3, 8)),
    ("t4", JAN[2], "M1", _at(4, 12)),
    ("t5", JAN[1], "M1", None),
]


@pytest.fixture
def lakehouse(fraud_home):
    """Gold's labels and feature tables, silver's days, the feature store applied."""
    from assets.features import feast_registry
    from resources import build_resources
    from tests.support.gold import write_gold

    resources = build_resources()
    lake = resources["lakehouse"]
    write_gold(fraud_home, days=(JAN[0], JAN[1]))
    labels = pa.table({
        "transaction_id": [t for t, *_ in LABELS],
        "day": pa.array([d for _, d, *_ in LABELS], pa.date32()),
        "merchant_id": [m for _, _, m, _ in LABELS],
        "is_fraud": [r is not None for *_, r in LABELS],
        "reported_at": pa.array([r for *_, r in LABELS], pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    lake.overwrite("gold", "transaction_labels", labels, JAN[0], JAN[-1])
    days = pa.table(
        {"transaction_id": [f"s{d.day}" for d in JAN], "day": pa.array(JAN, pa.date32())}
    )
    lake.overwrite("silver", "transactions", days, JAN[0], JAN[-1])
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([feast_registry], resources=resources, instance=instance).success
    return resources, instance


def _by_definition(merchant: str, at: dt.datetime, before: bool = False) -> dict[str, float]:
    """The decayed sums of the merchant's reports at or (`before`) strictly before `at`."""
    reports = [r for _, _, m, r in LABELS if m == merchant and r is not None]
    known = [r for r in reports if r < at or (r == at and not before)]
    ages = [(at - r).total_seconds() for r in known]
    sums = {name: sum(math.exp(-a / tau) for a in ages) for name, tau in TAU_S.items()}
    since = min((at - max(known)).total_seconds() / 86_400, MAX_DAYS) if known else MAX_DAYS
    return {**sums, SINCE: since}


def test_a_run_of_days_writes_their_reports_and_rebuilds_the_days_after(lakehouse):
    from assets.fraud_reports import merchant_fraud_reports
    from features.report_decay import bring_to

    resources, instance = lakehouse
    result = dg.materialize([merchant_fraud_reports], resources=resources, instance=instance,
                            tags=range_tags(JAN[1], JAN[2]))  # fmt: skip
    assert result.success
    meta = materialized(result)["features/merchant_fraud_reports"]
    # The days after the run that silver holds are rebuilt: a report weighs on 60 days.
    assert meta["days_rewritten"] == f"{JAN[1]} .. {JAN[-1]}" and HORIZON.days >= 3
    history = resources["lakehouse"].read("features", "merchant_fraud_reports", JAN[0], JAN[-1])
    assert history.num_rows == meta["dagster/row_count"] == 4  # every fraud, reported Jan 2-4
    for row in history.to_pylist():
        columns = {f"{VIEW}__{f}": [row[f]] for f in (*TAU_S, SINCE)}
        columns[f"{VIEW}__missing"] = [False]
        bring_to(columns, row["event_timestamp"].timestamp())
        expected = _by_definition(row["merchant_id"], row["event_timestamp"])
        assert {f: columns[f"{VIEW}__{f}"][0] for f in expected} == pytest.approx(expected)


def test_training_rows_and_the_online_store_read_the_same_decayed_counts(lakehouse):
    import pandas as pd

    from assets.features import online_store
    from assets.fraud_reports import merchant_fraud_reports
    from features.lookup import OnlineFeatures
    from features.offline import PointInTimeFeatures

    resources, instance = lakehouse
    tags = range_tags(JAN[0], JAN[-1])
    assert dg.materialize([merchant_fraud_reports, online_store], resources=resources,
                          instance=instance, tags=tags).success  # fmt: skip
    store = resources["feast"].store()
    # M1 at a report's own instant (that report is not known yet: the join is just before),
    # later the same day, and at the end; M2; a merchant never reported.
    asked = [("M1", _at(3, 8)), ("M1", _at(3, 20)), ("M1", _at(5, 23)), ("M2", _at(4, 0)),
             ("M9", _at(4, 0))]  # fmt: skip
    rows = pd.DataFrame({
        "merchant_id": [m for m, _ in asked], "event_timestamp": [t for _, t in asked],
        "customer_id": "C1", "card_id": "K1", "device_id": None, "merchant_country": None,
    })  # fmt: skip
    offline = PointInTimeFeatures(store, "fraud_model_v1").lookup(rows)
    for i, (merchant, at) in enumerate(asked):
        expected = _by_definition(merchant, at, before=True)
        got = {f: offline[f"{VIEW}__{f}"][i] for f in expected}
        assert got == pytest.approx(expected, abs=1e-9), (merchant, at)
        assert offline[f"{VIEW}__missing"][i] == (merchant == "M9")
    # Online, at the end: each merchant's value as of its last report, decayed to the read.
    end = _at(5, 23)
    online = OnlineFeatures.for_views(store, [VIEW]).lookup(
        [{"merchant_id": m} for m in ("M1", "M2", "M9")], as_of=end
    )
    for i, merchant in enumerate(("M1", "M2", "M9")):
        expected = _by_definition(merchant, end)
        assert {f: online[f"{VIEW}__{f}"][i] for f in expected} == pytest.approx(expected)
