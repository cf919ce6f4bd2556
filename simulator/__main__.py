"""Command line: `python -m simulator generate --days N --customers N --seed N --scenario NAME`
writes landing files; `python -m simulator handbook` writes the card-fraud handbook's dataset and
imports it as landing files; `python -m simulator stream --rate R --count N` publishes
transactions to the Redis Stream the stream worker reads (STREAM_URL, STREAM_NAME)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from simulator.landing import generate
from simulator.scenarios import SCENARIOS


def default_landing() -> Path:
    return Path(os.environ.get("FRAUD_HOME", ".fraud_home")) / "landing"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write daily landing files")
    gen.add_argument("--days", type=int, default=30, help="days to simulate (default 30)")
    gen.add_argument("--customers", type=int, default=2000, help="customers (default 2000)")
    gen.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    gen.add_argument("--scenario", choices=SCENARIOS, default="baseline")
    gen.add_argument(
        "--start-date",
        type=dt.date.fromisoformat,
        default=dt.date(2026, 1, 1),
        help="first simulated day, YYYY-MM-DD (default 2026-01-01)",
    )
    gen.add_argument(
        "--drift-day", type=int, default=None, help="0-based day the drift starts (default DAYS/2)"
    )
    gen.add_argument(
        "--malformed-rate", type=float, default=0.003, help="share of broken rows (default 0.003)"
    )
    gen.add_argument("--out", type=Path, default=None, help="landing folder ($FRAUD_HOME/landing)")
    book = commands.add_parser("handbook", help="the card-fraud handbook's dataset, imported")
    book.add_argument("--customers", type=int, default=5000, help="customers (default 5000)")
    book.add_argument("--terminals", type=int, default=10000, help="terminals (default 10000)")
    book.add_argument("--days", type=int, default=183, help="days (default 183)")
    book.add_argument(
        "--start-date", type=dt.date.fromisoformat, default=dt.date(2018, 4, 1),
        help="first day, YYYY-MM-DD (default 2018-04-01; FRAUD_PARTITIONS_START must not be later)",
    )  # fmt: skip
    book.add_argument("--out", type=Path, default=None, help="landing folder ($FRAUD_HOME/landing)")
    pub = commands.add_parser("stream", help="publish transactions to the Redis Stream")
    pub.add_argument("--rate", type=float, default=100.0, help="per second (0: at once)")
    pub.add_argument("--count", type=int, default=1000, help="messages (default 1000)")
    pub.add_argument("--customers", type=int, default=2000, help="customers (default 2000)")
    pub.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    pub.add_argument("--malformed-rate", type=float, default=0.0, help="share of broken messages")
    return parser


def _stream(args) -> int:
    import redis

    from settings.stream import StreamSettings
    from simulator.stream import publish

    settings = StreamSettings.from_environment()
    started = time.perf_counter()
    sent = publish(
        redis.Redis.from_url(settings.url), settings.name, args.count, args.rate,
        customers=args.customers, seed=args.seed, malformed_rate=args.malformed_rate,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"published {sent:,} transactions to {settings.name} in {elapsed:.1f}s")
    return 0


def _handbook(args) -> int:
    from ingest.importer import ImportRefused
    from simulator.handbook import HandbookSize, write_and_import

    landing = args.out or default_landing()
    size = HandbookSize(args.customers, args.terminals, args.days, args.start_date)
    started = time.perf_counter()
    try:
        table, summary = write_and_import(size, landing)
    except ImportRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {table} ({time.perf_counter() - started:.1f}s); imported to {landing}:")
    for line in summary.lines():
        print(f"  {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "stream":
        return _stream(args)
    if args.command == "handbook":
        return _handbook(args)
    if args.days < 1 or args.customers < 1:
        print("error: --days and --customers must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.malformed_rate < 1:
        print("error: --malformed-rate must be in [0, 1)", file=sys.stderr)
        return 2
    from tqdm import tqdm

    landing = args.out or default_landing()
    started = time.perf_counter()
    with tqdm(total=args.days, unit="day", desc="simulating", file=sys.stderr) as bar:
        totals = generate(
            landing,
            days=args.days,
            customers=args.customers,
            seed=args.seed,
            scenario=args.scenario,
            start=args.start_date,
            drift_day=args.drift_day,
            malformed_rate=args.malformed_rate,
            progress=bar.update,
        )
    end = args.start_date + dt.timedelta(days=args.days - 1)
    fraud_rate = totals["fraud"] / max(totals["transactions"], 1)
    print(
        f"wrote {args.days} days ({args.start_date} .. {end}) to {landing}: "
        f"{totals['transactions']:,} transactions ({fraud_rate:.2%} fraud), "
        f"{totals['fraud_reports']:,} fraud reports, scenario {args.scenario}, "
        f"{time.perf_counter() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
