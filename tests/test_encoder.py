"""FeatureEncoder: codes, imputation, column matching and errors."""

import json
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


def test_a_frequent_value_gets_a_bin_of_its_own():
    """80% zeros: the zeros alone in a bin, the rest cut at their own quantiles."""
    rng = np.random.RandomState(0)
    gains = np.where(rng.rand(1000) < 0.8, 0.0, rng.lognormal(8, 2, 1000))
    data = pd.DataFrame({"gain": gains, "other": rng.normal(size=1000)})
    enc = FeatureEncoder(n_bins=8).fit(data)
    rest = gains[gains != 0]
    expected = np.r_[np.quantile(rest, np.linspace(0, 1, 8)[1:-1]), 0.0, 5e-324]
    np.testing.assert_array_equal(enc.bin_edges_[0], np.sort(expected))
    assert enc.cardinalities_[0] == 8 + 1 + 2  # n_bins + 1 bins, missing, unknown
    bins = enc.encode(data).categorical[:, 0]
    zero_bin = set(bins[gains == 0])
    assert len(zero_bin) == 1 and zero_bin.isdisjoint(bins[gains != 0])
    # The other values fill the other n_bins - 1 bins about evenly.
    counts = np.bincount(bins[gains != 0])
    assert (counts > 0).sum() == 7 and counts.max() <= 2 * len(rest) / 7
    # Without a frequent value the edges are the plain quantiles.
    plain = np.quantile(data["other"], np.linspace(0, 1, 9)[1:-1])
    np.testing.assert_array_equal(enc.bin_edges_[1], plain)


@pytest.mark.parametrize(
    "values, edges",
    [
        ([0, 0, 0, 0], [0.0]),  # one value: quantile edges, one bin for all
        ([0, 0, 1, 2], [0.0, 5e-324, 1.5]),  # 0 is half the rows > 1/3
        ([0, 0, 1, 2, 3, 4], [2 / 3, 7 / 3]),  # 0 covers 1/3, not more
    ],
)
def test_the_mode_split_rule_at_its_boundaries(values, edges):
    enc = FeatureEncoder(n_bins=3).fit(pd.DataFrame({"x": np.asarray(values, float)}))
    np.testing.assert_allclose(enc.bin_edges_[0], edges, rtol=0, atol=1e-12)


def test_column_order_does_not_matter_and_extras_are_ignored(frame):
    enc = FeatureEncoder().fit(frame)
    shuffled = frame[frame.columns[::-1]].assign(extra="x")
    np.testing.assert_array_equal(enc.transform(shuffled), enc.transform(frame))


def test_missing_column_is_named(frame):
    enc = FeatureEncoder().fit(frame)
    with pytest.raises(
        ValueError, match=re.escape("missing columns seen in fit: 'age', 'plan'")
    ):
        enc.transform(frame.drop(columns=["plan", "age"]))


def test_declared_columns(frame):
    enc = FeatureEncoder(categorical_columns=["visits"], n_bins=0).fit(frame)
    assert "visits" in enc.categorical_columns_ and enc.numeric_columns_ == ["age"]
    both = FeatureEncoder(categorical_columns=["city"], numeric_columns=["age"]).fit(
        frame
    )
    assert both.categorical_columns_ == ["city"] and both.numeric_columns_ == ["age"]
    with pytest.raises(ValueError, match=re.escape("not in X: 'nope'")):
        FeatureEncoder(categorical_columns=["nope"]).fit(frame)
    with pytest.raises(
        ValueError, match=re.escape("both categorical and numeric: 'age'")
    ):
        FeatureEncoder(categorical_columns=["age"], numeric_columns=["age"]).fit(frame)


