"""`make demo`: the whole loop on embedded defaults, with the real Dagster daemon. A baseline
period goes landing -> lakehouse -> features -> training -> champion -> bento -> batch and
stream scores; then drift starts, its report crosses the threshold, the daemon's drift sensor
retrains, the gate promotes a new champion and its bento is built, and serving scores with it.
The demo then says whether that loop closed, from Dagster's runs, the registry and the scores."""

import argparse
import datetime as dt
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from demo.console import Stages, output_to
from demo.verdict import FINISHED, GATE_CHECK, GATE_STEP, LoopFacts, loop_verdict
from settings.env import (
    REPO_ROOT,
    fraud_home,
    mlflow_tracking_uri,
    prepare_process_environment,
)
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
    parser = argparse.ArgumentParser(prog="python -m demo.runner", description=__doc__)
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
    parser.add_argument(
        "--setup-log", type=Path, help="output of the setup before the demo: moved into its log"
    )
    return parser


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
    """Batch scores of days [first, last]."""
    from assets.partitions import range_tags

    result = _execute("scoring_job", instance, range_tags(first, last))
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


@dataclass(frozen=True)
class TrainingOutcome:
    """A training_job run's failed steps and checks, and its promotion gate's verdict."""

    failed_steps: frozenset[str]
    failed_checks: tuple[str, ...]
    gate_passed: bool | None
    gate_description: str | None

    @classmethod
    def of(cls, events) -> "TrainingOutcome":
        checks = [
            e.event_specific_data for e in events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        gates = [c for c in checks if c.check_name == GATE_CHECK]
        return cls(
            frozenset(e.step_key for e in events if e.event_type_value == "STEP_FAILURE"),
            tuple(c.check_name for c in checks if not c.passed),
            gates[-1].passed if gates else None,
            gates[-1].description if gates else None,
        )

    def refusal(self) -> str | None:
        """Why the gate kept the champion, when that is the only thing that failed: a refused
        challenger is an outcome of the loop (say, a second demo on the same registry), not an
        error."""
        only_the_gate = self.failed_steps == {GATE_STEP} and self.failed_checks == (GATE_CHECK,)
        return self.gate_description if only_the_gate else None


def _run_outcome(instance, run_id: str) -> TrainingOutcome:
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    return TrainingOutcome.of([e.dagster_event for e in instance.all_logs(run_id, of_type=kinds)])


def _champion() -> tuple[str, str]:
    """The champion's version and its test PR-AUC (from its MLflow run), as text."""
    from mlflow import MlflowClient

    from ml.registry import version_by_alias

    found = version_by_alias("champion")
    if found is None:
        return "none", "n/a"
    pr_auc = MlflowClient().get_run(found.run_id).data.metrics.get("test_pr_auc")
    return str(found.version), "n/a" if pr_auc is None else f"{pr_auc:.3f}"


def _stream(messages: int, instance, customers: int, seed: int) -> tuple[str, int, str | None]:
    """Publish `messages` transactions to the stream and drain it with the stream worker: what
    happened, how many were scored and by which model version (None: Redis does not answer)."""
    import redis

    from settings.secrets import redacted
    from settings.stream import StreamSettings
    from simulator.stream import publish

    settings = StreamSettings.from_environment()
    client = redis.Redis.from_url(settings.url)
    try:
        client.ping()
    except redis.RedisError as down:
        where = redacted(settings.url)
        return f"skipped: the stream's Redis at {where} does not answer ({down})", 0, None
    publish(client, settings.name, messages, 0, customers, seed)
    result = _execute("stream_drain_job", instance)
    _must(result, "stream_drain_job")
    counts = result.output_for_node("drain_stream")
    version = str(_metadata(result, "monitoring/prediction_log")["model_version"])
    said = (
        f"{counts['scored']:,} scored from {settings.name}, {counts['dead_lettered']} "
        f"dead-lettered (model v{version})"
    )
    return said, counts["scored"], version


def _await_run(
    instance,
    job_name: str,
    tags: dict[str, str],
    since: dt.datetime | None,
    wait_s: float,
    daemon,
    progress: Callable[[str], None],
    settled: Callable[[], str | None] = lambda: None,
):
    """The newest run of `job_name` with `tags` created after `since` once it has finished, or
    as it stands when the wait ends; and why the wait ended without a finished run: `wait_s`
    passed, the daemon died, or `settled()` said why no run is coming."""
    import dagster as dg

    deadline = time.monotonic() + wait_s
    said = None
    while True:
        found = instance.get_run_records(
            dg.RunsFilter(job_name=job_name, tags=tags, created_after=since), limit=1
        )
        run = found[0].dagster_run if found else None
        if run is not None:
            state = f"{job_name} {run.run_id[:8]}: {run.status.value}"
            if state != said and run.status.value in ("STARTED", *FINISHED):
                progress(state)
                said = state
            if run.status.value in FINISHED:
                return run, None
        elif (why := settled()) is not None:
            return None, why
        if not daemon.alive():
            return run, f"the Dagster daemon stopped (see {daemon.log})"
        if time.monotonic() > deadline:
            return run, f"still waiting after {wait_s / 60:.0f} minutes (see {daemon.log})"
        time.sleep(2)


def _tick_without_run(instance, sensor: str, after: float) -> str | None:
    """What `sensor`'s newest tick since `after` (epoch seconds) said, when it launched nothing."""
    for state in instance.all_instigator_state():
        if state.instigator_name != sensor:
            continue
        ticks = instance.get_ticks(
            state.instigator_origin_id, state.selector_id, after=after, limit=1
        )
        if ticks and ticks[0].status.value == "SKIPPED":
            return f"its tick skipped: {ticks[0].skip_reason or 'no reason given'}"
        if ticks and ticks[0].status.value == "FAILURE":
            return f"its tick failed: {ticks[0].error.message.strip().splitlines()[0]}"
    return None


def _await_bento(instance, version: str, wait_s: float, daemon, progress):
    """champion_sensor's bento_job for `version` once finished (or as the wait left it), and
    why the wait ended without one."""
    tags = {"fraud/champion": version, "dagster/sensor_name": "champion_sensor"}
    return _await_run(instance, "bento_job", tags, None, wait_s, daemon, progress)


def _scored_by(lakehouse, day: dt.date) -> tuple[tuple[str, ...], int]:
    """The model versions the batch scores of `day` carry, and how many scores there are."""
    versions = lakehouse.read(
        "scoring", "batch_scores", day, day, columns=["model_version"]
    ).column("model_version")
    return tuple(sorted(map(str, versions.unique().to_pylist()))), len(versions)


def _table_rows(lakehouse) -> list[str]:
    from lakehouse.delta import ALL_DAYS

    lines = []
    for layer, tables in LAYERS.items():
        counts = [
            f"{table} {lakehouse.read(layer, table, *ALL_DAYS, columns=['day']).num_rows:,}"
            for table in tables
            if lakehouse.exists(layer, table)
        ]
        if counts:
            lines.append(f"  {layer}: {', '.join(counts)}")
    return lines


def _figures(meta: dict) -> str:
    """A report's rows and findings as its metadata gives them: flags, fractions (each with its
    `<name>_threshold` when there is one) and lists (short ones in full); not timings, counts,
    shares without a threshold, other thresholds and significance levels (context, in the UI),
    links or tables."""
    shown = [f"rows {meta['dagster/row_count']:,}"] if "dagster/row_count" in meta else []
    for key, value in meta.items():
        if isinstance(value, bool):
            shown.append(f"{key} {value}")
        elif isinstance(value, list):
            listed = ("; ".join(map(str, value)) or "none") if len(value) <= 3 else len(value)
            shown.append(f"{key} {listed}")
        elif isinstance(value, float) and not key.endswith(("_s", "_alpha")):
            if key.endswith("_threshold"):  # shown with its figure, or context in the UI
                continue
            if key.endswith("_share") and f"{key}_threshold" not in meta:
                continue
            threshold = meta.get(f"{key}_threshold")
            against = f" (threshold {threshold:.3g})" if threshold is not None else ""
            shown.append(f"{key} {value:.3g}{against}")
    return ", ".join(shown) or "no figures"


def _forget_earlier_reports(instance) -> None:
    """The drift sensor starts this demo as new: an earlier demo's reports count as seen and its
    retrain starts no cooldown (the sensor's cursor, kept in Dagster's history, is set)."""
    import subprocess

    from assets.keys import DRIFT_REPORT, MODEL_PERFORMANCE
    from sensors.drift import RetrainCursor

    seen = {}
    for key in (DRIFT_REPORT, MODEL_PERFORMANCE):
        records = instance.fetch_materializations(key, limit=1, ascending=False).records
        if records:
            seen[key.to_user_string()] = records[0].storage_id
    if not seen:
        return  # a new instance: nothing to forget
    cursor = RetrainCursor(seen, None).dump()
    subprocess.run(
        [sys.executable, "-m", "dagster", "sensor", "cursor", "drift_retrain_sensor",
         "--set", cursor, "-m", "definitions"],
        check=True, capture_output=True, cwd=REPO_ROOT,
    )  # fmt: skip


def run_demo(args, stages: Stages, facts: LoopFacts) -> list[str]:
    """The stages, filling `facts` as the loop goes; the summary's lines."""
    import dagster as dg

    from assets.partitions import days_between, range_tags
    from demo.dagster_processes import Daemon
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
    say = stages.say

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

    _forget_earlier_reports(instance)
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
        refusal = TrainingOutcome.of(training.all_events).refusal()
        if refusal:
            say(f"the gate kept champion v{before_version}: {refusal}")
        else:
            _must(training, "training_job")
        first, first_pr_auc = _champion()
        if first == "none":
            raise DemoFailed(f"no champion to serve: {refusal or 'training_job promoted none'}")
        facts.champion_before = first
        say(f"champion v{first} (test PR-AUC {first_pr_auc})")

        stages.next(f"daemon: champion_sensor builds the bento of v{first}")
        bento, why = _await_bento(instance, first, wait_s, daemon, say)
        if bento is None or bento.status != dg.DagsterRunStatus.SUCCESS:
            raise DemoFailed(f"no successful bento_job for v{first} ({why or bento.status.value})")

        stages.next("score the last baseline week in batch, and the stream")
        week = max(start, baseline_end - dt.timedelta(days=6))
        scored = _score(instance, week, baseline_end)
        say(f"batch: {_metadata(scored, 'scoring/batch_scores')['dagster/row_count']:,} scored")
        streamed, _, _ = _stream(args.stream_messages, instance, args.customers, args.seed)
        say(f"stream: {streamed}")

        stages.next(f"drift starts: {drift_start} .. {drift_end} land, go through, are scored")
        say(f"{release(upstream, landing, drift_start, drift_end)} landing files released")
        _must(
            _execute("daily_job", instance, range_tags(drift_start, drift_end)), "daily_job (drift)"
        )
        _score(instance, drift_start, drift_end)

        stages.next("drift reports: the last baseline day, then the last drifted days")
        reports_started = dt.datetime.now(dt.UTC)
        verdicts = []
        for day in [baseline_end, *days_between(drift_start, drift_end)[-REPORTED_DRIFT_DAYS:]]:
            report = _execute("monitoring_job", instance, partition_key=day.isoformat())
            _must(report, f"monitoring_job {day}")
            meta = _metadata(report, "monitoring/drift_report")
            if "alarm" in meta:
                verdicts.append(f"{day:%m-%d} {'ALARM' if meta['alarm'] else 'no alarm'}")
            say(f"{day}: {_figures(meta)}")
        facts.drift_verdicts = ", ".join(verdicts) or "none"
        reports_done = time.time()

        stages.next("daemon: drift_retrain_sensor -> training_job -> gate")
        retrain, facts.retrain_wait = _await_run(
            instance,
            "training_job",
            {"dagster/sensor_name": "drift_retrain_sensor"},
            reports_started,
            wait_s,
            daemon,
            say,
            settled=lambda: _tick_without_run(instance, "drift_retrain_sensor", reports_done),
        )
        if retrain is not None:
            facts.retrain_run, facts.retrain_status = retrain.run_id, retrain.status.value
            facts.retrain_reason = retrain.tags.get("fraud/trigger_reason")
            say(f"why: {facts.retrain_reason}")
            outcome = _run_outcome(instance, retrain.run_id)
            facts.failed_steps = tuple(sorted(outcome.failed_steps))
            facts.gate_passed = outcome.gate_passed
            facts.gate_description = outcome.gate_description
            if outcome.gate_description:
                say(f"gate: {outcome.gate_description}")
        after, after_pr_auc = _champion()
        facts.champion_after = None if after == "none" else after
        if facts.retrain_run and after not in ("none", first):
            stages.next(f"daemon: champion_sensor builds the bento of v{after}")
            bento, facts.bento_wait = _await_bento(instance, after, wait_s, daemon, say)
            if bento is not None:
                facts.bento_run, facts.bento_status = bento.run_id, bento.status.value
        if facts.bento_status == "SUCCESS":
            stages.next(f"serving switches to v{after}: the stream (or a drifted day in batch)")
            streamed, count, version = _stream(
                args.stream_messages // 2, instance, args.customers, args.seed + 1
            )
            say(f"stream: {streamed}")
            if version is None:
                _score(instance, drift_end, drift_end)
                facts.served_versions, count = _scored_by(resources["lakehouse"], drift_end)
                facts.served_by = f"the batch scores of {drift_end} ({count:,})"
                say(f"batch: {facts.served_by} re-scored by v{', v'.join(facts.served_versions)}")
            else:
                facts.served_by = f"the stream ({count:,} scored)"
                facts.served_versions = (version,) if count else ()

    return [
        "rows per table:",
        *_table_rows(resources["lakehouse"]),
        "models (fraud-detector):",
        f"  before drift: champion v{first} (test PR-AUC {first_pr_auc})",
        f"  after drift:  champion v{after} (test PR-AUC {after_pr_auc})",
        f"drift verdict per day: {facts.drift_verdicts}; reports in {home / 'reports'}",
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    prepare_process_environment()
    home = fraud_home()
    started = time.perf_counter()
    _reset(home)
    log = home / "demo" / "demo.log"
    if args.setup_log and args.setup_log.exists():
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"setup (make demo):\n{args.setup_log.read_text()}\n")
        args.setup_log.unlink()
    with output_to(log) as console:
        console.print(f"fraud-platform demo in FRAUD_HOME={home} (reset: {', '.join(DEMO_STATE)})")
        console.print(f"the details (Spark, dbt, Ray, warnings, tracebacks) go to {log}")
        stages, facts, summary = Stages(total=10, console=console), LoopFacts(), []
        try:
            summary = run_demo(args, stages, facts)
        except DemoFailed as failure:
            facts.stopped = f"{stages.current}: {failure}"
        except Exception as error:
            traceback.print_exc()
            first_line = (str(error).strip().splitlines() or [""])[0]
            facts.stopped = f"{stages.current}: {type(error).__name__}: {first_line}"
        closed, verdict = loop_verdict(facts)
        console.print(f"\ndemo done in {time.perf_counter() - started:.0f} s")
        for line in [stages.report(), *summary]:
            console.print(line)
        console.print(
            f"log: {log} (Dagster daemon: {log.parent / 'daemon.log'})\n"
            "See it: `make dev` opens the Dagster UI on http://localhost:3000 (runs, assets,"
            " checks, sensors);\n"
            f"  `.venv/bin/mlflow ui --backend-store-uri {mlflow_tracking_uri()}` the MLflow UI"
            " on http://localhost:5000;\n  `make serve` the champion's API on http://localhost:3001."
        )
        console.print()
        for line in verdict:
            console.print(line)
    return 0 if closed else 1


if __name__ == "__main__":
    code = main()
    # What libraries print as the interpreter exits (duckdb's bindings list "leaked" types) goes
    # to the log: the terminal ends with the verdict.
    sys.stdout.flush()
    sys.stderr.flush()
    with (fraud_home() / "demo" / "demo.log").open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    sys.exit(code)
