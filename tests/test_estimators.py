"""Behaviour of the estimators: learning, tasks, masking, persistence, model selection."""

import re
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from _baselines import (
    assert_beats_baselines,
    best_single_feature_auc,
    logistic_regression_auc,
)
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skmtl import (
    DCNMultiTask,
    FeatureEncoder,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
)
from skmtl.exceptions import DeviceWarning
from skmtl.metrics import make_task_scorer

_FAST = {"max_iter": 8, "batch_size": 64, "device": "cpu", "random_state": 0}

ESTIMATORS = {
    "mmoe": MMoEClassifierRegressor(n_experts=4, expert_hidden_sizes=(16,), **_FAST),
    "one_gate_moe": MMoEClassifierRegressor(
        gating="shared", n_experts=4, expert_hidden_sizes=(16,), **_FAST
    ),
    "ple": PLEEstimator(expert_hidden_sizes=(16,), **_FAST),
    "cgc": PLEEstimator(n_levels=1, expert_hidden_sizes=(16,), **_FAST),
    "dcn": DCNMultiTask(deep_hidden_sizes=(32,), **_FAST),
    "dcn_vector_stacked": DCNMultiTask(
        cross_type="vector", structure="stacked", deep_hidden_sizes=(32,), **_FAST
    ),
    "shared_bottom": SharedBottomEstimator(bottom_hidden_sizes=(32,), **_FAST),
}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_each_estimator_learns_both_tasks(name, two_task_data):
    """Well above the best single column (AUC 0.83 and 0.82), near a linear model.

    Both tasks' true logits are linear in one-hot city and a number, so a
    logistic regression on one-hot and scaled columns is close to the best
    possible AUC here (0.996 and 0.980).
    """
    X_train, Y_train, X_test, Y_test = two_task_data
    est = clone(ESTIMATORS[name]).fit(X_train, Y_train)
    probas = est.predict_proba(X_test)
    for k, task in enumerate(Y_test.columns):
        auc = roc_auc_score(Y_test[task], probas[k][:, 1])
        assert_beats_baselines(
            auc, X_train, Y_train[task], X_test, Y_test[task],
            margin=0.1, slack=0.03, label=f"{name} {task}",
        )  # fmt: skip
    # The estimator's own score is the mean of the same AUCs.
    expected = np.mean(
        [roc_auc_score(Y_test[t], probas[k][:, 1]) for k, t in enumerate(Y_test.columns)]
    )
    assert est.score(X_test, Y_test) == pytest.approx(expected)


def test_mixed_task_types_train_together(mixed_task_data):
    X, Y = mixed_task_data
    train, test = slice(0, 900), slice(900, None)
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=20).fit(X[train], Y[train])
    assert est.task_types_ == ["binary", "multiclass", "regression"]
    assert list(est.classes_[0]) == ["no", "yes"]
    assert list(est.classes_[1]) == ["hi", "lo", "mid"]
    assert est.classes_[2] is None
    scores = est.score_tasks(X[test], Y[test])
    converted = (Y.converted == "yes").astype(int)
    assert_beats_baselines(
        scores["converted"], X[train], converted[train], X[test], converted[test],
        margin=0.1, slack=0.02, label="converted",
    )  # fmt: skip
    # Accuracy: the majority class is right for about a third of the rows.
    majority = (Y.segment[test] == Y.segment[train].mode()[0]).mean()
    assert scores["segment"] > majority + 0.5
    # R²: the best one-column linear fit explains 0.72 of spend, both columns 0.999.
    numbers = ["x1", "x2"]
    linear = LinearRegression().fit(X[numbers][train], Y.spend[train])
    single = max(
        LinearRegression().fit(X[[c]][train], Y.spend[train]).score(X[[c]][test], Y.spend[test])
        for c in numbers
    )
    assert single + 0.2 < scores["spend"]
    assert scores["spend"] > linear.score(X[numbers][test], Y.spend[test]) - 0.05
    pred = est.predict(X[test])
    assert pred.shape == (300, 3)
    assert set(pred[:, 0]) <= {"no", "yes"}
    proba = est.predict_proba(X[test])
    assert proba[0].shape == (300, 2) and proba[1].shape == (300, 3)
    assert proba[2] is None
    np.testing.assert_allclose(proba[1].sum(axis=1), 1.0, rtol=1e-6)


