"""Task types: what one target column is and how a network learns it.

Every column of ``y`` becomes one fitted task object. The object owns all that
depends on the kind of target: how many network outputs it needs, how labels
become learnable numbers, the loss on the network's raw outputs (logits), how
outputs become predictions and probabilities, and the score. The estimators,
the loss and the metrics only ask the task, so a new kind of target is one
class here.

Estimators take a type by name in ``task_types`` (``"binary"``,
``"multiclass"``, ``"regression"``, ``"poisson"``) or as a :class:`Task`
subclass. ``"auto"`` picks binary, multiclass or regression from the labels.

To add a type, subclass :class:`Task`, implement :meth:`Task.from_labels`,
:meth:`Task.encode`, :meth:`Task.loss`, :meth:`Task.decode`, :meth:`Task.score`
(and :meth:`Task.predict_proba` for classification), and pass the class in
``task_types``.
"""

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, d2_tweedie_score, r2_score, roc_auc_score
from sklearn.utils.multiclass import type_of_target
from torch.nn import functional as F

from skmtl._validation import format_names

__all__ = [
    "BinaryTask",
    "MulticlassTask",
    "PoissonTask",
    "RegressionTask",
    "Task",
    "task_type",
]


class Task:
    """Base class of a fitted task: one target column of ``y``.

    Parameters
    ----------
    name : str
        Column name in ``y`` (``"task_0"``... for arrays).

    Attributes
    ----------
    name : str
        The task's name.
    kind : str
        Name of the task type, as reported in ``task_types_``.
    classes : ndarray or None
        Sorted class labels of a classification task; None otherwise.
    n_outputs : int
        Network outputs the task reads.
    """

    kind = None
    classes = None

    def __init_subclass__(cls, **kwargs):
        # Overrides without a docstring show the base class's, in help() and docs.
        super().__init_subclass__(**kwargs)
        for name in (
            "encode", "loss", "decode", "predict_proba", "score", "from_summary"
        ):
            method = cls.__dict__.get(name)
            function = getattr(method, "__func__", method)
            if function is not None and not function.__doc__:
                function.__doc__ = getattr(Task, name).__doc__

    def __init__(self, name):
        self.name = str(name)

    @property
    def n_outputs(self):
        """Number of network outputs of the task (1 unless overridden)."""
        return 1

    @property
    def type(self):
        """The task's type name (same as ``kind``)."""
        return self.kind

    @classmethod
    def from_labels(cls, name, labels):
        """Fit the task on its labelled values.

        Parameters
        ----------
        name : str
            Column name.
        labels : pandas.Series
            The column's non-missing labels (at least one).

        Returns
        -------
        Task
        """
        raise NotImplementedError

    @classmethod
    def from_summary(cls, name, summary):
        """Fit the task on statistics of its labels merged over partitions.

        ``fit`` on a Dask DataFrame never holds a whole target column: it
        summarises each partition's labels and calls this instead of
        :meth:`from_labels`. A task type that cannot be fitted from these
        statistics keeps this default, which raises.

        Parameters
        ----------
        name : str
            Column name.
        summary : LabelSummary
            Has ``count``; ``distinct_labels`` (a Series, or None when a
            continuous column has too many); ``representative_labels()`` (the
            distinct labels, or the extremes, enough to check the labels'
            type); and, when every label is a number, ``mean`` and ``std``.

        Returns
        -------
        Task
        """
        raise TypeError(
            f"Task type {cls.__name__} cannot be fitted on a Dask DataFrame: it "
            "does not implement from_summary. Fit it on a pandas DataFrame."
        )

    def encode(self, labels):
        """Map labels to the float targets the loss reads.

        Parameters
        ----------
        labels : pandas.Series
            Non-missing labels.

        Returns
        -------
        ndarray of shape (n_labels,), dtype float32
        """
        raise NotImplementedError

    @staticmethod
    def loss(logits, targets):
        """Per-row loss of every task of this type in a batch, computed at once.

        Parameters
        ----------
        logits : torch.Tensor of shape (n_samples, n_tasks, n_outputs)
            Raw outputs of the tasks of this type (and output count).
        targets : torch.Tensor of shape (n_samples, n_tasks)
            Encoded targets (0 where missing; those rows weigh 0).

        Returns
        -------
        torch.Tensor of shape (n_samples, n_tasks)
        """
        raise NotImplementedError

    def decode(self, outputs):
        """Turn raw outputs into predictions in the label space.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_outputs)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        raise NotImplementedError

    def predict_proba(self, outputs):
        """Class probabilities, or None for a task that has none.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_outputs)

        Returns
        -------
        ndarray of shape (n_samples, n_classes) or None
        """
        return None

    def score(self, y_true, outputs):
        """Score the outputs of labelled rows against their labels.

        Parameters
        ----------
        y_true : ndarray of shape (n_samples,)
            Raw labels.
        outputs : ndarray of shape (n_samples, n_outputs)

        Returns
        -------
        float
        """
        raise NotImplementedError

    def get_state(self):
        """Return the fitted task as a JSON-serialisable dict.

        Returns
        -------
        dict
        """
        state = {"kind": self.kind, "name": self.name}
        state.update(self._state_fields())
        return state

    def _state_fields(self):
        return {}

    def __eq__(self, other):
        return type(self) is type(other) and _same_state(self, other)

    def __hash__(self):
        return hash((type(self), self.name))

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


def _same_state(a, b):
    sa, sb = a.get_state(), b.get_state()
    return sa.keys() == sb.keys() and all(
        np.array_equal(sa[k], sb[k]) if isinstance(sa[k], list) else sa[k] == sb[k]
        for k in sa
    )


def _plain(values):
    """Turn numpy scalars into Python ones, for JSON."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


