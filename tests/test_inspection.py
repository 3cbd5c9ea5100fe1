"""MTL gain report and the inspection plots."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from skmtl import MMoEClassifierRegressor, PLEEstimator, SharedBottomEstimator
from skmtl.inspection import plot_gate_heatmap, plot_learning_curves
from skmtl.metrics import mtl_gain

_FAST = {"batch_size": 32, "device": "cpu", "random_state": 0}


def test_mtl_gain_shows_transfer_to_a_task_with_few_labels():
    rng = np.random.RandomState(0)
    n = 1000
    X = pd.DataFrame(rng.normal(size=(n, 10)), columns=[f"f{i}" for i in range(10)])
    shared = (X.f0 * X.f1 > 0).astype(float)
    # "few" is the same non-linear task as "many", labelled on 20 training rows.
    Y = pd.DataFrame({"many": shared, "few": shared})
    Y_train = Y.iloc[:700].copy()
    Y_train.loc[Y_train.index[20:], "few"] = np.nan
    est = SharedBottomEstimator(max_iter=8, loss_weights={"many": 1.0}, **_FAST)
    report = mtl_gain(est, X.iloc[:700], Y_train, X.iloc[700:], Y.iloc[700:])
    assert list(report.index) == ["many", "few"]
    np.testing.assert_allclose(report.gain, report.multi_task - report.single_task)
    assert report.loc["few", "gain"] > 0.05  # learnt from the other task's labels
    assert not report.loc["few", "negative_transfer"]
    assert report.attrs["seesaw"] == bool((report.gain > 0).any() and (report.gain < 0).any())


def test_gate_heatmap_shows_mean_gates(two_task_data):
    X, Y, _, _ = two_task_data
    est = MMoEClassifierRegressor(n_experts=3, max_iter=2, **_FAST).fit(X, Y)
    image = plot_gate_heatmap(est, X).get_images()[0].get_array()
    expected = np.array([g.mean(axis=0) for g in est.gate_weights(X)[0].values()])
    np.testing.assert_allclose(image, expected, rtol=1e-6)
    np.testing.assert_allclose(image.sum(axis=1), 1.0, rtol=1e-5)
    ple = PLEEstimator(n_shared_experts=1, n_task_experts=2, max_iter=1, **_FAST).fit(X, Y)
    assert plot_gate_heatmap(ple, X, level=1).get_images()[0].get_array().shape == (2, 3)
    with pytest.raises(TypeError, match="has no gates"):
        plot_gate_heatmap(SharedBottomEstimator(max_iter=1, **_FAST).fit(X, Y), X)


def test_learning_curves_plot_train_and_validation(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = SharedBottomEstimator(max_iter=3, **_FAST).fit(X, Y, eval_set=(X_test, Y_test))
    ax = plot_learning_curves(est)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["clicked (train)", "clicked (validation)", "bought (train)", "bought (validation)"]
    np.testing.assert_allclose(
        ax.get_lines()[0].get_ydata(), [h["train_loss_per_task"]["clicked"] for h in est.history_]
    )