def test_masked_labels_train_as_zero_weight_labels(two_task_data):
    """A NaN label trains exactly like a label whose loss weight is zero.

    ``sample_weight`` weighs a row in every task, so the zero weight for one
    task comes from ``class_weight``: ``clicked`` gets a third label, 2, on a
    few rows of every fit, with class weight 0. The masked fit leaves
    ``clicked`` NaN on a quarter of the rows; the reference fit gives those
    rows label 2 instead. If the masked rows reached the loss (a NaN encoded
    as class 0 with weight 1, or a NaN in the sum), the two would differ.
    """
    X, Y, X_test, _ = two_task_data
    rows = np.arange(len(Y))
    clicked = Y.clicked.where(rows % 10 != 0, 2).astype(float)  # label 2 in every fit
    outside = rows % 4 == 1  # never a multiple of 10: label 0 or 1 before masking
    est = clone(ESTIMATORS["mmoe"]).set_params(
        max_iter=2, class_weight={"clicked": {2: 0.0}}
    )

    def fit(outside_labels):
        labels = clicked.copy()
        labels[outside] = outside_labels
        return clone(est).fit(X, Y.assign(clicked=labels)).predict_proba(X_test)

    masked = fit(np.nan)
    zero_weight = fit(2.0)
    for a, b in zip(masked, zero_weight):
        np.testing.assert_array_equal(a, b)
    # Sensitivity: the same rows trained on with real labels change the model.
    flipped = fit(1 - Y.clicked[outside])
    assert not np.array_equal(masked[0], flipped[0])
    assert not np.array_equal(masked[1], flipped[1])  # through the shared experts


def test_zero_sample_weight_rows_are_ignored(two_task_data):
    X, Y, X_test, _ = two_task_data
    weight = np.where(np.arange(len(Y)) % 2 == 0, 0.0, 1.0)
    Y_flipped = Y.copy()
    Y_flipped.loc[weight == 0] = 1 - Y_flipped.loc[weight == 0]
    est = clone(ESTIMATORS["shared_bottom"]).set_params(max_iter=2)
    a = est.fit(X, Y, sample_weight=weight).predict_proba(X_test)
    b = clone(est).fit(X, Y_flipped, sample_weight=weight).predict_proba(X_test)
    np.testing.assert_array_equal(a[0], b[0])


def test_one_dimensional_y_is_a_single_task(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = clone(ESTIMATORS["shared_bottom"]).fit(X, Y["clicked"])
    assert est.task_names_ == ["clicked"]
    assert est.predict(X_test).shape == (len(X_test),)
    assert est.predict_proba(X_test).shape == (len(X_test), 2)
    est = clone(est).fit(X, Y["clicked"].to_numpy())
    assert est.task_names_ == ["task_0"]


def test_numpy_input_and_two_dimensional_targets():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 5))
    Y = np.column_stack([(X[:, 0] > 0), (X[:, 1] + X[:, 2] > 0)]).astype(int)
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=20).fit(X[:400], Y[:400])
    assert est.task_names_ == ["task_0", "task_1"]
    scores = est.score_tasks(X[400:], Y[400:])
    frame = pd.DataFrame(X)
    for k, task in enumerate(est.task_names_):
        # Linear tasks: logistic regression is all but perfect (AUC >= 0.999).
        logistic = logistic_regression_auc(frame[:400], Y[:400, k], frame[400:], Y[400:, k])
        assert scores[task] > logistic - 0.02, (task, scores[task], logistic)


def test_same_random_state_gives_identical_predictions(two_task_data):
    X, Y, X_test, _ = two_task_data
    est = clone(ESTIMATORS["ple"]).set_params(max_iter=2, dropout=0.1)
    a = est.fit(X, Y).predict_proba(X_test)
    b = clone(est).fit(X, Y).predict_proba(X_test)
    c = clone(est).set_params(random_state=1).fit(X, Y).predict_proba(X_test)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_fit_leaves_global_torch_rng_alone(two_task_data):
    X, Y, _, _ = two_task_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clone(ESTIMATORS["mmoe"]).set_params(max_iter=1).fit(X, Y)
    assert torch.equal(torch.rand(3), expected)