def test_non_numbers_and_infinity_in_numeric_columns_are_named(frame):
    bad = frame.assign(age=["31", "x", "52", "40", "n/a", "35"])
    with pytest.raises(ValueError, match=re.escape("'age': ['x', 'n/a']")):
        FeatureEncoder(numeric_columns=["age"]).fit(bad)
    with pytest.raises(
        ValueError, match=re.escape("Numeric columns 'visits' contain infinite")
    ):
        FeatureEncoder().fit(frame.assign(visits=[1, 2, np.inf, 4, 5, 6]))
    enc = FeatureEncoder().fit(frame)
    with pytest.raises(ValueError, match=re.escape("'visits'")):
        enc.transform(frame.assign(visits=-np.inf))


def test_numpy_arrays_are_all_numeric():
    X = np.arange(12.0).reshape(4, 3)
    enc = FeatureEncoder(n_bins=0).fit(X)
    assert enc.numeric_columns_ == ["x0", "x1", "x2"] and enc.categorical_columns_ == []
    with pytest.raises(
        ValueError, match="X has 2 features, but FeatureEncoder is expecting 3"
    ):
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


def test_encode_returns_three_arrays(frame):
    encoded = FeatureEncoder(n_bins=0).fit(frame).encode(frame)
    assert encoded._fields == ("categorical", "numeric", "multi_valued")
    assert encoded.categorical.flags.c_contiguous
    assert encoded.multi_valued.shape == (6, 0, 0)
    assert encoded.multi_valued.dtype == np.int64


def test_fitted_state_is_public(frame):
    enc = FeatureEncoder(min_frequency=2, n_bins=0).fit(frame)
    assert enc.categories_[0].tolist() == ["paris"]  # rome and oslo are rare
    assert enc.categories_[2].tolist() == ["False", "True"]
    codes = enc.encode(frame).categorical
    assert codes[0, 2] == 1 + enc.categories_[2].tolist().index("True")
    ages = frame.age.fillna(frame.age.median())
    np.testing.assert_array_equal(enc.medians_, [35.0, 3.5])
    np.testing.assert_allclose(enc.means_, [ages.mean(), 3.5])
    np.testing.assert_allclose(
        enc.scales_, [ages.std(ddof=0), frame.visits.std(ddof=0)]
    )
    assert enc.medians_.dtype == enc.means_.dtype == enc.scales_.dtype == np.float64


@pytest.mark.parametrize("min_frequency", [2, 3, 0.3, 1 / 3, 0.34, 0.5])
def test_min_frequency_matches_ordinal_encoder(min_frequency):
    """A count or a fraction of all rows (missing included), as sklearn cuts it."""
    city = pd.DataFrame({"city": ["a", "a", "b", "b", "b", "c", None, None, "a"]})
    enc = FeatureEncoder(min_frequency=min_frequency).fit(city)
    ordinal = OrdinalEncoder(min_frequency=min_frequency).fit(city.fillna("~missing"))
    rare = ordinal.infrequent_categories_[0]
    infrequent = set([] if rare is None else rare) | {"~missing"}
    frequent = [c for c in ordinal.categories_[0] if c not in infrequent]
    assert enc.categories_[0].tolist() == frequent


