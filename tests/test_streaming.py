"""Streaming fit and lazy prediction on Dask DataFrames.

With one batch per epoch (``batch_size`` at least the number of rows) the
order in which rows arrive cannot matter, so a streaming fit must equal the
in-memory fit of the same rows: that pins NaN masks, sample and class
weights, every loss-weighting strategy, validation and warm starts to the
in-memory path.
"""

import itertools
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

dd = pytest.importorskip("dask.dataframe")
import dask

from skmtl import FeatureEncoder, MMoEClassifierRegressor, PLEEstimator
from skmtl._streaming import StreamSource, prefetched
from skmtl._targets import LabelSummary, fit_tasks, fit_tasks_from_summaries
from skmtl._training import Batch, global_batch_sizes
from skmtl.nn import FeatureBatch
from skmtl.weighting import DynamicWeights
from tests.conftest import make_two_task_frame


@pytest.fixture(autouse=True)
def _synchronous_dask():
    # One thread for Dask's own work: the tests measure skmtl, and the machine
    # running them may be small.
    with dask.config.set(scheduler="synchronous"):
        yield


def _frame(n=400, seed=0):
    X, Y = make_two_task_frame(n, random_state=seed)
    Y = Y.astype(float)
    Y.loc[Y.index % 5 == 0, "bought"] = np.nan  # rows outside one task
    weights = pd.Series(np.random.RandomState(seed).uniform(0.2, 2.0, n), name="w")
    return X.reset_index(drop=True), Y, weights


def _dask(*frames, npartitions=4):
    return [dd.from_pandas(f, npartitions=npartitions, sort=False) for f in frames]


# -- label summaries -----------------------------------------------------------


def _summaries(Y, n_parts=3):
    parts = np.array_split(np.arange(len(Y)), n_parts)
    merged = []
    for name in Y.columns:
        summaries = [LabelSummary.of(name, Y[name].iloc[p]) for p in parts]
        total = summaries[0]
        for s in summaries[1:]:
            total = total.merge(s)
        merged.append(total)
    return merged


def _states(tasks):
    return [t.get_state() for t in tasks]


def test_tasks_from_summaries_equal_tasks_from_labels(mixed_task_data):
    _, Y = mixed_task_data
    Y = Y.assign(
        count=np.arange(len(Y)) % 4,
        flag=np.arange(len(Y)) % 3 == 0,
        spend=Y.spend.where(Y.index % 7 != 0),
    )
    types = {"count": "poisson"}
    in_memory = fit_tasks(Y, types)
    streamed = fit_tasks_from_summaries(_summaries(Y), types)
    assert [type(t) for t in streamed] == [type(t) for t in in_memory]
    for a, b in zip(_states(streamed), _states(in_memory)):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-12)
            else:
                assert a[key] == b[key], key


def test_summary_of_continuous_labels_keeps_moments_only():
    values = pd.Series(np.random.RandomState(0).normal(size=3000))
    (summary,) = _summaries(values.to_frame("y"))
    assert summary.distinct_labels is None
    assert summary.mean == pytest.approx(values.mean())
    assert summary.std == pytest.approx(values.std(ddof=0))
    (task,) = fit_tasks_from_summaries([summary], "auto")
    assert task.kind == "regression"
    with pytest.raises(ValueError, match="too many distinct non-integer labels"):
        fit_tasks_from_summaries([summary], {"y": "binary"})


def test_summary_errors_match_in_memory_errors():
    Y = pd.DataFrame({"spend": [1.0, 2.5, "lots", 4.0], "count": [1, -2, 3, 0]})
    for types in ({"spend": "regression"}, {"count": "poisson"}):
        with pytest.raises(ValueError) as in_memory:
            fit_tasks(Y[list(types)], types)
        with pytest.raises(ValueError, match=re.escape(str(in_memory.value))):
            fit_tasks_from_summaries(_summaries(Y[list(types)], 2), types)


# -- the streaming batch source ------------------------------------------------


class _Rank:
    def __init__(self, rank, world_size):
        self.rank, self.world_size = rank, world_size


def _source(lengths, batch_size, comm=None, buffer_partitions=2, seed=0):
    """A StreamSource over partitions whose rows hold their global row number."""
    offsets = np.cumsum(lengths) - lengths

    def load(numbers):
        return [
            pd.DataFrame({"row": offsets[i] + np.arange(lengths[i])}) for i in numbers
        ]

    def encode(frame, rows, number):
        assert rows is None or len(rows) > 0
        values = frame.row.to_numpy(copy=True)
        values = torch.as_tensor(values if rows is None else values[rows])
        n_rows = len(values)
        features = FeatureBatch.from_arrays(values[:, None], torch.zeros(n_rows, 0))
        return Batch(features, values[:, None].float(), torch.ones(n_rows, 1))

    return StreamSource(
        lengths, load, encode, batch_size, seed, comm, buffer_partitions
    )


