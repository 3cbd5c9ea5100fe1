"""FeatureEncoder: raw mixed columns -> embedding indices and scaled floats."""

import itertools
from numbers import Integral
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from skmtl._cells import (
    BadCells,
    category_codes,
    from_arrow,
    numeric_matrix,
    numeric_values,
    pack_bags,
    raise_bad_cells,
    read_bags,
)
from skmtl._encoder_fit import Roles, chunk_stats, dask_stats, finish
from skmtl._validation import (
    Interval,
    RealNotInt,
    as_feature_frame,
    check_is_fitted,
    check_unique_columns,
    format_names,
    is_dask_collection,
    is_dask_dataframe,
    set_feature_names,
)

# Frames up to this many rows are encoded from one object array with dict
# lookups: for a few rows, pandas' per-column overhead is most of the cost
# (on census-income, 32 string columns, the two cross near 150 rows).
_SMALL_FRAME_ROWS = 128
# Scaled numeric values are clipped to [-NUMERIC_CLIP, NUMERIC_CLIP], so that
# an extreme input (1e300) cannot overflow the network. No training value is
# clipped in a fit of up to 1e8 rows: a value of n lies at most sqrt(n - 1)
# standard deviations from their mean (Samuelson's inequality).
NUMERIC_CLIP = 1e4
_STATE_FORMAT = "skmtl.FeatureEncoder"
_STATE_VERSION = 1


class EncodedFeatures(NamedTuple):
    """The arrays a network reads, as returned by :meth:`FeatureEncoder.encode`.

    Parameters
    ----------
    categorical : ndarray of shape (n_samples, n_categorical + n_binned), dtype int64
        Embedding indices.
    numeric : ndarray of shape (n_samples, n_numeric), dtype float32
        Scaled numeric values.
    multi_valued : ndarray of shape (n_samples, n_multi_valued, max_length), dtype int64
        Bags of embedding indices, padded with -1.

    Attributes
    ----------
    categorical : ndarray of shape (n_samples, n_categorical + n_binned), dtype int64
        Embedding indices; 0 is unknown or rare, ``cardinality - 1`` is missing.
        The numeric columns' bins follow the categorical columns.
    numeric : ndarray of shape (n_samples, n_numeric), dtype float32
        Imputed and standardised numeric columns.
    multi_valued : ndarray of shape (n_samples, n_multi_valued, max_length), dtype int64
        One bag of embedding indices per multi-valued column, in the order of
        its values, with the codes of the categorical columns (0 unknown or
        rare, ``cardinality - 1`` for a missing cell, in slot 0), padded with
        -1. ``max_length`` is the longest bag among these rows (at least 1);
        the shape is (n_samples, 0, 0) without multi-valued columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmtl import FeatureEncoder
    >>> df = pd.DataFrame({"city": ["Paris", "Rome"], "age": [31.0, 52.0]})
    >>> encoded = FeatureEncoder(n_bins=0).fit(df).encode(df)
    >>> encoded.categorical.dtype, encoded.numeric.dtype, encoded.multi_valued.shape
    (dtype('int64'), dtype('float32'), (2, 0, 0))
    """

    categorical: np.ndarray
    numeric: np.ndarray
    multi_valued: np.ndarray


def _is_categorical_dtype(dtype):
    """Object, string, category and bool columns are categorical by default."""
    return not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


class _Lookup:
    """Codes of one column's values: 0 unknown or rare, 1..K known, K+1 missing."""

    def __init__(self, categories):
        self.by_value = {value: code for code, value in enumerate(categories, 1)}
        self.missing_code = len(categories) + 1

    def codes(self, codes, strings):
        """Map value codes (indices into ``strings``, -1 missing) to embedding codes."""
        get = self.by_value.get
        table = np.array([*map(get, strings, itertools.repeat(0, len(strings))),
                          self.missing_code], dtype=np.int64)  # fmt: skip
        return table[codes]  # -1 (missing) takes the last entry

    def cell_codes(self, cells, missing, stringify):
        """Codes of cells by dict lookup; None if a cell is neither str nor allowed."""
        get = self.by_value.get
        try:
            codes = np.fromiter(
                map(get, cells, itertools.repeat(0)), dtype=np.int64, count=len(cells)
            )
        except TypeError:  # unhashable (a list): the column reader names it
            return None
        # The keys are str, so a cell that is not one got 0: look at those again.
        for i in np.flatnonzero((codes == 0) & ~missing).tolist():
            cell = cells[i]
            if type(cell) is not str:
                if not stringify:
                    return None
                codes[i] = get(str(cell), 0)
        codes[missing] = self.missing_code
        return codes


