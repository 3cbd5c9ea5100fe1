"""Same seed, same model: every estimator fitted twice gives bitwise-equal predictions.

PyTorch's CPU kernels may reduce in an order that depends on thread timing (the
backward of advanced indexing over repeated indices adds with atomics once a
tensor has 32768 elements and more than one thread runs), so each fit runs at
1 and at 2 threads, on batches large enough to cross that threshold.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from skmtl import (
    AITMEstimator,
    CrossStitchEstimator,
    DCNMultiTask,
    ESMMEstimator,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
    STAREstimator,
)

# Default layer sizes: the per-batch tensors must be as large as in real use for
# a thread race to show. 800 rows in batches of 128 give 7 steps an epoch.
_FIT = {"max_iter": 4, "batch_size": 128, "device": "cpu"}

ESTIMATORS = {
    "mmoe": lambda seed: MMoEClassifierRegressor(random_state=seed, **_FIT),
    "one_gate_moe": lambda seed: MMoEClassifierRegressor(
        gating="shared", random_state=seed, **_FIT
    ),
    "ple": lambda seed: PLEEstimator(random_state=seed, **_FIT),
    "cgc": lambda seed: PLEEstimator(n_levels=1, random_state=seed, **_FIT),
    "dcn_matrix": lambda seed: DCNMultiTask(random_state=seed, **_FIT),
    "dcn_vector": lambda seed: DCNMultiTask(
        cross_type="vector", structure="stacked", random_state=seed, **_FIT
    ),
    "shared_bottom": lambda seed: SharedBottomEstimator(random_state=seed, **_FIT),
    "cross_stitch": lambda seed: CrossStitchEstimator(random_state=seed, **_FIT),
    "star": lambda seed: STAREstimator(
        domain_column="device", random_state=seed, **_FIT
    ),
}

# Funnels take binary stages only: clicked, then bought among the clicked.
FUNNELS = {
    "esmm": lambda seed: ESMMEstimator(
        funnel=["clicked", "bought"], random_state=seed, **_FIT
    ),
    "aitm": lambda seed: AITMEstimator(
        funnel=["clicked", "bought"], random_state=seed, **_FIT
    ),
}


@pytest.fixture(scope="module")
def four_task_data():
    """Two binary, one regression and one multiclass task on mixed columns."""
    rng = np.random.RandomState(3)
    n = 800
    X = pd.DataFrame(
        {
            "shop": rng.choice(["s1", "s2", "s3", "s4", "s5"], n),
            "device": rng.choice(["ios", "android", "web"], n),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
        }
    )
    score = X.x1 + 2 * (X.shop == "s1")
    Y = pd.DataFrame(
        {
            "clicked": (score > 0.5).astype(int),
            "bought": (X.x2 + (X.device == "web") > 0).astype(int),
            "spend": 3 * X.x1 - 2 * X.x2 + rng.normal(0, 0.1, n),
            "segment": pd.cut(
                X.x2, [-np.inf, -0.5, 0.5, np.inf], labels=["lo", "mid", "hi"]
            ).astype(str),
        }
    )
    return X, Y


@pytest.fixture(params=[2, 1], ids=["2threads", "1thread"])
def num_threads(request):
    """Run the test at ``request.param`` torch threads, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _fit_predict(name, seed, data):
    X, Y = data
    if name in FUNNELS:
        Y = Y[["clicked", "bought"]].assign(bought=Y.bought * Y.clicked)
        est = FUNNELS[name](seed).fit(X, Y)
    else:
        est = ESTIMATORS[name](seed).fit(X, Y)
    probas = [p for p in est.predict_proba(X) if p is not None]
    return est.predict(X), np.column_stack(probas)


@pytest.mark.parametrize("name", sorted(ESTIMATORS) + sorted(FUNNELS))
def test_same_seed_gives_bitwise_identical_predictions(
    name, num_threads, four_task_data
):
    labels, probas = _fit_predict(name, 0, four_task_data)
    labels_again, probas_again = _fit_predict(name, 0, four_task_data)
    diff = np.abs(probas - probas_again).max()
    assert np.array_equal(probas, probas_again), f"{name}: max |diff| {diff:.3g}"
    assert np.array_equal(labels, labels_again)  # regression values included
    # The seed must matter, or the comparison above proves nothing.
    _, other_probas = _fit_predict(name, 1, four_task_data)
    assert not np.array_equal(probas, other_probas)
