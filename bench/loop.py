"""The loop's three decisions on ground truth: `python -m bench.loop [--seeds 1 2 3]
[--scenarios ...]` runs the whole loop at a reduced scale for each seed and scenario, each run in
its own process and FRAUD_HOME, and prints one row per run and the targets.

A run: a training period trains champion v1; then `WATCHED` baseline days and `DRIFT` days of the
scenario land (the `baseline` scenario stays baseline) and are scored in batch and reported on
day by day (each report sees the reports known by its day's end); at the end the drift alarm's
retrain (or, without an alarm, a scheduled one) runs the gate. Then `EVAL` more days of the
scenario land, which neither model has seen, and both are scored on them against the
simulator's own truth (every fraud, reported or not): which model is better there, with a
paired bootstrap interval, is what the gate should have decided."""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ml.promotion import GatePolicy, judge
from monitoring.drift_policy import DriftPolicy

SCENARIOS = ("baseline", "amount_inflation", "new_fraud_pattern", "merchant_mix_shift")
START = dt.date(2026, 5, 1)
TUNING = {"num_samples": 2, "max_epochs": 6}
FIGURES = ("weighted_drift", "prediction_drift", "missed_fraud_p_value", "drift_share",
           "fraud_cards_reported", "fraud_cards_missed")  # fmt: skip
ALARM_WITHIN = {"amount_inflation": 3, "merchant_mix_shift": 3, "new_fraud_pattern": 7}


@dataclass(frozen=True)
class Scale:
    customers: int = 2000
    train_days: int = 70  # champion v1's period
    watched: int = 5  # baseline days reported on after v1's training
    drift: int = 7  # days of the scenario reported on before the retrain
    eval: int = 7  # days of the scenario after the retrain, for the truth


def _day(index: int) -> dt.date:
    return START + dt.timedelta(days=index)


def _run(job: str, resources, instance, tags=None, partition_key=None, run_config=None):
    from definitions import defs

    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags, partition_key=partition_key, run_config=run_config,
        resources=resources, raise_on_error=False,
    )  # fmt: skip


def _must(result, what: str):
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        raise RuntimeError(f"{what} failed at {failed}")
    return result


def simulator_truth(network, first: dt.date, last: dt.date) -> dict[str, bool]:
    """The simulator's fraud truth of days [first, last] by transaction id (the network re-run
    from its first day)."""
    from simulator.landing import transaction_ids

    truth = {}
    for sim in network.days((last - network.start).days + 1):
        if sim.day >= first:
            ids = transaction_ids(sim.day, len(sim.transactions)).tolist()
            truth.update(zip(ids, (sim.transactions.pattern > 0).tolist(), strict=True))
    return truth


def _truth(seed: int, scenario: str, scale: Scale, first: int, last: int) -> dict[str, bool]:
    """The truth of the benchmark's days [first, last] (indices from START)."""
    from simulator.network import PaymentNetwork

    drift_day = scale.train_days + scale.watched
    network = PaymentNetwork(scale.customers, seed, START, scenario=scenario, drift_day=drift_day)
    return simulator_truth(network, _day(first), _day(last))


def _scores_on_truth(resources, versions: list[str], first: dt.date, last: dt.date, truth):
    """Each model version's scores of the silver transactions of [first, last], point in time,
    and the truth of each row: (labels, cards, {version: scores})."""
    import mlflow
    import numpy as np

    from features.offline import PointInTimeFeatures
    from features.store import FEATURE_SERVICE
    from ml.registry import MODEL_NAME
    from serving.scoring import Scorer, Unguarded
    from serving.transaction import SCORING_COLUMNS

    silver = resources["lakehouse"].read("silver", "transactions", first, last,
                                         columns=SCORING_COLUMNS)  # fmt: skip
    features = PointInTimeFeatures(resources["feast"].store(), FEATURE_SERVICE)
    scores = {}
    for version in versions:
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
        scorer = Scorer(model, version, features, breaker=Unguarded())
        scores[version] = scorer.score(silver).scores
    ids = silver["transaction_id"].to_pylist()
    labels = np.array([truth.get(t, False) for t in ids], dtype=int)
    return labels, silver["card_id"].to_numpy(zero_copy_only=False), scores


