"""Building blocks shared by every skmtl network: input layer, MLPs, batched experts.

Everything here is plain PyTorch: tensors and integers in, tensors out. The modules
take ``device=None, dtype=None`` and pass them to every parameter they create.
"""


import torch
from torch import nn


def _as_size_tuple(sizes, name):
    """Return ``sizes`` as a tuple of positive ints, or raise ``ValueError``."""
    sizes = tuple(int(s) for s in sizes)
    if any(s < 1 for s in sizes):
        raise ValueError(f"{name} must contain positive integers, got {sizes}.")
    return sizes


class FeatureInput(nn.Module):
    """Embed categorical codes, pool bags of codes, add numbers, layer-normalise.

    All categorical columns share one embedding table: column ``j``'s codes are
    shifted by the total cardinality of the columns before it, so every column is
    embedded by a single lookup instead of one lookup per column. Multi-valued
    columns share a second table, read by one :class:`torch.nn.EmbeddingBag`
    that averages (or sums) each bag's embeddings; its row 0 is the padding.
    A final ``LayerNorm`` puts embeddings and numeric values on one scale.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of distinct codes of each categorical column (codes run from 0 to
        ``cardinality - 1``).
    n_numeric : int
        Number of numeric (dense) columns.
    embedding_dim : int
        Size of each column's embedding vector.
    bag_cardinalities : sequence of int, default=()
        Number of distinct codes of each multi-valued column.
    bag_mode : {"mean", "sum"}, default="mean"
        How a bag's embeddings are pooled. An empty bag pools to zeros.
    device, dtype : optional
        Passed to the parameters.

    Attributes
    ----------
    out_features : int
        ``(len(cardinalities) + len(bag_cardinalities)) * embedding_dim +
        n_numeric``.
    """

    def __init__(
        self,
        cardinalities,
        n_numeric,
        embedding_dim,
        *,
        bag_cardinalities=(),
        bag_mode="mean",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if bag_mode not in ("mean", "sum"):
            raise ValueError(f"bag_mode must be 'mean' or 'sum', got {bag_mode!r}.")
        cardinalities = [int(c) for c in cardinalities]
        bag_cardinalities = [int(c) for c in bag_cardinalities]
        self.n_categorical = len(cardinalities)
        self.n_multi_valued = len(bag_cardinalities)
        self.n_numeric = int(n_numeric)
        self.embedding_dim = int(embedding_dim)
        n_embedded = self.n_categorical + self.n_multi_valued
        self.out_features = n_embedded * self.embedding_dim + self.n_numeric
        self.norm = nn.LayerNorm(self.out_features, device=device, dtype=dtype)
        offsets = torch.tensor([0, *cardinalities[:-1]], device=device).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=True)
        self.embedding = None
        if cardinalities:
            self.embedding = nn.Embedding(
                sum(cardinalities), self.embedding_dim, device=device, dtype=dtype
            )
            # Small initial embeddings keep the first layers' inputs on the same
            # scale as the standardised numeric features.
            nn.init.normal_(self.embedding.weight, std=0.05)
        # Bag codes are shifted past row 0, the padding row shared by all bags.
        bag_offsets = torch.tensor([1, *bag_cardinalities[:-1]], device=device).cumsum(0)
        self.register_buffer("bag_offsets", bag_offsets.view(1, -1, 1), persistent=True)
        self.bags = None
        if bag_cardinalities:
            self.bags = nn.EmbeddingBag(
                1 + sum(bag_cardinalities),
                self.embedding_dim,
                mode=bag_mode,
                padding_idx=0,
                device=device,
                dtype=dtype,
            )
            nn.init.normal_(self.bags.weight, std=0.05)
            with torch.no_grad():
                self.bags.weight[0].zero_()

    def _pool_bags(self, codes):
        """Pool each row's bags: (B, M, L) codes -> (B, M * D) embeddings."""
        n_samples = codes.shape[0]
        # -1 padding -> row 0 of the table; code c of bag j -> c + offset_j.
        index = torch.where(codes >= 0, codes + self.bag_offsets, 0)
        pooled = self.bags(index.view(n_samples * self.n_multi_valued, -1))
        return pooled.view(n_samples, self.n_multi_valued * self.embedding_dim)

    def forward(self, x):
        """Return the (n_samples, out_features) input representation.

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        torch.Tensor of shape (n_samples, out_features)
        """
        parts = []
        if self.n_categorical:
            # (B, C) -> (B, C, D) -> (B, C * D)
            parts.append(self.embedding(x.categorical + self.offsets).flatten(1))
        if self.n_multi_valued:
            parts.append(self._pool_bags(x.multi_valued))
        if self.n_numeric:
            parts.append(x.numeric)
        return self.norm(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))


