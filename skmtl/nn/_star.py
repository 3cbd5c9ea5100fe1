"""STAR: one model for several domains (scenarios) with a star topology.

X.-R. Sheng, L. Zhao, G. Zhou, X. Ding, B. Dai, Q. Luo, S. Yang, J. Lv,
C. Zhang, H. Deng and X. Zhu, "One Model to Serve All: Star Topology Adaptive
Recommender for Multi-Domain CTR Prediction", CIKM 2021.

Every row's domain is one categorical code. The domain-specific parameters are
read through the row's one-hot domain indicator by matrix products (domains
are few), rather than by gathering or scattering rows: the backward pass is
then a plain product, deterministic on CPU threads. A row whose domain is not
a known one (code 0, unknown or rare, or the missing code) has an all-zero
indicator and takes the shared path only.
"""

import torch
from torch import nn
from torch.nn import functional as F

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._layers import MLP, _as_size_tuple


def domain_indicator(codes, cardinality, dtype=None):
    """One-hot indicator of each row's known domain; zeros for the others.

    Parameters
    ----------
    codes : torch.LongTensor of shape (n_samples,)
        Encoded domains: 0 unknown, ``1..cardinality - 2`` the known domains,
        ``cardinality - 1`` missing (the :class:`~skmtl.FeatureEncoder` codes).
    cardinality : int
        Number of codes of the domain column.
    dtype : torch.dtype, default=None
        Of the result (the default float type when None).

    Returns
    -------
    torch.Tensor of shape (n_samples, cardinality - 2)
        Column ``d`` is 1 where the row is in known domain ``d + 1``.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import domain_indicator
    >>> domain_indicator(torch.tensor([1, 0, 2, 3]), 4)
    tensor([[1., 0.],
            [0., 0.],
            [0., 1.],
            [0., 0.]])
    """
    one_hot = F.one_hot(codes, cardinality)[:, 1 : cardinality - 1]
    return one_hot.to(dtype or torch.get_default_dtype())


class PartitionedNorm(nn.Module):
    """Normalise each row with its domain's statistics (STAR's PN).

    ``z' = (gamma * gamma_d) (z - mean_d) / sqrt(var_d + eps) + (beta + beta_d)``
    with shared ``gamma, beta`` and domain ``d``'s own ``gamma_d`` (initially 1)
    and ``beta_d`` (initially 0). In training, ``mean_d`` and ``var_d`` are the
    moments of the batch's rows of domain ``d`` (the running moments when it
    has fewer than two rows in the batch), and each domain's running moments
    are updated; in evaluation the running moments are used. Rows outside
    the known domains use the moments of all rows, ``gamma`` and ``beta``.

    Parameters
    ----------
    n_domains : int
        Number of known domains.
    width : int
        Number of features normalised.
    momentum : float, default=0.1
        Weight of the batch in the running moments' update.
    eps : float, default=1e-5
        Added to the variance.
    device, dtype : optional
        Passed to the parameters and buffers.
    """

    def __init__(
        self, n_domains, width, momentum=0.1, eps=1e-5, *, device=None, dtype=None
    ):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.momentum, self.eps = float(momentum), float(eps)
        self.scale = nn.Parameter(torch.ones(width, **kw))
        self.bias = nn.Parameter(torch.zeros(width, **kw))
        self.domain_scale = nn.Parameter(torch.ones(n_domains, width, **kw))
        self.domain_bias = nn.Parameter(torch.zeros(n_domains, width, **kw))
        # Row 0: all rows (the shared path); row d: known domain d.
        self.register_buffer("running_mean", torch.zeros(n_domains + 1, width, **kw))
        self.register_buffer("running_var", torch.ones(n_domains + 1, width, **kw))

    @staticmethod
    def _with_shared(indicator):
        """(B, D) indicator -> (B, D + 1) with column 0 set for unknown rows."""
        unknown = 1.0 - indicator.sum(dim=1, keepdim=True)
        return torch.cat([unknown, indicator], dim=1)

    def _batch_moments(self, z, indicator):
        """Per-group batch moments (D + 1, W), running ones where too few rows."""
        groups = torch.cat([torch.ones_like(indicator[:, :1]), indicator], dim=1)
        counts = groups.sum(dim=0).unsqueeze(1)  # (D + 1, 1)
        mean = groups.T @ z / counts.clamp_min(1.0)
        # Each row's deviation from each group mean it belongs to, squared.
        var = (groups.T @ z.square()) / counts.clamp_min(1.0) - mean.square()
        var = var.clamp_min(0.0)
        enough = counts >= 2
        with torch.no_grad():
            unbiased = var * counts / (counts - 1).clamp_min(1.0)
            m = self.momentum
            self.running_mean.copy_(
                torch.where(
                    enough, (1 - m) * self.running_mean + m * mean, self.running_mean
                )
            )
            self.running_var.copy_(
                torch.where(
                    enough, (1 - m) * self.running_var + m * unbiased, self.running_var
                )
            )
        mean = torch.where(enough, mean, self.running_mean)
        var = torch.where(enough, var, self.running_var)
        return mean, var

    def forward(self, z, indicator):
        """Normalise ``z`` row by row with its domain's moments and affine.

        Parameters
        ----------
        z : torch.Tensor of shape (n_samples, width)
        indicator : torch.Tensor of shape (n_samples, n_domains)
            From :func:`domain_indicator`.

        Returns
        -------
        torch.Tensor of shape (n_samples, width)
        """
        if self.training:
            mean, var = self._batch_moments(z, indicator)
        else:
            mean, var = self.running_mean, self.running_var
        rows = self._with_shared(indicator)  # (B, D + 1)
        # Pick the row's group: domain d, or the shared moments (column 0).
        normalised = (z - rows @ mean) * torch.rsqrt(rows @ var + self.eps)
        scale = self.scale * (rows[:, 1:] @ self.domain_scale + rows[:, :1])
        return scale * normalised + self.bias + indicator @ self.domain_bias


