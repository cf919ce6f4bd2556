"""Alerts against a local HTTP receiver standing in for the team's webhook: a failed run, a failed
blocking check, a refused promotion, a drift alarm and a promotion each give exactly one
Slack-compatible message with a link to its run; healthy events give none; a webhook that is
down loses nothing and doubles nothing; with no URL, nothing is sent. The events come from real
Dagster runs of small assets under the platform's asset keys, with the metadata the real assets
write (the alerts read keys and metadata only)."""

import http.server
import json
import threading

import dagster as dg
import pytest

from assets import keys
from assets.registry import GATE_CHECK
from resources.alerts import AlertWebhookResource
from sensors.alerts import event_alerts, run_failure_alerts

pytestmark = pytest.mark.integration


class _Receiver(http.server.ThreadingHTTPServer):
    """Collects the JSON bodies posted to it; answers 500 while `down`."""

    def __init__(self):
        self.received, self.down = [], False
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.down:
                    self.send_response(500)
                else:
                    receiver.received.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/fraud"


@pytest.fixture
def receiver():
    server = _Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@dg.asset(key=keys.DRIFT_REPORT, partitions_def=dg.DailyPartitionsDefinition("2026-01-01"))
def _drift_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    alarm = context.partition_key == "2026-03-02"
    reasons = ["weighted drift 0.42 >= 0.25"] if alarm else []
    return dg.MaterializeResult(metadata={"alarm": alarm, "alarm_reasons": reasons})


@dg.asset(key=keys.CHAMPION, check_specs=[dg.AssetCheckSpec(GATE_CHECK, asset=keys.CHAMPION,
                                                            blocking=True)])  # fmt: skip
def _champion(context: dg.AssetExecutionContext):
    refused = context.run.tags.get("gate") == "refuse"
    yield dg.MaterializeResult(metadata={
        "promoted": not refused, "champion_version": 1 if refused else 3,
        "previous_version": 1, "approval": "auto",
    })  # fmt: skip
    yield dg.AssetCheckResult(
        check_name=GATE_CHECK, passed=not refused, severity=dg.AssetCheckSeverity.ERROR,
        description="PR-AUC 0.61 vs champion 0.70: worse beyond tolerance (95%)" if refused
        else "not worse", metadata={"challenger_version": 2 if refused else 3},
    )  # fmt: skip


@dg.asset(check_specs=[dg.AssetCheckSpec("rows_present", asset="silver_stand_in", blocking=True),
                       dg.AssetCheckSpec("warns_only", asset="silver_stand_in")])  # fmt: skip
def silver_stand_in():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="rows_present", passed=False,
                              description="0 rows: the day's silver is empty")  # fmt: skip
    yield dg.AssetCheckResult(check_name="warns_only", passed=False,
                              severity=dg.AssetCheckSeverity.WARN)  # fmt: skip


@dg.asset
def _broken():
    raise RuntimeError("the warehouse is unreachable")


def _evaluate(sensor, instance, cursor, alerts):
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"alerts": alerts})  # fmt: skip
    return sensor(context)