class MLP(nn.Sequential):
    """Linear -> ReLU -> Dropout blocks, one per hidden size.

    Parameters
    ----------
    in_features : int
        Input width.
    hidden_sizes : sequence of int
        Width of each hidden layer; may be empty (then the MLP is the identity).
    dropout : float, default=0.0
        Dropout probability after each activation.
    device, dtype : optional
        Passed to every ``Linear``.

    Attributes
    ----------
    out_features : int
        Width of the last hidden layer, or ``in_features`` if there is none.
    """

    def __init__(self, in_features, hidden_sizes, dropout=0.0, *, device=None, dtype=None):
        layers = []
        width = int(in_features)
        for size in _as_size_tuple(hidden_sizes, "hidden_sizes"):
            layers += [nn.Linear(width, size, device=device, dtype=dtype), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        super().__init__(*layers)
        self.out_features = width


def _init_stacked_linear(weight, bias):
    """Initialise stacked (G, in, out) weights like ``nn.Linear`` does, per group."""
    fan_in = weight.shape[1]
    bound = 1.0 / fan_in**0.5
    # nn.Linear's default (kaiming_uniform with a=sqrt(5)) reduces to U(-b, b)
    # with b = 1/sqrt(fan_in), for weights and biases alike.
    nn.init.uniform_(weight, -bound, bound)
    nn.init.uniform_(bias, -bound, bound)


class StackedLinear(nn.Module):
    """``G`` independent linear layers of the same shape, applied in one ``baddbmm``.

    Parameters
    ----------
    n_groups : int
        Number of independent layers (experts, tasks or gates).
    in_features, out_features : int
        Shape of each layer.
    device, dtype : optional
        Passed to the parameters.
    """

    def __init__(self, n_groups, in_features, out_features, *, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(n_groups, in_features, out_features, **kw))
        self.bias = nn.Parameter(torch.empty(n_groups, 1, out_features, **kw))
        _init_stacked_linear(self.weight, self.bias)

    def forward(self, x):
        """Apply layer ``g`` to ``x[g]``.

        Parameters
        ----------
        x : torch.Tensor of shape (G, n_samples, in_features) or (n_samples, in_features)
            A 2-D input is shared by all groups.

        Returns
        -------
        torch.Tensor of shape (G, n_samples, out_features)
        """
        if x.dim() == 2:
            # One GEMM for all groups with the bias fused in (addmm), rather than
            # a broadcast add over the transposed (G, B, out) view afterwards.
            n_groups, in_features, out_features = self.weight.shape
            flat = self.weight.permute(1, 0, 2).reshape(in_features, -1)  # (in, G*out)
            out = torch.addmm(self.bias.reshape(1, -1), x, flat)  # (B, G * out)
            return out.view(x.shape[0], n_groups, out_features).transpose(0, 1)
        # (G, B, in) @ (G, in, out) + (G, 1, out) -> (G, B, out)
        return torch.baddbmm(self.bias, x, self.weight)


class StackedMLP(nn.Module):
    """``G`` MLPs of identical shape run as batched matrix products.

    Used for the experts of MMoE/PLE and the towers of every network, so that
    the cost grows with one tensor op, not a Python loop over experts or tasks.

    Parameters
    ----------
    n_groups : int
        Number of MLPs.
    in_features : int
        Input width.
    hidden_sizes : sequence of int
        Width of each layer; every layer is followed by ReLU (and dropout).
    dropout : float, default=0.0
        Dropout probability after each activation.
    device, dtype : optional
        Passed to the parameters.

    Attributes
    ----------
    out_features : int
        Width of the last layer, or ``in_features`` if ``hidden_sizes`` is empty.
    """

    def __init__(
        self, n_groups, in_features, hidden_sizes, dropout=0.0, *, device=None, dtype=None
    ):
        super().__init__()
        self.n_groups = int(n_groups)
        sizes = _as_size_tuple(hidden_sizes, "hidden_sizes")
        widths = (int(in_features), *sizes)
        self.layers = nn.ModuleList(
            StackedLinear(self.n_groups, w_in, w_out, device=device, dtype=dtype)
            for w_in, w_out in zip(widths[:-1], widths[1:])
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_features = widths[-1]

    def forward(self, x):
        """Run MLP ``g`` on ``x[g]`` (or every MLP on a shared 2-D ``x``).

        Parameters
        ----------
        x : torch.Tensor of shape (G, n_samples, in_features) or (n_samples, in_features)

        Returns
        -------
        torch.Tensor of shape (G, n_samples, out_features)
        """
        if not self.layers:
            return x.expand(self.n_groups, *x.shape) if x.dim() == 2 else x
        for layer in self.layers:
            x = self.dropout(torch.relu(layer(x)))
        return x


class TaskTowers(nn.Module):
    """One tower per task, batched, ending in each task's own number of outputs.

    Hidden layers of all towers run as one :class:`StackedMLP`. The output layer
    is stacked too, padded to the widest task; the padding columns are dropped by
    a single index gather, so the result is the concatenation of every task's
    logits.

    Parameters
    ----------
    in_features : int
        Width of each task's input.
    output_sizes : sequence of int
        Outputs of each task: 1 for binary and regression, n_classes for
        multiclass.
    hidden_sizes : sequence of int
        Hidden layers of every tower.
    dropout : float, default=0.0
        Dropout after each hidden activation.
    device, dtype : optional
        Passed to the parameters.
    """

    def __init__(
        self, in_features, output_sizes, hidden_sizes, dropout=0.0, *, device=None, dtype=None
    ):
        super().__init__()
        output_sizes = _as_size_tuple(output_sizes, "output_sizes")
        n_tasks = len(output_sizes)
        kw = {"device": device, "dtype": dtype}
        self.hidden = StackedMLP(n_tasks, in_features, hidden_sizes, dropout, **kw)
        self.head = StackedLinear(n_tasks, self.hidden.out_features, max(output_sizes), **kw)
        # Flat positions of the real (unpadded) outputs in the (T * max_out) layout.
        width = max(output_sizes)
        keep = [t * width + j for t, size in enumerate(output_sizes) for j in range(size)]
        self.register_buffer("keep", torch.tensor(keep, device=device), persistent=True)

    def forward(self, x):
        """Return the concatenated logits of all tasks.

        Parameters
        ----------
        x : torch.Tensor of shape (n_tasks, n_samples, in_features) or (n_samples, in_features)

        Returns
        -------
        torch.Tensor of shape (n_samples, sum(output_sizes))
        """
        out = self.head(self.hidden(x))  # (T, B, max_out)
        # (T, B, max_out) -> (B, T * max_out) -> (B, sum_out)
        return out.transpose(0, 1).flatten(1).index_select(1, self.keep)
