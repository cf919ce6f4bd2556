"""Eight processes backfilling a day each of the same Delta tables at once, while another keeps
appending to a log table, as parallel partition runs beside the stream worker do: every write
succeeds in one commit, every day holds exactly the rows of its last re-run, the log every
appended row once. (Only the table's storage: eight Dagster runs of the Spark step at once do
not fit a 2-core machine.)"""

import datetime as dt
import os
import subprocess
import sys

import pytest

from lakehouse.delta import read_days, table_version

pytestmark = [pytest.mark.integration, pytest.mark.faults]
FIRST = dt.date(2026, 1, 1)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(8)]
BACKFILL = """
import datetime as dt, sys
import pyarrow as pa
from lakehouse.delta import overwrite_days

root, day = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
for attempt in range(10):  # a partition re-run nine times, as retried backfills would
    for table in ("silver", "gold"):
        ids = [f"{table}-{day}-{i}" for i in range(500)]
        rows = pa.table({"day": pa.array([day] * 500, pa.date32()), "id": ids,
                         "attempt": [attempt] * 500})
        overwrite_days(f"{root}/{table}", rows, day, day)
"""
APPEND = """
import datetime as dt, sys
import pyarrow as pa
from lakehouse.delta import Appender

log, first = Appender(sys.argv[1]), dt.date.fromisoformat(sys.argv[2])
for batch in range(40):
    day = first + dt.timedelta(days=batch % 8)
    ids = [f"stream-{batch}-{i}" for i in range(25)]
    log.append(pa.table({"day": pa.array([day] * 25, pa.date32()), "id": ids}))
"""


def test_eight_parallel_backfills_and_an_appender_leave_every_row_exactly_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    root = str(tmp_path)
    processes = [
        subprocess.Popen([sys.executable, "-c", BACKFILL, root, day.isoformat()], env=env,
                         stderr=subprocess.PIPE, text=True)
        for day in DAYS
    ]  # fmt: skip
    processes.append(
        subprocess.Popen([sys.executable, "-c", APPEND, f"{root}/log", FIRST.isoformat()],
                         env=env, stderr=subprocess.PIPE, text=True)
    )  # fmt: skip
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-2000:]
    for table in ("silver", "gold"):
        rows = read_days(f"{root}/{table}", DAYS[0], DAYS[-1]).to_pylist()
        assert len(rows) == 8 * 500
        for day in DAYS:
            of_day = [r for r in rows if r["day"] == day]
            assert sorted(r["id"] for r in of_day) == sorted(
                f"{table}-{day}-{i}" for i in range(500)
            )
            assert {r["attempt"] for r in of_day} == {9}  # the last re-run, whole
        assert table_version(f"{root}/{table}") == 8 * 10 - 1  # one commit per write
    logged = read_days(f"{root}/log", DAYS[0], DAYS[-1]).column("id").to_pylist()
    assert len(logged) == 40 * 25 and len(set(logged)) == 40 * 25
