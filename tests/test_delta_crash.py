"""A writer killed (SIGKILL) in the middle of a Delta overwrite, its data files half written and
its commit never made: the table reads, at the version before, with the rows before; the
next write goes on from there."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from lakehouse.delta import overwrite_days, read_days, table_version

pytestmark = [pytest.mark.integration, pytest.mark.faults]
FIRST, LAST = dt.date(2026, 1, 1), dt.date(2026, 3, 31)
WRITER = f"""
import datetime as dt
import sys
import numpy as np
import pyarrow as pa
from lakehouse.delta import overwrite_days

first, last = dt.date.fromisoformat("{FIRST}"), dt.date.fromisoformat("{LAST}")
days = np.arange(np.datetime64(first), np.datetime64(last) + 1).repeat(100_000)
rows = pa.table({{"day": pa.array(days, pa.date32()), "x": np.arange(len(days))}})
for _ in range(100):  # overwrite after overwrite, until the kill
    overwrite_days(sys.argv[1], rows, first, last)
"""


def _days(values: list[int]) -> pa.Table:
    days = [FIRST + dt.timedelta(days=i % 90) for i in range(len(values))]
    return pa.table({"day": pa.array(days, pa.date32()), "x": values})


def test_a_writer_killed_mid_commit_leaves_the_previous_version_whole(tmp_path):
    uri = str(tmp_path / "t")
    overwrite_days(uri, _days(list(range(900))), FIRST, LAST)
    before = sorted(read_days(uri, FIRST, LAST).column("x").to_pylist())
    files_before = set((tmp_path / "t").rglob("*.parquet"))
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, uri],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while not set((tmp_path / "t").rglob("*.parquet")) - files_before:
            assert writer.poll() is None, writer.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer wrote no data file in 2 minutes"
            time.sleep(0.005)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert set((tmp_path / "t").rglob("*.parquet")) - files_before  # its files are there
    assert table_version(uri) == 0  # and no commit of them
    assert sorted(read_days(uri, FIRST, LAST).column("x").to_pylist()) == before
    overwrite_days(uri, _days([7, 8, 9]), FIRST, LAST)  # the next writer goes on
    assert table_version(uri) == 1
    assert sorted(read_days(uri, FIRST, LAST).column("x").to_pylist()) == [7, 8, 9]
