"""Gold feature tables written for the feature tests: values derived from a seed per entity-day."""

import datetime as dt

import pyarrow as pa

from lakehouse.delta import overwrite_days

D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
CUSTOMER_INTS = ["txn_count_1d", "txn_count_7d", "txn_count_30d", "distinct_merchants_30d",
                 "distinct_countries_30d", "distinct_devices_30d", "fraud_reports_known_7d",
                 "fraud_reports_known_30d"]  # fmt: skip
CUSTOMER_FLOATS = ["amount_sum_1d", "amount_sum_7d", "amount_sum_30d", "amount_avg_30d",
                   "amount_max_30d"]  # fmt: skip
SETTLED = ("1d", "7d", "30d")
MERCHANT_INTS = ["txn_count_1d", "txn_count_7d", "txn_count_30d", "distinct_cards_1d",
                 "distinct_cards_7d", "fraud_reports_known_30d",
                 *(f"settled_{n}_{w}" for w in SETTLED for n in ("txn_count", "fraud_count")),
                 ]  # fmt: skip
MERCHANT_FLOATS = [
    "amount_avg_30d",
    "fraud_rate_30d",
    *(f"settled_fraud_rate_{w}" for w in SETTLED),
]
PAIR_INTS, PAIR_FLOATS = ["txn_count_30d", "active_days_30d"], ["amount_max_30d"]


def gold_table(keys: str | tuple[str, ...], ints: list[str], floats: list[str], rows: list[tuple]):
    """Gold feature rows (entity, day, seed) where every feature of (entity, day) is derived
    from `seed`; an entity of several `keys` is a tuple of their values."""
    keys = (keys,) if isinstance(keys, str) else keys
    entities = [(r[0],) if isinstance(r[0], str) else r[0] for r in rows]
    columns = {
        **{key: [e[i] for e in entities] for i, key in enumerate(keys)},
        "day": [r[1] for r in rows],
        "feature_timestamp": [
            dt.datetime.combine(r[1] + dt.timedelta(days=1), dt.time(), dt.UTC) for r in rows
        ],
    }
    for i, name in enumerate(ints):
        columns[name] = [r[2] * 10 + i for r in rows]
    for i, name in enumerate(floats):
        columns[name] = [r[2] + i / 8 for r in rows]
    schema = pa.schema(
        [(key, pa.string()) for key in keys]
        + [
            ("day", pa.date32()),
            ("feature_timestamp", pa.timestamp("us", tz="UTC")),
        ]
        + [(n, pa.int64()) for n in ints]
        + [(n, pa.float64()) for n in floats]
    )
    return pa.table(columns, schema=schema)


def write_gold(home, drop_column: str | None = None, days=(D1, D2)) -> None:
    """Customers C1 (seed 1 on the first day, 2 on the second) and C2 (seed 3, first day only);
    merchant M1 (seeds 4 and 5); C1 with device D1 (seeds 6 and 7) and in country US (seed 8,
    second day only)."""
    first, second = days
    customers = gold_table("customer_id", CUSTOMER_INTS, CUSTOMER_FLOATS,
                           [("C1", first, 1), ("C1", second, 2), ("C2", first, 3)])  # fmt: skip
    merchants = gold_table(
        "merchant_id", MERCHANT_INTS, MERCHANT_FLOATS, [("M1", first, 4), ("M1", second, 5)]
    )
    if drop_column:
        customers = customers.drop([drop_column])
    root = home / "lakehouse/gold"
    overwrite_days(str(root / "customer_daily_features"), customers, first, second)
    overwrite_days(str(root / "merchant_daily_features"), merchants, first, second)
    devices = gold_table(("customer_id", "device_id"), PAIR_INTS, PAIR_FLOATS,
                         [(("C1", "D1"), first, 6), (("C1", "D1"), second, 7)])  # fmt: skip
    countries = gold_table(("customer_id", "merchant_country"), PAIR_INTS, PAIR_FLOATS,
                           [(("C1", "US"), second, 8)])  # fmt: skip
    overwrite_days(str(root / "customer_device_daily_features"), devices, first, second)
    overwrite_days(str(root / "customer_country_daily_features"), countries, first, second)
