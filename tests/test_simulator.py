"""The simulator: determinism, fraud rates, delayed chargebacks, malformed rows, drift."""

import datetime as dt
import json

import numpy as np
import pytest

from simulator.__main__ import main as simulator_cli
from simulator.landing import generate
from simulator.malformed import NO_CURRENCY
from simulator.network import PATTERN_CODE, PaymentNetwork

pytestmark = pytest.mark.unit
START = dt.date(2026, 1, 1)


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.*"))}


def test_same_seed_gives_byte_identical_files(tmp_path):
    for run in ("a", "b"):
        generate(tmp_path / run, days=4, customers=300, seed=11)
    generate(tmp_path / "c", days=4, customers=300, seed=12)
    a, b, c = (_files(tmp_path / r) for r in "abc")
    assert a == b
    assert len(a) == 8  # one transactions CSV and one fraud-report JSONL per day
    assert a != c


def test_fraud_rate_is_realistic_and_every_pattern_occurs():
    network = PaymentNetwork(customers=3000, seed=5, start=START)
    patterns = np.concatenate([d.transactions.pattern for d in network.days(20)])
    fraud_rate = (patterns > 0).mean()
    assert 0.002 <= fraud_rate <= 0.01
    for name in ("card_testing", "account_takeover", "compromised_merchant"):
        assert (patterns == PATTERN_CODE[name]).sum() > 0, name


def test_card_testing_is_bursts_of_tiny_amounts():
    network = PaymentNetwork(customers=3000, seed=5, start=START)
    txns = [d.transactions for d in network.days(5)]
    amounts = np.concatenate([t.amount_usd for t in txns])
    pattern = np.concatenate([t.pattern for t in txns])
    card = np.concatenate([t.card for t in txns])
    testing = pattern == PATTERN_CODE["card_testing"]
    assert np.median(amounts[testing]) < 3.0
    _, per_card = np.unique(card[testing], return_counts=True)
    assert per_card.max() >= 4


def test_account_takeover_uses_new_devices_and_large_amounts():
    network = PaymentNetwork(customers=3000, seed=5, start=START)
    days = list(network.days(5))
    txns = [d.transactions for d in days]
    pattern = np.concatenate([t.pattern for t in txns])
    device = np.concatenate([t.device for t in txns])
    amount = np.concatenate([t.amount_usd for t in txns])
    ato = pattern == PATTERN_CODE["account_takeover"]
    own_devices = set(network.population.customer_devices[network.population.customer_devices >= 0])
    assert not set(device[ato]) & own_devices
    assert np.median(amount[ato]) > 3 * np.median(amount[pattern == 0])


def test_chargebacks_arrive_1_to_45_days_later_and_some_fraud_is_never_reported():
    network = PaymentNetwork(customers=3000, seed=9, start=START)
    reported_fraud, fraud = 0, 0
    for day in network.days(10):
        cb, txns = day.chargebacks, day.transactions
        delay_days = (cb.reported_ms - txns.ts_ms[cb.transaction_index]) / 86_400_000
        assert (delay_days >= 1).all() and (delay_days < 45).all()
        fraud += int((txns.pattern > 0).sum())
        reported_fraud += int((cb.pattern > 0).sum())
    assert 0 < reported_fraud < fraud


def test_fraud_report_files_hold_reports_of_their_day_only(tmp_path):
    generate(tmp_path, days=40, customers=1500, seed=3, malformed_rate=0)
    for path in (tmp_path / "fraud_reports").glob("*.jsonl"):
        day = path.stem.removeprefix("fraud_reports_")
        for line in path.read_text().splitlines():
            assert json.loads(line)["reported_at"].startswith(day)


def test_malformed_rows_are_injected_at_the_configured_share(tmp_path):
    totals = generate(tmp_path, days=3, customers=2000, seed=1, malformed_rate=0.02)
    lines = []
    for path in (tmp_path / "transactions").glob("*.csv"):
        lines += path.read_text().splitlines()[1:]
    broken = [
        line
        for line in lines
        if line.count(",") != 10 or ",-" in line or line.endswith(f",{NO_CURRENCY}")
    ]
    assert 0.002 < len(broken) / len(lines) < 0.03
    assert totals["transaction_rows_written"] > totals["transactions"]  # resent duplicates


@pytest.mark.parametrize(
    ("scenario", "measure"),
    [
        ("amount_inflation", lambda t, pop: np.median(t.amount_usd[t.pattern == 0])),
        ("merchant_mix_shift", lambda t, pop: t.online.mean()),
        ("new_fraud_pattern", lambda t, pop: (t.pattern == PATTERN_CODE["bust_out"]).mean()),
    ],
)
def test_drift_scenarios_change_the_network_from_their_start_day(scenario, measure):
    baseline = PaymentNetwork(2000, seed=4, start=START, scenario="baseline", drift_day=3)
    drifted = PaymentNetwork(2000, seed=4, start=START, scenario=scenario, drift_day=3)
    before = [d.transactions for d in drifted.days(3)]
    after = [drifted.simulate_day(i).transactions for i in (3, 4)]
    base_before = [d.transactions for d in baseline.days(3)]
    assert [len(t) for t in before] == [len(t) for t in base_before]  # identical before drift
    pop = drifted.population
    assert measure(after[-1], pop) > 1.2 * measure(before[-1], pop) + 1e-9


def test_cli_writes_landing_files_under_fraud_home(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FRAUD_HOME", str(tmp_path))
    code = simulator_cli(["generate", "--days", "2", "--customers", "100", "--seed", "1"])
    assert code == 0
    assert (tmp_path / "landing/transactions/transactions_2026-01-02.csv").exists()
    assert "wrote 2 days" in capsys.readouterr().out


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert simulator_cli(["generate", "--days", "0", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):
        simulator_cli(["generate", "--scenario", "nope"])
    assert "invalid choice" in capsys.readouterr().err


def test_fraud_favours_risky_merchants():
    network = PaymentNetwork(customers=3000, seed=5, start=START)
    txns = [d.transactions for d in network.days(10)]
    merchant = np.concatenate([t.merchant for t in txns])
    pattern = np.concatenate([t.pattern for t in txns])
    risk = network.population.merchant_risk[merchant]
    assert risk[pattern > 0].mean() > 1.5 * risk[pattern == 0].mean()


@pytest.mark.parametrize("customers", [50, 200, 333])
def test_a_small_network_still_has_a_merchant_of_every_category(customers, tmp_path):
    from simulator.catalog import CATEGORIES
    from simulator.population import build_population

    population = build_population(np.random.default_rng(7), customers)
    assert set(population.merchant_category) == set(range(len(CATEGORIES)))
    totals = generate(tmp_path, days=2, customers=customers, seed=7)  # crashed at 200 before
    assert totals["transactions"] > 0
