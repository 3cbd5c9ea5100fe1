"""Warnings and errors raised by skmtl."""

from sklearn.exceptions import NotFittedError

__all__ = ["DeviceWarning", "ModelFileError", "NotFittedError"]


class DeviceWarning(UserWarning):
    """A fitted model was moved to another device than the one it was saved from.

    Raised when a model fitted and pickled on a GPU is loaded on a machine
    without one: the model is loaded on the CPU instead.
    """


class ModelFileError(ValueError):
    """A file cannot be loaded as a saved skmtl model.

    Raised by :func:`skmtl.load` for a file that is truncated, was edited or
    damaged after saving, comes from a newer file format, names a class this
    installation does not define, or holds weights that do not fit the
    network its parameters describe. The message says which.
    """
