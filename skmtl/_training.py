"""The one training loop every skmtl estimator uses.

It knows tensors, a module, a loss and an optimizer; nothing about the model's
architecture. Mini-batches are index slices of tensors built once before the
first epoch, so an epoch does no pandas or numpy work.
"""

import torch

from skmtl._losses import weighted_task_means


def _batches(n_samples, batch_size, generator, device):
    """Yield shuffled index tensors of at most ``batch_size`` rows."""
    order = torch.randperm(n_samples, generator=generator).to(device)
    return order.split(batch_size)


def train_step(module, optimizer, loss, weighting, batch, max_grad_norm=None):
    """One optimisation step; return the detached per-task loss and weight sums.

    Parameters
    ----------
    module : torch.nn.Module
        Maps ``(categorical, numeric)`` to logits.
    optimizer : torch.optim.Optimizer
    loss : callable
        Returns per-task loss sums and weight sums, see ``MultiTaskLoss``.
    weighting : skmtl.weighting.TaskWeighting
        Combines the per-task mean losses into the loss to minimise.
    batch : tuple of torch.Tensor
        ``(categorical, numeric, targets, weights)`` rows of the batch.
    max_grad_norm : float or None, default=None
        Clip the gradients' global norm to this before the step.

    Returns
    -------
    tuple of torch.Tensor
    """
    categorical, numeric, targets, weights = batch
    loss_sums, weight_sums = loss(module(categorical, numeric), targets, weights)
    total = weighting.combine(weighted_task_means(loss_sums, weight_sums))
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(module.parameters(), max_grad_norm)
    optimizer.step()
    return loss_sums.detach(), weight_sums


def train_epoch(
    module,
    optimizer,
    loss,
    weighting,
    data,
    batch_size,
    generator,
    wrap=iter,
    max_grad_norm=None,
):
    """Run one epoch over shuffled mini-batches.

    Parameters
    ----------
    module, optimizer, loss, weighting
        As for :func:`train_step`.
    data : tuple of torch.Tensor
        Full ``(categorical, numeric, targets, weights)`` tensors, on the device.
    batch_size : int
        Rows per step.
    generator : torch.Generator
        Drives the shuffling.
    wrap : callable, default=iter
        Wraps the sequence of batches, e.g. in a progress bar.
    max_grad_norm : float or None, default=None
        As for :func:`train_step`.

    Returns
    -------
    torch.Tensor of shape (n_tasks,)
        Mean training loss of each task over its labelled rows in the epoch.
    """
    module.train()
    loss_total = weight_total = 0.0
    for index in wrap(_batches(len(data[0]), batch_size, generator, data[0].device)):
        loss_sums, weight_sums = train_step(
            module, optimizer, loss, weighting, [t[index] for t in data], max_grad_norm
        )
        # Summed on the device: no host synchronisation inside the epoch.
        loss_total = loss_total + loss_sums
        weight_total = weight_total + weight_sums
    return weighted_task_means(loss_total, weight_total)


def fit_module(module, optimizer, loss, weighting, data, *, max_iter, batch_size,
               generator, on_epoch_end, progress=None, max_grad_norm=None):
    """Train for ``max_iter`` epochs, reporting each epoch's per-task losses.

    Parameters
    ----------
    module, optimizer, loss, weighting, data, batch_size, generator
        As for :func:`train_epoch`.
    max_iter : int
        Number of epochs.
    on_epoch_end : callable
        Called as ``on_epoch_end(epoch, per_task_losses)`` with a list of
        floats; training stops early when it returns True.
    progress : callable or None
        ``progress(epoch)`` returns the ``wrap`` of that epoch's batches.
    max_grad_norm : float or None
        As for :func:`train_step`.

    Returns
    -------
    int
        Number of epochs run.
    """
    for epoch in range(1, max_iter + 1):
        wrap = progress(epoch) if progress is not None else iter
        losses = train_epoch(
            module,
            optimizer,
            loss,
            weighting,
            data,
            batch_size,
            generator,
            wrap,
            max_grad_norm,
        )
        if on_epoch_end(epoch, losses.tolist()):
            return epoch
    return max_iter


@torch.inference_mode()
def map_batches(function, module, categorical, numeric, batch_size):
    """Apply ``function(module, categorical, numeric)`` to row batches, in eval mode.

    Parameters
    ----------
    function : callable
        Called on each batch; returns a tensor or a nested list/tuple of them.
    module : torch.nn.Module
    categorical, numeric : torch.Tensor
        Encoded inputs on the module's device.
    batch_size : int
        Rows per call; bounds memory.

    Returns
    -------
    list
        One output per batch.
    """
    module.eval()
    return [
        function(module, c, n)
        for c, n in zip(categorical.split(batch_size), numeric.split(batch_size))
    ]


def predict_logits(module, categorical, numeric, batch_size):
    """Return the module's outputs for all rows, computed in batches.

    Parameters
    ----------
    module : torch.nn.Module
        Maps ``(categorical, numeric)`` to logits.
    categorical, numeric : torch.Tensor
        Encoded inputs on the module's device.
    batch_size : int
        Rows per forward pass; bounds memory.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_outputs) on the CPU
    """
    parts = map_batches(
        lambda m, c, n: m(c, n).cpu(), module, categorical, numeric, batch_size
    )
    return torch.cat(parts)
