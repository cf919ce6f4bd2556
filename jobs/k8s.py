"""Pod resources of the heavy runs on Kubernetes: `dagster-k8s/config` run tags, which the
K8sRunLauncher reads (and every other launcher ignores)."""


def pod_resources(cpu: str, memory: str, memory_limit: str) -> dict[str, dict]:
    return {
        "dagster-k8s/config": {
            "container_config": {
                "resources": {
                    "requests": {"cpu": cpu, "memory": memory},
                    "limits": {"memory": memory_limit},
                }
            }
        }
    }


# A Spark Connect client and dbt-duckdb's warehouse in one pod.
LAKEHOUSE_POD = pod_resources("2", "6Gi", "8Gi")
# The Ray driver: the training set in memory; the trials run on the RayCluster's GPU workers.
TRAINING_POD = pod_resources("2", "8Gi", "12Gi")
