"""Funnels: joint labels, ESMM and AITM, entire-space learning, the generator."""

import re

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from skmtl import AITMEstimator, ESMMEstimator, SharedBottomEstimator
from skmtl._funnel import funnel_probabilities, joint_targets
from skmtl.datasets import make_funnel_synthetic
from skmtl.nn import AITM, ESMM, FeatureBatch, joint_logits

pytestmark = pytest.mark.usefixtures("torch_one_thread")

_FAST = {"max_iter": 2, "batch_size": 128, "device": "cpu", "random_state": 0}
FUNNEL = ["click", "purchase"]


def expected_auc(p_true, score):
    """ROC AUC of ``score`` against labels drawn with probability ``p_true``.

    Each row counts as a positive with weight p and a negative with weight
    1 - p: the AUC expected over the draws, without their noise.
    """
    n = len(score)
    labels = np.r_[np.ones(n), np.zeros(n)]
    return roc_auc_score(
        labels, np.r_[score, score], sample_weight=np.r_[p_true, 1 - p_true]
    )


@pytest.fixture(scope="module")
def funnel_data():
    X, Y, proba = make_funnel_synthetic(30_000, return_proba=True, random_state=0)
    return X.iloc[:20_000], Y.iloc[:20_000], X.iloc[20_000:], proba.iloc[20_000:]


@pytest.fixture(scope="module")
def small():
    """Training and test rows (with labels) for behaviour, not accuracy."""
    X, Y = make_funnel_synthetic(4_000, click_rate=0.2, random_state=0)
    return X.iloc[:3_000], Y.iloc[:3_000], X.iloc[3_000:], Y.iloc[3_000:]


# -- the network side ------------------------------------------------------------


def test_joint_logits_are_the_logits_of_products_of_stage_probabilities():
    c = torch.tensor([[0.3, -1.2, 2.0], [-4.0, 3.0, 0.5]], dtype=torch.float64)
    q = torch.sigmoid(c)
    expected = torch.cumprod(q, dim=1)
    torch.testing.assert_close(torch.sigmoid(joint_logits(c)), expected)
    torch.testing.assert_close(joint_logits(c)[:, 0], c[:, 0])  # first stage as is


@pytest.mark.parametrize("value", [-200.0, -40.0, 40.0, 200.0])
def test_joint_logits_stay_finite_and_accurate_at_extremes(value):
    c = torch.full((1, 3), value, requires_grad=True)
    out = joint_logits(c)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(c.grad).all()
    reference = joint_logits(c.detach().double())
    torch.testing.assert_close(out.double(), reference, rtol=1e-5, atol=1e-5)
    if value > 0:  # p_k = sigmoid(v)^k: each stage k loses about log(k) of logit
        assert out[0, 2].item() == pytest.approx(value - np.log(3), abs=1e-3)


def _batch(n_rows, n_stages=2):
    torch.manual_seed(0)
    codes = torch.stack(
        [torch.randint(0, 5, (n_rows,)), torch.randint(0, 3, (n_rows,))], 1
    )
    return FeatureBatch.from_arrays(codes, torch.randn(n_rows, 2))


def test_esmm_outputs_are_products_of_its_towers():
    net = ESMM([5, 3], 2, [1, 1, 1])
    x = _batch(8)
    stages = torch.sigmoid(net.conditional_logits(x))
    torch.testing.assert_close(torch.sigmoid(net(x)), torch.cumprod(stages, dim=1))


def test_funnel_networks_reject_non_binary_outputs():
    for cls in (ESMM, AITM):
        with pytest.raises(ValueError, match=re.escape("output_sizes=[1, 3]")):
            cls([5], 0, [1, 3])


