"""deploy/ checked without a cluster: every manifest against the Kubernetes schemas (offline, the
schemas kubernetes-validate ships), the KubeRay cluster's shape, the Helm values' settings, and
the Dockerfiles' commands pointing at code that exists."""

import importlib.util
import re
from pathlib import Path

import dagster as dg
import kubernetes_validate
import pytest
import yaml

from settings.env import REPO_ROOT

pytestmark = pytest.mark.unit
DEPLOY = REPO_ROOT / "deploy"
KUBERNETES_VERSION = "1.33"
CUSTOM_KINDS = {("ray.io/v1", "RayCluster")}


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


MANIFESTS = [
    (path.name, index, doc)
    for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
    for index, doc in enumerate(_documents(path))
]


# Custom resources have no schema here: the RayCluster's shape is checked in its own test.
BUILT_IN = [m for m in MANIFESTS if (m[2]["apiVersion"], m[2]["kind"]) not in CUSTOM_KINDS]


@pytest.mark.parametrize(
    "doc", [m[2] for m in BUILT_IN], ids=[f"{m[0]}#{m[1]}:{m[2]['kind']}" for m in BUILT_IN]
)
def test_each_manifest_is_valid_kubernetes(doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert doc["metadata"]["namespace"] == "fraud"


def test_every_manifest_is_checked_and_custom_kinds_are_only_the_ray_cluster():
    kinds = {(d["apiVersion"], d["kind"]) for _, _, d in MANIFESTS}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "StatefulSet", "Ingress"} <= {
        kind for _, kind in kinds
    }
    assert kinds & CUSTOM_KINDS == CUSTOM_KINDS


def test_the_ray_cluster_has_a_gpu_worker_group_requesting_gpus():
    [ray] = [d for _, _, d in MANIFESTS if d["kind"] == "RayCluster"]
    groups = {g["groupName"]: g for g in ray["spec"]["workerGroupSpecs"]}
    [gpu_container] = groups["gpu"]["template"]["spec"]["containers"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert groups["gpu"]["minReplicas"] == 0 < groups["gpu"]["maxReplicas"]
    # The head's client port is what RAY_ADDRESS names.
    [config] = [d for _, _, d in MANIFESTS if d["kind"] == "ConfigMap"]
    head = ray["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"containerPort": 10001, "name": "client"} in head["ports"]
    assert config["data"]["RAY_ADDRESS"].startswith(f"ray://{ray['metadata']['name']}-head-svc.")


def test_the_scoring_service_scales_and_probes_its_readiness():
    by_kind = {d["kind"]: d for name, _, d in MANIFESTS if name == "scoring.yaml"}
    target = by_kind["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert target["name"] == by_kind["Deployment"]["metadata"]["name"]
    [container] = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_webserver_people_reach_is_the_read_only_one_behind_the_proxy():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["dagsterWebserver"]["enableReadOnly"] is True
    [ingress] = [d for _, _, d in MANIFESTS if d["kind"] == "Ingress"]
    backends = {
        p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends == {"webserver-auth-proxy"}
    [proxy] = [d for _, _, d in MANIFESTS if d["metadata"]["name"] == "webserver-auth-proxy"
               and d["kind"] == "Deployment"]  # fmt: skip
    args = proxy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert any("webserver-read-only" in a for a in args if a.startswith("--upstream="))


def test_the_helm_values_run_each_run_in_a_pod_on_external_postgres():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    [code] = values["dagster-user-deployments"]["deployments"]
    assert code["codeServerArgs"] == ["-m", "definitions"]
    env = {e["name"]: e["value"] for e in code["env"]}
    assert env["FRAUD_ENV"] == "prod"


SECRET_KEY = re.compile(r"(password|api_key|access_key|client_secret|cookie_secret)$", re.I)


def _literal_secrets(node, found: list) -> list:
    """Keys (or env entries) named like a secret that carry a literal value."""
    if isinstance(node, dict):
        if "value" in node and SECRET_KEY.search(str(node.get("name", ""))):
            found.append(node["name"])
        for key, value in node.items():
            if SECRET_KEY.search(str(key)) and isinstance(value, str | int) and value != "":
                found.append(key)
            _literal_secrets(value, found)
    elif isinstance(node, list):
        for item in node:
            _literal_secrets(item, found)
    return found


def test_no_secret_value_is_written_in_deploy():
    """Secrets live in Secret manifests with placeholders only; elsewhere they are referenced."""
    for path in DEPLOY.rglob("*.y*ml"):
        for doc in _documents(path):
            if doc.get("kind") == "Secret":
                assert all("CHANGE-ME" in v for v in doc["stringData"].values()), path
            else:
                assert _literal_secrets(doc, []) == [], path


def test_the_images_run_modules_that_exist():
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    targets = re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.MULTILINE)
    assert {"code-location", "scoring", "stream-worker", "ray-worker"} <= set(targets)
    modules = set(re.findall(r'"-m", "([\w.]+)"', dockerfile))
    assert modules >= {"serving.bento", "serving.stream", "definitions"}
    for path in (DEPLOY / "k8s").glob("*.yaml"):  # commands that override an image's
        modules |= set(re.findall(r'"-m", "([\w.]+)"', path.read_text()))
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module
    assert "ENV FRAUD_API_KEY" not in dockerfile and "ARG FRAUD_API_KEY" not in dockerfile


def test_the_validation_refuses_a_misspelt_field():
    deployment = next(d for _, _, d in BUILT_IN if d["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_heavy_runs_and_steps_ask_kubernetes_for_their_pods():
    import json

    from definitions import defs

    def requests(tags) -> dict:
        config = tags["dagster-k8s/config"]
        config = json.loads(config) if isinstance(config, str) else config
        return config["container_config"]["resources"]["requests"]

    for job in ("daily_job", "training_job"):  # the run pod (K8sRunLauncher)
        assert float(requests(defs.resolve_job_def(job).tags)["cpu"]) >= 2, job
    graph = defs.resolve_asset_graph()
    for key in (["silver", "transactions"], ["training", "tuned_model"]):  # the step pod
        node = graph.get(dg.AssetKey(key))
        assert requests(node.assets_def.op.tags)["memory"].endswith("Gi"), key
