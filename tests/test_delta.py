"""Delta IO: a partition-range overwrite replaces exactly its days, once, even under contention."""

import datetime as dt
import shutil
import threading

import pyarrow as pa
import pytest

from lakehouse.delta import overwrite_days, read_days, table_version

pytestmark = pytest.mark.unit
D1, D2, D3 = (dt.date(2026, 1, d) for d in (1, 2, 3))


def _rows(day: dt.date, values: list[int]) -> pa.Table:
    return pa.table({"day": pa.array([day] * len(values), pa.date32()), "x": values})


def test_overwrite_replaces_only_its_days_and_adds_one_version(tmp_path):
    uri = str(tmp_path / "t")
    overwrite_days(uri, pa.concat_tables([_rows(D1, [1, 2]), _rows(D2, [3])]), D1, D2)
    write = overwrite_days(uri, _rows(D2, [4, 5]), D2, D2)
    assert write.version == 1 and write.rows == 2
    again = overwrite_days(uri, _rows(D2, [4, 5]), D2, D2)
    assert again.version == 2
    assert sorted(read_days(uri, D1, D3).column("x").to_pylist()) == [1, 2, 4, 5]


def test_an_empty_write_clears_its_days(tmp_path):
    uri = str(tmp_path / "t")
    overwrite_days(uri, pa.concat_tables([_rows(D1, [1]), _rows(D2, [2])]), D1, D2)
    overwrite_days(uri, _rows(D2, []), D2, D2)
    assert read_days(uri, D1, D2).column("x").to_pylist() == [1]


def test_rows_outside_the_range_are_refused(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        overwrite_days(str(tmp_path / "t"), _rows(D3, [1]), D1, D2)
    assert table_version(str(tmp_path / "t")) is None


def test_reading_a_missing_table_names_it(tmp_path):
    from deltalake.exceptions import TableNotFoundError

    with pytest.raises(TableNotFoundError, match="materialize its upstream"):
        read_days(str(tmp_path / "nope"), D1, D2)


@pytest.mark.faults
def test_concurrent_writers_of_the_same_days_lose_and_double_nothing(tmp_path):
    uri = str(tmp_path / "t")
    overwrite_days(uri, _rows(D1, [0]), D1, D1)
    errors = []

    def writer(worker: int) -> None:
        try:
            for _ in range(5):
                overwrite_days(uri, _rows(D1, [worker] * 3), D1, D1)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    values = read_days(uri, D1, D1).column("x").to_pylist()
    assert len(values) == 3 and len(set(values)) == 1  # one writer's rows, whole, never mixed
    assert table_version(uri) == 20


def test_replaced_rows_stay_readable_by_time_travel_until_their_retention_expires(tmp_path):
    import datetime as dt_

    from deltalake import DeltaTable

    from lakehouse.delta import expire_history

    uri = str(tmp_path / "t")
    overwrite_days(uri, _rows(D1, [1]), D1, D1)
    overwrite_days(uri, _rows(D1, [2]), D1, D1)
    assert expire_history(uri, dt_.timedelta(days=7)) == 0  # replaced a moment ago: kept
    assert table_version(uri) == 1  # and nothing to delete adds no version
    assert DeltaTable(uri, version=0).to_pyarrow_table().column("x").to_pylist() == [1]
    assert read_days(uri, D1, D1).column("x").to_pylist() == [2]
    assert expire_history(uri, dt_.timedelta(0)) == 1  # a retention of nothing: gone
    with pytest.raises(Exception):  # noqa: B017 - delta-rs raises its own I/O error here
        DeltaTable(uri, version=0).to_pyarrow_table()
    assert read_days(uri, D1, D1).column("x").to_pylist() == [2]


def test_an_appender_keeps_adding_alongside_other_writers_and_evolves_the_schema(tmp_path):
    from lakehouse.delta import Appender, append_rows

    uri = str(tmp_path / "t")
    appender = Appender(uri)
    appender.append(_rows(D1, [1]))  # creates the table
    append_rows(uri, _rows(D2, [2]))  # another writer commits in between
    wider = _rows(D2, [3]).append_column("y", pa.array(["new"]))
    appender.append(wider, evolve_schema=True)
    appender.append(_rows(D3, [4]), evolve_schema=True)
    rows = read_days(uri, D1, D3).sort_by("x")
    assert rows.column("x").to_pylist() == [1, 2, 3, 4]
    assert rows.column("y").to_pylist() == [None, None, "new", None]
    assert table_version(uri) == 3
    shutil.rmtree(uri)  # the table removed under the appender (a reset): one append fails,
    with pytest.raises(Exception, match=r"schema|version"):
        appender.append(_rows(D1, [5]))
    appender.append(_rows(D1, [6]))  # the next one creates the table again
    assert read_days(uri, D1, D3).column("x").to_pylist() == [6]
