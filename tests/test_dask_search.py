"""Search and batch scoring on a Dask cluster (a LocalCluster of two processes)."""

import numpy as np
import pytest
import torch

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
joblib = pytest.importorskip("joblib")
from sklearn.model_selection import GridSearchCV

from skmtl import MMoEClassifierRegressor
from tests.conftest import make_two_task_frame


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def _search():
    return GridSearchCV(
        MMoEClassifierRegressor(max_iter=2, batch_size=64, random_state=0),
        {"n_experts": [2, 4]},
        cv=2,
        n_jobs=-1,
    )


def test_grid_search_on_dask_scores_as_locally(client):
    X, Y = make_two_task_frame(300)
    local = _search().fit(X, Y)
    with joblib.parallel_config(backend="dask"):
        remote = _search().fit(X, Y)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_allclose(
            remote.cv_results_[key], local.cv_results_[key], atol=1e-6
        )
    assert remote.best_params_ == local.best_params_


def _fit_recording_threads():
    """Fit in a worker whose torch was left at 2 threads; return what fit used."""
    torch.set_num_threads(2)
    seen = []

    def total(task_losses):
        seen.append(torch.get_num_threads())
        return task_losses.sum()

    X, Y = make_two_task_frame(100)
    MMoEClassifierRegressor(max_iter=1, loss_weights=total).fit(X, Y)
    return sorted(set(seen)), torch.get_num_threads()


def test_fit_in_a_worker_keeps_to_its_thread_budget(client):
    used, after = client.submit(_fit_recording_threads, pure=False).result(timeout=120)
    assert used == [1]  # the worker's OMP_NUM_THREADS
    assert after == 2  # restored for the worker's other work


def test_predict_proba_of_a_dask_frame_scores_on_the_workers(client):
    X, Y = make_two_task_frame(400)
    est = MMoEClassifierRegressor(max_iter=2, random_state=0).fit(X, Y)
    probas = est.predict_proba(dd.from_pandas(X, npartitions=4))
    computed = client.compute(probas, sync=True)
    for remote, local in zip(computed, est.predict_proba(X)):
        np.testing.assert_allclose(remote, local, rtol=1e-6)
