"""Software-defined assets, one module per layer."""

import warnings

import dagster as dg

# Single-run backfills and partitioned asset checks are beta/preview in Dagster 1.13; we opt in
# knowingly (tests cover both), so their warnings would only be noise on every import.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

# Dagster puts the working directory on sys.path only while it loads the code location; a run's
# step imports ml/ and serving/ lazily (torch stays out of the load), which then resolve through the
# packages registered here.
import ml  # noqa: F401
import serving  # noqa: F401
from assets.bronze import bronze_assets
from assets.features import feast_registry, online_store, online_store_fresh
from assets.fraud_reports import merchant_fraud_reports
from assets.gold import gold_contracts, gold_dbt_models
from assets.monitoring import (
    drift_report,
    model_performance,
    performance_above_floor,
    shadow_comparison,
)
from assets.registry import challenger, champion, decision_thresholds
from assets.scoring import batch_scoring, bento
from assets.silver import silver_tables
from assets.training import tuned_model
from assets.training_set import training_set
from assets.velocity import velocity_history

lakehouse_assets = [*bronze_assets, silver_tables, gold_dbt_models]
feature_assets = [
    velocity_history,
    merchant_fraud_reports,
    feast_registry,
    online_store,
    training_set,
]
asset_checks = [gold_contracts, online_store_fresh, performance_above_floor]
training_assets = [tuned_model, challenger, decision_thresholds, champion]
scoring_assets = [bento, batch_scoring]
monitoring_assets = [drift_report, model_performance, shadow_comparison]
