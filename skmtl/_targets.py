"""Targets: one column per task, its type, its classes, and its missing-label mask.

This is the one place that decides what "missing" means: a NaN (or None) label
puts the row outside that task's sample space. It becomes a zero in the
loss-weight matrix here, once, and every loss and metric drops those rows.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import type_of_target

from skmtl._validation import format_names

TASK_TYPES = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Task:
    """What the estimator knows about one task after ``fit``.

    Attributes
    ----------
    name : str
        Column name in ``Y`` (``"task_0"``... for arrays).
    type : {"binary", "multiclass", "regression"}
        Task type.
    classes : ndarray or None
        Sorted class labels of a classification task.
    mean, scale : float
        Regression targets are learnt as ``(y - mean) / scale``.
    """

    name: str
    type: str
    classes: np.ndarray = None
    mean: float = 0.0
    scale: float = 1.0

    @property
    def n_outputs(self):
        """Number of network outputs: n_classes for multiclass, else 1."""
        return len(self.classes) if self.type == "multiclass" else 1


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
    if frame.columns.duplicated().any():
        raise ValueError(f"Y has duplicate task names: {list(frame.columns)}.")
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


def _infer_type(name, labels):
    """Infer a task's type from its labelled values, as scikit-learn would."""
    if pd.api.types.is_bool_dtype(labels):
        return "binary"
    # An object column of numbers is read as numbers, as pandas would.
    kind = type_of_target(labels.infer_objects().to_numpy())
    if kind in ("binary", "multiclass"):
        return kind
    if kind == "continuous":
        return "regression"
    raise ValueError(
        f"Unknown label type for task {name!r} (scikit-learn sees {kind!r}); "
        f"pass task_types={{{name!r}: one of {TASK_TYPES}}}."
    )


def _fit_task(name, column, requested):
    """Check one target column and return its :class:`Task`."""
    if requested not in (*TASK_TYPES, "auto"):
        raise ValueError(
            f"Unknown task type {requested!r} for task {name!r}; expected one of "
            f"{TASK_TYPES} or 'auto'."
        )
    labels = column[column.notna()]
    if len(labels) == 0:
        raise ValueError(
            f"Task {name!r} has no labels: every value is missing (NaN)."
        )
    kind = _infer_type(name, labels) if requested == "auto" else requested
    if kind == "regression":
        values = pd.to_numeric(labels, errors="coerce")
        if values.isna().any() or np.isinf(values.to_numpy(dtype=float)).any():
            raise ValueError(
                f"Task {name!r} is a regression task but has non-numeric or "
                "infinite labels."
            )
        values = values.to_numpy(dtype=np.float64)
        scale = float(values.std()) or 1.0
        return Task(str(name), kind, None, float(values.mean()), scale)
    try:
        classes = np.unique(labels.to_numpy())
    except TypeError as exc:
        raise ValueError(
            f"Task {name!r} mixes label types that cannot be sorted: {exc}."
        ) from None
    if len(classes) < 2:
        raise ValueError(
            f"Task {name!r} has only one class ({classes[0]!r}) among its labelled "
            "rows; a classification task needs at least two."
        )
    if kind == "binary" and len(classes) != 2:
        raise ValueError(
            f"Task {name!r} was declared binary but has {len(classes)} classes."
        )
    return Task(str(name), kind, classes)


def fit_tasks(frame, task_types):
    """Return the :class:`Task` of every column of ``frame``.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_tasks)
        Targets, NaN where a row is outside a task's sample space.
    task_types : "auto", dict or list
        Requested task types.

    Returns
    -------
    list of Task
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
    tasks : list of Task
        As returned by :func:`fit_tasks`.

    Returns
    -------
    values : ndarray of shape (n_samples, n_tasks), float32
        Class indices or standardised regression values; 0 where missing.
    mask : ndarray of shape (n_samples, n_tasks), bool
        True where the row has a label for the task.
    """
    values = np.zeros(frame.shape, dtype=np.float32)
    mask = frame.notna().to_numpy()
    for k, task in enumerate(tasks):
        labels = frame.iloc[:, k][mask[:, k]]
        if task.type == "regression":
            encoded = (pd.to_numeric(labels).to_numpy(float) - task.mean) / task.scale
        else:
            encoded = _class_indices(task, labels.to_numpy())
        values[mask[:, k], k] = encoded
    return values, mask


def _class_indices(task, labels):
    """Return the index of each label in ``task.classes``; unknown labels raise."""
    index = np.searchsorted(task.classes, labels)
    index = np.clip(index, 0, len(task.classes) - 1)
    unknown = task.classes[index] != labels
    if np.any(unknown):
        raise ValueError(
            f"Task {task.name!r} has labels not seen in fit: "
            f"{format_names(np.unique(labels[unknown]))}."
        )
    return index
