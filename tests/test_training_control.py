"""Early stopping, validation history, class weights and optimiser control."""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss

from skmtl import MMoEClassifierRegressor, SharedBottomEstimator

_FAST = {"device": "cpu", "random_state": 0}


def _overfitting_data(seed=0):
    """Few rows, mostly noise: a big network memorises them and gets worse on new rows."""
    rng = np.random.RandomState(seed)
    n = 400
    X = pd.DataFrame(rng.normal(size=(n, 20)), columns=[f"f{i}" for i in range(20)])
    signal = X.f0 + rng.normal(scale=2.0, size=n)
    Y = pd.DataFrame({"a": (signal > 0).astype(int), "b": (X.f1 + rng.normal(scale=2.0, size=n) > 0).astype(int)})
    return X.iloc[:200], Y.iloc[:200], X.iloc[200:], Y.iloc[200:]


def test_early_stopping_restores_the_best_epoch():
    X, Y, X_val, Y_val = _overfitting_data()
    est = SharedBottomEstimator(
        bottom_hidden_sizes=(256, 256),
        learning_rate_init=0.01,
        batch_size=32,
        max_iter=60,
        early_stopping=True,
        n_iter_no_change=4,
        **_FAST,
    ).fit(X, Y, eval_set=(X_val, Y_val))
    losses = [np.mean(list(h["valid_loss_per_task"].values())) for h in est.history_]
    best = int(np.argmin(losses)) + 1
    assert est.best_iteration_ == best
    assert est.n_iter_ == best + 4 < 60  # stopped after 4 epochs without improvement
    assert losses[-1] > losses[best - 1]  # it was over-fitting
    # The restored weights are the best epoch's: its validation loss, recomputed.
    proba = est.predict_proba(X_val)
    recomputed = np.mean([log_loss(Y_val[t], proba[k][:, 1]) for k, t in enumerate(Y_val)])
    assert recomputed == pytest.approx(losses[best - 1], rel=1e-4)


def test_validation_fraction_split_and_task_metric(two_task_data):
    X, Y, _, _ = two_task_data
    est = MMoEClassifierRegressor(
        n_experts=2,
        max_iter=6,
        early_stopping=True,
        validation_fraction=0.2,
        validation_metric="score:bought",
        n_iter_no_change=2,
        **_FAST,
    ).fit(X, Y)
    scores = [h["valid_score_per_task"]["bought"] for h in est.history_]
    assert est.best_iteration_ == int(np.argmax(scores)) + 1
    assert 0.5 < max(scores) <= 1.0
    with pytest.raises(ValueError, match=re.escape("validation_metric must be")):
        est.set_params(validation_metric="score:price").fit(X, Y)


