"""Data sources: the gold Delta tables, and the push source the stream worker writes to."""

import os
from pathlib import Path

from feast import FileSource, PushSource
from feast.data_format import DeltaFormat


def lakehouse_root() -> str:
    """LAKEHOUSE_URI, else $FRAUD_HOME/lakehouse (FRAUD_HOME defaults to the repo's .fraud_home)."""
    default_home = Path(__file__).resolve().parent.parent / ".fraud_home"
    home = os.environ.get("FRAUD_HOME") or str(default_home)
    return (os.environ.get("LAKEHOUSE_URI") or f"{home}/lakehouse").rstrip("/")


def gold_source(table: str, grain: str) -> FileSource:
    """A gold Delta table of daily features, one row per `grain` and day, known at its end."""
    return FileSource(
        name=f"gold_{table}",
        path=f"{lakehouse_root()}/gold/{table}",
        file_format=DeltaFormat(),
        timestamp_field="feature_timestamp",
        description=f"gold/{table}: one row per {grain} and day, known at the day's end.",
    )


customer_daily_source = gold_source("customer_daily_features", "customer")
merchant_daily_source = gold_source("merchant_daily_features", "merchant")
customer_device_source = gold_source("customer_device_daily_features", "customer and device")
customer_country_source = gold_source("customer_country_daily_features", "customer and country")


def pushed_history(name: str, description: str) -> PushSource:
    """A push source `<name>_push`; its batch source (a Delta table of pushed values under
    features/, created empty by `features/feast_registry`) gives Feast the schema and the
    offline history."""
    return PushSource(
        name=f"{name}_push",
        batch_source=FileSource(
            name=f"{name}_history",
            path=f"{lakehouse_root()}/features/{name}",
            file_format=DeltaFormat(),
            timestamp_field="event_timestamp",
        ),
        description=description,
    )


def velocity_push(entity: str) -> PushSource:
    """Velocity counts per `entity`, pushed by the stream worker as transactions arrive."""
    return pushed_history(
        f"{entity}_velocity", f"Velocity counts per {entity}, pushed by the stream worker."
    )


card_velocity_push = velocity_push("card")
customer_velocity_push = velocity_push("customer")
merchant_fraud_reports_push = pushed_history(
    "merchant_fraud_reports",
    "Decayed fraud report counts per merchant, as of its last report: features/"
    "merchant_fraud_reports, and the report stream's pushes.",
)
