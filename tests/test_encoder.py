"""FeatureEncoder: codes, imputation, column matching and errors."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from skmtl import FeatureEncoder


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "city": ["paris", "rome", None, "paris", "oslo", "paris"],
            "plan": pd.Categorical(["a", "b", "a", "a", "b", "b"]),
            "active": [True, False, True, True, False, True],
            "age": [31.0, np.nan, 52.0, 40.0, 22.0, 35.0],
            "visits": [1, 2, 3, 4, 5, 6],
        }
    )


def test_columns_are_split_by_dtype(frame):
    enc = FeatureEncoder(n_bins=0).fit(frame)
    assert enc.categorical_columns_ == ["city", "plan", "active"]
    assert enc.numeric_columns_ == ["age", "visits"]
    # known categories + unknown (0) + missing (last)
    assert enc.cardinalities_ == [3 + 2, 2 + 2, 2 + 2]


def test_codes_reserve_zero_for_unknown_and_last_for_missing(frame):
    enc = FeatureEncoder(n_bins=0).fit(frame)
    new = frame.head(3).assign(city=["paris", "lima", None])
    codes = enc.encode(new).categorical[:, 0]
    paris = enc.encode(frame.head(1)).categorical[0, 0]
    assert codes[0] == paris and 1 <= paris <= 3
    assert codes[1] == 0  # unseen
    assert codes[2] == enc.cardinalities_[0] - 1  # missing


def test_rare_categories_share_the_unknown_code(frame):
    enc = FeatureEncoder(min_frequency=2, n_bins=0).fit(frame)
    codes = enc.encode(frame).categorical[:, 0]
    # "rome" and "oslo" occur once: code 0 like an unseen category.
    assert codes[1] == 0 and codes[4] == 0
    assert codes[0] == codes[3] == codes[5] != 0
    assert enc.cardinalities_[0] == 1 + 2


def test_numeric_columns_are_imputed_and_standardised(frame):
    numeric = FeatureEncoder(n_bins=0).fit(frame).encode(frame).numeric
    assert numeric.dtype == np.float32
    assert not np.isnan(numeric).any()
    np.testing.assert_allclose(numeric.mean(axis=0), 0, atol=1e-6)
    # The missing age is imputed with the median of the others (35).
    assert numeric[1, 0] == pytest.approx(numeric[5, 0])


def test_numeric_bins_are_extra_categorical_columns(frame):
    enc = FeatureEncoder(n_bins=2).fit(frame)
    assert enc.binned_columns_ == ["age_bin", "visits_bin"]
    names = enc.get_feature_names_out().tolist()
    assert names == ["city", "plan", "active", "age_bin", "visits_bin", "age", "visits"]
    codes = enc.encode(frame).categorical
    age_bin = codes[:, 3]
    assert age_bin[1] == enc.cardinalities_[3] - 1  # missing age
    assert age_bin[4] < age_bin[2]  # 22 falls in a lower bin than 52
    assert enc.transform(frame).shape == (6, 7)


def test_column_order_does_not_matter_and_extras_are_ignored(frame):
    enc = FeatureEncoder().fit(frame)
    shuffled = frame[frame.columns[::-1]].assign(extra="x")
    np.testing.assert_array_equal(enc.transform(shuffled), enc.transform(frame))


def test_missing_column_is_named(frame):
    enc = FeatureEncoder().fit(frame)
    with pytest.raises(ValueError, match=re.escape("missing columns seen in fit: 'age', 'plan'")):
        enc.transform(frame.drop(columns=["plan", "age"]))


def test_declared_columns(frame):
    enc = FeatureEncoder(categorical_columns=["visits"], n_bins=0).fit(frame)
    assert "visits" in enc.categorical_columns_ and enc.numeric_columns_ == ["age"]
    both = FeatureEncoder(categorical_columns=["city"], numeric_columns=["age"]).fit(frame)
    assert both.categorical_columns_ == ["city"] and both.numeric_columns_ == ["age"]
    with pytest.raises(ValueError, match=re.escape("not in X: 'nope'")):
        FeatureEncoder(categorical_columns=["nope"]).fit(frame)
    with pytest.raises(ValueError, match=re.escape("both categorical and numeric: 'age'")):
        FeatureEncoder(categorical_columns=["age"], numeric_columns=["age"]).fit(frame)


def test_non_numbers_and_infinity_in_numeric_columns_are_named(frame):
    bad = frame.assign(age=["31", "x", "52", "40", "n/a", "35"])
    with pytest.raises(ValueError, match=re.escape("'age': ['x', 'n/a']")):
        FeatureEncoder(numeric_columns=["age"]).fit(bad)
    with pytest.raises(ValueError, match=re.escape("Numeric columns 'visits' contain infinite")):
        FeatureEncoder().fit(frame.assign(visits=[1, 2, np.inf, 4, 5, 6]))
    enc = FeatureEncoder().fit(frame)
    with pytest.raises(ValueError, match=re.escape("'visits'")):
        enc.transform(frame.assign(visits=-np.inf))


def test_numpy_arrays_are_all_numeric():
    X = np.arange(12.0).reshape(4, 3)
    enc = FeatureEncoder(n_bins=0).fit(X)
    assert enc.numeric_columns_ == ["x0", "x1", "x2"] and enc.categorical_columns_ == []
    with pytest.raises(ValueError, match="X has 2 features, but FeatureEncoder is expecting 3"):
        enc.transform(X[:, :2])


def test_input_frame_is_not_modified(frame):
    before = frame.copy()
    FeatureEncoder(min_frequency=2).fit(frame).transform(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_encoder_in_a_pipeline(frame):
    y = [0, 1, 0, 0, 1, 1]
    pipe = make_pipeline(FeatureEncoder(), LogisticRegression()).fit(frame, y)
    assert pipe.predict(frame).shape == (6,)


def test_codes_match_sklearn_ordinal_encoder(frame):
    """Known categories keep OrdinalEncoder's order, shifted by one."""
    enc = FeatureEncoder(categorical_columns=["city"], numeric_columns=[]).fit(frame)
    reference = ColumnTransformer(
        [("c", OrdinalEncoder(encoded_missing_value=-1), ["city"])]
    ).fit(frame.fillna({"city": np.nan}))
    known = frame.city.notna().to_numpy()
    ours = enc.encode(frame).categorical[known, 0]
    theirs = reference.transform(frame)[known, 0]
    np.testing.assert_array_equal(ours, theirs + 1)
