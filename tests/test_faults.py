"""When training goes wrong: interruption (Ctrl-C), divergence, exploding losses."""

import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skmtl import FeatureEncoder, MMoEClassifierRegressor, SharedBottomEstimator
from skmtl._encoder import NUMERIC_CLIP
from skmtl.exceptions import (
    ConvergenceWarning,
    TrainingDivergedError,
    TrainingInterruptedWarning,
)

_FAST = {"batch_size": 64, "device": "cpu", "random_state": 0}


class FailAtStep:
    """A loss weighting that raises ``error`` (or returns NaN) at one step."""

    def __init__(self, step, error=None):
        self.step, self.error, self.calls = step, error, 0

    def __call__(self, task_losses):
        self.calls += 1
        if self.calls == self.step:
            if self.error is not None:
                raise self.error
            return task_losses.sum() * float("nan")
        return task_losses.sum()


def _steps_per_epoch(X):
    return -(-len(X) // _FAST["batch_size"])


@pytest.fixture
def data(two_task_data):
    X, Y, X_test, _ = two_task_data
    return X, Y.astype(float).assign(bought=lambda y: y.bought * 3.0 + 1.0), X_test


def _mmoe(**params):
    return MMoEClassifierRegressor(n_experts=2, expert_hidden_sizes=(8,), **_FAST, **params)


def _clean_fit(max_iter, X, Y):
    return _mmoe(max_iter=max_iter).fit(X, Y)


def test_nan_loss_stops_with_the_task_epoch_and_batch_and_keeps_the_last_epoch(data):
    X, Y, X_test = data
    # A NaN step in epoch 3, batch 3 makes the weights NaN: batch 4's losses.
    step = 2 * _steps_per_epoch(X) + 3
    est = _clean_fit(5, X, Y).set_params(loss_weights=FailAtStep(step))
    with pytest.raises(TrainingDivergedError) as info:
        est.fit(X, Y)
    message = str(info.value)
    assert "'bought', 'clicked'" in message
    assert f"epoch 3, batch 4 of {_steps_per_epoch(X)}" in message
    assert "learning_rate_init" in message
    assert est.n_iter_ == 2 and [h["epoch"] for h in est.history_] == [1, 2]
    clean = _clean_fit(2, X, Y)
    np.testing.assert_array_equal(est.predict(X_test), clean.predict(X_test))
    np.testing.assert_array_equal(est.predict_proba(X_test)[0], clean.predict_proba(X_test)[0])


def test_divergence_in_the_first_epoch_leaves_the_estimator_unfitted(data):
    X, Y, _ = data
    est = _clean_fit(3, X, Y)  # a fitted model, refitted: the old fit is gone too
    with pytest.raises(TrainingDivergedError):
        est.set_params(loss_weights=FailAtStep(2)).fit(X, Y)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert not hasattr(est, "history_") and not hasattr(est, "module_")


def test_ctrl_c_keeps_the_last_completed_epoch_warns_and_propagates(data):
    X, Y, X_test = data
    step = 2 * _steps_per_epoch(X) + 2
    est = _clean_fit(5, X, Y).set_params(loss_weights=FailAtStep(step, KeyboardInterrupt()))
    with pytest.warns(TrainingInterruptedWarning, match="last completed epoch"):
        with pytest.raises(KeyboardInterrupt):
            est.fit(X, Y)
    assert est.n_iter_ == 2 and len(est.history_) == 2 and len(est.loss_curve_) == 2
    clean = _clean_fit(2, X, Y)
    np.testing.assert_array_equal(est.predict(X_test), clean.predict(X_test))


def test_ctrl_c_in_the_first_epoch_leaves_the_estimator_unfitted(data):
    X, Y, _ = data
    est = _clean_fit(3, X, Y).set_params(loss_weights=FailAtStep(3, KeyboardInterrupt()))
    with pytest.warns(TrainingInterruptedWarning), pytest.raises(KeyboardInterrupt):
        est.fit(X, Y)
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_ctrl_c_during_warm_start_keeps_the_previous_model(data):
    X, Y, X_test = data
    est = _clean_fit(2, X, Y).set_params(warm_start=True)
    before = est.predict_proba(X_test)[0]
    # warm_start keeps the fitted weighting; interrupt its first new step.
    est.weighting_.combine = FailAtStep(1, KeyboardInterrupt())
    with pytest.warns(TrainingInterruptedWarning), pytest.raises(KeyboardInterrupt):
        est.fit(X, Y)
    assert est.n_iter_ == 2
    np.testing.assert_array_equal(est.predict_proba(X_test)[0], before)


def test_training_resumed_after_ctrl_c_equals_training_never_interrupted(data):
    """The optimizer's and the learnt loss weights' state are restored too."""
    X, Y, X_test = data
    params = {"max_iter": 1, "warm_start": True, "loss_weights": "uncertainty"}
    est = _mmoe(**params).fit(X, Y)
    twin = _mmoe(**params).fit(X, Y)
    combine = est.weighting_.combine
    calls = []

    def interrupt_at_fifth_step(task_losses):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return combine(task_losses)

    est.weighting_.combine = interrupt_at_fifth_step
    with pytest.warns(TrainingInterruptedWarning), pytest.raises(KeyboardInterrupt):
        est.fit(X, Y)
    del est.weighting_.combine
    est.fit(X, Y)  # epoch 2, from the restored end of epoch 1
    twin.fit(X, Y)
    assert est.n_iter_ == twin.n_iter_ == 2
    assert torch.equal(est.weighting_.log_variances_, twin.weighting_.log_variances_)
    np.testing.assert_array_equal(est.predict(X_test), twin.predict(X_test))


def test_exploding_loss_warns_naming_the_task(data):
    X, Y, _ = data
    est = SharedBottomEstimator(learning_rate_init=50.0, max_iter=2, **_FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X, Y)
        except TrainingDivergedError:
            pass  # diverging to NaN is the other outcome this rate can have
    exploded = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert exploded, "no warning for a learning rate of 50"
    assert re.search(r"task '(bought|clicked)' exploded", str(exploded[0].message))


def test_a_sane_fit_gives_no_warning(data):
    X, Y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _clean_fit(3, X, Y)


@pytest.fixture
def extreme_rows(data):
    """Rows of numbers at the edge of float64 in both numeric columns."""
    X, Y, X_test = data
    extreme = X.copy()
    extreme.loc[extreme.index[:6], "income"] = [1e12, 1e300, -1e300, 1e300, -1e12, 1.7e308]
    extreme.loc[extreme.index[10:13], "age"] = [1e300, -1e300, 1e15]
    return extreme, Y, X_test


def test_extreme_numbers_are_clipped_to_a_finite_range_and_binned(data, extreme_rows):
    X, _, _ = data
    extreme, _, _ = extreme_rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the moments of 1e300
        for fitted_on in (X, extreme):
            encoder = FeatureEncoder(n_bins=4).fit(fitted_on)
            encoded = encoder.encode(extreme)
            assert np.isfinite(encoded.numeric).all()
            assert np.abs(encoded.numeric).max() == NUMERIC_CLIP
            n_categorical = len(encoder.categorical_columns_)
            bins = encoded.categorical[:, n_categorical:]
            assert (bins >= 1).all() and (bins <= n_bins_codes(encoder)).all()


def n_bins_codes(encoder):
    """Largest bin code that is not "missing", per bin column."""
    return np.asarray(encoder.cardinalities_[len(encoder.categorical_columns_) :]) - 2


def test_extreme_numbers_neither_diverge_training_nor_give_infinite_predictions(
    data, extreme_rows
):
    X, Y, X_test = data
    extreme, _, _ = extreme_rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the moments of 1e300
        for train in (X, extreme):
            est = _clean_fit(3, train, Y)
            assert np.isfinite(est.loss_curve_).all()
            for rows in (extreme, X_test):
                assert np.isfinite(est.predict(rows).astype(float)).all()
                assert np.isfinite(est.predict_proba(rows)[1]).all()


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_numbers_are_refused_naming_the_column(data, value):
    X, Y, _ = data
    bad = X.assign(age=X.age.where(X.index != X.index[3], value))
    with pytest.raises(ValueError, match="Numeric columns 'age' contain infinite values"):
        _clean_fit(1, bad, Y)
    est = _clean_fit(1, X, Y)
    with pytest.raises(ValueError, match="Numeric columns 'age' contain infinite values"):
        est.predict(bad)
