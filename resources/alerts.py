"""Where people are told what happened: a Slack-compatible webhook."""

import dagster as dg

from monitoring.alerts import Alert, post


class AlertWebhookResource(dg.ConfigurableResource):
    """The webhook the alert sensors post to (FRAUD_ALERT_WEBHOOK_URL, a secret read at run
    time; alerts are off when it is unset) and the Dagster UI's address for the links in them
    (FRAUD_DAGSTER_URL)."""

    url: str = ""
    dagster_url: str = "http://localhost:3000"

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def run_link(self, run_id: str) -> str:
        return f"{self.dagster_url.rstrip('/')}/runs/{run_id}"

    def send(self, alert: Alert) -> None:
        post(self.url, alert)
