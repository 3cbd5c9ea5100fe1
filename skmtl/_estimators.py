"""The public estimators: each chooses a network and its architecture parameters."""

import numpy as np
import torch
from sklearn.utils import ClassifierTags

from skmtl._base import (
    _COMMON_ATTRIBUTE_DOCS,
    _COMMON_PARAMETER_DOCS,
    MultiTaskEstimator,
)
from skmtl import _dask
from skmtl._funnel import funnel_probabilities, joint_targets, lazy_joint_targets
from skmtl._training import PREDICT_BATCH_SIZE, map_batches
from skmtl._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    as_feature_frame,
    check_is_fitted,
    format_names,
    is_dask_collection,
    positive_sizes,
)
from skmtl.nn import AITM, DCN, ESMM, PLE, STAR, CrossStitch, MMoE, SharedBottom
from skmtl.tasks import BinaryTask


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
    n_task_experts : int, default=3
        Experts owned by each task, per level. With two tasks, the defaults
        give 8 experts per level, the split chosen on census-income
        validation (see the reproduction notes).
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
        "n_task_experts": 3,
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


def _check_binary_task_types(task_types):
    """A funnel's stages are binary: ``task_types`` may only say so."""
    if isinstance(task_types, str):
        return
    kinds = task_types.values() if isinstance(task_types, dict) else task_types
    bad = [
        kind
        for kind in kinds
        if kind is not BinaryTask
        and not (isinstance(kind, str) and kind in ("auto", "binary"))
    ]
    if bad:
        raise ValueError(
            "The stages of a funnel are binary tasks: task_types may only hold "
            f"'auto' or 'binary', got {format_names(map(repr, bad))}."
        )