def test_history_has_validation_metrics_with_eval_set_only(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = SharedBottomEstimator(max_iter=2, **_FAST).fit(X, Y, eval_set=(X_test, Y_test))
    assert est.n_iter_ == 2 and est.best_iteration_ is None
    assert set(est.history_[0]["valid_score_per_task"]) == {"clicked", "bought"}
    assert "valid_loss_per_task" not in SharedBottomEstimator(max_iter=1, **_FAST).fit(X, Y).history_[0]


def test_balanced_class_weight_raises_recall_of_the_rare_class():
    rng = np.random.RandomState(0)
    n = 2000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    rare = (X.a + rng.normal(scale=1.0, size=n) > 2.2).astype(int)  # about 6 % positives
    Y = pd.DataFrame({"rare": rare, "other": (X.b > 0).astype(int)})
    kw = {"max_iter": 5, "batch_size": 64, **_FAST}
    plain = SharedBottomEstimator(**kw).fit(X, Y).predict(X)[:, 0]
    balanced = SharedBottomEstimator(class_weight={"rare": "balanced"}, **kw).fit(X, Y).predict(X)[:, 0]
    recall = lambda pred: pred[rare == 1].mean()
    assert recall(balanced) > recall(plain) + 0.3


def test_class_weight_errors_name_the_task(two_task_data):
    X, Y, _, _ = two_task_data
    with pytest.raises(ValueError, match=re.escape("not in y: 'price'")):
        SharedBottomEstimator(class_weight={"price": "balanced"}).fit(X, Y)
    with pytest.raises(ValueError, match=re.escape("task 'bought' names labels")):
        SharedBottomEstimator(class_weight={"bought": {7: 2.0}}).fit(X, Y)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", torch.optim.RMSprop])
def test_optimizers_train(optimizer, two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = SharedBottomEstimator(optimizer=optimizer, max_iter=4, batch_size=64, **_FAST)
    assert est.fit(X, Y).score(X_test, Y_test) > 0.8


def test_weight_decay_shrinks_weights(two_task_data):
    X, Y, _, _ = two_task_data
    norm = lambda est: sum(p.norm() for p in est.module_.parameters()).item()
    kw = {"optimizer": "adamw", "max_iter": 3, **_FAST}
    assert norm(SharedBottomEstimator(weight_decay=0.5, **kw).fit(X, Y)) < norm(
        SharedBottomEstimator(**kw).fit(X, Y)
    )


def test_bad_optimizer_is_named(two_task_data):
    X, Y, _, _ = two_task_data
    with pytest.raises(ValueError, match="'optimizer' parameter"):
        SharedBottomEstimator(optimizer="lbfgs").fit(X, Y)
    with pytest.raises(TypeError, match="torch.optim.Optimizer subclass"):
        SharedBottomEstimator(optimizer=dict).fit(X, Y)


def test_warm_start_continues_from_the_fitted_weights(two_task_data):
    X, Y, X_test, _ = two_task_data
    kw = {"max_iter": 2, "batch_size": 64, **_FAST}
    est = SharedBottomEstimator(warm_start=True, **kw).fit(X, Y)
    first = [p.detach().clone() for p in est.module_.parameters()]
    encoder = est.encoder_
    est.fit(X, Y)
    assert est.n_iter_ == 4 and [h["epoch"] for h in est.history_] == [1, 2, 3, 4]
    assert est.encoder_ is encoder  # not refitted
    assert any(not torch.equal(a, b) for a, b in zip(first, est.module_.parameters()))
    # Without warm_start, fit starts again from scratch.
    cold = SharedBottomEstimator(**kw).fit(X, Y).fit(X, Y)
    assert cold.n_iter_ == 2
    with pytest.raises(ValueError, match=re.escape("needs the same tasks")):
        est.fit(X, Y[["bought"]])


def test_partial_fit_trains_one_epoch_per_chunk(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = MMoEClassifierRegressor(n_experts=2, batch_size=64, **_FAST)
    for _ in range(4):
        for start in range(0, len(X), 300):
            est.partial_fit(X.iloc[start : start + 300], Y.iloc[start : start + 300])
    assert est.n_iter_ == 12 and len(est.history_) == 12
    assert est.score(X_test, Y_test) > 0.8
    # A category unseen in the first chunk is encoded as unknown, not an error.
    est.partial_fit(X.head(50).assign(city="atlantis"), Y.head(50))
    assert est.n_iter_ == 13


def test_partial_fit_after_joblib_round_trip(tmp_path, two_task_data):
    import joblib

    X, Y, _, _ = two_task_data
    est = SharedBottomEstimator(batch_size=64, **_FAST).partial_fit(X, Y)
    joblib.dump(est, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib").partial_fit(X, Y)
    assert loaded.n_iter_ == 2


def test_cosine_schedule_and_custom_scheduler(two_task_data):
    X, Y, _, _ = two_task_data
    est = SharedBottomEstimator(lr_scheduler="cosine", max_iter=4, **_FAST).fit(X, Y)
    assert est._optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    step = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    est = SharedBottomEstimator(lr_scheduler=step, max_iter=3, **_FAST).fit(X, Y)
    assert est._optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 / 8)
    with pytest.raises(TypeError, match="step\\(\\) method"):
        SharedBottomEstimator(lr_scheduler=lambda opt: 3, max_iter=1).fit(X, Y)


def test_gradient_clipping_bounds_each_update(two_task_data):
    X, Y, _, _ = two_task_data
    kw = {"optimizer": "sgd", "learning_rate_init": 1.0, "max_iter": 1, "batch_size": len(X), **_FAST}
    clipped = SharedBottomEstimator(max_grad_norm=1e-3, **kw).fit(X, Y)
    free = SharedBottomEstimator(**kw).fit(X, Y)
    init = SharedBottomEstimator(**{**kw, "learning_rate_init": 1e-12}).fit(X, Y)
    def moved(est):
        pairs = zip(est.module_.parameters(), init.module_.parameters())
        return torch.sqrt(sum(((a - b) ** 2).sum() for a, b in pairs))

    # One full-batch SGD step of rate 1: the update's norm is the clipped gradient's.
    assert moved(clipped).item() == pytest.approx(1e-3, rel=0.05)
    assert moved(free).item() > 10 * 1e-3


def test_eval_set_with_other_tasks_is_an_error(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = SharedBottomEstimator(max_iter=1, **_FAST)
    with pytest.raises(ValueError, match=re.escape("eval_set's y has tasks ['bought', 'clicked']")):
        est.fit(X, Y, eval_set=(X_test, Y_test[["bought", "clicked"]]))
    # A plain array is taken as the tasks in order.
    est.fit(X, Y, eval_set=(X_test, Y_test.to_numpy()))
    assert set(est.history_[0]["valid_loss_per_task"]) == {"clicked", "bought"}