def test_aitm_calibrator_penalises_a_later_stage_above_an_earlier_one():
    net = AITM([5, 3], 2, [1, 1, 1], calibrator_weight=0.5)
    outputs = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 3.0]])
    p = torch.sigmoid(outputs)
    expected = 0.5 * torch.stack(
        [p[0, 1] - p[0, 0], p[1, 2] - p[1, 1]]  # the only increases
    )
    torch.testing.assert_close(net.auxiliary_loss(outputs), expected)
    assert AITM([5], 0, [1]).auxiliary_loss(outputs[:, :1]) is None
    assert (
        AITM([5], 0, [1, 1], calibrator_weight=0).auxiliary_loss(outputs[:, :2]) is None
    )


def test_aitm_first_stage_ignores_later_towers():
    net = AITM([5, 3], 2, [1, 1], tower_hidden_sizes=(6,))
    net(_batch(4))[:, 0].sum().backward()
    # The transfer runs from stage 1 to stage 2, never back.
    assert all(p.grad is None or not p.grad.any() for p in net.transfer.parameters())


# -- joint labels ---------------------------------------------------------------


def test_nan_and_zero_after_a_negative_stage_mean_the_same():
    with_nan = pd.DataFrame({"click": [1, 1, 0, 0], "purchase": [1, 0, np.nan, 0]})
    with_zero = with_nan.fillna(0)
    a, _ = joint_targets(with_nan, FUNNEL)
    b, _ = joint_targets(with_zero, FUNNEL)
    pd.testing.assert_frame_equal(a, b)
    assert a["purchase"].tolist() == [1, 0, 0, 0]


def test_unknown_stage_after_a_positive_one_is_left_out():
    y = pd.DataFrame({"a": [1, 1, 0], "b": [np.nan, 1, np.nan], "c": [0, np.nan, 0]})
    joint, _ = joint_targets(y, None)
    assert joint["b"].isna().tolist() == [True, False, False]
    # c = 0 is known even where b is not; unknown c after b = 1 stays unknown.
    assert joint["c"].tolist()[0] == 0 and pd.isna(joint["c"].iloc[1])


def test_joint_targets_accept_booleans_and_leave_y_alone():
    y = pd.DataFrame({"click": [True, False, True], "purchase": [True, False, False]})
    before = y.copy()
    joint, is_1d = joint_targets(y, FUNNEL)
    assert joint.to_numpy().tolist() == [[1, 1], [0, 0], [1, 0]] and not is_1d
    pd.testing.assert_frame_equal(y, before)


def test_funnel_order_is_checked_with_every_offending_column_and_count():
    y = pd.DataFrame({"view": [1, 0, 0, 1], "click": [1, 1, 0, 0], "buy": [0, 1, 1, 1]})
    message = (
        "positive 'click' where 'view' is not (1 rows); 'buy' where 'click' is not "
        "(2 rows)."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        joint_targets(y, ["view", "click", "buy"])


def test_funnel_labels_must_be_binary():
    y = pd.DataFrame({"click": ["yes", "no"], "purchase": [0, 2], "other": [0, 5]})
    with pytest.raises(
        ValueError, match="Funnel columns 'click' are not binary"
    ) as info:
        joint_targets(y, FUNNEL)
    assert "'yes'" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("'x' has 3 distinct labels")):
        joint_targets(pd.DataFrame({"x": [0, 1, 2]}), None)


def test_funnel_names_columns_of_y():
    y = pd.DataFrame({"click": [1, 0], "purchase": [0, 0]})
    with pytest.raises(ValueError, match=re.escape("not in y: 'buy'; y has 'click'")):
        joint_targets(y, ["click", "buy"])
    with pytest.raises(ValueError, match="more than once"):
        joint_targets(y, ["click", "click"])


def test_funnel_probabilities_layout():
    logits = np.array([[0.0, np.log(1 / 3)], [2.0, 5.0]])
    proba = funnel_probabilities(logits)
    assert proba.shape == (2, 2, 2)
    np.testing.assert_allclose(proba[0, :, 0], [0.5, 0.25])  # reach click, purchase
    np.testing.assert_allclose(proba[0, :, 1], [0.5, 0.5])  # purchase given click
    assert proba[1, 1, 1] == 1.0  # a later stage above an earlier one is capped


