"""Validation during training: per-task losses and scores, early stopping.

The estimator hands over validation tensors and a function that scores logits;
this module decides when training stops and keeps the best weights.
"""

import copy

import numpy as np
import torch

from skmtl._losses import weighted_task_means
from skmtl._training import predict_logits

_VALIDATION_BATCH_SIZE = 16384


def parse_metric(metric, task_names):
    """Split ``"loss"``, ``"score"``, ``"loss:<task>"`` or ``"score:<task>"``.

    Returns
    -------
    kind : {"loss", "score"}
    task : str or None
        None means the mean over tasks.
    """
    kind, _, task = metric.partition(":")
    if kind not in ("loss", "score") or (task and task not in task_names):
        raise ValueError(
            f"validation_metric must be 'loss', 'score', 'loss:<task>' or "
            f"'score:<task>' with a task in {task_names}, got {metric!r}."
        )
    return kind, task or None


class ValidationMonitor:
    """Evaluate after each epoch; stop when the metric stops improving.

    Parameters
    ----------
    data : tuple of torch.Tensor
        Validation ``(categorical, numeric, targets, weights)``.
    loss : callable
        Per-task loss sums, as for training.
    score_logits : callable
        ``score_logits(logits) -> dict`` of per-task scores (NaN if undefined).
    task_names : list of str
    metric : str
        See :func:`parse_metric`.
    tol : float
        Minimum improvement that resets the patience.
    patience : int or None
        Epochs without improvement before stopping; None never stops.
    """

    def __init__(self, data, loss, score_logits, task_names, metric, tol, patience):
        self.data, self.loss, self.score_logits = data, loss, score_logits
        self.task_names = task_names
        self.kind, self.task = parse_metric(metric, task_names)
        self.tol, self.patience = tol, patience
        self.best_value, self.best_epoch, self.best_state = None, None, None
        self._stale = 0

    def _evaluate(self, module):
        categorical, numeric, targets, weights = self.data
        logits = predict_logits(module, categorical, numeric, _VALIDATION_BATCH_SIZE)
        with torch.no_grad():
            sums, counts = self.loss(logits.to(targets.device), targets, weights)
            losses = weighted_task_means(sums, counts).tolist()
        scores = self.score_logits(logits.double().numpy())
        return dict(zip(self.task_names, losses)), scores

    def _monitored(self, losses, scores):
        """The monitored value, signed so that lower is better."""
        values = losses if self.kind == "loss" else scores
        value = values[self.task] if self.task else float(np.nanmean(list(values.values())))
        return value if self.kind == "loss" else -value

    def step(self, module, epoch):
        """Evaluate ``module`` after ``epoch``; return the record and whether to stop.

        Returns
        -------
        record : dict
            ``valid_loss_per_task`` and ``valid_score_per_task``.
        stop : bool
        """
        losses, scores = self._evaluate(module)
        value = self._monitored(losses, scores)
        if self.best_value is None or value < self.best_value - self.tol:
            self.best_value, self.best_epoch, self._stale = value, epoch, 0
            self.best_state = copy.deepcopy(module.state_dict())
        else:
            self._stale += 1
        record = {"valid_loss_per_task": losses, "valid_score_per_task": scores}
        return record, self.patience is not None and self._stale >= self.patience

    def restore_best(self, module):
        """Load the best epoch's weights into ``module``."""
        if self.best_state is not None:
            module.load_state_dict(self.best_state)