def _gate(training) -> dict:
    """The promotion gate's verdict of a training run: its check's description and figures."""
    [check] = [
        e.event_specific_data
        for e in training.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "promotion_gate"
    ]
    figures = {k: v.value for k, v in check.metadata.items() if isinstance(v.value, int | float)}
    return {"passed": check.passed, "description": check.description, **figures}


def run_one(seed: int, scenario: str, scale: Scale) -> dict:
    """One run of the loop in this process's FRAUD_HOME."""
    import dagster as dg
    import mlflow
    from mlflow import MlflowClient

    from assets.partitions import range_tags
    from demo.runner import release
    from ml.comparison import paired_bootstrap
    from ml.registry import MODEL_NAME
    from resources import build_resources
    from settings.env import fraud_home, prepare_process_environment
    from simulator.landing import generate

    prepare_process_environment()
    started = time.perf_counter()
    home = fraud_home()
    upstream, landing = home / "upstream", home / "landing"
    total = scale.train_days + scale.watched + scale.drift + scale.eval
    drift_index = scale.train_days + scale.watched
    generate(upstream, days=total, customers=scale.customers, seed=seed, start=START,
             scenario=scenario, drift_day=drift_index)  # fmt: skip
    resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
    mlflow.set_tracking_uri(resources["mlflow"].tracking_uri)
    tuning = {"training__tuned_model": {"config": TUNING}}

    def land(first: int, last: int) -> None:
        release(upstream, landing, _day(first), _day(last))
        _must(_run("daily_job", resources, instance, range_tags(_day(first), _day(last))),
              f"daily_job {_day(first)}..{_day(last)}")  # fmt: skip

    land(0, scale.train_days - 1)
    _must(_run("training_job", resources, instance, run_config={"ops": tuning}), "training v1")
    client = MlflowClient()
    old = client.get_model_version_by_alias(MODEL_NAME, "champion").version

    watched_last = drift_index + scale.drift - 1
    land(scale.train_days, watched_last)
    _must(_run("scoring_job", resources, instance,
               range_tags(_day(scale.train_days), _day(watched_last))), "scoring")  # fmt: skip
    days = []
    for index in range(scale.train_days, watched_last + 1):
        day = _day(index)
        report = _run("monitoring_job", resources, instance, partition_key=day.isoformat())
        meta = _materialized(_must(report, f"report {day}"), "monitoring/drift_report")
        figures = {k: meta.get(k) for k in FIGURES}
        days.append({"index": index - drift_index, "alarm": bool(meta.get("alarm")),
                     "reasons": meta.get("alarm_reasons", []), **figures})  # fmt: skip
    drifted = scenario != "baseline"
    first_alarm = next((d for d in days if d["alarm"] and d["index"] >= 0 and drifted), None)
    reason = "; ".join(first_alarm["reasons"]) if first_alarm else "scheduled (no alarm)"

    training = _run("training_job", resources, instance, run_config={"ops": tuning},
                    tags={"fraud/trigger_reason": reason[:200]})  # fmt: skip
    gate = _gate(training)
    new = client.get_model_version_by_alias(MODEL_NAME, "challenger").version
    promoted = client.get_model_version_by_alias(MODEL_NAME, "champion").version == new

    land(watched_last + 1, total - 1)
    truth = _truth(seed, scenario, scale, watched_last + 1, total - 1)
    labels, cards, scores = _scores_on_truth(
        resources, [old, new], _day(watched_last + 1), _day(total - 1), truth
    )
    compared = paired_bootstrap(labels, scores[old], scores[new], clusters=cards)
    return {
        "seed": seed,
        "scenario": scenario,
        "reason": reason,
        "gate": gate,
        "promoted": promoted,
        "truth": {metric: asdict(found) for metric, found in compared.items()},
        "truth_frauds": int(labels.sum()),
        "days": days,
        "seconds": round(time.perf_counter() - started),
    }


def _materialized(result, key: str) -> dict:
    from assets.metadata import materialized

    return materialized(result).get(key, {})