class _FrameReader:
    """Reads a frame's columns one at a time, vectorised."""

    def __init__(self, frame):
        self.frame = frame

    def categories(self, column, lookup):
        codes, strings = category_codes(self.frame[column], column, "fitted")
        return lookup.codes(codes, strings)

    def numbers(self, column):
        return numeric_values(self.frame[column])

    def cells(self, column):
        cells = from_arrow(self.frame[column]).to_numpy(dtype=object)
        return cells, pd.isna(cells)


def _object_cells(frame):
    """The cells of a small frame as an (n_rows, n_columns) object array."""
    if len(frame) == 1:
        # A row reads each cell as a scalar: several times faster than
        # converting every column to objects. The scalars may be numpy ones
        # (np.int64 for 1), whose str is the same.
        row = frame.iloc[0]
        if row.dtype == object or isinstance(row.dtype, pd.StringDtype):
            return row.to_numpy(dtype=object)[np.newaxis]
    return frame.to_numpy(dtype=object)


class _SmallFrameReader(_FrameReader):
    """Reads a frame of few rows from one object array, with dict lookups.

    A cell's string must be the one ``astype(str)`` gives, so the lookups take
    only ``str`` cells and the cells of integer and bool columns (whose ``str``
    is the same); any other column is read like a large frame.
    """

    def __init__(self, frame):
        super().__init__(frame)
        self._cells = _object_cells(frame)
        self._missing = pd.isna(self._cells)
        self._kinds = [dtype.kind for dtype in frame.dtypes]
        columns = frame.columns.tolist()
        self._positions = {column: p for p, column in enumerate(columns)}

    def categories(self, column, lookup):
        p = self._positions[column]
        stringify = self._kinds[p] in "iub"
        codes = lookup.cell_codes(self._cells[:, p], self._missing[:, p], stringify)
        return super().categories(column, lookup) if codes is None else codes

    def numbers(self, column):
        p = self._positions[column]
        if self._kinds[p] not in "iuf":
            return super().numbers(column)
        values = np.where(self._missing[:, p], np.nan, self._cells[:, p])
        return values.astype(np.float64), []

    def cells(self, column):
        p = self._positions[column]
        return self._cells[:, p], self._missing[:, p]


