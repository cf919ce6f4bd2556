"""Every asset key, declared once: the assets, their checks, the jobs and the sensors use these."""

import dagster as dg


def bronze(table: str) -> dg.AssetKey:
    return dg.AssetKey(["bronze", table])


def silver(table: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", table])


def gold(table: str) -> dg.AssetKey:
    return dg.AssetKey(["gold", table])


def velocity(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["features", f"{entity}_velocity"])


BRONZE_TRANSACTIONS = bronze("transactions")
BRONZE_FRAUD_REPORTS = bronze("fraud_reports")
SILVER_TRANSACTIONS = silver("transactions")
QUARANTINE = silver("quarantine")
LABELS = gold("transaction_labels")
MERCHANT_FRAUD_REPORTS = dg.AssetKey(["features", "merchant_fraud_reports"])
FEAST_REGISTRY = dg.AssetKey(["features", "feast_registry"])
ONLINE_STORE = dg.AssetKey(["features", "online_store"])
TRAINING_SET = dg.AssetKey(["features", "training_set"])
TUNED_MODEL = dg.AssetKey(["training", "tuned_model"])
CHALLENGER = dg.AssetKey(["registry", "challenger"])
DECISION_THRESHOLDS = dg.AssetKey(["registry", "decision_thresholds"])
CHAMPION = dg.AssetKey(["registry", "champion"])
BENTO = dg.AssetKey(["scoring", "bento"])
BATCH_SCORES = dg.AssetKey(["scoring", "batch_scores"])
PREDICTION_LOG = dg.AssetKey(["monitoring", "prediction_log"])
DRIFT_REPORT = dg.AssetKey(["monitoring", "drift_report"])
MODEL_PERFORMANCE = dg.AssetKey(["monitoring", "model_performance"])
SHADOW_COMPARISON = dg.AssetKey(["monitoring", "shadow_comparison"])