# -- the estimators -------------------------------------------------------------


@pytest.mark.parametrize("cls", [ESMMEstimator, AITMEstimator])
def test_predict_proba_and_scores_follow_the_stages(cls, small):
    X, Y, X_test, Y_test = small
    extra = Y.assign(dwell=np.arange(len(Y)))  # not in the funnel: ignored
    est = cls(funnel=FUNNEL, **_FAST).fit(X, extra)
    assert est.task_names_ == FUNNEL and est.task_types_ == ["binary", "binary"]
    proba = est.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2, 2)
    np.testing.assert_array_equal(proba[:, 0, 0], proba[:, 0, 1])
    assert np.all((proba >= 0) & (proba <= 1))
    if cls is ESMMEstimator:  # joint = product of the conditionals, exactly
        assert np.all(proba[:, 1, 0] <= proba[:, 0, 0])
        np.testing.assert_allclose(proba[:, 1, 0], proba[:, 0, 0] * proba[:, 1, 1])
    scores = est.score_tasks(X_test, Y_test)
    for k, stage in enumerate(FUNNEL):
        joint = Y_test[FUNNEL[: k + 1]].min(axis=1)  # reached stage k
        assert scores[stage] == pytest.approx(roc_auc_score(joint, proba[:, k, 0]))
    assert est.predict(X_test).shape == (len(X_test), 2)


def test_three_stages_eval_set_and_loss_weights_by_stage(small):
    X, Y, _, _ = small
    rng = np.random.RandomState(0)
    Y3 = Y.assign(repeat=Y.purchase * (rng.uniform(size=len(Y)) < 0.3))
    est = ESMMEstimator(loss_weights={"repeat": 2.0}, **_FAST)
    est.fit(X, Y3, eval_set=(X.iloc[:1000], Y3.iloc[:1000]))
    assert est.predict_proba(X.iloc[:5]).shape == (5, 3, 2)
    assert set(est.history_[-1]["valid_score_per_task"]) == {
        "click",
        "purchase",
        "repeat",
    }
    assert est.history_[-1]["task_weights"]["repeat"] == 2.0


def test_one_stage_is_a_binary_classifier_with_one_dimensional_output(small):
    X, Y, X_test, _ = small
    est = AITMEstimator(**_FAST).fit(X, Y["click"])
    assert est.predict(X_test).shape == (len(X_test),)
    assert est.predict_proba(X_test).shape == (len(X_test), 1, 2)


def test_funnel_stages_cannot_be_declared_another_type(small):
    X, Y, _, _ = small
    est = ESMMEstimator(task_types={"purchase": "regression"}, **_FAST)
    with pytest.raises(ValueError, match="task_types may only hold 'auto' or 'binary'"):
        est.fit(X, Y)


def test_warm_start_and_pickling_keep_the_funnel(small, tmp_path):
    X, Y, X_test, _ = small
    est = ESMMEstimator(funnel=FUNNEL, **_FAST).fit(X, Y)
    joblib.dump(est, tmp_path / "esmm.joblib")
    loaded = joblib.load(tmp_path / "esmm.joblib")
    np.testing.assert_array_equal(
        est.predict_proba(X_test), loaded.predict_proba(X_test)
    )
    est.set_params(warm_start=True, max_iter=1).fit(X, Y)
    assert est.n_iter_ == 3


@pytest.mark.parametrize("cls", [ESMMEstimator, AITMEstimator])
def test_same_seed_same_model_at_two_threads(cls, small):
    X, Y, X_test, _ = small
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        est = cls(funnel=FUNNEL, dropout=0.1, **{**_FAST, "max_iter": 1})
        a = est.fit(X[:1000], Y[:1000]).predict_proba(X_test)
        b = clone(est).fit(X[:1000], Y[:1000]).predict_proba(X_test)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(a, b)


