"""How task losses combine into the one loss that is minimised.

Every estimator takes ``loss_weights=``: ``None`` (all tasks weigh 1), a dict
or list of static weights, ``"uncertainty"``, ``"gradnorm"``, an instance of
one of the classes below, or your own strategy. A strategy sees only the
per-task mean losses and, when it asks for them, the network's shared
parameters; it knows nothing of the architecture, so every network gets every
strategy.

The protocol (subclass :class:`TaskWeighting`, or pass any object with a
``combine`` method, or a plain function ``f(task_losses) -> total``):

- ``setup(n_tasks, shared_parameters)`` is called once per ``fit``, on a copy
  of the object the user passed;
- ``combine(task_losses)`` maps the (n_tasks,) tensor of per-task mean losses
  of a mini-batch to the scalar to minimise;
- ``parameters()`` lists learnable tensors, trained with the network;
- ``end_epoch(epoch)`` is called after each epoch (epochs count from 1);
- ``weights()`` returns the current per-task weights, recorded in
  ``history_``.
"""

import copy
import inspect
from numbers import Real

import numpy as np
import torch

from skmtl._validation import format_names

__all__ = [
    "DynamicWeights",
    "GradNorm",
    "StaticWeights",
    "TaskWeighting",
    "UncertaintyWeights",
]


class TaskWeighting:
    """Base class of task-weighting strategies: a weighted sum with fixed weights 1.

    Subclasses override what they need; see the module docstring for the
    protocol. Overriding methods inherit these docstrings.

    Examples
    --------
    >>> import torch
    >>> from skmtl.weighting import TaskWeighting
    >>> class FirstTaskOnly(TaskWeighting):
    ...     def combine(self, task_losses):
    ...         return task_losses[0]
    >>> strategy = FirstTaskOnly(); strategy.setup(2, [])
    >>> float(strategy.combine(torch.tensor([0.5, 9.0])))
    0.5
    """

    def __init_subclass__(cls, **kwargs):
        # Overrides without a docstring show the protocol's, in help() and docs.
        super().__init_subclass__(**kwargs)
        for name in ("setup", "combine", "parameters", "end_epoch", "weights"):
            method = cls.__dict__.get(name)
            if method is not None and not method.__doc__:
                method.__doc__ = getattr(TaskWeighting, name).__doc__

    def __repr__(self):
        try:
            params = self._init_params()
        except TypeError:
            return super().__repr__()
        args = ", ".join(f"{name}={value!r}" for name, value in params.items())
        return f"{type(self).__name__}({args})"

    # -- persistence: what skmtl.load, pickling and device moves need --------------

    def _init_params(self):
        """Return the ``__init__`` arguments, read from attributes of the same name."""
        if type(self).__init__ is object.__init__:
            return {}
        params = {}
        signature = inspect.signature(type(self).__init__)
        for name, parameter in list(signature.parameters.items())[1:]:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if not hasattr(self, name):
                raise TypeError(
                    f"{type(self).__name__} does not keep its __init__ argument "
                    f"{name!r} as an attribute of that name, so it cannot be saved."
                )
            params[name] = getattr(self, name)
        return params

    def _get_state(self):
        """Return the fitted state: every attribute but references to the network.

        Lists of the network's parameters (GradNorm's shared layers) are left
        out: ``setup`` gives them back when the model is rebuilt.
        """
        return {k: v for k, v in vars(self).items() if not _is_parameter_list(v)}

    def _set_state(self, state, device):
        """Restore what ``_get_state`` gave after ``setup``, tensors on ``device``."""
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                current = getattr(self, name, None)
                grad = isinstance(current, torch.Tensor) and current.requires_grad
                value = _moved(value, device, grad)
            setattr(self, name, value)

    def _to(self, device):
        """Move the strategy's own tensors to ``device`` and return it.

        The network's parameters it refers to move with the network.
        """
        _move_attributes(self, device)
        return self

    def setup(self, n_tasks, shared_parameters):
        """Prepare for a fit of ``n_tasks`` tasks.

        Parameters
        ----------
        n_tasks : int
            Number of tasks.
        shared_parameters : list of torch.nn.Parameter
            Parameters every task's loss reaches (from the network's
            ``shared_parameters()``).
        """
        self._current = torch.ones(n_tasks)

    def combine(self, task_losses):
        """Return the scalar loss to minimise.

        Parameters
        ----------
        task_losses : torch.Tensor of shape (n_tasks,)
            Mean loss of each task over its labelled rows in the batch.

        Returns
        -------
        torch.Tensor
            A scalar.
        """
        return (self._current.to(task_losses.device) * task_losses).sum()

    def parameters(self):
        """Return the learnable tensors of the strategy (none by default).

        Returns
        -------
        list of torch.Tensor
        """
        return []

    def end_epoch(self, epoch):
        """Update the strategy after an epoch (nothing by default).

        Parameters
        ----------
        epoch : int
            The epoch just finished, counting from 1.
        """

    def weights(self):
        """Return the current weight of each task.

        Returns
        -------
        list of float
        """
        return [float(w) for w in self._current]

    def _bind_communicator(self, comm):
        """Use ``comm`` to agree over processes during a fit; None unbinds.

        The training loop binds its communicator for the fit's duration, so
        that a fitted strategy pickles without it.
        """
        if comm is None:
            self.__dict__.pop("_comm", None)
        else:
            self._comm = comm

    def _mean_over_processes(self, tensor):
        """Average ``tensor`` over the processes of the fit (itself alone)."""
        comm = self.__dict__.get("_comm")
        if comm is None or comm.world_size == 1:
            return tensor
        return comm.sum(tensor) / comm.world_size


