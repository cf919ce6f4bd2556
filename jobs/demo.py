"""`make demo`: the whole loop on embedded defaults, with the real Dagster daemon. A baseline
period goes landing -> lakehouse -> features -> training -> champion -> bento -> batch and
stream scores; then drift starts, its report crosses the threshold, the daemon's drift sensor
retrains, the gate promotes a new champion and its bento is built, and serving scores with it."""

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path

from resources.settings import fraud_home, mlflow_tracking_uri, prepare_process_environment
from simulator.__main__ import main as simulator_cli
from simulator.scenarios import SCENARIOS

DEMO_STATE = ("landing", "lakehouse", "warehouse.duckdb", "feast", "reports", "demo")
REPORTED_DRIFT_DAYS = 3  # a report is ~10 s: the sensor needs one crossing, the reader a few
LAYERS = {
    "bronze": ["transactions", "fraud_reports"],
    "silver": ["transactions", "fraud_reports", "quarantine"],
    "gold": ["customer_daily_features", "merchant_daily_features", "transaction_labels"],
    "features": ["training_set"],
    "scoring": ["batch_scores"],
    "monitoring": ["prediction_log"],
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs.demo", description=__doc__)
    # 90 baseline days: the first 45 have passed the 45-day chargeback window, so labels have
    # matured (with 60, the 15 matured days held ~20 frauds in the test split: too few to gate).
    parser.add_argument("--days", type=int, default=90, help="baseline days (default 90)")
    parser.add_argument("--drift-days", type=int, default=10, help="drifted days after them")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--scenario", choices=[s for s in SCENARIOS if s != "baseline"], default="amount_inflation"
    )
    parser.add_argument("--stream-messages", type=int, default=500)
    parser.add_argument("--wait-minutes", type=float, default=8.0, help="for each daemon run")
    return parser


class Stages:
    """Numbered stages, each with its wall time, for the summary."""

    def __init__(self, total: int):
        self.total, self.number, self.timings = total, 0, []
        self._started = time.perf_counter()
        self._name: str | None = None

    def next(self, name: str) -> None:
        self._close()
        self.number += 1
        self._name = name
        self._started = time.perf_counter()
        print(f"\n[{self.number}/{self.total}] {name}", flush=True)

    def _close(self) -> None:
        if self._name is not None:
            self.timings.append((self._name, time.perf_counter() - self._started))
            self._name = None

    def report(self) -> list[str]:
        self._close()
        return [f"  {seconds:5.0f} s  {name}" for name, seconds in self.timings]


def say(line: str) -> None:
    print(f"      {line}", flush=True)


def _reset(home: Path) -> None:
    """The demo owns its landing files, tables and reports: each demo starts from a clean slate
    (the MLflow registry and Dagster's history are kept: a second demo adds to them)."""
    for name in DEMO_STATE:
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def release(upstream: Path, landing: Path, first: dt.date, last: dt.date) -> int:
    """Move the upstream systems' files of days [first, last] into the landing zone."""
    from lakehouse.landing import SOURCES

    moved = 0
    for source in SOURCES.values():
        for path in sorted((upstream / source.folder).glob(f"*{source.suffix}")):
            day = source.day_of(path)
            if day is not None and first <= day <= last:
                target = landing / source.folder / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(path, target)
                moved += 1
    return moved


def _execute(job_name: str, instance, tags=None, partition_key=None, ops=None):
    from definitions import defs

    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags={**(tags or {}), "fraud/source": "make demo"},
        run_config={
            "loggers": {"console": {"config": {"log_level": "ERROR"}}},
            **({"ops": ops} if ops else {}),
        },
        raise_on_error=False,
    )


def _score(instance, first: dt.date, last: dt.date):
    """Batch scores of days [first, last], as of the end of `last`: what the online store held
    fresh then (the demo lands days faster than they pass)."""
    from assets.partitions import range_tags

    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    ops = {"batch_scoring": {"config": {"as_of": end.isoformat()}}}
    result = _execute("scoring_job", instance, range_tags(first, last), ops=ops)
    _must(result, f"scoring_job {first} .. {last}")
    return result


def _must(result, what: str) -> None:
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        raise DemoFailed(f"{what} failed at {', '.join(failed) or 'the run'} (`make dev` -> Runs)")


class DemoFailed(RuntimeError):
    pass


def _metadata(result, key: str) -> dict:
    from assets.metadata import materialized

    return materialized(result).get(key, {})


