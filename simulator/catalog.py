"""Reference data of the simulated payment network: countries, currencies, merchant categories."""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.landing import FRAUD_REPORTS, TRANSACTIONS

# Home-country mix of the issuer's customers (share of customers).
COUNTRY_WEIGHTS: dict[str, float] = {
    "US": 0.40,
    "GB": 0.15,
    "DE": 0.12,
    "FR": 0.10,
    "CA": 0.08,
    "ES": 0.05,
    "IT": 0.05,
    "NL": 0.05,
}
COUNTRIES: tuple[str, ...] = tuple(COUNTRY_WEIGHTS)

# Countries that only appear as foreign merchant locations (fraud rings, travel).
FOREIGN_ONLY_COUNTRIES: tuple[str, ...] = ("BR", "NG", "RU", "TH")

COUNTRY_CURRENCY: dict[str, str] = {
    "US": "USD",
    "GB": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "CA": "CAD",
    "ES": "EUR",
    "IT": "EUR",
    "NL": "EUR",
    "BR": "BRL",
    "NG": "NGN",
    "RU": "RUB",
    "TH": "THB",
}

# Units of local currency per US dollar (fixed; the simulator has no FX market).
UNITS_PER_USD: dict[str, float] = {
    "USD": 1.0,
    "GBP": 0.79,
    "EUR": 0.92,
    "CAD": 1.36,
    "BRL": 5.0,
    "NGN": 1500.0,
    "RUB": 92.0,
    "THB": 36.0,
}


@dataclass(frozen=True)
class Category:
    """A merchant category: popularity, lognormal amount in USD, online share."""

    name: str
    popularity: float
    log_mean: float
    log_sigma: float
    online_share: float
    base_risk: float


CATEGORIES: tuple[Category, ...] = (
    Category("grocery", 0.24, 3.5, 0.6, 0.05, 0.002),
    Category("restaurants", 0.18, 3.2, 0.5, 0.05, 0.002),
    Category("fuel", 0.10, 3.8, 0.3, 0.0, 0.003),
    Category("pharmacy", 0.06, 3.0, 0.5, 0.10, 0.002),
    Category("entertainment", 0.07, 3.3, 0.6, 0.40, 0.004),
    Category("online_retail", 0.16, 4.0, 0.9, 1.0, 0.008),
    Category("digital_goods", 0.06, 2.5, 0.8, 1.0, 0.012),
    Category("electronics", 0.06, 5.0, 0.9, 0.5, 0.010),
    Category("travel", 0.04, 6.0, 0.8, 0.8, 0.006),
    Category("jewelry", 0.03, 5.5, 1.0, 0.3, 0.010),
)
CATEGORY_INDEX: dict[str, int] = {c.name: i for i, c in enumerate(CATEGORIES)}

# Chargeback reason codes, by fraud pattern.
REASON_CODES: dict[str, str] = {
    "card_testing": "card_not_present",
    "account_takeover": "account_takeover",
    "compromised_merchant": "counterfeit",
    "bust_out": "card_not_present",
    "friendly_fraud": "not_recognised",
}

# Chargeback probability per pattern: some frauds are never reported.
REPORT_PROBABILITY: dict[str, float] = {
    "card_testing": 0.55,
    "account_takeover": 0.9,
    "compromised_merchant": 0.85,
    "bust_out": 0.7,
    "friendly_fraud": 1.0,
}

# The landing contract: which fields each feed's records carry, as the platform reads them.
TRANSACTION_COLUMNS: tuple[str, ...] = TRANSACTIONS.fields
FRAUD_REPORT_COLUMNS: tuple[str, ...] = FRAUD_REPORTS.fields
