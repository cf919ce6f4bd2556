"""Writes simulated days as landing files: daily transactions CSV and fraud-report JSONL."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lakehouse.landing import FRAUD_REPORTS, TRANSACTIONS
from simulator.catalog import (
    CATEGORIES,
    COUNTRY_CURRENCY,
    FRAUD_REPORT_COLUMNS,
    REASON_CODES,
    TRANSACTION_COLUMNS,
    UNITS_PER_USD,
)
from simulator.malformed import CSV_KINDS, JSON_KINDS, corrupt
from simulator.network import PATTERNS, PaymentNetwork, SimulatedDay
from simulator.population import card_id, customer_id, device_id, merchant_id, prefixed_ids


def iso_ms(ts_ms: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms")
    return np.char.add(text, "Z")


def transaction_ids(day: dt.date, n: int) -> np.ndarray:
    return prefixed_ids(f"tx{day:%Y%m%d}", np.arange(n), 7)


def transaction_rows(network: PaymentNetwork, sim: SimulatedDay) -> list[list[str]]:
    """One day's transactions as the card processor would export them (all text)."""
    pop, txns = network.population, sim.transactions
    country = pop.merchant_country[txns.merchant]
    currency = np.vectorize(COUNTRY_CURRENCY.__getitem__, otypes=[str])(country)
    units = np.vectorize(UNITS_PER_USD.__getitem__, otypes=[float])(currency)
    category = np.array([c.name for c in CATEGORIES])[pop.merchant_category[txns.merchant]]
    columns = {
        "transaction_id": transaction_ids(sim.day, len(txns)),
        "timestamp": iso_ms(txns.ts_ms),
        "customer_id": customer_id(txns.customer),
        "card_id": card_id(txns.card),
        "merchant_id": merchant_id(txns.merchant),
        "merchant_category": category,
        "merchant_country": country,
        "device_id": device_id(txns.device),
        "channel": np.where(txns.online, "online", "pos"),
        "amount": np.char.mod("%.2f", np.round(txns.amount_usd * units, 2)),
        "currency": currency,
    }
    return [
        list(row) for row in zip(*(columns[c].tolist() for c in TRANSACTION_COLUMNS), strict=True)
    ]


def chargeback_rows(sim: SimulatedDay) -> list[tuple[int, list[str]]]:
    """(reported time in ms, report row) for each chargeback the day's transactions raise."""
    cb, txns = sim.chargebacks, sim.transactions
    ids = transaction_ids(sim.day, len(txns))[cb.transaction_index]
    cards = card_id(txns.card[cb.transaction_index])
    reported = iso_ms(cb.reported_ms)
    reasons = [
        REASON_CODES[PATTERNS[p]] if p else REASON_CODES["friendly_fraud"] for p in cb.pattern
    ]
    return [
        (int(ms), ["r" + tx, tx, card, at, reason])
        for ms, tx, card, at, reason in zip(
            cb.reported_ms.tolist(),
            ids.tolist(),
            cards.tolist(),
            reported.tolist(),
            reasons,
            strict=True,
        )
    ]


def generate(
    landing: Path,
    days: int,
    customers: int,
    seed: int,
    scenario: str = "baseline",
    start: dt.date = dt.date(2026, 1, 1),
    drift_day: int | None = None,
    malformed_rate: float = 0.003,
    progress: Callable[[int], None] = lambda _: None,
) -> dict[str, int]:
    """Simulate `days` days and write their landing files; returns counts for a summary."""
    network = PaymentNetwork(
        customers,
        seed,
        start,
        scenario=scenario,
        drift_day=days // 2 if drift_day is None else drift_day,
    )
    corruption_rng = np.random.default_rng([seed, 2])
    reports_by_day: dict[dt.date, list[tuple[int, list[str]]]] = defaultdict(list)
    totals = {"transactions": 0, "fraud": 0, "fraud_reports": 0, "transaction_rows_written": 0}
    for sim in network.days(days):
        clean = transaction_rows(network, sim)
        rows = corrupt(corruption_rng, clean, TRANSACTION_COLUMNS, malformed_rate, CSV_KINDS)
        TRANSACTIONS.write(TRANSACTIONS.path_for_day(landing, sim.day), rows)
        for reported_ms, row in chargeback_rows(sim):
            reported_day = dt.datetime.fromtimestamp(reported_ms / 1000, dt.UTC).date()
            reports_by_day[reported_day].append((reported_ms, row))
        totals["transactions"] += len(sim.transactions)
        totals["fraud"] += int((sim.transactions.pattern > 0).sum())
        totals["transaction_rows_written"] += len(rows)
        progress(1)
    for index in range(days):
        day = start + dt.timedelta(days=index)
        ordered = [row for _, row in sorted(reports_by_day.get(day, []))]
        rows = corrupt(corruption_rng, ordered, FRAUD_REPORT_COLUMNS, malformed_rate, JSON_KINDS)
        FRAUD_REPORTS.write(FRAUD_REPORTS.path_for_day(landing, day), rows)
        totals["fraud_reports"] += len(ordered)
    return totals
