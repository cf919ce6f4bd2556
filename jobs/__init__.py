"""Every job: asset jobs per layer, the daily job (landing to the online store), training,
scoring, the bento, monitoring, the stream's drain, a person's approval and the end of a canary
rollout; and the schedules."""

from __future__ import annotations

import dagster as dg

from assets import keys
from assets.partitions import daily_partitions
from jobs.approval import approve_champion_job
from jobs.rollout import rollout_job
from jobs.stream import stream_drain_job
from resources.k8s import LAKEHOUSE_POD, TRAINING_POD

LAYER_JOBS = {
    "bronze": "Landing files of a day into bronze Delta.",
    "silver": "Bronze to silver and quarantine in Spark, with blocking contracts.",
    "gold": "dbt build of the gold features and labels, exported as Delta.",
}
bronze_job, silver_job, gold_job = (
    dg.define_asset_job(
        f"{layer}_job",
        selection=dg.AssetSelection.groups(layer),
        partitions_def=daily_partitions,
        description=description,
    )
    for layer, description in LAYER_JOBS.items()
)
lakehouse_job = dg.define_asset_job(
    "lakehouse_job",
    selection=dg.AssetSelection.groups("bronze", "silver", "gold"),
    partitions_def=daily_partitions,
    description="Landing to gold for a day; a failed blocking check stops what is downstream.",
)

DAILY_FEATURES = dg.AssetSelection.groups("features") - dg.AssetSelection.assets(keys.TRAINING_SET)
features_job = dg.define_asset_job(
    "features_job",
    selection=DAILY_FEATURES,
    partitions_def=daily_partitions,
    description="Velocity history, Feast apply, the day's features into the online store.",
)
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups("bronze", "silver", "gold") | DAILY_FEATURES,
    partitions_def=daily_partitions,
    description="Landing to gold, then the online store: what a day of data needs.",
    tags=LAKEHOUSE_POD,
)
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets(keys.TRAINING_SET)
    | dg.AssetSelection.groups("training", "registry"),
    description="Training set -> Ray Tune -> challenger -> gated champion.",
    tags=TRAINING_POD,
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.assets(keys.BATCH_SCORES).required_multi_asset_neighbors(),
    partitions_def=daily_partitions,
    description="The days' silver transactions scored by the champion, and their log rows.",
)
monitoring_job = dg.define_asset_job(
    "monitoring_job",
    selection=dg.AssetSelection.assets(
        keys.DRIFT_REPORT, keys.MODEL_PERFORMANCE, keys.SHADOW_COMPARISON
    ),
    partitions_def=daily_partitions,
    description="A day's drift report, the shadow's comparison and, once its labels have "
    "matured, the champion's performance on it (one run per day: one report per day).",
)

bento_job = dg.define_asset_job(
    "bento_job",
    selection=dg.AssetSelection.assets(keys.BENTO),
    description="The champion's bento (BentoML model store, bento tagged by version).",
)

# At 02:00 UTC, yesterday's partition: the upstream systems have closed the day by then.
daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job, hour_of_day=2, name="daily_schedule"
)

# Mondays at 04:00 UTC, after the daily run: a week of newly matured labels, a new search, and
# the gate decides. Drift triggers the same job between times (issue 7).
weekly_training_schedule = dg.ScheduleDefinition(
    name="weekly_training_schedule",
    job=training_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    description="Retrain every Monday: training set, Ray Tune, challenger, gated champion.",
)

jobs = [
    bronze_job, silver_job, gold_job, lakehouse_job, features_job, daily_job, training_job,
    approve_champion_job, rollout_job, stream_drain_job, scoring_job, bento_job, monitoring_job,
]  # fmt: skip
schedules = [daily_schedule, weekly_training_schedule]
