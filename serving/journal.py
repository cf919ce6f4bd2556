"""A write-ahead journal on local disk for the scores a process has answered but not yet committed
to the prediction log: a killed worker's scores survive it, and the next process to find its
journal replays them.

Each process writes its own segments, `<app id>.<segment>.journal`, and holds an exclusive lock
on `<app id>.lock` while it lives; a journal whose lock can be taken belongs to a dead process.
Records are length- and checksum-prefixed, so a record torn by the kill is told from a whole one.
A commit to the Delta table carries the app id and the last segment it covers as a Delta app
transaction: a replay reads what the table already holds and adds only the rest, so a crash
between a commit and the removal of its segments never doubles a row."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")  # payload length, CRC-32 of the payload
_SUFFIX = ".journal"


def _segment_path(directory: Path, app_id: str, segment: int) -> Path:
    return directory / f"{app_id}.{segment:08d}{_SUFFIX}"


def _segments(directory: Path, app_id: str) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(f"{app_id}.*{_SUFFIX}"):
        number = path.name[len(app_id) + 1 : -len(_SUFFIX)]
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def _lock(path: Path, wait: bool) -> int | None:
    """An exclusive lock on `path` (created if absent), or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class Journal:
    """This process's journal in `directory`: `append` before answering, `roll` when a commit
    takes the pending records, `release` once it is committed."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.app_id = f"prediction-log-{uuid.uuid4().hex[:16]}"
        self.segment = 0
        self._fd = self._open(self.segment)
        # locked under another name, then renamed: a scan for orphans never sees it unlocked
        claiming = self.directory / f"{self.app_id}.claiming"
        self._lock_fd = _lock(claiming, wait=True)
        claiming.rename(self.directory / f"{self.app_id}.lock")

    def _open(self, segment: int) -> int:
        path = _segment_path(self.directory, self.app_id, segment)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, item) -> None:
        """Write one record; it is in the operating system's hands when this returns (it
        survives the process, not the machine)."""
        payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        os.write(self._fd, _HEADER.pack(len(payload), zlib.crc32(payload)) + payload)

    def roll(self) -> int:
        """Start a new segment; returns the last one written, which a commit then covers."""
        os.close(self._fd)
        self.segment += 1
        self._fd = self._open(self.segment)
        return self.segment - 1

    def release(self, upto: int) -> None:
        """Remove the segments up to `upto` (their records are committed)."""
        for number, path in _segments(self.directory, self.app_id):
            if number <= upto:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop writing; the segments left (records never committed) stay for a replay."""
        os.close(self._fd)
        segments = _segments(self.directory, self.app_id)
        if all(path.stat().st_size == 0 for _, path in segments):
            for _, path in segments:
                path.unlink()
            (self.directory / f"{self.app_id}.lock").unlink(missing_ok=True)
        os.close(self._lock_fd)


@dataclass
class Orphan:
    """The journal of a dead process, locked by this one while it is replayed."""

    directory: Path
    app_id: str

    def segments(self) -> list[tuple[int, Path]]:
        return _segments(self.directory, self.app_id)

    def records(self, after: int) -> Iterator:
        """The whole records of the segments numbered above `after`, in order."""
        for number, path in self.segments():
            if number > after:
                yield from read_records(path)

    def remove(self) -> None:
        for _, path in self.segments():
            path.unlink()
        (self.directory / f"{self.app_id}.lock").unlink(missing_ok=True)


def read_records(path: Path) -> Iterator:
    """The records of a segment, stopping at a torn or corrupt one (the write a kill cut)."""
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, checksum = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != checksum:
            log.warning("journal %s: a torn record at byte %d left out", path.name, offset)
            return
        yield pickle.loads(payload)
        offset += _HEADER.size + length


@contextlib.contextmanager
def orphaned(directory: Path) -> Iterator[list[Orphan]]:
    """The journals in `directory` whose process is gone, locked for this one until the end of
    the block (a process replaying one keeps every other away from it)."""
    directory = Path(directory)
    held, orphans = [], []
    try:
        for lock in sorted(directory.glob("*.lock")) if directory.is_dir() else []:
            fd = _lock(lock, wait=False)
            if fd is None:
                continue
            held.append(fd)
            if lock.exists():  # not removed by the replay that held it just before
                orphans.append(Orphan(directory, lock.name[: -len(".lock")]))
        yield orphans
    finally:
        for fd in held:
            os.close(fd)
