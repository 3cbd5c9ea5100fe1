"""Callbacks around the training loop: validation, history, progress, schedules.

Each is a small collaborator of :class:`skmtl._training.Trainer` (as skorch's
callbacks are): the estimator builds the list for a fit, the loop calls them,
and nothing is set on the estimator for the duration of training.
"""

import copy
import sys

import numpy as np
import torch

from skmtl._losses import weighted_task_means
from skmtl._training import Callback, predict_logits

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


def _average_over_processes(comm, losses, scores):
    """Average each process's validation values, so that all decide alike.

    Every process evaluates the same rows with the same weights; averaging
    removes any difference of floating-point rounding between devices, so
    early stopping stops every process at the same epoch.
    """
    if comm.world_size == 1:
        return losses, scores
    values = torch.tensor(losses + scores, dtype=torch.float64, device=comm.device)
    values = (comm.sum(values) / comm.world_size).tolist()
    return values[: len(losses)], values[len(losses) :]


class ValidationMonitor(Callback):
    """Evaluate after each epoch; stop when the metric stops improving.

    Adds ``valid_loss_per_task`` and ``valid_score_per_task`` to each epoch's
    record. With a patience, keeps the best epoch's weights and restores them
    when training ends.

    Parameters
    ----------
    data : iterable of skmtl._training.Batch
        Validation rows, iterated once per evaluation (in memory: one batch;
        streamed: one per partition).
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

    def _evaluate(self, module, comm):
        parts, sums, counts = [], 0.0, 0.0
        for batch in self.data:
            logits = predict_logits(module, batch.features, _VALIDATION_BATCH_SIZE)
            with torch.no_grad():
                part_sums, part_counts = self.loss(
                    logits.to(batch.targets.device), batch.targets, batch.weights
                )
            parts.append(logits)
            sums, counts = sums + part_sums, counts + part_counts
        losses = weighted_task_means(sums, counts).tolist()
        scores = self.score_logits(torch.cat(parts).double().numpy())
        losses, scores = _average_over_processes(comm, losses, list(scores.values()))
        return dict(zip(self.task_names, losses)), dict(zip(self.task_names, scores))

    def _monitored(self, losses, scores):
        """The monitored value, signed so that lower is better."""
        values = losses if self.kind == "loss" else scores
        value = values[self.task] if self.task else float(np.nanmean(list(values.values())))
        return value if self.kind == "loss" else -value

    def on_epoch_end(self, trainer, epoch, record):
        losses, scores = self._evaluate(trainer.network, trainer.comm)
        value = self._monitored(losses, scores)
        if self.best_value is None or value < self.best_value - self.tol:
            self.best_value, self.best_epoch, self._stale = value, epoch, 0
            if self.patience is not None:
                self.best_state = copy.deepcopy(trainer.network.state_dict())
        else:
            self._stale += 1
        record.update(valid_loss_per_task=losses, valid_score_per_task=scores)
        return self.patience is not None and self._stale >= self.patience

    def on_train_end(self, trainer):
        if self.best_state is not None:
            trainer.network.load_state_dict(self.best_state)


class History(Callback):
    """Name each epoch's losses, record the task weights, append to a history.

    Parameters
    ----------
    history : list
        Receives one dict per epoch (the estimator's ``history_``).
    task_names : list of str
    weighting : skmtl.weighting.TaskWeighting
        Its current weights are recorded and its ``end_epoch`` called.
    scheduler : object with ``step()`` or None
        Learning-rate schedule, stepped after each epoch.
    """

    def __init__(self, history, task_names, weighting, scheduler=None):
        self.history, self.task_names = history, task_names
        self.weighting, self.scheduler = weighting, scheduler

    def on_epoch_end(self, trainer, epoch, record):
        losses = record["train_loss_per_task"]
        weights = self.weighting.weights()
        record["train_loss"] = float(np.dot(weights, losses))
        record["train_loss_per_task"] = dict(zip(self.task_names, losses))
        record["task_weights"] = dict(zip(self.task_names, weights))
        # Keys in the documented order, validation last.
        ordered = {k: record[k] for k in ("epoch", "train_loss", "train_loss_per_task")}
        ordered["task_weights"] = record["task_weights"]
        ordered["duration"] = record["duration"]
        ordered.update((k, v) for k, v in record.items() if k.startswith("valid_"))
        self.history.append(ordered)
        self.weighting.end_epoch(epoch)
        if self.scheduler is not None:
            self.scheduler.step()
        return False


class ProgressLog(Callback):
    """``verbose=1``: a tqdm bar per epoch ending with the per-task losses.

    Falls back to one printed line per epoch when tqdm is not installed.

    Parameters
    ----------
    last_epoch : int
        Number of the fit's last epoch, shown as ``epoch i/last``.
    """

    def __init__(self, last_epoch):
        self.last_epoch = last_epoch
        self._bar = None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional: verbose falls back to a line per epoch
            tqdm = None
        self._tqdm = tqdm

    def on_epoch_begin(self, trainer, epoch, n_batches):
        if self._tqdm is not None:
            desc = f"epoch {epoch}/{self.last_epoch}"
            self._bar = self._tqdm(total=n_batches, desc=desc, unit="batch")

    def on_batch_end(self, trainer, epoch, batch_index, loss_sums, weight_sums):
        if self._bar is not None:
            self._bar.update()

    def on_epoch_end(self, trainer, epoch, record):
        losses = dict(record["train_loss_per_task"])
        losses.update(
            (f"val_{k}", v) for k, v in record.get("valid_loss_per_task", {}).items()
        )
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
            self._bar.close()
            self._bar = None
        else:
            per_task = ", ".join(f"{k}={v:.4f}" for k, v in losses.items())
            print(f"epoch {epoch}/{self.last_epoch}: {per_task}", file=sys.stdout)
        return False

    def on_train_end(self, trainer):
        if self._bar is not None:  # interrupted mid-epoch
            self._bar.close()
            self._bar = None