class StarLinear(nn.Module):
    """A linear layer whose weights are the shared ones times the domain's.

    For a row of domain ``d``: ``x (W * W_d) + b + b_d`` (element-wise
    product), with ``W_d`` initially all ones and ``b_d`` zeros; rows outside
    the known domains use ``x W + b``. Computed as ``x W + b`` plus one
    product of the row's indicator-weighted input with every domain's
    ``W * (W_d - 1)``, so no per-row weights are materialised.

    Parameters
    ----------
    n_domains : int
        Number of known domains.
    in_features, out_features : int
        Shape of the layer.
    device, dtype : optional
        Passed to the parameters.
    """

    def __init__(
        self, n_domains, in_features, out_features, *, device=None, dtype=None
    ):
        super().__init__()
        self.shared = nn.Linear(in_features, out_features, device=device, dtype=dtype)
        kw = {"device": device, "dtype": dtype}
        self.domain_weight = nn.Parameter(
            torch.ones(n_domains, in_features, out_features, **kw)
        )
        self.domain_bias = nn.Parameter(torch.zeros(n_domains, out_features, **kw))

    def forward(self, x, indicator):
        """Apply each row's domain layer.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, in_features)
        indicator : torch.Tensor of shape (n_samples, n_domains)
            From :func:`domain_indicator`.

        Returns
        -------
        torch.Tensor of shape (n_samples, out_features)
        """
        n_domains, in_features, out_features = self.domain_weight.shape
        # W * W_d = W + W * (W_d - 1): the shared layer plus a domain correction.
        delta = self.shared.weight.T * (self.domain_weight - 1.0)  # (D, in, out)
        # (B, D, 1) * (B, 1, in) -> (B, D * in): the input placed in its domain's slot
        placed = (indicator.unsqueeze(2) * x.unsqueeze(1)).flatten(1)
        correction = placed @ delta.reshape(n_domains * in_features, out_features)
        return self.shared(x) + correction + indicator @ self.domain_bias