def test_history_records_per_task_losses_that_fall(two_task_data):
    X, Y, _, _ = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=5).fit(X, Y)
    assert est.n_iter_ == 5 and len(est.history_) == 5
    first, last = est.history_[0], est.history_[-1]
    assert first["train_loss_per_task"]["clicked"] > last["train_loss_per_task"]["clicked"]
    assert est.loss_curve_ == [h["train_loss"] for h in est.history_]
    assert last["train_loss"] == pytest.approx(sum(last["train_loss_per_task"].values()))


def test_loss_weights_zero_leaves_a_task_untrained(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = clone(ESTIMATORS["shared_bottom"]).set_params(loss_weights={"bought": 0.0}).fit(X, Y)
    scores = est.score_tasks(X_test, Y_test)
    assert_beats_baselines(
        scores["clicked"], X, Y.clicked, X_test, Y_test.clicked,
        margin=0.1, slack=0.03, label="clicked",
    )  # fmt: skip
    assert scores["bought"] < 0.75  # its tower never got a gradient
    with pytest.raises(ValueError, match=re.escape("'nope'")):
        clone(est).set_params(loss_weights={"nope": 1.0}).fit(X, Y)


def test_joblib_round_trip_gives_identical_predictions(tmp_path, two_task_data):
    X, Y, X_test, _ = two_task_data
    est = clone(ESTIMATORS["dcn"]).set_params(max_iter=2).fit(X, Y)
    joblib.dump(est, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(est.predict_proba(X_test)[0], loaded.predict_proba(X_test)[0])
    np.testing.assert_array_equal(est.predict(X_test), loaded.predict(X_test))


def test_model_pickled_from_a_gpu_loads_on_cpu_with_a_warning(tmp_path, two_task_data):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to exercise the fallback")
    X, Y, X_test, _ = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=1).fit(X, Y)
    expected = est.predict_proba(X_test)[0]
    est.device_ = torch.device("cuda", 0)  # as if it had been fitted on a GPU
    joblib.dump(est, tmp_path / "gpu.joblib")
    with pytest.warns(DeviceWarning, match="not available here"):
        loaded = joblib.load(tmp_path / "gpu.joblib")
    assert loaded.device_ == torch.device("cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X_test)[0], expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("loss_weights", [None, "uncertainty", "gradnorm"])
def test_cuda_fit_predicts_like_cpu_fit(loss_weights, two_task_data):
    """The same seed trains the same model on CUDA as on the CPU, up to rounding.

    Both fits start from the same weights (drawn on the CPU) and see the same
    batches in the same order; only the kernels differ, summing float32
    products in another order (about 1e-7 relative per operation). Over two
    epochs of Adam that moves the probabilities by far less than the 1e-3
    allowed, while another seed moves them by more than 1e-2 (checked below).
    Dropout stays 0: its masks come from each device's own generator.
    """
    X, Y, X_test, _ = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=2, loss_weights=loss_weights)
    cpu = est.fit(X, Y).predict_proba(X_test)
    gpu_est = clone(est).set_params(device="cuda").fit(X, Y)
    assert gpu_est.device_.type == "cuda"
    assert next(gpu_est.module_.parameters()).is_cuda
    gpu = gpu_est.predict_proba(X_test)
    for on_cpu, on_gpu in zip(cpu, gpu):
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=0, atol=1e-3)
    other_seed = clone(est).set_params(random_state=1).fit(X, Y).predict_proba(X_test)
    assert np.abs(other_seed[0] - cpu[0]).max() > 1e-2
    np.testing.assert_allclose(
        gpu_est.weighting_.weights(), est.weighting_.weights(), rtol=0, atol=1e-3
    )


def test_device_auto_resolves_and_cuda_without_gpu_is_an_error(two_task_data):
    X, Y, _, _ = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(device="auto", max_iter=1).fit(X, Y)
    assert est.device_.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            clone(est).set_params(device="cuda").fit(X, Y)
    with pytest.raises(ValueError, match="not a valid torch device"):
        clone(est).set_params(device="gpu-please").fit(X, Y)


