"""FeatureEncoder's fit as statistics: per chunk, merged, then finished.

An in-memory fit is one chunk. A Dask fit computes one chunk's statistics per
partition and merges them in a tree, never holding the frame. Category counts
and numeric moments (count, mean, sum of squared deviations, merged with Chan,
Golub and LeVeque's update [1]_) merge exactly, so the vocabulary, the
``min_frequency`` cut and the means and scales equal those of an in-memory fit
of the same rows. Quantiles (medians, bin edges) are the only difference: exact
in memory, from a mergeable sketch out of core (see :class:`Sketch`).

References
----------
.. [1] T. F. Chan, G. H. Golub and R. J. LeVeque. "Algorithms for computing
   the sample variance: analysis and recommendations". The American
   Statistician 37(3), 1983.
"""

import re
from numbers import Integral
from typing import NamedTuple

import numpy as np
import pandas as pd

from skmtl._cells import (
    BadCells,
    category_codes,
    first_value_is_bag,
    from_arrow,
    numeric_matrix,
    numeric_values,
    raise_bad_cells,
    read_bags,
)
from skmtl._validation import format_names

#: Values a sketch keeps per column and chunk; each compression moves an
#: estimated rank by at most n / SKETCH_SIZE.
SKETCH_SIZE = 2048
# Partition statistics merged per task in the Dask tree reduction.
_MERGE_FANOUT = 8


class Roles(NamedTuple):
    """What the fit reads from each column.

    ``categorical`` maps a column to "declared" (in ``categorical_columns``:
    scalars), "multi" (in ``multi_valued_columns``) or "auto" (by dtype; bags
    when its first value is one), in output order; ``numeric`` lists numeric
    columns.
    """

    categorical: dict
    numeric: list
    separator: object


class CategoryStats(NamedTuple):
    """Counts of one categorical or multi-valued column's values."""

    kind: object  # "scalar", "multi", or None when every cell is missing
    where: object  # partition whose cells decided the kind (None in memory)
    counts: pd.Series  # value string -> count
    longest: int  # longest bag


class NumericStats(NamedTuple):
    """Moments and a quantile sketch of one numeric column's observed values."""

    count: int
    mean: float
    m2: float  # sum of squared deviations from the mean
    sketch: "Sketch"


class ChunkStats(NamedTuple):
    """Statistics of a chunk of rows, mergeable with :func:`merge_stats`."""

    n_rows: int
    categorical: dict
    numeric: dict


class Sketch(NamedTuple):
    """Weighted values summarising a column's distribution for its quantiles.

    ``weights=None`` holds the exact values (the in-memory fit). Otherwise each
    value stands for ``weight`` consecutive sorted values of the column: a
    chunk of more than ``size`` values is cut into ``size`` blocks of equal
    weight, each kept as the value at its middle rank. Each such compression
    moves the estimated rank of any value by at most ``n / size``, so a
    quantile's rank error is below ``(levels + 1) * n / size`` plus one per
    partition, ``levels`` being the depth of the merge tree.
    """

    values: np.ndarray
    weights: object


def _sketch(values, size):
    """Sketch of observed values: exact when ``size`` is None."""
    if size is None:
        return Sketch(values, None)
    return _compress(values, np.ones(values.size), size)


def _compress(values, weights, size):
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    if values.size <= size:
        return Sketch(values, weights)
    cumulative = np.cumsum(weights)
    bounds = np.round(np.linspace(0, cumulative[-1], size + 1))
    middles = (bounds[:-1] + bounds[1:]) / 2
    picked = np.searchsorted(cumulative, middles, side="right")
    block = np.diff(bounds)
    return Sketch(values[picked][block > 0], block[block > 0])


def _merge_sketches(sketches, size):
    if all(s.weights is None for s in sketches):
        return Sketch(np.concatenate([s.values for s in sketches]), None)
    values = np.concatenate([s.values for s in sketches])
    weights = np.concatenate([s.weights for s in sketches])
    return _compress(values, weights, size)


def sketch_quantiles(sketch, quantiles):
    """Return the quantiles of a sketched column (``np.quantile``'s linear rule).

    Parameters
    ----------
    sketch : Sketch
        A non-empty sketch.
    quantiles : ndarray of shape (n_quantiles,)
        Probabilities in [0, 1].

    Returns
    -------
    ndarray of shape (n_quantiles,)
    """
    if sketch.weights is None:
        return np.quantile(sketch.values, quantiles)
    cumulative = np.cumsum(sketch.weights)
    total = cumulative[-1]
    ranks = np.asarray(quantiles) * (total - 1)
    low = np.floor(ranks)
    below = sketch.values[np.searchsorted(cumulative, low, side="right")]
    high = np.minimum(low + 1, total - 1)
    above = sketch.values[np.searchsorted(cumulative, high, side="right")]
    return below + (above - below) * (ranks - low)


