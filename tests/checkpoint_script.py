"""A fit that kills its own process (SIGKILL) at a chosen step (tests/test_checkpoint.py).

Usage: ``python tests/checkpoint_script.py DATA_DIR PARAMS_JSON EPOCH STEP THREADS
STREAMED [NAME]``, also under ``torchrun``. Reads ``X.parquet`` and
``Y.parquet`` from DATA_DIR, fits an MMoEClassifierRegressor with the
parameters of PARAMS_JSON (on a Dask frame of 3 partitions when STREAMED is 1)
and sends itself SIGKILL before step STEP of epoch EPOCH: no cleanup runs, as
when a machine is pre-empted. Given NAME, every rank first saves the
probabilities of X's first task to ``DATA_DIR/NAME.rank<r>.npy``: of that
fit when STEP is 0 (it runs to its end), else of a fit without checkpoints
run before the killed one.
"""

import json
import os
import signal
import sys

import numpy as np
import pandas as pd
import torch

from skmtl import MMoEClassifierRegressor
from skmtl._training import Trainer


def kill_at(epoch, step):
    """Make the training loop kill this process before ``step`` of ``epoch``."""
    train_epoch, train_step = Trainer.train_epoch, Trainer.train_step
    position = {"epoch": 0, "step": 0}

    def counting_epoch(self, source, number):
        position.update(epoch=number, step=0)
        return train_epoch(self, source, number)

    def killing_step(self, batch):
        position["step"] += 1
        if (position["epoch"], position["step"]) == (epoch, step):
            os.kill(os.getpid(), signal.SIGKILL)
        return train_step(self, batch)

    Trainer.train_epoch, Trainer.train_step = counting_epoch, killing_step


def frames(folder, streamed):
    """The training frames: pandas, or Dask with 3 partitions."""
    X = pd.read_parquet(os.path.join(folder, "X.parquet"))
    Y = pd.read_parquet(os.path.join(folder, "Y.parquet"))
    if not streamed:
        return X, Y
    import dask.dataframe as dd

    return (dd.from_pandas(f, npartitions=3, sort=False) for f in (X, Y))


def fit_and_save(folder, params, streamed, name):
    """Fit; save the first task's probabilities of X as ``name``."""
    X, Y = frames(folder, streamed)
    est = MMoEClassifierRegressor(**params).fit(X, Y)
    X, _ = frames(folder, streamed=False)
    rank = os.environ.get("RANK", "0")
    np.save(os.path.join(folder, f"{name}.rank{rank}.npy"), est.predict_proba(X)[0])


def main(folder, params, epoch, step, threads, streamed, name=None):
    torch.set_num_threads(threads)
    if name is not None:
        clean = params if step == 0 else {**params, "checkpoint_dir": None}
        fit_and_save(folder, clean, streamed, name)
    if step:
        kill_at(epoch, step)
        X, Y = frames(folder, streamed)
        MMoEClassifierRegressor(**params).fit(X, Y)


if __name__ == "__main__":
    folder, params, epoch, step, threads, streamed, *name = sys.argv[1:]
    main(
        folder,
        json.loads(params),
        int(epoch),
        int(step),
        int(threads),
        streamed == "1",
        *name,
    )