class STAR(MultiTaskNetwork):
    """Star Topology Adaptive Recommender, with one output per task.

    The input representation goes through partitioned normalisation (each
    domain's own statistics), then a star-topology MLP whose every layer
    multiplies shared weights with the row's domain's weights, then each
    task's tower. An auxiliary network reads the domain's own embedding with
    the input representation and its outputs are added to the towers' (one
    per output of each task), so the domain can shift every prediction
    directly. Rows of an unknown or missing domain use the shared parameters
    only: the shared moments in the normalisation, ``W`` alone in the star
    layers and a zero domain embedding in the auxiliary network.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        Outputs of each task.
    domain_index : int
        Which categorical column holds the domain.
    star_hidden_sizes : sequence of int, default=(64, 32)
        Hidden layers of the star-topology MLP.
    auxiliary_hidden_sizes : sequence of int, default=(32,)
        Hidden layers of the auxiliary network.
    **common
        Parameters of :class:`MultiTaskNetwork`: ``embedding_dim`` (also the
        size of the auxiliary network's domain embedding),
        ``tower_hidden_sizes``, ``dropout``, ``bag_cardinalities``,
        ``bag_mode``, ``device``, ``dtype``.

    Attributes
    ----------
    n_domains : int
        Number of known domains: the domain column's cardinality minus 2.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import STAR, FeatureBatch
    >>> net = STAR([5, 3], n_numeric=2, output_sizes=[1, 1], domain_index=0)
    >>> codes = torch.tensor([[1, 0], [2, 1], [3, 2], [0, 1]])  # domains 1-3, unknown
    >>> net(FeatureBatch.from_arrays(codes, torch.zeros(4, 2))).shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        cardinalities,
        n_numeric,
        output_sizes,
        *,
        domain_index,
        star_hidden_sizes=(64, 32),
        auxiliary_hidden_sizes=(32,),
        **common,
    ):
        super().__init__(cardinalities, n_numeric, output_sizes, **common)
        cardinalities = [int(c) for c in cardinalities]
        if not 0 <= domain_index < len(cardinalities):
            raise ValueError(
                f"domain_index must name one of the {len(cardinalities)} categorical "
                f"columns, got {domain_index}."
            )
        self.domain_index = int(domain_index)
        self.domain_cardinality = cardinalities[self.domain_index]
        self.n_domains = max(self.domain_cardinality - 2, 0)
        sizes = _as_size_tuple(star_hidden_sizes, "star_hidden_sizes")
        if not sizes:
            raise ValueError("star_hidden_sizes needs at least one hidden layer.")
        width = self.input.out_features
        self.norm = PartitionedNorm(self.n_domains, width, **self._factory)
        widths = (width, *sizes)
        self.star = nn.ModuleList(
            StarLinear(self.n_domains, w_in, w_out, **self._factory)
            for w_in, w_out in zip(widths[:-1], widths[1:])
        )
        self.star_dropout = nn.Dropout(self.dropout) if self.dropout else nn.Identity()
        self._build_towers(widths[-1])
        dim = self.input.embedding_dim
        self.domain_embedding = nn.Parameter(
            torch.empty(self.n_domains, dim, **self._factory)
        )
        nn.init.normal_(self.domain_embedding, std=0.05)
        self.auxiliary = MLP(
            dim + width, auxiliary_hidden_sizes, self.dropout, **self._factory
        )
        self.auxiliary_head = nn.Linear(
            self.auxiliary.out_features, sum(self.output_sizes), **self._factory
        )

    def indicator(self, x):
        """Return each row's one-hot known domain (zeros when unknown or missing).

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_domains)
        """
        codes = x.categorical[:, self.domain_index]
        return domain_indicator(codes, self.domain_cardinality, x.numeric.dtype)

    def represent(self, x, indicator):
        """Normalise by domain and run the star-topology MLP.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)
            Output of the input layer.
        indicator : torch.Tensor of shape (n_samples, n_domains)
            From :meth:`indicator`.

        Returns
        -------
        torch.Tensor of shape (n_samples, width)
        """
        h = self.norm(x, indicator)
        for layer in self.star:
            h = self.star_dropout(torch.relu(layer(h, indicator)))
        return h

    def forward(self, x):
        """Return the towers' logits plus the auxiliary network's.

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        torch.Tensor of shape (n_samples, sum(output_sizes))
        """
        indicator = self.indicator(x)
        inputs = self.input(x)
        main = self.towers(self.represent(inputs, indicator))
        domain = indicator @ self.domain_embedding  # (B, dim); zeros when unknown
        auxiliary = self.auxiliary_head(
            self.auxiliary(torch.cat([domain, inputs], dim=1))
        )
        return main + auxiliary
