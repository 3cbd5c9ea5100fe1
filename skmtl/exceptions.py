"""Warnings and errors raised by skmtl."""

from sklearn.exceptions import NotFittedError

__all__ = ["DeviceWarning", "NotFittedError"]


class DeviceWarning(UserWarning):
    """A fitted model was moved to another device than the one it was saved from.

    Raised when a model fitted and pickled on a GPU is loaded on a machine
    without one: the model is loaded on the CPU instead.
    """