class _ClassificationTask(Task):
    """A task whose labels are a fixed set of classes."""

    def __init__(self, name, classes):
        super().__init__(name)
        self.classes = np.asarray(classes)

    @classmethod
    def from_labels(cls, name, labels):
        classes = _sorted_classes(name, labels)
        if len(classes) < 2:
            raise ValueError(
                f"Task {name!r} has only one class ({classes[0]!r}) among its "
                "labelled rows; a classification task needs at least two."
            )
        return cls(name, classes)

    @classmethod
    def from_summary(cls, name, summary):
        labels = summary.distinct_labels
        if labels is None:
            raise ValueError(
                f"Task {name!r} has too many distinct non-integer labels to be a "
                f"{cls.kind} task; declare it 'regression' in task_types."
            )
        return cls.from_labels(name, labels)

    def encode(self, labels):
        return self._class_index(labels.to_numpy()).astype(np.float32)

    def _class_index(self, values):
        """Index of each label among the classes; an error names unseen ones."""
        # A hash lookup, unlike a sorted search, also answers for labels of
        # another type than the classes (the string "1" for the class 1).
        index = pd.Index(self.classes).get_indexer(values)
        unknown = index < 0
        if np.any(unknown):
            raise ValueError(
                f"Task {self.name!r} has labels not seen in fit: "
                f"{format_names(pd.unique(values[unknown]))}; its classes are "
                f"{_plain(self.classes.tolist())}."
            )
        return index

    def _state_fields(self):
        return {"classes": _plain(self.classes.tolist())}


class BinaryTask(_ClassificationTask):
    """Two classes, one logit, binary cross-entropy; scored by ROC AUC.

    ROC AUC rather than accuracy, which hides a rare positive class.

    Parameters
    ----------
    name : str
        Column name.
    classes : array-like of shape (2,)
        Sorted labels; the second is the positive class.
    """

    kind = "binary"

    @classmethod
    def from_labels(cls, name, labels):
        task = super().from_labels(name, labels)
        if len(task.classes) != 2:
            raise ValueError(
                f"Task {name!r} was declared binary but has {len(task.classes)} "
                "classes."
            )
        return task

    @staticmethod
    def loss(logits, targets):
        return F.binary_cross_entropy_with_logits(
            logits[..., 0], targets, reduction="none"
        )

    def decode(self, outputs):
        return self.classes[(outputs[:, 0] > 0).astype(int)]

    def predict_proba(self, outputs):
        positive = 1.0 / (1.0 + np.exp(-outputs[:, 0]))
        return np.column_stack([1.0 - positive, positive])

    def score(self, y_true, outputs):
        # An unseen label would silently count as negative.
        positive = self._class_index(np.asarray(y_true)) == 1
        if len(np.unique(positive)) < 2:
            raise ValueError(
                f"Cannot compute ROC AUC for task {self.name!r}: its labelled rows "
                "hold only one class."
            )
        return float(roc_auc_score(positive, outputs[:, 0]))


