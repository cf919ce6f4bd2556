"""Ray Tune over the training loop: two tiny trials end to end on CPU, and a resumed search."""

import pytest

from ml.tuning import tune_model
from tests.support.rows import synthetic_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_two_trials_run_end_to_end_and_a_finished_search_resumes_without_retraining(
    local_ray, tmp_path
):
    train_rows, valid_rows = synthetic_rows(1500), synthetic_rows(500, seed=1)
    kwargs = dict(storage=tmp_path, name="search", num_samples=2, max_epochs=2)
    result = tune_model(train_rows, valid_rows, **kwargs)
    assert len(result.trials) == 2 and not result.resumed
    assert all(t["error"] is None and 1 <= t["epochs"] <= 2 for t in result.trials)
    best = max(t["metrics"]["pr_auc"] for t in result.trials)
    assert result.best_metrics["pr_auc"] >= best - 1e-9
    scores = result.best_model.score(synthetic_rows(200, seed=2))
    assert scores.shape == (200,) and ((scores >= 0) & (scores <= 1)).all()

    again = tune_model(train_rows, valid_rows, **kwargs)
    assert again.resumed
    assert sorted(t["trial_id"] for t in again.trials) == sorted(
        t["trial_id"] for t in result.trials
    )
    assert again.best_params == result.best_params


SEARCH_IN_A_CHILD = """
import sys
import ray
from ml.tuning import tune_model
from tests.support.rows import synthetic_rows

ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
tune_model(synthetic_rows(40_000), synthetic_rows(2_000, seed=1),
           storage=__import__("pathlib").Path(sys.argv[1]), name="search", num_samples=3,
           max_epochs=4, early_stopping=False, max_concurrent=1)
"""


def _statuses(search) -> dict[str, str]:
    """Trial id -> status, from the newest experiment state Ray wrote."""
    import json

    states = sorted(search.glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        trials = json.loads(states[-1].read_text())["trial_data"]
    except (ValueError, KeyError):  # caught mid-write
        return {}
    return {(t := json.loads(raw[0]))["trial_id"]: t["status"] for raw in trials}


def _iterations(search, trial_id: str) -> list[int]:
    import json

    [folder] = search.glob(f"*{trial_id}*")
    lines = (folder / "result.json").read_text().splitlines()
    return [json.loads(line)["training_iteration"] for line in lines if line.strip()]


def test_a_killed_search_resumes_from_rays_experiment_state_without_redoing_finished_trials(
    local_ray, tmp_path
):
    import os
    import signal
    import subprocess
    import sys
    import time

    child = subprocess.Popen(
        [sys.executable, "-c", SEARCH_IN_A_CHILD, str(tmp_path)], start_new_session=True
    )
    search = tmp_path / "search"
    deadline = time.monotonic() + 240
    while "TERMINATED" not in _statuses(search).values():
        assert child.poll() is None, "the search ended before it could be interrupted"
        assert time.monotonic() < deadline, "no trial finished in 4 minutes"
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGKILL)  # the driver and its Ray workers, mid-search
    child.wait()
    at_kill = _statuses(search)
    finished = {t for t, status in at_kill.items() if status == "TERMINATED"}
    assert 1 <= len(finished) < 3

    result = tune_model(synthetic_rows(40_000), synthetic_rows(2_000, seed=1), storage=tmp_path,
                        name="search", num_samples=3, max_epochs=4, early_stopping=False,
                        max_concurrent=1)  # fmt: skip
    assert result.resumed
    assert len(result.trials) == 3
    assert [(t["error"], t["epochs"]) for t in result.trials] == [(None, 4)] * 3
    for trial_id in finished:  # not trained again
        assert _iterations(search, trial_id) == [1, 2, 3, 4]
