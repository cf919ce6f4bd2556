"""Sensors: landing files, drift -> retrain, the champion's bento, a canary's rollout, the
automation conditions of the monitoring reports, and alerts to the team's webhook."""

import dagster as dg

from assets import keys
from sensors.alerts import event_alerts, run_failure_alerts
from sensors.canary import canary_sensor
from sensors.champion import champion_sensor
from sensors.drift import drift_retrain_sensor
from sensors.landing import landing_sensor

# Evaluates the monitoring assets' daily conditions (Dagster's default automation sensor, which
# would cover every asset, stays off: the other layers run by schedule and sensor).
monitoring_automation = dg.AutomationConditionSensorDefinition(
    "monitoring_automation",
    target=dg.AssetSelection.groups("monitoring") - dg.AssetSelection.assets(keys.PREDICTION_LOG),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Materializes yesterday's drift report and performance at 03:00 UTC.",
)

sensors = [
    landing_sensor,
    champion_sensor,
    drift_retrain_sensor,
    monitoring_automation,
    canary_sensor,
    run_failure_alerts,
    event_alerts,
]