class MulticlassTask(_ClassificationTask):
    """More than two classes, one logit each, softmax cross-entropy; scored by accuracy.

    Accuracy rather than one-vs-rest AUC, which is undefined when a
    cross-validation fold lacks a class.

    Parameters
    ----------
    name : str
        Column name.
    classes : array-like of shape (n_classes,)
        Sorted labels.
    """

    kind = "multiclass"

    @property
    def n_outputs(self):
        """One output per class."""
        return len(self.classes)

    @staticmethod
    def loss(logits, targets):
        # cross_entropy takes the class axis second: (B, G, C) -> (B, C, G).
        return F.cross_entropy(
            logits.transpose(1, 2), targets.long(), reduction="none"
        )

    def decode(self, outputs):
        return self.classes[outputs.argmax(axis=1)]

    def predict_proba(self, outputs):
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def score(self, y_true, outputs):
        return float(accuracy_score(y_true, self.decode(outputs)))


def _numeric_labels(name, labels, kind):
    """Return labels as float64, with an error naming the task if not numbers."""
    values = pd.to_numeric(labels, errors="coerce")
    _check_not_complex(name, values)
    bad = labels[values.isna()]
    if len(bad):
        raise ValueError(
            f"Task {name!r} is a {kind} task but has labels that are not numbers: "
            f"{format_names(bad.astype(str).unique())}."
        )
    values = values.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"Task {name!r} has infinite labels; a {kind} target must be finite "
            "(use NaN to leave a row out of the task)."
        )
    return values


class RegressionTask(Task):
    """A real-valued target, learnt standardised with squared error; scored by R².

    Parameters
    ----------
    name : str
        Column name.
    mean, scale : float
        The network learns ``(y - mean) / scale``.
    """

    kind = "regression"

    def __init__(self, name, mean=0.0, scale=1.0):
        super().__init__(name)
        self.mean, self.scale = float(mean), float(scale)

    @classmethod
    def from_labels(cls, name, labels):
        values = _numeric_labels(name, labels, cls.kind)
        return cls(name, values.mean(), float(values.std()) or 1.0)

    @classmethod
    def from_summary(cls, name, summary):
        _numeric_labels(name, summary.representative_labels(), cls.kind)
        return cls(name, summary.mean, summary.std or 1.0)

    def encode(self, labels):
        values = _numeric_labels(self.name, labels, self.kind)
        return ((values - self.mean) / self.scale).astype(np.float32)

    @staticmethod
    def loss(logits, targets):
        return (logits[..., 0] - targets).square()

    def decode(self, outputs):
        return outputs[:, 0] * self.scale + self.mean

    def score(self, y_true, outputs):
        y_true = _numeric_labels(self.name, pd.Series(y_true), self.kind)
        return float(r2_score(y_true, self.decode(outputs)))

    def _state_fields(self):
        return {"mean": self.mean, "scale": self.scale}


class PoissonTask(Task):
    """A count (non-negative target): log link, Poisson loss, scored by D².

    D² is the share of Poisson deviance explained, R²'s analogue for counts.

    The network's output ``f`` predicts ``mean * exp(f)``; dividing by the
    labels' mean keeps the first predictions near the right scale.

    Parameters
    ----------
    name : str
        Column name.
    mean : float
        Mean of the labels seen in ``fit`` (positive).
    """

    kind = "poisson"

    def __init__(self, name, mean=1.0):
        super().__init__(name)
        self.mean = float(mean)

    @classmethod
    def from_labels(cls, name, labels):
        values = cls._counts(name, labels)
        return cls(name, values.mean())

    @classmethod
    def from_summary(cls, name, summary):
        # The representative labels hold the extremes: enough for the checks.
        cls._counts(name, summary.representative_labels())
        return cls(name, summary.mean)

    @classmethod
    def _counts(cls, name, labels):
        """Labels as float64, checked to be counts (>= 0, not all 0)."""
        values = _numeric_labels(name, labels, cls.kind)
        if np.any(values < 0):
            raise ValueError(
                f"Task {name!r} is a poisson task but has negative labels; counts "
                "must be >= 0."
            )
        if not values.any():
            raise ValueError(f"Task {name!r} is a poisson task but all labels are 0.")
        return values

    def encode(self, labels):
        return (_numeric_labels(self.name, labels, self.kind) / self.mean).astype(
            np.float32
        )

    @staticmethod
    def loss(logits, targets):
        # Poisson deviance up to terms without the output: exp(f) - y f.
        return torch.exp(logits[..., 0]) - targets * logits[..., 0]

    def decode(self, outputs):
        return self.mean * np.exp(outputs[:, 0])

    def score(self, y_true, outputs):
        y_true = _numeric_labels(self.name, pd.Series(y_true), self.kind)
        return float(d2_tweedie_score(y_true, self.decode(outputs), power=1))

    def _state_fields(self):
        return {"mean": self.mean}


