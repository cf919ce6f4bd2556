"""Day-by-day generation of transactions, fraud and chargebacks over a population."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from simulator.catalog import (
    CATEGORIES,
    CATEGORY_INDEX,
    COUNTRIES,
    FOREIGN_ONLY_COUNTRIES,
    REPORT_PROBABILITY,
)
from simulator.population import Population, build_population
from simulator.scenarios import DayEffects, effects_for_day

PATTERNS: tuple[str, ...] = (
    "legit",
    "card_testing",
    "account_takeover",
    "compromised_merchant",
    "bust_out",
)
PATTERN_CODE = {name: code for code, name in enumerate(PATTERNS)}

WEEKDAY_FACTOR = np.array([0.95, 0.95, 1.0, 1.0, 1.15, 1.25, 0.85])
MORNING = [0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.5, 3.5, 4, 4.5, 5]  # midnight to noon
AFTERNOON = [5.5, 5, 4.5, 4.5, 5, 5.5, 6, 5.5, 4.5, 3.5, 2, 1]  # noon to midnight
HOUR_WEIGHTS = np.array([*MORNING, *AFTERNOON])
NIGHT_HOUR_WEIGHTS = np.array([4, 4, 4, 4, 3, 2] + [1] * 16 + [2, 3])
MS_PER_DAY = 86_400_000

CARD_TESTING_RATE = 0.00028  # bursts per legitimate transaction
ACCOUNT_TAKEOVER_RATE = 0.0012  # takeovers per legitimate transaction
COMPROMISE_PROBABILITY = 0.35  # chance a merchant is breached on a given day
COMPROMISED_CARD_SHARE = 0.5  # share of the breached merchant's cards that get used
MAX_BREACHED_CARD_SHARE = 0.003  # at most this many cards per legitimate transaction of the day
FRIENDLY_FRAUD_RATE = 0.0002  # legitimate transactions disputed anyway
ATTACKER_DEVICE_BASE = 90_000_000


@dataclass
class Transactions:
    """Columnar transactions of one day; `pattern` is the ground truth (0 = legitimate)."""

    ts_ms: np.ndarray
    customer: np.ndarray
    card: np.ndarray
    merchant: np.ndarray
    device: np.ndarray
    online: np.ndarray
    amount_usd: np.ndarray
    pattern: np.ndarray

    @staticmethod
    def concat(parts: list[Transactions]) -> Transactions:
        return Transactions(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in Transactions.__dataclass_fields__
            }
        )

    def take(self, index: np.ndarray) -> Transactions:
        return Transactions(
            **{name: getattr(self, name)[index] for name in Transactions.__dataclass_fields__}
        )

    def __len__(self) -> int:
        return len(self.ts_ms)


@dataclass
class Chargebacks:
    """Fraud reports raised by one day's transactions, keyed by the transaction's index."""

    transaction_index: np.ndarray
    reported_ms: np.ndarray
    pattern: np.ndarray


@dataclass
class SimulatedDay:
    """One day of the network: its transactions (sorted by time) and the chargebacks they raise."""

    day: dt.date
    transactions: Transactions
    chargebacks: Chargebacks


@dataclass
class _BreachedCards:
    cards: list[np.ndarray] = field(default_factory=list)
    customers: list[np.ndarray] = field(default_factory=list)
    fraud_day: list[np.ndarray] = field(default_factory=list)


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


class PaymentNetwork:
    """A seeded network; `days()` yields the same days for the same arguments."""

    def __init__(
        self,
        customers: int,
        seed: int,
        start: dt.date,
        scenario: str = "baseline",
        drift_day: int = 0,
    ) -> None:
        if customers < 1:
            raise ValueError("customers must be at least 1")
        effects_for_day(scenario, 0, drift_day)  # validates the scenario name early
        self.seed = seed
        self.start = start
        self.scenario = scenario
        self.drift_day = drift_day
        self.population: Population = build_population(np.random.default_rng([seed, 0]), customers)
        self._breached = _BreachedCards()
        self._attacker_devices = 0
        self._cards_per_customer = (self.population.customer_cards >= 0).sum(axis=1)
        self._devices_per_customer = (self.population.customer_devices >= 0).sum(axis=1)
        categories = self.population.merchant_category
        self._online_merchants = np.flatnonzero(
            np.isin(categories, [CATEGORY_INDEX["online_retail"], CATEGORY_INDEX["digital_goods"]])
        )
        self._card_testing_merchants = np.flatnonzero(categories == CATEGORY_INDEX["digital_goods"])
        self._high_value_foreign = np.flatnonzero(
            np.isin(
                categories,
                [CATEGORY_INDEX[c] for c in ("electronics", "jewelry", "travel", "online_retail")],
            )
        )

    def days(self, count: int) -> Iterator[SimulatedDay]:
        for index in range(count):
            yield self.simulate_day(index)

    def simulate_day(self, index: int) -> SimulatedDay:
        """Simulate day `index`; days must be simulated in order (breaches carry over)."""
        day = self.start + dt.timedelta(days=index)
        rng = np.random.default_rng([self.seed, 1, index])
        effects = effects_for_day(self.scenario, index, self.drift_day)
        base = day_start_ms(day)
        legit = self._legitimate(rng, day, base, effects)
        parts = [
            legit,
            self._card_testing(rng, base, len(legit)),
            self._account_takeover(rng, base, len(legit)),
            self._compromised_merchant_fraud(rng, base, index),
        ]
        if effects.bust_out_rate > 0:
            parts.append(self._bust_out(rng, base, len(legit), effects.bust_out_rate))
        self._breach_merchant(rng, legit, index)
        txns = Transactions.concat(parts)
        txns = txns.take(np.argsort(txns.ts_ms, kind="stable"))
        return SimulatedDay(day=day, transactions=txns, chargebacks=self._chargebacks(rng, txns))

    # -- legitimate spending -------------------------------------------------

    def _legitimate(
        self, rng: np.random.Generator, day: dt.date, base: int, effects: DayEffects
    ) -> Transactions:
        pop = self.population
        rate = pop.customer_rate * WEEKDAY_FACTOR[day.weekday()]
        customer = np.repeat(np.arange(pop.customers), rng.poisson(rate))
        n = len(customer)
        favourite = pop.favourite_merchants[
            customer, rng.integers(0, pop.favourite_merchants.shape[1], n)
        ]
        anywhere = rng.choice(pop.merchants, size=n, p=pop.merchant_popularity)
        merchant = np.where(rng.random(n) < 0.9, favourite, anywhere)
        if effects.online_shift > 0:
            shifted = rng.random(n) < effects.online_shift
            merchant[shifted] = rng.choice(self._online_merchants, size=int(shifted.sum()))
        category = pop.merchant_category[merchant]
        log_mean = np.array([c.log_mean for c in CATEGORIES])[category]
        log_sigma = np.array([c.log_sigma for c in CATEGORIES])[category]
        amount = rng.lognormal(log_mean + np.log(pop.customer_spend[customer]), log_sigma)
        online_share = np.array([c.online_share for c in CATEGORIES])[category]
        return Transactions(
            ts_ms=base + self._time_of_day(rng, n, HOUR_WEIGHTS),
            customer=customer,
            card=self._own_card(rng, customer),
            merchant=merchant,
            device=pop.customer_devices[
                customer, rng.integers(0, self._devices_per_customer[customer])
            ],
            online=rng.random(n) < online_share,
            amount_usd=amount * effects.amount_factor,
            pattern=np.zeros(n, dtype=np.int8),
        )

    @staticmethod
    def _time_of_day(rng: np.random.Generator, n: int, hour_weights: np.ndarray) -> np.ndarray:
        hour = rng.choice(24, size=n, p=hour_weights / hour_weights.sum())
        return hour * 3_600_000 + rng.integers(0, 3_600_000, n)

    def _own_card(self, rng: np.random.Generator, customer: np.ndarray) -> np.ndarray:
        slot = rng.integers(0, self._cards_per_customer[customer])
        return self.population.customer_cards[customer, slot]

    def _new_attacker_devices(self, n: int) -> np.ndarray:
        first = ATTACKER_DEVICE_BASE + self._attacker_devices
        self._attacker_devices += n
        return np.arange(first, first + n)

    # -- fraud patterns ------------------------------------------------------

    def _card_testing(self, rng: np.random.Generator, base: int, legit: int) -> Transactions:
        """Bursts of tiny online amounts on one stolen card, sometimes ending in a big one."""
        bursts = rng.poisson(legit * CARD_TESTING_RATE)
        victims = rng.integers(0, self.population.customers, bursts)
        sizes = rng.integers(4, 13, bursts)
        customer = np.repeat(victims, sizes)
        n = len(customer)
        burst_start = np.repeat(self._time_of_day(rng, bursts, NIGHT_HOUR_WEIGHTS), sizes)
        amount = np.round(rng.uniform(0.5, 3.0, n), 2)
        last = np.cumsum(sizes) - 1
        cash_out = last[rng.random(bursts) < 0.3]
        amount[cash_out] = rng.lognormal(5.5, 0.5, len(cash_out))
        return Transactions(
            ts_ms=base + np.minimum(burst_start + rng.integers(0, 600_000, n), MS_PER_DAY - 1),
            customer=customer,
            card=np.repeat(self._own_card(rng, victims), sizes),
            merchant=self._by_risk(rng, self._card_testing_merchants, n),
            device=np.repeat(self._new_attacker_devices(bursts), sizes),
            online=np.ones(n, dtype=bool),
            amount_usd=amount,
            pattern=np.full(n, PATTERN_CODE["card_testing"], dtype=np.int8),
        )

    def _account_takeover(self, rng: np.random.Generator, base: int, legit: int) -> Transactions:
        """A new device, a foreign merchant and large amounts on a taken-over account."""
        takeovers = rng.poisson(legit * ACCOUNT_TAKEOVER_RATE)
        victims = rng.integers(0, self.population.customers, takeovers)
        sizes = rng.integers(1, 4, takeovers)
        customer = np.repeat(victims, sizes)
        n = len(customer)
        merchant = self._foreign_merchants(rng, customer)
        start = np.repeat(self._time_of_day(rng, takeovers, NIGHT_HOUR_WEIGHTS), sizes)
        return Transactions(
            ts_ms=base + np.minimum(start + rng.integers(0, 3_600_000, n), MS_PER_DAY - 1),
            customer=customer,
            card=np.repeat(self._own_card(rng, victims), sizes),
            merchant=merchant,
            device=np.repeat(self._new_attacker_devices(takeovers), sizes),
            online=np.ones(n, dtype=bool),
            amount_usd=rng.lognormal(6.2, 0.6, n),
            pattern=np.full(n, PATTERN_CODE["account_takeover"], dtype=np.int8),
        )

    def _foreign_merchants(self, rng: np.random.Generator, customer: np.ndarray) -> np.ndarray:
        """High-value merchants outside each customer's home country."""
        pop = self.population
        home = np.array(COUNTRIES)[pop.customer_country[customer]]
        candidates = self._high_value_foreign
        picked = self._by_risk(rng, candidates, len(customer))
        clash = pop.merchant_country[picked] == home
        foreign = candidates[np.isin(pop.merchant_country[candidates], FOREIGN_ONLY_COUNTRIES)]
        if len(foreign) and clash.any():
            picked[clash] = self._by_risk(rng, foreign, int(clash.sum()))
        return picked

    def _by_risk(self, rng: np.random.Generator, merchants: np.ndarray, n: int) -> np.ndarray:
        """Fraudsters favour risky merchants: pick `n` of `merchants` weighted by risk."""
        risk = self.population.merchant_risk[merchants] + 1e-6
        return rng.choice(merchants, size=n, p=risk / risk.sum())

    def _breach_merchant(self, rng: np.random.Generator, legit: Transactions, index: int) -> None:
        """Some days one merchant is breached; a share of its cards is used for fraud later."""
        if len(legit) == 0 or rng.random() >= COMPROMISE_PROBABILITY:
            return
        merchant = legit.merchant[rng.integers(0, len(legit))]
        at_merchant = np.flatnonzero(legit.merchant == merchant)
        cards, first = np.unique(legit.card[at_merchant], return_index=True)
        chosen = rng.random(len(cards)) < COMPROMISED_CARD_SHARE
        # A breach at a big merchant must not dominate the fraud mix: cap the cards used.
        cap = max(3, int(len(legit) * MAX_BREACHED_CARD_SHARE))
        if chosen.sum() > cap:
            keep = rng.choice(np.flatnonzero(chosen), size=cap, replace=False)
            chosen = np.zeros(len(cards), dtype=bool)
            chosen[keep] = True
        self._breached.cards.append(cards[chosen])
        self._breached.customers.append(legit.customer[at_merchant[first[chosen]]])
        self._breached.fraud_day.append(index + rng.integers(2, 13, int(chosen.sum())))

    def _compromised_merchant_fraud(
        self, rng: np.random.Generator, base: int, index: int
    ) -> Transactions:
        """Cloned cards from earlier breaches used today, card present, far from home."""
        if self._breached.cards:
            cards = np.concatenate(self._breached.cards)
            customers = np.concatenate(self._breached.customers)
            fraud_day = np.concatenate(self._breached.fraud_day)
        else:
            cards = customers = fraud_day = np.zeros(0, dtype=np.int64)
        due = fraud_day == index
        keep = fraud_day > index
        self._breached = _BreachedCards([cards[keep]], [customers[keep]], [fraud_day[keep]])
        sizes = rng.integers(1, 3, int(due.sum()))
        customer = np.repeat(customers[due], sizes)
        n = len(customer)
        return Transactions(
            ts_ms=base + self._time_of_day(rng, n, HOUR_WEIGHTS),
            customer=customer,
            card=np.repeat(cards[due], sizes),
            merchant=self._foreign_merchants(rng, customer),
            device=np.repeat(self._new_attacker_devices(len(sizes)), sizes),
            online=np.zeros(n, dtype=bool),
            amount_usd=rng.lognormal(5.8, 0.7, n),
            pattern=np.full(n, PATTERN_CODE["compromised_merchant"], dtype=np.int8),
        )

    def _bust_out(
        self, rng: np.random.Generator, base: int, legit: int, rate: float
    ) -> Transactions:
        """New pattern for drift: trusted accounts buy gift cards at home with their own device."""
        n = rng.poisson(legit * rate)
        customer = rng.integers(0, self.population.customers, n)
        return Transactions(
            ts_ms=base + self._time_of_day(rng, n, HOUR_WEIGHTS),
            customer=customer,
            card=self._own_card(rng, customer),
            merchant=rng.choice(self._card_testing_merchants, size=n),
            device=self.population.customer_devices[customer, 0],
            online=np.ones(n, dtype=bool),
            amount_usd=rng.lognormal(5.0, 0.3, n),
            pattern=np.full(n, PATTERN_CODE["bust_out"], dtype=np.int8),
        )

    # -- chargebacks ---------------------------------------------------------

    def _chargebacks(self, rng: np.random.Generator, txns: Transactions) -> Chargebacks:
        """Reports 1-45 days later; some frauds never reported, a few legitimate ones disputed."""
        report_p = np.array([0.0] + [REPORT_PROBABILITY[p] for p in PATTERNS[1:]])
        p = report_p[txns.pattern]
        p[txns.pattern == 0] = FRIENDLY_FRAUD_RATE
        reported = np.flatnonzero(rng.random(len(txns)) < p)
        delay = rng.lognormal(np.log(12 * MS_PER_DAY), 0.7, len(reported)).astype(np.int64)
        delay = np.clip(delay, MS_PER_DAY, 45 * MS_PER_DAY - 1)
        return Chargebacks(
            transaction_index=reported,
            reported_ms=txns.ts_ms[reported] + delay,
            pattern=txns.pattern[reported],
        )