def _champion() -> tuple[str, str]:
    """The champion's version and its test PR-AUC (from its MLflow run), as text."""
    from mlflow import MlflowClient

    from ml.registry import version_by_alias

    found = version_by_alias("champion")
    if found is None:
        return "none", "n/a"
    pr_auc = MlflowClient().get_run(found.run_id).data.metrics.get("test_pr_auc")
    return str(found.version), "n/a" if pr_auc is None else f"{pr_auc:.3f}"


def _stream(messages: int, instance, customers: int, seed: int) -> str:
    """Publish `messages` transactions to the stream and drain it with the stream worker."""
    import redis

    from serving.stream import StreamSettings
    from simulator.stream import publish

    settings = StreamSettings.from_environment()
    client = redis.Redis.from_url(settings.url)
    try:
        client.ping()
    except redis.RedisError as down:
        return f"skipped: the stream's Redis at {settings.url} does not answer ({down})"
    publish(client, settings.name, messages, 0, customers, seed)
    result = _execute("stream_drain_job", instance)
    _must(result, "stream_drain_job")
    counts = result.output_for_node("drain_stream")
    return (
        f"{counts['scored']:,} scored from {settings.name}, {counts['dead_lettered']} "
        f"dead-lettered (model v{_metadata(result, 'monitoring/prediction_log')['model_version']})"
    )


def _await_bento(instance, version: str, wait_s: float, daemon) -> None:
    """Until the daemon's champion_sensor has built `version`'s bento (DemoFailed if not)."""
    import dagster as dg

    from jobs.daemon import wait_for_run

    tags = {"fraud/champion": version}
    bento = wait_for_run(instance, "bento_job", tags, wait_s, daemon, progress=say)
    if bento is None or bento.status != dg.DagsterRunStatus.SUCCESS:
        raise DemoFailed(f"no successful bento_job for v{version} (see {daemon.log})")


def _table_rows(lakehouse) -> list[str]:
    from lakehouse.delta import ALL_DAYS

    lines = []
    for layer, tables in LAYERS.items():
        for table in tables:
            if lakehouse.exists(layer, table):
                rows = lakehouse.read(layer, table, *ALL_DAYS, columns=["day"]).num_rows
                lines.append(f"  {layer}/{table:28} {rows:>10,} rows")
    return lines


