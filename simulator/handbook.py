"""The card-fraud handbook's simulated dataset (Le Borgne et al., ULB and Worldline, 2022),
written from its description: customers and terminals on a 100 x 100 grid, transactions at the
terminals within a radius of each customer, and three fraud scenarios. The random draws follow
the published generator's order, so the default sizes give the published dataset exactly."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.importer import ImportSummary, import_table
from ingest.mapping import load_mapping
from settings.env import REPO_ROOT

MAPPING = REPO_ROOT / "ingest" / "mappings" / "handbook.yaml"

SECONDS_PER_DAY = 86_400
COLUMNS = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)
LARGE_AMOUNT = 220  # scenario 1: any amount above it is a fraud
COMPROMISED_TERMINAL_DAYS = 28  # scenario 2
COMPROMISED_CUSTOMER_DAYS = 14  # scenario 3


@dataclass(frozen=True)
class HandbookSize:
    """The published run: 5,000 customers, 10,000 terminals, 183 days from 2018-04-01, r = 5."""

    customers: int = 5_000
    terminals: int = 10_000
    days: int = 183
    start: dt.date = dt.date(2018, 4, 1)
    radius: float = 5.0


@dataclass(frozen=True)
class Customers:
    xy: np.ndarray  # [n, 2]
    mean_amount: np.ndarray
    std_amount: np.ndarray
    mean_transactions_per_day: np.ndarray


def _draws(n: int, bounds: list[tuple[float, float]]) -> np.ndarray:
    """[n, len(bounds)] uniform draws of the global generator, row by row as the original."""
    return np.array([[np.random.uniform(low, high) for low, high in bounds] for _ in range(n)])


def customer_profiles(n: int) -> Customers:
    """x, y, mean amount and transactions per day of each customer, drawn in the published order."""
    np.random.seed(0)
    drawn = _draws(n, [(0, 100), (0, 100), (5, 100), (0, 4)])
    return Customers(drawn[:, :2], drawn[:, 2], drawn[:, 2] / 2, drawn[:, 3])


def terminal_locations(n: int) -> np.ndarray:
    """[n, 2] x, y of each terminal."""
    np.random.seed(1)
    return _draws(n, [(0, 100), (0, 100)])


def terminals_within(customer_xy: np.ndarray, terminals_xy: np.ndarray, radius: float) -> list:
    """Ids of the terminals closer than `radius` to the customer, in id order."""
    distance = np.sqrt(np.sum(np.square(customer_xy - terminals_xy), axis=1))
    return list(np.where(distance < radius)[0])


def customer_transactions(
    customer: int, customers: Customers, terminals: list, days: int
) -> list[tuple[int, int, int, int, float]]:
    """(seconds since the start, day, customer, terminal, amount) of one customer's transactions."""
    random.seed(customer)
    np.random.seed(customer)
    mean, std = customers.mean_amount[customer], customers.std_amount[customer]
    rate = customers.mean_transactions_per_day[customer]
    rows = []
    for day in range(days):
        for _ in range(np.random.poisson(rate)):
            second = int(np.random.normal(SECONDS_PER_DAY / 2, 20_000))
            if not 0 < second < SECONDS_PER_DAY:
                continue
            amount = np.random.normal(mean, std)
            if amount < 0:
                amount = np.random.uniform(0, mean * 2)
            amount = np.round(amount, decimals=2)
            if terminals:
                terminal = random.choice(terminals)
                rows.append((second + day * SECONDS_PER_DAY, day, customer, int(terminal), amount))
    return rows


def transactions(size: HandbookSize = HandbookSize()) -> pd.DataFrame:
    """The dataset, frauds included, in the handbook's columns, one row per transaction by time."""
    customers = customer_profiles(size.customers)
    terminals_xy = terminal_locations(size.terminals)
    rows = [
        row
        for customer in range(size.customers)
        for row in customer_transactions(
            customer,
            customers,
            terminals_within(customers.xy[customer], terminals_xy, size.radius),
            size.days,
        )
    ]
    frame = pd.DataFrame(
        rows, columns=["TX_TIME_SECONDS", "TX_TIME_DAYS", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
    )
    frame = frame.sort_values("TX_TIME_SECONDS", kind="stable", ignore_index=True)
    frame.insert(0, "TRANSACTION_ID", np.arange(len(frame)))
    frame.insert(
        1,
        "TX_DATETIME",
        pd.Timestamp(size.start) + pd.to_timedelta(frame["TX_TIME_SECONDS"], unit="s"),
    )
    add_frauds(frame, size)
    return frame[list(COLUMNS)]


def add_frauds(frame: pd.DataFrame, size: HandbookSize) -> None:
    """The three scenarios, in order, each overwriting the label of the one before."""
    fraud = (frame["TX_AMOUNT"] > LARGE_AMOUNT).to_numpy().astype(np.int64)
    scenario = fraud.copy()
    amounts = frame["TX_AMOUNT"].to_numpy().copy()
    days = frame["TX_TIME_DAYS"].to_numpy()
    terminal, customer = frame["TERMINAL_ID"].to_numpy(), frame["CUSTOMER_ID"].to_numpy()
    for day in range(int(days.max())):
        compromised = np.random.RandomState(day).permutation(size.terminals)[:2]
        window = (days >= day) & (days < day + COMPROMISED_TERMINAL_DAYS)
        hit = window & np.isin(terminal, compromised)
        fraud[hit], scenario[hit] = 1, 2
    for day in range(int(days.max())):
        victims = np.random.RandomState(day).permutation(size.customers)[:3]
        window = (days >= day) & (days < day + COMPROMISED_CUSTOMER_DAYS)
        candidates = np.flatnonzero(window & np.isin(customer, victims)).tolist()
        random.seed(day)
        chosen = np.array(random.sample(candidates, k=len(candidates) // 3), dtype=np.int64)
        amounts[chosen] *= 5
        fraud[chosen], scenario[chosen] = 1, 3
    frame["TX_AMOUNT"] = amounts
    frame["TX_FRAUD"] = fraud
    frame["TX_FRAUD_SCENARIO"] = scenario


def write_and_import(size: HandbookSize, landing: Path) -> tuple[Path, ImportSummary]:
    """Write the dataset as the Parquet table a team would receive (beside the landing folder),
    then import it with the handbook's mapping."""
    mapping = load_mapping(MAPPING)
    table = landing.parent / "handbook" / mapping.transactions.name
    table.parent.mkdir(parents=True, exist_ok=True)
    transactions(size).to_parquet(table, index=False)
    return table, import_table(dataclasses.replace(mapping, transactions=table), landing)
