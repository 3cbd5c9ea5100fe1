"""Cross-stitch networks: one column of layers per task, linearly mixed.

I. Misra, A. Shrivastava, A. Gupta and M. Hebert, "Cross-stitch Networks for
Multi-task Learning", CVPR 2016.
"""

import torch
from torch import nn

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._layers import StackedLinear, _as_size_tuple


def _stitch_init_matrix(n_tasks, stitch_init, *, device=None, dtype=None):
    """Return the initial cross-stitch matrix: near the identity, rows summing to 1.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``K``.
    stitch_init : float
        Weight of a task's own column; ``1 - stitch_init`` is shared equally
        by the other ``K - 1`` columns. With one task the matrix is ``[[1]]``.
    device, dtype : optional
        Of the returned tensor.

    Returns
    -------
    torch.Tensor of shape (n_tasks, n_tasks)

    Examples
    --------
    >>> _stitch_init_matrix(3, 0.8)
    tensor([[0.8000, 0.1000, 0.1000],
            [0.1000, 0.8000, 0.1000],
            [0.1000, 0.1000, 0.8000]])
    """
    if n_tasks == 1:
        return torch.ones(1, 1, device=device, dtype=dtype)
    off = (1.0 - stitch_init) / (n_tasks - 1)
    matrix = torch.full((n_tasks, n_tasks), off, device=device, dtype=dtype)
    return matrix.fill_diagonal_(stitch_init)


class CrossStitch(MultiTaskNetwork):
    """One MLP column per task, linked after each hidden layer by a cross-stitch unit.

    Every task has its own column of layers on the shared input
    representation. After each hidden layer, a learnt ``K x K`` matrix
    ``alpha`` mixes the columns: task ``k``'s next input is
    ``sum_j alpha[k, j] h_j``. ``alpha`` starts near the identity:
    ``stitch_init`` on the diagonal and ``(1 - stitch_init) / (K - 1)`` off
    it, so each row is a convex combination (the paper's best initialisation
    for two tasks is 0.9 and 0.1), and the columns start almost
    independent and learn how much to share. The columns run as one batched
    product per layer and the mixing as one ``einsum``.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        Outputs of each task.
    column_hidden_sizes : sequence of int, default=(64, 32)
        Hidden layers of each task's column; a cross-stitch unit follows each.
    stitch_init : float, default=0.9
        Initial weight of a task's own column in each cross-stitch unit.
    **common
        Parameters of :class:`MultiTaskNetwork`: ``embedding_dim``,
        ``tower_hidden_sizes``, ``dropout``, ``bag_cardinalities``,
        ``bag_mode``, ``device``, ``dtype``.

    Attributes
    ----------
    stitches : torch.nn.Parameter of shape (n_layers, n_tasks, n_tasks)
        The cross-stitch matrices, one per hidden layer.

    Notes
    -----
    The paper uses one ``alpha`` per pair of tasks and layer, as here (it
    also considers one per channel), and trains the ``alpha`` with a larger
    learning rate than the layers; here every parameter shares the
    optimizer's learning rate.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import CrossStitch, FeatureBatch
    >>> net = CrossStitch([5, 3], n_numeric=2, output_sizes=[1, 1])
    >>> codes = torch.zeros(4, 2, dtype=torch.long)
    >>> x = FeatureBatch.from_arrays(codes, torch.zeros(4, 2))
    >>> net(x).shape, net.stitches.shape
    (torch.Size([4, 2]), torch.Size([2, 2, 2]))
    """

    def __init__(
        self,
        cardinalities,
        n_numeric,
        output_sizes,
        *,
        column_hidden_sizes=(64, 32),
        stitch_init=0.9,
        **common,
    ):
        super().__init__(cardinalities, n_numeric, output_sizes, **common)
        sizes = _as_size_tuple(column_hidden_sizes, "column_hidden_sizes")
        if not sizes:
            raise ValueError("column_hidden_sizes needs at least one hidden layer.")
        widths = (self.input.out_features, *sizes)
        self.columns = nn.ModuleList(
            StackedLinear(self.n_tasks, w_in, w_out, **self._factory)
            for w_in, w_out in zip(widths[:-1], widths[1:])
        )
        init = _stitch_init_matrix(self.n_tasks, float(stitch_init), **self._factory)
        self.stitches = nn.Parameter(init.expand(len(sizes), -1, -1).clone())
        self.column_dropout = (
            nn.Dropout(self.dropout) if self.dropout else nn.Identity()
        )
        self._build_towers(widths[-1])

    def represent(self, x):
        """Run the task columns and their cross-stitch units.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)

        Returns
        -------
        torch.Tensor of shape (n_tasks, n_samples, width)
        """
        h = x  # 2-D at first: every column reads the shared input
        for layer, alpha in zip(self.columns, self.stitches):
            h = self.column_dropout(torch.relu(layer(h)))  # (K, B, H)
            h = torch.einsum("kj,jbh->kbh", alpha, h)
        return h
