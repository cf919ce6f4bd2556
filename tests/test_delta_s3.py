"""Delta tables on object storage: with LAKEHOUSE_URI on S3 (here a local S3-compatible server,
moto's server mode), two writer processes appending and overwriting partitions at once leave
every row exactly once. delta-rs commits with S3's conditional puts; the server refuses them as
S3 does, which the first test checks (the safety of the second rests on it)."""

import datetime as dt
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.faults]
BUCKET = "lakehouse"
D1, D2, D3 = (dt.date(2026, 1, d) for d in (1, 2, 3))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A local S3 server with a bucket; yields the environment a user would set for it."""
    import boto3

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto's S3 server did not start in 30 s"
                time.sleep(0.2)
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            yield client, env
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_server_refuses_to_overwrite_an_object_under_a_conditional_put(s3):
    from botocore.exceptions import ClientError

    client, _ = s3
    client.put_object(Bucket=BUCKET, Key="once", Body=b"first")
    with pytest.raises(ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=BUCKET, Key="once", Body=b"second", IfNoneMatch="*")
    assert client.get_object(Bucket=BUCKET, Key="once")["Body"].read() == b"first"


WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    import pyarrow as pa
    from lakehouse.delta import append_rows, overwrite_days

    root, worker = sys.argv[1], int(sys.argv[2])
    own, shared = dt.date(2026, 1, 2 + worker), dt.date(2026, 1, 1)
    for i in range(12):
        ids = [f"{worker}-{i}-{k}" for k in range(5)]
        append_rows(f"{root}/log", pa.table({"day": pa.array([own] * 5, pa.date32()), "id": ids}))
        day = shared if i % 2 else own
        rows = pa.table({"day": pa.array([day] * 3, pa.date32()), "id": [f"{worker}-{i}"] * 3})
        overwrite_days(f"{root}/days", rows, day, day)
    """
)


def test_two_writers_appending_and_overwriting_at_once_leave_every_row_once(s3):
    import pyarrow as pa

    from lakehouse.delta import overwrite_days, read_days, table_version

    _, env = s3
    root = f"s3://{BUCKET}/concurrent"
    seed = pa.table({"day": pa.array([D1], pa.date32()), "id": ["seed"]})
    overwrite_days(f"{root}/days", seed, D1, D1)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, root, str(worker)],
            env={**os.environ, **env, "PYTHONPATH": os.getcwd()},
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in (0, 1)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr
    log = read_days(f"{root}/log", D1, D3).column("id").to_pylist()
    expected = {f"{w}-{i}-{k}" for w in (0, 1) for i in range(12) for k in range(5)}
    assert len(log) == len(expected) and set(log) == expected  # none lost, none doubled
    assert table_version(f"{root}/log") == 23  # 24 appends: one commit each
    days = read_days(f"{root}/days", D1, D3).to_pylist()
    by_day = {day: [r["id"] for r in days if r["day"] == day] for day in (D1, D2, D3)}
    # each day holds the rows of exactly one overwrite, whole: the last to commit
    assert by_day[D2] == ["0-10"] * 3 and by_day[D3] == ["1-10"] * 3
    assert by_day[D1] in (["0-11"] * 3, ["1-11"] * 3)
    assert table_version(f"{root}/days") == 24
