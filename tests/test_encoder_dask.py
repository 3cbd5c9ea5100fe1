"""FeatureEncoder.fit on a Dask DataFrame: out of core, like an in-memory fit."""

import re

import numpy as np
import pandas as pd
import pytest

from skmtl import FeatureEncoder
from skmtl._encoder_fit import Roles, chunk_stats, merge_stats, sketch_quantiles

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

N_ROWS = 60_000
N_PARTITIONS = 10


@pytest.fixture(scope="module")
def frame():
    rng = np.random.RandomState(0)
    n = N_ROWS
    lengths = rng.randint(0, 4, n)
    letters = rng.choice(list("abcdef"), lengths.sum())
    frame = pd.DataFrame(
        {
            "city": rng.choice(
                ["paris", "rome", "oslo", "lima", "x"],
                n,
                p=[0.4, 0.3, 0.2, 0.0999, 1e-4],
            ),
            "code": rng.randint(0, 40, n),
            # Skewed: 80% zeros, then a heavy tail (like capital gains).
            "gain": np.where(rng.rand(n) < 0.8, 0.0, rng.lognormal(8, 2, n)),
            "age": np.where(rng.rand(n) < 0.1, np.nan, rng.normal(40, 10, n)),
            "tags": [t.tolist() for t in np.split(letters, np.cumsum(lengths)[:-1])],
        }
    )
    frame.loc[frame.index[:300], "city"] = None
    return frame


def _from_parts(parts):
    """A Dask frame whose partitions may disagree with its meta (as read_csv may)."""
    # Named partitions: Dask would otherwise hash a column of lists, slowly.
    delayed = [dask.delayed(p, name=f"part-{i}-{id(p)}") for i, p in enumerate(parts)]
    # Object columns stay objects: Dask's default turns lists into strings.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_delayed(delayed, meta=parts[0].iloc[:0], verify_meta=False)


@pytest.fixture(scope="module")
def ddf(frame):
    size = N_ROWS // N_PARTITIONS
    return _from_parts([frame.iloc[i : i + size] for i in range(0, N_ROWS, size)])


@pytest.mark.parametrize("min_frequency", [None, 7, 0.0002, 0.1])
def test_vocabulary_equals_an_in_memory_fit(frame, ddf, min_frequency):
    params = {"min_frequency": min_frequency, "categorical_columns": ["code"]}
    out_of_core = FeatureEncoder(**params).fit(ddf)
    in_memory = FeatureEncoder(**params).fit(frame)
    assert out_of_core.categorical_columns_ == in_memory.categorical_columns_
    assert out_of_core.multi_valued_columns_ == ["tags"]
    assert out_of_core.numeric_columns_ == in_memory.numeric_columns_
    for ours, theirs in zip(
        out_of_core.categories_ + out_of_core.multi_valued_categories_,
        in_memory.categories_ + in_memory.multi_valued_categories_,
    ):
        assert ours.tolist() == theirs.tolist()
    assert out_of_core.cardinalities_[:2] == in_memory.cardinalities_[:2]
    assert out_of_core.multi_valued_lengths_ == in_memory.multi_valued_lengths_
    np.testing.assert_array_equal(out_of_core.feature_names_in_, frame.columns)


def test_means_and_scales_follow_from_the_medians(frame, ddf):
    out_of_core = FeatureEncoder().fit(ddf)
    in_memory = FeatureEncoder().fit(frame)
    assert out_of_core.numeric_columns_ == ["code", "gain", "age"]
    # code and gain have no missing value: their moments ignore the median.
    np.testing.assert_allclose(out_of_core.means_[:2], in_memory.means_[:2], rtol=1e-12)
    np.testing.assert_allclose(
        out_of_core.scales_[:2], in_memory.scales_[:2], rtol=1e-12
    )
    # age is imputed with the sketch's median: exact moments given that median.
    imputed = frame["age"].fillna(out_of_core.medians_[2])
    np.testing.assert_allclose(out_of_core.means_[2], imputed.mean(), rtol=1e-12)
    np.testing.assert_allclose(out_of_core.scales_[2], imputed.std(ddof=0), rtol=1e-12)


def _rank_errors(values, cuts, quantiles):
    """Distance, in rows, from each cut's target rank to its ranks in ``values``."""
    ordered = np.sort(values[~np.isnan(values)])
    target = np.asarray(quantiles) * (len(ordered) - 1)
    below = np.searchsorted(ordered, cuts, side="left")
    through = np.searchsorted(ordered, cuts, side="right") - 1
    return np.maximum(0, np.maximum(below - target, target - through))


def _rank_ranges(values, cuts):
    """Ranks [first, last + 1] that each cut spans among the observed ``values``."""
    ordered = np.sort(values[~np.isnan(values)])
    return (
        np.searchsorted(ordered, cuts, side="left"),
        np.searchsorted(ordered, cuts, side="right"),
    )


