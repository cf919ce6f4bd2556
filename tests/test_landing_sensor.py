"""The landing sensor asks for one bronze run per new file, and never twice for the same one."""

import os

import dagster as dg
import pytest

from resources.lakehouse import LakehouseResource
from sensors.landing import landing_sensor, new_files, scan_landing

pytestmark = pytest.mark.unit


def _landing(tmp_path):
    landing = tmp_path / "landing"
    (landing / "transactions").mkdir(parents=True)
    (landing / "fraud_reports").mkdir(parents=True)
    (landing / "transactions/transactions_2026-01-02.csv").write_text("a\n")
    (landing / "fraud_reports/fraud_reports_2026-01-02.jsonl").write_text("{}\n")
    (landing / "transactions/notes.txt").write_text("not a feed file\n")
    return landing


def _evaluate(landing, cursor=None):
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"lakehouse": LakehouseResource(root="unused", landing=str(landing))},
    )
    return landing_sensor(context)


def test_each_new_file_gets_one_run_request_with_a_stable_run_key(tmp_path):
    landing = _landing(tmp_path)
    first = _evaluate(landing)
    requests = sorted(first.run_requests, key=lambda r: r.run_key)
    assert [r.partition_key for r in requests] == ["2026-01-02", "2026-01-02"]
    assert [r.asset_selection for r in requests] == [
        [dg.AssetKey(["bronze", "fraud_reports"])],
        [dg.AssetKey(["bronze", "transactions"])],
    ]
    assert requests[1].run_key.startswith("transactions/transactions_2026-01-02.csv@")
    second = _evaluate(landing, cursor=first.cursor)
    assert second.run_requests == []


def test_a_rewritten_file_is_a_new_file(tmp_path):
    landing = _landing(tmp_path)
    first = _evaluate(landing)
    path = landing / "transactions/transactions_2026-01-02.csv"
    path.write_text("a\nb\n")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    again = _evaluate(landing, cursor=first.cursor)
    assert [r.partition_key for r in again.run_requests] == ["2026-01-02"]
    assert again.run_requests[0].run_key not in {r.run_key for r in first.run_requests}


def test_files_before_the_first_partition_are_skipped(tmp_path):
    landing = _landing(tmp_path)
    (landing / "transactions/transactions_2020-01-01.csv").write_text("a\n")
    result = _evaluate(landing)
    assert "2020-01-01" not in {r.partition_key for r in result.run_requests}


def test_the_cursor_forgets_files_that_are_gone(tmp_path):
    landing = _landing(tmp_path)
    files = scan_landing(landing)
    _, cursor = new_files(files, None)
    fresh, smaller = new_files(files[:1], cursor)
    assert fresh == []
    assert len(smaller) < len(cursor)
