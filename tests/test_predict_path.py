"""The serving path: small frames, one row at a time, and the vectorised one agree."""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_two_task_frame

from skmtl import FeatureEncoder, MMoEClassifierRegressor
from skmtl._training import predict_logits
from skmtl.nn import FeatureBatch, MMoE


@pytest.fixture(scope="module")
def fitted():
    X, Y = make_two_task_frame()
    est = MMoEClassifierRegressor(n_experts=3, max_iter=2, random_state=0)
    return est.fit(X.iloc[:600], Y.iloc[:600]), X.iloc[600:]


@pytest.mark.parametrize("rows", [1, 2, 100, 129])
def test_predict_proba_of_few_rows_equals_those_rows_of_a_batch(fitted, rows):
    """Small frames (one row, dict lookups) predict what a large frame does."""
    est, X = fitted
    whole = est.predict_proba(X)
    for start in (0, 7, len(X) - rows):
        part = est.predict_proba(X.iloc[start : start + rows])
        for task_whole, task_part in zip(whole, part):
            np.testing.assert_allclose(
                task_part, task_whole[start : start + rows], rtol=1e-6, atol=1e-7
            )


def test_predict_leaves_a_training_network_in_eval_mode(fitted):
    est, X = fitted
    est.module_.train()
    first = est.predict_proba(X.iloc[:5])
    assert not any(m.training for m in est.module_.modules())
    np.testing.assert_array_equal(est.predict_proba(X.iloc[:5])[0], first[0])


def _mixed_frame():
    return pd.DataFrame(
        {
            "city": pd.array(["paris", "rome", None, "oslo"], dtype="string"),
            "plain": np.array(["a", "b", "a", None], dtype=object),
            "ints": [1, 2, 3, 1],
            "flag": [True, False, True, True],
            "numpy_str": np.array([np.str_("x"), "y", "x", "y"], dtype=object),
            "mixed": np.array(["1", 1, 2.5, None], dtype=object),
            "age": [30.0, np.nan, 41.0, 52.0],
        }
    )


@pytest.mark.parametrize("row", range(4))
def test_one_row_codes_equal_the_vectorised_ones_for_every_dtype(row):
    frame = _mixed_frame()
    enc = FeatureEncoder(categorical_columns=["ints"], n_bins=2).fit(frame)
    large = pd.concat([frame] * 50, ignore_index=True)  # the vectorised path
    whole = enc.encode(large)
    for rows in (large.iloc[[row]], large.iloc[[row, row + 4]], large.iloc[:130]):
        part = enc.encode(rows)
        positions = rows.index.to_numpy()
        np.testing.assert_array_equal(part.categorical, whole.categorical[positions])
        np.testing.assert_array_equal(part.numeric, whole.numeric[positions])


def test_one_row_of_string_columns_only_gets_the_codes_of_a_large_frame():
    frame = _mixed_frame()[["city", "plain"]].astype({"plain": "str"})
    enc = FeatureEncoder().fit(frame)
    whole = enc.encode(pd.concat([frame] * 50, ignore_index=True))
    for row in range(4):
        part = enc.encode(frame.iloc[[row]])
        np.testing.assert_array_equal(part.categorical, whole.categorical[[row]])


def test_one_row_with_a_list_in_a_scalar_column_names_the_column():
    frame = _mixed_frame()
    enc = FeatureEncoder().fit(frame)
    bad = frame.iloc[[0]].astype({"plain": object})
    bad.at[0, "plain"] = ["a", "b"]
    message = "'plain': a list in a column that held scalars in fit"
    with pytest.raises(TypeError, match=re.escape(message)):
        enc.encode(bad)


def test_mmoe_gates_sum_to_one_and_match_a_loop_over_tasks():
    torch.manual_seed(0)
    net = MMoE([5, 4], n_numeric=2, output_sizes=[1, 1, 1], n_experts=4).eval()
    x = FeatureBatch.from_arrays(torch.randint(0, 4, (6, 2)), torch.randn(6, 2))
    h = net.input(x)
    gates = net.gate_weights(h)  # (T, B, E)
    torch.testing.assert_close(gates.sum(-1), torch.ones(3, 6))
    logits = net.gates(h).view(6, 3, 4)
    for t in range(3):
        torch.testing.assert_close(gates[t], torch.softmax(logits[:, t], dim=-1))
    experts = net.experts(h)  # (E, B, H)
    mixed = net.represent(h)
    for t in range(3):
        expected = (gates[t].T.unsqueeze(-1) * experts).sum(0)
        torch.testing.assert_close(mixed[t], expected)


def test_predict_logits_of_one_row_equals_that_row_of_a_batch():
    torch.manual_seed(0)
    net = MMoE([5, 4], n_numeric=2, output_sizes=[1, 2], n_experts=4)
    x = FeatureBatch.from_arrays(torch.randint(0, 4, (9, 2)), torch.randn(9, 2))
    whole = predict_logits(net, x, batch_size=4)
    for i in range(9):
        one = predict_logits(net, x.rows(slice(i, i + 1)), batch_size=4)
        torch.testing.assert_close(one, whole[i : i + 1])
