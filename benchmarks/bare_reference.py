"""Hand-written PyTorch MMoE, PLE, DCN and Shared-Bottom: skmtl's lower bound.

No estimator, no DataLoader, no validation: pre-built tensors, index slicing of
a random permutation, Adam and a summed per-task BCE-with-logits. Experts,
gates and towers each run as one batched op, as skmtl's networks should. The
networks are skmtl's (same input with bin columns and LayerNorm, same layers,
same parameter count; ``run.py`` asserts the count), written out by hand.

References
----------
.. [1] Ma et al., "Modeling Task Relationships in Multi-task Learning with
   Multi-gate Mixture-of-Experts", KDD 2018.
.. [2] Tang et al., "Progressive Layered Extraction (PLE)", RecSys 2020.
.. [3] Wang et al., "DCN V2: Improved Deep & Cross Network", WWW 2021.
.. [4] Caruana, "Multitask Learning", Machine Learning 28, 1997.
"""

import time
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Inputs(nn.Module):
    """Embed every code column, concatenate dense, layer-normalise the whole.

    The tables live in one ``nn.Embedding`` with per-column offsets, so the
    lookup is a single op; this is equivalent to separate tables. The code
    columns include one quantile-bin column per dense column, as in skmtl's
    ``FeatureInput``.

    Parameters
    ----------
    cardinalities : list of int
        Table size per code column.
    n_dense : int
        Number of dense columns.
    embedding_dim : int, default=8
        Width of every embedding.
    """

    def __init__(self, cardinalities, n_dense, embedding_dim=8):
        super().__init__()
        offsets = np.concatenate([[0], np.cumsum(cardinalities)[:-1]])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.int64))
        self.table = nn.Embedding(int(sum(cardinalities)), embedding_dim)
        nn.init.normal_(self.table.weight, std=0.05)
        self.n_out = len(cardinalities) * embedding_dim + n_dense
        self.norm = nn.LayerNorm(self.n_out)

    def forward(self, codes, dense):
        emb = self.table(codes + self.offsets)  # (B, n_codes, emb)
        return self.norm(torch.cat([emb.flatten(1), dense], dim=1))  # (B, n_out)


class GroupedLinear(nn.Module):
    """``n_groups`` independent linear layers run as one batched matmul.

    Parameters
    ----------
    n_groups : int
        Number of independent layers.
    n_in, n_out : int
        Input and output width of each layer.
    """

    def __init__(self, n_groups, n_in, n_out):
        super().__init__()
        bound = n_in**-0.5  # nn.Linear's default uniform range
        self.weight = nn.Parameter(
            torch.empty(n_groups, n_in, n_out).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(n_groups, n_out).uniform_(-bound, bound))

    def forward(self, x):
        # (B, G, in) x (G, in, out) -> (B, G, out)
        return torch.einsum("bgi,gio->bgo", x, self.weight) + self.bias


class Towers(nn.Module):
    """Per-task towers Linear(h, t) + ReLU + Linear(t, 1), batched over tasks."""

    def __init__(self, n_tasks, n_in, tower_size=32):
        super().__init__()
        self.hidden = GroupedLinear(n_tasks, n_in, tower_size)
        self.out = GroupedLinear(n_tasks, tower_size, 1)

    def forward(self, x):  # x: (B, T, h)
        return self.out(F.relu(self.hidden(x))).squeeze(-1)  # (B, T) logits


class BareMMoE(nn.Module):
    """MMoE [1]_ with experts as one Linear(d_in, E*H) and gates as one Linear.

    Parameters
    ----------
    cardinalities : list of int
        Table size per categorical column.
    n_dense : int
        Number of dense columns.
    n_tasks : int, default=2
    n_experts : int, default=8
    expert_size : int, default=64
    tower_size : int, default=32
    embedding_dim : int, default=8
    """

    def __init__(
        self,
        cardinalities,
        n_dense,
        n_tasks=2,
        n_experts=8,
        expert_size=64,
        tower_size=32,
        embedding_dim=8,
    ):
        super().__init__()
        self.inputs = Inputs(cardinalities, n_dense, embedding_dim)
        d_in = self.inputs.n_out
        self.shape = (n_tasks, n_experts, expert_size)
        self.experts = nn.Linear(d_in, n_experts * expert_size)
        self.gates = nn.Linear(d_in, n_tasks * n_experts)
        self.towers = Towers(n_tasks, expert_size, tower_size)

    def forward(self, codes, dense):
        t, e, h = self.shape
        x = self.inputs(codes, dense)  # (B, d_in)
        experts = F.relu(self.experts(x)).view(-1, e, h)  # (B, E, H)
        gates = self.gates(x).view(-1, t, e).softmax(dim=-1)  # (B, T, E)
        mixed = torch.bmm(gates, experts)  # (B, T, H)
        return self.towers(mixed)  # (B, T)


