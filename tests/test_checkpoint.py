"""Checkpoints: a fit killed mid-epoch resumes to the model of an uninterrupted fit."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from skmtl import MMoEClassifierRegressor, load
from skmtl._persistence import read_model_file
from skmtl._training import Trainer
from skmtl.exceptions import ModelFileError
from tests import checkpoint_script

ROOT = Path(__file__).resolve().parents[1]

# JSON values only: the child reads them from its command line.
_PARAMS = {
    "n_experts": 2,
    "expert_hidden_sizes": [8],
    "batch_size": 64,
    "dropout": 0.1,
    "device": "cpu",
    "random_state": 0,
    "max_iter": 5,
}


@pytest.fixture
def data_dir(tmp_path, two_task_data):
    """X and Y written as Parquet, for the child and this process alike."""
    X, Y, _, _ = two_task_data
    X.to_parquet(tmp_path / "X.parquet")
    Y.astype(float).assign(bought=lambda y: y.bought * 3.0 + 1.0).to_parquet(
        tmp_path / "Y.parquet"
    )
    return tmp_path


def _killed_fit(data_dir, params, epoch, step, streamed):
    """Run the child fit that SIGKILLs itself at (epoch, step); check it died so."""
    command = [
        sys.executable,
        str(ROOT / "tests" / "checkpoint_script.py"),
        str(data_dir),
        json.dumps(params),
        str(epoch),
        str(step),
        str(torch.get_num_threads()),
        "1" if streamed else "0",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def _epochs_run(monkeypatch):
    """Record the epochs the training loop runs in this process."""
    run, train_epoch = [], Trainer.train_epoch

    def recording(self, source, epoch):
        run.append(epoch)
        return train_epoch(self, source, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", recording)
    return run


def _without_durations(history):
    return [{k: v for k, v in record.items() if k != "duration"} for record in history]


@pytest.mark.parametrize(
    "streamed, extra",
    [(False, {"early_stopping": True, "n_iter_no_change": 2}), (True, {})],
    ids=["pandas-early-stopping", "dask"],
)
def test_a_fit_killed_in_epoch_3_resumes_to_the_uninterrupted_model(
    data_dir, monkeypatch, streamed, extra
):
    folder = data_dir / "checkpoints"
    params = {**_PARAMS, **extra, "checkpoint_dir": str(folder)}
    _killed_fit(data_dir, params, epoch=3, step=2, streamed=streamed)
    # Epoch 2's checkpoint, alone (checkpoint_keep=1), no temporary file left.
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-000002.safetensors"]

    X, Y = checkpoint_script.frames(data_dir, streamed)
    run = _epochs_run(monkeypatch)
    resumed = MMoEClassifierRegressor(**params).fit(X, Y)
    assert run == [3, 4, 5]
    monkeypatch.undo()
    clean = MMoEClassifierRegressor(**{**params, "checkpoint_dir": None}).fit(X, Y)
    assert resumed.n_iter_ == clean.n_iter_ == 5
    assert resumed.best_iteration_ == clean.best_iteration_
    assert _without_durations(resumed.history_) == _without_durations(clean.history_)
    X_test, _ = checkpoint_script.frames(data_dir, streamed=False)
    np.testing.assert_array_equal(resumed.predict(X_test), clean.predict(X_test))
    for a, b in zip(resumed.predict_proba(X_test), clean.predict_proba(X_test)):
        if a is not None:
            np.testing.assert_array_equal(a, b)


def _fit(X, Y, folder, **params):
    merged = {**_PARAMS, "checkpoint_dir": str(folder), **params}
    return MMoEClassifierRegressor(**merged).fit(X, Y)


def test_resuming_restores_the_optimizer_schedule_and_learnt_weights(
    two_task_data, tmp_path
):
    X, Y, X_test, _ = two_task_data
    extra = {
        "loss_weights": "uncertainty",
        "optimizer": "adamw",
        "lr_scheduler": "cosine",
    }
    _fit(X, Y, tmp_path, checkpoint_keep=5, **extra)
    for path in sorted(tmp_path.iterdir())[2:]:  # as if killed in epoch 3
        path.unlink()
    resumed = _fit(X, Y, tmp_path, **extra)
    clean = _fit(X, Y, None, checkpoint_dir=None, **extra)
    assert torch.equal(
        resumed.weighting_.log_variances_, clean.weighting_.log_variances_
    )
    np.testing.assert_array_equal(
        resumed.predict_proba(X_test)[0], clean.predict_proba(X_test)[0]
    )
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-000005.safetensors"]


def test_a_finished_fit_reruns_as_is_and_max_iter_may_grow(
    two_task_data, tmp_path, monkeypatch
):
    X, Y, X_test, _ = two_task_data
    first = _fit(X, Y, tmp_path, max_iter=2, checkpoint_every=2)
    run = _epochs_run(monkeypatch)
    again = _fit(X, Y, tmp_path, max_iter=2, checkpoint_every=2, verbose=0)
    assert run == [] and again.n_iter_ == 2
    np.testing.assert_array_equal(
        again.predict_proba(X_test)[0], first.predict_proba(X_test)[0]
    )
    longer = _fit(X, Y, tmp_path, max_iter=4, checkpoint_every=3)
    assert run == [3, 4]
    monkeypatch.undo()
    clean = _fit(X, Y, None, max_iter=4, checkpoint_dir=None)
    np.testing.assert_array_equal(
        longer.predict_proba(X_test)[0], clean.predict_proba(X_test)[0]
    )
    # Epoch 3 (every 3) and the last one were written; only the newest is kept.
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-000004.safetensors"]


def test_a_checkpoint_is_a_safe_model_file(two_task_data, tmp_path):
    X, Y, _, _ = two_task_data
    est = _fit(X, Y, None, max_iter=1, checkpoint_dir=tmp_path)  # a Path
    est.save(tmp_path / "model.safetensors")
    assert load(tmp_path / "model.safetensors").checkpoint_dir == str(tmp_path)
    path = tmp_path / "checkpoint-000001.safetensors"
    document, tensors = read_model_file(path)
    assert document["kind"] == "checkpoint" and document["epoch"] == 1
    assert {"optimizer", "scheduler", "monitor", "guard", "rng", "history"} <= set(
        document
    )
    assert any(name.startswith("optimizer.state.") for name in tensors)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # a flipped bit in the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        _fit(X, Y, tmp_path, max_iter=1)
    with pytest.raises(ModelFileError):
        load(path)


def test_a_checkpoint_of_other_parameters_or_data_is_refused_saying_what_differs(
    two_task_data, tmp_path
):
    X, Y, _, _ = two_task_data
    _fit(X, Y, tmp_path, max_iter=2)
    with pytest.raises(
        ValueError, match=r"parameter 'learning_rate_init' is 0\.01 here but 0\.001"
    ):
        _fit(X, Y, tmp_path, learning_rate_init=0.01)
    with pytest.raises(
        ValueError, match=r"number of rows \(899 here, 900 in the checkpoint\)"
    ):
        _fit(X.iloc[1:], Y.iloc[1:], tmp_path)
    flipped = Y.assign(clicked=1 - Y.clicked)
    with pytest.raises(ValueError, match=r"the data differ in their encoded rows"):
        _fit(X, flipped, tmp_path)
    with pytest.raises(ValueError, match="holds 2 epochs, more than max_iter=1"):
        _fit(X, Y, tmp_path, max_iter=1)
    # What does not change training may differ.
    assert (
        _fit(X, Y, tmp_path, verbose=0, checkpoint_keep=3, warm_start=True).n_iter_ == 5
    )


def test_a_checkpoint_of_other_dask_rows_is_refused(two_task_data, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    X, Y, _, _ = two_task_data

    def dask(*frames):
        return [dd.from_pandas(f, npartitions=3, sort=False) for f in frames]

    _fit(*dask(X, Y), tmp_path, max_iter=1)
    # The same classes and statistics, other labels: only the cells tell.
    swapped = Y.assign(clicked=Y.clicked.to_numpy()[::-1])
    with pytest.raises(ValueError, match=r"the data differ in their cells"):
        _fit(*dask(X, swapped), tmp_path, max_iter=1)


def _torchrun(data_dir, params, epoch, step, name=None):
    """Launch the script on 2 processes (gloo, loopback); return the exit status."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "tests" / "checkpoint_script.py"),
        str(data_dir),
        json.dumps(params),
        str(epoch),
        str(step),
        "1",
        "0",
        *([name] if name else []),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MASTER_ADDR": "127.0.0.1",
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    return done.returncode, done.stderr[-3000:]


