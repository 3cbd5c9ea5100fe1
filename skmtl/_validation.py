"""Input checks shared by the encoder and the estimators.

This is the only module that imports scikit-learn's private parameter
validation API, so a change there is fixed in one place.
"""

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


def _set_frame_features(estimator, frame):
    """Record n_features_in_ and, for string column names, feature_names_in_."""
    estimator.n_features_in_ = frame.shape[1]
    if all(isinstance(c, str) for c in frame.columns):
        estimator.feature_names_in_ = np.asarray(frame.columns, dtype=object)
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def as_feature_frame(estimator, X, *, reset):
    """Return ``X`` as a DataFrame without copying or modifying the caller's data.

    A DataFrame is returned as is: columns are matched by name later, so their
    order does not matter and extra columns are ignored. Anything else goes
    through :func:`sklearn.utils.validation.validate_data` as a numeric array
    (so sparse, complex, 1-D and empty input get scikit-learn's errors) and is
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
    if isinstance(X, pd.DataFrame):
        if X.shape[0] == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of "
                "1 is required."
            )
        if X.shape[1] == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of "
                "1 is required."
            )
        if reset:
            _set_frame_features(estimator, X)
        return X
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
