"""Bronze to silver in Spark: type, validate, deduplicate; every rejected row gets a reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.landing import (
    FRAUD_REPORTS,
    RAW_RECORD,
    SCHEMA_ERROR,
    SOURCE_FILE,
    SOURCE_LINE,
    TRANSACTIONS,
    LandingSource,
)
from lakehouse.quarantine import QUARANTINE_SCHEMA
from settings.currencies import KNOWN_CURRENCIES, USD_PER_UNIT

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

TIMESTAMP_FORMATS = ("yyyy-MM-dd'T'HH:mm:ss.SSSX", "yyyy-MM-dd'T'HH:mm:ssX")
AMOUNT_PATTERN = r"^-?[0-9]{1,12}(\.[0-9]{1,2})?$"


OUTCOME = "_outcome"  # valid | rejected | duplicate


@dataclass(frozen=True)
class Cleaned:
    """Silver rows, quarantine rows and the number of duplicates dropped, as Arrow."""

    valid: pa.Table
    rejected: pa.Table
    duplicates: int


def _blank(column: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(column).isNull() | (F.trim(F.col(column)) == "")


def _optional(value: Column) -> Column:
    from pyspark.sql import functions as F

    return F.nullif(value, F.lit(""))


def parse_timestamp(column: str) -> Column:
    """ISO-8601 UTC with or without milliseconds; anything else is null."""
    from pyspark.sql import functions as F

    return F.coalesce(*[F.try_to_timestamp(F.col(column), F.lit(f)) for f in TIMESTAMP_FORMATS])


def _first_failing(rules: list[tuple[Column, str]]) -> Column:
    """The reason of the first rule that fails, or null when all pass."""
    from pyspark.sql import functions as F

    reason = F.when(
        F.col(SCHEMA_ERROR).isNotNull(), F.concat(F.lit("schema: "), F.col(SCHEMA_ERROR))
    )
    for failed, name in rules:
        reason = reason.when(failed, F.lit(name))
    return reason


def _classify(
    df: DataFrame,
    source: LandingSource,
    key: str,
    rules: list[tuple[Column, str]],
    typed: dict[str, Column],
) -> Cleaned:
    """Tag every row once: valid, rejected (first failed rule) or duplicate (a valid key seen
    before, by file then line); then run the plan once and split the rows by outcome."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    tagged = df.withColumn("_reason", _first_failing(rules))
    valid = F.col("_reason").isNull()
    arrival = F.row_number().over(
        Window.partitionBy(F.trim(F.col(key)), valid).orderBy(
            F.col(SOURCE_FILE), F.col(SOURCE_LINE)
        )
    )
    raw_record = F.coalesce(F.col(RAW_RECORD), F.to_json(F.struct(*source.fields)))
    silver_columns = [*typed, SOURCE_FILE, "day"]
    classified = tagged.select(
        *[column.alias(name) for name, column in typed.items()],
        F.col(SOURCE_FILE),
        F.col("day"),
        F.when(~valid, F.lit("rejected"))
        .when(arrival > 1, F.lit("duplicate"))
        .otherwise(F.lit("valid"))
        .alias(OUTCOME),
        F.lit("silver").alias("stage"),
        F.lit(source.table).alias("source_table"),
        F.col(SOURCE_FILE).alias("source_file"),
        F.col(SOURCE_LINE).alias("source_line"),
        F.col(key).alias("record_id"),
        F.col("_reason").alias("reason"),
        F.when(~valid, raw_record).alias("record"),
    )
    table = classified.toArrow()
    outcome = table.column(OUTCOME)
    return Cleaned(
        valid=table.filter(pc.equal(outcome, "valid")).select(silver_columns),
        rejected=table.filter(pc.equal(outcome, "rejected"))
        .select(QUARANTINE_SCHEMA.names)
        .cast(QUARANTINE_SCHEMA),
        duplicates=pc.sum(pc.equal(outcome, "duplicate").cast(pa.int64())).as_py() or 0,
    )


def clean_transactions(bronze: DataFrame) -> Cleaned:
    """Rules, in order: ids present, timestamp parses and lies on the partition day,
    amount is a non-negative money value, currency is known."""
    from pyspark.sql import functions as F

    amount = F.trim(F.col("amount"))
    currency = F.upper(F.trim("currency"))
    timestamp = parse_timestamp("timestamp")
    ids = ("transaction_id", "customer_id", "card_id", "merchant_id")
    rules = [(_blank(c), f"missing_{c}") for c in ids]
    rules += [
        (timestamp.isNull(), "unparseable_timestamp"),
        (F.to_date(timestamp) != F.col("day"), "timestamp_outside_partition"),
        (~F.coalesce(amount.rlike(AMOUNT_PATTERN), F.lit(False)), "unparseable_amount"),
        (amount.startswith("-"), "negative_amount"),
        (~F.coalesce(currency.isin(*KNOWN_CURRENCIES), F.lit(False)), "unknown_currency"),
    ]
    rate = F.create_map(*[x for c, r in USD_PER_UNIT.items() for x in (F.lit(c), F.lit(r))])
    money = amount.try_cast("decimal(14,2)").cast("double")
    typed = {
        "transaction_id": F.trim("transaction_id"),
        "event_timestamp": timestamp,
        "customer_id": F.trim("customer_id"),
        "card_id": F.trim("card_id"),
        "merchant_id": F.trim("merchant_id"),
        # Optional fields: empty is absent (null), never a category of its own.
        "merchant_category": _optional(F.lower(F.trim("merchant_category"))),
        "merchant_country": _optional(F.upper(F.trim("merchant_country"))),
        "device_id": _optional(F.trim("device_id")),
        "channel": _optional(F.lower(F.trim("channel"))),
        "amount": money,
        "currency": currency,
        "amount_usd": F.round(money * rate[currency], 2),
    }
    return _classify(bronze, TRANSACTIONS, "transaction_id", rules, typed)


def clean_fraud_reports(bronze: DataFrame) -> Cleaned:
    """Rules, in order: ids present, reported_at parses and lies on the partition day."""
    from pyspark.sql import functions as F

    reported = parse_timestamp("reported_at")
    rules = [(_blank(c), f"missing_{c}") for c in ("report_id", "transaction_id")]
    rules += [
        (reported.isNull(), "unparseable_timestamp"),
        (F.to_date(reported) != F.col("day"), "timestamp_outside_partition"),
    ]
    typed = {
        "report_id": F.trim("report_id"),
        "transaction_id": F.trim("transaction_id"),
        "card_id": F.nullif(F.trim("card_id"), F.lit("")),
        "reported_at": reported,
        "reason_code": F.lower(F.trim("reason_code")),
    }
    return _classify(bronze, FRAUD_REPORTS, "transaction_id", rules, typed)


CLEANERS: dict[str, Callable[[DataFrame], Cleaned]] = {
    "transactions": clean_transactions,
    "fraud_reports": clean_fraud_reports,
}