def test_clone_and_params():
    est = MMoEClassifierRegressor(n_experts=3, tower_hidden_sizes=(8, 4))
    params = est.get_params()
    assert params["n_experts"] == 3 and params["tower_hidden_sizes"] == (8, 4)
    cloned = clone(est.set_params(n_experts=5))
    assert cloned.n_experts == 5 and cloned is not est


def test_pipeline_gridsearch_and_cross_val_score(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    pipe = make_pipeline(
        FunctionTransformer(lambda df: df.assign(age_sq=df.age**2)),
        clone(ESTIMATORS["mmoe"]).set_params(max_iter=5),
    )
    search = GridSearchCV(
        pipe, {"mmoeclassifierregressor__n_experts": [2, 4]}, cv=3, n_jobs=2
    ).fit(X, Y)
    assert search.best_params_["mmoeclassifierregressor__n_experts"] in (2, 4)
    # Five epochs: short of a linear model, but well past any single column.
    singles = [best_single_feature_auc(X, Y[t], X_test, Y_test[t])[1] for t in Y]
    assert search.score(X_test, Y_test) > np.mean(singles) + 0.05
    by_task = make_task_scorer("bought")(search.best_estimator_, X_test, Y_test)
    assert by_task == search.best_estimator_[-1].score_tasks(
        search.best_estimator_[:-1].transform(X_test), Y_test
    )["bought"]
    est = clone(ESTIMATORS["mmoe"])
    folds = KFold(3)
    scores = cross_val_score(est, X, Y, cv=folds, scoring=make_task_scorer("bought"))
    singles = [
        best_single_feature_auc(X.iloc[a], Y.bought.iloc[a], X.iloc[b], Y.bought.iloc[b])[1]
        for a, b in folds.split(X)
    ]
    assert scores.shape == (3,) and np.all(scores > np.add(singles, 0.05))


def test_gridsearch_over_n_experts_on_a_dataframe(two_task_data):
    X, Y, _, _ = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=3)
    search = GridSearchCV(est, {"n_experts": [2, 4]}, cv=2, n_jobs=2).fit(X, Y)
    assert search.best_estimator_.n_experts in (2, 4)
    assert search.best_estimator_.module_.n_experts == search.best_estimator_.n_experts


def test_task_scorer_names_unknown_task(two_task_data):
    X, Y, _, _ = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=1).fit(X, Y)
    with pytest.raises(ValueError, match=re.escape("Unknown task 'price'")):
        make_task_scorer("price")(est, X, Y)


# -- bad input --------------------------------------------------------------------


def test_caller_data_is_never_modified(two_task_data):
    X, Y, X_test, _ = two_task_data
    Y = Y.astype(float)
    Y.iloc[::5, 1] = np.nan
    X = X.copy()
    X.iloc[::7, 1] = np.nan
    X_before, Y_before, test_before = X.copy(), Y.copy(), X_test.copy()
    weight = np.ones(len(X))
    est = clone(ESTIMATORS["ple"]).set_params(max_iter=1).fit(X, Y, sample_weight=weight)
    est.predict(X_test)
    est.score(X_test.iloc[:50], Y.iloc[:50])
    pd.testing.assert_frame_equal(X, X_before)
    pd.testing.assert_frame_equal(Y, Y_before)
    pd.testing.assert_frame_equal(X_test, test_before)
    np.testing.assert_array_equal(weight, 1.0)


def test_predict_before_fit_raises_not_fitted(two_task_data):
    X, _, _, _ = two_task_data
    for est in ESTIMATORS.values():
        with pytest.raises(NotFittedError):
            clone(est).predict(X)


def test_predict_with_missing_column_names_it(two_task_data):
    X, Y, X_test, _ = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=1).fit(X, Y)
    with pytest.raises(ValueError, match=re.escape("missing columns seen in fit: 'age'")):
        est.predict(X_test.drop(columns="age"))
    # Column order does not matter and extra columns are ignored.
    shuffled = X_test[["noise", "income", "age", "city"]].assign(extra=1)
    np.testing.assert_array_equal(est.predict_proba(shuffled)[0], est.predict_proba(X_test)[0])


