"""Command line: `python -m ingest MAPPING.yaml [--landing DIR]` writes the mapped source table
(and its fraud reports) as landing files; the landing sensor or a backfill takes it from there."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ingest.importer import ImportRefused, import_table
from ingest.mapping import MappingError, load_mapping
from settings.env import fraud_home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("mapping", type=Path, help="the column-mapping file (YAML)")
    parser.add_argument("--landing", type=Path, default=None, help="($FRAUD_HOME/landing)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        mapping = load_mapping(args.mapping)
        summary = import_table(mapping, args.landing or fraud_home() / "landing")
    except (MappingError, ImportRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line)
    print(f"imported {mapping.transactions.name} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
