"""Mistakes on the target, parameter, eval_set and sample_weight side.

Each must raise an error of the right class whose message names the task,
parameter or rows at fault, and leave everything the caller passed as it
was. (Mistakes in X are tested with the encoder.)
"""

import re

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from skmtl import FeatureEncoder, SharedBottomEstimator
from skmtl.tasks import BinaryTask
from skmtl.weighting import DynamicWeights, GradNorm

_FAST = {"max_iter": 1, "batch_size": 64, "device": "cpu", "random_state": 0}


@pytest.fixture
def data(two_task_data):
    X, Y, _, _ = two_task_data
    rows = np.arange(len(Y))
    return X.iloc[:300], Y.iloc[:300].assign(spend=rows[:300] / 7.0)


def _copies(values):
    return [v.copy() if hasattr(v, "copy") else v for v in values]


def _assert_unchanged(before, after):
    for a, b in zip(before, after):
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b)
        elif isinstance(a, pd.Series):
            pd.testing.assert_series_equal(a, b)
        elif isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)


def _fit_fails(est, error, message, X, Y, **fit_params):
    """Fit must raise ``error`` matching ``message`` and modify nothing passed."""
    passed = [X, Y, *fit_params.values()]
    before = _copies(passed)
    with pytest.raises(error, match=re.escape(message)):
        est.fit(X, Y, **fit_params)
    _assert_unchanged(before, passed)


# -- targets -------------------------------------------------------------------------


def _with_first(column, value, n):
    values = column.astype(object).to_numpy(copy=True)
    for i in range(n):  # one cell at a time: a list value is one label
        values[i] = value
    return values


@pytest.mark.parametrize(
    "change, task_types, message",
    [
        (lambda Y: Y.assign(spend=_with_first(Y.spend, np.inf, 1)), "auto",
         "Task 'spend' has infinite labels"),
        (lambda Y: Y.assign(spend=_with_first(Y.spend, -np.inf, 2)), {"spend": "regression"},
         "Task 'spend' has infinite labels; a regression target must be finite"),
        (lambda Y: Y.assign(spend=_with_first(Y.spend, np.inf, 1)), {"spend": "poisson"},
         "Task 'spend' has infinite labels; a poisson target must be finite"),
        (lambda Y: Y.assign(bought=_with_first(Y.bought, "yes", 3)), "auto",
         "Task 'bought' mixes label types ('int', 'str')"),
        (lambda Y: Y.assign(bought=_with_first(Y.bought, "yes", 3)), {"bought": "binary"},
         "Task 'bought' mixes label types ('int', 'str')"),
        (lambda Y: Y.assign(bought=_with_first(Y.bought, {"a": 1}, 2)), "auto",
         "Task 'bought' has values that are not single labels ('dict')"),
        (lambda Y: Y.assign(bought=_with_first(Y.bought, [1, 2], 2)), {"bought": "multiclass"},
         "Task 'bought' has values that are not single labels ('list')"),
        (lambda Y: Y.assign(spend=Y.spend + 1j), "auto", "Task 'spend' has complex labels"),
        (lambda Y: Y.assign(spend=Y.spend + 1j), {"spend": "regression"},
         "Task 'spend' has complex labels"),
        (lambda Y: Y.assign(when=pd.date_range("2020", periods=len(Y))), "auto",
         "Task 'when' holds dates or durations"),
        (lambda Y: Y.assign(spend=_with_first(Y.spend, "high", 1)), {"spend": "regression"},
         "Task 'spend' is a regression task but has labels that are not numbers: 'high'"),
        (lambda Y: Y.assign(spend=-Y.spend), {"spend": "poisson"},
         "Task 'spend' is a poisson task but has negative labels"),
        (lambda Y: Y.assign(spend=Y.spend), {"spend": "binary"},
         "Task 'spend' was declared binary but has 300 classes"),
        (lambda Y: Y.assign(bought=np.nan), "auto", "Task 'bought' has no labels"),
        (lambda Y: Y.assign(bought=1), "auto", "Task 'bought' has only one class"),
        (lambda Y: pd.concat([Y, Y.bought], axis=1), "auto",
         "Y has duplicate task names: 'bought'"),
        (lambda Y: Y.set_axis([0, "0", "spend"], axis=1), "auto",
         "Y has duplicate task names: '0' among [0, '0', 'spend']"),
    ],
)  # fmt: skip
def test_bad_targets_name_the_task(change, task_types, message, data):
    X, Y = data
    est = SharedBottomEstimator(task_types=task_types, **_FAST)
    _fit_fails(est, ValueError, message, X, change(Y))


