"""The vectorised FeatureEncoder gives the codes of the encoder it replaced.

``_reference_encoder.ReferenceFeatureEncoder`` is a copy of the encoder as it
was (OrdinalEncoder, SimpleImputer and StandardScaler on strings made cell by
cell). Both encode frames mixing every accepted dtype, in several sizes (the
small-frame path and the vectorised one), and must agree.
"""

import datetime
import decimal

import numpy as np
import pandas as pd
import pytest
from _reference_encoder import ReferenceFeatureEncoder

from skmtl import FeatureEncoder
from skmtl.datasets import load_census_income


def _mixed_frame(n=300, seed=0):
    """Every dtype the encoder accepts, with missing values of every kind."""
    rng = np.random.RandomState(seed)

    def pick(values):
        return [values[i] for i in rng.randint(len(values), size=n)]

    mixed = [1, "1", 2, "b", True, 1.0, None, 0, False, 0.0, -0.0, np.int64(2),
             pd.NA, pd.NaT, b"by", decimal.Decimal("1.0"), np.nan, "é"]  # fmt: skip
    return pd.DataFrame(
        {
            "obj": pd.Series(
                pick(["a", "b", "c", None, np.nan, "d", "é", "A"]), dtype=object
            ),
            "py_str": pd.Series(
                pick(["x", "y", None, "z"]), dtype=pd.StringDtype("python")
            ),
            "pa_str": pd.Series(
                pick(["x", "y", None, "z"]), dtype=pd.StringDtype("pyarrow")
            ),
            "default_str": pd.Series(pick(["x", "y", None, "z"])),
            "cat": pd.Categorical(
                pick(["lo", "hi", None, "mid"]),
                categories=["lo", "mid", "hi", "unused"],
            ),
            "cat_int": pd.Categorical(pick([1, 2, 3])),
            "cat_float": pd.Categorical(pick([1.0, 2.5, None])),
            "bool": pick([True, False]),
            "nbool": pd.array(pick([True, False, None]), dtype="boolean"),
            "nint": pd.array(pick([1, 2, None, 30]), dtype="Int64"),
            "nfloat": pd.array(pick([1.5, 2.0, None, 0.0]), dtype="Float64"),
            "int_cat": pick([10, 20, 30, 40, 5]),
            "float_cat": pick([0.0, -0.0, 1.5, np.nan, 2.0]),
            "mixed": pd.Series(pick(mixed), dtype=object),
            "mixed_int_str": pd.Series(pick([1, "1", 2, "two", None]), dtype=object),
            "when": pd.to_datetime(pick(["2020-01-01", "2021-05-03", None])),
            "day": pd.Series(pick([datetime.date(2020, 1, 1), None]), dtype=object),
            "num": rng.normal(size=n),
            "num_nan": np.where(rng.rand(n) < 0.2, np.nan, rng.exponential(size=n)),
            "num_int": rng.randint(0, 5, n),
            "num_nint": pd.array(pick([1, 2, None]), dtype="Int64"),
            "num_str": pd.Series(pick(["1.5", "2", None, "3e2"]), dtype=object),
            "num_f32": rng.normal(size=n).astype(np.float32),
            "constant": np.full(n, 7.0),
            "empty": np.full(n, np.nan),
        }
    )


def _unseen(frame):
    """Shuffled rows with unseen values, columns reversed plus an extra one."""
    test = frame.sample(frac=1, random_state=1).iloc[:200].copy()
    test.loc[test.index[:5], "obj"] = "unseen"
    test.loc[test.index[5:8], "mixed"] = "new"
    test.loc[test.index[8:10], "int_cat"] = 99
    return test[test.columns[::-1]].assign(extra="ignored")


def _assert_same_codes(new, old, data):
    ours, theirs = new.encode(data), old.encode(data)
    names = new.categorical_columns_ + new.binned_columns_
    differ = [
        name
        for j, name in enumerate(names)
        if not np.array_equal(ours.categorical[:, j], theirs.categorical[:, j])
    ]
    assert not differ, f"codes differ in {differ} ({len(data)} rows)"
    np.testing.assert_allclose(ours.numeric, theirs.numeric, rtol=1e-6, atol=1e-6)


