"""Ray Tune over the training loop: two tiny trials end to end on CPU, and a resumed search."""

import pytest

from ml.tuning import tune_model
from tests.test_model import _rows


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_two_trials_run_end_to_end_and_a_finished_search_resumes_without_retraining(
    local_ray, tmp_path
):
    train_rows, valid_rows = _rows(1500), _rows(500, seed=1)
    kwargs = dict(storage=tmp_path, name="search", num_samples=2, max_epochs=2)
    result = tune_model(train_rows, valid_rows, **kwargs)
    assert len(result.trials) == 2 and not result.resumed
    assert all(t["error"] is None and 1 <= t["epochs"] <= 2 for t in result.trials)
    best = max(t["metrics"]["pr_auc"] for t in result.trials)
    assert result.best_metrics["pr_auc"] >= best - 1e-9
    scores = result.best_model.score(_rows(200, seed=2))
    assert scores.shape == (200,) and ((scores >= 0) & (scores <= 1)).all()

    again = tune_model(train_rows, valid_rows, **kwargs)
    assert again.resumed
    assert sorted(t["trial_id"] for t in again.trials) == sorted(
        t["trial_id"] for t in result.trials
    )
    assert again.best_params == result.best_params