class CGCLevel(nn.Module):
    """One PLE extraction level over ``T + 1`` groups (tasks, then shared).

    Every group has ``n_per_group`` experts (task-specific ones for a task
    group, shared ones for the last group), run as one grouped matmul. Task
    gate ``t`` mixes its own and the shared experts; the shared gate, present
    below the last level, mixes all experts.
    """

    def __init__(self, n_tasks, n_in, n_per_group, expert_size, shared_gate):
        super().__init__()
        g, s = n_tasks + 1, n_per_group
        self.dims = (n_tasks, g, s, expert_size)
        self.experts = GroupedLinear(g, n_in, s * expert_size)
        self.task_gates = GroupedLinear(n_tasks, n_in, 2 * s)
        self.shared_gate = nn.Linear(n_in, g * s) if shared_gate else None

    def forward(self, h):  # h: (B, G, n_in); group G-1 feeds the shared experts
        t, g, s, size = self.dims
        experts = F.relu(self.experts(h)).reshape(-1, g, s, size)  # (B, G, S, H)
        gates = self.task_gates(h[:, :t]).softmax(dim=-1)  # (B, T, 2S)
        # Own experts, then the shared ones; slicing avoids a gathered copy.
        own = torch.einsum("bts,btsh->bth", gates[..., :s], experts[:, :t])
        out = own + torch.bmm(gates[..., s:], experts[:, -1])  # (B, T, H)
        if self.shared_gate is None:
            return out
        shared = self.shared_gate(h[:, -1]).softmax(dim=-1)  # (B, G*S)
        flat = experts.reshape(-1, g * s, size)  # (B, G*S, H)
        mixed = torch.bmm(shared.unsqueeze(1), flat)  # (B, 1, H)
        return torch.cat([out, mixed], dim=1)  # (B, G, H)


class BarePLE(nn.Module):
    """PLE [2]_: ``n_levels`` CGC levels, then per-task towers.

    Parameters
    ----------
    cardinalities : list of int
        Table size per categorical column.
    n_dense : int
        Number of dense columns.
    n_tasks : int, default=2
    n_levels : int, default=2
    n_experts_per_group : int, default=2
        Shared experts, and task-specific experts per task, at every level.
    expert_size : int, default=64
    tower_size : int, default=32
    embedding_dim : int, default=8
    """

    def __init__(
        self,
        cardinalities,
        n_dense,
        n_tasks=2,
        n_levels=2,
        n_experts_per_group=2,
        expert_size=64,
        tower_size=32,
        embedding_dim=8,
    ):
        super().__init__()
        self.inputs = Inputs(cardinalities, n_dense, embedding_dim)
        self.n_groups = n_tasks + 1
        self.levels = nn.ModuleList(
            CGCLevel(
                n_tasks,
                self.inputs.n_out if i == 0 else expert_size,
                n_experts_per_group,
                expert_size,
                shared_gate=i < n_levels - 1,
            )
            for i in range(n_levels)
        )
        self.towers = Towers(n_tasks, expert_size, tower_size)

    def forward(self, codes, dense):
        x = self.inputs(codes, dense)  # (B, d_in)
        h = x.unsqueeze(1).expand(-1, self.n_groups, -1)  # (B, G, d_in), a view
        for level in self.levels:
            h = level(h)
        return self.towers(h)  # (B, T)


class SharedTowers(nn.Module):
    """Per-task towers over one shared input: hidden layers as one Linear(h, T*t)."""

    def __init__(self, n_tasks, n_in, tower_size=32):
        super().__init__()
        self.shape = (n_tasks, tower_size)
        self.hidden = nn.Linear(n_in, n_tasks * tower_size)
        self.out = GroupedLinear(n_tasks, tower_size, 1)

    def forward(self, x):  # x: (B, h)
        hidden = F.relu(self.hidden(x)).view(-1, *self.shape)  # (B, T, t)
        return self.out(hidden).squeeze(-1)  # (B, T) logits


