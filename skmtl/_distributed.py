"""What the training loop asks of the processes it runs in.

The loop never knows whether it runs alone or as one rank of several: it asks
a communicator to sum tensors over processes, to wrap the network for
gradient synchronisation and to agree on decisions. :class:`SingleProcess`
answers for one process; :class:`TorchDistributed` answers the same questions
over ``torch.distributed`` for a fit launched by ``torchrun``, and
:func:`connect` picks one from the estimator's ``distributed`` parameter and
the environment.
"""

import os

import torch

from skmtl._device import resolve_device


class SingleProcess:
    """The communicator of a fit in one process: every operation is local.

    Attributes
    ----------
    rank : int
        0.
    world_size : int
        1.
    """

    rank = 0
    world_size = 1

    def sum(self, tensor):
        """Return the sum of ``tensor`` over processes (here, itself).

        Parameters
        ----------
        tensor : torch.Tensor

        Returns
        -------
        torch.Tensor
        """
        return tensor

    def wrap(self, module):
        """Return the module that synchronises gradients (here, itself).

        Parameters
        ----------
        module : torch.nn.Module

        Returns
        -------
        torch.nn.Module
        """
        return module

    def reduce_gradients(self, parameters):
        """Average the gradients of parameters outside the wrapped module.

        Parameters
        ----------
        parameters : list of torch.Tensor
            E.g. a loss-weighting strategy's learnt weights.
        """

    def average_buffers(self, module):
        """Average ``module``'s floating-point buffers over processes.

        Running statistics (STAR's per-domain moments, BatchNorm's) are
        updated by each process from its own rows; averaging them at the end
        of every epoch leaves every process with the same model, estimated
        from all the rows.

        Parameters
        ----------
        module : torch.nn.Module
        """

    def any(self, flag):
        """Return True if ``flag`` is True on any process.

        Parameters
        ----------
        flag : bool

        Returns
        -------
        bool
        """
        return bool(flag)

    def broadcast(self, value):
        """Return rank 0's ``value`` on every process (here, ``value``).

        Parameters
        ----------
        value : object
            Picklable.

        Returns
        -------
        object
        """
        return value

    def on_root(self, function):
        """Run ``function()`` on rank 0 and return its result on every process.

        An exception raised on rank 0 is raised on every process, so no
        process waits for a result that never comes.

        Parameters
        ----------
        function : callable
            Takes no argument; its result must be picklable.

        Returns
        -------
        object
        """
        return function()


class TorchDistributed(SingleProcess):
    """The communicator of one rank of a ``torch.distributed`` fit.

    Uses the default process group, which must be initialised.

    Parameters
    ----------
    device : torch.device
        This rank's training device; collective operations run on it (NCCL
        needs CUDA tensors, gloo takes either).

    Attributes
    ----------
    rank : int
        This process's rank in the default group.
    world_size : int
        Number of processes in the default group.
    """

    def __init__(self, device):
        import torch.distributed as dist

        self._dist = dist
        self.device = device
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    def sum(self, tensor):
        # all_reduce works in place: reduce a copy, never the caller's tensor.
        total = tensor.detach().clone()
        self._dist.all_reduce(total)
        return total

    def wrap(self, module):
        from torch.nn.parallel import DistributedDataParallel

        # Every parameter reaches the loss at every step (masked tasks weigh 0
        # but stay in the graph), so DDP's slower unused-parameter search is
        # left off; a network that breaks this fails loudly at its second step.
        device_ids = [self.device] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def reduce_gradients(self, parameters):
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        # One collective for all of them: flatten, average, copy back.
        flat = torch.cat([g.reshape(-1) for g in grads])
        flat = self.sum(flat) / self.world_size
        for grad, part in zip(grads, flat.split([g.numel() for g in grads])):
            grad.copy_(part.view_as(grad))

    @torch.no_grad()
    def average_buffers(self, module):
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        if not buffers:
            return
        flat = torch.cat([b.reshape(-1) for b in buffers])
        flat = self.sum(flat) / self.world_size
        for buffer, part in zip(buffers, flat.split([b.numel() for b in buffers])):
            buffer.copy_(part.view_as(buffer))

    def any(self, flag):
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        return bool(self.sum(value).item() > 0)

    def broadcast(self, value):
        box = [value]
        device = self.device if self.device.type == "cuda" else None
        self._dist.broadcast_object_list(box, src=0, device=device)
        return box[0]

    def on_root(self, function):
        result = error = None
        if self.rank == 0:
            try:
                result = function()
            except Exception as exc:  # noqa: BLE001  (re-raised on every rank)
                error = exc
        result, error = self.broadcast((result, error))
        if error is not None:
            raise error
        return result


def _launched():
    """Whether the environment says this process is one of several ranks."""
    import torch.distributed as dist

    if dist.is_torchelastic_launched():
        return True
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def _rank_device(device):
    """The device of this rank: ``"auto"`` and a bare ``"cuda"`` take LOCAL_RANK."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if isinstance(device, str) and device in ("auto", "cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if device == "auto":
            return torch.device("cpu")
    resolved = resolve_device(device)
    if resolved.type == "cuda" and resolved.index is None:
        return torch.device("cuda", local_rank)
    return resolved


def _check_group(device):
    """Raise a clear error for a process group this fit cannot use."""
    import torch.distributed as dist

    backend = str(dist.get_backend())
    if device.type != "cuda" and backend == "nccl":
        raise RuntimeError(
            f"The default process group uses the NCCL backend, which reduces only "
            f"CUDA tensors, but this fit trains on {device}; train on "
            "device='cuda' (or 'auto'), or initialise the group with the gloo "
            "backend."
        )
    expected = os.environ.get("WORLD_SIZE")
    if expected is not None and int(expected) != dist.get_world_size():
        raise RuntimeError(
            f"The default process group has {dist.get_world_size()} processes but "
            f"WORLD_SIZE is {expected}; initialise the group with every process of "
            "the launch, or pass distributed=False to train each process alone."
        )


def connect(distributed, device):
    """Return the communicator and the training device of this process.

    With ``distributed="auto"`` a process launched by ``torchrun`` (or with
    ``RANK`` and ``WORLD_SIZE`` > 1 in its environment), or one whose default
    process group is already initialised, trains as one rank of a
    DistributedDataParallel fit; any other trains alone. ``True`` requires a
    multi-process launch, ``False`` always trains alone. The default process
    group is initialised from the environment when it is not (gloo on the CPU,
    NCCL on CUDA) and left initialised for the rest of the script.

    Parameters
    ----------
    distributed : "auto" or bool
        The estimator's parameter.
    device : str or torch.device
        The ``device`` parameter (``"auto"`` is ``cuda:LOCAL_RANK`` in a
        multi-process fit when CUDA is available).

    Returns
    -------
    comm : SingleProcess or TorchDistributed
    device : torch.device
    """
    if distributed is False:
        return SingleProcess(), resolve_device(device)
    import torch.distributed as dist

    available = dist.is_available()
    initialised = available and dist.is_initialized()
    requested = available and (initialised or _launched())
    if not requested:
        if distributed is True:
            raise RuntimeError(
                "distributed=True but this process was not launched as one of "
                "several (no torchrun, no RANK/WORLD_SIZE > 1, no initialised "
                "process group"
                + ("" if available else ", and torch.distributed is unavailable")
                + "); launch the script with torchrun or pass distributed='auto'."
            )
        return SingleProcess(), resolve_device(device)
    device = _rank_device(device)
    if not initialised:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    _check_group(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if dist.get_world_size() == 1:
        return SingleProcess(), device
    return TorchDistributed(device), device