def run_demo(args, stages: Stages) -> list[str]:
    import dagster as dg

    from assets.partitions import days_between, range_tags
    from jobs.daemon import Daemon, wait_for_run
    from resources import build_resources

    home = fraud_home()
    instance = dg.DagsterInstance.get()
    resources = build_resources()
    resources["mlflow"].activate()
    today = dt.date.today()
    start = today - dt.timedelta(days=args.days + args.drift_days)
    drift_start = start + dt.timedelta(days=args.days)
    baseline_end, drift_end = drift_start - dt.timedelta(days=1), today - dt.timedelta(days=1)
    upstream, landing = home / "demo" / "upstream", home / "landing"
    wait_s = args.wait_minutes * 60

    stages.next(
        f"simulate {args.days} baseline days from {start}, then {args.drift_days} of "
        f"{args.scenario} (held upstream)"
    )
    simulated = simulator_cli(
        ["generate", "--days", str(args.days + args.drift_days),
         "--customers", str(args.customers), "--seed", str(args.seed),
         "--scenario", args.scenario, "--drift-day", str(args.days),
         "--start-date", start.isoformat(), "--out", str(upstream)]
    )  # fmt: skip
    if simulated:
        raise DemoFailed("the simulator failed")
    say(f"{release(upstream, landing, start, baseline_end)} landing files released")

    with Daemon(home / "demo" / "daemon.log") as daemon:
        say(f"Dagster daemon started (log: {daemon.log})")
        stages.next(f"daily_job {start} .. {baseline_end}: landing -> gold -> online store")
        daily = _execute("daily_job", instance, range_tags(start, baseline_end))
        _must(daily, "daily_job")
        silver = _metadata(daily, "silver/transactions")
        say(f"silver/transactions: {silver.get('dagster/row_count', 0):,} rows")

        stages.next("training_job: training set -> Ray Tune -> challenger -> gate -> champion")
        before_version, _ = _champion()
        training = _execute("training_job", instance)
        refusal = _gate_refusal(training)
        if refusal:
            say(f"the gate kept champion v{before_version}: {refusal}")
        else:
            _must(training, "training_job")
        first, first_pr_auc = _champion()
        say(f"champion v{first} (test PR-AUC {first_pr_auc})")

        stages.next(f"daemon: champion_sensor builds the bento of v{first}")
        _await_bento(instance, first, wait_s, daemon)

        stages.next("score the last baseline week in batch, and the stream")
        week = max(start, baseline_end - dt.timedelta(days=6))
        scored = _score(instance, week, baseline_end)
        say(f"batch: {_metadata(scored, 'scoring/batch_scores')['dagster/row_count']:,} scored")
        say(f"stream: {_stream(args.stream_messages, instance, args.customers, args.seed)}")

        stages.next(f"drift starts: {drift_start} .. {drift_end} land, go through, are scored")
        say(f"{release(upstream, landing, drift_start, drift_end)} landing files released")
        _must(
            _execute("daily_job", instance, range_tags(drift_start, drift_end)), "daily_job (drift)"
        )
        _score(instance, drift_start, drift_end)

        stages.next("drift reports: the last baseline day, then the last drifted days")
        shares = {}
        for day in [baseline_end, *days_between(drift_start, drift_end)[-REPORTED_DRIFT_DAYS:]]:
            report = _execute("monitoring_job", instance, partition_key=day.isoformat())
            _must(report, f"monitoring_job {day}")
            meta = _metadata(report, "monitoring/drift_report")
            shares[day] = meta.get("drift_share")
            say(
                f"{day}: drift share {meta.get('drift_share', 0):.0%} "
                f"(threshold {meta['drift_share_threshold']:.0%}), "
                f"prediction drift {meta.get('prediction_drift', float('nan')):.2f}"
            )

        stages.next("daemon: drift_retrain_sensor -> training_job -> gate")
        retrain = wait_for_run(
            instance,
            "training_job",
            {"dagster/sensor_name": "drift_retrain_sensor"},
            wait_s,
            daemon,
            progress=say,
        )
        if retrain is None:
            raise DemoFailed(f"the drift sensor started no training run (see {daemon.log})")
        say(f"why: {retrain.tags.get('fraud/trigger_reason')}")
        after, after_pr_auc = _champion()
        if after == first:
            say(f"the gate kept champion v{first}: see registry/champion's check in the UI")
        else:
            stages.next(f"daemon: champion_sensor builds the bento of v{after}")
            _await_bento(instance, after, wait_s, daemon)
            stages.next(f"serving switches: the stream is scored by v{after}")
            streamed = _stream(args.stream_messages // 2, instance, args.customers, args.seed + 1)
            say(f"stream: {streamed}")

    drifted = [d for d, s in shares.items() if s is not None and d >= drift_start]
    return [
        "rows per table:",
        *_table_rows(resources["lakehouse"]),
        "models (fraud-detector):",
        f"  before drift: champion v{first} (test PR-AUC {first_pr_auc})",
        f"  after drift:  champion v{after} (test PR-AUC {after_pr_auc})",
        "drift share per day: "
        + ", ".join(f"{d:%m-%d} {s:.0%}" for d, s in shares.items() if s is not None),
        f"  {len(drifted)} drifted days reported; reports in {home / 'reports'}",
    ]


def _gate_refusal(result) -> str | None:
    """Why the promotion gate kept the champion, when that is the only thing that failed: a
    refused challenger is an outcome of the loop (say, a second demo on the same registry), not
    an error."""
    failed_steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    failed_checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed
    ]
    if failed_steps != {"registry__champion"} or len(failed_checks) != 1:
        return None
    [check] = failed_checks
    return check.description if check.check_name == "promotion_gate" else None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    prepare_process_environment()
    home = fraud_home()
    started = time.perf_counter()
    print(f"fraud-platform demo in FRAUD_HOME={home} (resetting {', '.join(DEMO_STATE)})")
    _reset(home)
    stages = Stages(total=10)
    try:
        summary = run_demo(args, stages)
        verdict = "succeeded"
    except DemoFailed as failure:
        summary, verdict = [f"  {failure}"], "FAILED"
    print(f"\ndemo {verdict} in {time.perf_counter() - started:.0f} s")
    print("\n".join(["stages:", *stages.report(), *summary]))
    print(
        "\nSee it: `make dev` opens the Dagster UI on http://localhost:3000 (runs, assets, checks,"
        " sensors);\n"
        f"  `.venv/bin/mlflow ui --backend-store-uri {mlflow_tracking_uri()}` the MLflow UI"
        " on http://localhost:5000;\n  `make serve` the champion's API on http://localhost:3001."
    )
    return 0 if verdict == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
