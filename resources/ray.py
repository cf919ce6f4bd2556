"""Ray per environment: a cluster at RAY_ADDRESS (with GPUs if it has them), else local Ray."""

import contextlib

import dagster as dg


class RayResource(dg.ConfigurableResource):
    """`address`: a Ray cluster (`ray://head:10001`, or `auto`); empty starts Ray in-process
    with `local_cpus` CPUs for the run's duration."""

    address: str = ""
    local_cpus: int = 2

    @contextlib.contextmanager
    def session(self):
        """Ray connected for the block; yields the cluster's GPU count."""
        import ray

        if self.address:
            import ml

            # The trials run ml/ code on the cluster's workers: ship it with the job.
            runtime_env = {"py_modules": [ml]}
            ray.init(address=self.address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(num_cpus=self.local_cpus, include_dashboard=False, log_to_driver=False)
        try:
            yield int(ray.cluster_resources().get("GPU", 0))
        finally:
            ray.shutdown()
