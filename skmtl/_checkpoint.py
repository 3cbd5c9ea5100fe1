"""Checkpoints of a fit: written every few epochs, resumed from the newest.

A checkpoint is a model file of :mod:`skmtl._persistence` (one safetensors
file whose metadata holds a JSON document and a SHA-256 of everything;
nothing is unpickled on reading), named ``checkpoint-<epoch>.safetensors``.
Its document has the model's sections (``encoder``, ``tasks``, ``module``,
``weighting``) and what training needs to continue: ``optimizer``,
``scheduler``, ``monitor`` (early stopping's best value, epoch, weights and
patience count), ``guard`` (the divergence guard's first losses), ``rng``
(torch's CPU and CUDA generator states), ``history``, the ``epoch`` it ends,
whether training ``stopped`` there, and the fit's identity: ``params`` (the
parameters that shape training) and ``data`` (a fingerprint of the rows).

Everything else a fit draws is recomputed identically on resuming: the seed
and validation split come from ``random_state`` before training, and each
epoch's shuffle is seeded by its number (:func:`skmtl._training.epoch_seed`),
so the epoch is the position of an in-memory or a streaming source.
"""

import hashlib
import inspect
import json
import re
from pathlib import Path

import torch

from skmtl._options import make_scheduler
from skmtl._persistence import (
    FORMAT_VERSION,
    _encoder_section,
    _task_section,
    _tensor_bytes,
    _versions,
    class_name,
    decode,
    encode,
    model_sections,
    optimizer_section,
    read_model_file,
    write_model_file,
)
from skmtl._training import Callback
from skmtl.exceptions import ModelFileError

# Parameters that do not change what training computes. max_iter may grow,
# except under a cosine schedule, whose length it is.
_UNCOMPARED = {
    "verbose",
    "checkpoint_dir",
    "checkpoint_every",
    "checkpoint_keep",
    "warm_start",
    "max_iter",
}
_NAME = re.compile(r"checkpoint-(\d+)\.safetensors")


def _describe(value, name):
    """A parameter as JSON: its value, or the name of what JSON cannot hold."""
    try:
        return encode(value, f"parameter {name!r}")
    except TypeError:
        named = value if inspect.isroutine(value) or isinstance(value, type) else None
        label = class_name(named) if named is not None else class_name(type(value))
        return {"__unsaved__": label}


def parameters_identity(est):
    """The parameters that shape training, as JSON (a function by its name).

    Parameters
    ----------
    est : MultiTaskEstimator

    Returns
    -------
    dict
    """
    skipped = set(_UNCOMPARED)
    if est.lr_scheduler == "cosine":
        skipped.discard("max_iter")
    params = est.get_params(deep=False)
    described = {k: _describe(v, k) for k, v in params.items() if k not in skipped}
    return json.loads(json.dumps(described))  # as read back from a file


def _hash_tensors(digest, value):
    """Feed every tensor of a nested tuple of tensors to ``digest``."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}{list(tensor.shape)}".encode())
        digest.update(_tensor_bytes(tensor))
    elif isinstance(value, tuple):
        for item in value:
            _hash_tensors(digest, item)


def data_identity(est, data, source, monitor):
    """A fingerprint of a fit's rows.

    The row count; the rows of each partition for streamed data; a SHA-256 of
    the fitted encoder's and tasks' state (vocabularies, statistics, bins,
    classes, target scaling); for data held in memory, a SHA-256 of the
    encoded training and validation rows (features, targets and weights); for
    Dask data, the SHA-256 of every partition's cells its scan computed.

    Parameters
    ----------
    est : MultiTaskEstimator
        With its encoder and tasks fitted.
    data : training data
        ``InMemoryData``, or Dask data with a ``content_sha256``.
    source : batch source
    monitor : ValidationMonitor or None

    Returns
    -------
    dict
    """
    model = [_encoder_section(est.encoder_), [_task_section(t) for t in est.tasks_]]
    lengths = getattr(source, "lengths", None)
    identity = {
        "rows": int(source.n_samples),
        "partition_rows": None if lengths is None else [int(n) for n in lengths],
        "encoder_and_tasks_sha256": hashlib.sha256(
            json.dumps(model, sort_keys=True).encode()
        ).hexdigest(),
        "encoded_rows_sha256": None,
        "cells_sha256": getattr(data, "content_sha256", None),
    }
    data = getattr(source, "data", None)
    if data is not None:
        digest = hashlib.sha256()
        _hash_tensors(digest, data)
        if monitor is not None and isinstance(monitor.data, tuple):
            _hash_tensors(digest, monitor.data)
        identity["encoded_rows_sha256"] = digest.hexdigest()
    return identity


def _shown(value):
    """A described parameter as the user wrote it (a function by its name)."""
    if isinstance(value, dict) and "__unsaved__" in value:
        return value["__unsaved__"]
    try:
        return repr(decode(value))
    except ModelFileError:  # a class not defined here
        return json.dumps(value)


def _differences(saved, current, what):
    """Describe each entry of two dicts that differs, sorted, at most 5."""
    names = sorted(set(saved) | set(current))
    lines = [
        f"{what} {name!r} is {_shown(current.get(name))} here but "
        f"{_shown(saved.get(name))} in the checkpoint"
        for name in names
        if saved.get(name) != current.get(name)
    ]
    more = f" and {len(lines) - 5} more" if len(lines) > 5 else ""
    return "; ".join(lines[:5]) + more


# What each entry of the data's identity says when it differs.
_DATA_ENTRIES = {
    "rows": "number of rows",
    "partition_rows": "rows per partition",
    "encoder_and_tasks_sha256": "fitted categories, statistics or target classes",
    "encoded_rows_sha256": "encoded rows (compared by SHA-256)",
    "cells_sha256": "cells (compared by SHA-256)",
}


def _data_differences(saved, current):
    """Say how the data of this fit differ from the checkpoint's, or ""."""
    lines = [
        label
        + (
            f" ({current[key]} here, {saved.get(key)} in the checkpoint)"
            if key == "rows"
            else ""
        )
        for key, label in _DATA_ENTRIES.items()
        if saved.get(key) != current.get(key)
    ]
    return f"the data differ in their {', '.join(lines)}" if lines else ""