def test_bin_edges_and_medians_are_within_the_rank_tolerance(frame, ddf):
    """Each approximate edge ranks within the documented tolerance of an exact one.

    The tolerance is the docstring's: (L + 1) n / 2048 plus one per partition,
    L = ceil(log8(10)) = 2 merge levels. Repeated edges are merged, so each
    in-memory edge must have a Dask edge within it, and each Dask edge an
    in-memory edge. gain (80% zeros) gets its zeros alone in a bin in both.
    """
    out_of_core = FeatureEncoder(n_bins=32).fit(ddf)
    in_memory = FeatureEncoder(n_bins=32).fit(frame)
    tolerance = 3 * N_ROWS / 2048 + N_PARTITIONS
    for j, column in enumerate(out_of_core.numeric_columns_):
        values = frame[column].to_numpy()
        ours = _rank_ranges(values, out_of_core.bin_edges_[j])
        exact = _rank_ranges(values, in_memory.bin_edges_[j])
        # Distance between rank ranges: 0 when they overlap.
        gaps = np.maximum(
            0,
            np.maximum(ours[0][:, None] - exact[1], exact[0] - ours[1][:, None]),
        )
        assert gaps.min(axis=1).max() <= tolerance  # each Dask edge near an exact one
        assert gaps.min(axis=0).max() <= tolerance  # each exact edge near a Dask one
        median = out_of_core.medians_[j]
        assert _rank_errors(values, [median], [0.5]).max() <= tolerance
    gain = out_of_core.numeric_columns_.index("gain")
    for edges in (out_of_core.bin_edges_[gain], in_memory.bin_edges_[gain]):
        np.testing.assert_array_equal(edges[:2], [0.0, np.nextafter(0.0, 1.0)])
        assert len(edges) == 32  # 30 quantiles of the non-zero gains, 0, next(0)


def test_the_sketch_meets_its_documented_bound():
    """Rank error below (levels + 1) * n / size plus one per chunk."""
    rng = np.random.RandomState(1)
    size, n_chunks, per_chunk = 128, 64, 2_000
    values = rng.lognormal(0, 2, n_chunks * per_chunk)
    roles = Roles({}, ["v"], None)
    parts = [
        chunk_stats(pd.DataFrame({"v": chunk}), roles, size)
        for chunk in np.split(values, n_chunks)
    ]
    levels = 0
    while len(parts) > 1:
        parts = [merge_stats(parts[i : i + 8], size) for i in range(0, len(parts), 8)]
        levels += 1
    quantiles = np.linspace(0, 1, 101)
    cuts = sketch_quantiles(parts[0].numeric["v"].sketch, quantiles)
    bound = (levels + 1) * len(values) / size + n_chunks
    errors = _rank_errors(values, cuts, quantiles)
    assert errors.max() <= bound
    assert errors.max() > 0  # compressed: not exact


def test_empty_partitions_are_fine(frame):
    parts = [frame.iloc[:100], frame.iloc[:0], frame.iloc[100:]]
    enc = FeatureEncoder().fit(_from_parts(parts))
    assert (
        enc.categories_[0].tolist()
        == FeatureEncoder().fit(frame).categories_[0].tolist()
    )


def test_strings_in_a_numeric_partition_are_named(frame):
    parts = [frame.iloc[i : i + 100].drop(columns="tags") for i in range(0, 2_000, 100)]
    parts[17] = parts[17].assign(age=["41"] * 99 + ["forty"])
    with pytest.raises(
        TypeError,
        match=re.escape("Column 'age' is float64 in the Dask DataFrame's meta but "),
    ) as error:
        FeatureEncoder().fit(_from_parts(parts))
    assert "in partition 17, with values that are not numbers (e.g. ['forty'])" in str(
        error.value
    )


def test_partition_errors_name_the_partition(frame):
    parts = [frame.iloc[i : i + 100].drop(columns="tags") for i in range(0, 500, 100)]
    missing_column = parts[:3] + [parts[3].drop(columns="city")] + parts[4:]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Partition 3 of the Dask DataFrame lacks columns 'city' that its "
            "meta lists."
        ),
    ):
        FeatureEncoder().fit(_from_parts(missing_column))
    objects = [p.astype({"city": object}) for p in parts]
    lists = objects[:2] + [objects[2].assign(city=[["a"]] * 100)] + objects[3:]
    with pytest.raises(
        TypeError,
        match=re.escape(
            "Column 'city' holds lists of values in partition 2 but scalars in "
            "partition 3"
        ),
    ):
        FeatureEncoder().fit(_from_parts(lists))
    dicts = objects[:4] + [objects[4].assign(city=[{"a": 1}] * 100)]
    with pytest.raises(
        TypeError,
        match=re.escape(
            "In partition 4 of the Dask DataFrame: Cells of the wrong kind in 'city'"
        ),
    ):
        FeatureEncoder().fit(_from_parts(dicts))


def test_declared_columns_and_inputs_are_checked(frame):
    ddf = dd.from_pandas(frame.drop(columns="tags"), npartitions=3)
    with pytest.raises(
        ValueError, match=re.escape("names columns that are not in X: 'nope'")
    ):
        FeatureEncoder(numeric_columns=["nope"]).fit(ddf)
    with pytest.raises(TypeError, match="accepts a Dask DataFrame, not a Dask Series"):
        FeatureEncoder().fit(ddf["age"])
