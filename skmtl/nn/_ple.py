"""Progressive Layered Extraction (PLE) and its one-level form, CGC.

Tang, Liu, Zhao and Gong, "Progressive Layered Extraction (PLE): A Novel
Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020.
"""

import torch
from torch import nn

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._layers import StackedLinear, StackedMLP


class ExtractionLevel(nn.Module):
    """One PLE extraction network: shared + task-specific experts and their gates.

    Experts are laid out as ``[task 0's, task 1's, ..., shared]`` and run as one
    batched op, each on its own group's input. Task ``k``'s gate mixes its own
    and the shared experts; unless this is the last level, a shared gate mixes
    all experts to form the next level's shared input.

    Parameters
    ----------
    n_tasks : int
        Number of tasks.
    in_features : int
        Width of each group's input.
    n_shared_experts, n_task_experts : int
        Experts shared by all tasks, and owned by each task.
    expert_hidden_sizes : sequence of int
        Hidden layers of each expert.
    last : bool
        Whether this is the last level (no shared gate).
    dropout : float
        Dropout after hidden activations.
    device, dtype : optional
        Passed to every parameter.
    """

    def __init__(
        self,
        n_tasks,
        in_features,
        n_shared_experts,
        n_task_experts,
        expert_hidden_sizes,
        last,
        dropout=0.0,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        n_experts = n_tasks * n_task_experts + n_shared_experts
        self.n_experts = n_experts
        self.experts = StackedMLP(n_experts, in_features, expert_hidden_sizes, dropout, **kw)
        self.out_features = self.experts.out_features
        # Input group of each expert: task k's experts read group k, the shared
        # experts read group n_tasks (the shared representation).
        group = [k for k in range(n_tasks) for _ in range(n_task_experts)]
        group += [n_tasks] * n_shared_experts
        self.register_buffer("expert_group", torch.tensor(group, device=device))
        shared = list(range(n_tasks * n_task_experts, n_experts))
        selected = [
            list(range(k * n_task_experts, (k + 1) * n_task_experts)) + shared
            for k in range(n_tasks)
        ]
        self.register_buffer("selected", torch.tensor(selected, device=device))
        self.task_gates = StackedLinear(n_tasks, in_features, len(selected[0]), **kw)
        self.shared_gate = None if last else nn.Linear(in_features, n_experts, **kw)

    def gate_weights(self, inputs):
        """Return the softmax gates of this level.

        Parameters
        ----------
        inputs : torch.Tensor of shape (n_tasks + 1, n_samples, in_features) or (n_samples, in_features)
            Per-group inputs (tasks, then shared), or one input for all.

        Returns
        -------
        task_gates : torch.Tensor of shape (n_tasks, n_samples, n_task_experts + n_shared_experts)
        shared_gate : torch.Tensor of shape (n_samples, n_experts) or None
        """
        task_inputs = inputs if inputs.dim() == 2 else inputs[:-1]
        shared_input = inputs if inputs.dim() == 2 else inputs[-1]
        task_gates = torch.softmax(self.task_gates(task_inputs), dim=-1)
        if self.shared_gate is None:
            return task_gates, None
        return task_gates, torch.softmax(self.shared_gate(shared_input), dim=-1)

    def forward(self, inputs):
        """Return the next level's inputs: every task's mixture, then the shared one.

        Parameters
        ----------
        inputs : torch.Tensor of shape (n_tasks + 1, n_samples, in_features) or (n_samples, in_features)

        Returns
        -------
        torch.Tensor of shape (n_tasks + 1, n_samples, out_features) or (n_tasks, n_samples, out_features)
            The shared mixture is omitted on the last level.
        """
        if inputs.dim() == 3:
            inputs_per_expert = inputs.index_select(0, self.expert_group)  # (E, B, in)
            experts = self.experts(inputs_per_expert)
        else:
            experts = self.experts(inputs)  # (E, B, H)
        task_gates, shared_gate = self.gate_weights(inputs)
        # (E, B, H)[(T, S)] -> (T, S, B, H); mixed by (T, B, S) -> (T, B, H)
        task_out = torch.einsum("tbs,tsbh->tbh", task_gates, experts[self.selected])
        if shared_gate is None:
            return task_out
        shared_out = torch.einsum("be,ebh->bh", shared_gate, experts)
        return torch.cat([task_out, shared_out.unsqueeze(0)], dim=0)


class PLE(MultiTaskNetwork):
    """Progressive Layered Extraction; ``n_levels=1`` gives CGC.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        Outputs of each task.
    n_levels : int, default=2
        Number of extraction networks.
    n_shared_experts : int, default=2
        Shared experts per level.
    n_task_experts : int, default=2
        Experts owned by each task, per level.
    expert_hidden_sizes : sequence of int, default=(64,)
        Hidden layers of each expert.
    **common
        Parameters of :class:`MultiTaskNetwork`: ``embedding_dim``,
        ``tower_hidden_sizes``, ``dropout``, ``bag_cardinalities``, ``bag_mode``,
        ``device``, ``dtype``.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import PLE, FeatureBatch
    >>> net = PLE([5, 3], n_numeric=2, output_sizes=[1, 3], n_levels=2)
    >>> codes = torch.zeros(10, 2, dtype=torch.long)
    >>> x = FeatureBatch.from_arrays(codes, torch.zeros(10, 2))
    >>> net(x).shape
    torch.Size([10, 4])
    """

    def __init__(
        self,
        cardinalities,
        n_numeric,
        output_sizes,
        *,
        n_levels=2,
        n_shared_experts=2,
        n_task_experts=2,
        expert_hidden_sizes=(64,),
        **common,
    ):
        super().__init__(cardinalities, n_numeric, output_sizes, **common)
        if n_task_experts + n_shared_experts < 1:
            raise ValueError("PLE needs at least one expert per task gate.")
        levels = []
        width = self.input.out_features
        for level in range(int(n_levels)):
            levels.append(
                ExtractionLevel(
                    self.n_tasks,
                    width,
                    int(n_shared_experts),
                    int(n_task_experts),
                    expert_hidden_sizes,
                    last=level == n_levels - 1,
                    dropout=self.dropout,
                    **self._factory,
                )
            )
            width = levels[-1].out_features
        self.levels = nn.ModuleList(levels)
        self._build_towers(width)

    def represent(self, x):
        """Run the extraction levels.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)

        Returns
        -------
        torch.Tensor of shape (n_tasks, n_samples, expert_width)
        """
        for level in self.levels:
            x = level(x)
        return x

    def gate_distributions(self, x):
        """Return every level's task gates (and shared gate) for inspection.

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        list of tuple
            Per level, ``(task_gates, shared_gate)`` as returned by
            :meth:`ExtractionLevel.gate_weights`.
        """
        x = self.input(x)
        gates = []
        for level in self.levels:
            gates.append(level.gate_weights(x))
            x = level(x)
        return gates
