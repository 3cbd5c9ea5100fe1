"""Cross-stitch networks: the initial matrices, the mixing, learning."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from skmtl import CrossStitchEstimator
from skmtl.nn import CrossStitch, FeatureBatch
from skmtl.nn._cross_stitch import _stitch_init_matrix

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("n_tasks, init", [(1, 0.9), (2, 0.9), (4, 0.7), (3, 1.0)])
def test_initial_stitches_are_near_the_identity_with_rows_summing_to_one(n_tasks, init):
    matrix = _stitch_init_matrix(n_tasks, init)
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(n_tasks))
    if n_tasks > 1:
        assert torch.all(matrix.diagonal() == init)
        off = matrix[~torch.eye(n_tasks, dtype=torch.bool)]
        torch.testing.assert_close(
            off, torch.full_like(off, (1 - init) / (n_tasks - 1))
        )
    net = CrossStitch(
        [4], 3, [1] * n_tasks, column_hidden_sizes=(5, 5), stitch_init=init
    )
    assert net.stitches.shape == (2, n_tasks, n_tasks)
    torch.testing.assert_close(net.stitches[1], matrix)


def _inputs(n_rows=6):
    torch.manual_seed(0)
    return FeatureBatch.from_arrays(
        torch.randint(0, 4, (n_rows, 1)), torch.randn(n_rows, 3)
    )


def test_columns_and_stitches_match_a_loop_over_tasks():
    net = CrossStitch([4], 3, [1, 2, 1], column_hidden_sizes=(5, 4))
    with torch.no_grad():
        net.stitches.add_(0.1 * torch.randn_like(net.stitches))
    x = net.input(_inputs())
    h = [x] * 3
    for layer, alpha in zip(net.columns, net.stitches):
        own = [torch.relu(h[k] @ layer.weight[k] + layer.bias[k]) for k in range(3)]
        h = [sum(alpha[k, j] * own[j] for j in range(3)) for k in range(3)]
    torch.testing.assert_close(net.represent(x), torch.stack(h))


def test_identity_stitches_keep_the_columns_apart():
    net = CrossStitch([4], 3, [1, 1], column_hidden_sizes=(5, 4), stitch_init=1.0)
    net(_inputs())[:, 0].sum().backward()
    for layer in net.columns:  # task 1's column gets nothing from task 0's loss
        assert layer.weight.grad[1].abs().sum() == 0 and layer.weight.grad[0].any()
    assert net.stitches.grad[:, 0, 1].any()  # but learns whether to read it


def test_one_hidden_layer_at_least():
    with pytest.raises(ValueError, match="column_hidden_sizes needs at least one"):
        CrossStitch([4], 3, [1, 1], column_hidden_sizes=())


def test_estimator_learns_both_tasks_and_its_stitches(two_task_data):
    X, Y, X_test, Y_test = two_task_data
    est = CrossStitchEstimator(
        column_hidden_sizes=(16,),
        max_iter=8,
        batch_size=64,
        device="cpu",
        random_state=0,
    ).fit(X, Y)
    probas = est.predict_proba(X_test)
    for k, task in enumerate(Y.columns):
        assert roc_auc_score(Y_test[task], probas[k][:, 1]) >= 0.85, task
    stitches = est.module_.stitches.detach()
    assert not torch.allclose(stitches, _stitch_init_matrix(2, 0.9).expand_as(stitches))


def test_same_seed_same_model_at_two_threads(two_task_data):
    X, Y, X_test, _ = two_task_data
    est = CrossStitchEstimator(
        column_hidden_sizes=(8,), dropout=0.1, max_iter=2, device="cpu", random_state=0
    )
    torch.set_num_threads(2)  # restored by torch_one_thread
    a = est.fit(X, Y).predict_proba(X_test)
    b = clone(est).fit(X, Y).predict_proba(X_test)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
