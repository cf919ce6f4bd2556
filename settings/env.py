"""Where embedded state lives and which resource set runs: FRAUD_HOME and FRAUD_ENV."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("local", "prod")

# No network here or in air-gapped clusters: nothing may wait on a telemetry lookup.
TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "FEAST_USAGE": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "SODA_CORE_TELEMETRY_ENABLED": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    "BENTOML_DO_NOT_TRACK": "true",
}


def fraud_home() -> Path:
    """FRAUD_HOME, default `.fraud_home` in the repository, as an absolute path."""
    return Path(os.environ.get("FRAUD_HOME") or REPO_ROOT / ".fraud_home").resolve()


def lakehouse_root() -> str:
    """LAKEHOUSE_URI, else $FRAUD_HOME/lakehouse (the Delta tables' root, as Feast's sources)."""
    return (os.environ.get("LAKEHOUSE_URI") or str(fraud_home() / "lakehouse")).rstrip("/")


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else the embedded SQLite store under FRAUD_HOME."""
    default = f"sqlite:///{fraud_home() / 'mlflow' / 'mlflow.db'}"
    return os.environ.get("MLFLOW_TRACKING_URI") or default


def partitions_start() -> dt.date:
    """FRAUD_PARTITIONS_START, the first daily partition (default 2026-01-01)."""
    text = os.environ.get("FRAUD_PARTITIONS_START") or "2026-01-01"
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"FRAUD_PARTITIONS_START={text!r} is not a date YYYY-MM-DD") from None


def canary_share() -> float:
    """FRAUD_CANARY_SHARE, the share of batches a promoted champion decides first (default 1:
    all of them at once)."""
    text = os.environ.get("FRAUD_CANARY_SHARE") or "1"
    try:
        share = float(text)
    except ValueError:
        share = float("nan")
    if not 0 < share <= 1:
        raise ValueError(f"FRAUD_CANARY_SHARE={text!r} is not a share in (0, 1]")
    return share


def fraud_env() -> str:
    env = os.environ.get("FRAUD_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ValueError(f"FRAUD_ENV={env!r} is not one of {', '.join(ENVIRONMENTS)}")
    return env


def prepare_process_environment() -> None:
    """Export FRAUD_HOME (absolute), BENTOML_HOME (default under it) and telemetry switches for
    this process and its children (dbt runs as a subprocess and reads FRAUD_HOME from its
    profile)."""
    os.environ["FRAUD_HOME"] = str(fraud_home())
    # BentoML's model and bento stores live with the rest of the embedded state.
    os.environ.setdefault("BENTOML_HOME", str(fraud_home() / "bentoml"))
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
