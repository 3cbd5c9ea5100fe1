"""``precision``: bf16 autocast forward passes, float32 state, float64 outputs."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import skmtl
from skmtl import MMoEClassifierRegressor, PLEEstimator, _device

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _mmoe(precision, **params):
    defaults = {"n_experts": 3, "max_iter": 4, "batch_size": 64, "random_state": 0}
    return MMoEClassifierRegressor(precision=precision, **{**defaults, **params})


def _aucs(est, X, Y):
    return [
        roc_auc_score(Y[task], proba[:, 1])
        for task, proba in zip(Y.columns, est.predict_proba(X))
    ]


def test_bf16_is_not_fp32_but_learns_as_well(two_task_data):
    """Autocast changes the arithmetic, not what the model learns."""
    X, Y, X_test, Y_test = two_task_data
    fp32 = _mmoe("fp32").fit(X, Y)
    bf16 = _mmoe("bf16").fit(X, Y)
    assert (fp32.precision_, bf16.precision_) == ("fp32", "bf16")
    difference = max(
        np.abs(a - b).max()
        for a, b in zip(fp32.predict_proba(X_test), bf16.predict_proba(X_test))
    )
    # Equal predictions would mean autocast never ran; bf16 keeps ~3 digits.
    assert 0 < difference < 0.1
    aucs = zip(_aucs(fp32, X_test, Y_test), _aucs(bf16, X_test, Y_test))
    for auc_fp32, auc_bf16 in aucs:
        assert auc_bf16 > 0.85 and abs(auc_bf16 - auc_fp32) < 0.02


def test_bf16_keeps_float32_weights_and_returns_float64(mixed_task_data):
    X, Y = mixed_task_data
    est = PLEEstimator(
        n_levels=2, max_iter=3, batch_size=64, random_state=0, precision="bf16"
    ).fit(X, Y)
    assert {p.dtype for p in est.module_.parameters()} == {torch.float32}
    assert all(np.isfinite(record["train_loss"]) for record in est.history_)
    predictions = est.predict(X)
    spend = predictions[:, list(Y.columns).index("spend")].astype(float)
    assert np.corrcoef(spend, Y["spend"])[0, 1] > 0.9
    probabilities = [p for p in est.predict_proba(X) if p is not None]
    assert probabilities and all(p.dtype == np.float64 for p in probabilities)


def test_bf16_fit_is_reproducible(two_task_data):
    X, Y, X_test, _ = two_task_data
    first, second = (_mmoe("bf16").fit(X, Y) for _ in range(2))
    for a, b in zip(first.predict_proba(X_test), second.predict_proba(X_test)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("native", [False, True])
def test_auto_is_bf16_only_on_native_hardware(two_task_data, monkeypatch, native):
    X, Y, _, _ = two_task_data
    monkeypatch.setattr(_device, "_cpu_has_native_bf16", lambda: native)
    est = _mmoe("auto", device="cpu", max_iter=1).fit(X, Y)
    assert est.precision_ == ("bf16" if native else "fp32")
    assert est.get_params()["precision"] == "auto"


def test_a_bf16_model_predicts_the_same_after_save_load_and_pickle(
    two_task_data, tmp_path
):
    X, Y, X_test, _ = two_task_data
    est = _mmoe("bf16", max_iter=1).fit(X, Y)
    path = tmp_path / "model.safetensors"
    est.save(path)
    for copy in (skmtl.load(path), pickle.loads(pickle.dumps(est))):
        assert copy.precision_ == "bf16"
        for a, b in zip(est.predict_proba(X_test), copy.predict_proba(X_test)):
            np.testing.assert_array_equal(a, b)


def test_an_unknown_precision_is_named(two_task_data):
    X, Y, _, _ = two_task_data
    with pytest.raises(ValueError, match="precision"):
        _mmoe("fp16").fit(X, Y)
