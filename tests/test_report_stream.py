"""The report worker on a real Redis Stream: a merchant's decayed report counts online take the
day's reports at once, starting from what the daily history put online; a report delivered
again counts once; a worker that breaks before or after its commit loses and doubles nothing."""

import datetime as dt
import json
import math

import pyarrow as pa
import pytest
import redis

from demo.services import ensure_redis, flush_redis_db
from features.report_decay import TAU_S, VIEW, report_history

pytestmark = pytest.mark.integration
REPORT_DB = 11  # apart from the other Redis tests' databases
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAYS = (NOW.date() - dt.timedelta(days=2), NOW.date() - dt.timedelta(days=1))
# Reports the daily history knows (M1, on the first day), and those the stream brings.
HISTORY = [("M1", dt.datetime.combine(DAYS[0], dt.time(9), dt.UTC)),
           ("M1", dt.datetime.combine(DAYS[0], dt.time(15), dt.UTC))]  # fmt: skip
STREAMED = [("T1", "M1", NOW - dt.timedelta(hours=5)), ("T2", "M2", NOW - dt.timedelta(hours=4)),
            ("T3", "M1", NOW - dt.timedelta(hours=1))]  # fmt: skip


@pytest.fixture
def online(fraud_home, monkeypatch, online_kind):
    """The feature store applied (SQLite, then Redis), the history of HISTORY's reports written
    and put online."""
    import dagster as dg

    from assets.features import feast_registry, online_store
    from assets.partitions import range_tags
    from resources import build_resources
    from tests.support.gold import write_gold

    ensure_redis()
    flush_redis_db(REPORT_DB)
    monkeypatch.setenv("STREAM_URL", f"redis://127.0.0.1:6379/{REPORT_DB}")
    write_gold(fraud_home, days=DAYS)
    resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
    reports = pa.table({"merchant_id": [m for m, _ in HISTORY],
                        "reported_at": [t for _, t in HISTORY]})  # fmt: skip
    resources["lakehouse"].overwrite(
        "features", "merchant_fraud_reports", report_history(reports), *DAYS
    )
    assert dg.materialize([feast_registry], resources=resources, instance=instance).success
    assert dg.materialize([online_store], resources=resources, instance=instance,
                          tags=range_tags(*DAYS)).success  # fmt: skip
    return redis.Redis(db=REPORT_DB)


def _send(client, reports) -> None:
    for transaction, merchant, at in reports:
        report = {"transaction_id": transaction, "merchant_id": merchant,
                  "reported_at": at.isoformat()}  # fmt: skip
        client.xadd("fraud:reports", {"report": json.dumps(report)})


def _online(merchant: str) -> dict[str, float]:
    from features.lookup import OnlineFeatures
    from features.store import open_serving_store
    from settings.env import fraud_home

    lookup = OnlineFeatures.for_views(open_serving_store(fraud_home()), [VIEW])
    values = lookup.lookup([{"merchant_id": merchant}], as_of=NOW)
    return {name: float(values[f"{VIEW}__{name}"][0]) for name in TAU_S}


def _by_definition(times: list[dt.datetime]) -> dict[str, float]:
    return {
        name: sum(math.exp(-(NOW - t).total_seconds() / tau) for t in times)
        for name, tau in TAU_S.items()
    }


def _drain(worker) -> dict[str, int]:
    return worker.run(batch=100, block_ms=10, max_idle_s=60, until_idle=True)


def test_streamed_reports_count_at_once_on_top_of_the_history_and_once_each(online):
    from serving.report_stream import build_worker

    assert _online("M1") == pytest.approx(_by_definition([t for _, t in HISTORY]))
    _send(online, [*STREAMED, ("T1", "M1", STREAMED[0][2])])  # T1 delivered twice
    online.xadd("fraud:reports", {"report": json.dumps({"transaction_id": "T9"})})
    counts = _drain(build_worker())
    assert counts == {"counted": 3, "in_history": 0, "counted_before": 1, "dead_lettered": 1}
    m1 = [t for _, t in HISTORY] + [t for _, m, t in STREAMED if m == "M1"]
    assert _online("M1") == pytest.approx(_by_definition(m1), rel=1e-9)
    assert _online("M2") == pytest.approx(_by_definition([STREAMED[1][2]]), rel=1e-9)
    [(_, fields)] = online.xrange("fraud:reports:dead")
    assert b"merchant_id" in fields[b"error"]
    # Sent again after it was counted: nothing changes.
    _send(online, STREAMED[:1])
    assert _drain(build_worker())["counted_before"] == 1
    assert _online("M1") == pytest.approx(_by_definition(m1), rel=1e-9)


