"""Progressive Layered Extraction (PLE) and its one-level form, CGC.

Tang, Liu, Zhao and Gong, "Progressive Layered Extraction (PLE): A Novel
Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020.
"""

import torch
from torch import nn

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._layers import StackedLinear, StackedMLP


def _gate_softmax(logits):
    """Softmax over the last (expert) axis, computed with that axis outermost.

    PyTorch's CPU softmax over a short innermost axis goes row by row; over an
    outer axis it vectorises along the rows: with 4 experts and 1024 rows, ten
    times faster forward and twice backward.
    """
    return torch.softmax(logits.transpose(-1, -2), dim=-2).transpose(-1, -2)


def _columns(weight, bias):
    """Return stacked (G, in, out) weights as one (in, G * out) matrix, and its bias."""
    return weight.permute(1, 0, 2).reshape(weight.shape[1], -1), bias.reshape(-1)


class ExtractionLevel(nn.Module):
    """One PLE extraction network: shared + task-specific experts and their gates.

    Experts are laid out as ``[task 0's, task 1's, ..., shared]``. Task ``k``'s
    experts and gate read group ``k`` of the input, the shared experts and the
    shared gate read the last group (on the first level every group is the
    same 2-D input). Task ``k``'s gate mixes its own and the shared experts;
    unless this is the last level, a shared gate mixes all experts to form the
    next level's shared input.

    The first expert layer and the gates that read the same group run as one
    matrix product: on a 2-D input one ``addmm`` for everything, otherwise one
    ``baddbmm`` over the tasks and one ``addmm`` for the shared group. Each gate
    is then spread over all experts (zero outside the ones it may use) and every
    mixture is one batched product with the experts' outputs. There is no
    gather, so no backward adds into repeated indices, whose order on CPU
    threads is not fixed.

    Parameters
    ----------
    n_tasks : int
        Number of tasks.
    in_features : int
        Width of each group's input.
    n_shared_experts, n_task_experts : int
        Experts shared by all tasks, and owned by each task.
    expert_hidden_sizes : sequence of int
        Hidden layers of each expert; at least one.
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
        if not tuple(expert_hidden_sizes):
            raise ValueError("expert_hidden_sizes must have at least one layer.")
        kw = {"device": device, "dtype": dtype}
        self.n_tasks = int(n_tasks)
        self.n_task_experts = int(n_task_experts)
        self.n_shared_experts = int(n_shared_experts)
        n_experts = self.n_tasks * self.n_task_experts + self.n_shared_experts
        self.n_experts = n_experts
        self.experts = StackedMLP(n_experts, in_features, expert_hidden_sizes, dropout, **kw)
        self.out_features = self.experts.out_features
        n_gated = self.n_task_experts + self.n_shared_experts
        self.task_gates = StackedLinear(n_tasks, in_features, n_gated, **kw)
        self.shared_gate = None if last else nn.Linear(in_features, n_experts, **kw)
        # placement[k, j, e] = 1 where column j of task k's gate weighs expert e:
        # its own experts, then the shared ones.
        placement = torch.zeros(n_tasks, n_gated, n_experts, **kw)
        for k in range(n_tasks):
            own = range(k * n_task_experts, (k + 1) * n_task_experts)
            shared = range(n_tasks * n_task_experts, n_experts)
            placement[k, range(n_gated), [*own, *shared]] = 1
        self.register_buffer("placement", placement, persistent=False)

    def _first_layer(self, inputs):
        """Return the first expert layer's pre-activations and the gate logits.

        Returns
        -------
        experts : torch.Tensor of shape (n_samples, n_experts, hidden)
        task_logits : torch.Tensor of shape (n_tasks, n_samples, n_gated)
        shared_logits : torch.Tensor of shape (n_samples, n_experts) or None
        """
        first, gate = self.experts.layers[0], self.shared_gate
        hidden = first.weight.shape[-1]
        n_own = self.n_tasks * self.n_task_experts
        one_input = inputs.dim() == 2
        # Column blocks of the product with the shared group's (or the only) input.
        if one_input:
            blocks = [_columns(first.weight, first.bias)]
            blocks.append(_columns(self.task_gates.weight, self.task_gates.bias))
        else:
            blocks = [_columns(first.weight[n_own:], first.bias[n_own:])]
        if gate is not None:
            blocks.append((gate.weight.T, gate.bias))
        weight, bias = (torch.cat(block, dim=-1) for block in zip(*blocks))
        out = torch.addmm(bias, inputs if one_input else inputs[-1], weight)
        widths = [weight.shape[1] for weight, _ in blocks]
        experts, *logits = out.split(widths, dim=1)  # (B, E * H) or (B, S * H), ...
        if one_input:
            # (B, T * G) -> (B, T, G) -> (T, B, G)
            task_logits = logits.pop(0).unflatten(1, (self.n_tasks, -1)).transpose(0, 1)
        else:
            own, task_logits = self._task_products(inputs[:-1], n_own)
            # T x (B, n_task * H), then the shared (B, S * H) -> (B, E * H)
            experts = torch.cat([*own.unbind(0), experts], dim=1)
        experts = experts.unflatten(1, (self.n_experts, hidden))  # (B, E, H)
        return experts, task_logits, (logits[0] if logits else None)

    def _task_products(self, task_inputs, n_own):
        """Run each task's own experts and gate on its input, in one ``baddbmm``.

        Returns
        -------
        own : torch.Tensor of shape (n_tasks, n_samples, n_task_experts * hidden)
        task_logits : torch.Tensor of shape (n_tasks, n_samples, n_gated)
        """
        first, gates = self.experts.layers[0], self.task_gates
        # (T * n_task, in, H) -> (T, in, n_task * H), beside the task's gate
        weight = first.weight[:n_own].unflatten(0, (self.n_tasks, -1))
        weight = torch.cat([weight.permute(0, 2, 1, 3).flatten(2), gates.weight], dim=2)
        bias = first.bias[:n_own].reshape(self.n_tasks, 1, -1)
        bias = torch.cat([bias, gates.bias], dim=2)
        out = torch.baddbmm(bias, task_inputs, weight)  # (T, B, n_task * H + G)
        n_gated = gates.weight.shape[-1]
        return out.split([out.shape[-1] - n_gated, n_gated], dim=2)

    def gate_weights(self, inputs):
        """Return the softmax gates of this level.

        Parameters
        ----------
        inputs : torch.Tensor of shape (n_tasks + 1, n_samples, in_features) or (n_samples, in_features)
            Per-group inputs (tasks, then shared), or one input for all.

        Returns
        -------
        task_gates : torch.Tensor of shape (n_tasks, n_samples, n_task_experts + n_shared_experts)
            Each task's weights over its own experts, then the shared ones.
        shared_gate : torch.Tensor of shape (n_samples, n_experts) or None
        """
        _, task_logits, shared_logits = self._first_layer(inputs)
        task_gates = _gate_softmax(task_logits)
        if shared_logits is None:
            return task_gates, None
        return task_gates, _gate_softmax(shared_logits)

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
        experts, task_logits, shared_logits = self._first_layer(inputs)
        experts = self.experts.dropout(torch.relu(experts))
        for layer in self.experts.layers[1:]:
            # (B, E, H) -> (E, B, H) -> (E, B, H') -> (B, E, H')
            hidden = layer(experts.transpose(0, 1)).transpose(0, 1)
            experts = self.experts.dropout(torch.relu(hidden))
        # Each gate over all experts: (T, B, G) x (T, G, E) -> (T, B, E) -> (B, T, E)
        rows = [torch.bmm(_gate_softmax(task_logits), self.placement).transpose(0, 1)]
        if shared_logits is not None:
            rows.append(_gate_softmax(shared_logits).unsqueeze(1))  # (B, 1, E)
        # One contiguous (B, T [+ 1], E): bmm's backward is slow on the strided view.
        gates = torch.cat(rows, dim=1)
        # (B, T + 1, E) x (B, E, H) -> (B, T + 1, H) -> (T + 1, B, H), a view
        return torch.bmm(gates, experts).transpose(0, 1)


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
    n_task_experts : int, default=3
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
        n_task_experts=3,
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
