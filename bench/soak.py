"""Benchmark: the scoring API held at a steady rate for minutes, with the demo's champion and
features (run `make demo` first; needs wrk: `apt-get install wrk`).

    python -m bench.soak [--minutes 10] [--rate 300] [--workers N]

Serves the champion's bento as `bench.serving_load` does (features in Redis, the prediction log
and its journal in a throw-away lakehouse), warms it up, then drives it with wrk at `--rate`
req/s in one-minute slices. After each slice: the answers by status, p99, and the resident
memory of the server's whole process tree. Targets: no 5xx; resident memory at the end within
10% of the first slice's."""

import argparse
import os
import shutil
import sys
import time

from bench.servers import stop_server
from bench.serving_load import (
    PACED_CONNECTIONS,
    PORT,
    WARM_UP_S,
    demo_bento,
    drive,
    serve_bento,
)

SLICE_S = 60


def _resident_mib(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes if p.is_running()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench.soak drives the API with wrk: install it (apt-get install wrk)")
        return 2

    tag, payloads, count = demo_bento()
    server = serve_bento(tag, {"FRAUD_WORKERS": str(args.workers)})
    print(f"bento {tag}; {args.workers} workers; {count} transactions of the demo; "
          f"{args.rate:g} req/s for {args.minutes} minutes")  # fmt: skip
    statuses: dict[str, int] = {}
    memory = []
    try:
        drive(payloads, 32, 0, WARM_UP_S)
        print("| minute | 2xx/s | p99 ms | answers | resident MiB |\n|---|---|---|---|---|")
        for minute in range(1, args.minutes + 1):
            figures = drive(payloads, PACED_CONNECTIONS, args.rate, SLICE_S)
            for status, n in figures["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
            memory.append(_resident_mib(server.pid))
            print(f"| {minute} | {figures['ok_per_s']:,.0f} | {figures['p99']:.1f} "
                  f"| {figures['statuses']} | {memory[-1]:,.0f} |", flush=True)  # fmt: skip
    finally:
        stop_server(server, PORT)
    growth = (memory[-1] - memory[0]) / memory[0] if memory else float("nan")
    errors = sum(n for status, n in statuses.items() if status.startswith("5"))
    print(f"answers {statuses}; 5xx: {errors}; resident memory {memory[0]:,.0f} -> "
          f"{memory[-1]:,.0f} MiB ({growth:+.1%}; target < +10%)")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d %H:%M UTC')}")
    return 0 if errors == 0 and growth < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