def _rows(batches):
    return [b.features.categorical[:, 0].tolist() for b in batches]


def test_stream_source_visits_every_row_once_per_epoch():
    lengths = np.array([50, 0, 7, 31, 0, 64, 13])
    source = _source(lengths, batch_size=16, buffer_partitions=2)
    epoch = _rows(source.batches(1))
    assert len(epoch) == len(source) == len(global_batch_sizes(165, 16, 1))
    assert [len(b) for b in epoch] == [16] * 10 + [5]
    assert sorted(np.concatenate(epoch)) == list(range(lengths.sum()))
    assert _rows(source.batches(1)) == epoch  # seeded
    assert _rows(source.batches(2)) != epoch
    assert _rows(_source(lengths, 16, buffer_partitions=2).batches(1)) == epoch


def test_stream_source_ranks_share_the_global_batches():
    lengths = np.array([50, 0, 7, 31, 64, 13])
    whole = _rows(_source(lengths, batch_size=32).batches(3))
    ranks = [_rows(_source(lengths, 16, _Rank(r, 2)).batches(3)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(whole)
    for k, rows in enumerate(whole):
        assert ranks[0][k] + ranks[1][k] == rows
        assert min(len(ranks[0][k]), len(ranks[1][k])) >= 1


def test_prefetched_raises_in_the_caller_and_stops_its_thread():
    def failing():
        yield 1
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        list(prefetched(failing()))
    items = prefetched(iter(range(100)))
    assert next(items) == 0
    items.close()
    assert not [t for t in threading.enumerate() if t.name == "skmtl-prefetch"]


# -- fit -----------------------------------------------------------------------


def _pair(params, X, Y, weights=None, **fit_kw):
    """The same estimator fitted in memory and streamed from 4 partitions."""
    params = {
        "max_iter": 3,
        "batch_size": 1024,
        "random_state": 0,
        "encoder": FeatureEncoder(n_bins=0),
        **params,
    }
    memory = MMoEClassifierRegressor(**params).fit(
        X, Y, sample_weight=weights, **fit_kw
    )
    dX, dY = _dask(X, Y)
    dweights = None if weights is None else _dask(weights)[0]
    dask_kw = {k: tuple(_dask(*v)) if k == "eval_set" else v for k, v in fit_kw.items()}
    streamed = MMoEClassifierRegressor(**params).fit(
        dX, dY, sample_weight=dweights, **dask_kw
    )
    return memory, streamed


def _assert_same_model(a, b, X, atol=1e-5):
    for pa, pb in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_allclose(pa, pb, atol=atol)
    assert [t.get_state() for t in a.tasks_] == [t.get_state() for t in b.tasks_]


@pytest.mark.parametrize(
    "loss_weights", [None, "uncertainty", "gradnorm", DynamicWeights(decay=0.5)]
)
def test_streamed_full_batch_fit_equals_in_memory_fit(loss_weights):
    X, Y, weights = _frame()
    memory, streamed = _pair(
        {
            "loss_weights": loss_weights,
            "class_weight": "balanced",
            "buffer_partitions": 1,
        },
        X,
        Y,
        weights,
    )
    _assert_same_model(memory, streamed, X)
    for a, b in zip(memory.history_, streamed.history_):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["task_weights"] == pytest.approx(b["task_weights"], rel=1e-5)


def test_streamed_fit_with_eval_set_stops_like_in_memory_fit():
    X, Y, _ = _frame(500)
    params = {
        "early_stopping": True,
        "n_iter_no_change": 1,
        "max_iter": 8,
        "learning_rate_init": 0.05,
    }
    memory, streamed = _pair(params, X[:400], Y[:400], eval_set=(X[400:], Y[400:]))
    assert streamed.n_iter_ == memory.n_iter_ < 8
    assert streamed.best_iteration_ == memory.best_iteration_
    for a, b in zip(memory.history_, streamed.history_):
        assert a["valid_score_per_task"] == pytest.approx(
            b["valid_score_per_task"], abs=1e-6
        )
    _assert_same_model(memory, streamed, X)


def test_streamed_fit_learns_and_is_reproducible():
    X, Y, _ = _frame(1200)
    dX, dY = _dask(X[:900], Y[:900], npartitions=5)
    params = {"max_iter": 4, "batch_size": 64, "random_state": 0}
    first = MMoEClassifierRegressor(**params).fit(dX, dY)
    second = MMoEClassifierRegressor(**params).fit(dX, dY)
    np.testing.assert_array_equal(first.predict_proba(X)[0], second.predict_proba(X)[0])
    memory = MMoEClassifierRegressor(**params).fit(X[:900], Y[:900])
    streamed_auc = first.score_tasks(X[900:], Y[900:])
    memory_auc = memory.score_tasks(X[900:], Y[900:])
    for task in memory_auc:
        assert streamed_auc[task] > 0.8
        assert abs(streamed_auc[task] - memory_auc[task]) < 0.05


def test_streamed_warm_start_continues_the_epochs(capsys):
    X, Y, _ = _frame()
    dX, dY = _dask(X, Y)
    params = {"batch_size": 64, "random_state": 0, "verbose": 1}
    straight = PLEEstimator(max_iter=3, **params).fit(dX, dY)
    warm = PLEEstimator(max_iter=2, warm_start=True, **params).fit(dX, dY)
    warm.set_params(max_iter=1).fit(dX, dY)
    assert warm.n_iter_ == 3 and [h["epoch"] for h in warm.history_] == [1, 2, 3]
    _assert_same_model(straight, warm, X, atol=1e-6)
    assert "epoch 3/3" in capsys.readouterr().err


def test_validation_share_holds_out_whole_partitions():
    X, Y, _ = _frame(600)
    dX, dY = _dask(X, Y, npartitions=6)
    est = MMoEClassifierRegressor(
        max_iter=6,
        early_stopping=True,
        validation_fraction=0.3,
        n_iter_no_change=2,
        batch_size=64,
        random_state=0,
    ).fit(dX, dY)
    assert "valid_score_per_task" in est.history_[-1]
    from skmtl import _dask as skmtl_dask
    from skmtl._distributed import SingleProcess

    data = skmtl_dask.training_data(est, dX, dY, None, False, SingleProcess())
    train, valid = data.split(0.3, np.random.RandomState(0))
    assert set(train.numbers).isdisjoint(valid.numbers)
    assert sorted([*train.numbers, *valid.numbers]) == list(range(6))
    assert valid.n_samples >= 0.3 * 600 and len(valid.numbers) == 2


# -- prediction ----------------------------------------------------------------


def test_dask_prediction_is_lazy_and_equals_pandas_prediction():
    X, Y, _ = _frame()
    est = MMoEClassifierRegressor(max_iter=2, random_state=0).fit(X, Y)
    dX, dY = _dask(X, Y, npartitions=3)
    predictions = est.predict(dX)
    probas = est.predict_proba(dX)
    assert dask.is_dask_collection(predictions) and predictions.numblocks[0] == 3
    assert all(dask.is_dask_collection(p) for p in probas)
    np.testing.assert_array_equal(predictions.compute(), est.predict(X))
    for lazy, eager in zip(dask.compute(*probas), est.predict_proba(X)):
        np.testing.assert_allclose(lazy, eager, rtol=1e-12)
    assert est.score_tasks(dX, dY) == pytest.approx(est.score_tasks(X, Y), abs=1e-12)


def test_dask_prediction_of_a_single_task_is_one_dimensional(mixed_task_data):
    X, Y = mixed_task_data
    est = MMoEClassifierRegressor(max_iter=1, random_state=0).fit(X, Y.converted)
    (dX,) = _dask(X)
    assert est.predict(dX).ndim == 1
    np.testing.assert_array_equal(est.predict(dX).compute(), est.predict(X))
    np.testing.assert_allclose(est.predict_proba(dX).compute(), est.predict_proba(X))
    regressor = MMoEClassifierRegressor(max_iter=1, random_state=0).fit(X, Y)
    assert regressor.predict_proba(dX)[2] is None


# -- bad input -----------------------------------------------------------------


def test_mismatched_partitions_are_an_error():
    X, Y, _ = _frame(100)
    (dX,) = _dask(X, npartitions=3)
    (dY,) = _dask(Y, npartitions=2)
    with pytest.raises(ValueError, match="X has 3, y has 2 partitions"):
        MMoEClassifierRegressor().fit(dX, dY)
    with pytest.raises(TypeError, match="y must be a Dask DataFrame or Series"):
        MMoEClassifierRegressor().fit(dX, Y)


def test_partitions_of_different_lengths_are_an_error():
    X, Y, _ = _frame(100)
    dX = dd.from_delayed([dask.delayed(X[:60]), dask.delayed(X[60:])], meta=X[:0])
    dY = dd.from_delayed([dask.delayed(Y[:50]), dask.delayed(Y[50:])], meta=Y[:0])
    # Both partitions are wrong; the scan reports the first it meets.
    message = "Partition (0: X has 60|1: X has 40), y has 50 rows"
    with pytest.raises(ValueError, match=message):
        MMoEClassifierRegressor(max_iter=1).fit(dX, dY)


def test_missing_column_and_strings_in_a_numeric_partition_are_named():
    X, Y, _ = _frame(120)
    est = MMoEClassifierRegressor(max_iter=1, random_state=0).fit(X, Y)
    (dX,) = _dask(X.drop(columns="age"))
    with pytest.raises(ValueError, match="X is missing columns seen in fit: 'age'"):
        est.predict(dX)
    bad = X.astype({"age": object})
    bad.loc[100, "age"] = "forty"
    dX, dY = _dask(bad, Y, npartitions=3)
    with pytest.raises(ValueError, match=r"partition 2 of the Dask DataFrame.*'age'"):
        est.set_params(warm_start=True).fit(dX, dY)
    with pytest.raises(ValueError, match=r"partition 2 of the Dask DataFrame.*'age'"):
        est.predict(dX).compute()


def test_empty_partitions_and_bad_weights():
    X, Y, weights = _frame(120)
    cuts = [0, 50, 50, 120]

    def split(frame):
        pieces = [dask.delayed(frame[a:b]) for a, b in itertools.pairwise(cuts)]
        return dd.from_delayed(pieces, meta=frame[:0])

    dX, dY = split(X), split(Y)
    est = MMoEClassifierRegressor(max_iter=1, batch_size=32, random_state=0)
    est.fit(dX, dY, sample_weight=split(weights))
    assert est.predict(dX).compute().shape == (120, 2)
    with pytest.raises(
        ValueError, match="finite and non-negative; it is not in partitions 2"
    ):
        est.fit(dX, dY, sample_weight=split(weights.where(weights.index < 60, -1.0)))


def test_scaling_guide_streaming_example_runs(tmp_path, monkeypatch):
    guide = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
    code = re.search(
        r"## Streaming a Dask DataFrame.*?```python\n(.*?)```",
        guide.read_text(),
        re.DOTALL,
    )
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.group(1), str(guide), "exec"), namespace)  # noqa: S102
    assert len(namespace["probas"]) == 2
    assert dask.is_dask_collection(namespace["probas"][0])
    assert (
        min(
            namespace["est"]
            .score_tasks(namespace["data"].test.data, namespace["data"].test.target)
            .values()
        )
        > 0.7
    )