def test_each_event_gives_one_message_with_a_link_to_its_run(receiver):
    instance = dg.DagsterInstance.ephemeral()
    alerts = AlertWebhookResource(url=receiver.url, dagster_url="https://dagster.example.com/")
    started = _evaluate(event_alerts, instance, None, alerts)  # from now on
    assert receiver.received == []

    runs = {
        "quiet_day": dg.materialize([_drift_report], instance=instance, partition_key="2026-03-01"),
        "drift_alarm": dg.materialize([_drift_report], instance=instance,
                                      partition_key="2026-03-02"),
        "promotion_refused": dg.materialize([_champion], instance=instance,
                                            tags={"gate": "refuse"}, raise_on_error=False),
        "promoted": dg.materialize([_champion], instance=instance),
        "check_failed": dg.materialize([silver_stand_in], instance=instance, raise_on_error=False),
    }  # fmt: skip
    cursor = started.cursor
    for _ in range(2):  # a second tick sends nothing again
        cursor = _evaluate(event_alerts, instance, cursor, alerts).cursor

    told = {m["fraud_platform"]["event"]: m for m in receiver.received}
    assert len(receiver.received) == len(told) == 4, [m["text"] for m in receiver.received]
    assert set(told) == {"drift_alarm", "promotion_refused", "promoted", "check_failed"}
    for event, message in told.items():
        link = f"https://dagster.example.com/runs/{runs[event].run_id}"
        assert message["fraud_platform"]["link"] == link and link in message["text"]
        assert message["blocks"][0]["text"]["text"] == message["text"]
    assert "2026-03-02" in told["drift_alarm"]["text"] and "0.42" in told["drift_alarm"]["text"]
    assert "v2" in told["promotion_refused"]["text"] and "0.61" in told["promotion_refused"]["text"]
    assert "v3 promoted" in told["promoted"]["text"] and "v1" in told["promoted"]["text"]
    assert "rows_present" in told["check_failed"]["text"] and "warns_only" not in json.dumps(told)


def _run_failure_sensor(result, instance, alerts):
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts", dagster_event=failure, dagster_instance=instance,
        dagster_run=result.dagster_run, resources={"alerts": alerts},
    ).for_run_failure()  # fmt: skip
    return run_failure_alerts(context)


def test_a_failed_run_gives_one_message_naming_its_step_and_error(receiver):
    instance = dg.DagsterInstance.ephemeral()
    alerts = AlertWebhookResource(url=receiver.url)
    result = dg.materialize([_broken], instance=instance, raise_on_error=False)
    assert not result.success
    _run_failure_sensor(result, instance, alerts)
    refused = dg.materialize([_champion], instance=instance, tags={"gate": "refuse"},
                             raise_on_error=False)  # fmt: skip
    assert not refused.success  # failed by its blocking check: told once, by event_alerts
    assert "event_alerts" in _run_failure_sensor(refused, instance, alerts).skip_message
    [message] = receiver.received
    assert message["fraud_platform"] == {
        "event": "run_failed", "link": f"http://localhost:3000/runs/{result.run_id}",
    }  # fmt: skip
    assert "_broken" in message["text"] and "__ephemeral_asset_job__" in message["text"]


@pytest.mark.faults
def test_a_webhook_that_is_down_loses_and_doubles_no_alert(receiver):
    instance = dg.DagsterInstance.ephemeral()
    alerts = AlertWebhookResource(url=receiver.url)
    cursor = _evaluate(event_alerts, instance, None, alerts).cursor
    dg.materialize([_drift_report], instance=instance, partition_key="2026-03-02")
    dg.materialize([_champion], instance=instance)
    receiver.down = True
    for _ in range(2):
        cursor = _evaluate(event_alerts, instance, cursor, alerts).cursor
    assert receiver.received == []
    receiver.down = False
    for _ in range(2):
        cursor = _evaluate(event_alerts, instance, cursor, alerts).cursor
    assert [m["fraud_platform"]["event"] for m in receiver.received] == ["drift_alarm", "promoted"]


def test_without_a_webhook_url_nothing_is_sent_and_enabling_it_sends_only_what_follows(receiver):
    instance = dg.DagsterInstance.ephemeral()
    off = AlertWebhookResource()
    cursor = _evaluate(event_alerts, instance, None, off).cursor
    dg.materialize([_drift_report], instance=instance, partition_key="2026-03-02")
    skipped = _evaluate(event_alerts, instance, cursor, off)
    assert "FRAUD_ALERT_WEBHOOK_URL" in skipped.skip_reason.skip_message
    on = AlertWebhookResource(url=receiver.url)
    cursor = _evaluate(event_alerts, instance, skipped.cursor, on).cursor
    assert receiver.received == []  # the alarm raised while alerts were off is not sent late
    dg.materialize([_champion], instance=instance)
    _evaluate(event_alerts, instance, cursor, on)
    assert [m["fraud_platform"]["event"] for m in receiver.received] == ["promoted"]
