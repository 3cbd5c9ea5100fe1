"""Input checks shared by the encoder and the estimators.

This is the only module that imports scikit-learn's private parameter
validation API, so a change there is fixed in one place.
"""

import sys
from numbers import Integral, Real  # noqa: F401  (re-exported)

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import (  # noqa: F401  (re-exported)
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
)
from sklearn.utils.validation import check_is_fitted, validate_data  # noqa: F401

_MAX_LISTED = 5


def format_names(names):
    """Return up to five sorted names, quoted, with a count of the rest."""
    names = sorted(str(n) for n in names)
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        shown += f" and {len(names) - _MAX_LISTED} more"
    return shown


def positive_sizes(value, name, *, allow_empty):
    """Validate a sequence of layer sizes and return it as a tuple of ints.

    Parameters
    ----------
    value : sequence of int
        The sizes given by the user.
    name : str
        Parameter name, used in the error message.
    allow_empty : bool
        Whether an empty sequence (no hidden layer) is allowed.

    Returns
    -------
    tuple of int
    """
    expected = "a sequence of positive integers" + ("" if allow_empty else " (non-empty)")
    if isinstance(value, (str, bytes)) or not np.iterable(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    sizes = tuple(value)
    bad = [s for s in sizes if not isinstance(s, Integral) or isinstance(s, bool) or s < 1]
    if bad or (not sizes and not allow_empty):
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    return tuple(int(s) for s in sizes)


def _default_names(n_columns):
    return [f"x{i}" for i in range(n_columns)]


def set_feature_names(estimator, columns):
    """Record ``n_features_in_`` and, for string column names, ``feature_names_in_``.

    Parameters
    ----------
    estimator : estimator instance
        Receives the attributes.
    columns : sequence
        Column names of the input seen in ``fit``.
    """
    estimator.n_features_in_ = len(columns)
    if all(isinstance(c, str) for c in columns):
        estimator.feature_names_in_ = np.asarray(columns, dtype=object)
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def check_unique_columns(columns):
    """Raise ``ValueError`` listing the column names that occur more than once.

    Parameters
    ----------
    columns : pandas.Index
        Column names of the input.
    """
    if columns.has_duplicates:
        repeated = columns[columns.duplicated()].unique()
        raise ValueError(
            f"X has duplicate column names: {format_names(repeated)}. Columns are "
            "matched by name, so each must be unique; rename the duplicates."
        )


def is_dask_collection(X):
    """Return True when ``X`` is a Dask collection (DataFrame, Series, Array...).

    Dask is imported only when it already is: an object cannot be a Dask
    collection otherwise, and skmtl works without Dask installed.

    Parameters
    ----------
    X : object
        Any input.

    Returns
    -------
    bool
    """
    if sys.modules.get("dask") is None:
        return False
    from dask import is_dask_collection as _is_dask

    return _is_dask(X)


def is_dask_dataframe(X):
    """Return True when ``X`` is a ``dask.dataframe.DataFrame``.

    Parameters
    ----------
    X : object
        Any input.

    Returns
    -------
    bool
    """
    if not is_dask_collection(X):
        return False
    import dask.dataframe as dd

    return isinstance(X, dd.DataFrame)


def arrow_types_mapper(arrow_type):
    """Pandas dtype for an Arrow type, as skmtl reads Arrow-backed data.

    Integers and bools keep their nulls as nullable pandas types (``Int64``,
    ``boolean``) rather than becoming floats or objects; other types take
    pyarrow's default conversion (strings as pandas strings, floats with NaN,
    dictionaries as categories, lists as object arrays of arrays).

    Parameters
    ----------
    arrow_type : pyarrow.DataType
        The type of one column.

    Returns
    -------
    pandas dtype or None
        None for pyarrow's default.
    """
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        prefix = "UInt" if pa.types.is_unsigned_integer(arrow_type) else "Int"
        return pd.api.types.pandas_dtype(f"{prefix}{arrow_type.bit_width}")
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _without_views(arrow_type):
    """The type with string and binary views (polars' strings) as plain arrays.

    pyarrow converts a view to pandas, but not a list of views.
    """
    import pyarrow as pa

    if pa.types.is_string_view(arrow_type):
        return pa.large_string()
    if pa.types.is_binary_view(arrow_type):
        return pa.large_binary()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pa.large_list(_without_views(arrow_type.value_type))
    return arrow_type


def _arrow_to_pandas(X):
    """Convert an object exporting an Arrow stream (polars, pyarrow...) to pandas."""
    import pyarrow as pa

    table = pa.table(X)
    schema = pa.schema(
        [field.with_type(_without_views(field.type)) for field in table.schema]
    )
    return table.cast(schema).to_pandas(types_mapper=arrow_types_mapper)


def _other_frame_to_pandas(X):
    """Return ``X`` as a pandas DataFrame when it is another kind of data frame.

    Returns None for input that is not a data frame (arrays, lists), which goes
    through scikit-learn's numeric validation instead. A frame that cannot be
    converted is an error: turning it into an anonymous array would lose its
    column names and types.
    """
    if is_dask_collection(X):
        raise TypeError(
            f"X is a Dask collection ({type(X).__name__}); only a pandas (or "
            "polars, or Arrow) DataFrame is accepted here. Call X.compute() for "
            "data that fits in memory; FeatureEncoder.fit accepts a Dask "
            "DataFrame, and the streaming fit will accept one."
        )
    if hasattr(X, "__arrow_c_stream__") and hasattr(X, "schema"):
        # Through Arrow rather than X.to_pandas(), which would turn integer
        # columns with nulls into floats (and change their categories).
        return _arrow_to_pandas(X)
    if hasattr(X, "to_pandas"):
        frame = X.to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    # The interchange protocol (__dataframe__) is deprecated in pandas 3.
    if any(hasattr(X, name) for name in ("to_pandas", "columns", "__dataframe__")):
        raise TypeError(
            f"X is a {type(X).__module__}.{type(X).__name__}, a data frame skmtl "
            "cannot convert without losing its column names; pass a pandas "
            "DataFrame (or a polars DataFrame, or a pyarrow Table)."
        )
    return None


def _check_frame_shape(frame):
    """Reject frames without rows or columns, with scikit-learn's messages."""
    if frame.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={frame.shape}) while a minimum of "
            "1 is required."
        )
    if frame.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={frame.shape}) while a minimum of "
            "1 is required."
        )


