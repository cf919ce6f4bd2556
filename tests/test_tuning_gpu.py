"""The GPU path of the search, on a Ray cluster that declares a GPU this machine does not have:
Ray schedules each trial on a share of it, and the trial falls back to CPU when CUDA is absent.
(The development machines have no GPU: this proves the scheduling, not CUDA.)"""

import pytest

from ml.tuning import tune_model
from tests.support.rows import synthetic_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_with_a_declared_gpu():
    import ray

    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield int(ray.cluster_resources().get("GPU", 0))
    ray.shutdown()


def test_trials_take_a_gpu_share_when_the_cluster_has_gpus(ray_with_a_declared_gpu, tmp_path):
    import torch

    assert ray_with_a_declared_gpu == 1
    result = tune_model(
        synthetic_rows(1500), synthetic_rows(500, seed=1), storage=tmp_path, name="gpu",
        num_samples=2, max_epochs=1, gpus_per_trial=0.5,
    )  # fmt: skip
    assert [t["gpu_ids"] for t in result.trials] == ["0", "0"]  # two halves of GPU 0
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert [t["device"] for t in result.trials] == [expected, expected]
