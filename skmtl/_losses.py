"""Masked per-task losses on logits.

Each task's loss is the weighted mean over its labelled rows of the batch; the
per-row loss is the task type's own (:meth:`skmtl.tasks.Task.loss`). Rows
outside a task's sample space have weight 0, set once in ``_targets.py``.
"""

import torch
from torch import nn


def _output_starts(tasks):
    """Column of each task's first output in the concatenated logits."""
    starts, start = [], 0
    for task in tasks:
        starts.append(start)
        start += task.n_outputs
    return starts


class MultiTaskLoss(nn.Module):
    """Per-task weighted loss sums, one vectorised call per kind of task.

    Tasks of the same type and output count are gathered into one
    ``(n_samples, n_tasks_of_kind, n_outputs)`` block and their type's loss
    runs once on it, rather than once per task.

    Parameters
    ----------
    tasks : sequence of skmtl.tasks.Task
        The fitted tasks, in output order.
    """

    def __init__(self, tasks):
        super().__init__()
        groups = {}
        for k, (task, start) in enumerate(zip(tasks, _output_starts(tasks))):
            key = (type(task), task.n_outputs)
            columns = range(start, start + task.n_outputs)
            entry = groups.setdefault(key, ([], []))
            entry[0].append(k)
            entry[1].extend(columns)
        self.n_tasks = len(tasks)
        self._groups = []
        for i, ((cls, n_outputs), (task_index, columns)) in enumerate(groups.items()):
            self.register_buffer(f"_tasks{i}", torch.tensor(task_index), persistent=False)
            self.register_buffer(f"_columns{i}", torch.tensor(columns), persistent=False)
            self._groups.append((cls.loss, n_outputs, i))
        # One group covering every task in order needs no scatter back.
        self._in_order = len(groups) == 1

    def forward(self, logits, targets, weights):
        """Return each task's weighted loss sum and weight sum over the batch.

        Parameters
        ----------
        logits : torch.Tensor of shape (n_samples, sum of n_outputs)
        targets : torch.Tensor of shape (n_samples, n_tasks)
        weights : torch.Tensor of shape (n_samples, n_tasks)
            Sample weight times the label mask.

        Returns
        -------
        loss_sums : torch.Tensor of shape (n_tasks,)
        weight_sums : torch.Tensor of shape (n_tasks,)
        """
        n_samples = logits.shape[0]
        losses = None if self._in_order else targets.new_zeros(targets.shape)
        for loss, n_outputs, i in self._groups:
            tasks = getattr(self, f"_tasks{i}")
            columns = getattr(self, f"_columns{i}")
            # (B, G * n_outputs) -> (B, G, n_outputs)
            block = logits.index_select(1, columns).view(n_samples, -1, n_outputs)
            if losses is None:
                losses = loss(block, targets)
            else:
                losses[:, tasks] = loss(block, targets.index_select(1, tasks))
        return (losses * weights).sum(0), weights.sum(0)


def weighted_task_means(loss_sums, weight_sums):
    """Return per-task means, 0 for a task with no labelled row in the batch."""
    return loss_sums / weight_sums.clamp_min(torch.finfo(loss_sums.dtype).tiny)
