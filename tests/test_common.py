"""scikit-learn's common estimator checks over every skmtl estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skmtl import (
    DCNMultiTask,
    FeatureEncoder,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
)

# Small networks and few epochs: the checks test the contract, not accuracy.
_FAST = {"max_iter": 3, "batch_size": 32, "device": "cpu", "random_state": 0}

ESTIMATORS = [
    FeatureEncoder(),
    MMoEClassifierRegressor(n_experts=2, expert_hidden_sizes=(8,), **_FAST),
    MMoEClassifierRegressor(gating="shared", n_experts=2, expert_hidden_sizes=(8,), **_FAST),
    PLEEstimator(n_shared_experts=1, n_task_experts=1, expert_hidden_sizes=(8,), **_FAST),
    DCNMultiTask(n_cross_layers=2, deep_hidden_sizes=(8,), **_FAST),
    SharedBottomEstimator(bottom_hidden_sizes=(8,), **_FAST),
]

_NAMES_BY_COLUMN = (
    "Columns are matched by name, so reordered and extra DataFrame columns are "
    "accepted on purpose (the encoder selects what it needs)."
)
_MINIBATCH_WEIGHTS = (
    "Mini-batch SGD: repeating a row is not the same as doubling its weight, "
    "since batches and their normalisation change."
)


def _expected_failed_checks(estimator):
    failures = {"check_dataframe_column_names_consistency": _NAMES_BY_COLUMN}
    if not isinstance(estimator, FeatureEncoder):
        failures["check_sample_weight_equivalence_on_dense_data"] = _MINIBATCH_WEIGHTS
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