def _rng_states(device, comm):
    """Every process's torch generator states (CPU, and CUDA on a GPU), by rank.

    Processes draw different amounts (dropout on their shares of a batch), so
    each keeps its own states; gathered with a sum of one row per process.
    """
    local = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        local["cuda"] = torch.cuda.get_rng_state(device)
    states = {}
    for name, state in local.items():
        rows = torch.zeros(comm.world_size, state.numel(), dtype=torch.int32)
        rows[comm.rank] = state.int()
        states[name] = comm.sum(rows.to(device)).cpu().to(torch.uint8)
    return states


def _set_rng_states(states, device, rank):
    # Cloned: set_rng_state reads a row from the start of its storage.
    torch.set_rng_state(states["torch"][rank].clone())
    if "cuda" in states and device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"][rank].clone(), device)


def _weighting_state(weighting):
    """The weighting's state without the fit's communicator or a user's function."""
    return {
        k: v
        for k, v in weighting._get_state().items()
        if k != "_comm" and not inspect.isroutine(v)
    }


def _restore(est, document, tensors):
    """Put the checkpoint's network, weighting, optimizer and history in ``est``."""
    est.module_.load_state_dict(decode(document["module"]["state"], tensors))
    est.weighting_._set_state(
        decode(document["weighting"]["state"], tensors), est.device_
    )
    # A fresh optimizer over the restored weighting's tensors.
    est._optimizer = est._make_optimizer()
    est._scheduler = make_scheduler(est.lr_scheduler, est._optimizer, est.max_iter)
    est._optimizer.load_state_dict(decode(document["optimizer"]["state"], tensors))
    if document["scheduler"] is not None:
        est._scheduler.load_state_dict(decode(document["scheduler"], tensors))
    est.history_ = decode(document["history"])
    est.n_iter_ = len(est.history_)
    est.loss_curve_ = [record["train_loss"] for record in est.history_]


