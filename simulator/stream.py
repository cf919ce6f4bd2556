"""Simulated transactions published to a Redis Stream, as a card processor's authorisation feed
would send them: one message per transaction (field `transaction`, JSON), stamped when sent."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import numpy as np

from simulator.catalog import TRANSACTION_COLUMNS
from simulator.landing import transaction_rows
from simulator.network import PaymentNetwork


def transactions(customers: int, seed: int, start: dt.date) -> Iterator[dict]:
    """Simulated transactions, day after day, as `Transaction` fields (timestamp left out)."""
    network = PaymentNetwork(customers, seed, start)
    for sim in network.days(10_000):
        for row in transaction_rows(network, sim):
            fields = dict(zip(TRANSACTION_COLUMNS, row, strict=True))
            fields.pop("timestamp")
            fields["device_id"] = fields["device_id"] or None
            yield fields


def malformed(fields: dict, rng: np.random.Generator) -> str:
    """A broken message body: bad JSON, a negative amount or a missing id."""
    kind = rng.integers(3)
    if kind == 0:
        return json.dumps(fields)[:-7]
    if kind == 1:
        return json.dumps({**fields, "amount": "-1.00"})
    return json.dumps({k: v for k, v in fields.items() if k != "card_id"})


def publish(
    client,
    stream: str,
    count: int,
    rate: float,
    customers: int = 2000,
    seed: int = 7,
    malformed_rate: float = 0.0,
    group: int = 100,
) -> int:
    """XADD `count` transactions at about `rate` per second (0: as fast as possible), `group`
    per round trip, each stamped with the time its group is sent."""
    rng = np.random.default_rng([seed, 3])
    source = transactions(customers, seed, dt.date.today())
    started, pipe = time.monotonic(), client.pipeline(transaction=False)
    for first in range(0, count, group):
        size = min(group, count - first)
        if rate:
            ahead = first / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        sent_at = dt.datetime.now(dt.UTC).isoformat()
        for _ in range(size):
            fields = {**next(source), "event_timestamp": sent_at}
            body = malformed(fields, rng) if rng.random() < malformed_rate else json.dumps(fields)
            pipe.xadd(stream, {"transaction": body})
        pipe.execute()
    return count
