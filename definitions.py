"""The single Dagster code location of fraud-platform."""

import warnings

import dagster as dg

from resources.settings import prepare_process_environment

prepare_process_environment()
# Single-run backfills and partitioned asset checks are beta/preview in Dagster 1.13; we opt in
# knowingly (tests cover both), so their warnings would only be noise on every load.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

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
from sensors import sensor_jobs, sensors  # noqa: E402

defs = dg.Definitions(
    assets=[
        *lakehouse_assets,
        *feature_assets,
        *training_assets,
        *scoring_assets,
        *monitoring_assets,
    ],
    asset_checks=asset_checks,
    jobs=[*jobs, *sensor_jobs],
    schedules=schedules,
    sensors=sensors,
    resources=build_resources(),
)
