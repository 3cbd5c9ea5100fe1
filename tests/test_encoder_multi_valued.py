"""FeatureEncoder's multi-valued columns: bags of codes, detection, errors."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmtl import FeatureEncoder


@pytest.fixture
def tagged():
    return pd.DataFrame(
        {
            "tags": [["a", "b"], ["b"], None, [], ("c", "a", "b"), np.array(["b"])],
            "genres": ["x|y", "y", None, "", "x||z", "y|y"],
            "age": [30.0, 40.0, 50.0, np.nan, 20.0, 60.0],
        }
    )


def test_lists_are_detected_and_strings_split_when_declared(tagged):
    enc = FeatureEncoder(multi_valued_columns=["genres"], separator="|").fit(tagged)
    assert enc.multi_valued_columns_ == ["genres", "tags"]
    assert enc.categorical_columns_ == [] and enc.numeric_columns_ == ["age"]
    assert [c.tolist() for c in enc.multi_valued_categories_] == [
        ["x", "y", "z"],
        ["a", "b", "c"],
    ]
    assert enc.multi_valued_cardinalities_ == [5, 5]
    assert enc.multi_valued_lengths_ == [2, 3]
    bags = enc.encode(tagged).multi_valued
    assert bags.shape == (6, 2, 3) and bags.dtype == np.int64
    assert bags[:, 0].tolist() == [
        [1, 2, -1],
        [2, -1, -1],
        [4, -1, -1],  # missing cell: K + 1 in slot 0
        [-1, -1, -1],  # "" is an empty bag
        [1, 3, -1],  # empty values dropped
        [2, 2, -1],  # repeats kept
    ]
    assert bags[:, 1].tolist() == [
        [1, 2, -1],
        [2, -1, -1],
        [4, -1, -1],
        [-1, -1, -1],  # an empty list
        [3, 1, 2],  # bag order kept
        [2, -1, -1],
    ]


def test_unknown_rare_and_missing_values_in_bags(tagged):
    enc = FeatureEncoder(min_frequency=2).fit(tagged[["tags"]])
    assert enc.multi_valued_categories_[0].tolist() == ["a", "b"]  # c occurs once
    new = pd.DataFrame({"tags": [["c", "zz", "a"], ["b", None, np.nan], [1, "b"]]})
    bags = enc.encode(new).multi_valued[:, 0]
    # c is rare and zz unseen (0); missing values inside a bag are dropped.
    assert bags.tolist() == [[0, 0, 1], [2, -1, -1], [0, 2, -1]]
    # The longest bag among the rows encoded, at least one slot.
    assert enc.encode(pd.DataFrame({"tags": [[]]})).multi_valued.shape == (1, 1, 1)


def test_fraction_min_frequency_counts_occurrences_over_rows():
    bags = pd.DataFrame({"tags": [["a", "a", "b"], ["a"], ["c"], None]})
    enc = FeatureEncoder(min_frequency=0.5).fit(bags)  # at least 2 of 4 rows
    assert enc.multi_valued_categories_[0].tolist() == ["a"]


def test_values_are_strings_like_categories():
    bags = pd.DataFrame({"ids": [[1, 2], ["1"], np.array([2.5, 1.0])]})
    enc = FeatureEncoder().fit(bags)
    assert enc.multi_valued_categories_[0].tolist() == ["1", "1.0", "2", "2.5"]
    assert enc.encode(bags).multi_valued[:, 0].tolist() == [[1, 3], [1, -1], [4, 2]]


def test_small_and_large_frames_give_the_same_bags(tagged):
    enc = FeatureEncoder(multi_valued_columns=["genres"], separator="|").fit(tagged)
    big = pd.concat([tagged] * 30, ignore_index=True)
    whole = enc.encode(big).multi_valued
    for i in (0, 2, 3, 4, 100):
        row = enc.encode(big.iloc[[i]]).multi_valued
        width = row.shape[2]
        np.testing.assert_array_equal(row[0], whole[i, :, :width])
        assert (whole[i, :, width:] == -1).all()


def test_transform_pads_bags_to_the_fitted_length(tagged):
    enc = FeatureEncoder(n_bins=0, multi_valued_columns=["genres"], separator="|")
    enc.fit(tagged)
    names = enc.get_feature_names_out().tolist()
    assert names == ["genres_0", "genres_1", "tags_0", "tags_1", "tags_2", "age"]
    new = pd.DataFrame(
        {
            "tags": [["a", "b", "c", "a", "b"], None],
            "genres": ["y", "x|y|z"],
            "age": [1.0, 2.0],
        }
    )
    out = enc.transform(new)
    assert out.shape == (2, 6) and out.dtype == np.float64
    # Longer bags are cut to the slots seen in fit.
    np.testing.assert_array_equal(out[:, :5], [[2, -1, 1, 2, 3], [1, 2, 4, -1, -1]])
    pipe = make_pipeline(enc, StandardScaler()).fit(tagged)
    assert pipe.transform(new).shape == (2, 6)


def test_scalars_among_lists_are_named_errors(tagged):
    detected = tagged.assign(tags=[["a"], "b", None, [], ["c"], ["d"]])
    with pytest.raises(
        TypeError,
        match=re.escape(
            "'tags': a scalar in a column whose first value is a list (e.g. 'b')"
        ),
    ):
        FeatureEncoder().fit(detected)
    with pytest.raises(
        TypeError,
        match=re.escape(
            "'genres': a scalar in a column declared in multi_valued_columns "
            "(set separator to split strings) (e.g. 'x|y')"
        ),
    ):
        FeatureEncoder(multi_valued_columns=["genres"]).fit(tagged)
    enc = FeatureEncoder().fit(tagged[["tags", "age"]])
    for rows in (detected.head(3), pd.concat([detected] * 30)):
        with pytest.raises(
            TypeError,
            match=re.escape(
                "'tags': a scalar in a column that held lists in fit (e.g. 'b')"
            ),
        ):
            enc.encode(rows)


def test_nested_lists_are_named_errors(tagged):
    message = "'tags': a nested list (a bag's values must be scalars)"
    for nested in ([["a", ["b"]]], [["a", ("b",)]], [np.array([["a"], ["b"]])]):
        bad = pd.DataFrame({"tags": nested + [["a"]] * 3})
        with pytest.raises(TypeError, match=re.escape(message)):
            FeatureEncoder().fit(bad)
    enc = FeatureEncoder().fit(tagged[["tags"]])
    with pytest.raises(TypeError, match=re.escape(message)):
        enc.encode(pd.DataFrame({"tags": [["a", ["b"]]]}))
    with pytest.raises(
        TypeError, match=re.escape("'tags': a non-scalar value in a bag")
    ):
        enc.encode(pd.DataFrame({"tags": [["a", {"b": 1}]]}))


def test_separator_needs_declared_columns(tagged):
    with pytest.raises(ValueError, match="separator splits the string cells"):
        FeatureEncoder(separator="|").fit(tagged)
    with pytest.raises(ValueError, match="separator splits the string cells"):
        FeatureEncoder(multi_valued_columns=["genres"], separator="").fit(tagged)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Columns cannot be both categorical and multi-valued: 'genres'"
        ),
    ):
        FeatureEncoder(
            categorical_columns=["genres"], multi_valued_columns=["genres"]
        ).fit(tagged)


def test_input_is_not_modified(tagged):
    before = tagged.copy(deep=True)
    enc = FeatureEncoder(multi_valued_columns=["genres"], separator="|").fit(tagged)
    enc.transform(tagged)
    pd.testing.assert_frame_equal(tagged, before)
    assert tagged.tags[0] == ["a", "b"]
