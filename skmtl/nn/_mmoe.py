"""Multi-gate Mixture-of-Experts and its one-gate baseline.

Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships in Multi-task
Learning with Multi-gate Mixture-of-Experts", KDD 2018.
"""

import torch
from torch import nn

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._layers import StackedMLP


class MMoE(MultiTaskNetwork):
    """Experts shared by all tasks, mixed by one softmax gate per task.

    All experts run as one batched op; all gates are one linear layer.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        Outputs of each task.
    n_experts : int, default=8
        Number of experts.
    expert_hidden_sizes : sequence of int, default=(64,)
        Hidden layers of each expert.
    gating : {"per_task", "shared"}, default="per_task"
        ``"shared"`` uses one gate for every task: the One-gate MoE baseline.
    **common
        Parameters of :class:`MultiTaskNetwork`: ``embedding_dim``,
        ``tower_hidden_sizes``, ``dropout``, ``bag_cardinalities``, ``bag_mode``,
        ``device``, ``dtype``.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import MMoE, FeatureBatch
    >>> net = MMoE([5, 3], n_numeric=2, output_sizes=[1, 1], n_experts=4)
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
        n_experts=8,
        expert_hidden_sizes=(64,),
        gating="per_task",
        **common,
    ):
        super().__init__(cardinalities, n_numeric, output_sizes, **common)
        if gating not in ("per_task", "shared"):
            raise ValueError(f"gating must be 'per_task' or 'shared', got {gating!r}.")
        self.n_experts = int(n_experts)
        self.gating = gating
        d_in = self.input.out_features
        self.experts = StackedMLP(
            self.n_experts, d_in, expert_hidden_sizes, self.dropout, **self._factory
        )
        n_gates = self.n_tasks if gating == "per_task" else 1
        self.gates = nn.Linear(d_in, n_gates * self.n_experts, **self._factory)
        self._build_towers(self.experts.out_features)

    def gate_weights(self, x):
        """Return each task's softmax weights over the experts.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)
            Output of the input layer.

        Returns
        -------
        torch.Tensor of shape (n_tasks, n_samples, n_experts)
        """
        # (B, G * E) -> (B, G, E) -> (G, B, E)
        logits = self.gates(x).view(x.shape[0], -1, self.n_experts).transpose(0, 1)
        return torch.softmax(logits, dim=-1).expand(self.n_tasks, -1, -1)

    def gate_distributions(self, x):
        """Return each task's gate weights for raw encoded inputs.

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        list of tuple
            One level: ``[(task_gates, None)]`` with ``task_gates`` of shape
            (n_tasks, n_samples, n_experts), the layout :meth:`PLE.gate_distributions` uses.
        """
        return [(self.gate_weights(self.input(x)), None)]

    def represent(self, x):
        """Mix the experts' outputs with each task's gate.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)

        Returns
        -------
        torch.Tensor of shape (n_tasks, n_samples, expert_width)
        """
        experts = self.experts(x)  # (E, B, H)
        gates = self.gate_weights(x)  # (T, B, E)
        return torch.einsum("tbe,ebh->tbh", gates, experts)
