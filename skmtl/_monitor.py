"""Callbacks around the training loop: validation, history, progress, schedules.

Each is a small collaborator of :class:`skmtl._training.Trainer` (as skorch's
callbacks are): the estimator builds the list for a fit, the loop calls them,
and nothing is set on the estimator for the duration of training.
"""

import copy
import sys
import warnings

import numpy as np
import torch

from skmtl._losses import weighted_task_means
from skmtl._training import PREDICT_BATCH_SIZE, Callback, predict_logits
from skmtl._validation import format_names
from skmtl.exceptions import ConvergenceWarning, TrainingDivergedError


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
            logits = predict_logits(module, batch.features, PREDICT_BATCH_SIZE)
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
        return self.should_stop()

    def should_stop(self):
        """Whether the epochs without improvement have used up the patience."""
        return self.patience is not None and self._stale >= self.patience

    def get_state(self):
        """Return what the monitor has learnt so far (for a checkpoint)."""
        return {
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "stale": self._stale,
            "best_state": self.best_state,
        }

    def set_state(self, state):
        """Continue from what :meth:`get_state` returned."""
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self._stale, self.best_state = state["stale"], state["best_state"]

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


class DivergenceGuard(Callback):
    """Stop on a non-finite loss; warn when a task's loss explodes.

    A NaN or infinite loss sum raises :class:`~skmtl.exceptions.TrainingDivergedError`
    at once, naming the tasks, the epoch and the batch (the trainer then
    restores the last completed epoch). An epoch whose mean loss for a task
    is more than ``factor`` times that task's first labelled batch loss (in
    absolute value) gives a :class:`~skmtl.exceptions.ConvergenceWarning`
    naming the task, once per task.

    Parameters
    ----------
    task_names : list of str
    factor : float, default=100.0
        How many times its first loss a task's epoch loss may reach.
    every : int, default=1
        Check for non-finite losses every ``every`` batches (and on an epoch's
        last); each check waits for the device, so accelerators check less
        often.
    """

    def __init__(self, task_names, factor=100.0, every=1):
        self.task_names, self.factor, self.every = task_names, factor, every
        self._first = np.full(len(task_names), np.nan)
        self._warned = set()
        self._n_batches = 0

    def on_epoch_begin(self, trainer, epoch, n_batches):
        self._n_batches = n_batches

    def get_state(self):
        """Return the first losses and the tasks already warned about."""
        return {"first": self._first.tolist(), "warned": sorted(self._warned)}

    def set_state(self, state):
        """Continue from what :meth:`get_state` returned."""
        self._first = np.asarray(state["first"], dtype=float)
        self._warned = set(state["warned"])

    def on_batch_end(self, trainer, epoch, batch_index, loss_sums, weight_sums):
        last = batch_index == self._n_batches - 1
        first = np.isnan(self._first).any()
        if not (first or last or batch_index % self.every == 0):
            return
        finite = torch.isfinite(loss_sums)
        if trainer.comm.world_size > 1:
            # Every process must stop at the same batch, or the others would
            # wait forever for its gradients.
            finite = trainer.comm.sum(finite.float()) == trainer.comm.world_size
        finite = finite.cpu().numpy()
        if not finite.all():
            raise TrainingDivergedError(
                self._message(trainer, epoch, batch_index, ~finite)
            )
        if first:
            means = weighted_task_means(loss_sums, weight_sums).cpu().numpy()
            labelled = weight_sums.cpu().numpy() > 0
            self._first = np.where(np.isnan(self._first) & labelled, means, self._first)

    def _message(self, trainer, epoch, batch_index, bad):
        tasks = format_names(np.asarray(self.task_names)[bad])
        rate = trainer.optimizer.param_groups[0]["lr"]
        return (
            f"Training diverged: the loss of task {tasks} became NaN or infinite at "
            f"epoch {epoch}, batch {batch_index + 1} of {self._n_batches}. Likely "
            f"causes: a learning rate too high (now {rate:g}; lower "
            "learning_rate_init or set max_grad_norm), a regression target on an "
            "extreme scale, or extreme input values. The model keeps the weights "
            "of its last completed epoch."
        )

    def on_epoch_end(self, trainer, epoch, record):
        losses = np.abs(np.asarray(record["train_loss_per_task"], dtype=float))
        limit = self.factor * np.maximum(np.abs(self._first), 1e-3)
        for k in np.flatnonzero(losses > limit):
            name = self.task_names[k]
            if name in self._warned:
                continue
            self._warned.add(name)
            warnings.warn(
                f"The training loss of task {name!r} exploded: {losses[k]:.3g} at "
                f"epoch {epoch}, over {self.factor:g} times its first loss "
                f"({self._first[k]:.3g}). Lower learning_rate_init or set "
                "max_grad_norm.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return False
