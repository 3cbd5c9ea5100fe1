"""Several processes: a torchrun fit equals a one-process fit of the summed batch.

One ``torchrun --standalone --nproc_per_node=2`` run (gloo, loopback) fits
every scenario of ``tests/ddp_script.py``; the tests compare its two ranks with
each other and with fits in this process whose ``batch_size`` is the sum of the
ranks'.
"""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import skmtl
from skmtl._distributed import SingleProcess, connect
from tests import ddp_script

dist = pytest.importorskip("torch.distributed")
if not dist.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]


def _run(command, env=None, timeout=120):
    """Run ``command`` from the repository root; return its stripped stdout."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run the torchrun script once; return scenario -> [rank 0, rank 1] results."""
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MASTER_ADDR": "127.0.0.1",
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "tests/ddp_script.py",
        str(out),
    ]
    _run(command, env=env, timeout=240)
    results = {}
    for name in ddp_script.SCENARIOS:
        results[name] = []
        for rank in range(2):
            with open(out / f"{name}.rank{rank}.pkl", "rb") as file:
                result = pickle.load(file)
            if isinstance(result, Exception):
                pytest.fail(f"{name} failed on rank {rank}: {result!r}")
            results[name].append(result)
    return results


def _parameters(estimator):
    return [p.detach() for p in estimator.module_.parameters()]


def _assert_same(a, b, atol, parameters=True):
    if parameters:
        for pa, pb in zip(_parameters(a), _parameters(b)):
            torch.testing.assert_close(pa, pb, atol=atol, rtol=0)
    X, _, _ = ddp_script.data(200, seed=1)
    for qa, qb in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_allclose(qa, qb, atol=atol)


# Each scenario fitted here, alone, on the sum of the ranks' batches.
ONE_PROCESS = {
    "mmoe": lambda: ddp_script.in_memory(skmtl.MMoEClassifierRegressor(**_alone())),
    "uncertainty": lambda: ddp_script.in_memory(
        skmtl.PLEEstimator(
            **_alone(loss_weights="uncertainty", class_weight="balanced")
        )
    ),
    "gradnorm": lambda: ddp_script.in_memory(
        skmtl.DCNMultiTask(**_alone(loss_weights="gradnorm"))
    ),
    "auxiliary": lambda: ddp_script.in_memory(
        ddp_script.AuxiliaryEstimator(**_alone(max_grad_norm=1.0))
    ),
    "shared_bottom": lambda: ddp_script.in_memory(
        skmtl.SharedBottomEstimator(**_alone())
    ),
    "esmm": lambda: ddp_script.funnel(skmtl.ESMMEstimator(**_alone())),
    "aitm": lambda: ddp_script.funnel(skmtl.AITMEstimator(**_alone())),
    "cross_stitch": lambda: ddp_script.in_memory(
        skmtl.CrossStitchEstimator(**_alone())
    ),
    "early_stopping": lambda: ddp_script.in_memory(
        skmtl.MMoEClassifierRegressor(
            **_alone(
                max_iter=20,
                early_stopping=True,
                n_iter_no_change=2,
                learning_rate_init=0.05,
            )
        )
    ),
}


def _alone(**params):
    return {
        **ddp_script.common(**params),
        "batch_size": 2 * ddp_script.BATCH,
        "distributed": False,
    }


@pytest.mark.parametrize("name", sorted(ONE_PROCESS))
def test_two_processes_equal_one_process_with_the_summed_batch(ranks, name):
    first, second = ranks[name]
    _assert_same(first, second, atol=1e-6)
    # Summing a batch in two halves rounds differently; Adam divides a weight's
    # near-zero gradient by its near-zero scale, so after many large steps
    # (early stopping's learning rate) single weights drift by ~1e-4 while
    # the predictions stay equal.
    _assert_same(
        first, ONE_PROCESS[name](), atol=1e-5, parameters=name != "early_stopping"
    )


def test_star_ranks_agree_with_per_process_normalisation(ranks):
    # Partitioned normalisation uses each process's batch moments, as
    # BatchNorm does under DDP: the ranks agree (running moments are averaged
    # over processes after each epoch), but not with one process on the
    # summed batch.
    first, second = ranks["star"]
    assert first.n_iter_ == second.n_iter_ == 3
    _assert_same(first, second, atol=1e-6)


def test_early_stopping_stops_every_rank_at_the_same_epoch(ranks):
    first, second = ranks["early_stopping"]
    alone = ONE_PROCESS["early_stopping"]()
    assert first.n_iter_ == second.n_iter_ == alone.n_iter_ < 20
    assert first.best_iteration_ == second.best_iteration_ == alone.best_iteration_


def test_uneven_rows_and_partitions_finish_with_the_same_model(ranks):
    for name in ("odd_rows", "streamed"):
        first, second = ranks[name]
        assert first.n_iter_ == second.n_iter_ == 3
        _assert_same(first, second, atol=1e-6)


def test_streamed_two_processes_equal_one_process(ranks):
    alone = ddp_script.streamed(skmtl.MMoEClassifierRegressor(**_alone()))
    _assert_same(ranks["streamed"][0], alone, atol=1e-5)


def test_fitted_ranks_pickle_without_a_process_group(ranks):
    # They were pickled by the ranks and unpickled here, where no group exists.
    estimator = ranks["gradnorm"][1]
    assert not dist.is_initialized()
    assert "_comm" not in vars(estimator.weighting_)
    again = pickle.loads(pickle.dumps(estimator))
    X, _, _ = ddp_script.data(50, seed=2)
    np.testing.assert_array_equal(again.predict(X), estimator.predict(X))


# -- choosing a communicator ---------------------------------------------------


@pytest.fixture
def no_launch(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_one_process_without_a_launch(no_launch):
    comm, device = connect("auto", "cpu")
    assert isinstance(comm, SingleProcess) and device == torch.device("cpu")
    with pytest.raises(RuntimeError, match="distributed=True but this process"):
        connect(True, "cpu")


def test_distributed_false_ignores_the_launch(no_launch):
    no_launch.setenv("RANK", "0")
    no_launch.setenv("WORLD_SIZE", "2")
    comm, _ = connect(False, "cpu")
    assert isinstance(comm, SingleProcess)


def test_a_process_group_skmtl_cannot_use_is_an_error(no_launch):
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert isinstance(connect("auto", "cpu")[0], SingleProcess)
        no_launch.setenv("WORLD_SIZE", "2")
        with pytest.raises(RuntimeError, match="has 1 processes but WORLD_SIZE is 2"):
            connect("auto", "cpu")
    finally:
        dist.destroy_process_group()


def test_skmtl_works_without_dask():
    # Dask is an optional extra: block its import and fit in a fresh process.
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
        "from skmtl import MMoEClassifierRegressor\n"
        "from tests.conftest import make_two_task_frame\n"
        "X, Y = make_two_task_frame(100)\n"
        "est = MMoEClassifierRegressor(max_iter=1).fit(X, Y)\n"
        "print(est.predict(X).shape)\n"
    )
    assert _run([sys.executable, "-c", code], timeout=120) == "(100, 2)"