TASK_TYPES = {
    cls.kind: cls for cls in (BinaryTask, MulticlassTask, RegressionTask, PoissonTask)
}


def task_type(kind):
    """Return the task class of a type name or class.

    Parameters
    ----------
    kind : str or type
        ``"binary"``, ``"multiclass"``, ``"regression"``, ``"poisson"``, or a
        :class:`Task` subclass.

    Returns
    -------
    type
    """
    if isinstance(kind, type) and issubclass(kind, Task):
        return kind
    if isinstance(kind, str) and kind in TASK_TYPES:
        return TASK_TYPES[kind]
    raise ValueError(
        f"Unknown task type {kind!r}; expected one of {tuple(TASK_TYPES)}, 'auto' "
        "or a skmtl.tasks.Task subclass."
    )


# Values that are not one label each: a user's row of several, or a record.
_NOT_LABELS = (dict, list, tuple, set, frozenset, np.ndarray)


def _check_not_complex(name, values):
    if values.dtype.kind == "c":
        raise ValueError(
            f"Task {name!r} has complex labels; a label is a number, a string or a "
            "boolean."
        )


def _sorted_classes(name, labels):
    """Sorted unique labels, with an error naming the task if they do not sort."""
    values = labels.to_numpy()
    _check_not_complex(name, values)
    kinds = {type(v) for v in values} if values.dtype == object else set()
    not_labels = [k.__name__ for k in kinds if issubclass(k, (*_NOT_LABELS, complex))]
    if not_labels:
        raise ValueError(
            f"Task {name!r} has values that are not single labels "
            f"({format_names(not_labels)}); a label is a number, a string or a "
            "boolean."
        )
    numbers = (bool, int, float, np.number, np.bool_)
    if len(kinds) > 1 and not all(issubclass(k, numbers) for k in kinds):
        raise ValueError(
            f"Task {name!r} mixes label types "
            f"({format_names(k.__name__ for k in kinds)}); use labels of one type, "
            "e.g. all strings."
        )
    return np.unique(values)


def infer_task_type(name, labels):
    """Infer a task's type from its labels, as scikit-learn's type_of_target would.

    Parameters
    ----------
    name : str
        Column name, for error messages.
    labels : pandas.Series
        Non-missing labels.

    Returns
    -------
    type
        :class:`BinaryTask`, :class:`MulticlassTask` or :class:`RegressionTask`.
    """
    if pd.api.types.is_bool_dtype(labels):
        return BinaryTask
    # An object column of numbers is read as numbers, as pandas would.
    values = labels.infer_objects()
    _check_not_complex(name, values)
    if values.dtype.kind in "mM":
        raise ValueError(
            f"Task {name!r} holds dates or durations, which are not labels; convert "
            "them (to numbers of days, say), or declare task_types={"
            f"{name!r}: 'multiclass'}} to treat each value as a class."
        )
    if pd.api.types.is_numeric_dtype(values) and not np.all(
        np.isfinite(values.to_numpy(dtype=np.float64))
    ):
        raise ValueError(
            f"Task {name!r} has infinite labels; use NaN to leave a row out of the "
            "task, or finite values."
        )
    _sorted_classes(name, values)  # names the task when label types are mixed
    kind = type_of_target(values.to_numpy())
    if kind in ("binary", "multiclass"):
        return TASK_TYPES[kind]
    if kind == "continuous":
        return RegressionTask
    raise ValueError(
        f"Unknown label type for task {name!r} (scikit-learn sees {kind!r}); pass "
        f"task_types={{{name!r}: one of {tuple(TASK_TYPES)}}}."
    )


def task_from_state(state):
    """Rebuild a fitted task from :meth:`Task.get_state`'s dict.

    Parameters
    ----------
    state : dict

    Returns
    -------
    Task
    """
    fields = dict(state)
    cls = task_type(fields.pop("kind"))
    return cls(**fields)
