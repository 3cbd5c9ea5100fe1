"""The FeatureEncoder as it was before the vectorised rewrite, for tests only.

A verbatim copy of ``skmtl._encoder`` at commit f390fa9 (class renamed, its
two-field result type defined here): the rewrite must give the same codes, so
tests encode the same frames with both and compare. One later change: the bin
edges follow the "mode split" rule adopted after
``benchmarks/select_defaults.py``, written here as that script evaluated it.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from skmtl._validation import (
    Integral,
    Interval,
    RealNotInt,
    as_feature_frame,
    check_is_fitted,
    format_names,
)


class EncodedFeatures(NamedTuple):
    categorical: np.ndarray
    numeric: np.ndarray


def _is_categorical_dtype(series):
    """Object, string, category and bool columns are categorical by default."""
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(
        series
    )


def _categorical_values(frame, columns):
    """Return an object array of strings with NaN where values are missing.

    Values become strings so that a column mixing types (ints and strings) sorts,
    and so that category, bool and int codes are handled alike.
    """
    if not columns:
        return np.empty((len(frame), 0), dtype=object)
    sub = frame[columns]
    missing = sub.isna().to_numpy()
    values = sub.astype(str).to_numpy(dtype=object, copy=True)
    values[missing] = np.nan
    return values


def _numeric_values(frame, columns):
    """Return a float64 array of the numeric columns, with clear errors.

    Raises ``ValueError`` naming every column with non-numeric strings or
    infinite values.
    """
    if not columns:
        return np.empty((len(frame), 0))
    sub = frame[columns]
    bad = {}
    converted = {}
    for column in columns:
        series = sub[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(
            series
        ):
            converted[column] = series
            continue
        numbers = pd.to_numeric(series, errors="coerce")
        wrong = series[numbers.isna() & series.notna()]
        if len(wrong):
            bad[column] = wrong.unique()[:3].tolist()
        converted[column] = numbers
    if bad:
        details = "; ".join(f"{c!r}: {v}" for c, v in sorted(bad.items(), key=str))
        raise ValueError(
            f"Numeric columns {format_names(bad)} contain values that are not "
            f"numbers (e.g. {details}). Declare them in categorical_columns or "
            "clean them."
        )
    values = pd.DataFrame(converted, copy=False).to_numpy(dtype=np.float64)
    infinite = [c for c, col in zip(columns, values.T) if np.isinf(col).any()]
    if infinite:
        raise ValueError(
            f"Numeric columns {format_names(infinite)} contain infinite values; "
            "replace them (e.g. by NaN, which is imputed with the median)."
        )
    return values


class ReferenceFeatureEncoder(TransformerMixin, BaseEstimator):
    """Encode raw mixed columns for a multi-task network.

    Categorical ("sparse") columns become contiguous integer codes for an
    embedding lookup: code 0 is reserved for categories unseen in ``fit`` or
    rarer than ``min_frequency``, codes ``1..K`` are the known categories, and
    code ``K + 1`` is "missing". Numeric ("dense") columns are imputed with the
    median and standardised. Built on scikit-learn's ``OrdinalEncoder``,
    ``SimpleImputer`` and ``StandardScaler``.

    Parameters
    ----------
    categorical_columns : list of str or None, default=None
        Columns to treat as categorical, such as integer-coded ids. Columns
        named in neither list go by dtype: object, string, category and bool
        columns are categorical, the others numeric.
    numeric_columns : list of str or None, default=None
        Columns to treat as numeric; strings in them that are not numbers are
        an error. When both lists are given, only those columns are used.
    min_frequency : int, float or None, default=None
        Categories seen fewer times than this (a count, or a fraction of the
        rows when a float in (0, 1)) share code 0 with unknown categories.
    n_bins : int, default=32
        Each numeric column is also cut into at most this many quantile bins,
        and the bin becomes an extra categorical column named ``"<col>_bin"``
        (missing values get their own code). The network then sees both the
        scaled value and a learnt embedding of its range, which lets it fit
        non-linear effects of numbers (age, gains) in few epochs. 0 turns it
        off.

    Attributes
    ----------
    categorical_columns_ : list of str
        Categorical columns, in output order.
    numeric_columns_ : list of str
        Numeric columns, in output order.
    binned_columns_ : list of str
        Names of the extra bin columns, one per numeric column (empty when
        ``n_bins=0``); they follow the categorical columns in the codes.
    bin_edges_ : list of ndarray
        Inner quantile edges of each numeric column.
    cardinalities_ : list of int
        Number of codes of each categorical column (known categories + 2),
        then of each bin column (bins + 2).
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names seen in ``fit``, when they are all strings.

    See Also
    --------
    sklearn.preprocessing.OrdinalEncoder : Encodes the categorical columns.
    sklearn.preprocessing.StandardScaler : Scales the numeric columns.

    Notes
    -----
    Columns are matched by name: at transform time their order does not matter,
    extra columns are ignored and a missing column is an error naming it. A
    numpy array is treated as all-numeric columns named ``x0, x1, ...``.

    :meth:`transform` returns one float array (codes, then scaled values) so the
    encoder fits in any scikit-learn pipeline; :meth:`encode` returns the int64
    codes and float32 values separately, as the networks read them.

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
    }

    def __init__(
        self,
        categorical_columns=None,
        numeric_columns=None,
        min_frequency=None,
        n_bins=32,
    ):
        self.categorical_columns = categorical_columns
        self.numeric_columns = numeric_columns
        self.min_frequency = min_frequency
        self.n_bins = n_bins

    def fit(self, X, y=None):
        """Learn the categories and the numeric medians, means and scales.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw input columns.
        y : None
            Ignored.

        Returns
        -------
        self : FeatureEncoder
            The fitted encoder.
        """
        self._validate_params()
        frame = as_feature_frame(self, X, reset=True)
        self.categorical_columns_, self.numeric_columns_ = self._split_columns(frame)
        self._fit_categorical(_categorical_values(frame, self.categorical_columns_))
        numeric = _numeric_values(frame, self.numeric_columns_)
        self._fit_bins(numeric)
        self._numeric_pipeline = None
        if numeric.shape[1]:
            self._numeric_pipeline = make_pipeline(
                SimpleImputer(strategy="median", keep_empty_features=True),
                StandardScaler(),
            ).fit(numeric)
        return self

    def _fit_bins(self, numeric):
        """Learn quantile bin edges of each numeric column."""
        if self.n_bins == 0:
            self.binned_columns_, self.bin_edges_ = [], []
            return
        self.binned_columns_ = [f"{c}_bin" for c in self.numeric_columns_]
        self.bin_edges_ = []
        for column in numeric.T:
            observed = column[~np.isnan(column)]
            edges = self._mode_split_edges(observed) if observed.size else []
            self.bin_edges_.append(np.asarray(edges, dtype=np.float64))
        self.cardinalities_ = self.cardinalities_ + [len(e) + 3 for e in self.bin_edges_]

    def _mode_split_edges(self, observed):
        """Quantile edges, or the mode alone in a bin when it is frequent."""
        values, counts = np.unique(observed, return_counts=True)
        if counts.max() * self.n_bins <= observed.size or values.size == 1:
            quantiles = np.linspace(0, 1, self.n_bins + 1)[1:-1]
            # Repeated quantiles (a column that is mostly zeros) merge bins.
            return np.unique(np.quantile(observed, quantiles))
        mode = values[counts.argmax()]
        rest = observed[observed != mode]
        quantiles = np.linspace(0, 1, max(self.n_bins - 1, 1) + 1)[1:-1]
        edges = np.r_[np.quantile(rest, quantiles), mode, np.nextafter(mode, np.inf)]
        return np.unique(edges)

    def _encode_bins(self, numeric):
        """Return bin codes: 1..n_bins by range, n_bins + 1 for missing."""
        codes = np.empty((numeric.shape[0], len(self.bin_edges_)), dtype=np.int64)
        for j, edges in enumerate(self.bin_edges_):
            column = numeric[:, j]
            codes[:, j] = np.searchsorted(edges, column, side="right") + 1
            codes[np.isnan(column), j] = len(edges) + 2
        return codes

    def _split_columns(self, frame):
        """Decide which columns are categorical and which numeric."""
        declared_cat = self._declared(self.categorical_columns, "categorical_columns")
        declared_num = self._declared(self.numeric_columns, "numeric_columns")
        for declared, name in ((declared_cat, "categorical_columns"), (declared_num, "numeric_columns")):
            missing = [c for c in declared or [] if c not in frame.columns]
            if missing:
                raise ValueError(
                    f"{name} names columns that are not in X: {format_names(missing)}."
                )
        both = set(declared_cat or []) & set(declared_num or [])
        if both:
            raise ValueError(
                "Columns cannot be both categorical and numeric: "
                f"{format_names(both)}."
            )
        if declared_cat is not None and declared_num is not None:
            return declared_cat, declared_num
        # Declared columns keep their role; every other column goes by its dtype.
        taken = set(declared_cat or []) | set(declared_num or [])
        rest = [c for c in frame.columns if c not in taken]
        auto_cat = [c for c in rest if _is_categorical_dtype(frame[c])]
        auto_num = [c for c in rest if not _is_categorical_dtype(frame[c])]
        return (declared_cat or []) + auto_cat, (declared_num or []) + auto_num

    @staticmethod
    def _declared(columns, name):
        if columns is None:
            return None
        columns = list(columns)
        if len(set(columns)) != len(columns):
            raise ValueError(f"{name} contains duplicates: {columns}.")
        return columns

    def _fit_categorical(self, values):
        """Fit the ordinal encoder and derive each column's code layout."""
        self._ordinal = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=-1,
            encoded_missing_value=-2,
            min_frequency=self.min_frequency,
            dtype=np.int64,
        )
        if values.shape[1] == 0:
            self._n_frequent = np.zeros(0, dtype=np.int64)
            self.cardinalities_ = []
            return
        self._ordinal.fit(values)
        infrequent = getattr(self._ordinal, "infrequent_categories_", None)
        n_frequent = []
        for j, categories in enumerate(self._ordinal.categories_):
            n_known = int(pd.notna(categories).sum())
            n_rare = 0 if infrequent is None or infrequent[j] is None else len(infrequent[j])
            n_frequent.append(n_known - n_rare)
        self._n_frequent = np.asarray(n_frequent, dtype=np.int64)
        self.cardinalities_ = [int(n) + 2 for n in self._n_frequent]

    def _check_columns(self, frame):
        needed = self.categorical_columns_ + self.numeric_columns_
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(
                f"X is missing columns seen in fit: {format_names(missing)}."
            )

    def _encode_categorical(self, values):
        """Map OrdinalEncoder codes to 0 = unknown/rare, 1..K known, K+1 missing."""
        if values.shape[1] == 0:
            return np.empty((values.shape[0], 0), dtype=np.int64)
        codes = self._ordinal.transform(values)
        # unknown (-1) -> 0, frequent c -> c + 1; the infrequent group (code
        # n_frequent) -> 0; missing (-2) -> n_frequent + 1.
        out = codes + 1
        out[codes == self._n_frequent] = 0
        missing = codes == -2
        out[missing] = np.broadcast_to(self._n_frequent + 1, codes.shape)[missing]
        return out

    def encode(self, X):
        """Return the categorical codes and scaled numeric values separately.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw input with at least the columns seen in ``fit``.

        Returns
        -------
        EncodedFeatures
            ``categorical`` (int64, shape (n_samples, n_categorical)) and
            ``numeric`` (float32, shape (n_samples, n_numeric)).
        """
        check_is_fitted(self)
        frame = as_feature_frame(self, X, reset=False)
        self._check_columns(frame)
        categorical = self._encode_categorical(
            _categorical_values(frame, self.categorical_columns_)
        )
        raw_numeric = _numeric_values(frame, self.numeric_columns_)
        if self.binned_columns_:
            categorical = np.hstack([categorical, self._encode_bins(raw_numeric)])
        numeric = raw_numeric
        if self._numeric_pipeline is not None:
            numeric = self._numeric_pipeline.transform(raw_numeric)
        return EncodedFeatures(categorical, numeric.astype(np.float32))

    def transform(self, X):
        """Encode ``X`` into one float array: codes, then scaled numeric values.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw input with at least the columns seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_categorical + n_binned + n_numeric)
            Columns in the order of :meth:`get_feature_names_out`.
        """
        encoded = self.encode(X)
        return np.hstack([encoded.categorical, encoded.numeric.astype(np.float64)])

    def get_feature_names_out(self, input_features=None):
        """Return the output column names: categorical, bins, then numeric.

        Parameters
        ----------
        input_features : None
            Ignored; present for API consistency.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self)
        return np.asarray(
            [
                str(c)
                for c in self.categorical_columns_
                + self.binned_columns_
                + self.numeric_columns_
            ],
            dtype=object,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags
