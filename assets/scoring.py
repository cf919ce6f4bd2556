"""Scoring: the champion's bento, which the online API serves, and batch scores of silver."""

import concurrent.futures
import datetime as dt
import time
from typing import Literal

import dagster as dg
import numpy as np

from assets.partitions import daily_partitions, partition_days, single_run
from assets.registry import CHAMPION
from assets.velocity import VELOCITY_KEYS
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource

BENTO = dg.AssetKey(["scoring", "bento"])


@dg.asset(key=BENTO, group_name="scoring", deps=[CHAMPION], kinds={"bentoml"})
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


BATCH_SCORES = dg.AssetKey(["scoring", "batch_scores"])
PREDICTION_LOG = dg.AssetKey(["monitoring", "prediction_log"])
SCORE_COLUMNS = ["transaction_id", "event_timestamp", "day", "scored_at", "model_version",
                 "score", "decision", "reasons"]  # fmt: skip


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
            BATCH_SCORES,
            group_name="scoring",
            deps=[
                dg.AssetKey(["silver", "transactions"]),
                CHAMPION,
                dg.AssetKey(["features", "feast_registry"]),
                *VELOCITY_KEYS.values(),
                dg.AssetKey(["features", "online_store"]),
            ],
            description="Silver transactions of the partition scored by the champion, through "
            "the same code as the online API",
            kinds={"delta", "mlflow"},
        ),
        dg.AssetSpec(
            PREDICTION_LOG,
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
    from ml.feature_store import FEATURE_SERVICE
    from ml.offline_features import PointInTimeFeatures
    from ml.online_features import OnlineFeatures
    from ml.registry import load_by_alias
    from serving import heap
    from serving.prediction_log import prediction_rows
    from serving.scoring import DECISIONS, Scorer, Unguarded
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
    scored_at = dt.datetime.now(dt.UTC)
    loop_started = time.perf_counter()  # after the imports and the model's load
    decisions: dict[str, int] = {}
    rows = 0
    # A chunk spans Delta files (a day is a few thousand rows): one lookup of each distinct
    # entity, one forward pass and two commits per chunk, whatever the file layout. A chunk's
    # tables are written in a thread while the next chunk is scored: at most two chunks in memory.
    chunks = lakehouse.scan(
        "silver", "transactions", start, end, config.chunk_rows, columns=SCORING_COLUMNS
    )
    writing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="delta-write")
    with heap.settled(), writing as writer:
        written = None
        for index, chunk in enumerate(chunks):
            scored = scorer.score(chunk, as_of)
            for decision in DECISIONS:
                count = int(np.count_nonzero(scored.decisions == decision))
                decisions[decision] = decisions.get(decision, 0) + count
            if written is not None:
                written.result()  # the previous chunk's commits come first (and fail the run)
            log = prediction_rows(scored, scorer.inputs, "batch", scored_at)
            written = writer.submit(_write, lakehouse, log, start, end, replace=index == 0)
            rows += chunk.num_rows
            context.log.info(f"chunk {index + 1}: {chunk.num_rows:,} rows scored")
        if written is not None:
            written.result()
    if rows == 0:
        # Nothing to score: the partition's earlier batch scores are removed all the same.
        _write(lakehouse, None, start, end, replace=True)
    elapsed, scoring = time.perf_counter() - started, time.perf_counter() - loop_started
    yield dg.MaterializeResult(
        asset_key=BATCH_SCORES,
        metadata={
            "dagster/row_count": rows,
            "model_version": str(version),
            "features": config.features,
            "decisions": decisions,
            "rows_per_s": round(rows / scoring) if scoring else 0,
            "scoring_s": round(scoring, 1),
            "duration_s": round(elapsed, 1),
        },
    )
    yield dg.MaterializeResult(asset_key=PREDICTION_LOG, metadata={"batch_rows_written": rows})


def _write(lakehouse: LakehouseResource, log, start, end, replace: bool) -> None:
    """Scores and log rows of a chunk; `replace`: they replace the days' earlier batch rows."""
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
