"""Benchmark: rollout and operations on the scoring API, with the demo's champion and features
(run `make demo` first; needs wrk: `apt-get install wrk`).

    python -m bench.rollout [--seconds 20] [--rounds 2]

- Hot swap under 500 req/s: the API follows `champion` (polling every second); 10 s into a 40 s
  run the alias moves to a copy of the champion (a new registry version of the same model, so
  that loading costs what a real one does), and back afterwards. Figures: answers that were not
  200, and the service's p99 (`latency_ms`) from the move until the last answer of the old
  version, against the 10 s before the move.
- Shadow on (FRAUD_SHADOW = the copy) against off: p99 at 300 req/s.
- Attributions on (the default) against off (FRAUD_ATTRIBUTIONS=off, the rules): p99 at
  300 req/s.
- Metrics on (the default) against off (FRAUD_METRICS=off): 2xx/s at 32 clients.
Every setting runs `--rounds` times, the settings taking turns (these machines are noisy: the
comparisons are within one run), each on a fresh server warmed for 20 s. Targets (issue
"Safe model rollout and observability"): 0 failed requests and a swap p99 within 2x of steady
state; shadow p99 within 10% of off; attributions p99 within 2 ms of off; metrics throughput
within 5% of off."""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

from bench.servers import stop_server
from bench.serving_load import PACED_CONNECTIONS, WARM_UP_S, demo_bento, drive, serve_bento

PORT = 3990
SETTINGS = {
    "base": {},
    "shadow on": {"FRAUD_SHADOW": "{copy}"},
    "attributions off": {"FRAUD_ATTRIBUTIONS": "off"},
    "metrics off": {"FRAUD_METRICS": "off"},
}


def copy_of_champion(client) -> tuple[str, str]:
    """(champion, a new registry version of the champion's model, tagged as the bench's)."""
    from ml.registry import MODEL_NAME, version_by_alias

    champion = version_by_alias("champion", client)
    copy = client.create_model_version(MODEL_NAME, champion.source, champion.run_id,
                                       tags={**champion.tags, "bench": "rollout copy"})  # fmt: skip
    return str(champion.version), str(copy.version)


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else float("nan")


def hot_swap(payloads: str, tag: str, client, champion: str, copy: str, env: dict) -> dict:
    """One 40 s run at 500 req/s with `champion` moved to `copy` at 10 s: the figures."""
    from ml.registry import MODEL_NAME

    timeline = os.path.join(tempfile.mkdtemp(prefix="fraud-rollout-bench-"), "answers.csv")
    server = serve_bento(tag, env)
    moved = {}
    try:
        drive(payloads, 32, 0, WARM_UP_S)

        def move() -> None:
            time.sleep(10)
            moved["at_ms"] = time.monotonic() * 1000
            client.set_registered_model_alias(MODEL_NAME, "champion", copy)

        mover = threading.Thread(target=move)
        mover.start()
        total = drive(payloads, PACED_CONNECTIONS, 500, 40, timeline=timeline)
        mover.join()
    finally:
        client.set_registered_model_alias(MODEL_NAME, "champion", champion)
        stop_server(server, PORT)
    answers = []
    with open(timeline) as lines:
        for line in lines:
            at, status, ms, version = line.strip().split(",")
            answers.append((float(at), int(status), float(ms) if ms else None, version))
    start = moved["at_ms"]
    old_last = max(at for at, status, _, version in answers if version == champion)
    before = [ms for at, s, ms, _ in answers if start - 10_000 <= at < start and s == 200]
    during = [ms for at, s, ms, _ in answers if start <= at <= old_last + 1000 and s == 200]
    return {
        "answers": len(answers),
        "failed": sum(1 for _, status, _, _ in answers if status != 200),
        "socket_errors": total["socket_errors"],
        "swap_s": (old_last - start) / 1000,
        "steady_p99": _p99(before),
        "swap_p99": _p99(during),
        "during": len(during),
        "new_version_answers": sum(1 for *_, version in answers if version == copy),
        "ok_per_s": total["ok_per_s"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench.rollout drives the API with wrk: install it (apt-get install wrk)")
        return 2
    import mlflow
    from mlflow import MlflowClient

    from settings.env import mlflow_tracking_uri

    tag, payloads, count = demo_bento()
    uri = mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri, uri)
    champion, copy = copy_of_champion(client)
    base_env = {"FRAUD_WORKERS": str(os.cpu_count()), "FRAUD_MODEL_POLL_S": "1"}
    print(f"bento {tag}; champion v{champion}, its copy v{copy}; {count} demo transactions")

    swap = hot_swap(payloads, tag, client, champion, copy, base_env)
    print("\nhot swap at 500 req/s (service latency_ms):")
    print(
        "| answers | not 200 | socket errors | swap took s | steady p99 ms | p99 during swap "
        "ms (answers) | answers by the new version | 2xx/s |\n|---|---|---|---|---|---|---|---|"
    )
    print(
        f"| {swap['answers']} | {swap['failed']} | {swap['socket_errors']} | "
        f"{swap['swap_s']:.1f} | {swap['steady_p99']:.2f} | {swap['swap_p99']:.2f} "
        f"({swap['during']}) | {swap['new_version_answers']} | {swap['ok_per_s']:.0f} |"
    )

    figures: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    print(
        "\n| setting | round | p50 ms | p99 ms | service p99 ms | answers at 300 req/s | "
        "2xx/s at 32 clients |\n|---|---|---|---|---|---|---|"
    )
    for round_ in range(1, args.rounds + 1):
        for name, extra in SETTINGS.items():
            env = {**base_env, **{k: v.format(copy=copy) for k, v in extra.items()}}
            server = serve_bento(tag, env)
            try:
                drive(payloads, 32, 0, WARM_UP_S)
                paced = drive(payloads, PACED_CONNECTIONS, 300, args.seconds)
                flat_out = drive(payloads, 32, 0, args.seconds)
            finally:
                stop_server(server, PORT)
            figures[name].append({"p99": paced["p99"], "ok_per_s": flat_out["ok_per_s"]})
            print(
                f"| {name} | {round_} | {paced['p50']:.2f} | {paced['p99']:.2f} | "
                f"{paced['service_p99']:.2f} | {paced['statuses']} | "
                f"{flat_out['ok_per_s']:,.0f} |",
                flush=True,
            )

    def median(name: str, key: str) -> float:
        return statistics.median(f[key] for f in figures[name])

    base_p99, base_rate = median("base", "p99"), median("base", "ok_per_s")
    unmetered = median("metrics off", "ok_per_s")
    print("\n| comparison (medians of the rounds) | figure | target |\n|---|---|---|")
    print(f"| hot swap: failed answers | {swap['failed'] + swap['socket_errors']} | 0 |")
    print(
        f"| hot swap: p99 during / steady | {swap['swap_p99'] / swap['steady_p99']:.2f}x | <= 2x |"
    )
    print(
        f"| shadow on: p99 vs off | {median('shadow on', 'p99'):.2f} vs {base_p99:.2f} ms "
        f"({median('shadow on', 'p99') / base_p99 - 1:+.0%}) | within 10% |"
    )
    print(
        f"| attributions on: p99 vs off | {base_p99:.2f} vs "
        f"{median('attributions off', 'p99'):.2f} ms "
        f"({base_p99 - median('attributions off', 'p99'):+.2f} ms) | within 2 ms |"
    )
    print(
        f"| metrics on: 2xx/s vs off | {base_rate:,.0f} vs {unmetered:,.0f} "
        f"({base_rate / unmetered - 1:+.1%}) | within 5% |"
    )
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
