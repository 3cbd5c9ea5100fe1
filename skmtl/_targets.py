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


def _requested_class(name, requested):
    """The task class asked for, or None for ``"auto"``."""
    if isinstance(requested, str) and requested == "auto":
        return None
    try:
        return task_type(requested)
    except ValueError:
        raise ValueError(
            f"Unknown task type {requested!r} for task {name!r}; expected one of "
            f"{tuple(TASK_TYPES)}, 'auto' or a skmtl.tasks.Task subclass."
        ) from None


def _check_labelled(name, count):
    if count == 0:
        raise ValueError(f"Task {name!r} has no labels: every value is missing (NaN).")


def _fit_task(name, column, requested):
    """Check one target column and return its fitted task object."""
    cls = _requested_class(name, requested)
    labels = column[column.notna()]
    _check_labelled(name, len(labels))
    if cls is None:
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


# A continuous target has about as many distinct labels as rows: past this many
# non-integer ones a summary keeps its moments and extremes only, which is all
# a regression task needs (a classification task on them is an error).
MAX_FRACTIONAL_LABELS = 1000


class LabelSummary:
    """Mergeable statistics of one target column, for fitting a task out of core.

    Computed on each partition with :meth:`of` and combined with
    :meth:`merge`, it holds what every built-in task type fits from: the
    number of labels, the distinct labels and their counts (unless there are
    more than ``MAX_FRACTIONAL_LABELS`` non-integer ones), and, when every
    label is a number, their mean, spread, extremes and infinite values.

    Parameters
    ----------
    name : str
        Task name.
    count : int
        Number of labels (non-missing values).
    counts : Series or None
        Count of each distinct label (the index).
    moments : tuple (n, mean, m2) or None
        Of the labels as numbers; None when a label is not a number.
    extremes : tuple (min, max, fractional example or None, n_infinite)
        Of the labels as numbers (ignored when ``moments`` is None).
    """

    def __init__(self, name, count, counts, moments, extremes):
        self.name, self.count, self.counts = name, count, counts
        self.moments, self.extremes = moments, extremes

    @classmethod
    def of(cls, name, column):
        """Summarise the labels of one partition's column.

        Parameters
        ----------
        name : str
        column : Series
            Raw targets, NaN where missing.

        Returns
        -------
        LabelSummary
        """
        labels = column[column.notna()]
        if isinstance(labels.dtype, pd.CategoricalDtype):
            # Categories become their values, so partitions with different
            # category sets merge.
            labels = pd.Series(labels.to_numpy(), index=labels.index)
        counts = labels.value_counts(sort=False)
        try:
            numbers = pd.to_numeric(labels, errors="coerce")
        except (TypeError, ValueError):
            numbers = None
        if numbers is None or numbers.isna().any():
            return cls(name, len(labels), counts, None, None)
        values = numbers.to_numpy(dtype=np.float64)
        if not len(values):
            return cls(name, 0, counts, (0, 0.0, 0.0), (np.inf, -np.inf, None, 0))
        finite = values[np.isfinite(values)]
        fractional = finite[finite != np.round(finite)]
        extremes = (
            values.min(),
            values.max(),
            fractional[0] if len(fractional) else None,
            int(len(values) - len(finite)),
        )
        mean = values.mean()
        moments = (len(values), mean, float(((values - mean) ** 2).sum()))
        return cls(name, len(labels), counts, moments, extremes)._bounded()

    def _bounded(self):
        """Drop the distinct labels of a continuous column with many of them."""
        fractional = self.extremes is not None and self.extremes[2] is not None
        many = self.counts is not None and len(self.counts) > MAX_FRACTIONAL_LABELS
        if fractional and many:
            self.counts = None
        return self

    def merge(self, other):
        """Return the summary of both partitions' labels.

        Parameters
        ----------
        other : LabelSummary

        Returns
        -------
        LabelSummary
        """
        # An empty partition's labels have no dtype to impose on the others'.
        if not other.count:
            return self
        if not self.count:
            return other
        counts = None
        if self.counts is not None and other.counts is not None:
            both = pd.concat([self.counts, other.counts])
            counts = both.groupby(level=0, sort=False).sum()
        moments = extremes = None
        if self.moments is not None and other.moments is not None:
            moments = _merge_moments(self.moments, other.moments)
            (lo1, hi1, f1, i1), (lo2, hi2, f2, i2) = self.extremes, other.extremes
            fractional = f1 if f1 is not None else f2
            extremes = (min(lo1, lo2), max(hi1, hi2), fractional, i1 + i2)
        count = self.count + other.count
        return LabelSummary(self.name, count, counts, moments, extremes)._bounded()

    @property
    def distinct_labels(self):
        """Series of the distinct labels, or None when there were too many."""
        return None if self.counts is None else pd.Series(self.counts.index)

    @property
    def mean(self):
        """Mean of the labels as numbers."""
        return float(self.moments[1])

    @property
    def std(self):
        """Standard deviation (ddof=0) of the labels as numbers."""
        n, _, m2 = self.moments
        return float(np.sqrt(m2 / n)) if n else 0.0

    def representative_labels(self):
        """Labels enough to check and infer the column's type.

        The distinct labels when kept; otherwise the extremes, a non-integer
        label and an infinite one if any (every label is then a number).

        Returns
        -------
        Series
        """
        if self.counts is not None:
            return self.distinct_labels
        low, high, fractional, n_infinite = self.extremes
        return pd.Series([low, high, fractional] + [np.inf] * bool(n_infinite))

    def class_counts(self, classes):
        """Return how many rows hold each of ``classes``.

        Parameters
        ----------
        classes : ndarray of shape (n_classes,)

        Returns
        -------
        ndarray of shape (n_classes,), float
        """
        return self.counts.reindex(classes, fill_value=0).to_numpy(dtype=np.float64)


def _merge_moments(a, b):
    """Combine (count, mean, sum of squared deviations) of two groups (Chan et al.)."""
    (n_a, mean_a, m2_a), (n_b, mean_b, m2_b) = a, b
    n = n_a + n_b
    if n == 0:
        return (0, 0.0, 0.0)
    delta = mean_b - mean_a
    return (n, mean_a + delta * n_b / n, m2_a + m2_b + delta**2 * n_a * n_b / n)


def fit_tasks_from_summaries(summaries, task_types):
    """Return the fitted task of each target column from its label summary.

    The out-of-core counterpart of :func:`fit_tasks`: the same checks and
    inference, from statistics merged over partitions.

    Parameters
    ----------
    summaries : list of LabelSummary
        One per task, in column order.
    task_types : "auto", dict or list

    Returns
    -------
    list of skmtl.tasks.Task
    """
    names = [s.name for s in summaries]
    tasks = []
    for summary, requested in zip(summaries, _requested_types(task_types, names)):
        cls = _requested_class(summary.name, requested)
        _check_labelled(summary.name, summary.count)
        if cls is None:
            cls = infer_task_type(summary.name, summary.representative_labels())
        tasks.append(cls.from_summary(summary.name, summary))
    return tasks


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