class _FunnelMixin:
    """Funnel targets in, joint and conditional probabilities out.

    The network outputs the logit of reaching each stage, so each stage is an
    ordinary binary task on its joint label; this mixin turns ``y``'s stage
    columns into those labels wherever ``y`` comes in (``fit``,
    ``partial_fit``, ``eval_set``, ``score_tasks``) and lays out
    ``predict_proba`` per stage.
    """

    def _joint_targets(self, y):
        if is_dask_collection(y):
            return lazy_joint_targets(y, self.funnel)
        return joint_targets(y, self.funnel)

    def _training_data(self, X, y, sample_weight, reset, comm):
        if not is_dask_collection(X):
            # X's errors (sparse input, no rows) come before y's, as scikit-learn's
            # checks expect; X is validated again, unchanged, by the base class.
            as_feature_frame(self, X, reset=reset)
        joint, is_1d = self._joint_targets(y)
        if reset:
            _check_binary_task_types(self.task_types)
        data = super()._training_data(X, joint, sample_weight, reset, comm)
        if reset:
            self._y_is_1d = is_1d
        return data

    def _eval_data(self, eval_set, data, comm):
        if isinstance(eval_set, (tuple, list)) and len(eval_set) == 2:
            eval_set = (eval_set[0], self._joint_targets(eval_set[1])[0])
        return super()._eval_data(eval_set, data, comm)

    def predict_proba(self, X):
        """Predict, per stage, the joint and the conditional probability.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw features with at least the columns seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_stages, 2)
            Stages in the order of ``task_names_``. ``[:, k, 0]`` is the
            probability of reaching stage ``k`` (pCTR, then pCTCVR);
            ``[:, k, 1]`` is the probability of stage ``k`` given stage
            ``k - 1`` (pCTR, then pCVR), the ratio of the joint
            probabilities, capped at 1. For the first stage both are equal.
            A lazy Dask array, one block per partition, when X is a Dask
            DataFrame.
        """
        if is_dask_collection(X):
            logits, _ = _dask.lazy_logits(self, X)
            chunks = (logits.chunks[0], (logits.shape[1],), (2,))
            return logits.map_blocks(
                funnel_probabilities, dtype=np.float64, new_axis=2, chunks=chunks
            )
        return funnel_probabilities(self._logits(X))

    def score_tasks(self, X, y):
        """Score each stage's joint label over all rows.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw features.
        y : DataFrame, Series or array-like of shape (n_samples, n_columns)
            The funnel's stage columns, as in ``fit`` (a 1-D y for one stage).

        Returns
        -------
        dict
            Stage name -> ROC AUC of the predicted probability of reaching the
            stage against the joint label (e.g. click-and-purchase over all
            impressions), on the rows where it is known.
        """
        if is_dask_collection(X):
            logits, _ = _dask.lazy_logits(self, X)
            # Separately: Dask warns when arrays and frames are computed together.
            logits, y = logits.compute(), y.compute()
        else:
            logits = self._logits(X)
        joint, _ = joint_targets(y, self.funnel, n_samples=len(logits))
        return self._scores_from_logits(logits, joint, strict=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Each stage is binary: scikit-learn's checks then draw binary targets.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags


_FUNNEL_DOCS = """funnel : list of str or None, default=None
        The target columns of the funnel's stages, in order (e.g.
        ``["click", "purchase"]``; more than two stages are allowed); other
        columns of y are ignored. None takes every column of y, in order.
        Labels are 0/1 or True/False (two other numbers work too, the
        larger being positive, as for a binary task). Stage k may be 1 only
        where stage k - 1 is 1 (fit raises an error naming the column and
        counting the offending rows otherwise); where stage k - 1 is 0 or
        NaN, stage k may be 0 or NaN, both meaning "did not happen". NaN
        where stage k - 1 is 1 means unknown: the row is left out of stage
        k's loss."""


def _with_funnel_docs(cls):
    """Fill the ``funnel`` parameter's description into a docstring."""
    cls.__doc__ = cls.__doc__.replace("{funnel_parameter}", _FUNNEL_DOCS)
    return cls


@_with_common_docs
@_with_funnel_docs
class ESMMEstimator(_FunnelMixin, MultiTaskEstimator):
    """Entire Space Multi-task Model for a funnel of binary stages (ESMM).

    Each stage has a tower on shared embeddings predicting the stage given
    the previous one (pCTR, pCVR). Their product, the probability of reaching
    the stage (pCTCVR), is what is trained: the loss is on pCTR and pCTCVR
    over all rows, never on pCVR over the clicked rows alone, which removes
    the sample-selection bias of a conversion model trained on clicks and
    lets the conversion tower learn from every impression (Ma et al., SIGIR
    2018).

    Parameters
    ----------
    {funnel_parameter}
{common_parameters}

    Attributes
    ----------
{common_attributes}

    See Also
    --------
    AITMEstimator : Learnt information transfer between the stages.
    skmtl.datasets.make_funnel_synthetic : Impressions with known probabilities.

    Notes
    -----
    ``fit`` learns one binary task per stage on its *joint* label (1 where
    the row reached the stage), so ``predict`` returns the joint labels,
    ``score_tasks`` and ``score`` the joint labels' ROC AUC over all rows,
    and ``predict_proba`` both the joint and the conditional probabilities.
    ``loss_weights`` and ``class_weight`` are keyed by stage name.

    References
    ----------
    .. [1] X. Ma, L. Zhao, G. Huang, Z. Wang, Z. Hu, X. Zhu and K. Gai, "Entire
       Space Multi-Task Model: An Effective Approach for Estimating Post-Click
       Conversion Rate", SIGIR 2018.

    Examples
    --------
    >>> from skmtl import ESMMEstimator
    >>> from skmtl.datasets import make_funnel_synthetic
    >>> X, Y = make_funnel_synthetic(2000, random_state=0)
    >>> est = ESMMEstimator(funnel=["click", "purchase"], max_iter=2,
    ...                     random_state=0)
    >>> proba = est.fit(X, Y).predict_proba(X)
    >>> proba.shape  # rows, stages, (joint, conditional)
    (2000, 2, 2)
    >>> bool((proba[:, 1, 0] <= proba[:, 0, 0]).all())  # pCTCVR <= pCTR
    True
    """

    _parameter_constraints = {
        **MultiTaskEstimator._parameter_constraints,
        "funnel": [None, "array-like"],
    }
    _network_class = ESMM
    _own_parameters = {"funnel": None}

    def _network_params(self):
        return {}


@_with_common_docs
@_with_funnel_docs
class AITMEstimator(_FunnelMixin, MultiTaskEstimator):
    """Adaptive Information Transfer Multi-task model for a funnel (AITM).

    Each stage has its own tower on shared embeddings; an attention module
    decides, row by row, how much of the previous stage's representation to
    take in, and each stage predicts the probability of reaching it
    directly. A calibrator penalises a stage predicted more likely than the
    one before it (Xi et al., KDD 2021).

    Parameters
    ----------
    {funnel_parameter}
    calibrator_weight : float, default=0.6
        Weight of the behavioural expectation calibrator
        ``mean_rows sum_k max(p_k - p_(k-1), 0)`` in the loss (the paper's
        alpha; 0 turns it off).
{common_parameters}

    Attributes
    ----------
{common_attributes}

    See Also
    --------
    ESMMEstimator : Joint probabilities as products of conditional ones.

    Notes
    -----
    As for :class:`ESMMEstimator`, each stage is a binary task on its joint
    label, trained on all rows. The calibrator makes later stages no more
    likely than earlier ones but does not guarantee it, so the conditional
    probabilities of ``predict_proba`` are capped at 1.

    References
    ----------
    .. [1] D. Xi, Z. Chen, P. Yan, Y. Zhang, Y. Zhu, F. Zhuang and Y. Chen,
       "Modeling the Sequential Dependence among Audience Multi-step
       Conversions with Multi-task Learning in Targeted Display
       Advertising", KDD 2021.

    Examples
    --------
    >>> from skmtl import AITMEstimator
    >>> from skmtl.datasets import make_funnel_synthetic
    >>> X, Y = make_funnel_synthetic(2000, random_state=0)
    >>> est = AITMEstimator(funnel=["click", "purchase"], max_iter=2,
    ...                     random_state=0)
    >>> sorted(est.fit(X, Y).score_tasks(X, Y))
    ['click', 'purchase']
    """

    _parameter_constraints = {
        **MultiTaskEstimator._parameter_constraints,
        "funnel": [None, "array-like"],
        "calibrator_weight": [Interval(Real, 0, None, closed="left")],
    }
    _network_class = AITM
    _own_parameters = {"funnel": None, "calibrator_weight": 0.6}

    def _network_params(self):
        return {"calibrator_weight": self.calibrator_weight}


@_with_common_docs
class CrossStitchEstimator(MultiTaskEstimator):
    """Cross-stitch network: one column of layers per task, linearly mixed.

    Every task has its own MLP column; after each hidden layer a learnt
    ``K x K`` matrix mixes the K columns' outputs, so the network learns how
    much each task shares with each other (Misra et al., CVPR 2016).

    Parameters
    ----------
    column_hidden_sizes : tuple of int, default=(64, 32)
        Hidden layers of each task's column; a cross-stitch unit follows
        every one.
    stitch_init : float, default=0.9
        Initial weight of a task's own column in each cross-stitch unit; the
        other tasks' columns share ``1 - stitch_init`` equally, so the
        matrices start near the identity with rows summing to 1 (the paper's
        best initialisation for two tasks is 0.9 and 0.1).
{common_parameters}

    Attributes
    ----------
{common_attributes}

    See Also
    --------
    SharedBottomEstimator : One shared MLP for all tasks.
    MMoEClassifierRegressor : Shared experts mixed by task gates.

    References
    ----------
    .. [1] I. Misra, A. Shrivastava, A. Gupta and M. Hebert, "Cross-stitch
       Networks for Multi-task Learning", CVPR 2016.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmtl import CrossStitchEstimator
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({{"a": rng.normal(size=200), "b": rng.normal(size=200)}})
    >>> Y = pd.DataFrame({{"pos": (X.a > 0).astype(int), "value": X.a - X.b}})
    >>> est = CrossStitchEstimator(max_iter=3, random_state=0).fit(X, Y)
    >>> est.module_.stitches.shape  # one 2 x 2 matrix per hidden layer
    torch.Size([2, 2, 2])
    """

    _parameter_constraints = {
        **MultiTaskEstimator._parameter_constraints,
        "column_hidden_sizes": ["array-like"],
        "stitch_init": [Interval(Real, 0, 1, closed="both")],
    }
    _network_class = CrossStitch
    _own_parameters = {"column_hidden_sizes": (64, 32), "stitch_init": 0.9}

    def _network_params(self):
        return {
            "column_hidden_sizes": positive_sizes(
                self.column_hidden_sizes, "column_hidden_sizes", allow_empty=False
            ),
            "stitch_init": self.stitch_init,
        }


@_with_common_docs
class STAREstimator(MultiTaskEstimator):
    """Star Topology Adaptive Recommender: one model for several domains (STAR).

    Rows come from several domains (scenarios, markets, surfaces) named by
    ``domain_column``. The network normalises each domain with its own
    statistics (partitioned normalisation), runs a star-topology MLP whose
    layers multiply shared weights with the row's domain's weights, and adds
    to every task's logit that of an auxiliary network reading the domain's
    embedding (Sheng et al., CIKM 2021). Every task of y gets its own tower
    and output.

    Parameters
    ----------
    domain_column : str
        The column of X holding each row's domain. It is always encoded as
        categorical (added to the encoder's ``categorical_columns``), and
        stays an input feature too.
    star_hidden_sizes : tuple of int, default=(64, 32)
        Hidden layers of the star-topology MLP.
    auxiliary_hidden_sizes : tuple of int, default=(32,)
        Hidden layers of the auxiliary network; ``()`` makes it linear.
{common_parameters}

    Attributes
    ----------
{common_attributes}

    See Also
    --------
    skmtl.datasets.make_multidomain_synthetic : Domains sharing part of the signal.
    SharedBottomEstimator : One MLP for all rows, the domain an ordinary feature.

    Notes
    -----
    A domain not seen in ``fit`` (or rarer than the encoder's
    ``min_frequency``), and a missing domain, take the shared path: the
    statistics of all rows in the normalisation, the shared weights alone in
    the star layers and no domain embedding in the auxiliary network.

    The domain's parameters are selected by products with each row's one-hot
    domain, which keeps training deterministic; a star layer then costs
    about as much as ``n_domains`` plain layers, which suits the few domains
    STAR is meant for.

    Partitioned normalisation brings every input dimension, embeddings
    included, to unit variance within its domain; with many binned numeric
    columns on little data this can overfit, and ``FeatureEncoder(n_bins=0)``
    may do better on continuous inputs.

    References
    ----------
    .. [1] X.-R. Sheng, L. Zhao, G. Zhou, X. Ding, B. Dai, Q. Luo, S. Yang,
       J. Lv, C. Zhang, H. Deng and X. Zhu, "One Model to Serve All: Star
       Topology Adaptive Recommender for Multi-Domain CTR Prediction", CIKM
       2021.

    Examples
    --------
    >>> from skmtl import STAREstimator
    >>> from skmtl.datasets import make_multidomain_synthetic
    >>> X, Y = make_multidomain_synthetic(2000, random_state=0)
    >>> est = STAREstimator(domain_column="domain", max_iter=2, random_state=0)
    >>> est.fit(X, Y).predict_proba(X)[0].shape
    (2000, 2)
    """

    _parameter_constraints = {
        **MultiTaskEstimator._parameter_constraints,
        "domain_column": [None, str, Integral],
        "star_hidden_sizes": ["array-like"],
        "auxiliary_hidden_sizes": ["array-like"],
    }
    _network_class = STAR
    _own_parameters = {
        "domain_column": None,
        "star_hidden_sizes": (64, 32),
        "auxiliary_hidden_sizes": (32,),
    }

    def _network_params(self):
        if self.domain_column is None:
            raise ValueError(
                "STAREstimator needs domain_column: the column of X that holds "
                "each row's domain."
            )
        return {
            "star_hidden_sizes": positive_sizes(
                self.star_hidden_sizes, "star_hidden_sizes", allow_empty=False
            ),
            "auxiliary_hidden_sizes": positive_sizes(
                self.auxiliary_hidden_sizes, "auxiliary_hidden_sizes", allow_empty=True
            ),
        }

    def _training_data(self, X, y, sample_weight, reset, comm):
        if reset:
            if is_dask_collection(X):
                columns = list(X.columns)
            else:
                columns = list(as_feature_frame(self, X, reset=True).columns)
            if self.domain_column not in columns:
                raise ValueError(
                    f"domain_column {self.domain_column!r} is not a column of X; "
                    f"X has {format_names(columns)}."
                )
        return super()._training_data(X, y, sample_weight, reset, comm)

    def _make_encoder(self):
        """Clone the encoder with ``domain_column`` among its categorical columns."""
        encoder = super()._make_encoder()
        params = encoder.get_params()
        if "categorical_columns" not in params:
            raise ValueError(
                "STAREstimator declares domain_column categorical through the "
                "encoder's categorical_columns, which "
                f"{type(encoder).__name__} does not have."
            )
        column = self.domain_column
        categorical = params["categorical_columns"]
        numeric = params.get("numeric_columns")
        if numeric is not None and column in list(numeric):
            raise ValueError(
                f"domain_column {column!r} is in the encoder's numeric_columns; a "
                "domain is categorical: remove it from numeric_columns."
            )
        if categorical is None and numeric is not None:
            # Declaring both lists would make the encoder use only those.
            raise ValueError(
                "The encoder declares numeric_columns but not categorical_columns; "
                f"STAREstimator must add domain_column {column!r} to "
                "categorical_columns, which would then drop every column in neither "
                "list. List the categorical columns (with the domain) explicitly."
            )
        categorical = list(categorical or [])
        if column not in categorical:
            encoder.set_params(categorical_columns=[*categorical, column])
        return encoder

    def _build_network(self, network_params):
        index = list(self.encoder_.categorical_columns_).index(self.domain_column)
        return super()._build_network({**network_params, "domain_index": index})
