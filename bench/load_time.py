"""Benchmark: how long loading the Dagster definitions takes (target <= 3 s).

python -m bench.load_time
"""

import statistics
import subprocess
import sys
import time


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    imports = [_time([sys.executable, "-c", "import definitions"]) for _ in range(5)]
    validate = _time(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"]
    )
    median = statistics.median(imports)
    print(f"import definitions: median {median:.2f} s, max {max(imports):.2f} s (5 runs)")
    print(f"dagster definitions validate: {validate:.2f} s wall (CLI start included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
