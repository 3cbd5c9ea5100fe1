"""Targets: one column per task, its type, its classes, and its missing-label mask.

This is the one place that decides what "missing" means: a NaN (or None) label
puts the row outside that task's sample space. It becomes a zero in the
loss-weight matrix here, once, and every loss and metric drops those rows.
"""

import numpy as np
import pandas as pd
from scipy import sparse

from skmtl._validation import format_names
from skmtl.tasks import TASK_TYPES, infer_task_type, task_type


def as_target_frame(Y, n_samples):
    """Return ``Y`` as a DataFrame of tasks and whether it was one-dimensional.

    Parameters
    ----------
    Y : DataFrame, Series or array-like of shape (n_samples,) or (n_samples, n_tasks)
        Targets; never modified.
    n_samples : int
        Number of rows of X.

    Returns
    -------
    frame : DataFrame of shape (n_samples, n_tasks)
    is_1d : bool
    """
    if Y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None."
        )
    if sparse.issparse(Y):
        raise TypeError(
            "y is a sparse matrix; skmtl takes dense targets (a DataFrame or an "
            "array, NaN where a row has no label): convert it with y.toarray()."
        )
    if isinstance(Y, pd.DataFrame):
        frame, is_1d = Y, False
    elif isinstance(Y, pd.Series):
        frame, is_1d = Y.to_frame(name=Y.name if Y.name is not None else "task_0"), True
    else:
        array = np.asarray(Y)
        if array.ndim not in (1, 2):
            raise ValueError(f"Y must be 1-D or 2-D, got an array of shape {array.shape}.")
        is_1d = array.ndim == 1
        array = array.reshape(len(array), -1)
        names = [f"task_{k}" for k in range(array.shape[1])]
        frame = pd.DataFrame(array, columns=names, copy=False)
    if frame.shape[1] == 0:
        raise ValueError("Y has no columns: give at least one task.")
    if frame.shape[0] != n_samples:
        raise ValueError(
            f"y has {frame.shape[0]} rows but X has {n_samples}; they must match."
        )
    # Task names are the columns as strings: 0 and "0" would both be "0".
    names = pd.Index([str(c) for c in frame.columns])
    if names.duplicated().any():
        raise ValueError(
            f"Y has duplicate task names: {format_names(names[names.duplicated()])} "
            f"among {list(frame.columns)}."
        )
    return frame, is_1d


def _requested_types(task_types, names):
    """Return the requested type of each task ("auto" where not given)."""
    if isinstance(task_types, str):
        return ["auto"] * len(names)
    if isinstance(task_types, dict):
        unknown = set(task_types) - set(names)
        if unknown:
            raise ValueError(
                f"task_types names tasks that are not in Y: {format_names(unknown)}; "
                f"the tasks are {names}."
            )
        return [task_types.get(name, "auto") for name in names]
    requested = list(task_types)
    if len(requested) != len(names):
        raise ValueError(
            f"task_types has {len(requested)} entries but Y has {len(names)} tasks."
        )
    return requested


def _fit_task(name, column, requested):
    """Check one target column and return its fitted task object."""
    if not (isinstance(requested, str) and requested == "auto"):
        try:
            cls = task_type(requested)
        except ValueError:
            raise ValueError(
                f"Unknown task type {requested!r} for task {name!r}; expected one of "
                f"{tuple(TASK_TYPES)}, 'auto' or a skmtl.tasks.Task subclass."
            ) from None
    labels = column[column.notna()]
    if len(labels) == 0:
        raise ValueError(f"Task {name!r} has no labels: every value is missing (NaN).")
    if isinstance(requested, str) and requested == "auto":
        cls = infer_task_type(name, labels)
    return cls.from_labels(str(name), labels)


def fit_tasks(frame, task_types):
    """Return the fitted task object of every column of ``frame``.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_tasks)
        Targets, NaN where a row is outside a task's sample space.
    task_types : "auto", dict or list
        Requested task types: names, :class:`skmtl.tasks.Task` subclasses or
        ``"auto"``.

    Returns
    -------
    list of skmtl.tasks.Task
    """
    names = list(frame.columns)
    requested = _requested_types(task_types, names)
    return [_fit_task(n, frame[n], r) for n, r in zip(names, requested)]


def encode_targets(frame, tasks):
    """Return learnable targets and the mask of labelled rows.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_tasks)
        Targets in the order of ``tasks``.
    tasks : list of skmtl.tasks.Task
        As returned by :func:`fit_tasks`.

    Returns
    -------
    values : ndarray of shape (n_samples, n_tasks), float32
        What each task's loss reads (class indices, standardised values...);
        0 where missing.
    mask : ndarray of shape (n_samples, n_tasks), bool
        True where the row has a label for the task.
    """
    values = np.zeros(frame.shape, dtype=np.float32)
    mask = frame.notna().to_numpy()
    for k, task in enumerate(tasks):
        values[mask[:, k], k] = task.encode(frame.iloc[:, k][mask[:, k]])
    return values, mask
