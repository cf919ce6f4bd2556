"""A person's approval of the challenger that passed its gate (manual-approval mode)."""

import dagster as dg

from assets import keys
from assets.registry import GATE_CHECK, RolloutConfig
from ml.promotion import roll_out
from ml.registry import MODEL_NAME
from resources.mlflow import MlflowResource

GATE_HISTORY = 100  # evaluations looked through for the challenger's newest one


def gate_evaluation(instance: dg.DagsterInstance, version: str):
    """(the evaluation, its run id) of the newest gate Dagster recorded on challenger
    `version`, or None: the evidence of a gate is Dagster's record, not a registry tag."""
    key = dg.AssetCheckKey(keys.CHAMPION, GATE_CHECK)
    history = instance.event_log_storage.get_asset_check_execution_history(key, GATE_HISTORY)
    for record in history:
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            continue  # planned, not evaluated
        gated = evaluation.metadata.get("challenger_version")
        if gated is not None and str(gated.value) == str(version):
            return evaluation, record.run_id
    return None


@dg.op
def approve_champion(
    context: dg.OpExecutionContext, config: RolloutConfig, mlflow: MlflowResource
) -> str:
    """Promote the challenger that passed its gate (manual-approval mode)."""
    from mlflow import MlflowClient

    mlflow.activate()
    client = MlflowClient()
    candidate = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    found = gate_evaluation(context.instance, candidate.version)
    if found is None or not found[0].passed:
        verdict = "failed" if found else "no record"
        raise dg.Failure(
            f"challenger v{candidate.version}: its newest gate in Dagster: {verdict}; only a "
            "challenger whose registry/champion gate passed in a Dagster run can be approved "
            "(a registry tag is not evidence)"
        )
    evaluation, gate_run = found
    former, rollout = roll_out(client, candidate.version, config.canary_share)
    context.log_event(
        dg.AssetMaterialization(
            keys.CHAMPION,
            metadata={
                "champion_version": int(candidate.version),
                "previous_version": former or "none",
                "promoted": True,
                "rollout": rollout,
                "approval": "manual",
                "gate_run_id": gate_run,
                "gate": evaluation.description or "passed",
            },
        )
    )
    return str(candidate.version)


@dg.job(description="A person's approval: the gated challenger becomes champion.")
def approve_champion_job():
    approve_champion()
