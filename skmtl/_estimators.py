"""The public estimators: each chooses a network and its architecture parameters."""

import torch

from skmtl._base import (
    _COMMON_ATTRIBUTE_DOCS,
    _COMMON_PARAMETER_DOCS,
    PREDICT_BATCH_SIZE,
    MultiTaskEstimator,
)
from skmtl._training import map_batches
from skmtl._validation import (
    Integral,
    Interval,
    StrOptions,
    as_feature_frame,
    check_is_fitted,
    positive_sizes,
)
from skmtl.nn import DCN, PLE, MMoE, SharedBottom


def _with_common_docs(cls):
    """Fill the shared parameter and attribute sections into a docstring."""
    cls.__doc__ = cls.__doc__.format(
        common_parameters=_COMMON_PARAMETER_DOCS.strip("\n"),
        common_attributes=_COMMON_ATTRIBUTE_DOCS.strip("\n"),
    )
    return cls


class _GatedMixin:
    """``gate_weights`` for the estimators whose networks have gates."""

    def gate_weights(self, X):
        """Return every level's gate distributions, row by row.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw features with at least the columns seen in ``fit``.

        Returns
        -------
        list of dict
            One dict per level (MMoE has one). Task name -> ndarray of shape
            (n_samples, n_gated), rows summing to 1: for MMoE, the weights of
            all experts; for PLE, the task's own experts first, then the
            shared ones. A PLE level other than the last also has
            ``"shared"`` -> ndarray of shape (n_samples, n_experts), the shared
            gate over all experts of the level (tasks' experts in task order,
            then the shared ones).
        """
        levels = []
        for task_gates, shared_gate in self._gates(X):
            level = dict(zip(self.task_names_, task_gates))
            if shared_gate is not None:
                level["shared"] = shared_gate
            levels.append(level)
        return levels

    def _gates(self, X):
        """Return the network's gates for X, level by level, as numpy arrays.

        Returns
        -------
        list of tuple
            Per level ``(task_gates, shared_gate)``: arrays of shape
            (n_tasks, n_samples, n_gated) and (n_samples, n_experts) or None.
        """
        check_is_fitted(self, "module_")
        frame = as_feature_frame(self, X, reset=False)
        batches = map_batches(
            lambda module, batch: module.gate_distributions(batch),
            self.module_,
            self._features(frame),
            PREDICT_BATCH_SIZE,
        )
        levels = []
        for level in zip(*batches):
            task_gates = torch.cat([g for g, _ in level], dim=1).cpu().numpy()
            shared = [s for _, s in level]
            shared = None if shared[0] is None else torch.cat(shared).cpu().numpy()
            levels.append((task_gates, shared))
        return levels


@_with_common_docs
class MMoEClassifierRegressor(_GatedMixin, MultiTaskEstimator):
    """Multi-gate Mixture-of-Experts for binary, multiclass and regression tasks.

    Experts are shared by all tasks; each task mixes them with its own softmax
    gate, then reads the mixture through its own tower (Ma et al., KDD 2018).
    With ``gating="shared"`` one gate serves every task: the One-gate MoE
    baseline of the same paper.

    Parameters
    ----------
    n_experts : int, default=8
        Number of experts.
    expert_hidden_sizes : tuple of int, default=(64,)
        Hidden layers of each expert.
    gating : {{"per_task", "shared"}}, default="per_task"
        One gate per task (MMoE), or one gate for all (One-gate MoE).
{common_parameters}

    Attributes
    ----------
{common_attributes}

    See Also
    --------
    PLEEstimator : Task-specific and shared experts, layered.
    SharedBottomEstimator : The hard-sharing baseline.

    References
    ----------
    .. [1] J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong and E. H. Chi, "Modeling Task
       Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts",
       KDD 2018.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmtl import MMoEClassifierRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({{"color": rng.choice(["red", "blue"], 200),
    ...                   "size": rng.normal(size=200)}})
    >>> Y = pd.DataFrame({{"is_red": (X.color == "red").astype(int),
    ...                   "big": (X["size"] > 0).astype(int)}})
    >>> est = MMoEClassifierRegressor(n_experts=4, max_iter=5, random_state=0)
    >>> est.fit(X, Y).predict(X).shape
    (200, 2)
    >>> est.task_names_
    ['is_red', 'big']
    """

    _parameter_constraints = {
        **MultiTaskEstimator._parameter_constraints,
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "expert_hidden_sizes": ["array-like"],
        "gating": [StrOptions({"per_task", "shared"})],
    }
    _network_class = MMoE
    _own_parameters = {
        "n_experts": 8,
        "expert_hidden_sizes": (64,),
        "gating": "per_task",
    }


    def _network_params(self):
        return {
            "n_experts": self.n_experts,
            "expert_hidden_sizes": positive_sizes(
                self.expert_hidden_sizes, "expert_hidden_sizes", allow_empty=False
            ),
            "gating": self.gating,
        }