@pytest.mark.parametrize(
    "y, error, message",
    [
        (lambda Y: sparse.csr_matrix(Y.to_numpy()), TypeError, "y is a sparse matrix"),
        (lambda Y: np.zeros((len(Y), 2, 2)), ValueError, "Y must be 1-D or 2-D"),
        (lambda Y: Y.iloc[:-1], ValueError, "y has 299 rows but X has 300"),
    ],
)
def test_bad_target_shapes(y, error, message, data):
    X, Y = data
    _fit_fails(SharedBottomEstimator(**_FAST), error, message, X, y(Y))


def test_scoring_with_bad_labels_names_the_task(data):
    X, Y = data
    est = SharedBottomEstimator(**_FAST).fit(X, Y)
    unseen = Y.assign(bought=_with_first(Y.bought, 2, 1))
    with pytest.raises(
        ValueError, match=re.escape("Task 'bought' has labels not seen in fit: '2'")
    ):
        est.score_tasks(X, unseen)
    # Strings for integer classes: a common mix-up, not a silent AUC of nan.
    with pytest.raises(
        ValueError,
        match=re.escape("Task 'clicked' has labels not seen in fit: '0', '1'"),
    ):
        est.score(X, Y.astype({"clicked": str}))
    with pytest.raises(ValueError, match=re.escape("Task 'spend' has infinite labels")):
        est.score(X, Y.assign(spend=_with_first(Y.spend, np.inf, 1)))


def test_scoring_matches_named_columns_to_tasks(data):
    X, Y = data
    est = SharedBottomEstimator(**_FAST).fit(X, Y)
    expected = est.score_tasks(X, Y)
    assert est.score_tasks(X, Y[["spend", "clicked", "bought"]]) == expected
    assert est.score_tasks(X, Y.to_numpy()) == expected  # arrays: in task order
    with pytest.raises(
        ValueError, match=re.escape("y has tasks ['clicked', 'bought', 'cost']")
    ):
        est.score(X, Y.rename(columns={"spend": "cost"}))


def test_continued_training_with_unseen_labels_names_the_task(data):
    X, Y = data
    est = SharedBottomEstimator(**_FAST).fit(X, Y)
    before = est.predict(X)
    with pytest.raises(
        ValueError, match=re.escape("Task 'clicked' has labels not seen in fit: 'no'")
    ):
        est.partial_fit(X, Y.assign(clicked=np.where(Y.clicked == 1, "yes", "no")))
    np.testing.assert_array_equal(est.predict(X), before)


# -- eval_set ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "eval_set, message",
    [
        (lambda X, Y: (X, Y, None), "eval_set must be a pair (X_val, y_val)"),
        (lambda X, Y: (X, Y.clicked), "eval_set's y has tasks ['clicked'] but y has"),
        (lambda X, Y: (X, Y.assign(clicked=2)), "Task 'clicked' has labels not seen in fit: '2'"),
        (lambda X, Y: (X, Y.astype({"bought": str})), "Task 'bought' has labels not seen in fit: '0', '1'"),
        (lambda X, Y: (X, Y.assign(spend=_with_first(Y.spend, np.inf, 1))),
         "Task 'spend' has infinite labels"),
        (lambda X, Y: (X, Y.iloc[:-1]), "y has 299 rows but X has 300"),
        (lambda X, Y: (X.drop(columns="age"), Y), "X is missing columns seen in fit: 'age'"),
    ],
)  # fmt: skip
def test_bad_eval_set(eval_set, message, data):
    X, Y = data
    est = SharedBottomEstimator(**_FAST)
    _fit_fails(est, ValueError, message, X, Y, eval_set=eval_set(X, Y))