def judged(found: dict, policy) -> dict:
    """A run's drift figures judged by `policy` (the current defaults, whatever the run used):
    the alarms on baseline days, their largest figures, and the drift day of the first alarm
    (1 = the drift's first day)."""

    from monitoring.drift_policy import sustained

    weighted = [day["weighted_drift"] or 0.0 for day in found["days"]]

    def alarm(at: int) -> bool:
        day = found["days"][at]
        return (
            weighted[at] >= policy.weighted_drift_threshold
            or sustained(weighted[at], weighted[:at], policy)
            or (day["drift_share"] or 0.0) >= policy.drift_share_threshold
            or (day["prediction_drift"] or 0.0) >= policy.prediction_drift_threshold
            or (day["missed_fraud_p_value"] or 1.0) < policy.missed_fraud_alpha
        )

    drifted = found["scenario"] != "baseline"
    alarms = [alarm(at) for at in range(len(found["days"]))]
    baseline = [d for d in found["days"] if d["index"] < 0 or not drifted]
    first = next(
        (d for d, hit in zip(found["days"], alarms, strict=True)
         if d["index"] >= 0 and drifted and hit),
        None,
    )  # fmt: skip
    return {
        "baseline_alarms": sum(
            hit for d, hit in zip(found["days"], alarms, strict=True) if d in baseline
        ),
        "weighted_drift": max((d["weighted_drift"] or 0.0) for d in baseline),
        "drift_share": max((d["drift_share"] or 0.0) for d in baseline),
        "prediction_drift": max((d["prediction_drift"] or 0.0) for d in baseline),
        "min_p": min((d["missed_fraud_p_value"] or 1.0) for d in baseline),
        "first_alarm_day": first["index"] + 1 if first else None,
        "alarms": alarms,
    }


def gate_judged(found: dict, config) -> tuple[bool, str]:
    """The run's gate decided again from its recorded bounds by `config` (today's tolerances,
    whatever the run used): (promote, what the gate saw)."""
    from ml.comparison import METRICS, PairedMetric

    gate = found["gate"]
    intervals = {
        metric: PairedMetric(*(gate[f"{metric}_{k}"] for k in
                               ("champion", "challenger", "difference", "low", "high")))
        for metric in METRICS
    }  # fmt: skip
    status, passed, _ = judge(
        intervals, int(gate["frauds"]), gate["latency_ms_1000_rows"],
        gate["takeover_scored_higher"], config,
    )  # fmt: skip
    pr_auc = intervals["pr_auc"]
    seen = (
        f"{status}: PR-AUC {pr_auc.difference:+.3f} [{pr_auc.low:+.3f}, "
        f"{pr_auc.high:+.3f}] on {int(gate['frauds'])} reported frauds"
    )
    return passed, seen


def _row(found: dict, policy, config) -> str:
    seen = judged(found, policy)
    promoted, gate = gate_judged(found, config)
    truth = found["truth"]["pr_auc"]
    delta, low, high = (truth[k] for k in ("difference", "low", "high"))
    return (
        f"{found['scenario']:19} {found['seed']:>4} {seen['baseline_alarms']:>5} "
        f"{seen['weighted_drift']:>6.2f} {seen['drift_share']:>6.2f} "
        f"{seen['prediction_drift']:>6.3f} {seen['min_p']:>8.1e} "
        f"{seen['first_alarm_day'] or '-':>6} "
        f"{'promoted' if promoted else 'kept':>9} "
        f"{delta:+.3f} [{low:+.3f}, {high:+.3f}] {found['truth_frauds']:>6} "
        f"{found['seconds']:>5}s  {found['reason'][:60]} | gate: {gate}"
    )


HEADER = (
    f"{'scenario':19} {'seed':>4} {'b.alm':>5} {'b.wdr':>6} {'b.dsh':>6} {'b.pdr':>6} "
    f"{'b.min_p':>8} {'alarm':>6} {'gate':>9} {'truth dPR-AUC new-old [bounds]':>30} "
    f"{'frauds':>6} {'time':>6}"
)