class FeatureEncoder(TransformerMixin, BaseEstimator):
    """Encode raw mixed columns for a multi-task network.

    Categorical ("sparse") columns become contiguous integer codes for an
    embedding lookup: code 0 is reserved for categories unseen in ``fit`` or
    rarer than ``min_frequency``, codes ``1..K`` are the known categories (in
    sorted order of their strings), and code ``K + 1`` is "missing". Numeric
    ("dense") columns are imputed with the median and standardised, then
    clipped to [-1e4, 1e4] (no value of a fit on up to 1e8 rows is that far from
    the mean; larger ones, 1e300 say, could overflow the network).
    Multi-valued columns (lists of values, such as tags) become bags of codes.
    The codes and scales are those of scikit-learn's ``OrdinalEncoder``,
    ``SimpleImputer(strategy="median")`` and ``StandardScaler``, computed with
    vectorised code of its own so that the fit can also run out of core on a
    Dask DataFrame.

    Parameters
    ----------
    categorical_columns : list of str or None, default=None
        Columns to treat as categorical, such as integer-coded ids. Columns
        named in no list go by dtype: object, string, category and bool
        columns are categorical (multi-valued if their first value is a list),
        the others numeric.
    numeric_columns : list of str or None, default=None
        Columns to treat as numeric; strings in them that are not numbers are
        an error. When both ``categorical_columns`` and ``numeric_columns``
        are given, only the declared columns are used.
    min_frequency : int, float or None, default=None
        Categories seen fewer times than this (a count, or a fraction of the
        rows when a float in (0, 1)) share code 0 with unknown categories.
    n_bins : int, default=32
        Each numeric column is also cut into quantile bins, and the bin
        becomes an extra categorical column named ``"<col>_bin"`` (missing
        values get their own code). The network then sees both the scaled
        value and a learnt embedding of its range, which lets it fit
        non-linear effects of numbers (age, gains) in few epochs. When the
        column's most frequent value covers more than ``1 / n_bins`` of its
        observed values and it has other values (the zeros of a column of
        gains), that value gets a bin of its own and the other values are
        cut at their own quantiles, so at most ``n_bins + 1`` bins; otherwise
        at most ``n_bins``. 0 turns binning off.
    multi_valued_columns : list of str or None, default=None
        Columns whose cells are lists, tuples or 1-D arrays of values (or,
        with ``separator``, strings of values). An object column whose first
        non-missing cell is a list, tuple or array is multi-valued without
        being named here.
    separator : str or None, default=None
        When set, string cells of the columns named in
        ``multi_valued_columns`` are split on it (``"a|b"`` is the bag
        ``["a", "b"]``); empty values are dropped, so ``""`` is an empty bag.

    Attributes
    ----------
    categorical_columns_ : list of str
        Categorical columns, in output order.
    categories_ : list of ndarray of str
        Known (frequent) categories of each categorical column, as strings,
        sorted: code ``k + 1`` is ``categories_[j][k]``.
    numeric_columns_ : list of str
        Numeric columns, in output order.
    medians_ : ndarray of shape (n_numeric,)
        Median of each numeric column, which replaces its missing values (0
        for a column without values).
    means_ : ndarray of shape (n_numeric,)
        Mean of each numeric column after imputation.
    scales_ : ndarray of shape (n_numeric,)
        Standard deviation (ddof=0) of each numeric column after imputation;
        1 for a constant column.
    binned_columns_ : list of str
        Names of the extra bin columns, one per numeric column (empty when
        ``n_bins=0``); they follow the categorical columns in the codes.
    bin_edges_ : list of ndarray
        Inner edges of each numeric column: bin ``b`` (from 1) holds values
        in ``[edges[b - 2], edges[b - 1])``. With a frequent value ``m`` (see
        ``n_bins``), ``m`` and ``nextafter(m, inf)`` are edges, so ``m`` is
        alone in its bin, and the others are quantiles of the other values.
    cardinalities_ : list of int
        Number of codes of each categorical column (known categories + 2),
        then of each bin column (bins + 2).
    multi_valued_columns_ : list of str
        Multi-valued columns, declared ones first, in output order.
    multi_valued_categories_ : list of ndarray of str
        Known (frequent) values of each multi-valued column, sorted, as in
        ``categories_``.
    multi_valued_cardinalities_ : list of int
        Number of codes of each multi-valued column (known values + 2).
    multi_valued_lengths_ : list of int
        Longest bag of each multi-valued column in ``fit`` (at least 1): its
        number of slots in :meth:`transform`.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names seen in ``fit``, when they are all strings.

    See Also
    --------
    sklearn.preprocessing.OrdinalEncoder : The categorical codes, shifted by one.
    sklearn.preprocessing.StandardScaler : The scaling of numeric columns.

    Notes
    -----
    Columns are matched by name: at transform time their order does not
    matter, extra columns are ignored, and a missing column is an error naming
    it; column names must be unique. A numpy array is treated as all-numeric
    columns named ``x0, x1, ...``. Polars DataFrames, pyarrow Tables and
    pandas frames with pyarrow-backed columns are read as the pandas frame
    pyarrow converts them to (integer and bool columns nullable), so they get
    the codes of that frame. A category is the string ``str`` gives a value,
    so ``1`` and ``"1"`` are the same category. Categorical cells must be
    scalars: a dict, a set or a list there is an error, unless the column is
    multi-valued.

    A multi-valued column has one vocabulary over all its values, with the
    rules of a categorical column, a value's frequency being its number of
    occurrences. A missing cell is the bag ``[K + 1]``; an empty list is an
    empty bag; missing values inside a list are dropped. Its cells must all
    be lists, tuples or 1-D arrays of scalars (or strings when
    ``separator`` is set).

    :meth:`encode` returns the int64 codes, the float32 values and the bags
    separately, as the networks read them. :meth:`transform` returns one float
    array so the encoder fits in any scikit-learn pipeline: categorical codes,
    bin codes, each multi-valued column's codes padded with -1 to
    ``multi_valued_lengths_`` slots (longer bags are cut), then the scaled
    numeric values, in the order of :meth:`get_feature_names_out`.

    ``fit`` also accepts a ``dask.dataframe.DataFrame`` and reads it partition
    by partition without materialising it; column roles come from its meta
    dtypes. Category counts and numeric moments merge exactly, so the
    categories and the means and scales are those of an in-memory fit of the
    same rows (given its medians). Medians and bin edges come from a
    mergeable quantile sketch of 2048 values per column and partition: the
    rank of each among the column's values is within ``(L + 1) n / 2048``
    (plus one per partition) of its exact rank, ``L`` being the number of
    merge levels, ``ceil(log8(n_partitions))``: 0.15% of the rows for 10
    partitions, 0.2% for up to 512. The most frequent value's share is
    counted on the sketch too, within twice that tolerance. Bins can
    therefore differ slightly from an in-memory fit's. Dask's default
    ``dataframe.convert-string`` option turns object columns into strings,
    lists included, when a frame is made; keep lists with
    ``dask.config.set({"dataframe.convert-string": False})`` or with pyarrow
    list dtypes. A column not named in ``categorical_columns`` whose strings
    all look like lists (``"['a', 'b']"``) in a partition is an error saying
    so.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmtl import FeatureEncoder
    >>> df = pd.DataFrame({"city": ["Paris", "Rome", None], "age": [31.0, None, 52.0]})
    >>> enc = FeatureEncoder(n_bins=0).fit(df)
    >>> enc.categorical_columns_, enc.numeric_columns_, enc.cardinalities_
    (['city'], ['age'], [4])
    >>> enc.encode(pd.DataFrame({"age": [40.0], "city": ["Oslo"]})).categorical
    array([[0]])
    >>> FeatureEncoder(n_bins=2).fit(df).get_feature_names_out()
    array(['city', 'age_bin', 'age'], dtype=object)

    Multi-valued columns hold lists; their codes come as padded bags:

    >>> tags = pd.DataFrame({"tags": [["a", "b"], ["b"], None, []]})
    >>> enc = FeatureEncoder().fit(tags)
    >>> enc.multi_valued_columns_, enc.multi_valued_categories_[0].tolist()
    (['tags'], ['a', 'b'])
    >>> enc.encode(tags).multi_valued[:, 0, :]
    array([[ 1,  2],
           [ 2, -1],
           [ 3, -1],
           [-1, -1]])
    """

    _parameter_constraints = {
        "categorical_columns": [None, "array-like"],
        "numeric_columns": [None, "array-like"],
        "min_frequency": [
            None,
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="neither"),
        ],
        "n_bins": [Interval(Integral, 0, None, closed="left")],
        "multi_valued_columns": [None, "array-like"],
        "separator": [None, str],
    }

    def __init__(
        self,
        categorical_columns=None,
        numeric_columns=None,
        min_frequency=None,
        n_bins=32,
        multi_valued_columns=None,
        separator=None,
    ):
        self.categorical_columns = categorical_columns
        self.numeric_columns = numeric_columns
        self.min_frequency = min_frequency
        self.n_bins = n_bins
        self.multi_valued_columns = multi_valued_columns
        self.separator = separator

    # -- fit ---------------------------------------------------------------------

    def fit(self, X, y=None):
        """Learn the categories and the numeric medians, means and scales.

        Parameters
        ----------
        X : DataFrame, dask DataFrame or array-like of shape (n_samples, n_features)
            Raw input columns. A Dask DataFrame is read partition by partition.
        y : None
            Ignored.

        Returns
        -------
        self : FeatureEncoder
            The fitted encoder.
        """
        self._validate_params()
        if is_dask_collection(X):
            return self._fit_dask(X)
        frame = as_feature_frame(self, X, reset=True)
        roles = self._roles(frame.columns, frame.dtypes)
        return self._finish(chunk_stats(frame, roles), roles)

    def _fit_dask(self, ddf):
        """Fit on a Dask DataFrame from per-partition statistics."""
        if not is_dask_dataframe(ddf):
            raise TypeError(
                f"FeatureEncoder.fit accepts a Dask DataFrame, not a Dask "
                f"{type(ddf).__name__}; convert it with to_dask_dataframe() or "
                "to_frame()."
            )
        check_unique_columns(ddf.columns)
        if len(ddf.columns) == 0:
            raise ValueError("Found a Dask DataFrame with 0 columns; 1 is required.")
        set_feature_names(self, ddf.columns)
        roles = self._roles(ddf.columns, ddf.dtypes)
        stats = dask_stats(ddf, roles)
        if stats.n_rows == 0:
            raise ValueError("Found a Dask DataFrame with 0 rows; 1 is required.")
        return self._finish(stats, roles)

    def _finish(self, stats, roles):
        return self._set_fitted(finish(stats, roles, self.min_frequency, self.n_bins))

    def _set_fitted(self, fitted):
        """Set fitted attributes and derive the codes' sizes and lookups."""
        for name, value in fitted.items():
            setattr(self, name, value)
        self.binned_columns_ = (
            [f"{c}_bin" for c in self.numeric_columns_] if self.n_bins else []
        )
        self.cardinalities_ = [len(c) + 2 for c in self.categories_] + [
            len(edges) + 3 for edges in self.bin_edges_
        ]
        self.multi_valued_cardinalities_ = [
            len(c) + 2 for c in self.multi_valued_categories_
        ]
        self._lookups = [_Lookup(c) for c in self.categories_]
        self._multi_lookups = [_Lookup(c) for c in self.multi_valued_categories_]
        return self

    def _roles(self, columns, dtypes):
        """Decide which columns are categorical, multi-valued and numeric."""
        declared = {
            name: self._declared(name, columns)
            for name in (
                "categorical_columns",
                "multi_valued_columns",
                "numeric_columns",
            )
        }
        self._check_overlaps(declared)
        if self.separator is not None and (
            not self.separator or declared["multi_valued_columns"] is None
        ):
            raise ValueError(
                "separator splits the string cells of the columns named in "
                "multi_valued_columns: it must be a non-empty string and "
                f"multi_valued_columns must be set; got separator={self.separator!r}."
            )
        cat, multi, num = (declared[name] or [] for name in declared)
        rest = []
        if (
            declared["categorical_columns"] is None
            or declared["numeric_columns"] is None
        ):
            # Declared columns keep their role; every other column goes by dtype.
            taken = {*cat, *multi, *num}
            rest = [c for c in columns if c not in taken]
        kinds = dict(zip(columns, dtypes))
        auto_cat = [c for c in rest if _is_categorical_dtype(kinds[c])]
        auto_num = [c for c in rest if not _is_categorical_dtype(kinds[c])]
        categorical = {c: "declared" for c in cat}
        categorical.update({c: "multi" for c in multi})
        categorical.update({c: "auto" for c in auto_cat})
        return Roles(categorical, num + auto_num, self.separator)

    def _declared(self, name, columns):
        value = getattr(self, name)
        if value is None:
            return None
        value = list(value)
        if len(set(value)) != len(value):
            raise ValueError(f"{name} contains duplicates: {value}.")
        absent = [c for c in value if c not in columns]
        if absent:
            raise ValueError(
                f"{name} names columns that are not in X: {format_names(absent)}."
            )
        return value

    @staticmethod
    def _check_overlaps(declared):
        roles = {
            "categorical_columns": "categorical",
            "multi_valued_columns": "multi-valued",
            "numeric_columns": "numeric",
        }
        for first, second in itertools.combinations(roles, 2):
            both = set(declared[first] or []) & set(declared[second] or [])
            if both:
                raise ValueError(
                    f"Columns cannot be both {roles[first]} and {roles[second]}: "
                    f"{format_names(both)} (named in {first} and {second})."
                )

    # -- encode ------------------------------------------------------------------

    def encode(self, X):
        """Return the categorical codes, scaled numeric values and bags separately.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw input with at least the columns seen in ``fit``.

        Returns
        -------
        EncodedFeatures
            ``categorical`` (int64, shape (n_samples, n_categorical +
            n_binned)), ``numeric`` (float32, shape (n_samples, n_numeric)) and
            ``multi_valued`` (int64, shape (n_samples, n_multi_valued,
            max_length)).
        """
        check_is_fitted(self)
        frame = as_feature_frame(self, X, reset=False)
        self._check_columns(frame)
        small = len(frame) <= _SMALL_FRAME_ROWS
        reader = (_SmallFrameReader if small else _FrameReader)(frame)
        n_categorical = len(self.categorical_columns_)
        # Each column is written into its place: stacking a list of columns
        # would hold every code twice at the peak of a fit.
        codes = np.empty((len(frame), len(self.cardinalities_)), dtype=np.int64)
        self._encode_categorical(reader, codes[:, :n_categorical])
        raw = numeric_matrix(frame, self.numeric_columns_, reader.numbers)
        self._encode_bins(raw, codes[:, n_categorical:])
        bags = self._encode_bags(reader, len(frame))
        return EncodedFeatures(codes, self._scale(raw), bags)

    def _check_columns(self, frame):
        needed = self.categorical_columns_ + self.multi_valued_columns_
        missing = [c for c in needed + self.numeric_columns_ if c not in frame.columns]
        if missing:
            raise ValueError(
                f"X is missing columns seen in fit: {format_names(missing)}."
            )

    def _encode_categorical(self, reader, out):
        """Write each categorical column's codes into a column of ``out``.

        0 is unknown or rare, 1..K known, K+1 missing.
        """
        problems = []
        pairs = zip(self.categorical_columns_, self._lookups)
        for j, (column, lookup) in enumerate(pairs):
            try:
                out[:, j] = reader.categories(column, lookup)
            except BadCells as problem:
                problems.append(problem)
        if problems:
            raise_bad_cells(problems)

    def _encode_bins(self, numeric, out):
        """Write each numeric column's bins into a column of ``out``.

        1..n_bins by range, n_bins + 1 missing.
        """
        for j, (column, edges) in enumerate(zip(numeric.T, self.bin_edges_)):
            out[:, j] = np.searchsorted(edges, column, side="right") + 1
            out[np.isnan(column), j] = len(edges) + 2

    def _scale(self, numeric):
        """Impute with the medians, standardise, clip to +-``NUMERIC_CLIP``.

        Standardising is what sklearn's SimpleImputer and StandardScaler do.
        Clipping keeps an extreme value (1e300) from overflowing float32 or
        the network; NaN, from statistics that overflowed in ``fit``, becomes
        0, the mean.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.where(np.isnan(numeric), self.medians_, numeric)
            scaled -= self.means_
            scaled /= self.scales_
        np.nan_to_num(scaled, copy=False, nan=0.0)
        np.clip(scaled, -NUMERIC_CLIP, NUMERIC_CLIP, out=scaled)
        return scaled.astype(np.float32)

    def _read_bags(self, reader):
        """Per multi-valued column: (lengths, codes, missing cells)."""
        declared = list(self.multi_valued_columns or [])
        read, problems = [], []
        for column, lookup in zip(self.multi_valued_columns_, self._multi_lookups):
            cells, missing = reader.cells(column)
            separator = self.separator if column in declared else None
            try:
                lengths, codes, strings = read_bags(
                    cells, missing, column, separator, "fitted"
                )
            except BadCells as problem:
                problems.append(problem)
                continue
            read.append((lengths, lookup.codes(codes, strings), missing))
        if problems:
            raise_bad_cells(problems)
        return read

    def _encode_bags(self, reader, n_rows):
        """Bags of codes, shape (n_rows, n_multi_valued, longest bag), -1 padded."""
        if not self.multi_valued_columns_:
            return np.empty((n_rows, 0, 0), dtype=np.int64)
        read = self._read_bags(reader)
        width = max(1, *(int(lengths.max(initial=0)) for lengths, _, _ in read))
        bags = np.full((n_rows, len(read), width), -1, dtype=np.int64)
        for j, ((lengths, codes, missing), lookup) in enumerate(
            zip(read, self._multi_lookups)
        ):
            pack_bags(lengths, codes, width, bags[:, j, :])
            bags[missing, j, 0] = lookup.missing_code
        return bags

    def transform(self, X):
        """Encode ``X`` into one float array: codes, bags, then scaled values.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw input with at least the columns seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            Categorical and bin codes, each multi-valued column's codes padded
            with -1 (or cut) to ``multi_valued_lengths_`` slots, then the
            scaled numeric values, in the order of :meth:`get_feature_names_out`.
        """
        encoded = self.encode(X)
        parts = [encoded.categorical.astype(np.float64)]
        for j, width in enumerate(self.multi_valued_lengths_):
            bags = encoded.multi_valued[:, j, :width]
            padding = np.full((bags.shape[0], width - bags.shape[1]), -1)
            parts += [bags, padding]
        parts.append(encoded.numeric.astype(np.float64))
        return np.hstack(parts).astype(np.float64, copy=False)

    def get_feature_names_out(self, input_features=None):
        """Return the output column names: categorical, bins, bags, then numeric.

        A multi-valued column ``tags`` gives ``tags_0, tags_1, ...``, one name
        per slot.

        Parameters
        ----------
        input_features : None
            Ignored; present for API consistency.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self)
        slots = [
            f"{column}_{i}"
            for column, width in zip(
                self.multi_valued_columns_, self.multi_valued_lengths_
            )
            for i in range(width)
        ]
        names = self.categorical_columns_ + self.binned_columns_ + slots
        return np.asarray([str(c) for c in names + self.numeric_columns_], dtype=object)

    # -- state -------------------------------------------------------------------

    def _get_state(self):
        """Return the fitted encoder as a dict of JSON types (see ``_set_state``).

        Returns
        -------
        dict
            Parameters and fitted attributes as lists of strings, ints and
            floats, with a ``format`` and ``version``. Floats keep every bit
            through ``json.dumps`` and ``json.loads``.
        """
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        return {
            "format": _STATE_FORMAT,
            "version": _STATE_VERSION,
            "params": {k: _json_param(k, v) for k, v in self.get_params().items()},
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
            "categorical_columns": _json_names(self.categorical_columns_),
            "categories": [[str(v) for v in c] for c in self.categories_],
            "multi_valued_columns": _json_names(self.multi_valued_columns_),
            "multi_valued_categories": [
                [str(v) for v in c] for c in self.multi_valued_categories_
            ],
            "multi_valued_lengths": [int(n) for n in self.multi_valued_lengths_],
            "numeric_columns": _json_names(self.numeric_columns_),
            "medians": [float(v) for v in self.medians_],
            "means": [float(v) for v in self.means_],
            "scales": [float(v) for v in self.scales_],
            "bin_edges": [[float(v) for v in edges] for edges in self.bin_edges_],
        }

    def _set_state(self, state):
        """Restore the parameters and fitted state that ``_get_state`` returned.

        Parameters
        ----------
        state : dict
            A dict from :meth:`_get_state`, possibly through JSON.

        Returns
        -------
        self : FeatureEncoder
            The encoder, fitted: it encodes as the one that gave ``state``.
        """
        if (state.get("format"), state.get("version")) != (
            _STATE_FORMAT,
            _STATE_VERSION,
        ):
            raise ValueError(
                f"Not a FeatureEncoder state of version {_STATE_VERSION}: format "
                f"{state.get('format')!r}, version {state.get('version')!r}."
            )
        self.set_params(**state["params"])
        self.n_features_in_ = state["n_features_in"]
        if state["feature_names_in"] is not None:
            self.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        floats = lambda values: np.asarray(values, dtype=np.float64)
        strings = lambda values: np.asarray(values, dtype=object)
        return self._set_fitted(
            {
                "categorical_columns_": list(state["categorical_columns"]),
                "categories_": [strings(c) for c in state["categories"]],
                "multi_valued_columns_": list(state["multi_valued_columns"]),
                "multi_valued_categories_": [
                    strings(c) for c in state["multi_valued_categories"]
                ],
                "multi_valued_lengths_": list(state["multi_valued_lengths"]),
                "numeric_columns_": list(state["numeric_columns"]),
                "medians_": floats(state["medians"]),
                "means_": floats(state["means"]),
                "scales_": floats(state["scales"]),
                "bin_edges_": [floats(edges) for edges in state["bin_edges"]],
            }
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags


def _json_names(columns):
    """Column names as JSON values; only str and int names survive the trip."""
    bad = [
        c for c in columns if isinstance(c, bool) or not isinstance(c, (str, Integral))
    ]
    if bad:
        raise ValueError(
            f"Only str and int column names can be saved; got {format_names(bad)}."
        )
    return [c if isinstance(c, str) else int(c) for c in columns]


def _json_param(name, value):
    if value is None or isinstance(value, str):
        return value
    if name.endswith("_columns"):
        return _json_names(list(value))
    return int(value) if isinstance(value, Integral) else float(value)