class BareDCN(nn.Module):
    """DCN-v2 [3]_: 3 matrix cross layers beside an MLP (128, 64), then towers.

    Parameters as :class:`BareMMoE`'s, with ``n_cross_layers`` (3) and
    ``deep_sizes`` ((128, 64)) for the experts.
    """

    def __init__(self, cardinalities, n_dense, n_tasks=2, n_cross_layers=3,
                 deep_sizes=(128, 64), tower_size=32, embedding_dim=8):  # fmt: skip
        super().__init__()
        self.inputs = Inputs(cardinalities, n_dense, embedding_dim)
        d_in = self.inputs.n_out
        self.cross = nn.ModuleList(nn.Linear(d_in, d_in) for _ in range(n_cross_layers))
        widths = (d_in, *deep_sizes)
        self.deep = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))
        self.towers = SharedTowers(n_tasks, d_in + widths[-1], tower_size)

    def forward(self, codes, dense):
        x0 = self.inputs(codes, dense)  # (B, d_in)
        x = x0
        for layer in self.cross:
            x = torch.addcmul(x, x0, layer(x))  # x0 * (W x + b) + x
        h = x0
        for layer in self.deep:
            h = F.relu(layer(h))
        return self.towers(torch.cat([x, h], dim=1))  # (B, T)


class BareSharedBottom(nn.Module):
    """Shared-Bottom [4]_: one Linear(d_in, 128) + ReLU for all tasks, then towers.

    Parameters as :class:`BareMMoE`'s, with ``bottom_size`` (128) for the experts.
    """

    def __init__(self, cardinalities, n_dense, n_tasks=2, bottom_size=128,
                 tower_size=32, embedding_dim=8):  # fmt: skip
        super().__init__()
        self.inputs = Inputs(cardinalities, n_dense, embedding_dim)
        self.bottom = nn.Linear(self.inputs.n_out, bottom_size)
        self.towers = SharedTowers(n_tasks, bottom_size, tower_size)

    def forward(self, codes, dense):
        x = self.inputs(codes, dense)  # (B, d_in)
        return self.towers(F.relu(self.bottom(x)))  # (B, T)


MODELS = {
    "mmoe": BareMMoE,
    "ple": BarePLE,
    "dcn": BareDCN,
    "shared_bottom": BareSharedBottom,
}


def build(name, encoded, seed=0, n_experts=8):
    """Build a bare model and its Adam optimiser for pre-encoded data.

    Parameters
    ----------
    name : {"mmoe", "ple", "dcn", "shared_bottom"}
        Architecture.
    encoded : benchmarks._data.Encoded
        Supplies the cardinalities, dense width and task count.
    seed : int, default=0
        Seed of the weight initialisation.
    n_experts : int, default=8
        MMoE's experts (ignored by PLE).

    Returns
    -------
    model : torch.nn.Module
    optimizer : torch.optim.Adam
        Learning rate 1e-3.
    """
    torch.manual_seed(seed)
    extra = {"n_experts": n_experts} if name == "mmoe" else {}
    model = MODELS[name](
        encoded.cardinalities,
        encoded.dense.shape[1],
        n_tasks=encoded.y.shape[1],
        **extra,
    )
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def train_epoch(model, optimizer, encoded, batch_size, generator=None):
    """Train one epoch over shuffled index slices and return its seconds.

    Parameters
    ----------
    model : torch.nn.Module
        A bare model, taking ``(codes, dense)`` and returning (B, T) logits.
    optimizer : torch.optim.Optimizer
    encoded : benchmarks._data.Encoded
        Training tensors.
    batch_size : int
    generator : torch.Generator, default=None
        Source of the permutation.

    Returns
    -------
    seconds : float
        Wall time of the epoch.
    """
    codes, dense, y = encoded.codes, encoded.dense, encoded.y
    model.train()
    start = time.perf_counter()
    perm = torch.randperm(len(y), generator=generator)
    for i in range(0, len(y), batch_size):
        idx = perm[i : i + batch_size]
        logits = model(codes[idx], dense[idx])
        # Mean over rows per task, summed over tasks.
        loss = F.binary_cross_entropy_with_logits(logits, y[idx], reduction="none")
        optimizer.zero_grad(set_to_none=True)
        loss.mean(dim=0).sum().backward()
        optimizer.step()
    return time.perf_counter() - start


def predict_proba(model, encoded, batch_size=4096):
    """Return sigmoid probabilities, computed in batches under inference mode.

    Parameters
    ----------
    model : torch.nn.Module
        A bare model.
    encoded : benchmarks._data.Encoded
        Input tensors (labels unused).
    batch_size : int, default=4096
        skmtl's prediction batch (``PREDICT_BATCH_SIZE``), so both run the same
        products.

    Returns
    -------
    proba : numpy.ndarray of shape (n_samples, n_tasks)
        Probability of class 1 per task.
    """
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(encoded.codes), batch_size):
            sl = slice(i, i + batch_size)
            out.append(torch.sigmoid(model(encoded.codes[sl], encoded.dense[sl])))
    return torch.cat(out).numpy()
