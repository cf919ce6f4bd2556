"""Benchmark: the stream worker, with the demo's champion and features (run `make demo` first).

    python -m bench.stream [--online-store redis|sqlite] [--events 20000] [--rate 5000]
                           [--seconds 20] [--batch 500]

On a throw-away stream (Redis db 11, flushed) and the prediction log of a temporary lakehouse;
features online in Redis (the production setting: the demo's newest days materialized into
db 10) or in the demo's SQLite file:
1. backlog: `--events` messages published at once, then drained by one worker (log committed
   and acknowledged included): events/s;
2. sustained: a publisher process (`python -m simulator stream`) sends `--rate` messages/s for
   `--seconds` while the worker runs: events/s done, and the event-to-score latency (the log's
   `scored_at` minus the `event_timestamp` the publisher stamped when it sent the message),
   p50 / p99 / max.
Targets (issue 6): >= 5,000 events/s sustained; p99 event-to-score <= 100 ms."""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

STREAM_DB = 11


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--online-store", choices=["redis", "sqlite"], default="redis")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    import numpy as np
    import redis

    from bench.redis_online import demo_features_in_redis
    from demo.services import ensure_redis, flush_redis_db
    from lakehouse.delta import ALL_DAYS, read_days
    from serving.stream import build_worker
    from settings.env import prepare_process_environment
    from simulator.stream import publish

    prepare_process_environment()
    ensure_redis()
    if args.online_store == "redis":
        demo_features_in_redis()
    flush_redis_db(STREAM_DB)
    os.environ["STREAM_URL"] = f"redis://127.0.0.1:6379/{STREAM_DB}"
    os.environ["LAKEHOUSE_URI"] = tempfile.mkdtemp(prefix="fraud-stream-bench-")
    log_uri = f"{os.environ['LAKEHOUSE_URI']}/monitoring/prediction_log"
    client = redis.Redis(db=STREAM_DB)
    print(f"online store: {args.online_store}; batches of up to {args.batch}")

    worker = build_worker()
    worker.velocity_push.wait_ready()  # its child's start-up is not part of the figures
    publish(client, worker.settings.name, args.events, rate=0)
    started = time.perf_counter()
    counts = worker.run(args.batch, block_ms=200, max_idle_s=60, until_idle=True)
    backlog_s = time.perf_counter() - started
    print(f"backlog: {counts['scored']:,} events in {backlog_s:.1f} s = "
          f"{counts['scored'] / backlog_s:,.0f} events/s")  # fmt: skip

    flush_redis_db(STREAM_DB)
    worker = build_worker()
    worker.velocity_push.wait_ready()
    name, group = worker.settings.name, worker.settings.group
    total = int(args.rate * args.seconds)
    consumer = threading.Thread(target=worker.run, args=(args.batch, 20, 60))
    consumer.start()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "simulator", "stream", "--rate", str(args.rate),
         "--count", str(total)], check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if client.xinfo_groups(name)[0]["lag"] == 0 and not client.xpending(name, group)["pending"]:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    worker.stopping = True
    consumer.join()
    log = read_days(log_uri, *ALL_DAYS, columns=["event_timestamp", "scored_at"]).to_pandas()
    log = log.sort_values("scored_at").tail(total)
    latency = (log["scored_at"] - log["event_timestamp"]).dt.total_seconds().to_numpy() * 1000
    p50, p99 = np.percentile(latency, [50, 99])
    print(f"sustained: {total:,} events offered at {args.rate:,.0f}/s, all logged and "
          f"acknowledged in {elapsed:.1f} s ({total / elapsed:,.0f} events/s); event-to-score "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {latency.max():.0f} ms")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
