"""Scoring: the champion's bento, which the online API serves, and batch scores of silver."""

import datetime as dt
import time
from typing import Literal

import dagster as dg

from assets import keys
from assets.partitions import daily_partitions, partition_days, single_run
from assets.velocity import VELOCITY_KEYS
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource


@dg.asset(key=keys.BENTO, group_name="scoring", deps=[keys.CHAMPION], kinds={"bentoml"})
def bento(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The champion copied into BentoML's model store and its scoring bento, tagged by version."""
    from serving.bento import build_in_subprocess

    started = time.perf_counter()
    built = build_in_subprocess()
    context.log.info(f"{built['bento_tag']} ({'built' if built['built'] else 'already built'})")
    return dg.MaterializeResult(
        metadata={
            "model_tag": built["model_tag"],
            "bento_tag": built["bento_tag"],
            "built": built["built"],
            "serve": dg.MetadataValue.md(
                f"`bentoml serve {built['bento_tag']}` or `make serve` (FRAUD_API_KEY set)"
            ),
            "duration_s": round(time.perf_counter() - started, 1),
        }
    )


class BatchScoringConfig(dg.Config):
    """Rows scored per chunk (bounds memory whatever the partition's size), and where the
    features come from. `point_in_time` (the default) reads each transaction's features as they
    were at its own time from the offline store, as the training set joins them: the scores of a
    closed day carry no training/serving skew. `online` reads the online store as the API does,
    fresh at `as_of` (ISO; default now)."""

    chunk_rows: int = 200_000
    features: Literal["point_in_time", "online"] = "point_in_time"
    as_of: str | None = None


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            keys.BATCH_SCORES,
            group_name="scoring",
            deps=[
                keys.SILVER_TRANSACTIONS,
                keys.CHAMPION,
                keys.FEAST_REGISTRY,
                *VELOCITY_KEYS.values(),
                keys.ONLINE_STORE,
            ],
            description="Silver transactions of the partition scored by the champion, through "
            "the same code as the online API",
            kinds={"delta", "mlflow"},
        ),
        dg.AssetSpec(
            keys.PREDICTION_LOG,
            group_name="monitoring",
            description="Every score of every path (online, batch, stream) with the features "
            "the model read; batch rows of a partition are replaced when it is re-scored",
            kinds={"delta"},
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    name="batch_scoring",
)
def batch_scoring(
    context: dg.AssetExecutionContext,
    config: BatchScoringConfig,
    lakehouse: LakehouseResource,
    feast: FeastResource,
    mlflow: MlflowResource,
):
    """Score the partition's silver transactions in chunks; write scores and log rows."""
    from features.lookup import OnlineFeatures
    from features.offline import PointInTimeFeatures
    from features.store import FEATURE_SERVICE
    from ml.registry import load_by_alias
    from serving.batch import score_chunks
    from serving.scoring import Scorer, Unguarded
    from serving.transaction import SCORING_COLUMNS

    if config.as_of and config.features != "online":
        raise dg.Failure("as_of applies to online features; point_in_time reads each row's time")
    started = time.perf_counter()
    start, end = partition_days(context)
    mlflow.activate()
    model, version = load_by_alias("champion")
    if config.features == "online":
        # The run scores against the store as it is: an entity of many rows is read once.
        features = OnlineFeatures.for_service(feast.store(), FEATURE_SERVICE, remember=True)
        as_of = dt.datetime.fromisoformat(config.as_of) if config.as_of else None
    else:
        features, as_of = PointInTimeFeatures(feast.store(), FEATURE_SERVICE), None
    # Batch has no one waiting: a store failure fails the run, with its cause, rather than
    # degrading it, and a point-in-time read of a large chunk takes the time it takes.
    scorer = Scorer(model, version, features, breaker=Unguarded())
    chunks = lakehouse.scan(
        "silver", "transactions", start, end, config.chunk_rows, columns=SCORING_COLUMNS
    )
    outcome = score_chunks(
        scorer, chunks, lambda log, replace: _write(lakehouse, log, start, end, replace), as_of,
        on_chunk=lambda index, rows: context.log.info(f"chunk {index + 1}: {rows:,} rows scored"),
    )  # fmt: skip
    yield dg.MaterializeResult(
        asset_key=keys.BATCH_SCORES,
        metadata={
            "dagster/row_count": outcome.rows,
            "model_version": str(version),
            "features": config.features,
            "decisions": outcome.decisions,
            "rows_per_s": round(outcome.rows / outcome.scoring_s) if outcome.scoring_s else 0,
            "scoring_s": round(outcome.scoring_s, 1),
            "duration_s": round(time.perf_counter() - started, 1),
        },
    )
    yield dg.MaterializeResult(
        asset_key=keys.PREDICTION_LOG, metadata={"batch_rows_written": outcome.rows}
    )


def _write(lakehouse: LakehouseResource, log, start, end, replace: bool) -> None:
    """Scores and log rows of a chunk; `replace`: they replace the days' earlier batch rows."""
    from serving.batch import SCORE_COLUMNS
    from serving.prediction_log import COLUMNS

    if log is None:
        log = COLUMNS.empty_table()
    if replace:  # the partition's first chunk: a re-run replaces instead of adding
        lakehouse.overwrite("scoring", "batch_scores", log.select(SCORE_COLUMNS), start, end)
        lakehouse.overwrite("monitoring", "prediction_log", log, start, end, "path = 'batch'",
                            evolve_schema=True)  # fmt: skip
    else:
        lakehouse.append("scoring", "batch_scores", log.select(SCORE_COLUMNS))
        lakehouse.append("monitoring", "prediction_log", log, evolve_schema=True)
