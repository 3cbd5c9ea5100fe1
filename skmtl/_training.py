"""The one training loop every skmtl estimator uses, and what feeds it.

The loop knows a network, a loss, a weighting strategy, an optimizer and a
*batch source*; nothing about the model's architecture or where rows come from.
A batch source yields :class:`Batch` es for an epoch: :class:`TensorSource`
slices tensors held in memory, a streaming source encodes partitions as they
arrive, and a rank of a multi-process fit reads its share; the loop cannot tell
them apart. What happens around the loop (history, validation, progress,
schedules) are callbacks.
"""

import copy
import time
import warnings
from typing import NamedTuple

import numpy as np
import torch

from skmtl._distributed import SingleProcess
from skmtl._losses import weighted_task_means
from skmtl.exceptions import TrainingInterruptedWarning
from skmtl.nn import FeatureBatch


class Batch(NamedTuple):
    """Rows of training data: features, targets and per-task loss weights.

    Attributes
    ----------
    features : FeatureBatch
        Encoded rows.
    targets : torch.Tensor of shape (n_samples, n_tasks)
        Encoded targets, 0 where missing.
    weights : torch.Tensor of shape (n_samples, n_tasks)
        Sample weight x class weight x label mask.
    """

    features: FeatureBatch
    targets: torch.Tensor
    weights: torch.Tensor

    @property
    def n_samples(self):
        """Number of rows."""
        return self.targets.shape[0]

    def rows(self, index):
        """Return the rows at ``index`` (positions tensor or slice)."""
        return Batch(self.features.rows(index), self.targets[index], self.weights[index])


