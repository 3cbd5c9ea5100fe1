"""Task-weighting strategies change training the way they claim."""

import numpy as np
import pandas as pd
import pytest
import torch

from skmtl import MMoEClassifierRegressor, SharedBottomEstimator
from skmtl.weighting import DynamicWeights, GradNorm, TaskWeighting, UncertaintyWeights

_FAST = {"batch_size": 64, "device": "cpu", "random_state": 0}


def _tower(est, task):
    """Every tower parameter slice that belongs to one task."""
    towers = est.module_.towers
    return [towers.head.weight[task], *(layer.weight[task] for layer in towers.hidden.layers)]


def test_zero_weighted_task_tower_gets_no_gradient(two_task_data):
    X, Y, _, _ = two_task_data
    est = SharedBottomEstimator(loss_weights={"bought": 0.0}, max_iter=1, **_FAST)
    before = [p.detach().clone() for p in _tower(est.fit(X, Y), 1)]
    after = _tower(est.set_params(max_iter=4).fit(X, Y), 1)
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # The weighted task's tower did move.
    moved = _tower(SharedBottomEstimator(max_iter=1, **_FAST).fit(X, Y), 0)[0]
    assert not torch.equal(_tower(est, 0)[0], moved)


def test_zero_weighted_task_labels_cannot_change_the_model(two_task_data):
    X, Y, X_test, _ = two_task_data
    est = MMoEClassifierRegressor(loss_weights=[1.0, 0.0], n_experts=2, max_iter=2, **_FAST)
    a = est.fit(X, Y).predict_proba(X_test)
    b = est.fit(X, Y.assign(bought=1 - Y.bought)).predict_proba(X_test)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def _noisy_and_clean_regression(n=1500, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    Y = pd.DataFrame(
        {
            "clean": X.a + 0.05 * rng.normal(size=n),
            "noisy": X.b + 2.0 * rng.normal(size=n),
        }
    )
    return X, Y


def test_uncertainty_weights_move_toward_the_noisier_task():
    X, Y = _noisy_and_clean_regression()
    est = SharedBottomEstimator(
        loss_weights="uncertainty", max_iter=15, learning_rate_init=0.01, **_FAST
    ).fit(X, Y)
    weights = est.history_[-1]["task_weights"]
    assert weights["clean"] > 3 * weights["noisy"]
    # exp(-s) tracks 1 / loss: the noisy task's standardised loss is about 0.8.
    assert weights["noisy"] == pytest.approx(1 / est.history_[-1]["train_loss_per_task"]["noisy"], rel=0.35)


def test_gradnorm_balances_gradient_norms():
    rng = np.random.RandomState(0)
    n = 1500
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    # A regression task whose gradient dwarfs a nearly solved binary task's.
    Y = pd.DataFrame({"easy": (X.a > 0).astype(int), "hard": 3 * X.b + rng.normal(size=n)})

    def spread(weighting):
        est = SharedBottomEstimator(loss_weights=weighting, max_iter=6, **_FAST).fit(X, Y)
        norms = est.weighting_.grad_norms_
        return float((norms.max() - norms.min()) / norms.mean()), est

    fixed, _ = spread(GradNorm(alpha=0.0, learning_rate=0.0))  # measures, never adapts
    balanced, est = spread(GradNorm(alpha=0.0))
    assert fixed > 0.5
    assert balanced < 0.2
    weights = est.history_[-1]["task_weights"]
    assert sum(weights.values()) == pytest.approx(2.0)
    assert weights["easy"] > weights["hard"]


def test_dynamic_weights_follow_the_ple_schedule(two_task_data):
    X, Y, _, _ = two_task_data
    schedule = DynamicWeights(initial=[1.0, 2.0], decay=[1.0, 0.5])
    est = SharedBottomEstimator(loss_weights=schedule, max_iter=3, **_FAST).fit(X, Y)
    used = [h["task_weights"]["bought"] for h in est.history_]
    assert used == pytest.approx([2.0, 1.0, 0.5])
    record = est.history_[1]
    expected = record["train_loss_per_task"]["clicked"] + 1.0 * record["train_loss_per_task"]["bought"]
    assert record["train_loss"] == pytest.approx(expected)


def test_custom_strategies_function_and_object(two_task_data):
    X, Y, X_test, _ = two_task_data

    class OnlyFirst:
        def combine(self, task_losses):
            return task_losses[0]

    for strategy in (lambda losses: losses[0], OnlyFirst()):
        est = SharedBottomEstimator(loss_weights=strategy, max_iter=2, **_FAST)
        a = est.fit(X, Y).predict_proba(X_test)[0]
        b = est.fit(X, Y.assign(bought=1 - Y.bought)).predict_proba(X_test)[0]
        np.testing.assert_array_equal(a, b)


def test_user_strategy_object_is_not_modified(two_task_data):
    X, Y, _, _ = two_task_data
    strategy = UncertaintyWeights()
    SharedBottomEstimator(loss_weights=strategy, max_iter=1, **_FAST).fit(X, Y)
    assert not hasattr(strategy, "log_variances_")
    assert isinstance(strategy, TaskWeighting)


def test_bad_static_weights_are_named(two_task_data):
    X, Y, _, _ = two_task_data
    with pytest.raises(ValueError, match="loss_weights has 3 entries but y has 2 tasks"):
        SharedBottomEstimator(loss_weights=[1, 1, 1]).fit(X, Y)
    with pytest.raises(ValueError, match="loss_weights must be finite and >= 0"):
        SharedBottomEstimator(loss_weights=[1, -1]).fit(X, Y)
