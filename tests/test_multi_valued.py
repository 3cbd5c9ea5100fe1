"""Multi-valued (list) columns through estimators: learning, saving, streaming.

The encoder's bags are tested in ``test_encoder_multi_valued.py``; here a
signal that lives only in a tag list must be learnt (with a margin over the
same estimator without that column), and list columns must survive
``est.save``/``skmtl.load``, pickling and a streamed Dask fit.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

import skmtl
from skmtl import (
    DCNMultiTask,
    FeatureEncoder,
    MMoEClassifierRegressor,
    PLEEstimator,
)

TAGS = list("ABCDEFGHIJKLMNOP")


def _tagged(n, seed):
    """Rows of 0-5 tags out of 16 and two noise columns.

    ``click`` is 1 iff the tags contain A or B; ``long`` is the number of tags
    plus noise. Neither depends on the other columns.
    """
    rng = np.random.RandomState(seed)
    tags = [
        rng.choice(TAGS, rng.randint(0, 6), replace=False).tolist() for _ in range(n)
    ]
    tags[0], tags[1] = None, []  # a missing cell and an empty bag
    X = pd.DataFrame(
        {
            "tags": tags,
            "noise": rng.normal(size=n),
            "shop": rng.choice(["x", "y", "z"], n),
        }
    )
    sizes = np.array([len(t or []) for t in tags])
    Y = pd.DataFrame(
        {
            "click": [int(bool({"A", "B"} & set(t or []))) for t in tags],
            "long": sizes + rng.normal(scale=0.3, size=n),
        }
    )
    return X, Y


_SMALL = {"batch_size": 256, "device": "cpu", "random_state": 0}
_LEARN = {"learning_rate_init": 0.01, **_SMALL}
LEARNERS = {
    "mmoe": MMoEClassifierRegressor(
        n_experts=3, expert_hidden_sizes=(16,), max_iter=10, **_LEARN
    ),
    "ple": PLEEstimator(
        n_levels=1,
        n_shared_experts=1,
        n_task_experts=1,
        expert_hidden_sizes=(16,),
        max_iter=10,
        **_LEARN,
    ),
    "dcn": DCNMultiTask(max_iter=10, **_LEARN),
}


@pytest.mark.parametrize("name", ["mmoe", "ple", "dcn"])
def test_a_signal_only_in_a_tag_list_is_learnt(name):
    """click iff tags hold A or B: AUC near 1 with the tags, chance without."""
    X, Y = _tagged(2000, seed=0)
    X_test, Y_test = _tagged(1000, seed=1)
    est = clone(LEARNERS[name]).fit(X, Y)
    assert est.encoder_.multi_valued_columns_ == ["tags"]
    auc = roc_auc_score(Y_test.click, est.predict_proba(X_test)[0][:, 1])
    blind = clone(LEARNERS[name]).fit(X.drop(columns="tags"), Y)
    baseline = roc_auc_score(
        Y_test.click, blind.predict_proba(X_test.drop(columns="tags"))[0][:, 1]
    )
    assert auc > 0.95, auc
    assert auc - baseline > 0.3, (auc, baseline)


def _assert_same_outputs(a, b, X):
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    for pa, pb in zip(a.predict_proba(X), b.predict_proba(X)):
        if pa is not None:
            np.testing.assert_array_equal(pa, pb)


ENCODERS = {
    "lists": lambda: FeatureEncoder(),
    "separated": lambda: FeatureEncoder(multi_valued_columns=["tags"], separator="|"),
}


def _as_strings(X):
    """The tags column as "A|B" strings (None stays missing)."""
    strings = [None if t is None else "|".join(t) for t in X.tags]
    return X.assign(tags=strings)


@pytest.mark.parametrize("cells", sorted(ENCODERS))
def test_list_columns_survive_save_load_and_pickle(cells, tmp_path):
    X, Y = _tagged(300, seed=2)
    if cells == "separated":
        X = _as_strings(X)
    est = MMoEClassifierRegressor(
        n_experts=2,
        expert_hidden_sizes=(8,),
        max_iter=2,
        encoder=ENCODERS[cells](),
        multi_valued_pooling="sum",
        **_SMALL,
    ).fit(X, Y)
    # Unseen tags, an empty bag and a missing cell among the new rows.
    X_new = X.head(20).copy()
    X_new.loc[X_new.index[2], "tags"] = "Z|A" if cells == "separated" else ["Z", "A"]
    est.save(tmp_path / "tags.safetensors")
    loaded = skmtl.load(tmp_path / "tags.safetensors")
    unpickled = pickle.loads(pickle.dumps(est))
    for copy in (loaded, unpickled):
        assert copy.encoder_.multi_valued_columns_ == ["tags"]
        assert copy.get_params()["multi_valued_pooling"] == "sum"
        _assert_same_outputs(est, copy, X_new)
        np.testing.assert_array_equal(
            copy.encoder_.encode(X_new).multi_valued,
            est.encoder_.encode(X_new).multi_valued,
        )


# -- Dask ---------------------------------------------------------------------

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")


@pytest.fixture(autouse=True)
def _synchronous_dask():
    with dask.config.set(scheduler="synchronous"):
        yield


def _assert_close_outputs(a, b, X):
    np.testing.assert_allclose(a.predict_proba(X)[0], b.predict_proba(X)[0], rtol=1e-5)
    np.testing.assert_allclose(
        a.predict(X)[:, 1].astype(float), b.predict(X)[:, 1].astype(float), rtol=1e-5
    )


def _pair_fits(X, Y, dX):
    """The same MMoE fitted in memory and streamed (one batch per epoch)."""
    params = {
        "n_experts": 2,
        "expert_hidden_sizes": (8,),
        "max_iter": 3,
        "batch_size": 1024,
        "random_state": 0,
        "encoder": FeatureEncoder(n_bins=0),
    }
    memory = MMoEClassifierRegressor(**params).fit(X, Y)
    streamed = MMoEClassifierRegressor(**params).fit(
        dX, dd.from_pandas(Y, npartitions=4, sort=False)
    )
    return memory, streamed


def test_streamed_fit_with_lists_equals_the_in_memory_fit():
    """Object columns kept as objects: the lists reach the encoder as lists."""
    X, Y = _tagged(400, seed=3)
    with dask.config.set({"dataframe.convert-string": False}):
        dX = dd.from_pandas(X, npartitions=4, sort=False)
    memory, streamed = _pair_fits(X, Y, dX)
    assert streamed.encoder_.multi_valued_columns_ == ["tags"]
    assert streamed.encoder_.multi_valued_lengths_ == [5]
    _assert_close_outputs(streamed, memory, X)
    lazy = streamed.predict_proba(dX)[0].compute()
    np.testing.assert_allclose(lazy, streamed.predict_proba(X)[0], rtol=1e-6)


def test_streamed_fit_with_a_pyarrow_list_column():
    pa = pytest.importorskip("pyarrow")
    X, Y = _tagged(400, seed=3)
    arrow = X.astype({"tags": pd.ArrowDtype(pa.list_(pa.string()))})
    dX = dd.from_pandas(arrow, npartitions=4, sort=False)
    memory, streamed = _pair_fits(X, Y, dX)
    assert streamed.encoder_.multi_valued_columns_ == ["tags"]
    _assert_close_outputs(streamed, memory, X)


def test_lists_dask_turned_into_strings_are_a_clear_error():
    """Dask's default convert-string option stringifies lists: refuse, say why."""
    X, Y = _tagged(400, seed=3)
    with dask.config.set({"dataframe.convert-string": True}):
        dX = dd.from_pandas(X, npartitions=4, sort=False)
    assert dX.tags.dtype != object  # the lists are strings now
    est = MMoEClassifierRegressor(max_iter=1, random_state=0)
    with pytest.raises(TypeError, match="'tags' holds strings that look like lists"):
        est.fit(dX, dd.from_pandas(Y, npartitions=4, sort=False))
    # Declared categorical, such strings are categories like any other.
    enc = FeatureEncoder(categorical_columns=["tags"]).fit(dX)
    assert enc.categorical_columns_[0] == "tags" and not enc.multi_valued_columns_
