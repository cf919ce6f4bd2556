"""The single Dagster code location of fraud-platform."""

from resources.settings import prepare_process_environment

prepare_process_environment()

import dagster as dg  # noqa: E402

from assets import asset_checks, lakehouse_assets  # noqa: E402
from jobs import jobs, schedules  # noqa: E402
from resources import build_resources  # noqa: E402
from sensors import sensors  # noqa: E402

defs = dg.Definitions(
    assets=lakehouse_assets,
    asset_checks=asset_checks,
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    resources=build_resources(),
)
