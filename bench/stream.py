"""Benchmark: the stream worker, with the demo's champion and features (run `make demo` first).

    python -m bench.stream [--events 20000] [--rate 2000] [--seconds 10]

On a throw-away stream (Redis db 11, flushed; the prediction log of a temporary lakehouse):
1. backlog: `--events` messages published at once, then drained by one worker: events/s;
2. sustained: messages published at `--rate`/s for `--seconds` while the worker runs: the
   event-to-score latency (log's `scored_at` minus the message's `event_timestamp`), p50 / p99.
Targets (issue 6): >= 5,000 events/s sustained; p99 event-to-score <= 100 ms."""

import argparse
import os
import sys
import tempfile
import threading
import time

STREAM_DB = 11


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    import numpy as np
    import redis

    from lakehouse.delta import ALL_DAYS, read_days
    from resources.settings import prepare_process_environment
    from serving.stream import build_worker
    from simulator.stream import publish
    from tests.services import ensure_redis, flush_redis_db

    prepare_process_environment()
    ensure_redis()
    flush_redis_db(STREAM_DB)
    os.environ["STREAM_URL"] = f"redis://127.0.0.1:6379/{STREAM_DB}"
    os.environ["LAKEHOUSE_URI"] = tempfile.mkdtemp(prefix="fraud-stream-bench-")
    worker = build_worker()
    client = redis.Redis(db=STREAM_DB)
    name = worker.settings.name

    publish(client, name, args.events, rate=0)
    started = time.perf_counter()
    counts = worker.run(args.batch, block_ms=200, max_idle_s=60, until_idle=True)
    backlog_s = time.perf_counter() - started
    print(f"backlog: {counts['scored']:,} events in {backlog_s:.1f} s = "
          f"{counts['scored'] / backlog_s:,.0f} events/s (batch {args.batch})")  # fmt: skip

    flush_redis_db(STREAM_DB)
    worker = build_worker()
    total = int(args.rate * args.seconds)
    feeder = threading.Thread(target=publish, args=(client, name, total, args.rate))
    consumer = threading.Thread(target=worker.run, args=(args.batch, 50, 60))
    started = time.perf_counter()
    consumer.start()
    feeder.start()
    feeder.join()
    deadline = time.monotonic() + 120
    log_uri = f"{os.environ['LAKEHOUSE_URI']}/monitoring/prediction_log"
    while time.monotonic() < deadline:
        if (
            client.xinfo_groups(name)[0]["lag"] == 0
            and not client.xpending(name, worker.settings.group)["pending"]
        ):
            break
        time.sleep(0.2)
    worker.stopping = True
    consumer.join()
    elapsed = time.perf_counter() - started
    log = read_days(log_uri, *ALL_DAYS, columns=["event_timestamp", "scored_at"]).to_pandas()
    log = log.tail(total)
    latency = (log["scored_at"] - log["event_timestamp"]).dt.total_seconds().to_numpy() * 1000
    p50, p99 = np.percentile(latency, [50, 99])
    print(f"sustained: {total:,} events offered at {args.rate:,.0f}/s, done in {elapsed:.1f} s "
          f"({total / elapsed:,.0f} events/s); event-to-score p50 {p50:.0f} ms, "
          f"p99 {p99:.0f} ms")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
