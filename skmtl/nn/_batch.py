"""The one structure every skmtl network reads: a batch of encoded features."""

from typing import NamedTuple

import torch


class FeatureBatch(NamedTuple):
    """Encoded rows as tensors: categorical codes, numbers and bags of codes.

    Every network's ``forward`` takes one ``FeatureBatch``, so a new kind of
    input is a new field here rather than a new positional argument threaded
    through every signature.

    Parameters
    ----------
    categorical : torch.LongTensor of shape (n_samples, n_categorical)
        One code per categorical column (0 unknown, ``cardinality - 1``
        missing).
    numeric : torch.Tensor of shape (n_samples, n_numeric)
        Scaled numeric columns.
    multi_valued : torch.LongTensor of shape (n_samples, n_multi_valued, max_length)
        One bag of codes per multi-valued column, padded with -1.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import FeatureBatch
    >>> batch = FeatureBatch.from_arrays(torch.zeros(4, 2, dtype=torch.long),
    ...                                  torch.zeros(4, 3))
    >>> batch.n_samples, batch.multi_valued.shape
    (4, torch.Size([4, 0, 0]))
    >>> batch.rows(torch.tensor([0, 2])).numeric.shape
    torch.Size([2, 3])
    """

    categorical: torch.Tensor
    numeric: torch.Tensor
    multi_valued: torch.Tensor

    @classmethod
    def from_arrays(cls, categorical, numeric, multi_valued=None, *, device=None):
        """Build a batch from arrays or tensors, without copying where possible.

        Parameters
        ----------
        categorical : array-like of shape (n_samples, n_categorical), integer
        numeric : array-like of shape (n_samples, n_numeric), float
        multi_valued : array-like of shape (n_samples, n_multi_valued, max_length), default=None
            None means no multi-valued column.
        device : torch.device or str, default=None
            Where the tensors go.

        Returns
        -------
        FeatureBatch
        """
        categorical = torch.as_tensor(categorical, dtype=torch.long, device=device)
        numeric = torch.as_tensor(numeric, device=device)
        if multi_valued is None:
            multi_valued = categorical.new_empty((categorical.shape[0], 0, 0))
        multi_valued = torch.as_tensor(multi_valued, dtype=torch.long, device=device)
        return cls(categorical, numeric, multi_valued)

    @property
    def n_samples(self):
        """Number of rows."""
        return self.categorical.shape[0]

    def rows(self, index):
        """Return the rows at ``index`` (a tensor of positions or a slice).

        Parameters
        ----------
        index : torch.Tensor or slice

        Returns
        -------
        FeatureBatch
        """
        return FeatureBatch(*(field[index] for field in self))

    def split(self, size):
        """Split into consecutive batches of at most ``size`` rows.

        Parameters
        ----------
        size : int

        Returns
        -------
        list of FeatureBatch
        """
        return [FeatureBatch(*fields) for fields in zip(*(f.split(size) for f in self))]

    def to(self, device):
        """Move every field to ``device``.

        Parameters
        ----------
        device : torch.device or str

        Returns
        -------
        FeatureBatch
        """
        return FeatureBatch(*(field.to(device) for field in self))