# -- sample_weight -------------------------------------------------------------------


@pytest.mark.parametrize(
    "weight, message",
    [
        (lambda n: np.r_[-1.0, np.ones(n - 1)], "sample_weight must be finite and non-negative (row 0: -1.0)"),
        (lambda n: np.r_[np.ones(n - 1), np.nan], "(row 299: nan)"),
        (lambda n: ["heavy"] * n, "sample_weight must be numbers"),
        (lambda n: 2.0, "sample_weight must have shape (300,)"),
        (lambda n: np.ones((n, 2)), "got shape (300, 2)"),
        (lambda n: np.zeros(n), "sample_weight must not be all zero"),
    ],
)  # fmt: skip
def test_bad_sample_weight(weight, message, data):
    X, Y = data
    _fit_fails(
        SharedBottomEstimator(**_FAST),
        ValueError,
        message,
        X,
        Y,
        sample_weight=weight(len(X)),
    )


# -- parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"validation_metric": "auc"}, ValueError, "validation_metric must be 'loss', 'score'"),
        ({"validation_metric": "score:price"}, ValueError, "got 'score:price'"),
        ({"encoder": FeatureEncoder}, TypeError, "encoder is the class FeatureEncoder; pass an instance"),
        ({"loss_weights": GradNorm}, TypeError, "loss_weights is the class GradNorm"),
        ({"loss_weights": GradNorm(alpha=-1.0)}, ValueError, "GradNorm's alpha must be a finite number >= 0"),
        ({"loss_weights": GradNorm(learning_rate=-0.1)}, ValueError, "GradNorm's learning_rate must be a finite number >= 0"),
        ({"loss_weights": {"clicked": "high"}}, ValueError, "loss_weights must be numbers"),
        ({"loss_weights": [1.0, -1.0, 1.0]}, ValueError, "loss_weights must be finite and >= 0"),
        ({"loss_weights": [1.0, 1.0]}, ValueError, "loss_weights has 2 entries but y has 3 tasks"),
        ({"loss_weights": {"price": 1.0}}, ValueError, "loss_weights names tasks that are not in y: 'price'"),
        ({"loss_weights": DynamicWeights([1.0, 2.0])}, ValueError, "DynamicWeights' initial has 2 entries but y has 3 tasks"),
        ({"loss_weights": DynamicWeights(decay=-0.5)}, ValueError, "DynamicWeights' decay must be finite and >= 0"),
        ({"task_types": {"clicked": int}}, ValueError, "Unknown task type <class 'int'> for task 'clicked'"),
        ({"task_types": {"clicked": BinaryTask("clicked", [0, 1])}}, ValueError, "for task 'clicked'"),
        ({"task_types": ["binary", "ordinal", "regression"]}, ValueError, "Unknown task type 'ordinal' for task 'bought'"),
        ({"class_weight": {"clicked": {"1": 2.0}}}, ValueError, "class_weight for task 'clicked' names labels that are not among its classes [0, 1]: '1'"),
        ({"class_weight": {"spend": "balanced"}}, ValueError, "class_weight is given for task 'spend', which is a regression task"),
        ({"optimizer": dict}, TypeError, "optimizer must be 'adam', 'adamw', 'sgd' or a torch.optim.Optimizer subclass"),
        ({"lr_scheduler": lambda optimizer: None}, TypeError, "lr_scheduler(optimizer) must return a scheduler"),
    ],
)  # fmt: skip
def test_bad_parameters_are_named(params, error, message, data):
    X, Y = data
    est = SharedBottomEstimator(**_FAST).set_params(**params)
    _fit_fails(est, error, message, X, Y)
