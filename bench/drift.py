"""Benchmark: a drift report of 1M reference rows against 100k current rows x 20 columns
(14 numbers, 6 categories; 4 of them drifted), two ways, each in its own process:
- naive: Evidently's DataDriftPreset on the full pandas frames;
- sketch: the reference held as Arrow (as read from Delta), sketched to 100k rows
  (`monitoring.drift.sketch`), then the same preset (`monitoring.drift.detect_drift`).
Prints the wall time of each (data in memory -> verdicts), the peak resident memory of each
process, and both sets of drifted-column verdicts.

    python -m bench.drift [--reference 1000000] [--current 100000]

Target (issue 7): <= 10 s and <= 1 GiB, with the naive run's verdicts."""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

GIB = 1024**3
NUMERIC, CATEGORICAL = 14, 6


def _columns(rows: int, drifted: bool, seed: int) -> dict:
    """Column name -> values (numbers: float64; categories: (codes, vocabulary)). Drifted:
    amounts up 30% on three numbers, one category's mix moved."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(NUMERIC):
        shift = 0.26 if drifted and i < 3 else 0.0
        values = rng.lognormal(1.0 + shift, 1.0, rows)
        values[rng.random(rows) < 0.01] = np.nan  # a little missing data, as in real columns
        out[f"num_{i}"] = values
    for i in range(CATEGORICAL):
        vocabulary = np.array([f"c{i}_{j}" for j in range(5 + 3 * i)], dtype=object)
        weights = np.linspace(1, 3, len(vocabulary))
        if drifted and i == 0:
            weights = weights[::-1]
        out[f"cat_{i}"] = (rng.choice(len(vocabulary), rows, p=weights / weights.sum()), vocabulary)
    return out


def _run(mode: str, reference_rows: int, current_rows: int, out: str) -> None:
    import pandas as pd
    import pyarrow as pa

    from monitoring.drift import detect_drift, sketch

    numeric = [f"num_{i}" for i in range(NUMERIC)]
    categorical = [f"cat_{i}" for i in range(CATEGORICAL)]
    reference = _columns(reference_rows, drifted=False, seed=1)
    current = _columns(current_rows, drifted=True, seed=2)

    def frame(columns: dict) -> pd.DataFrame:
        return pd.DataFrame(
            {n: v if n in numeric else v[1][v[0]] for n, v in columns.items()}
        )  # categories as Python strings, as a Delta table's to_pandas() gives them

    if mode == "naive":
        reference_table = frame(reference)
    else:
        reference_table = pa.table(
            {
                n: v if n in numeric else pa.DictionaryArray.from_arrays(v[0], list(v[1]))
                for n, v in reference.items()
            }
        )
    current_frame = frame(current)
    del reference, current
    started = time.perf_counter()
    if mode == "sketch":
        reference_table = sketch(reference_table, numeric, categorical)
    result = detect_drift(reference_table, current_frame, numeric, categorical)
    seconds = time.perf_counter() - started
    verdicts = {c.column: [c.drifted, round(c.score, 4), c.method] for c in result.columns}
    with open(out, "w") as file:
        json.dump({"seconds": seconds, "verdicts": verdicts}, file)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", type=int, default=1_000_000)
    parser.add_argument("--current", type=int, default=100_000)
    parser.add_argument("--mode", choices=["naive", "sketch"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # a child: one way, figures to --out
        _run(args.mode, args.reference, args.current, args.out)
        return 0

    from bench.process_tree import run_measured

    print(f"reference {args.reference:,} rows, current {args.current:,} rows, "
          f"{NUMERIC} numbers + {CATEGORICAL} categories")  # fmt: skip
    found = {}
    for mode in ("naive", "sketch"):
        out = os.path.join(tempfile.mkdtemp(prefix="fraud-drift-bench-"), "figures.json")
        command = [sys.executable, "-m", "bench.drift", "--mode", mode, "--out", out,
                   "--reference", str(args.reference), "--current", str(args.current)]  # fmt: skip
        code, _, peak = run_measured(command)
        if code:
            print(f"{mode}: failed ({code})")
            return code
        with open(out) as file:
            found[mode] = json.load(file)
        print(f"{mode}: {found[mode]['seconds']:.1f} s, peak {peak / GIB:.2f} GiB (the process)")
    print("| column | method | naive score | drifted | sketch score | drifted |")
    print("|---|---|---|---|---|---|")
    for column, (drifted, score, method) in found["naive"]["verdicts"].items():
        s_drifted, s_score, _ = found["sketch"]["verdicts"][column]
        print(f"| {column} | {method} | {score} | {drifted} | {s_score} | {s_drifted} |")
    same = all(
        found["naive"]["verdicts"][c][0] == v[0] for c, v in found["sketch"]["verdicts"].items()
    )
    print(f"same verdicts: {same}; machine: {os.cpu_count()} cores; "
          f"date {time.strftime('%Y-%m-%d')}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