@_with_common_docs
class PLEEstimator(_GatedMixin, MultiTaskEstimator):
    """Progressive Layered Extraction (PLE); ``n_levels=1`` is CGC.

    Each level has experts shared by all tasks and experts owned by each task.
    Task ``k``'s gate mixes its own and the shared experts; a shared gate mixes
    all of them for the next level (Tang et al., RecSys 2020).

    Parameters
    ----------
    n_levels : int, default=2
        Number of extraction levels; 1 gives Customized Gate Control (CGC).
    n_shared_experts : int, default=2
        Shared experts per level.
    n_task_experts : int, default=2
        Experts owned by each task, per level.
    expert_hidden_sizes : tuple of int, default=(64,)
        Hidden layers of each expert.
{common_parameters}

    Attributes
    ----------
{common_attributes}

    See Also
    --------
    MMoEClassifierRegressor : All experts shared, one gate per task.

    References
    ----------
    .. [1] H. Tang, J. Liu, M. Zhao and X. Gong, "Progressive Layered Extraction
       (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
       Recommendations", RecSys 2020.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmtl import PLEEstimator
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({{"a": rng.normal(size=200), "b": rng.normal(size=200)}})
    >>> Y = pd.DataFrame({{"pos": (X.a > 0).astype(int), "value": X.a + X.b}})
    >>> est = PLEEstimator(n_levels=1, max_iter=5, random_state=0).fit(X, Y)
    >>> est.task_types_
    ['binary', 'regression']
    """

    _parameter_constraints = {
        **MultiTaskEstimator._parameter_constraints,
        "n_levels": [Interval(Integral, 1, None, closed="left")],
        "n_shared_experts": [Interval(Integral, 0, None, closed="left")],
        "n_task_experts": [Interval(Integral, 0, None, closed="left")],
        "expert_hidden_sizes": ["array-like"],
    }
    _network_class = PLE
    _own_parameters = {
        "n_levels": 2,
        "n_shared_experts": 2,
        "n_task_experts": 2,
        "expert_hidden_sizes": (64,),
    }


    def _network_params(self):
        if self.n_shared_experts + self.n_task_experts < 1:
            raise ValueError(
                "PLEEstimator needs at least one expert per gate: "
                "n_shared_experts + n_task_experts must be >= 1, got "
                f"{self.n_shared_experts} + {self.n_task_experts}."
            )
        return {
            "n_levels": self.n_levels,
            "n_shared_experts": self.n_shared_experts,
            "n_task_experts": self.n_task_experts,
            "expert_hidden_sizes": positive_sizes(
                self.expert_hidden_sizes, "expert_hidden_sizes", allow_empty=False
            ),
        }


