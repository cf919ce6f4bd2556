"""A new champion's canary rollout in the registry (MLflow, no Dagster): tags on its version say
what share of traffic it decides and since when; serving reads them (`serving.model_follow`),
the canary sensor completes the rollout or rolls `champion` back to `previous`."""

import datetime as dt

from ml.registry import MODEL_NAME, set_alias, version_by_alias

SHARE_TAG = "rollout_share"  # the share of batches the champion decides during its canary
STARTED_TAG = "rollout_started_at"
OUTCOME_TAG = "rollout"  # canary, complete or rolled_back
REASON_TAG = "rollout_reason"


def start_canary(client, version: str, share: float, now: dt.datetime) -> None:
    """`version`, just made champion, decides `share` of the batches until the rollout ends."""
    if not 0 < share < 1:
        raise ValueError(f"a canary's share is between 0 and 1, got {share}")
    client.set_model_version_tag(MODEL_NAME, version, SHARE_TAG, f"{share:g}")
    client.set_model_version_tag(MODEL_NAME, version, STARTED_TAG, now.isoformat())
    client.set_model_version_tag(MODEL_NAME, version, OUTCOME_TAG, "canary")


def in_rollout(version) -> tuple[float, dt.datetime] | None:
    """(share, started at) of a model version in its canary rollout; None outside one."""
    tags = version.tags
    if tags.get(OUTCOME_TAG) != "canary" or SHARE_TAG not in tags or STARTED_TAG not in tags:
        return None
    return float(tags[SHARE_TAG]), dt.datetime.fromisoformat(tags[STARTED_TAG])


def complete(client, version: str, reason: str) -> None:
    """The canary decides all traffic from now on."""
    client.delete_model_version_tag(MODEL_NAME, version, SHARE_TAG)
    client.set_model_version_tag(MODEL_NAME, version, OUTCOME_TAG, "complete")
    client.set_model_version_tag(MODEL_NAME, version, REASON_TAG, reason[:5000])


def roll_back(client, version: str, reason: str) -> str:
    """`champion` back to the version holding `previous`, which it returns; `version` keeps the
    reason. Refused when `version` no longer holds `champion` (a person moved it meanwhile)."""
    champion, previous = version_by_alias("champion", client), version_by_alias("previous", client)
    if champion is None or str(champion.version) != str(version):
        raise LookupError(f"v{version} no longer holds champion: nothing to roll back")
    if previous is None:
        raise LookupError(f"no version holds previous: v{version} cannot be rolled back")
    set_alias("champion", str(previous.version), client)
    client.delete_model_version_tag(MODEL_NAME, version, SHARE_TAG)
    client.set_model_version_tag(MODEL_NAME, version, OUTCOME_TAG, "rolled_back")
    client.set_model_version_tag(MODEL_NAME, version, REASON_TAG, reason[:5000])
    return str(previous.version)
