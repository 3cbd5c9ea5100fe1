"""A fit that kills its own process (SIGKILL) at a chosen step (tests/test_checkpoint.py).

Usage: ``python tests/checkpoint_script.py DATA_DIR PARAMS_JSON EPOCH STEP THREADS
STREAMED``. Reads ``X.parquet`` and ``Y.parquet`` from DATA_DIR, fits an
MMoEClassifierRegressor with the parameters of PARAMS_JSON (on a Dask frame of
3 partitions when STREAMED is 1) and sends itself SIGKILL before step STEP of
epoch EPOCH: no cleanup runs, as when a machine is pre-empted.
"""

import json
import os
import signal
import sys

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


def main(folder, params, epoch, step, threads, streamed):
    torch.set_num_threads(threads)
    kill_at(epoch, step)
    X, Y = frames(folder, streamed)
    MMoEClassifierRegressor(**params).fit(X, Y)


if __name__ == "__main__":
    folder, params, epoch, step, threads, streamed = sys.argv[1:]
    main(folder, json.loads(params), int(epoch), int(step), int(threads), streamed == "1")
