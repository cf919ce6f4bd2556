"""The prediction log's journal: scores answered by a process that is then killed reach the log
once, whatever the moment of the kill; a live process's journal is left alone; a torn record is
left out; past its bound of pending rows, the writer says it is not accepting."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from tests.support.rows import prediction_log_rows as rows

pytestmark = [pytest.mark.integration, pytest.mark.faults]

PROCESS = """
import os, signal
from serving.prediction_log import PredictionLogWriter
from tests.support.rows import prediction_log_rows as rows
w = PredictionLogWriter({log!r}, flush_s=3600, journal_dir={journal!r})
{body}
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_after(tmp_path: Path, body: str) -> None:
    """Run `body` in a process with a journaled writer `w` on tmp_path's log, then SIGKILL it."""
    log, journal = str(tmp_path / "log"), str(tmp_path / "journal")
    script = PROCESS.format(log=log, journal=journal, body=textwrap.dedent(body))
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode == -9, done.stderr


def _logged(tmp_path: Path) -> list[str]:
    from lakehouse.delta import ALL_DAYS, read_days

    return sorted(read_days(str(tmp_path / "log"), *ALL_DAYS).column("transaction_id").to_pylist())


def _replayed(tmp_path: Path) -> None:
    """A new process's writer on the same journal directory, flushed and closed."""
    from serving.prediction_log import PredictionLogWriter

    writer = PredictionLogWriter(
        str(tmp_path / "log"), flush_s=3600, journal_dir=tmp_path / "journal"
    )
    assert writer.flush()
    writer.close()


def test_scores_of_a_process_killed_before_any_commit_reach_the_log_once(tmp_path):
    _killed_after(tmp_path, 'w.add(rows("a", "b"))\nw.add(rows("c"))\n')
    assert not (tmp_path / "log").exists()  # nothing was committed before the kill
    _replayed(tmp_path)
    assert _logged(tmp_path) == ["a", "b", "c"]
    assert list((tmp_path / "journal").iterdir()) == []  # replayed, then removed
    _replayed(tmp_path)  # nothing left to replay: nothing doubled
    assert _logged(tmp_path) == ["a", "b", "c"]


def test_a_kill_between_a_commit_and_the_journals_cleanup_doubles_nothing(tmp_path):
    body = """
    from serving.journal import Journal
    Journal.release = lambda self, upto: None  # the kill comes before the cleanup
    w.add(rows("a", "b"))
    assert w.flush()
    w.add(rows("c"))  # answered, not committed
    """
    _killed_after(tmp_path, body)
    assert _logged(tmp_path) == ["a", "b"]
    assert len(list((tmp_path / "journal").glob("*.journal"))) == 2  # both segments left
    _replayed(tmp_path)
    assert _logged(tmp_path) == ["a", "b", "c"]


def test_a_record_torn_by_the_kill_is_left_out_and_the_whole_ones_replayed(tmp_path):
    _killed_after(tmp_path, 'w.add(rows("a"))\nw.add(rows("b"))\n')
    [segment] = (tmp_path / "journal").glob("*.journal")
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 10])  # the second record cut short
    _replayed(tmp_path)
    assert _logged(tmp_path) == ["a"]


def test_a_live_processs_journal_is_not_replayed_by_another(tmp_path):
    from serving.prediction_log import PredictionLogWriter

    journal = tmp_path / "journal"
    live = PredictionLogWriter(str(tmp_path / "log"), flush_s=3600, journal_dir=journal)
    live.add(rows("mine"))
    _replayed(tmp_path)  # another writer on the same directory
    assert not (tmp_path / "log").exists()
    live.close()  # commits its own rows
    assert _logged(tmp_path) == ["mine"]
    assert list((tmp_path / "journal").iterdir()) == []


def test_past_its_bound_the_writer_stops_accepting_until_the_store_takes_the_rows(tmp_path):
    from serving.prediction_log import PredictionLogWriter

    log = tmp_path / "log"
    log.write_text("not a directory: the store is down")
    writer = PredictionLogWriter(
        str(log), flush_s=0.05, max_pending_rows=3, journal_dir=tmp_path / "journal"
    )
    writer.add(rows("a", "b"))
    assert writer.accepting
    writer.add(rows("c"))
    assert not writer.accepting and not writer.flush()
    log.unlink()  # the store is back
    assert writer.flush() and writer.accepting and writer.pending_rows == 0
    writer.close()
    assert _logged(tmp_path) == ["a", "b", "c"]


@pytest.mark.parametrize("item", [rows("x"), ("a scored batch", ("amount_usd",), "online", 1.5)])
def test_a_journal_record_reads_back_as_written(tmp_path, item):
    from serving.journal import Journal, orphaned

    journal = Journal(tmp_path)
    journal.append(item)
    journal.append(item)
    os.close(journal._lock_fd)  # as if the process had died
    with orphaned(tmp_path) as [orphan]:
        records = list(orphan.records(after=-1))
    assert len(records) == 2
    for record in records:
        assert record.equals(item) if isinstance(item, pa.Table) else record == item