def as_feature_frame(estimator, X, *, reset):
    """Return ``X`` as a DataFrame without copying or modifying the caller's data.

    A pandas DataFrame is returned as is: columns are matched by name later, so
    their order does not matter and extra columns are ignored, but each name
    must be unique. Other data frames are converted with their column names:
    polars DataFrames and pyarrow Tables (anything exporting an Arrow stream)
    through Arrow, with nullable integer and bool columns; objects with
    ``to_pandas()`` through it. A Dask collection, or another frame-like
    object (with ``columns`` or ``__dataframe__``), is a ``TypeError``. Anything else goes through
    :func:`sklearn.utils.validation.validate_data` as a numeric array (so
    sparse, complex, 1-D and empty input get scikit-learn's errors) and is
    named ``x0, x1, ...``, or by the names seen in ``fit``.

    Parameters
    ----------
    estimator : estimator instance
        Receives ``n_features_in_`` (and ``feature_names_in_``) when ``reset``.
    X : DataFrame or array-like of shape (n_samples, n_features)
        The input.
    reset : bool
        True in ``fit``; False when predicting.

    Returns
    -------
    pandas.DataFrame
    """
    frame = X if isinstance(X, pd.DataFrame) else _other_frame_to_pandas(X)
    if frame is not None:
        _check_frame_shape(frame)
        check_unique_columns(frame.columns)
        if reset:
            set_feature_names(estimator, frame.columns)
        return frame
    array = validate_data(
        estimator, X, reset=reset, dtype="numeric", ensure_all_finite="allow-nan"
    )
    names = getattr(estimator, "feature_names_in_", None)
    if reset or names is None:
        names = _default_names(array.shape[1])
    # copy=False: a view is enough because skmtl never writes into its input.
    return pd.DataFrame(array, columns=list(names), copy=False)


def check_sample_weight(sample_weight, n_samples):
    """Return sample weights as a float64 array, checking shape and values.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        None means equal weights.
    n_samples : int
        Expected length.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    if sample_weight is None:
        return np.ones(n_samples)
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sample_weight must be numbers ({exc}).") from None
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), the number of rows of "
            f"X, got shape {weights.shape}."
        )
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if len(bad):
        shown = ", ".join(f"row {i}: {weights[i]}" for i in bad[:_MAX_LISTED])
        more = f" and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        raise ValueError(
            f"sample_weight must be finite and non-negative ({shown}{more})."
        )
    if weights.sum() <= 0:
        raise ValueError("sample_weight must not be all zero.")
    return weights
