"""Alerts for people: what happened and where to look, posted as Slack-compatible JSON (an
incoming webhook's `text`, with the same text as a `blocks` section for clients that render
blocks) to a webhook URL."""

import json
import urllib.request
from dataclasses import dataclass

EVENTS = (
    "run_failed", "check_failed", "promotion_refused", "drift_alarm", "promoted", "rolled_back",
    "rollout_completed",
)  # fmt: skip


@dataclass(frozen=True)
class Alert:
    event: str  # one of EVENTS
    title: str
    detail: str
    link: str  # the run in the Dagster UI

    def __post_init__(self):
        if self.event not in EVENTS:
            raise ValueError(f"event {self.event!r} is not one of {EVENTS}")

    def payload(self) -> dict:
        text = f"*{self.title}*\n{self.detail}\n<{self.link}|Open the run in Dagster>"
        return {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            "fraud_platform": {"event": self.event, "link": self.link},
        }


def post(url: str, alert: Alert, timeout_s: float = 10.0) -> None:
    """POST the alert; an HTTP error or a refused connection raises (the caller retries)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(alert.payload()).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s):
        pass
