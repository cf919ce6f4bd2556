"""The single Dagster code location of fraud-platform."""

import dagster as dg

from settings.env import prepare_process_environment

prepare_process_environment()

from assets import (  # noqa: E402
    asset_checks,
    feature_assets,
    lakehouse_assets,
    monitoring_assets,
    scoring_assets,
    training_assets,
)
from jobs import jobs, schedules  # noqa: E402
from resources import build_resources  # noqa: E402
from sensors import sensors  # noqa: E402

defs = dg.Definitions(
    assets=[
        *lakehouse_assets,
        *feature_assets,
        *training_assets,
        *scoring_assets,
        *monitoring_assets,
    ],
    asset_checks=asset_checks,
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    resources=build_resources(),
)
