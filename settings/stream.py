"""The transaction stream's address: STREAM_URL, STREAM_NAME, STREAM_GROUP, STREAM_CONSUMER."""

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
        return cls(
            url=os.environ.get("STREAM_URL", DEFAULT_URL),
            name=os.environ.get("STREAM_NAME", "fraud:transactions"),
            group=os.environ.get("STREAM_GROUP", "scorers"),
            consumer=os.environ.get("STREAM_CONSUMER", f"{socket.gethostname()}-{os.getpid()}"),
        )