def _check_non_negative(value, name):
    """Raise unless ``value`` is a finite number >= 0."""
    if not (isinstance(value, Real) and np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def _per_task(values, n_tasks, name):
    """Expand a scalar or a sequence to one float per task."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {values!r}.") from None
    if array.ndim > 1 or (array.ndim == 1 and len(array) != n_tasks):
        raise ValueError(
            f"{name} has {array.size} entries but y has {n_tasks} tasks; give one "
            "number per task, or one for all."
        )
    values = np.broadcast_to(array, (n_tasks,)).copy()
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {values.tolist()}.")
    return values


class StaticWeights(TaskWeighting):
    """Fixed task weights: total = sum_k w_k L_k.

    Parameters
    ----------
    weights : float or sequence of float
        Weight of each task (a scalar applies to all). A dict keyed by task
        name is accepted by the estimators' ``loss_weights``.

    Examples
    --------
    >>> import torch
    >>> from skmtl.weighting import StaticWeights
    >>> w = StaticWeights([1.0, 0.5]); w.setup(2, [])
    >>> float(w.combine(torch.tensor([2.0, 2.0])))
    3.0
    """

    def __init__(self, weights=1.0):
        self.weights_init = weights

    def _init_params(self):
        # ``weights`` is the method returning the current weights.
        return {"weights": self.weights_init}

    def setup(self, n_tasks, shared_parameters):
        if np.ndim(self.weights_init) and len(self.weights_init) != n_tasks:
            raise ValueError(
                f"loss_weights has {len(self.weights_init)} entries but y has "
                f"{n_tasks} tasks."
            )
        values = _per_task(self.weights_init, n_tasks, "loss_weights")
        self._current = torch.tensor(values, dtype=torch.float32)


class DynamicWeights(TaskWeighting):
    """The PLE paper's schedule: w_k(t) = w_k0 * gamma_k ** t, t = finished epochs.

    Parameters
    ----------
    initial : float or sequence of float, default=1.0
        Starting weight of each task, w_k0.
    decay : float or sequence of float, default=0.9
        Per-epoch factor of each task, gamma_k (above 1 grows the weight).

    References
    ----------
    .. [1] H. Tang, J. Liu, M. Zhao and X. Gong, "Progressive Layered
       Extraction (PLE)", RecSys 2020, section 4.4.

    Examples
    --------
    >>> from skmtl.weighting import DynamicWeights
    >>> w = DynamicWeights(initial=[1.0, 1.0], decay=[1.0, 0.5]); w.setup(2, [])
    >>> w.end_epoch(1); w.end_epoch(2); w.weights()
    [1.0, 0.25]
    """

    def __init__(self, initial=1.0, decay=0.9):
        self.initial = initial
        self.decay = decay

    def setup(self, n_tasks, shared_parameters):
        initial = _per_task(self.initial, n_tasks, "DynamicWeights' initial")
        decay = _per_task(self.decay, n_tasks, "DynamicWeights' decay")
        self._initial, self._decay = torch.tensor(initial), torch.tensor(decay)
        self._current = self._initial.float()

    def end_epoch(self, epoch):
        self._current = (self._initial * self._decay**epoch).float()


class UncertaintyWeights(TaskWeighting):
    """Homoscedastic uncertainty weighting with learnt log-variances.

    total = sum_k exp(-s_k) L_k + s_k, where s_k = log sigma_k^2 is learnt with
    the network: a task whose loss stays high (a noisier task) gets a larger
    s_k, hence a smaller weight exp(-s_k).

    References
    ----------
    .. [1] A. Kendall, Y. Gal and R. Cipolla, "Multi-Task Learning Using
       Uncertainty to Weigh Losses for Scene Geometry and Semantics",
       CVPR 2018.

    Examples
    --------
    >>> import torch
    >>> from skmtl.weighting import UncertaintyWeights
    >>> w = UncertaintyWeights(); w.setup(2, [])
    >>> float(w.combine(torch.tensor([1.0, 3.0])).detach())  # s = 0 at the start
    4.0
    """

    def setup(self, n_tasks, shared_parameters):
        device = shared_parameters[0].device if shared_parameters else None
        self.log_variances_ = torch.zeros(n_tasks, device=device, requires_grad=True)

    def combine(self, task_losses):
        s = self.log_variances_
        return (torch.exp(-s) * task_losses + s).sum()

    def parameters(self):
        return [self.log_variances_]

    def weights(self):
        return torch.exp(-self.log_variances_.detach()).cpu().tolist()


class GradNorm(TaskWeighting):
    """GradNorm: learn weights that balance the tasks' gradient norms.

    At each step the gradient norm G_k = w_k ||grad_W L_k|| on the shared
    parameters W is pulled towards mean(G) * r_k ** alpha, where r_k is task
    k's loss relative to its first loss, normalised by the mean ratio: a task
    that trains slower gets a larger gradient. The weights are renormalised to
    sum to the number of tasks.

    Parameters
    ----------
    alpha : float, default=1.5
        Strength of the pull towards balanced training rates (0: equal norms).
    learning_rate : float, default=0.025
        Size of each weight's step per batch (the weights move by
        ``learning_rate`` towards balance, as Adam's normalised steps do in the
        paper).

    Attributes
    ----------
    grad_norms_ : torch.Tensor of shape (n_tasks,)
        Weighted gradient norms G_k, averaged over the last finished epoch's
        batches (one batch's norms are noisy).

    Notes
    -----
    Measures each task's gradient on all shared parameters, so a step costs
    one extra backward pass through the shared layers per task.

    References
    ----------
    .. [1] Z. Chen, V. Badrinarayanan, C.-Y. Lee and A. Rabinovich, "GradNorm:
       Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
       Networks", ICML 2018.

    Examples
    --------
    >>> import torch
    >>> from skmtl.weighting import GradNorm
    >>> shared = torch.nn.Parameter(torch.ones(3))
    >>> w = GradNorm(); w.setup(2, [shared])
    >>> total = w.combine(torch.stack([shared.sum(), 10 * shared.sum()]))
    >>> w.weights()[0] > w.weights()[1]  # the larger gradient is damped
    True
    """

    def __init__(self, alpha=1.5, learning_rate=0.025):
        self.alpha = alpha
        self.learning_rate = learning_rate

    def setup(self, n_tasks, shared_parameters):
        _check_non_negative(self.alpha, "GradNorm's alpha")
        # learning_rate=0 measures the norms without adapting the weights.
        _check_non_negative(self.learning_rate, "GradNorm's learning_rate")
        self._shared = [p for p in shared_parameters if p.requires_grad]
        if not self._shared:
            raise ValueError("GradNorm needs a network with shared parameters.")
        self._current = torch.ones(n_tasks, device=self._shared[0].device)
        self._initial_losses = None
        self._norm_sum, self._n_steps = 0.0, 0
        self.grad_norms_ = torch.zeros(n_tasks)

    def _gradient_norms(self, task_losses):
        """||grad_W L_k|| for each task, without building a graph.

        In a fit over several processes each one holds its share of each
        task's loss; the norm is that of the averaged gradient, as one process
        with the whole batch would measure it.
        """
        gradients = []
        for loss in task_losses:
            grads = torch.autograd.grad(loss, self._shared, retain_graph=True, allow_unused=True)
            flat = [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, self._shared)
            ]
            gradients.append(torch.cat(flat))
        # (n_tasks, n_shared_values), averaged over processes
        gradients = self._mean_over_processes(torch.stack(gradients))
        return torch.linalg.vector_norm(gradients, dim=1)

    def combine(self, task_losses):
        norms = self._gradient_norms(task_losses)
        with torch.no_grad():
            losses = self._mean_over_processes(task_losses.detach())
            if self._initial_losses is None:
                self._initial_losses = losses.clamp_min(1e-8)
            ratios = losses / self._initial_losses
            relative = ratios / ratios.mean().clamp_min(1e-8)
            weighted = self._current * norms
            target = weighted.mean() * relative**self.alpha
            # The gradient of |w_k g_k - target_k| in w_k is sign(.) g_k. The
            # paper follows it with Adam, whose per-weight normalisation makes
            # each weight's step about learning_rate; a plain gradient step
            # instead stalls short of balance when the g_k differ in scale.
            step = torch.sign(weighted - target)
            updated = (self._current - self.learning_rate * step).clamp_min(1e-3)
            self._current = updated * len(updated) / updated.sum()
            self._norm_sum = self._norm_sum + weighted
            self._n_steps += 1
        return (self._current * task_losses).sum()

    def end_epoch(self, epoch):
        if self._n_steps:
            self.grad_norms_ = (self._norm_sum / self._n_steps).cpu()
        self._norm_sum, self._n_steps = 0.0, 0


class _UserWeighting(TaskWeighting):
    """Adapt a user's function or partial-protocol object to the full protocol.

    Methods the user's object lacks fall back to :class:`TaskWeighting`'s;
    the weights of a plain function are unknown and recorded as NaN.
    """

    def __init__(self, strategy):
        self.strategy = strategy

    def _delegate(self, name):
        return getattr(self.strategy, name, None)

    def setup(self, n_tasks, shared_parameters):
        self._current = torch.full((n_tasks,), float("nan"))
        if self._delegate("setup"):
            self.strategy.setup(n_tasks, shared_parameters)

    def combine(self, task_losses):
        if self._delegate("combine"):
            return self.strategy.combine(task_losses)
        return self.strategy(task_losses)

    def parameters(self):
        return list(self.strategy.parameters()) if self._delegate("parameters") else []

    def end_epoch(self, epoch):
        if self._delegate("end_epoch"):
            self.strategy.end_epoch(epoch)

    def weights(self):
        if self._delegate("weights"):
            return [float(w) for w in self.strategy.weights()]
        return super().weights()

    def _to(self, device):
        if hasattr(self.strategy, "__dict__"):
            _move_attributes(self.strategy, device)
        return super()._to(device)


def resolve_weighting(loss_weights, task_names):
    """Turn the ``loss_weights`` parameter into a fresh strategy object.

    Parameters
    ----------
    loss_weights : None, dict, list, str, TaskWeighting-like or callable
        The estimator's parameter (never modified: objects are copied).
    task_names : list of str
        Task names, to map dict keys.

    Returns
    -------
    TaskWeighting
    """
    if loss_weights is None:
        return StaticWeights(1.0)
    if isinstance(loss_weights, str):
        return {"uncertainty": UncertaintyWeights, "gradnorm": GradNorm}[loss_weights]()
    if isinstance(loss_weights, dict):
        unknown = set(loss_weights) - set(task_names)
        if unknown:
            raise ValueError(
                f"loss_weights names tasks that are not in y: {format_names(unknown)}; "
                f"the tasks are {task_names}."
            )
        return StaticWeights([loss_weights.get(name, 1.0) for name in task_names])
    if isinstance(loss_weights, (list, tuple)):
        return StaticWeights(list(loss_weights))
    if isinstance(loss_weights, TaskWeighting):
        return copy.deepcopy(loss_weights)
    return _UserWeighting(copy.deepcopy(loss_weights))


# -- helpers of TaskWeighting's persistence methods --------------------------------


def _is_parameter_list(value):
    """Whether ``value`` is a list of parameters (references into the network)."""
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, torch.nn.Parameter) for v in value)
    )


def _moved(tensor, device, requires_grad):
    """A leaf copy of ``tensor`` on ``device`` (learnable when ``requires_grad``)."""
    moved = tensor.detach().to(device)
    if isinstance(tensor, torch.nn.Parameter):
        return torch.nn.Parameter(moved, requires_grad=requires_grad)
    return moved.requires_grad_(requires_grad)


def _move_attributes(obj, device):
    """Move every tensor held directly as an attribute of ``obj`` to ``device``."""
    for name, value in vars(obj).items():
        if isinstance(value, torch.Tensor) and value.device != torch.device(device):
            setattr(obj, name, _moved(value, device, value.requires_grad))
