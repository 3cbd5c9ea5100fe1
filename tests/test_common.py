"""scikit-learn's common estimator checks over every skmtl estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skmtl import (
    AITMEstimator,
    CrossStitchEstimator,
    DCNMultiTask,
    ESMMEstimator,
    FeatureEncoder,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
    STAREstimator,
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
    CrossStitchEstimator(column_hidden_sizes=(8,), **_FAST),
    # The checks' arrays name their columns x0, x1...: x0 serves as the domain.
    STAREstimator(
        domain_column="x0", star_hidden_sizes=(8,), auxiliary_hidden_sizes=(4,), **_FAST
    ),
    ESMMEstimator(**_FAST),
    AITMEstimator(tower_hidden_sizes=(8,), **_FAST),
]

_NAMES_BY_COLUMN = (
    "Columns are matched by name, so reordered and extra DataFrame columns are "
    "accepted on purpose (the encoder selects what it needs)."
)
_MINIBATCH_WEIGHTS = (
    "Mini-batch SGD: repeating a row is not the same as doubling its weight, "
    "since batches and their normalisation change."
)


_DOMAIN_NAMED_X0 = (
    "This check's DataFrame names its columns 0, 1...; STAR's domain_column is "
    "x0, the name the other checks' arrays give their first column."
)


def _expected_failed_checks(estimator):
    failures = {"check_dataframe_column_names_consistency": _NAMES_BY_COLUMN}
    if not isinstance(estimator, FeatureEncoder):
        failures["check_sample_weight_equivalence_on_dense_data"] = _MINIBATCH_WEIGHTS
    if isinstance(estimator, STAREstimator):
        failures["check_sample_weights_pandas_series"] = _DOMAIN_NAMED_X0
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
