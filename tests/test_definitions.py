"""The code location: names users see, blocking checks, jobs, schedule and sensor."""

import dagster as dg
import pytest

from definitions import defs

pytestmark = pytest.mark.unit
EXPECTED_ASSETS = {
    "bronze/transactions",
    "bronze/fraud_reports",
    "silver/transactions",
    "silver/fraud_reports",
    "silver/quarantine",
    "gold/customer_daily_features",
    "gold/merchant_daily_features",
    "gold/customer_device_daily_features",
    "gold/customer_country_daily_features",
    "gold/transaction_labels",
    "features/feast_registry",
    "features/online_store",
    "features/training_set",
    "features/card_velocity",
    "features/customer_velocity",
    "features/merchant_fraud_reports",
    "training/tuned_model",
    "registry/decision_thresholds",
    "registry/challenger",
    "registry/champion",
    "scoring/bento",
    "scoring/batch_scores",
    "monitoring/prediction_log",
    "monitoring/drift_report",
    "monitoring/model_performance",
    "monitoring/shadow_comparison",
}


def _graph():
    return defs.resolve_asset_graph()


def test_asset_keys_and_groups_are_the_documented_ones():
    graph = _graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys() if not graph.get(k).is_external}
    assert keys == EXPECTED_ASSETS
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_external:
            assert node.group_name == key.path[0]
            assert node.description, f"{key.to_user_string()} has no description"


def test_lineage_runs_bronze_to_silver_to_gold():
    graph = _graph()
    parents = lambda key: {p.to_user_string() for p in graph.get(dg.AssetKey(key)).parent_keys}  # noqa: E731
    assert parents(["silver", "quarantine"]) == {"bronze/transactions", "bronze/fraud_reports"}
    assert parents(["gold", "transaction_labels"]) == {
        "silver/transactions",
        "silver/fraud_reports",
    }
    assert "silver/fraud_reports" in parents(["gold", "merchant_daily_features"])


def test_contracts_and_reconciliation_are_blocking_checks():
    specs = {
        (spec.asset_key.to_user_string(), spec.name): spec
        for node in _graph().asset_check_keys
        for spec in [_graph().get_check_spec(node)]
    }
    for table in {a for a in EXPECTED_ASSETS if a.startswith(("silver/", "gold/"))}:
        assert specs[(table, "soda_contract")].blocking, table
    assert specs[("silver/transactions", "reconciles_with_bronze")].blocking
    # dbt tests arrive as checks too
    assert ("gold/transaction_labels", "unique_transaction_labels_transaction_id") in specs


def test_jobs_schedule_and_sensor_exist():
    for name in ("bronze_job", "silver_job", "gold_job", "lakehouse_job", "daily_job"):
        assert defs.resolve_job_def(name).partitions_def is not None
    schedule = defs.resolve_schedule_def("daily_schedule")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.job_name == "daily_job"
    weekly = defs.resolve_schedule_def("weekly_training_schedule")
    assert weekly.cron_schedule == "0 4 * * 1" and weekly.job_name == "training_job"
    assert defs.resolve_sensor_def("landing_sensor").job_name == "bronze_job"


def test_features_have_lineage_from_gold_and_their_checks():
    graph = _graph()
    parents = {
        p.to_user_string() for p in graph.get(dg.AssetKey(["features", "online_store"])).parent_keys
    }
    assert {"gold/customer_daily_features", "gold/merchant_daily_features"} <= parents
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {
        ("features/online_store", "online_offline_parity"),
        ("features/online_store", "fresh_within_ttl"),
        ("features/training_set", "point_in_time_correct"),
    } <= checks
    assert graph.get_check_spec(
        dg.AssetCheckKey(dg.AssetKey(["features", "training_set"]), "point_in_time_correct")
    ).blocking
    daily = defs.resolve_job_def("daily_job")
    assert dg.AssetKey(["features", "online_store"]) in daily.asset_layer.selected_asset_keys


def test_keys_of_one_step_share_their_parents_so_ui_backfills_accept_them():
    """Dagster refuses a backfill of a non-subsettable multi-asset whose keys would target
    different partition subsets, which happens when their parents differ."""
    graph = _graph()
    silver = [dg.AssetKey(["silver", t]) for t in ("transactions", "fraud_reports", "quarantine")]
    assert {frozenset(graph.get(k).parent_keys) for k in silver} == {
        frozenset(
            {dg.AssetKey(["bronze", "transactions"]), dg.AssetKey(["bronze", "fraud_reports"])}
        )
    }


def test_lazy_imports_of_a_run_resolve_once_the_repo_leaves_sys_path():
    """Dagster puts the working directory on sys.path only while it loads the code location;
    a step's lazy `from ml... import` must still resolve (it failed under `dagster job execute`)."""
    import subprocess
    import sys

    from settings.env import REPO_ROOT

    code = (
        "import sys; import definitions; "
        "sys.path[:] = [p for p in sys.path if p not in ('', sys.argv[1])]; "
        "import features.lookup, ml.train, ml.tuning, ml.packaging, ml.baseline; "
        "import serving.bento, serving.scoring; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO_ROOT)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_serving_imports_no_dagster():
    """serving/ runs in the bento, where Dagster is not installed."""
    import subprocess
    import sys

    from settings.env import REPO_ROOT

    code = (
        "import sys, os; os.environ['FRAUD_API_KEY'] = 'k'; "
        "import serving.service, serving.scoring, serving.champion, serving.bento; "
        "assert 'dagster' not in sys.modules, 'serving imported dagster'; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_champion_sensor_builds_the_bento():
    sensor = defs.resolve_sensor_def("champion_sensor")
    assert sensor.job_name == "bento_job"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
