"""Soda data contracts verified locally over an Arrow table through an in-memory DuckDB."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    outcome: str  # PASSED | FAILED | WARN | NOT_EVALUATED | EXCLUDED
    value: float | int | None
    detail: str = ""


@dataclass(frozen=True)
class ContractOutcome:
    """Whether the contract holds, with each check's outcome and measured value."""

    contract: str
    passed: bool
    rows: int
    checks: list[CheckOutcome] = field(default_factory=list)
    errors: str = ""

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.outcome != "PASSED"]

    def summary(self) -> str:
        if self.passed:
            return f"{self.contract}: all {len(self.checks)} checks passed on {self.rows} rows"
        failed = "; ".join(
            f"{c.name} ({c.outcome}, value={c.value}){c.detail}" for c in self.failed_checks
        )
        return f"{self.contract}: FAILED on {self.rows} rows: {failed} {self.errors}".strip()


def contract_path(layer: str, table: str) -> Path:
    return CONTRACTS_DIR / f"{layer}_{table}.yml"


def _describe(result) -> tuple[str, str]:
    check = result.check
    name = check.name or check.type
    if check.column_name:
        name = f"{check.column_name}: {name}"
    detail = ""
    if check.type == "schema":
        missing = list(getattr(result, "expected_column_names_not_actual", []) or [])
        extra = list(getattr(result, "actual_column_names_not_expected", []) or [])
        mismatched = [
            f"{m.column}: expected {m.get_expected()}, got {m.get_actual()}"
            for m in getattr(result, "column_data_type_mismatches", []) or []
        ]
        if missing or extra or mismatched:
            detail = f" missing columns {missing}, unexpected columns {extra}, types {mismatched}"
    return name, detail


def verify_contract(
    contract: Path, table_name: str, data: pa.Table, variables: dict[str, str] | None = None
) -> ContractOutcome:
    """Verify `contract` (dataset `duckdb/main/<table_name>`) against `data`."""
    os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
    import duckdb
    from soda_core.contracts import verify_contract_locally
    from soda_duckdb import DuckDBDataSource

    connection = duckdb.connect(":memory:")
    try:
        connection.register(table_name, data)
        source = DuckDBDataSource.from_existing_cursor(connection, name="duckdb")
        result = verify_contract_locally(
            data_sources=[source], contract_file_path=str(contract), variables=variables or {}
        )
    finally:
        connection.close()
    checks = []
    for contract_result in result.contract_verification_results:
        for check_result in contract_result.check_results:
            name, detail = _describe(check_result)
            checks.append(
                CheckOutcome(
                    name=name,
                    outcome=check_result.outcome.name,
                    value=check_result.threshold_value,
                    detail=detail,
                )
            )
    errors = result.get_errors_str() if result.has_errors else ""
    # `is_ok` is the only safe verdict: a contract that errors is neither passed nor failed.
    return ContractOutcome(
        contract=contract.name,
        passed=bool(result.is_ok),
        rows=data.num_rows,
        checks=checks,
        errors=errors,
    )