PARAMS = [
    {"n_bins": 0},
    {"n_bins": 32},
    {"min_frequency": 20},
    {"min_frequency": 0.1},
    {"min_frequency": 3, "n_bins": 4},
    {"categorical_columns": ["mixed", "obj", "int_cat"], "numeric_columns": ["num"]},
]


@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_codes_equal_the_reference_encoder(params):
    frame = _mixed_frame()
    params = {"categorical_columns": ["int_cat", "float_cat"], **params}
    new = FeatureEncoder(**params).fit(frame)
    old = ReferenceFeatureEncoder(**params).fit(frame)
    assert new.categorical_columns_ == old.categorical_columns_
    assert new.numeric_columns_ == old.numeric_columns_
    assert new.cardinalities_ == old.cardinalities_
    test = _unseen(frame)
    # 300 and 200 rows take the vectorised path, 3 and 1 the small-frame one.
    for data in (frame, test, test.iloc[:3], test.iloc[[7]], test.iloc[[0]]):
        _assert_same_codes(new, old, data)


def test_scaling_equals_the_reference_bit_for_bit():
    frame = _mixed_frame()
    new = FeatureEncoder().fit(frame)
    old = ReferenceFeatureEncoder().fit(frame)
    imputer, scaler = old._numeric_pipeline
    np.testing.assert_array_equal(new.medians_, imputer.statistics_)
    # Columns without missing values: the same operations, so the same bits.
    complete = [j for j, c in enumerate(new.numeric_columns_) if frame[c].notna().all()]
    np.testing.assert_array_equal(new.means_[complete], scaler.mean_[complete])
    np.testing.assert_array_equal(new.scales_[complete], scaler.scale_[complete])
    np.testing.assert_allclose(new.means_, scaler.mean_, rtol=1e-13)
    np.testing.assert_allclose(new.scales_, scaler.scale_, rtol=1e-13)


def test_int_categories_with_missing_values_keep_their_codes_in_any_frame():
    """The old encoder wrote 1 as "1.0" only when a missing value was present.

    pandas' ``Categorical.astype(str)`` goes through floats when the column
    holds a missing value, so the old encoder called a row of an integer
    category unknown whenever the frame it encoded had no missing value in
    that column. The category is now ``str(1)`` in every frame.
    """
    frame = pd.DataFrame({"grade": pd.Categorical([1, 2, None, 3, 2])})
    enc = FeatureEncoder().fit(frame)
    assert enc.categories_[0].tolist() == ["1", "2", "3"]
    full = enc.encode(frame).categorical[:, 0]
    assert full.tolist() == [1, 2, 4, 3, 2]
    assert enc.encode(frame.iloc[[1]]).categorical[0, 0] == 2
    assert enc.encode(pd.concat([frame] * 40).iloc[[1, 6] * 40]).categorical.max() == 2


def _census_train():
    try:
        return load_census_income(split="train").data
    except FileNotFoundError:
        pytest.skip("census-income files not found; set SKMTL_DATA")


def test_census_codes_equal_the_reference_encoder():
    X = _census_train().iloc[:40_000]
    for params in ({}, {"min_frequency": 0.01}):
        new = FeatureEncoder(**params).fit(X)
        old = ReferenceFeatureEncoder(**params).fit(X)
        assert new.cardinalities_ == old.cardinalities_
        ours, theirs = new.encode(X), old.encode(X)
        np.testing.assert_array_equal(ours.categorical, theirs.categorical)
        np.testing.assert_array_equal(ours.numeric, theirs.numeric)
        for i in (0, 17, 39_999):
            row = new.encode(X.iloc[[i]])
            np.testing.assert_array_equal(row.categorical, theirs.categorical[[i]])
            np.testing.assert_array_equal(row.numeric, theirs.numeric[[i]])
