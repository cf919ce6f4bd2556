"""The stream worker's background velocity push: every entity's newest row reaches the store, in
a child process, and closing the pusher pushes what was sent before it returns."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from serving.velocity_push import BackgroundPush, InlinePush

pytestmark = pytest.mark.unit
KEYS = {"card_velocity_push": "card_id"}


def _open_file_push():
    """A push (run in the child) that appends each pushed frame to the file in PUSH_LOG."""
    target = Path(os.environ["PUSH_LOG"])

    def push(source: str, frame: pd.DataFrame) -> None:
        with target.open("a") as out:
            out.write(json.dumps({"source": source, "rows": frame.to_dict("records")}) + "\n")

    return push


def _pushed(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_newest_row_of_every_entity_is_pushed_by_the_child(tmp_path, monkeypatch):
    monkeypatch.setenv("PUSH_LOG", str(tmp_path / "pushes.jsonl"))
    pusher = BackgroundPush(_open_file_push, KEYS)
    for n in range(1, 201):  # card K<n % 7> at count n: the last one sent of a card is newest
        pusher.push("card_velocity_push", [{"card_id": f"K{n % 7}", "count": n}])
    pusher.close()
    pushes = _pushed(tmp_path / "pushes.jsonl")
    assert {p["source"] for p in pushes} == {"card_velocity_push"}
    final = {}
    for p in pushes:
        for row in p["rows"]:
            assert row["count"] > final.get(row["card_id"], 0), "an older row pushed after a newer"
            final[row["card_id"]] = row["count"]
    assert final == {f"K{k}": max(n for n in range(1, 201) if n % 7 == k) for k in range(7)}
    assert sum(len(p["rows"]) for p in pushes) <= 200  # rows of one card waiting merge into one


def test_inline_push_hands_the_rows_as_a_frame():
    seen = []
    InlinePush(lambda source, frame: seen.append((source, frame))).push(
        "card_velocity_push", [{"card_id": "K1", "count": 2}]
    )
    [(source, frame)] = seen
    assert source == "card_velocity_push" and frame.to_dict("records") == [
        {"card_id": "K1", "count": 2}
    ]


LEAVES_WITHOUT_CLOSE = """
import os, sys
from serving.velocity_push import BackgroundPush
from tests.test_velocity_push import KEYS, _open_file_push

pusher = BackgroundPush(_open_file_push, KEYS)
pusher.wait_ready(60)
print(pusher._process.pid, flush=True)
raise RuntimeError("the worker failed before closing its pusher")
"""


def test_a_process_leaving_without_closing_its_pusher_exits_and_takes_the_child_along(
    tmp_path,
):
    """The child ignores SIGTERM (the worker's group gets it first); multiprocessing's exit hook
    sends only that, then joins: without the pusher's own hook the process never exited."""
    import subprocess
    import sys

    env = {**os.environ, "PUSH_LOG": str(tmp_path / "pushes.jsonl"), "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", LEAVES_WITHOUT_CLOSE], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "failed before closing" in done.stderr
    child = int(done.stdout.split()[0])
    assert (
        not Path(f"/proc/{child}").exists()
        or "zombie" in Path(f"/proc/{child}/status").read_text().lower()
    )
