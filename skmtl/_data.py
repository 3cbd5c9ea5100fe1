"""Where training rows come from, as seen by the estimators' ``fit``.

A *training data* object holds the rows of one ``fit`` call and answers what
``fit`` needs of them: the tasks and the encoder fitted on them, a validation
split, and a batch source for the training loop. :class:`InMemoryData` holds
pandas frames; a streaming implementation answers the same calls from
partitions it never holds whole.
"""

import numpy as np
import torch

from skmtl._options import class_weight_matrix
from skmtl._targets import encode_targets, fit_tasks
from skmtl._training import Batch, TensorSource
from skmtl.nn import FeatureBatch


def feature_batch(encoded, device):
    """Turn an encoder's ``EncodedFeatures`` into a FeatureBatch on ``device``.

    Parameters
    ----------
    encoded : EncodedFeatures
        numpy arrays from :meth:`skmtl.FeatureEncoder.encode`.
    device : torch.device

    Returns
    -------
    FeatureBatch
    """
    return FeatureBatch.from_arrays(
        encoded.categorical, encoded.numeric, encoded.multi_valued, device=device
    )


def loss_weights(values, mask, weights, class_weights):
    """Loss weight of each (row, task): sample x class weight, 0 where unlabelled.

    Parameters
    ----------
    values : ndarray of shape (n_samples, n_tasks)
        Encoded targets.
    mask : ndarray of shape (n_samples, n_tasks), bool
        Labelled entries.
    weights : ndarray of shape (n_samples,)
        Sample weights.
    class_weights : list or None
        Per task, as returned by ``resolve_class_weight``.

    Returns
    -------
    ndarray of shape (n_samples, n_tasks), float32
    """
    row_weights = mask * weights[:, None]
    if class_weights is not None:
        row_weights = row_weights * class_weight_matrix(values, mask, class_weights)
    return row_weights.astype(np.float32)


class InMemoryData:
    """Rows of a ``fit`` call held in memory as pandas frames.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_features)
        Raw features (never modified).
    targets : DataFrame of shape (n_samples, n_tasks)
        Raw targets, NaN where a row is outside a task.
    weights : ndarray of shape (n_samples,)
        Sample weights.
    """

    def __init__(self, frame, targets, weights):
        self.frame, self.targets, self.weights = frame, targets, weights

    @property
    def n_samples(self):
        """Number of rows."""
        return len(self.frame)

    @property
    def task_names(self):
        """Names of the target columns, as strings."""
        return [str(c) for c in self.targets.columns]

    def fit_tasks(self, task_types):
        """Fit the task objects on the targets (see ``_targets.fit_tasks``)."""
        return fit_tasks(self.targets, task_types)

    def fit_encoder(self, encoder):
        """Fit ``encoder`` on the features and return it."""
        return encoder.fit(self.frame)

    def split(self, fraction, random_state):
        """Split off a random ``fraction`` of the rows for validation.

        Parameters
        ----------
        fraction : float in (0, 1)
        random_state : numpy RandomState

        Returns
        -------
        train, validation : InMemoryData
        """
        n_valid = int(np.ceil(fraction * self.n_samples))
        if n_valid < 1 or n_valid >= self.n_samples:
            raise ValueError(
                f"validation_fraction={fraction} leaves no rows for training or "
                f"validation out of {self.n_samples}."
            )
        order = random_state.permutation(self.n_samples)
        return self._rows(order[n_valid:]), self._rows(order[:n_valid])

    def _rows(self, positions):
        return InMemoryData(
            self.frame.iloc[positions], self.targets.iloc[positions], self.weights[positions]
        )

    def to_batch(self, encoder, tasks, class_weights, device):
        """Encode every row once into one :class:`~skmtl._training.Batch`.

        Parameters
        ----------
        encoder : FeatureEncoder
            Fitted.
        tasks : list of skmtl.tasks.Task
        class_weights : list or None
        device : torch.device

        Returns
        -------
        Batch
        """
        values, mask = encode_targets(self.targets, tasks)
        weights = loss_weights(values, mask, self.weights, class_weights)
        return Batch(
            feature_batch(encoder.encode(self.frame), device),
            torch.as_tensor(values, device=device),
            torch.as_tensor(weights, device=device),
        )

    def evaluation_batches(self, encoder, tasks, device):
        """Return the rows as one batch, for validation (no class weights).

        Parameters
        ----------
        encoder, tasks, device
            As for :meth:`to_batch`.

        Returns
        -------
        tuple of Batch
        """
        return (self.to_batch(encoder, tasks, None, device),)

    def batch_source(self, encoder, tasks, class_weights, device, *, batch_size, seed,
                     comm=None):  # fmt: skip
        """Return the training loop's source of shuffled batches.

        Parameters
        ----------
        encoder, tasks, class_weights, device
            As for :meth:`to_batch`.
        batch_size : int
            Rows per step of this process.
        seed : int
            Seeds each epoch's shuffle.
        comm : communicator, default=None
            For the rank's share of each global batch.

        Returns
        -------
        TensorSource
        """
        batch = self.to_batch(encoder, tasks, class_weights, device)
        return TensorSource(batch, batch_size, seed, comm)
