"""deploy/monitoring checked with the real tools (Debian's promtool and amtool, installed when
missing): the Prometheus configuration and its alert rules, the rules' own unit tests, the
Alertmanager configuration, the Grafana dashboard's queries; every series they read is one the
serving processes export, and the manifests let Prometheus find those processes."""

import json
import re
import subprocess

import pytest
import yaml

from demo.services import ensure_prometheus
from serving.metrics import ServingMetrics
from settings.env import REPO_ROOT

pytestmark = pytest.mark.integration
MONITORING = REPO_ROOT / "deploy" / "monitoring"
K8S = REPO_ROOT / "deploy" / "k8s"


def _run(*command: str) -> str:
    done = subprocess.run(command, cwd=MONITORING, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    return ensure_prometheus()


def test_the_prometheus_configuration_and_its_rules_are_valid(tools):
    checked = _run(tools["promtool"], "check", "config", "prometheus.yml")
    assert "SUCCESS: 10 rules found" in checked


def test_each_alert_fires_on_what_should_fire_it_and_not_before(tools):
    assert "SUCCESS" in _run(tools["promtool"], "test", "rules", "alerts.test.yaml")


def test_the_alertmanager_configuration_is_valid(tools):
    checked = _run(tools["amtool"], "check-config", "alertmanager.yml")
    assert "1 receivers" in checked


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_dashboard_query_is_valid_promql(tools, tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, expr in enumerate(_dashboard_queries())
    ]}]}  # fmt: skip
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    checked = _run(tools["promtool"], "check", "rules", str(tmp_path / "queries.yaml"))
    assert f"SUCCESS: {len(_dashboard_queries())} rules found" in checked


def _exported() -> set[str]:
    """The names under which the serving processes' series reach Prometheus."""
    made: list[tuple[str, str]] = []

    def record(kind, name, *_, **__):
        made.append((kind, name))
        return None

    ServingMetrics(record)
    suffixes = {"Counter": ["_total"], "Gauge": [""], "Histogram": ["_bucket", "_sum", "_count"]}
    return {name + suffix for kind, name in made for suffix in suffixes[kind]}


def test_alerts_and_dashboard_read_only_series_that_serving_exports():
    alerts = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    queries = [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    queries += _dashboard_queries()
    read = {name for query in queries for name in re.findall(r"\bfraud_[a-z_]+", query)}
    assert read and read <= _exported(), sorted(read - _exported())
    # and every exported series is on the dashboard
    on_dashboard = {n for q in _dashboard_queries() for n in re.findall(r"\bfraud_[a-z_]+", q)}
    bases = {re.sub(r"_(bucket|sum|count)$", "", name) for name in _exported()}
    assert bases <= {re.sub(r"_bucket$", "", name) for name in on_dashboard}


def test_prometheus_finds_every_serving_pod_of_the_manifests():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    documents = [d for path in K8S.glob("*.yaml") for d in yaml.safe_load_all(path.read_text())]
    services = {d["metadata"]["name"]: d for d in documents if d and d["kind"] == "Service"}
    deployments = [d for d in documents if d and d["kind"] == "Deployment"]
    for job in config["scrape_configs"]:
        [sd] = job["dns_sd_configs"]
        [name] = sd["names"]
        service = services[name.split(".")[0]]
        assert service["spec"]["clusterIP"] == "None"  # headless: one address per pod
        selector = service["spec"]["selector"]
        [deployment] = [d for d in deployments if d["spec"]["selector"]["matchLabels"] == selector]
        pod = deployment["spec"]["template"]
        ports = {p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert sd["port"] in ports
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == sd["port"]