def _median(sketch):
    # np.median (not np.quantile) is what SimpleImputer's median computes.
    if sketch.weights is None:
        return float(np.median(sketch.values))
    return float(sketch_quantiles(sketch, [0.5])[0])


# -- per chunk -----------------------------------------------------------------


def _string_counts(codes, strings):
    # Shifted by one so that missing cells (-1) fall in a bin dropped after.
    counts = pd.Series(np.bincount(codes + 1, minlength=len(strings) + 1)[1:])
    counts.index = pd.Index(strings, dtype=object)
    if counts.index.has_duplicates:  # 1 and "1" are one category
        counts = counts.groupby(level=0, sort=False).sum()
    return counts[counts.to_numpy() > 0]


def _category_stats(series, column, mode, separator, where):
    series = from_arrow(series)
    if mode == "multi" or (
        mode == "auto" and series.dtype == object and first_value_is_bag(series)
    ):
        # Only declared columns are split: a detected one holds lists.
        context = "declared" if mode == "multi" else "detected"
        separator = separator if mode == "multi" else None
        cells = series.to_numpy(dtype=object)
        lengths, codes, strings = read_bags(
            cells, pd.isna(cells), column, separator, context
        )
        longest = int(lengths.max()) if len(lengths) else 0
        return CategoryStats("multi", where, _string_counts(codes, strings), longest)
    context = "declared" if mode == "declared" else "auto"
    codes, strings = category_codes(series, column, context)
    counts = _string_counts(codes, strings)
    if mode == "auto" and where is not None:
        _check_not_stringified_lists(counts.index, column)
    kind = "scalar" if mode == "declared" or (codes >= 0).any() else None
    return CategoryStats(kind, where if kind else None, counts, 0)


# str() of a list or tuple (numpy arrays print as "['a' 'b']").
_LIST_REPR = r"^(\[.*\]|\(.*\))$"


def _check_not_stringified_lists(strings, column):
    """Reject a Dask column whose every string (an Index) is the ``str`` of a list.

    Dask's ``dataframe.convert-string`` option (on by default) turns a column
    of lists into their strings when the frame is made; fitted as categories,
    it would silently lose the values.
    """
    if len(strings) and strings.str.match(_LIST_REPR, flags=re.DOTALL).all():
        example = strings[int(np.argmax(strings.str.len()))]
        raise TypeError(
            f"Column {column!r} holds strings that look like lists (e.g. "
            f"{example!r}): Dask's 'dataframe.convert-string' option, on by "
            "default, turns a column of lists into strings. Make the Dask "
            'DataFrame within dask.config.set({"dataframe.convert-string": '
            "False}) or give the column a pyarrow list dtype; if these strings "
            "are categories, name the column in categorical_columns."
        )


def _numeric_stats(values, sketch_size):
    observed = values[~np.isnan(values)]
    count = observed.size
    if count == 0:
        return NumericStats(0, 0.0, 0.0, _sketch(observed, sketch_size))
    # StandardScaler's corrected two-pass formulas, so that an in-memory fit
    # of a column without missing values gives its mean and scale bit for bit.
    mean = observed.sum() / count
    deviations = observed - mean
    m2 = (deviations**2).sum() - deviations.sum() ** 2 / count
    return NumericStats(count, float(mean), float(m2), _sketch(observed, sketch_size))


def chunk_stats(frame, roles, sketch_size=None, where=None):
    """Return the statistics of a chunk of rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows, with every column of ``roles``.
    roles : Roles
        What to read from each column.
    sketch_size : int or None, default=None
        Values kept per quantile sketch; None keeps them all (exact).
    where : int or None, default=None
        The chunk's partition index, recorded for errors.

    Returns
    -------
    ChunkStats
    """
    categorical, problems = {}, []
    for column, mode in roles.categorical.items():
        try:
            categorical[column] = _category_stats(
                frame[column], column, mode, roles.separator, where
            )
        except BadCells as problem:
            problems.append(problem)
    if problems:
        raise_bad_cells(problems)
    values = numeric_matrix(frame, roles.numeric)
    numeric = {
        column: _numeric_stats(values[:, j], sketch_size)
        for j, column in enumerate(roles.numeric)
    }
    return ChunkStats(len(frame), categorical, numeric)


# -- merge -----------------------------------------------------------------------


def _merge_moments(a, b):
    """Chan, Golub and LeVeque's pairwise update of (count, mean, m2)."""
    if a[0] == 0:
        return b
    if b[0] == 0:
        return a
    count = a[0] + b[0]
    delta = b[1] - a[1]
    mean = a[1] + delta * b[0] / count
    m2 = a[2] + b[2] + delta**2 * a[0] * b[0] / count
    return count, mean, m2


