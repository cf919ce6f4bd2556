"""A transaction to score, as every serving path receives it (HTTP body, stream message, silver
row), validated once, and made into the row the model and the feature lookup read."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from settings.currencies import KNOWN_CURRENCIES, USD_PER_UNIT

Currency = Literal[KNOWN_CURRENCIES]  # type: ignore[valid-type]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _in_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone (e.g. 2026-11-23T10:00:00Z)")
    return value.astimezone(dt.UTC)


# A time with its zone, held in UTC: one without a zone is refused, never guessed.
UtcDatetime = Annotated[dt.datetime, AfterValidator(_in_utc)]


class Transaction(BaseModel):
    """A card payment, as it is authorised: who pays, where, from what device, how much."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    transaction_id: Identifier
    event_timestamp: UtcDatetime = Field(description="When the payment happened (ISO 8601, UTC)")
    customer_id: Identifier
    card_id: Identifier
    merchant_id: Identifier
    merchant_category: str | None = Field(
        None, min_length=1, max_length=64, description="Absent when the data has no categories"
    )
    merchant_country: str | None = Field(
        None, pattern=r"^[A-Za-z]{2}$", description="ISO 3166 alpha-2; absent when unknown"
    )
    device_id: Identifier | None = Field(None, description="Absent for a card-present payment")
    channel: Literal["pos", "online"] | None = Field(None, description="Absent when unknown")
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: Currency

    def scoring_row(self) -> dict:
        """The model's and the lookup's view: join keys, request features, USD amount (as silver
        computes it)."""
        return {
            "transaction_id": self.transaction_id,
            "event_timestamp": self.event_timestamp,
            "customer_id": self.customer_id,
            "card_id": self.card_id,
            "merchant_id": self.merchant_id,
            "device_id": self.device_id,
            "merchant_category": self.merchant_category and self.merchant_category.lower(),
            "merchant_country": self.merchant_country and self.merchant_country.upper(),
            "channel": self.channel,
            "amount_usd": usd(float(self.amount), self.currency),
        }


def usd(amount: float, currency: str) -> float:
    """The amount in USD, rounded as Spark rounds silver's `amount_usd` (half up, from the
    double's shortest decimal form), so that online and batch scores see the same number."""
    value = Decimal(repr(amount * USD_PER_UNIT[currency]))
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# The columns of a scoring row (silver has them all, under the same names).
SCORING_COLUMNS = [
    *("transaction_id", "event_timestamp", "customer_id", "card_id", "merchant_id", "device_id"),
    *("merchant_category", "merchant_country", "channel", "amount_usd"),
]
