"""Behaviour of the estimators: learning, tasks, masking, persistence, model selection."""

import re
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_val_score
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
    X_train, Y_train, X_test, Y_test = two_task_data
    est = clone(ESTIMATORS[name]).fit(X_train, Y_train)
    probas = est.predict_proba(X_test)
    for k, task in enumerate(Y_test.columns):
        auc = roc_auc_score(Y_test[task], probas[k][:, 1])
        assert auc >= 0.85, f"{name}: AUC {auc:.3f} on {task}"
    # The estimator's own score is the mean of the same AUCs.
    expected = np.mean(
        [roc_auc_score(Y_test[t], probas[k][:, 1]) for k, t in enumerate(Y_test.columns)]
    )
    assert est.score(X_test, Y_test) == pytest.approx(expected)


def test_mixed_task_types_train_together(mixed_task_data):
    X, Y = mixed_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(max_iter=20).fit(X.iloc[:900], Y.iloc[:900])
    assert est.task_types_ == ["binary", "multiclass", "regression"]
    assert list(est.classes_[0]) == ["no", "yes"]
    assert list(est.classes_[1]) == ["hi", "lo", "mid"]
    assert est.classes_[2] is None
    scores = est.score_tasks(X.iloc[900:], Y.iloc[900:])
    assert scores["converted"] > 0.9  # ROC AUC
    assert scores["segment"] > 0.8  # accuracy; chance is about 1/3
    assert scores["spend"] > 0.8  # R²
    pred = est.predict(X.iloc[900:])
    assert pred.shape == (300, 3)
    assert set(pred[:, 0]) <= {"no", "yes"}
    proba = est.predict_proba(X.iloc[900:])
    assert proba[0].shape == (300, 2) and proba[1].shape == (300, 3)
    assert proba[2] is None
    np.testing.assert_allclose(proba[1].sum(axis=1), 1.0, rtol=1e-6)


def test_masked_labels_do_not_change_the_model(two_task_data):
    """Whatever the masked rows' labels were before masking, the fit is the same."""
    X, Y, X_test, _ = two_task_data
    outside = np.arange(len(Y)) % 4 == 0
    Y1 = Y.astype(float)
    Y2 = Y.astype(float)
    Y2.loc[outside, "clicked"] = 1 - Y2.loc[outside, "clicked"]
    for frame in (Y1, Y2):
        frame.loc[outside, "clicked"] = np.nan
    est = clone(ESTIMATORS["ple"]).set_params(max_iter=2)
    before = est.fit(X, Y1).predict_proba(X_test)
    np.testing.assert_array_equal(before[0], clone(est).fit(X, Y2).predict_proba(X_test)[0])
    assert est.history_[0]["train_loss_per_task"].keys() == {"clicked", "bought"}
    # The comparison is sensitive: flipping labelled rows does change the model.
    changed = Y1.copy()
    changed.loc[~outside, "clicked"] = 1 - changed.loc[~outside, "clicked"]
    after = clone(est).fit(X, changed).predict_proba(X_test)
    assert not np.array_equal(before[0], after[0])


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
    est = clone(ESTIMATORS["mmoe"]).fit(X[:400], Y[:400])
    assert est.task_names_ == ["task_0", "task_1"]
    assert est.score(X[400:], Y[400:]) > 0.9


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
    assert scores["clicked"] > 0.85
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
def test_cuda_fit_predicts_like_cpu_fit(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = clone(ESTIMATORS["mmoe"]).set_params(device="cuda").fit(X, Y)
    assert est.device_.type == "cuda"
    assert next(est.module_.parameters()).is_cuda
    assert est.score(X_test, Y_test) > 0.85


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
    assert search.score(X_test, Y_test) > 0.85
    by_task = make_task_scorer("bought")(search.best_estimator_, X_test, Y_test)
    assert by_task == search.best_estimator_[-1].score_tasks(
        search.best_estimator_[:-1].transform(X_test), Y_test
    )["bought"]
    est = clone(ESTIMATORS["mmoe"])
    scores = cross_val_score(est, X, Y, cv=3, scoring=make_task_scorer("bought"))
    assert scores.shape == (3,) and scores.min() > 0.8


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