def test_wrong_number_of_rows_in_y(two_task_data):
    X, Y, _, _ = two_task_data
    with pytest.raises(ValueError, match=re.escape("y has 899 rows but X has 900")):
        clone(ESTIMATORS["mmoe"]).fit(X, Y.iloc[:-1])


def test_non_numeric_strings_in_declared_numeric_column(two_task_data):
    X, Y, _, _ = two_task_data
    X = X.assign(age=X.age.astype(str))
    X.loc[3, "age"] = "forty"
    est = clone(ESTIMATORS["mmoe"]).set_params(encoder=FeatureEncoder(numeric_columns=["age"]))
    with pytest.raises(ValueError, match=re.escape("'age': ['forty']")):
        est.fit(X, Y)


def test_infinite_values_name_the_column(two_task_data):
    X, Y, _, _ = two_task_data
    X = X.assign(income=X.income.replace(X.income.iloc[0], np.inf))
    with pytest.raises(ValueError, match=re.escape("Numeric columns 'income' contain infinite")):
        clone(ESTIMATORS["mmoe"]).fit(X, Y)


@pytest.mark.parametrize(
    "task_types, message",
    [
        ({"clicked": "ordinal"}, "Unknown task type 'ordinal' for task 'clicked'"),
        ({"price": "binary"}, "task_types names tasks that are not in Y: 'price'"),
        (["binary"], "task_types has 1 entries but Y has 2 tasks"),
    ],
)
def test_bad_task_types(task_types, message, two_task_data):
    X, Y, _, _ = two_task_data
    with pytest.raises(ValueError, match=re.escape(message)):
        clone(ESTIMATORS["mmoe"]).set_params(task_types=task_types).fit(X, Y)


def test_task_without_labels_or_with_one_class_is_named(two_task_data):
    X, Y, _, _ = two_task_data
    with pytest.raises(ValueError, match=re.escape("Task 'bought' has no labels")):
        clone(ESTIMATORS["mmoe"]).fit(X, Y.assign(bought=np.nan))
    with pytest.raises(ValueError, match=re.escape("Task 'bought' has only one class")):
        clone(ESTIMATORS["mmoe"]).fit(X, Y.assign(bought=1))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_experts": 0}, "'n_experts' parameter"),
        ({"n_experts": -2}, "'n_experts' parameter"),
        ({"learning_rate_init": -0.1}, "'learning_rate_init' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"dropout": 1.5}, "'dropout' parameter"),
        ({"expert_hidden_sizes": ()}, "expert_hidden_sizes must be a sequence of positive"),
        ({"expert_hidden_sizes": (16, 0)}, "expert_hidden_sizes must be a sequence of positive"),
        ({"tower_hidden_sizes": (-1,)}, "tower_hidden_sizes must be a sequence of positive"),
        ({"gating": "soft"}, "'gating' parameter"),
    ],
)
def test_invalid_hyperparameters_are_named(params, message, two_task_data):
    X, Y, _, _ = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(**params)  # accepted until fit
    with pytest.raises(ValueError, match=re.escape(message)):
        est.fit(X, Y)


def test_ple_needs_an_expert_per_gate(two_task_data):
    X, Y, _, _ = two_task_data
    est = PLEEstimator(n_shared_experts=0, n_task_experts=0)
    with pytest.raises(ValueError, match="n_shared_experts \\+ n_task_experts must be >= 1"):
        est.fit(X, Y)


def test_verbose_zero_prints_nothing_and_one_reports_epochs(capsys, two_task_data):
    X, Y, _, _ = two_task_data
    est = clone(ESTIMATORS["shared_bottom"]).set_params(max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(X, Y)
    assert capsys.readouterr().out == ""
    est.set_params(verbose=1).fit(X, Y)
    captured = capsys.readouterr()
    shown = captured.out + captured.err  # tqdm writes its bar to stderr
    assert "epoch 2/2" in shown and "clicked=" in shown and "bought=" in shown
