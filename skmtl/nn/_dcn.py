"""Deep & Cross Network bottom with one tower per task, and the Shared-Bottom baseline.

Wang, Fu, Fu and Wang, "Deep & Cross Network for Ad Click Predictions",
ADKDD 2017 (``cross_type="vector"``); Wang, Shivanna, Cheng, Jain, Lin, Hong
and Chi, "DCN V2: Improved Deep & Cross Network", WWW 2021
(``cross_type="matrix"``). Shared-Bottom: Caruana, "Multitask Learning",
Machine Learning 28, 1997.
"""

import torch
from torch import nn

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._layers import MLP


class CrossNetwork(nn.Module):
    """Explicit feature crossing, one layer after another.

    ``"vector"``: x_{l+1} = x_0 (x_l . w_l) + b_l + x_l (DCN).
    ``"matrix"``: x_{l+1} = x_0 * (W_l x_l + b_l) + x_l (DCN-v2).

    Parameters
    ----------
    in_features : int
        Width of x_0.
    n_layers : int
        Number of cross layers.
    cross_type : {"vector", "matrix"}
        Form of each layer.
    device, dtype : optional
        Passed to every parameter.
    """

    def __init__(self, in_features, n_layers, cross_type, *, device=None, dtype=None):
        super().__init__()
        if cross_type not in ("vector", "matrix"):
            raise ValueError(
                f"cross_type must be 'vector' or 'matrix', got {cross_type!r}."
            )
        out = 1 if cross_type == "vector" else in_features
        kw = {"device": device, "dtype": dtype}
        self.cross_type = cross_type
        # "vector" keeps its bias outside the product, as in the DCN paper.
        self.layers = nn.ModuleList(
            nn.Linear(in_features, out, bias=cross_type == "matrix", **kw)
            for _ in range(n_layers)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(in_features, **kw))
            for _ in range(n_layers if cross_type == "vector" else 0)
        )
        self.out_features = in_features

    def forward(self, x0):
        """Cross ``x0`` with itself ``n_layers`` times.

        Parameters
        ----------
        x0 : torch.Tensor of shape (n_samples, in_features)

        Returns
        -------
        torch.Tensor of shape (n_samples, in_features)
        """
        x = x0
        for i, layer in enumerate(self.layers):
            if self.cross_type == "vector":
                x = x0 * layer(x) + self.biases[i] + x  # layer(x): (B, 1)
            else:
                x = x0 * layer(x) + x
        return x


class DCN(MultiTaskNetwork):
    """Cross network and deep network as a shared bottom, then task towers.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        Outputs of each task.
    n_cross_layers : int, default=3
        Number of cross layers.
    cross_type : {"matrix", "vector"}, default="matrix"
        DCN-v2 (matrix) or DCN (vector) cross layers.
    structure : {"parallel", "stacked"}, default="parallel"
        ``"parallel"`` concatenates cross and deep outputs; ``"stacked"`` feeds
        the cross output into the deep network.
    deep_hidden_sizes : sequence of int, default=(128, 64)
        Hidden layers of the deep network.
    **common
        Parameters of :class:`MultiTaskNetwork`: ``embedding_dim``,
        ``tower_hidden_sizes``, ``dropout``, ``bag_cardinalities``, ``bag_mode``,
        ``device``, ``dtype``.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import DCN, FeatureBatch
    >>> net = DCN([5, 3], n_numeric=2, output_sizes=[1, 1], structure="stacked")
    >>> codes = torch.zeros(10, 2, dtype=torch.long)
    >>> x = FeatureBatch.from_arrays(codes, torch.zeros(10, 2))
    >>> net(x).shape
    torch.Size([10, 2])
    """

    def __init__(
        self,
        cardinalities,
        n_numeric,
        output_sizes,
        *,
        n_cross_layers=3,
        cross_type="matrix",
        structure="parallel",
        deep_hidden_sizes=(128, 64),
        **common,
    ):
        super().__init__(cardinalities, n_numeric, output_sizes, **common)
        if structure not in ("parallel", "stacked"):
            raise ValueError(
                f"structure must be 'parallel' or 'stacked', got {structure!r}."
            )
        self.structure = structure
        d_in = self.input.out_features
        self.cross = CrossNetwork(d_in, int(n_cross_layers), cross_type, **self._factory)
        self.deep = MLP(d_in, deep_hidden_sizes, self.dropout, **self._factory)
        width = self.deep.out_features
        if structure == "parallel":
            width += self.cross.out_features
        self._build_towers(width)

    def represent(self, x):
        """Return the shared bottom output.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)

        Returns
        -------
        torch.Tensor of shape (n_samples, width)
        """
        if self.structure == "stacked":
            return self.deep(self.cross(x))
        return torch.cat([self.cross(x), self.deep(x)], dim=1)


class SharedBottom(MultiTaskNetwork):
    """One MLP shared by all tasks, then one tower per task (hard parameter sharing).

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        Outputs of each task.
    bottom_hidden_sizes : sequence of int, default=(128,)
        Hidden layers of the shared bottom.
    **common
        Parameters of :class:`MultiTaskNetwork`: ``embedding_dim``,
        ``tower_hidden_sizes``, ``dropout``, ``bag_cardinalities``, ``bag_mode``,
        ``device``, ``dtype``.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import SharedBottom, FeatureBatch
    >>> net = SharedBottom([5, 3], n_numeric=2, output_sizes=[1, 1])
    >>> codes = torch.zeros(10, 2, dtype=torch.long)
    >>> x = FeatureBatch.from_arrays(codes, torch.zeros(10, 2))
    >>> net(x).shape
    torch.Size([10, 2])
    """

    def __init__(
        self,
        cardinalities,
        n_numeric,
        output_sizes,
        *,
        bottom_hidden_sizes=(128,),
        **common,
    ):
        super().__init__(cardinalities, n_numeric, output_sizes, **common)
        self.bottom = MLP(
            self.input.out_features, bottom_hidden_sizes, self.dropout, **self._factory
        )
        self._build_towers(self.bottom.out_features)

    def represent(self, x):
        """Return the shared bottom output.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)

        Returns
        -------
        torch.Tensor of shape (n_samples, width)
        """
        return self.bottom(x)
