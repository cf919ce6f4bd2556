"""The streams' addresses: STREAM_URL, STREAM_CONSUMER; the transactions' STREAM_NAME and
STREAM_GROUP; the fraud reports' REPORT_STREAM_NAME and REPORT_STREAM_GROUP."""

import os
import socket
from dataclasses import dataclass

DEFAULT_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class StreamSettings:
    url: str
    name: str
    group: str
    consumer: str

    @property
    def dead_letter(self) -> str:
        return f"{self.name}:dead"

    @classmethod
    def from_environment(cls) -> "StreamSettings":
        """The transaction stream."""
        return cls._named("STREAM", "fraud:transactions", "scorers")

    @classmethod
    def reports_from_environment(cls) -> "StreamSettings":
        """The fraud report stream."""
        return cls._named("REPORT_STREAM", "fraud:reports", "report-counters")

    @classmethod
    def _named(cls, prefix: str, name: str, group: str) -> "StreamSettings":
        return cls(
            url=os.environ.get("STREAM_URL", DEFAULT_URL),
            name=os.environ.get(f"{prefix}_NAME", name),
            group=os.environ.get(f"{prefix}_GROUP", group),
            consumer=os.environ.get("STREAM_CONSUMER", f"{socket.gethostname()}-{os.getpid()}"),
        )