def epoch_seed(seed, epoch):
    """Derive the shuffling seed of one epoch from the fit's seed.

    Each epoch's order depends only on (seed, epoch), so training can resume
    at any epoch and every process of a multi-process fit draws the same
    order.

    Parameters
    ----------
    seed : int
    epoch : int

    Returns
    -------
    int
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def global_batch_sizes(n_samples, batch_size, world_size):
    """Return the size of each global batch of an epoch of ``n_samples`` rows.

    Global batches hold ``batch_size * world_size`` rows, the last one the
    rest. A last batch with fewer rows than processes joins the one before,
    so that every process gets at least one row of every batch.

    Parameters
    ----------
    n_samples, batch_size, world_size : int

    Returns
    -------
    ndarray of shape (n_batches,), int64
    """
    if n_samples < world_size:
        raise ValueError(
            f"{n_samples} training rows cannot be shared by {world_size} processes; "
            "every process needs at least one row."
        )
    global_batch = batch_size * world_size
    n_full, rest = divmod(n_samples, global_batch)
    sizes = np.full(n_full, global_batch, dtype=np.int64)
    if rest >= world_size:
        return np.append(sizes, rest)
    if rest:
        sizes[-1] += rest
    return sizes


def rank_bounds(sizes, rank, world_size):
    """Return where this rank's share of each global batch starts and stops.

    Rank ``r`` takes rows ``[m * r // W, m * (r + 1) // W)`` of a global
    batch of ``m`` rows: ``batch_size`` rows of a full batch, a near-equal
    share of the last.

    Parameters
    ----------
    sizes : ndarray of shape (n_batches,)
        From :func:`global_batch_sizes`.
    rank, world_size : int

    Returns
    -------
    starts, stops : ndarray of shape (n_batches,)
        Positions in the epoch's order of rows.
    """
    offsets = np.cumsum(sizes) - sizes
    starts = offsets + sizes * rank // world_size
    return starts, offsets + sizes * (rank + 1) // world_size


class TensorSource:
    """Batches of rows held as tensors: a seeded shuffle of all rows per epoch.

    In a fit over several processes every rank draws the same permutation and
    takes its share of each global batch of ``batch_size * world_size`` rows
    (see :func:`rank_bounds`), so the ranks together take the steps of one
    process whose batch is the sum of theirs.

    Parameters
    ----------
    data : Batch
        Every row, on the training device.
    batch_size : int
        Rows per step of this process.
    seed : int
        Seeds each epoch's permutation with :func:`epoch_seed`.
    comm : communicator, default=SingleProcess()
        Gives ``rank`` and ``world_size``.
    """

    def __init__(self, data, batch_size, seed, comm=None):
        comm = comm or SingleProcess()
        self.data, self.batch_size, self.seed = data, int(batch_size), int(seed)
        sizes = global_batch_sizes(data.n_samples, self.batch_size, comm.world_size)
        starts, stops = rank_bounds(sizes, comm.rank, comm.world_size)
        self._bounds = list(zip(starts.tolist(), stops.tolist()))

    @property
    def n_samples(self):
        """Rows of all processes together."""
        return self.data.n_samples

    def __len__(self):
        return len(self._bounds)

    def batches(self, epoch):
        """Return this process's batches of ``epoch``, in order.

        Parameters
        ----------
        epoch : int
            Epoch number, counting from 1 over the estimator's whole life.

        Returns
        -------
        sized iterable of Batch
            Rows are gathered batch by batch as it is iterated, so an epoch
            holds one batch's copy at a time.
        """
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(self.n_samples, generator=generator)
        order = order.to(self.data.targets.device)
        return _LazyRows(self.data, [order[start:stop] for start, stop in self._bounds])


class _LazyRows:
    """The batches of one epoch: row indices, gathered when iterated."""

    def __init__(self, data, indices):
        self.data, self.indices = data, indices

    def __len__(self):
        return len(self.indices)

    def __iter__(self):
        return (self.data.rows(index) for index in self.indices)


class Callback:
    """Something that happens around the training loop; all methods optional.

    Callbacks are called in the order given to :class:`Trainer`; the record of
    an epoch is one dict passed along the chain, so a later callback sees what
    an earlier one added (the history callback sees the validation scores).
    """

    def on_train_begin(self, trainer):
        """Called once before the first epoch."""

    def on_epoch_begin(self, trainer, epoch, n_batches):
        """Called before each epoch with its number of batches."""

    def on_batch_end(self, trainer, epoch, batch_index, loss_sums, weight_sums):
        """Called after each optimisation step with its detached loss sums."""

    def on_epoch_end(self, trainer, epoch, record):
        """Called after each epoch; return True to stop training."""
        return False

    def on_train_end(self, trainer):
        """Called once after the last epoch (also when stopped early)."""


class TrainingSnapshot:
    """Everything training changes, copied at an epoch boundary, to go back to.

    Holds the values of every optimised tensor (the network's parameters and a
    loss weighting's learnt weights), the network's buffers, the optimizer's
    state and the weighting strategy's other state. Restoring writes them back
    in place, so the optimizer and the strategy keep referring to the same
    tensors.

    Parameters
    ----------
    trainer : Trainer
        Whose network, optimizer and weighting are captured.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        network, optimizer = trainer.network, trainer.optimizer
        self._params = _optimised_tensors(trainer)
        self._values = [p.detach().clone() for p in self._params]
        self._buffers = {k: b.clone() for k, b in network.named_buffers()}
        self._optimizer = copy.deepcopy(optimizer.state_dict())
        # Deep-copied except the optimised tensors, which a strategy may
        # reference (GradNorm holds the shared parameters): those stay shared.
        memo = {id(p): p for p in [*self._params, *network.parameters()]}
        # The communicator a strategy may hold for the fit is shared, not copied.
        memo[id(trainer.comm)] = trainer.comm
        self._weighting = copy.deepcopy(trainer.weighting.__dict__, memo)

    @torch.no_grad()
    def restore(self):
        """Write the captured state back into the trainer's objects."""
        trainer = self.trainer
        for param, value in zip(self._params, self._values):
            param.copy_(value)
        for name, buffer in trainer.network.named_buffers():
            buffer.copy_(self._buffers[name])
        trainer.optimizer.load_state_dict(self._optimizer)
        trainer.weighting.__dict__.update(self._weighting)


def _optimised_tensors(trainer):
    """The tensors the optimizer updates: the network's and the weighting's."""
    return [p for group in trainer.optimizer.param_groups for p in group["params"]]


class Trainer:
    """Optimise a network on batches, epoch after epoch.

    Each task's loss in a step is its weighted loss sum divided by its weight
    sum over the global batch (all processes), so a fit over several processes
    minimises what one process with the whole batch would.

    Parameters
    ----------
    network : torch.nn.Module
        Maps a :class:`~skmtl.nn.FeatureBatch` to logits; may define
        ``auxiliary_loss(outputs)``.
    optimizer : torch.optim.Optimizer
    loss : callable
        ``loss(outputs, targets, weights)`` -> per-task (loss sums, weight
        sums), see :class:`skmtl._losses.MultiTaskLoss`.
    weighting : skmtl.weighting.TaskWeighting
        Combines the per-task mean losses into the loss to minimise.
    comm : communicator, default=SingleProcess()
        Sums over processes and wraps the network (see ``_distributed.py``).
    max_grad_norm : float or None, default=None
        Clip the gradients' global norm to this before each step.
    callbacks : sequence of Callback, default=()
    autocast_dtype : torch.dtype or None, default=None
        Run the forward pass under :func:`torch.autocast` with this dtype
        (e.g. ``torch.bfloat16``); weights, gradients, optimizer state and
        losses stay float32.

    Attributes
    ----------
    epochs_completed : list of int
        Epochs of the last :meth:`fit` that ran to their end.
    """

    def __init__(
        self,
        network,
        optimizer,
        loss,
        weighting,
        *,
        comm=None,
        max_grad_norm=None,
        callbacks=(),
        autocast_dtype=None,
    ):
        self.network, self.optimizer, self.loss = network, optimizer, loss
        self.weighting = weighting
        self.comm = comm or SingleProcess()
        self.model = self.comm.wrap(network)
        self.max_grad_norm = max_grad_norm
        self.callbacks = list(callbacks)
        self.autocast_dtype = autocast_dtype
        self.epochs_completed = []

    def _forward(self, features):
        """The network's outputs, in float32 whatever the autocast dtype."""
        if self.autocast_dtype is None:
            return self.model(features)
        device = features.numeric.device.type
        with torch.autocast(device, dtype=self.autocast_dtype):
            outputs = self.model(features)
        return outputs.float()

    def _objective(self, outputs, batch):
        """The scalar to minimise and the batch's detached loss and weight sums."""
        loss_sums, weight_sums = self.loss(outputs, batch.targets, batch.weights)
        world = self.comm.world_size
        # Normalised by the global weight sums and scaled by the number of
        # processes, since gradient synchronisation averages over them.
        global_weights = self.comm.sum(weight_sums.detach())
        task_losses = weighted_task_means(loss_sums * world, global_weights)
        total = self.weighting.combine(task_losses)
        extra = self.network.auxiliary_loss(outputs)
        if extra is not None:
            rows = self.comm.sum(extra.new_tensor(float(batch.n_samples)))
            total = total + extra.sum() * world / rows.clamp_min(1.0)
        return total, loss_sums.detach(), weight_sums

    def train_step(self, batch):
        """One optimisation step on ``batch``.

        Parameters
        ----------
        batch : Batch

        Returns
        -------
        loss_sums, weight_sums : torch.Tensor of shape (n_tasks,)
            This process's detached per-task loss and weight sums.
        """
        total, loss_sums, weight_sums = self._objective(self._forward(batch.features), batch)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.comm.reduce_gradients(self.weighting.parameters())
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return loss_sums, weight_sums

    def train_epoch(self, source, epoch):
        """Run one epoch of ``source``'s batches.

        Parameters
        ----------
        source : batch source
            Has ``batches(epoch)`` and ``len()``.
        epoch : int

        Returns
        -------
        list of float
            Mean training loss of each task over its labelled rows (all
            processes).
        """
        self.network.train()
        batches = source.batches(epoch)
        for callback in self.callbacks:
            callback.on_epoch_begin(self, epoch, len(batches))
        loss_total = weight_total = 0.0
        for index, batch in enumerate(batches):
            loss_sums, weight_sums = self.train_step(batch)
            for callback in self.callbacks:
                callback.on_batch_end(self, epoch, index, loss_sums, weight_sums)
            # Summed on the device: no host synchronisation inside the epoch.
            loss_total = loss_total + loss_sums
            weight_total = weight_total + weight_sums
        totals = self.comm.sum(torch.stack([loss_total, weight_total]))
        return weighted_task_means(totals[0], totals[1]).tolist()

    def fit(self, source, epochs):
        """Train over ``epochs``; return the number of epochs completed.

        If training stops inside an epoch (Ctrl-C, or a callback raising, such
        as the divergence guard), the state of the last completed epoch is
        restored before the exception propagates; ``epochs_completed`` lists
        the epochs that count. A KeyboardInterrupt also warns with
        :class:`~skmtl.exceptions.TrainingInterruptedWarning`.

        Parameters
        ----------
        source : batch source
        epochs : range
            Epoch numbers to run (they seed each epoch's shuffle).

        Returns
        -------
        int
        """
        self.epochs_completed = []
        snapshot = TrainingSnapshot(self)
        for callback in self.callbacks:
            callback.on_train_begin(self)
        # A strategy whose statistics must agree over processes (GradNorm's
        # gradient norms) reduces them through the communicator of this fit.
        bind = getattr(self.weighting, "_bind_communicator", None)
        if bind is not None:
            bind(self.comm)
        try:
            for epoch in epochs:
                if self._run_epoch(source, epoch):
                    break
                snapshot = TrainingSnapshot(self)
        except KeyboardInterrupt:
            snapshot.restore()
            warnings.warn(
                "Training was interrupted; the model keeps the weights of its last "
                f"completed epoch ({len(self.epochs_completed)} completed in this "
                "fit).",
                TrainingInterruptedWarning,
                stacklevel=3,
            )
            raise
        except BaseException:
            snapshot.restore()
            raise
        finally:
            if bind is not None:
                bind(None)
            for callback in self.callbacks:
                callback.on_train_end(self)
        return len(self.epochs_completed)

    def _run_epoch(self, source, epoch):
        """Train one epoch and run the epoch-end callbacks; return whether to stop."""
        start = time.perf_counter()
        losses = self.train_epoch(source, epoch)
        self.comm.average_buffers(self.network)
        record = {
            "epoch": epoch,
            "train_loss_per_task": losses,
            "duration": time.perf_counter() - start,
        }
        stop = False
        for callback in self.callbacks:
            stop = bool(callback.on_epoch_end(self, epoch, record)) or stop
        self.epochs_completed.append(epoch)
        return self.comm.any(stop)


# Rows per forward pass outside training (prediction, validation); bounds
# memory for any number of rows. On the CPU, batches whose activations stay in
# cache are faster (measured by benchmarks/run.py's skmtl_predict against 1024
# and 16384 rows per pass).
PREDICT_BATCH_SIZE = 4096


@torch.inference_mode()
def map_batches(function, module, features, batch_size):
    """Apply ``function(module, batch)`` to row batches, in eval mode.

    Parameters
    ----------
    function : callable
        Called on each :class:`~skmtl.nn.FeatureBatch`; returns a tensor or a
        nested list/tuple of them.
    module : torch.nn.Module
    features : FeatureBatch
        Encoded inputs on the module's device.
    batch_size : int
        Rows per call; bounds memory.

    Returns
    -------
    list
        One output per batch.
    """
    if module.training:  # eval() walks every submodule: skip it when already set
        module.eval()
    return [function(module, batch) for batch in features.split(batch_size)]


def predict_logits(module, features, batch_size):
    """Return the module's outputs for all rows, computed in batches.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a :class:`~skmtl.nn.FeatureBatch` to logits.
    features : FeatureBatch
        Encoded inputs on the module's device.
    batch_size : int
        Rows per forward pass; bounds memory.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_outputs) on the CPU
    """
    parts = map_batches(lambda m, batch: m(batch).cpu(), module, features, batch_size)
    return parts[0] if len(parts) == 1 else torch.cat(parts)
