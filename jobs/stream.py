"""The stream's backlog from Dagster: score what waits in the transaction stream, then stop."""

import dagster as dg

from assets import keys


class DrainConfig(dg.Config):
    """Messages per read; the live worker (`python -m serving.stream`) keeps running instead."""

    batch: int = 500


@dg.op
def drain_stream(context: dg.OpExecutionContext, config: DrainConfig) -> dict:
    """Run the stream worker until a read finds nothing; record what reached the log."""
    from serving.stream import build_worker

    worker = build_worker()
    counts = worker.run(config.batch, block_ms=1000, max_idle_s=60, until_idle=True)
    context.log.info(f"{worker.settings.name}: {counts}")
    context.log_event(
        dg.AssetMaterialization(
            keys.PREDICTION_LOG,
            metadata={
                "stream_rows_written": counts["scored"],
                "dead_lettered": counts["dead_lettered"],
                "stream": worker.settings.name,
                "model_version": worker.scorer.model_version,
            },
        )
    )
    return counts


@dg.job(description="Score the transaction stream's backlog with the stream worker, then stop.")
def stream_drain_job():
    drain_stream()
