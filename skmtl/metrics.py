"""Scoring helpers for multi-task estimators."""

import numpy as np
import pandas as pd
from sklearn.base import clone

from skmtl._targets import as_target_frame

__all__ = ["make_task_scorer", "mtl_gain"]


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


def _single_task_clone(estimator, task):
    """A clone of ``estimator`` for one task; per-task options follow the task."""
    single = clone(estimator)
    params = single.get_params()
    if isinstance(params.get("loss_weights"), (dict, list, tuple)):
        single.set_params(loss_weights=None)
    if isinstance(params.get("class_weight"), dict):
        kept = {k: v for k, v in params["class_weight"].items() if k == task}
        single.set_params(class_weight=kept or None)
    if isinstance(params.get("task_types"), dict):
        kept = {k: v for k, v in params["task_types"].items() if k == task}
        single.set_params(task_types=kept or "auto")
    return single


def mtl_gain(estimator, X_train, y_train, X_test, y_test):
    """Compare a multi-task model with single-task models of the same family.

    Fits ``estimator`` on all tasks, and a clone of it on each task alone,
    then scores every task on the test rows (ROC AUC, accuracy or R², see
    ``score_tasks``). The PLE paper's MTL gain of a task is its multi-task
    score minus its single-task score: a negative gain is negative transfer,
    and gains of both signs in one model are the seesaw effect.

    Parameters
    ----------
    estimator : skmtl estimator
        Unfitted template (it is cloned, never fitted itself).
    X_train : DataFrame or array-like of shape (n_samples, n_features)
        Training features.
    y_train : DataFrame or array-like of shape (n_samples, n_tasks)
        Training targets, one column per task.
    X_test : DataFrame or array-like of shape (n_test_samples, n_features)
        Test features.
    y_test : DataFrame or array-like of shape (n_test_samples, n_tasks)
        Test targets.

    Returns
    -------
    pandas.DataFrame
        One row per task: ``single_task``, ``multi_task``, ``gain`` and
        ``negative_transfer`` (gain < 0). ``attrs["seesaw"]`` is True when some
        tasks gain and others lose.

    References
    ----------
    .. [1] H. Tang, J. Liu, M. Zhao and X. Gong, "Progressive Layered
       Extraction (PLE)", RecSys 2020, section 5.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmtl import SharedBottomEstimator
    >>> from skmtl.metrics import mtl_gain
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    >>> Y = pd.DataFrame({"p": (X.a > 0).astype(int), "q": (X.a + X.b > 0).astype(int)})
    >>> report = mtl_gain(SharedBottomEstimator(max_iter=3, random_state=0),
    ...                   X[:200], Y[:200], X[200:], Y[200:])
    >>> list(report.columns)
    ['single_task', 'multi_task', 'gain', 'negative_transfer']
    """
    targets, _ = as_target_frame(y_train, len(y_train))
    tests, _ = as_target_frame(y_test, len(y_test))
    multi = clone(estimator).fit(X_train, targets).score_tasks(X_test, tests)
    rows = {}
    for task in targets.columns:
        single = _single_task_clone(estimator, task).fit(X_train, targets[[task]])
        single_score = single.score_tasks(X_test, tests[[task]])[str(task)]
        rows[str(task)] = {"single_task": single_score, "multi_task": multi[str(task)]}
    report = pd.DataFrame.from_dict(rows, orient="index")
    report["gain"] = report.multi_task - report.single_task
    report["negative_transfer"] = report.gain < 0
    report.attrs["seesaw"] = bool(np.any(report.gain > 0) and np.any(report.gain < 0))
    return report
