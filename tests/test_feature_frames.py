"""Input frames other than pandas: polars, Arrow, Dask and other frame-likes."""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skmtl import FeatureEncoder, SharedBottomEstimator
from skmtl._validation import as_feature_frame, is_dask_collection

pa = pytest.importorskip("pyarrow")


@pytest.fixture
def frame():
    """A pandas frame with the dtypes polars and Arrow round-trip."""
    rng = np.random.RandomState(0)
    n = 120
    return pd.DataFrame(
        {
            "city": pd.Series(
                rng.choice(["paris", "rome", "oslo", None], n), dtype=object
            ),
            "plan": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "level": pd.array(rng.choice([1, 2, 3, None], n), dtype="Int64"),
            "active": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
            "age": np.where(rng.rand(n) < 0.1, np.nan, rng.normal(40, 9, n)),
            "visits": rng.randint(0, 9, n),
            "tags": [
                list(rng.choice(["x", "y", "z"], rng.randint(0, 3))) for _ in range(n)
            ],
        }
    )


def _assert_same_encoding(enc, first, second):
    for ours, theirs in zip(enc.encode(first), enc.encode(second)):
        np.testing.assert_array_equal(ours, theirs)


def _fitted(frame):
    return FeatureEncoder(n_bins=4, categorical_columns=["level"]).fit(frame)


def test_polars_frames_encode_like_pandas(frame):
    pl = pytest.importorskip("polars")
    polars_frame = pl.from_pandas(frame)
    from_pandas, from_polars = _fitted(frame), _fitted(polars_frame)
    assert from_polars.categorical_columns_ == from_pandas.categorical_columns_
    assert from_polars.multi_valued_columns_ == ["tags"]
    for a, b in zip(from_polars.categories_, from_pandas.categories_):
        assert a.tolist() == b.tolist()
    np.testing.assert_array_equal(from_polars.means_, from_pandas.means_)
    _assert_same_encoding(from_pandas, frame, polars_frame)
    _assert_same_encoding(from_pandas, frame.iloc[:2], polars_frame[:2])
    np.testing.assert_array_equal(from_polars.feature_names_in_, frame.columns)


def test_pyarrow_backed_columns_encode_like_numpy_ones(frame):
    arrow_backed = frame.convert_dtypes(dtype_backend="pyarrow")
    assert isinstance(arrow_backed["age"].dtype, pd.ArrowDtype)
    enc = _fitted(frame)
    _assert_same_encoding(enc, frame, arrow_backed)
    _assert_same_encoding(enc, frame.iloc[:1], arrow_backed.iloc[:1])
    for a, b in zip(_fitted(arrow_backed).categories_, enc.categories_):
        assert a.tolist() == b.tolist()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    _assert_same_encoding(enc, frame, table)


def test_frame_likes_convert_with_their_names_or_fail(frame):
    class ToPandas:
        def to_pandas(self):
            return frame

    class Columns:
        columns = ("a", "b")

        def __array__(self, dtype=None, copy=None):
            return np.zeros((2, 2))

    class Interchange:
        def __dataframe__(self, nan_as_null=False, allow_copy=True):
            return frame.__dataframe__()

    enc = _fitted(frame)
    _assert_same_encoding(enc, frame, ToPandas())
    with pytest.raises(TypeError, match="Interchange, a data frame skmtl cannot"):
        enc.encode(Interchange())
    with pytest.raises(
        TypeError, match=re.escape("Columns, a data frame skmtl cannot convert")
    ):
        enc.encode(Columns())


def test_dask_frames_are_rejected_where_they_cannot_stream(frame):
    dd = pytest.importorskip("dask.dataframe")
    ddf = dd.from_pandas(frame.drop(columns="tags"), npartitions=2)
    assert is_dask_collection(ddf) and not is_dask_collection(frame)
    est = SharedBottomEstimator()
    with pytest.raises(TypeError, match="the streaming fit will accept one"):
        as_feature_frame(est, ddf, reset=True)
    enc = FeatureEncoder().fit(ddf)
    with pytest.raises(
        TypeError, match=re.escape("X is a Dask collection (DataFrame)")
    ):
        enc.encode(ddf)


def test_duplicate_columns_are_rejected_for_estimators(frame):
    doubled = pd.concat([frame, frame[["age"]]], axis=1)
    with pytest.raises(ValueError, match=re.escape("duplicate column names: 'age'")):
        as_feature_frame(SharedBottomEstimator(), doubled, reset=False)


def test_estimators_take_polars_frames(frame):
    pl = pytest.importorskip("polars")
    X = frame.drop(columns="tags")
    y = (X["age"].fillna(40) > 40).astype(int).to_numpy()
    params = {"max_iter": 1, "batch_size": 64, "device": "cpu", "random_state": 0}
    from_pandas = SharedBottomEstimator(**params).fit(X, y)
    from_polars = SharedBottomEstimator(**params).fit(pl.from_pandas(X), y)
    np.testing.assert_allclose(
        from_polars.predict_proba(X)[0], from_pandas.predict_proba(pl.from_pandas(X))[0]
    )


def test_skmtl_works_without_dask():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "import pandas as pd, skmtl\n"
        "X = pd.DataFrame({'a': ['x', 'y'], 'b': [1.0, 2.0]})\n"
        "print(skmtl.FeatureEncoder(n_bins=0).fit(X).cardinalities_)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[4]"