def test_non_scalar_cells_are_named_errors(frame):
    before = frame.copy()
    bad = frame.assign(
        city=[{"a": 1}] + ["paris"] * 5, active=[True, {1, 2}, True, True, False, True]
    )
    message = (
        "Cells of the wrong kind in 'active': a non-scalar value (e.g. {1, 2}); 'city'"
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        FeatureEncoder(categorical_columns=["active"]).fit(bad)
    odd = frame.assign(plan=["b", frozenset({1})] + ["b"] * 4)
    with pytest.raises(
        TypeError, match=re.escape("'plan': a non-scalar value (e.g. frozenset({1}))")
    ):
        FeatureEncoder().fit(odd)
    enc = FeatureEncoder().fit(frame)
    with pytest.raises(
        TypeError, match=re.escape("'city': a non-scalar value (e.g. {'a': 1})")
    ):
        enc.encode(bad.head(2))  # the small-frame path
    with pytest.raises(TypeError, match=re.escape("'city': a non-scalar value")):
        enc.encode(pd.concat([bad] * 20))  # the vectorised path
    pd.testing.assert_frame_equal(frame, before)


def test_lists_in_single_valued_columns_are_named_errors(frame):
    declared = frame.assign(city=["paris", ["a", "b"], "rome", "oslo", "x", "y"])
    with pytest.raises(
        TypeError,
        match=re.escape(
            "'city': a list in a column declared in categorical_columns "
            "(e.g. ['a', 'b'])"
        ),
    ):
        FeatureEncoder(categorical_columns=["city"]).fit(declared)
    with pytest.raises(
        TypeError,
        match=re.escape(
            "'city': a list in a column whose first value is a scalar (e.g. ['a', 'b'])"
        ),
    ):
        FeatureEncoder().fit(declared)
    enc = FeatureEncoder().fit(frame)
    for rows in (declared.head(2), pd.concat([declared] * 20)):
        with pytest.raises(
            TypeError,
            match=re.escape(
                "'city': a list in a column that held scalars in fit (e.g. ['a', 'b'])"
            ),
        ):
            enc.encode(rows)


def test_duplicate_column_names_are_errors(frame):
    doubled = pd.concat([frame, frame[["age", "city"]]], axis=1)
    message = "X has duplicate column names: 'age', 'city'."
    with pytest.raises(ValueError, match=re.escape(message)):
        FeatureEncoder().fit(doubled)
    enc = FeatureEncoder().fit(frame)
    with pytest.raises(ValueError, match=re.escape(message)):
        enc.encode(doubled)


def test_small_frames_encode_like_large_ones(frame):
    """Rows one at a time (dict lookups) give the rows of a large frame."""
    big = pd.concat([frame] * 30, ignore_index=True)
    big["city"] = big["city"].where(big.index % 7 != 3, "unseen")
    enc = FeatureEncoder(n_bins=3).fit(frame)
    whole = enc.encode(big)
    for i in (0, 2, 3, 10, 179):
        row = enc.encode(big.iloc[[i]])
        np.testing.assert_array_equal(row.categorical, whole.categorical[[i]])
        np.testing.assert_array_equal(row.numeric, whole.numeric[[i]])


def test_state_round_trips_through_json(frame):
    tagged = frame.assign(tags=[["x", "y"], ["y"], None, [], ["z", "x"], ["x"]])
    enc = FeatureEncoder(min_frequency=2, n_bins=3).fit(tagged)
    state = json.loads(json.dumps(enc._get_state()))
    assert state["version"] == 1 and state["categories"][0] == ["paris"]
    restored = FeatureEncoder()._set_state(state)
    assert restored.get_params() == enc.get_params()
    new = tagged.assign(city=["paris", "lima", None, "rome", "paris", "oslo"])
    for ours, theirs in zip(restored.encode(new), enc.encode(new)):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(restored.transform(new), enc.transform(new))
    assert restored.cardinalities_ == enc.cardinalities_
    assert restored.multi_valued_cardinalities_ == enc.multi_valued_cardinalities_
    np.testing.assert_array_equal(restored.feature_names_in_, enc.feature_names_in_)
    for name in ("medians_", "means_", "scales_"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(enc, name))


def test_state_rejects_other_versions_and_unsavable_names(frame):
    state = FeatureEncoder().fit(frame)._get_state()
    with pytest.raises(ValueError, match="Not a FeatureEncoder state of version 1"):
        FeatureEncoder()._set_state({**state, "version": 2})
    numbered = FeatureEncoder().fit(frame.set_axis(range(5), axis=1))
    assert FeatureEncoder()._set_state(numbered._get_state()).numeric_columns_ == [3, 4]
    tupled = FeatureEncoder().fit(frame.set_axis([(c,) for c in frame.columns], axis=1))
    with pytest.raises(ValueError, match=re.escape("Only str and int column names")):
        tupled._get_state()