def test_a_torchrun_fit_killed_in_epoch_3_resumes_to_the_uninterrupted_model(
    tmp_path, two_task_data
):
    pytest.importorskip("torch.distributed")
    X, Y, _, _ = two_task_data
    # 899 rows: the last global batch of 3 rows splits 1 + 2, so the processes
    # draw different amounts of dropout noise and keep different RNG states.
    X.iloc[:899].to_parquet(tmp_path / "X.parquet")
    Y.iloc[:899].to_parquet(tmp_path / "Y.parquet")
    params = {**_PARAMS, "checkpoint_dir": str(tmp_path / "checkpoints")}
    # A fit without checkpoints, then the one killed in epoch 3.
    status, stderr = _torchrun(tmp_path, params, 3, 2, "clean")
    assert status != 0 and (tmp_path / "clean.rank1.npy").is_file(), stderr
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [
        "checkpoint-000002.safetensors"
    ]
    status, stderr = _torchrun(tmp_path, params, 0, 0, "resumed")
    assert status == 0, stderr
    for rank in range(2):
        np.testing.assert_array_equal(
            np.load(tmp_path / f"resumed.rank{rank}.npy"),
            np.load(tmp_path / f"clean.rank{rank}.npy"),
        )


def test_a_fit_stopped_early_reruns_as_is_with_its_best_weights(
    two_task_data, tmp_path, monkeypatch
):
    X, Y, X_test, _ = two_task_data
    params = {
        "early_stopping": True,
        "n_iter_no_change": 1,
        "learning_rate_init": 0.05,
        "max_iter": 30,
        "checkpoint_every": 100,  # only the epoch that stops is written
    }
    first = _fit(X, Y, tmp_path, **params)
    assert first.n_iter_ < 30 and first.best_iteration_ < first.n_iter_
    assert [p.name for p in tmp_path.iterdir()] == [
        f"checkpoint-{first.n_iter_:06d}.safetensors"
    ]
    run = _epochs_run(monkeypatch)
    again = _fit(X, Y, tmp_path, **params)
    assert run == [] and again.best_iteration_ == first.best_iteration_
    np.testing.assert_array_equal(
        again.predict_proba(X_test)[1], first.predict_proba(X_test)[1]
    )