class Checkpoints:
    """The checkpoints of one ``fit``: the newest to resume from, the next to write.

    Parameters
    ----------
    est : MultiTaskEstimator
        Whose ``checkpoint_dir``, ``checkpoint_every`` and ``checkpoint_keep``
        apply; its encoder and tasks fitted.
    data : training data
        The rows of ``fit`` (see :func:`data_identity`).
    source : batch source
        The fit's training rows.
    monitor : ValidationMonitor or None
        The fit's validation monitor.
    comm : communicator
        The processes of the fit; rank 0 writes, every rank resumes.
    """

    def __init__(self, est, data, source, monitor, comm):
        self.folder = Path(est.checkpoint_dir)
        self.every, self.keep = est.checkpoint_every, est.checkpoint_keep
        self.rank = comm.rank
        self.identity = {
            "estimator": class_name(type(est)),
            "processes": comm.world_size,
            "params": parameters_identity(est),
            "data": data_identity(est, data, source, monitor),
        }
        self.saved = None  # the (document, tensors) resumed from

    def _files(self):
        """(epoch, path) of each checkpoint in the folder, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(_NAME.fullmatch(p.name), p) for p in self.folder.iterdir()]
        return sorted((int(m.group(1)), p) for m, p in found if m)

    def resume(self, est):
        """Load the newest checkpoint into ``est``; return the epochs left to run.

        ``est`` has its network, weighting, optimizer and schedule freshly
        made; they take the checkpoint's state, and so do ``history_``,
        ``n_iter_`` and torch's random generators. Returns ``max_iter``
        when there is no checkpoint.

        Raises
        ------
        ValueError
            If the checkpoint is of another estimator, other parameters or
            other data, or holds more epochs than ``max_iter``.
        """
        files = self._files()
        if not files:
            return est.max_iter
        path = files[-1][1]
        document, tensors = read_model_file(path)
        self._check(document, path, est.max_iter)
        self.saved = document, tensors
        _restore(est, document, tensors)
        _set_rng_states(decode(document["rng"], tensors), est.device_, self.rank)
        return 0 if document["stopped"] else est.max_iter - document["epoch"]

    def _check(self, document, path, max_iter):
        """Refuse a checkpoint of another fit, saying what differs."""
        problems = []
        if document.get("kind") != "checkpoint":
            problems.append("it is not a checkpoint")
        elif document["estimator"] != self.identity["estimator"]:
            problems.append(
                f"it is of a {document['estimator']}, this is a "
                f"{self.identity['estimator']}"
            )
        elif document["processes"] != self.identity["processes"]:
            problems.append(
                f"it was written by a fit over {document['processes']} processes, "
                f"this one has {self.identity['processes']}"
            )
        else:
            params = _differences(
                document["params"], self.identity["params"], "parameter"
            )
            data = _data_differences(document["data"], self.identity["data"])
            problems += [p for p in (params, data) if p]
            if document["epoch"] > max_iter:
                problems.append(
                    f"it holds {document['epoch']} epochs, more than max_iter={max_iter}"
                )
        if problems:
            raise ValueError(
                f"The checkpoint {str(path)!r} is not of this fit: "
                f"{'; '.join(problems)}. Fit with the same data and parameters to "
                "resume, or use another checkpoint_dir (or empty it) to start afresh."
            )

    def callback(self, est, guard, monitor, last_epoch):
        """The callback writing this fit's checkpoints (and restoring its own state).

        Parameters
        ----------
        est : MultiTaskEstimator
        guard : DivergenceGuard
        monitor : ValidationMonitor or None
        last_epoch : int
            Always checkpointed.

        Returns
        -------
        Callback
        """
        return _Checkpointer(self, est, guard, monitor, last_epoch)

    def write(self, est, trainer, epoch, stopped, guard, monitor):
        """Write the checkpoint of ``epoch``, then delete all but the newest ``keep``.

        Called by every process (they gather their random states); rank 0 writes.
        """
        rng = _rng_states(est.device_, trainer.comm)
        if trainer.comm.rank != 0:
            return
        tensors = {}
        monitor_state = None
        if monitor is not None:
            monitor_state = encode(
                monitor.get_state(), "early stopping", tensors, "monitor"
            )
        scheduler = getattr(est, "_scheduler", None)
        document = {
            "format_version": FORMAT_VERSION,
            "versions": _versions(),
            "kind": "checkpoint",
            **self.identity,
            "epoch": epoch,
            "stopped": stopped,
            "history": encode(est.history_, "history_"),
            **model_sections(est, tensors, _weighting_state(est.weighting_)),
            "optimizer": optimizer_section(trainer.optimizer, tensors),
            "scheduler": None
            if scheduler is None
            else encode(scheduler.state_dict(), "lr_scheduler", tensors, "scheduler"),
            "monitor": monitor_state,
            "guard": guard.get_state(),
            "rng": encode(rng, "rng", tensors, "rng"),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        write_model_file(
            self.folder / f"checkpoint-{epoch:06d}.safetensors", document, tensors
        )
        for _, old in self._files()[: -self.keep]:
            old.unlink(missing_ok=True)


class _Checkpointer(Callback):
    """Write a checkpoint every few epochs; resume the callbacks' own state."""

    def __init__(self, checkpoints, est, guard, monitor, last_epoch):
        self.checkpoints, self.est = checkpoints, est
        self.guard, self.monitor, self.last_epoch = guard, monitor, last_epoch

    def on_train_begin(self, trainer):
        if self.checkpoints.saved is None:
            return
        document, tensors = self.checkpoints.saved
        self.guard.set_state(document["guard"])
        if self.monitor is not None and document["monitor"] is not None:
            self.monitor.set_state(decode(document["monitor"], tensors))

    def on_epoch_end(self, trainer, epoch, record):
        stopped = self.monitor is not None and self.monitor.should_stop()
        due = epoch % self.checkpoints.every == 0 or epoch == self.last_epoch
        if due or stopped:
            self.checkpoints.write(
                self.est, trainer, epoch, stopped, self.guard, self.monitor
            )
        return False