def test_calibrator_keeps_purchase_below_click(small):
    X, Y, _, _ = small
    params = {**_FAST, "max_iter": 1, "learning_rate_init": 1e-2}
    violations = {}
    for weight in (0.0, 20.0):
        est = AITMEstimator(funnel=FUNNEL, calibrator_weight=weight, **params).fit(X, Y)
        proba = est.predict_proba(X)
        violations[weight] = np.maximum(proba[:, 1, 0] - proba[:, 0, 0], 0).mean()
    assert violations[20.0] < violations[0.0] / 2


# -- entire-space learning ---------------------------------------------------------


@pytest.fixture(scope="module")
def clicked_only_cvr(funnel_data):
    """A plain binary purchase model trained on the clicked rows only."""
    X, Y, X_test, _ = funnel_data
    clicked = Y["click"].to_numpy() == 1
    baseline = SharedBottomEstimator(
        max_iter=10, batch_size=64, device="cpu", random_state=0
    ).fit(X[clicked], Y["purchase"][clicked])
    return baseline.predict_proba(X_test)[:, 1]


@pytest.mark.parametrize("cls", [ESMMEstimator, AITMEstimator])
def test_entire_space_conversion_ranking_beats_clicked_only_model(
    cls, funnel_data, clicked_only_cvr
):
    """Seed 0, 20,000 impressions (about 2,000 clicks, 300 purchases).

    The conversion probability given a click is known on every row; ranked
    over all test impressions (expected ROC AUC against it), ESMM scores 0.829
    and AITM 0.824 against 0.756 for the clicked-only model (the truth: 0.867).
    The test asks for a margin of 0.04.
    """
    X, Y, X_test, truth = funnel_data
    est = cls(funnel=FUNNEL, max_iter=5, batch_size=256, device="cpu", random_state=0)
    cvr = est.fit(X, Y).predict_proba(X_test)[:, 1, 1]
    ours = expected_auc(truth["cvr"].to_numpy(), cvr)
    baseline = expected_auc(truth["cvr"].to_numpy(), clicked_only_cvr)
    assert ours >= baseline + 0.04, (
        f"{cls.__name__} {ours:.4f} vs clicked-only {baseline:.4f}"
    )


# -- the generator -----------------------------------------------------------------


def test_funnel_generator_rates_and_structure():
    X, Y, proba = make_funnel_synthetic(
        50_000, click_rate=0.05, conversion_rate=0.3, return_proba=True, random_state=1
    )
    assert proba["ctr"].mean() == pytest.approx(0.05, rel=1e-6)
    assert np.average(proba["cvr"], weights=proba["ctr"]) == pytest.approx(
        0.3, rel=1e-6
    )
    assert Y["click"].mean() == pytest.approx(0.05, abs=0.005)
    assert Y["purchase"].sum() / Y["click"].sum() == pytest.approx(0.3, abs=0.03)
    assert not (Y["purchase"] > Y["click"]).any()
    np.testing.assert_allclose(proba["ctcvr"], proba["ctr"] * proba["cvr"])
    # Selection bias: conversion among the clicked rows is higher than overall.
    assert proba["cvr"].mean() < 0.3 - 0.05
    assert not any(pd.api.types.is_numeric_dtype(X[c]) for c in ("item", "segment"))


def test_funnel_generator_is_reproducible():
    a = make_funnel_synthetic(100, random_state=3)
    b = make_funnel_synthetic(100, random_state=3)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples must be an integer >= 1"),
        ({"n_items": 2.5}, "n_items must be an integer"),
        ({"click_rate": 1.0}, re.escape("click_rate must be a number in (0, 1)")),
        ({"conversion_rate": 0}, "conversion_rate must be"),
    ],
)
def test_funnel_generator_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_funnel_synthetic(**{"n_samples": 10, **kwargs})
