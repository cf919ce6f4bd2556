"""Monitoring of the champion: input and score drift (`drift`), when drift raises an alarm
(`drift_policy`), performance on matured labels (`performance`) and reports as files
(`reports`); no Dagster imports."""