# -- funnels and domains -------------------------------------------------------


def test_funnel_streams_like_in_memory():
    from skmtl import ESMMEstimator
    from skmtl.datasets import make_funnel_synthetic

    X, Y = make_funnel_synthetic(600, random_state=0)
    kw = {"funnel": list(Y.columns), "max_iter": 2, "batch_size": 1000, "random_state": 0}
    kw["encoder"] = FeatureEncoder(n_bins=0)  # exact statistics either way
    in_memory = ESMMEstimator(**kw).fit(X, Y)
    X_dd, Y_dd = _dask(X, Y)
    streamed = ESMMEstimator(**kw).fit(X_dd, Y_dd, eval_set=(X_dd, Y_dd))
    lazy = streamed.predict_proba(X_dd)
    assert lazy.ndim == 3
    np.testing.assert_allclose(lazy.compute(), in_memory.predict_proba(X), atol=1e-6)
    scores = streamed.score_tasks(X_dd, Y_dd)
    assert scores == pytest.approx(streamed.score_tasks(X, Y))


def test_star_streams_with_its_domain_column():
    from skmtl import STAREstimator

    X, Y, _ = _frame()
    kw = {"domain_column": "city", "max_iter": 2, "batch_size": 1000, "random_state": 0}
    kw["encoder"] = FeatureEncoder(n_bins=0)
    in_memory = STAREstimator(**kw).fit(X, Y)
    streamed = STAREstimator(**kw).fit(*_dask(X, Y))
    np.testing.assert_allclose(
        streamed.predict(_dask(X)[0]).compute(), in_memory.predict(X), atol=1e-6
    )
