"""The end of a canary rollout, as the canary sensor decides it: the new champion takes all
traffic, or `champion` goes back to `previous`. The reason is in the run's tags and in the
champion's materialization (which the alert sensor tells)."""

from typing import Literal

import dagster as dg

from assets import keys
from ml.registry import MODEL_NAME
from resources.mlflow import MlflowResource


class RolloutConfig(dg.Config):
    action: Literal["complete", "rollback"]
    version: str  # the champion in its canary rollout
    reason: str


@dg.op
def finish_rollout(
    context: dg.OpExecutionContext, config: RolloutConfig, mlflow: MlflowResource
) -> str:
    """Complete the canary's rollout or roll `champion` back to `previous`; the champion."""
    from mlflow import MlflowClient

    from ml.rollout import complete, roll_back

    mlflow.activate()
    client = MlflowClient()
    if config.action == "complete":
        complete(client, config.version, config.reason)
        champion, metadata = config.version, {"rollout": "complete"}
    else:
        champion = roll_back(client, config.version, config.reason)
        metadata = {"rolled_back": True, "rolled_back_version": int(config.version),
                    "previous_version": int(config.version)}  # fmt: skip
    metadata |= {"champion_version": int(champion), "promoted": False,
                 "rollout_reason": config.reason}  # fmt: skip
    context.log_event(dg.AssetMaterialization(keys.CHAMPION, metadata=metadata))
    context.log.info(f"{MODEL_NAME}: rollout of v{config.version} {config.action}: {config.reason}")
    return champion


@dg.job(description="Completes a canary rollout or rolls the champion back (the canary sensor).")
def rollout_job():
    finish_rollout()
