"""Funnel targets: stage columns -> joint labels, joint logits -> probabilities.

A funnel is a chain of binary stages (click, then purchase) where stage ``k``
can only happen after stage ``k - 1``. The funnel estimators learn, per stage,
the joint label "reached stage k" over all rows: 1 where the stage and all
earlier ones are positive, 0 where any of them is negative. This module turns
``y``'s stage columns into those labels, checking them, and turns the
network's joint logits back into joint and conditional probabilities.
"""

import numpy as np
import pandas as pd

from skmtl._targets import as_target_frame
from skmtl._validation import format_names


def _stage_names(frame, funnel):
    """The funnel's column names, in order, checked against ``y``'s columns."""
    if funnel is None:
        return [str(c) for c in frame.columns]
    names = [str(name) for name in funnel]
    if not names:
        raise ValueError("funnel must name at least one column of y.")
    if len(set(names)) != len(names):
        raise ValueError(f"funnel names a column more than once: {names}.")
    available = [str(c) for c in frame.columns]
    missing = [name for name in names if name not in available]
    if missing:
        raise ValueError(
            f"funnel names columns that are not in y: {format_names(missing)}; "
            f"y has {format_names(available)}."
        )
    return names


def _positive(name, column):
    """Return 1.0 / 0.0 / NaN for one stage column, or a reason it is not binary.

    Labels are booleans or numbers: 0/1, or any two numbers, the larger
    being the positive one (as :class:`~skmtl.tasks.BinaryTask` takes the
    second sorted label). A column holding one value is all positive if it
    is 1 (True), all negative if it is 0 (False).
    """
    present = column.notna().to_numpy()
    numbers = pd.to_numeric(column.astype(object), errors="coerce")
    numbers = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    wrong = present & np.isnan(numbers)
    if wrong.any():
        shown = column[wrong].astype(str).unique()[:3].tolist()
        return None, f"labels that are not numbers: {shown}"
    labels = np.unique(numbers[present])
    if len(labels) > 2:
        return None, f"{len(labels)} distinct labels: {labels[:3].tolist()}..."
    if len(labels) == 1 and labels[0] not in (0.0, 1.0):
        return None, f"one label, {labels[0]:g}, neither 0 nor 1"
    positive = labels.max() if len(labels) == 2 else 1.0
    return np.where(present, (numbers == positive).astype(np.float64), np.nan), None


def _stage_values(frame, names):
    """Return the stages as float64 1/0/NaN, with an error naming bad columns."""
    columns = {str(c): frame[c] for c in frame.columns}
    values = np.empty((len(frame), len(names)))
    bad = {}
    for k, name in enumerate(names):
        values[:, k], reason = _positive(name, columns[name])
        if reason is not None:
            bad[name] = reason
    if bad:
        details = "; ".join(
            f"{name!r} has {reason}" for name, reason in sorted(bad.items())
        )
        raise ValueError(
            f"Funnel columns {format_names(bad)} are not binary: {details}. A stage "
            "holds 0/1 or True/False (or two numbers, the larger positive), and "
            "NaN where unknown."
        )
    return values


def _check_order(values, names):
    """Error if a stage is positive where the stage before it is not."""
    positive = values == 1.0
    offending = positive[:, 1:] & ~positive[:, :-1]  # (n, K - 1)
    counts = offending.sum(axis=0)
    if counts.any():
        details = [
            f"{names[k + 1]!r} where {names[k]!r} is not ({counts[k]} rows)"
            for k in np.flatnonzero(counts)
        ]
        raise ValueError(
            "A funnel stage can only be positive where the previous stage is "
            "positive, but y has positive " + "; ".join(details) + "."
        )


def joint_targets(y, funnel, n_samples=None):
    """Turn ``y``'s funnel columns into the joint label of each stage.

    The joint label of stage ``k`` is 0 where any stage up to ``k`` is 0,
    else the stage's own label (1, or NaN where unknown). A stage's label may
    be 0 or NaN where the previous stage is negative or NaN; it may be 1 only
    where the previous stage is 1.

    Parameters
    ----------
    y : DataFrame, Series or array-like of shape (n_samples, n_columns) or (n_samples,)
        Targets; never modified. Columns not in ``funnel`` are ignored.
    funnel : sequence of str or None
        The stage columns in funnel order; None takes every column of ``y``
        in order.
    n_samples : int, default=None
        Number of rows ``y`` must have; None accepts any.

    Returns
    -------
    joint : DataFrame of shape (n_samples, n_stages)
        Nullable integer (``Int64``) labels named after the stages.
    is_1d : bool
        Whether ``y`` was one-dimensional.
    """
    if y is not None and not isinstance(y, (pd.DataFrame, pd.Series)):
        y = np.asarray(y)
    if n_samples is None:
        n_samples = 0 if y is None or y.ndim == 0 else len(y)
    frame, is_1d = as_target_frame(y, n_samples)
    names = _stage_names(frame, funnel)
    values = _stage_values(frame, names)
    _check_order(values, names)
    # A zero anywhere up to stage k makes the joint label 0.
    stopped = np.logical_or.accumulate(values == 0.0, axis=1)
    joint = np.where(stopped, 0.0, values)
    return (
        pd.DataFrame(joint, columns=names, index=frame.index).astype("Int64"),
        is_1d,
    )


def lazy_joint_targets(y, funnel):
    """:func:`joint_targets` of a Dask DataFrame or Series, partition by partition.

    Each partition is checked on its own, so labels must be 0/1 or booleans
    (two other numbers are ambiguous in a partition holding only one).

    Parameters
    ----------
    y : dask.dataframe.DataFrame or dask.dataframe.Series
    funnel : sequence of str or None

    Returns
    -------
    joint : dask.dataframe.DataFrame
        Nullable integer labels named after the stages.
    is_1d : bool
    """
    is_1d = y.ndim == 1
    frame = y.to_frame() if is_1d else y
    names = _stage_names(frame._meta, funnel)
    meta = pd.DataFrame({name: pd.Series(dtype="Int64") for name in names})
    joint = frame.map_partitions(
        lambda part: joint_targets(part, names)[0], meta=meta
    )
    return joint, is_1d


def funnel_probabilities(logits):
    """Joint and conditional probability of each stage from the joint logits.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_stages)
        Logits of reaching each stage, float64.

    Returns
    -------
    ndarray of shape (n_samples, n_stages, 2)
        ``[:, k, 0]``: probability of reaching stage ``k``; ``[:, k, 1]``:
        probability of stage ``k`` given stage ``k - 1`` (the joint one for
        the first stage), their ratio computed in log space and capped at 1.
    """
    log_reach = -np.logaddexp(0.0, -logits)  # log sigmoid
    log_before = np.pad(log_reach[:, :-1], ((0, 0), (1, 0)))
    conditional = np.exp(np.minimum(log_reach - log_before, 0.0))
    return np.stack([np.exp(log_reach), conditional], axis=2)