def _merge_category(column, parts):
    seen = {}
    for part in parts:
        if part.kind is not None:
            seen.setdefault(part.kind, part.where)
    if len(seen) > 1:
        raise TypeError(
            f"Column {column!r} holds lists of values in partition {seen['multi']} "
            f"but scalars in partition {seen['scalar']}; a column must be "
            "multi-valued in every partition or in none."
        )
    kind, where = next(iter(seen.items()), (None, None))
    counts = pd.concat([p.counts for p in parts]).groupby(level=0, sort=False).sum()
    return CategoryStats(kind, where, counts, max(p.longest for p in parts))


def _merge_numeric(parts, sketch_size):
    count, mean, m2 = 0, 0.0, 0.0
    for part in parts:
        count, mean, m2 = _merge_moments((count, mean, m2), part[:3])
    sketch = _merge_sketches([p.sketch for p in parts], sketch_size)
    return NumericStats(count, mean, m2, sketch)


def merge_stats(parts, sketch_size=SKETCH_SIZE):
    """Merge the statistics of chunks of the same columns.

    Parameters
    ----------
    parts : list of ChunkStats
        Statistics of disjoint chunks.
    sketch_size : int, default=SKETCH_SIZE
        Values kept per merged sketch.

    Returns
    -------
    ChunkStats
    """
    first = parts[0]
    categorical = {
        c: _merge_category(c, [p.categorical[c] for p in parts])
        for c in first.categorical
    }
    numeric = {
        c: _merge_numeric([p.numeric[c] for p in parts], sketch_size)
        for c in first.numeric
    }
    return ChunkStats(sum(p.n_rows for p in parts), categorical, numeric)


# -- finish ------------------------------------------------------------------------


def vocabulary(counts, n_rows, min_frequency):
    """Return the sorted frequent values of a column.

    Values seen fewer than ``min_frequency`` times (a count, or a fraction of
    ``n_rows`` when a float), compared as ``OrdinalEncoder`` does with no
    rounding, are left out and share code 0 with unknown values.

    Parameters
    ----------
    counts : pandas.Series
        Value string -> count.
    n_rows : int
        Rows fitted, missing ones included.
    min_frequency : int, float or None
        The encoder's parameter.

    Returns
    -------
    ndarray of str objects
        Sorted like Python strings (as ``OrdinalEncoder`` sorts them).
    """
    if min_frequency is None:
        kept = counts.index
    else:
        threshold = (
            min_frequency
            if isinstance(min_frequency, Integral)
            else n_rows * min_frequency
        )
        kept = counts.index[counts.to_numpy() >= threshold]
    return np.asarray(sorted(kept), dtype=object)


def _scale(n_rows, count, mean, m2, median):
    """Mean and scale of the median-imputed column, as StandardScaler has them."""
    n_rows, mean, m2 = _merge_moments((count, mean, m2), (n_rows - count, median, 0.0))
    variance = m2 / n_rows
    # StandardScaler's test for a constant column (var within rounding error).
    eps = np.finfo(np.float64).eps
    constant = variance <= n_rows * eps * variance + (n_rows * mean * eps) ** 2
    return mean, 1.0 if constant else float(np.sqrt(variance))


def _mode(sketch):
    """Most frequent value of a sketched column, its count, and the total count.

    Exact for an exact sketch; from a weighted sketch, the count is off by at
    most the sketch's rank error at each end of the value's run of ranks.
    """
    values, inverse = np.unique(sketch.values, return_inverse=True)
    counts = np.bincount(inverse.ravel(), sketch.weights, minlength=values.size)
    top = int(counts.argmax())  # ties: the smallest value, as np.unique sorts
    return values[top], counts[top], counts.sum()


def bin_edges(sketch, n_bins):
    """Return the inner bin edges of a sketched numeric column.

    Quantile edges, except when the most frequent value ``m`` covers more than
    ``1 / n_bins`` of the observed values and the column has other values
    (such as the 96% zeros of capital gains): then ``m`` gets a bin of its own,
    ``[m, nextafter(m, inf))``, and the other values are cut at ``n_bins - 2``
    inner quantiles of their own, so the magnitude of a mostly-zero column is
    binned too. At most ``n_bins + 1`` bins; repeated edges are merged.

    Parameters
    ----------
    sketch : Sketch
        The column's observed values (possibly none).
    n_bins : int
        The encoder's parameter, at least 1.

    Returns
    -------
    ndarray of float64, sorted, without repeats
    """
    if sketch.values.size == 0:
        return np.empty(0)
    mode, count, total = _mode(sketch)
    if count * n_bins <= total or count == total:
        cuts = sketch_quantiles(sketch, np.linspace(0, 1, n_bins + 1)[1:-1])
        return np.unique(np.asarray(cuts, dtype=np.float64))
    others = sketch.values != mode
    weights = None if sketch.weights is None else sketch.weights[others]
    rest = Sketch(sketch.values[others], weights)
    cuts = sketch_quantiles(rest, np.linspace(0, 1, n_bins)[1:-1])
    # searchsorted(side="right") puts x == mode alone in [mode, nextafter(mode)).
    edges = np.r_[cuts, mode, np.nextafter(mode, np.inf)]
    return np.unique(edges.astype(np.float64))


