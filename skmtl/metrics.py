"""Scoring helpers for multi-task estimators."""

__all__ = ["make_task_scorer"]


class _TaskScorer:
    """Callable ``scorer(estimator, X, y)`` returning one task's score."""

    def __init__(self, task):
        self.task = task

    def __call__(self, estimator, X, y):
        # In a Pipeline, the earlier steps transform X for the final estimator.
        if hasattr(estimator, "steps"):
            X = estimator[:-1].transform(X)
            estimator = estimator[-1]
        scores = estimator.score_tasks(X, y)
        if self.task not in scores:
            raise ValueError(
                f"Unknown task {self.task!r}; the estimator's tasks are "
                f"{list(scores)}."
            )
        return scores[self.task]

    def __repr__(self):
        return f"make_task_scorer({self.task!r})"


def make_task_scorer(task):
    """Make a scorer that rates an estimator on one task only.

    The score is the estimator's own per-task score (see
    ``score_tasks``): ROC AUC for a binary task, accuracy for a multiclass
    task, R² for a regression task, computed on the rows where that task has a
    label. Greater is better, as scikit-learn's model selection expects.

    Parameters
    ----------
    task : str
        Name of the task, as in ``task_names_``.

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> float``, usable as ``scoring=`` in
        :class:`~sklearn.model_selection.GridSearchCV` or
        :func:`~sklearn.model_selection.cross_val_score`, alone or in a dict
        of several scorers. The estimator may be a
        :class:`~sklearn.pipeline.Pipeline` ending in a skmtl estimator.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skmtl import MMoEClassifierRegressor
    >>> from skmtl.metrics import make_task_scorer
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    >>> Y = pd.DataFrame({"pos": (X.a > 0).astype(int), "big": (X.b > 0).astype(int)})
    >>> search = GridSearchCV(
    ...     MMoEClassifierRegressor(max_iter=2, random_state=0),
    ...     {"n_experts": [2, 4]}, scoring=make_task_scorer("pos"), cv=2,
    ... ).fit(X, Y)
    >>> sorted(search.best_params_)
    ['n_experts']
    """
    if not isinstance(task, str):
        raise TypeError(f"task must be a task name (str), got {task!r}.")
    return _TaskScorer(task)
