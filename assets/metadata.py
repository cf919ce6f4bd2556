"""Metadata every materialization carries into the Dagster UI."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import dagster as dg
import pyarrow as pa

from lakehouse.contracts import ContractOutcome
from lakehouse.delta import DeltaWrite


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    """The metadata of an asset's latest materialization; empty when it has none."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def materialized(result) -> dict[str, dict]:
    """Asset key -> metadata of its last materialization in a run's result."""
    out = {}
    for event in result.get_asset_materialization_events():
        m = event.event_specific_data.materialization
        out[m.asset_key.to_user_string()] = {k: v.value for k, v in m.metadata.items()}
    return out


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema])


def delta_metadata(write: DeltaWrite, schema: pa.Schema, start: dt.date, end: dt.date) -> dict:
    return {
        "dagster/row_count": write.rows,
        "dagster/column_schema": column_schema(schema),
        "dagster/uri": write.uri,
        "delta_version": write.version,
        "partition_range": f"{start} .. {end}",
    }


def counts_table(counts: Counter, key: str) -> dg.MetadataValue:
    """A markdown table of counts, largest first, for reasons and the like."""
    rows = "\n".join(f"| {name} | {n:,} |" for name, n in counts.most_common())
    return dg.MetadataValue.md(f"| {key} | rows |\n|---|---|\n{rows}" if rows else "none")


def contract_check_result(
    outcome: ContractOutcome, asset_key: dg.AssetKey, check_name: str = "soda_contract"
) -> dg.AssetCheckResult:
    """A Soda verification as an ERROR-severity check result (blocking where the spec is)."""
    lines = "\n".join(f"| {c.name} | {c.outcome} | {c.value} |{c.detail}" for c in outcome.checks)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.summary(),
        metadata={
            "contract": outcome.contract,
            "rows_checked": outcome.rows,
            "checks": dg.MetadataValue.md(f"| check | outcome | value |\n|---|---|---|\n{lines}"),
            **({"errors": dg.MetadataValue.text(outcome.errors)} if outcome.errors else {}),
        },
    )


def audited(outcome: ContractOutcome, asset_key: dg.AssetKey, start, end):
    """Yields nothing when the contract passed; else its failed check result, then raises: the
    days are not published, and the version before stays the current one (write, audit,
    publish: the audit comes before the write)."""
    if outcome.passed:
        return
    yield contract_check_result(outcome, asset_key)
    raise dg.Failure(
        description=f"{asset_key.to_user_string()}: {outcome.summary()}; {start} .. {end} not "
        "written, the previous version of these days stays current",
        metadata={"failed_checks": [c.name for c in outcome.failed_checks]},
    )
