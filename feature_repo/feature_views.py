"""Feature views: which columns of each source are features, per entity, and how long they live."""

from datetime import timedelta

from data_sources import (
    card_velocity_push,
    customer_country_source,
    customer_daily_source,
    customer_device_source,
    customer_velocity_push,
    merchant_daily_source,
    merchant_fraud_reports_push,
)
from entities import card, country, customer, device, merchant
from feast import Entity, FeatureView, Field, FileSource, PushSource
from feast.types import Float64, Int64

# Daily features of day D are written at the end of D; two days of TTL tolerate one late run.
DAILY_TTL = timedelta(days=2)
# A velocity count older than its longest window (one hour) says nothing any more.
VELOCITY_TTL = timedelta(hours=1)
# Decayed report counts: reports older than 60 days weigh nothing (features/report_decay.py).
REPORTS_TTL = timedelta(days=60)


def feature(name: str, dtype, default: float = 0) -> Field:
    """A feature and the value a lookup returns when its entity is unknown or stale: for counts,
    sums and rates of an unseen customer, merchant or card, zero is the truth."""
    return Field(name=name, dtype=dtype, tags={"default": str(default)})


customer_daily = FeatureView(
    name="customer_daily",
    entities=[customer],
    ttl=DAILY_TTL,
    schema=[
        feature("txn_count_1d", Int64),
        feature("txn_count_7d", Int64),
        feature("txn_count_30d", Int64),
        feature("amount_sum_1d", Float64),
        feature("amount_sum_7d", Float64),
        feature("amount_sum_30d", Float64),
        feature("amount_avg_30d", Float64),
        feature("amount_max_30d", Float64),
        feature("distinct_merchants_30d", Int64),
        feature("distinct_countries_30d", Int64),
        feature("distinct_devices_30d", Int64),
        feature("fraud_reports_known_7d", Int64),
        feature("fraud_reports_known_30d", Int64),
    ],
    source=customer_daily_source,
    online=True,
    description="Customer spending over 1/7/30 days and the frauds known on the customer's "
    "cards, from gold/customer_daily_features.",
)

merchant_daily = FeatureView(
    name="merchant_daily",
    entities=[merchant],
    ttl=DAILY_TTL,
    schema=[
        feature("txn_count_1d", Int64),
        feature("txn_count_7d", Int64),
        feature("txn_count_30d", Int64),
        feature("amount_avg_30d", Float64),
        feature("distinct_cards_1d", Int64),
        feature("distinct_cards_7d", Int64),
        feature("fraud_reports_known_30d", Int64),
        feature("fraud_rate_30d", Float64),
        *(
            feature(f"settled_{name}_{window}", dtype)
            for window in ("1d", "7d", "30d")
            for name, dtype in (
                ("txn_count", Int64),
                ("fraud_count", Int64),
                ("fraud_rate", Float64),
            )
        ),
    ],
    source=merchant_daily_source,
    online=True,
    description="Merchant volume, card diversity, known fraud (over the last 30 days, and over "
    "the settled windows whose reports have arrived): gold/merchant_daily_features.",
)

merchant_fraud_reports = FeatureView(
    name="merchant_fraud_reports",
    entities=[merchant],
    ttl=REPORTS_TTL,
    schema=[
        feature("fraud_reports_decayed_1d", Float64),
        feature("fraud_reports_decayed_7d", Float64),
        # Stored as the last report's epoch seconds; every reader turns it into days since.
        feature("days_since_report", Float64, default=REPORTS_TTL.days),
    ],
    source=merchant_fraud_reports_push,
    online=True,
    description="Fraud reports at the merchant, each weighing exp(-age / tau) with tau 1 and 7 "
    "days, as of its last report; a read decays them to its own instant.",
)


def familiarity_view(other: Entity, source: FileSource) -> FeatureView:
    """How familiar `other` (a device, a country) is to the customer over 30 days. No value
    means a pair new to the customer, which is the signal: a lookup flags it `__missing`."""
    return FeatureView(
        name=f"customer_{other.name}",
        entities=[customer, other],
        ttl=DAILY_TTL,
        schema=[
            feature("txn_count_30d", Int64),
            feature("active_days_30d", Int64),
            feature("amount_max_30d", Float64),
        ],
        source=source,
        online=True,
        description=f"The customer's use of this {other.name} over 30 days, from gold.",
    )


customer_device = familiarity_view(device, customer_device_source)
customer_country = familiarity_view(country, customer_country_source)


def velocity_view(entity: Entity, source: PushSource) -> FeatureView:
    """Streaming velocity per `entity` over the last 10 minutes and hour (pushed)."""
    return FeatureView(
        name=f"{entity.name}_velocity",
        entities=[entity],
        ttl=VELOCITY_TTL,
        schema=[
            feature("txn_count_10m", Int64),
            feature("txn_count_1h", Int64),
            feature("amount_sum_1h", Float64),
        ],
        source=source,
        online=True,
        description=f"Streaming velocity per {entity.name} over the last 10 minutes and hour.",
    )


card_velocity = velocity_view(card, card_velocity_push)
customer_velocity = velocity_view(customer, customer_velocity_push)