def test_a_backlog_of_reports_the_history_counted_is_left_to_it(online):
    from serving.report_stream import build_worker

    # The worker was down: the landed reports reached the history; the stream holds them too.
    _send(online, [("H0", "M1", HISTORY[0][1]), ("H1", "M1", HISTORY[1][1]), *STREAMED])
    counts = _drain(build_worker())
    assert counts == {"counted": 3, "in_history": 2, "counted_before": 0, "dead_lettered": 0}
    m1 = [t for _, t in HISTORY] + [t for _, m, t in STREAMED if m == "M1"]
    assert _online("M1") == pytest.approx(_by_definition(m1), rel=1e-9)


def test_a_late_report_counts_just_after_the_merchants_last_and_reaches_the_store(online):
    from serving.report_stream import build_worker

    _send(online, STREAMED)
    _drain(build_worker())
    _send(online, [("T4", "M1", NOW - dt.timedelta(hours=3))])  # older than T3
    assert _drain(build_worker())["counted"] == 1
    m1 = [t for _, t in HISTORY] + [t for _, m, t in STREAMED if m == "M1"] + [STREAMED[2][2]]
    assert _online("M1") == pytest.approx(_by_definition(m1), rel=1e-9)


def test_a_daily_run_after_the_worker_leaves_its_newer_counts_online(online):
    import dagster as dg

    from assets.features import online_store
    from assets.metadata import materialized
    from assets.partitions import range_tags
    from resources import build_resources
    from serving.report_stream import build_worker

    _send(online, STREAMED)
    _drain(build_worker())
    again = dg.materialize([online_store], resources=build_resources(), tags=range_tags(*DAYS))
    assert materialized(again)["features/online_store"]["merchants_with_new_report_counts"] == 0
    m1 = [t for _, t in HISTORY] + [t for _, m, t in STREAMED if m == "M1"]
    assert _online("M1") == pytest.approx(_by_definition(m1), rel=1e-9)


def test_a_worker_that_breaks_before_its_commit_leaves_its_reports_to_count_once(
    online, monkeypatch
):
    from serving.report_stream import build_worker

    monkeypatch.setenv("STREAM_CONSUMER", "c1")
    _send(online, STREAMED)
    broken = build_worker()
    broken._stored = lambda merchants: (_ for _ in ()).throw(ConnectionError("store down"))
    with pytest.raises(ConnectionError):
        _drain(broken)
    assert online.xpending("fraud:reports", "report-counters")["pending"] == 3
    assert _drain(build_worker())["counted"] == 3  # the same consumer, restarted
    m1 = [t for _, t in HISTORY] + [t for _, m, t in STREAMED if m == "M1"]
    assert _online("M1") == pytest.approx(_by_definition(m1), rel=1e-9)


def test_a_worker_that_breaks_after_its_commit_has_its_states_pushed_by_the_next(online):
    from serving.report_stream import build_worker

    _send(online, STREAMED)
    broken = build_worker()
    broken._push = lambda rows: (_ for _ in ()).throw(ConnectionError("store down"))
    with pytest.raises(ConnectionError):
        _drain(broken)
    assert online.xpending("fraud:reports", "report-counters")["pending"] == 0
    assert _online("M2") == {name: 0.0 for name in TAU_S}  # counted, never pushed
    restarted = build_worker()
    assert restarted.repushed == 2
    m1 = [t for _, t in HISTORY] + [t for _, m, t in STREAMED if m == "M1"]
    assert _online("M1") == pytest.approx(_by_definition(m1), rel=1e-9)
    assert _online("M2") == pytest.approx(_by_definition([STREAMED[1][2]]), rel=1e-9)
