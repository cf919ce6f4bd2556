"""Entities: who or what a feature describes."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A card holder of the issuer.",
)
merchant = Entity(
    name="merchant",
    join_keys=["merchant_id"],
    value_type=ValueType.STRING,
    description="A merchant where a card was used.",
)
card = Entity(
    name="card",
    join_keys=["card_id"],
    value_type=ValueType.STRING,
    description="A payment card; streaming velocity features are kept per card.",
)
device = Entity(
    name="device",
    join_keys=["device_id"],
    value_type=ValueType.STRING,
    description="A device a card was used from; familiar or new to its customer.",
)
country = Entity(
    name="country",
    join_keys=["merchant_country"],
    value_type=ValueType.STRING,
    description="The country of the merchant; familiar or new to the customer.",
)
