"""Fits run by every rank of ``torchrun --nproc_per_node=2`` (tests/test_distributed.py).

Each scenario is a user script's ``est.fit(X, y)``, unchanged: the estimator
finds the launch in the environment. Every rank pickles its fitted estimator
(or the error it raised) to ``<out>/<scenario>.rank<r>.pkl``; the test
compares the ranks with each other and with one-process fits.

Usage: torchrun --standalone --nproc_per_node=2 tests/ddp_script.py OUT_DIR
"""

import itertools
import os
import pickle
import sys

import numpy as np
import pandas as pd
import torch

import skmtl
from tests.conftest import make_two_task_frame

BATCH = 16  # per process: the one-process fits use 32


def data(n_rows, seed=0):
    """Two binary tasks, one with NaN labels, and sample weights."""
    X, Y = make_two_task_frame(n_rows, random_state=seed)
    Y = Y.astype(float)
    Y.loc[Y.index % 4 == 0, "bought"] = np.nan
    weights = np.random.RandomState(seed).uniform(0.2, 2.0, n_rows)
    return X, Y, weights


class AuxiliaryMMoE(skmtl.nn.MMoE):
    """An MMoE with a parameter that only an auxiliary loss reaches."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.aux_scale = torch.nn.Parameter(torch.ones(()))

    def auxiliary_loss(self, outputs):
        return self.aux_scale * outputs.square().mean(dim=1) * 0.01


class AuxiliaryEstimator(skmtl.MMoEClassifierRegressor):
    """MMoEClassifierRegressor with :class:`AuxiliaryMMoE`."""

    _network_class = AuxiliaryMMoE


def funnel(estimator, n_rows=301):
    """A two-stage funnel: bought only among the clicked, NaN-masked there."""
    X, Y, weights = data(n_rows)
    Y = Y.assign(bought=Y.bought.where(Y.clicked == 1, 0.0))
    return estimator.fit(X, Y, sample_weight=weights)


def common(**params):
    return {"batch_size": BATCH, "max_iter": 3, "random_state": 0, **params}


def in_memory(estimator, n_rows=301, **fit_kw):
    X, Y, weights = data(n_rows)
    return estimator.fit(X, Y, sample_weight=weights, **fit_kw)


def streamed(estimator):
    import dask
    import dask.dataframe as dd

    X, Y, weights = data(300)
    cuts = [0, 10, 130, 130, 170, 300]  # uneven, one empty

    def split(frame):
        pieces = [dask.delayed(frame.iloc[a:b]) for a, b in itertools.pairwise(cuts)]
        return dd.from_delayed(pieces, meta=frame.iloc[:0])

    with dask.config.set(scheduler="synchronous"):
        return estimator.fit(
            split(X), split(Y), sample_weight=split(pd.Series(weights, name="w"))
        )


SCENARIOS = {
    "mmoe": lambda: in_memory(skmtl.MMoEClassifierRegressor(**common())),
    "uncertainty": lambda: in_memory(
        skmtl.PLEEstimator(
            **common(loss_weights="uncertainty", class_weight="balanced")
        )
    ),
    "gradnorm": lambda: in_memory(
        skmtl.DCNMultiTask(**common(loss_weights="gradnorm"))
    ),
    "auxiliary": lambda: in_memory(AuxiliaryEstimator(**common(max_grad_norm=1.0))),
    "shared_bottom": lambda: in_memory(skmtl.SharedBottomEstimator(**common())),
    # 289 = 9 * 32 + 1: the last row joins the batch before it.
    "odd_rows": lambda: in_memory(skmtl.MMoEClassifierRegressor(**common()), 289),
    "early_stopping": lambda: in_memory(
        skmtl.MMoEClassifierRegressor(
            **common(
                max_iter=20,
                early_stopping=True,
                n_iter_no_change=2,
                learning_rate_init=0.05,
            )
        )
    ),
    "streamed": lambda: streamed(skmtl.MMoEClassifierRegressor(**common())),
    # Heads that reach the loss only through other heads (ESMM's product,
    # AITM's transfer and calibrator) or through one domain's weights (STAR).
    "esmm": lambda: funnel(skmtl.ESMMEstimator(**common())),
    "aitm": lambda: funnel(skmtl.AITMEstimator(**common())),
    "star": lambda: in_memory(skmtl.STAREstimator(**common(domain_column="city"))),
    "cross_stitch": lambda: in_memory(skmtl.CrossStitchEstimator(**common())),
}


def main(out_dir):
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    for name, run in SCENARIOS.items():
        try:
            result = run()
        except Exception as exc:  # noqa: BLE001  (reported by the test)
            result = exc
        with open(os.path.join(out_dir, f"{name}.rank{rank}.pkl"), "wb") as file:
            pickle.dump(result, file)


if __name__ == "__main__":
    # Through the module, so that what is pickled names tests.ddp_script.
    from tests import ddp_script

    ddp_script.main(sys.argv[1])
