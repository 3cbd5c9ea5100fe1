"""Masked per-task losses on logits.

Each task's loss is the weighted mean over its labelled rows of the batch:
binary cross-entropy with logits, softmax cross-entropy, or squared error on
standardised targets. Rows outside a task's sample space have weight 0, set
once in ``_targets.py``.
"""

import torch
from torch import nn
from torch.nn import functional as F


class MultiTaskLoss(nn.Module):
    """Per-task weighted loss sums, computed per task type in one op.

    Parameters
    ----------
    task_types : sequence of {"binary", "multiclass", "regression"}
        Type of each task.
    output_sizes : sequence of int
        Network outputs of each task.
    """

    def __init__(self, task_types, output_sizes):
        super().__init__()
        starts = torch.tensor([0, *output_sizes[:-1]]).cumsum(0).tolist()
        self.n_tasks = len(task_types)
        pick = {}
        for kind in ("binary", "regression"):
            tasks = [k for k, t in enumerate(task_types) if t == kind]
            pick[kind] = (tasks, [starts[k] for k in tasks])
        self.binary = pick["binary"]
        self.regression = pick["regression"]
        self.multiclass = [
            (k, starts[k], size)
            for k, (t, size) in enumerate(zip(task_types, output_sizes))
            if t == "multiclass"
        ]

    def forward(self, logits, targets, weights):
        """Return each task's weighted loss sum and weight sum over the batch.

        Parameters
        ----------
        logits : torch.Tensor of shape (n_samples, sum(output_sizes))
        targets : torch.Tensor of shape (n_samples, n_tasks)
        weights : torch.Tensor of shape (n_samples, n_tasks)
            Sample weight times the label mask.

        Returns
        -------
        loss_sums : torch.Tensor of shape (n_tasks,)
        weight_sums : torch.Tensor of shape (n_tasks,)
        """
        losses = torch.zeros_like(targets)
        tasks, columns = self.binary
        if tasks:
            losses[:, tasks] = F.binary_cross_entropy_with_logits(
                logits[:, columns], targets[:, tasks], reduction="none"
            )
        tasks, columns = self.regression
        if tasks:
            losses[:, tasks] = (logits[:, columns] - targets[:, tasks]).square()
        for k, start, size in self.multiclass:
            losses[:, k] = F.cross_entropy(
                logits[:, start : start + size], targets[:, k].long(), reduction="none"
            )
        return (losses * weights).sum(0), weights.sum(0)


def weighted_task_means(loss_sums, weight_sums):
    """Return per-task means, 0 for a task with no labelled row in the batch."""
    return loss_sums / weight_sums.clamp_min(torch.finfo(loss_sums.dtype).tiny)
