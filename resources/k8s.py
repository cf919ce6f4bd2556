"""Pod resources of the heavy work on Kubernetes, as `dagster-k8s/config` tags: on a job, the
K8sRunLauncher sizes the run's pod by them; on an asset, the k8s_job_executor sizes its step's pod
(every other launcher and executor ignores them)."""


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
# The silver step alone: the Spark client holds a partition range's bronze rows as Arrow.
SPARK_STEP_POD = pod_resources("1", "4Gi", "6Gi")
# The Ray driver: the training set in memory; the trials run on the RayCluster's GPU workers.
TRAINING_POD = pod_resources("2", "8Gi", "12Gi")