@_with_common_docs
class DCNMultiTask(MultiTaskEstimator):
    """Deep & Cross Network bottom with one tower per task.

    The cross network models explicit feature interactions, the deep network
    implicit ones; their outputs feed every task's tower (Wang et al. 2017;
    DCN-v2, Wang et al. 2021).

    Parameters
    ----------
    n_cross_layers : int, default=3
        Number of cross layers.
    cross_type : {{"matrix", "vector"}}, default="matrix"
        ``"matrix"``: DCN-v2, x0 * (W x + b) + x. ``"vector"``: DCN,
        x0 (x . w) + b + x.
    structure : {{"parallel", "stacked"}}, default="parallel"
        ``"parallel"`` concatenates the cross and deep outputs; ``"stacked"``
        feeds the cross output to the deep network.
    deep_hidden_sizes : tuple of int, default=(128, 64)
        Hidden layers of the deep network.
{common_parameters}

    Attributes
    ----------
{common_attributes}

    See Also
    --------
    SharedBottomEstimator : A plain MLP as the shared bottom.

    References
    ----------
    .. [1] R. Wang, B. Fu, G. Fu and M. Wang, "Deep & Cross Network for Ad Click
       Predictions", ADKDD 2017.
    .. [2] R. Wang, R. Shivanna, D. Cheng, S. Jain, D. Lin, L. Hong and E. Chi,
       "DCN V2: Improved Deep & Cross Network", WWW 2021.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmtl import DCNMultiTask
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({{"a": rng.normal(size=200), "b": rng.normal(size=200)}})
    >>> Y = pd.DataFrame({{"y1": (X.a * X.b > 0).astype(int), "y2": (X.a > 0).astype(int)}})
    >>> DCNMultiTask(max_iter=5, random_state=0).fit(X, Y).predict_proba(X)[0].shape
    (200, 2)
    """

    _parameter_constraints = {
        **MultiTaskEstimator._parameter_constraints,
        "n_cross_layers": [Interval(Integral, 0, None, closed="left")],
        "cross_type": [StrOptions({"matrix", "vector"})],
        "structure": [StrOptions({"parallel", "stacked"})],
        "deep_hidden_sizes": ["array-like"],
    }
    _network_class = DCN
    _own_parameters = {
        "n_cross_layers": 3,
        "cross_type": "matrix",
        "structure": "parallel",
        "deep_hidden_sizes": (128, 64),
    }


    def _network_params(self):
        return {
            "n_cross_layers": self.n_cross_layers,
            "cross_type": self.cross_type,
            "structure": self.structure,
            "deep_hidden_sizes": positive_sizes(
                self.deep_hidden_sizes, "deep_hidden_sizes", allow_empty=False
            ),
        }


@_with_common_docs
class SharedBottomEstimator(MultiTaskEstimator):
    """Shared-Bottom baseline: one MLP shared by all tasks, one tower per task.

    Hard parameter sharing (Caruana, 1997), the baseline the MMoE and PLE
    papers compare against.

    Parameters
    ----------
    bottom_hidden_sizes : tuple of int, default=(128,)
        Hidden layers of the shared bottom.
{common_parameters}

    Attributes
    ----------
{common_attributes}

    See Also
    --------
    MMoEClassifierRegressor : Soft sharing through gated experts.

    References
    ----------
    .. [1] R. Caruana, "Multitask Learning", Machine Learning 28(1), 1997.

    Examples
    --------
    >>> import numpy as np
    >>> from skmtl import SharedBottomEstimator
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> SharedBottomEstimator(max_iter=5, random_state=0).fit(X, y).predict(X).shape
    (200,)
    """

    _parameter_constraints = {
        **MultiTaskEstimator._parameter_constraints,
        "bottom_hidden_sizes": ["array-like"],
    }
    _network_class = SharedBottom
    _own_parameters = {"bottom_hidden_sizes": (128,)}


    def _network_params(self):
        return {
            "bottom_hidden_sizes": positive_sizes(
                self.bottom_hidden_sizes, "bottom_hidden_sizes", allow_empty=False
            )
        }
