"""Warnings and errors raised by skmtl."""

from sklearn.exceptions import ConvergenceWarning, NotFittedError

__all__ = [
    "ConvergenceWarning",
    "DeviceWarning",
    "ModelFileError",
    "NotFittedError",
    "TrainingDivergedError",
    "TrainingInterruptedWarning",
]


class DeviceWarning(UserWarning):
    """A fitted model was moved to another device than the one it was saved from.

    Raised when a model fitted and pickled on a GPU is loaded on a machine
    without one: the model is loaded on the CPU instead.
    """


class TrainingDivergedError(FloatingPointError):
    """A task's training loss became NaN or infinite.

    Training stops at the batch where it happened; the estimator keeps the
    weights of its last completed epoch (or is left unfitted when no epoch
    completed). The message names the tasks, the epoch and the batch.
    """


class TrainingInterruptedWarning(UserWarning):
    """``fit`` was interrupted (Ctrl-C) and kept the last completed epoch.

    The ``KeyboardInterrupt`` is raised again after this warning, so a script
    stops; in an interactive session the estimator remains usable with the
    weights of the last completed epoch.
    """


class ModelFileError(ValueError):
    """A file cannot be loaded as a saved skmtl model.

    Raised by :func:`skmtl.load` for a file that is truncated, was edited or
    damaged after saving, comes from a newer file format, names a class this
    installation does not define, or holds weights that do not fit the
    network its parameters describe. The message says which.
    """
