"""The data-parallel fit (Ray Train, 2 workers with gloo on CPU): as good as one process's fit
of the same parameters, and a worker killed mid-fit costs nothing but the epoch it was in."""

import os
import signal
import threading
import time
from dataclasses import replace

import numpy as np
import psutil
import pytest

from ml.data_parallel import fit_data_parallel
from ml.metrics import fraud_metrics
from ml.train import TrainParams, train
from resources.ray import RayResource
from tests.support.rows import synthetic_rows

pytestmark = pytest.mark.integration
PARAMS = TrainParams(epochs=6, batch_size=256)


def _noisy_rows(n: int, seed: int):
    """Synthetic rows whose labels are a third wrong: a fit that is not trivially perfect."""
    rows = synthetic_rows(n, seed=seed)
    flip = np.random.default_rng(seed).random(n) < np.where(rows["label"] == 1, 0.3, 0.01)
    return rows.assign(label=np.where(flip, 1 - rows["label"], rows["label"]))


@pytest.fixture(scope="module")
def data():
    return _noisy_rows(20_000, 1), _noisy_rows(5_000, 2), _noisy_rows(20_000, 3)


def _pr_auc(model, test) -> float:
    return fraud_metrics(test["label"], model.score(test))["pr_auc"]


def test_two_workers_fit_as_well_as_one_process(data, tmp_path):
    train_rows, valid_rows, test = data
    one = [_pr_auc(train(train_rows, valid_rows, replace(PARAMS, seed=s)), test) for s in (0, 1)]
    with RayResource().session():
        fit = fit_data_parallel(train_rows, valid_rows, PARAMS, storage=tmp_path, name="fit")
    two = _pr_auc(fit.model, test)
    base_rate = test["label"].mean()
    assert min(one) > 3 * base_rate  # the fits learn something
    assert abs(two - np.mean(one)) <= max(0.02, 2 * abs(one[0] - one[1])), (two, one)
    assert [h["epoch"] for h in fit.history] == list(range(PARAMS.epochs))
    assert {h["workers"] for h in fit.history} == {2}
    assert fit.resumed_from == []


def _train_workers() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any("RayTrainWorker" in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.faults
def test_a_worker_killed_mid_fit_resumes_from_the_last_checkpoint(data, tmp_path):
    train_rows, valid_rows, _ = data
    params = TrainParams(epochs=8, batch_size=256)
    outcome = {}

    def fit() -> None:
        try:
            outcome["fit"] = fit_data_parallel(
                train_rows, valid_rows, params, storage=tmp_path, name="killed"
            )
        except Exception as error:  # the test asserts on it
            outcome["error"] = error

    with RayResource().session():
        runner = threading.Thread(target=fit)
        runner.start()
        # a checkpoint the controller has registered (it records them in this file), so that
        # the group has something to go on from
        deadline = time.monotonic() + 300
        while not (tmp_path / "killed" / "checkpoint_manager_snapshot.json").exists():
            assert runner.is_alive() and time.monotonic() < deadline, "no checkpoint registered"
            time.sleep(0.1)
        victims = _train_workers()
        assert len(victims) == 2
        os.kill(victims[-1].pid, signal.SIGKILL)
        runner.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["fit"]
    assert len(result.resumed_from) == 1 and result.resumed_from[0] >= 1
    assert [h["epoch"] for h in result.history] == list(range(params.epochs))