def summary(results: list[dict], policy, config, tolerance: float) -> list[str]:
    """The targets, each against the grid's runs."""
    seen = [judged(r, policy) for r in results]
    promoted = [gate_judged(r, config)[0] for r in results]
    lines = [
        f"runs judged: {len(results)} (a run that failed has no row and counts nowhere below)",
        f"drift alarms on baseline days: {sum(s['baseline_alarms'] for s in seen)} (target 0)",
    ]
    for scenario, within in ALARM_WITHIN.items():
        runs = [s for r, s in zip(results, seen, strict=True) if r["scenario"] == scenario]
        if runs:
            on_time = sum(s["first_alarm_day"] is not None and s["first_alarm_day"] <= within
                          for s in runs)  # fmt: skip
            lines.append(f"{scenario}: alarm within {within} days in {on_time}/{len(runs)} runs")
    new_pattern = [
        (r, up) for r, up in zip(results, promoted, strict=True)
        if r["scenario"] == "new_fraud_pattern"
    ]  # fmt: skip
    if new_pattern:
        better = sum(up and r["truth"]["pr_auc"]["difference"] > 0 for r, up in new_pattern)
        lines.append(f"new_fraud_pattern: retrained champion better on truth in "
                     f"{better}/{len(new_pattern)} runs")  # fmt: skip
    agree = worse_promoted = 0
    for r, up in zip(results, promoted, strict=True):
        truth = r["truth"]["pr_auc"]
        if up:
            agree += truth["difference"] >= -tolerance
        else:
            agree += truth["difference"] <= tolerance
        worse_promoted += up and truth["high"] < 0
    lines.append(f"gate agrees with the truth in {agree}/{len(results)} runs (target >= 90%; "
                 f"promoted: new not worse than old by more than {tolerance}; kept: new not "
                 f"better by more than {tolerance})")  # fmt: skip
    lines.append(f"promoted a model worse on the truth with 95% confidence: {worse_promoted} "
                 "(target 0)")  # fmt: skip
    return lines


def _days(found: dict, policy) -> str:
    """A run's days: index (0 = the drift's first), A when the policy alarms, weighted drift."""
    alarms = judged(found, policy)["alarms"]
    return " ".join(
        f"{day['index']}:{'A' if hit else '.'}{day['weighted_drift'] or 0:.2f}"
        for day, hit in zip(found["days"], alarms, strict=True)
    )


def _print_all(results: list[dict], policy) -> None:
    config = GatePolicy()
    print(HEADER)
    for found in results:
        print(_row(found, policy, config))
    print("\n".join(["", *summary(results, policy, config, tolerance=0.02), ""]))
    for found in results:
        print(f"{found['scenario']:19} {found['seed']:>4}  {_days(found, policy)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--customers", type=int, default=Scale.customers)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fraud-bench-loop"))
    parser.add_argument(
        "--summarize", type=Path, nargs="+", metavar="OUT",
        help="print the rows and targets of earlier runs' folders, judged by today's drift "
        "policy and gate tolerances",
    )  # fmt: skip
    parser.add_argument("--one", nargs=2, metavar=("SEED", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scale = Scale(customers=args.customers)
    policy = DriftPolicy()
    if args.summarize:
        found = [json.loads(p.read_text()) for out in args.summarize
                 for p in sorted(out.glob("*/result.json"))]  # fmt: skip
        _print_all(sorted(found, key=lambda r: (SCENARIOS.index(r["scenario"]), r["seed"])), policy)
        return 0
    if args.one:
        found = run_one(int(args.one[0]), args.one[1], scale)
        Path(os.environ["FRAUD_BENCH_RESULT"]).write_text(json.dumps(found, default=str))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"loop benchmark: {scale}, tuning {TUNING}, {policy}; homes and logs under {args.out}")
    print(HEADER, flush=True)
    results = []
    for scenario in args.scenarios:
        for seed in args.seeds:
            home = args.out / f"{scenario}-{seed}"
            result_file = home / "result.json"
            log = args.out / f"{scenario}-{seed}.log"
            subprocess.run(["rm", "-rf", str(home)], check=True)
            home.mkdir(parents=True)
            env = {**os.environ, "FRAUD_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
                   "FRAUD_BENCH_RESULT": str(result_file)}  # fmt: skip
            env.pop("MLFLOW_TRACKING_URI", None)
            with log.open("w") as handle:
                done = subprocess.run(
                    [sys.executable, "-m", "bench.loop", "--customers", str(args.customers),
                     "--one", str(seed), scenario],
                    env=env, stdout=handle, stderr=subprocess.STDOUT,
                )  # fmt: skip
            if done.returncode or not result_file.exists():
                print(
                    f"{scenario:19} {seed:>4} FAILED (rc {done.returncode}; see {log})", flush=True
                )
                continue
            found = json.loads(result_file.read_text())
            results.append(found)
            print(_row(found, policy, GatePolicy()), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print("\n".join(["", *summary(results, policy, GatePolicy(), tolerance=0.02)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
