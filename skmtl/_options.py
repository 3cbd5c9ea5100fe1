"""Training options resolved in ``fit``: class weights and the optimizer."""

import numpy as np
import torch

from skmtl._validation import format_names

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    # Plain SGD rarely trains these networks in a few epochs; momentum does.
    "sgd": lambda params, **kw: torch.optim.SGD(params, momentum=0.9, **kw),
}


def make_optimizer(optimizer, parameters, learning_rate, weight_decay):
    """Build the optimizer named or given by the ``optimizer`` parameter.

    Parameters
    ----------
    optimizer : {"adam", "adamw", "sgd"} or type
        A name, or a ``torch.optim.Optimizer`` subclass.
    parameters : list of torch.Tensor
        What to optimise.
    learning_rate, weight_decay : float
        Passed as ``lr`` and ``weight_decay``.

    Returns
    -------
    torch.optim.Optimizer
    """
    if isinstance(optimizer, str):
        factory = _OPTIMIZERS[optimizer]
    elif isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        factory = optimizer
    else:
        raise TypeError(
            "optimizer must be 'adam', 'adamw', 'sgd' or a torch.optim.Optimizer "
            f"subclass, got {optimizer!r}."
        )
    return factory(parameters, lr=learning_rate, weight_decay=weight_decay)


def make_scheduler(lr_scheduler, optimizer, max_iter):
    """Build the per-epoch learning-rate scheduler, or None.

    Parameters
    ----------
    lr_scheduler : None, "cosine" or callable
        ``"cosine"`` anneals the rate to 0 over ``max_iter`` epochs; a
        callable is called as ``lr_scheduler(optimizer)`` and must return an
        object with a ``step()`` method (any ``torch.optim.lr_scheduler``).
    optimizer : torch.optim.Optimizer
    max_iter : int

    Returns
    -------
    scheduler or None
    """
    if lr_scheduler is None:
        return None
    if isinstance(lr_scheduler, str):
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_iter)
    scheduler = lr_scheduler(optimizer)
    if not callable(getattr(scheduler, "step", None)):
        raise TypeError(
            "lr_scheduler(optimizer) must return a scheduler with a step() method, "
            f"got {scheduler!r}."
        )
    return scheduler


def _class_spec(task, spec):
    """Return None, "balanced" or an array of weights by class index."""
    if spec is None:
        return None
    if task.classes is None:
        raise ValueError(
            f"class_weight is given for task {task.name!r}, which is a "
            f"{task.kind} task, not a classification task."
        )
    if isinstance(spec, str) and spec == "balanced":
        return "balanced"
    if not isinstance(spec, dict):
        raise ValueError(
            f"class_weight for task {task.name!r} must be 'balanced' or a dict "
            f"{{label: weight}}, got {spec!r}."
        )
    unknown = [label for label in spec if label not in set(task.classes.tolist())]
    if unknown:
        raise ValueError(
            f"class_weight for task {task.name!r} names labels that are not among "
            f"its classes {task.classes.tolist()}: {format_names(unknown)}."
        )
    weights = np.array([float(spec.get(c, 1.0)) for c in task.classes.tolist()])
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"class_weight for task {task.name!r} must be finite and >= 0.")
    return weights


def resolve_class_weight(class_weight, tasks):
    """Check ``class_weight`` against the tasks; return one spec per task or None.

    Parameters
    ----------
    class_weight : None, "balanced" or dict
        The estimator's parameter.
    tasks : list of Task

    Returns
    -------
    list or None
        Per task: None, ``"balanced"`` or weights by class index.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        return ["balanced" if t.classes is not None else None for t in tasks]
    names = [t.name for t in tasks]
    unknown = set(class_weight) - set(names)
    if unknown:
        raise ValueError(
            f"class_weight names tasks that are not in y: {format_names(unknown)}; "
            f"the tasks are {names}."
        )
    return [_class_spec(t, class_weight.get(t.name)) for t in tasks]


def class_weight_matrix(values, mask, specs):
    """Return the (n_samples, n_tasks) class weight of each labelled entry.

    ``"balanced"`` gives class c the weight n / (n_classes * n_c), counted over
    the labelled rows, as scikit-learn's ``compute_class_weight`` does.
    """
    matrix = np.ones(values.shape)
    for k, spec in enumerate(specs):
        if spec is None:
            continue
        index = values[mask[:, k], k].astype(np.int64)
        if isinstance(spec, str):
            spec = balanced_class_weights(np.bincount(index))
        matrix[mask[:, k], k] = spec[index]
    return matrix


def balanced_class_weights(counts):
    """Return n / (n_classes * n_c) for each class c with rows, 1 for the others.

    Parameters
    ----------
    counts : ndarray of shape (n_classes,)
        Rows of each class.

    Returns
    -------
    ndarray of shape (n_classes,)
    """
    present = counts > 0
    weights = np.ones(len(counts))
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights
