"""A person's approval of the challenger that passed its gate (manual-approval mode)."""

import dagster as dg

from assets import keys
from ml.promotion import promote
from ml.registry import MODEL_NAME
from resources.mlflow import MlflowResource


@dg.op
def approve_champion(context: dg.OpExecutionContext, mlflow: MlflowResource) -> str:
    """Promote the challenger that passed its gate (manual-approval mode)."""
    from mlflow import MlflowClient

    mlflow.activate()
    client = MlflowClient()
    candidate = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    if candidate.tags.get("gate") != "passed":
        raise dg.Failure(
            f"challenger v{candidate.version} has gate={candidate.tags.get('gate', 'not run')}: "
            "only a challenger that passed registry/champion's gate can be approved"
        )
    former = promote(client, candidate.version)
    context.log_event(
        dg.AssetMaterialization(
            keys.CHAMPION,
            metadata={
                "champion_version": int(candidate.version),
                "previous_version": former or "none",
                "promoted": True,
                "approval": "manual",
            },
        )
    )
    return str(candidate.version)


@dg.job(description="A person's approval: the gated challenger becomes champion.")
def approve_champion_job():
    approve_champion()
