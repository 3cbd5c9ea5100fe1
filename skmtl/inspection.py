"""Plots of what a fitted multi-task model learnt (needs matplotlib)."""

import numpy as np

__all__ = ["plot_gate_heatmap", "plot_learning_curves"]


def _axes(ax):
    """Return ``ax``, or a new one; matplotlib is an optional dependency."""
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skmtl.inspection needs matplotlib: pip install matplotlib"
        ) from exc
    return plt.subplots()[1]


def plot_learning_curves(estimator, ax=None):
    """Plot each task's training (and validation) loss per epoch from ``history_``.

    Parameters
    ----------
    estimator : fitted skmtl estimator
        Any skmtl estimator after ``fit``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skmtl import SharedBottomEstimator
    >>> from skmtl.inspection import plot_learning_curves
    >>> X = np.random.RandomState(0).normal(size=(100, 2))
    >>> est = SharedBottomEstimator(max_iter=3).fit(X, (X > 0).astype(int))
    >>> len(plot_learning_curves(est).get_lines())
    2
    """
    ax = _axes(ax)
    epochs = [record["epoch"] for record in estimator.history_]
    for task in estimator.task_names_:
        line = ax.plot(
            epochs,
            [r["train_loss_per_task"][task] for r in estimator.history_],
            label=f"{task} (train)",
        )[0]
        if "valid_loss_per_task" in estimator.history_[0]:
            ax.plot(
                epochs,
                [r["valid_loss_per_task"][task] for r in estimator.history_],
                linestyle="--",
                color=line.get_color(),
                label=f"{task} (validation)",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean loss over labelled rows")
    ax.set_title(f"{type(estimator).__name__}: loss per task")
    ax.legend()
    return ax


def plot_gate_heatmap(estimator, X, level=0, ax=None):
    """Heatmap of the mean gate weight of each task on each expert.

    Parameters
    ----------
    estimator : fitted MMoEClassifierRegressor or PLEEstimator
        A gated model.
    X : DataFrame or array-like of shape (n_samples, n_features)
        Rows over which the gates are averaged.
    level : int, default=0
        Level to show (MMoE has one level, PLE one per extraction network).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skmtl import MMoEClassifierRegressor
    >>> from skmtl.inspection import plot_gate_heatmap
    >>> X = np.random.RandomState(0).normal(size=(100, 2))
    >>> est = MMoEClassifierRegressor(n_experts=3, max_iter=2).fit(X, (X > 0).astype(int))
    >>> plot_gate_heatmap(est, X).get_images()[0].get_array().shape
    (2, 3)
    """
    if not hasattr(estimator, "gate_weights"):
        raise TypeError(
            f"{type(estimator).__name__} has no gates; use an MMoE or PLE estimator."
        )
    gates = estimator.gate_weights(X)[level]
    rows = [name for name in gates if name != "shared"]
    means = np.array([gates[name].mean(axis=0) for name in rows])
    ax = _axes(ax)
    image = ax.imshow(means, cmap="viridis", vmin=0, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label="mean gate weight")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xticks(range(means.shape[1]))
    ax.set_xlabel("expert" if len(gates) == len(rows) else "own experts, then shared")
    ax.set_ylabel("task")
    ax.set_title(f"{type(estimator).__name__}: which experts each task uses")
    return ax