def _finish_numeric(stats, columns, n_bins):
    n = len(columns)
    medians, means, scales = np.zeros(n), np.zeros(n), np.ones(n)
    edges = []
    for j, column in enumerate(columns):
        s = stats.numeric[column]
        medians[j] = _median(s.sketch) if s.count else 0.0
        means[j], scales[j] = _scale(stats.n_rows, s.count, s.mean, s.m2, medians[j])
        if n_bins:
            edges.append(bin_edges(s.sketch, n_bins))
    return medians, means, scales, edges


def finish(stats, roles, min_frequency, n_bins):
    """Turn merged statistics into the encoder's fitted attributes.

    Parameters
    ----------
    stats : ChunkStats
        Statistics of every fitted row.
    roles : Roles
        The columns' roles.
    min_frequency : int, float or None
        The encoder's parameter.
    n_bins : int
        The encoder's parameter.

    Returns
    -------
    dict
        Fitted attribute name -> value.
    """
    kinds = {c: stats.categorical[c].kind for c in roles.categorical}
    categorical = [c for c, kind in kinds.items() if kind != "multi"]
    multi = [c for c, kind in kinds.items() if kind == "multi"]
    vocabularies = {
        c: vocabulary(stats.categorical[c].counts, stats.n_rows, min_frequency)
        for c in roles.categorical
    }
    medians, means, scales, edges = _finish_numeric(stats, roles.numeric, n_bins)
    return {
        "categorical_columns_": categorical,
        "categories_": [vocabularies[c] for c in categorical],
        "multi_valued_columns_": multi,
        "multi_valued_categories_": [vocabularies[c] for c in multi],
        "multi_valued_lengths_": [max(stats.categorical[c].longest, 1) for c in multi],
        "numeric_columns_": list(roles.numeric),
        "medians_": medians,
        "means_": means,
        "scales_": scales,
        "bin_edges_": edges,
    }


# -- Dask ------------------------------------------------------------------------


def _check_partition_dtypes(part, index, numeric_dtypes):
    """Name a numeric column whose partition holds something else than numbers."""
    for column, meta_dtype in numeric_dtypes.items():
        series = part[column]
        if pd.api.types.is_numeric_dtype(series.dtype):
            continue
        _, wrong = numeric_values(series)
        if wrong:
            raise TypeError(
                f"Column {column!r} is {meta_dtype} in the Dask DataFrame's meta "
                f"but {series.dtype} in partition {index}, with values that are not "
                f"numbers (e.g. {wrong}); fix the partition or declare the column "
                "in categorical_columns."
            )


def _partition_stats(part, index, roles, numeric_dtypes):
    """Statistics of one Dask partition, with its index in every error."""
    absent = [c for c in [*roles.categorical, *roles.numeric] if c not in part.columns]
    if absent:
        raise ValueError(
            f"Partition {index} of the Dask DataFrame lacks columns "
            f"{format_names(absent)} that its meta lists."
        )
    _check_partition_dtypes(part, index, numeric_dtypes)
    try:
        return chunk_stats(part, roles, SKETCH_SIZE, where=index)
    except (TypeError, ValueError) as exc:
        if type(exc) not in (TypeError, ValueError):
            raise
        raise type(exc)(f"In partition {index} of the Dask DataFrame: {exc}") from exc


def dask_stats(ddf, roles):
    """Compute a Dask DataFrame's statistics partition by partition.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The input, never materialised whole.
    roles : Roles
        The columns' roles, from its meta dtypes.

    Returns
    -------
    ChunkStats
    """
    import dask

    numeric_dtypes = {
        c: ddf.dtypes[c]
        for c in roles.numeric
        if pd.api.types.is_numeric_dtype(ddf.dtypes[c])
    }
    stats = [
        dask.delayed(_partition_stats)(part, i, roles, numeric_dtypes)
        for i, part in enumerate(ddf.to_delayed())
    ]
    while len(stats) > 1:
        stats = [
            dask.delayed(merge_stats)(stats[i : i + _MERGE_FANOUT])
            for i in range(0, len(stats), _MERGE_FANOUT)
        ]
    (merged,) = dask.compute(stats[0])
    return merged
