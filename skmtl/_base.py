"""The base class every skmtl estimator shares: fit, predict, score, pickling.

Subclasses only say which network to build and with which architecture
parameters (:meth:`_network_class`, :meth:`_network_params`); this module
knows nothing of the layers inside.
"""

import copy
import os

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, MultiOutputMixin, clone
from sklearn.utils import check_random_state

from skmtl import _dask

from skmtl._data import InMemoryData, feature_batch
from skmtl._device import loadable_device, resolve_precision
from skmtl._distributed import connect
from skmtl._encoder import FeatureEncoder
from skmtl._losses import MultiTaskLoss
from skmtl._monitor import (
    DivergenceGuard,
    History,
    ProgressLog,
    ValidationMonitor,
    parse_metric,
)
from skmtl._options import make_optimizer, make_scheduler, resolve_class_weight
from skmtl._targets import as_target_frame
from skmtl._training import PREDICT_BATCH_SIZE, Trainer, predict_logits
from skmtl._validation import (
    HasMethods,
    Integral,
    Interval,
    Real,
    StrOptions,
    as_feature_frame,
    is_dask_collection,
    check_is_fitted,
    check_sample_weight,
    positive_sizes,
)
from skmtl.weighting import resolve_weighting

_COMMON_PARAMETER_DOCS = """
    embedding_dim : int, default=8
        Size of the embedding of every categorical column.
    tower_hidden_sizes : tuple of int, default=(32,)
        Hidden layers of each task's tower; ``()`` gives a linear head.
    dropout : float, default=0.0
        Dropout probability after every hidden activation.
    batch_size : int, default=256
        Rows per optimisation step of each process: a fit over several
        processes (see ``distributed``) steps on ``batch_size`` times their
        number of rows, as PyTorch's DistributedDataParallel does.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    max_iter : int, default=10
        Number of epochs.
    task_types : "auto", dict or list, default="auto"
        Type of each task: ``"binary"``, ``"multiclass"``, ``"regression"``,
        ``"poisson"`` (counts) or a :class:`skmtl.tasks.Task` subclass.
        ``"auto"`` infers it like :func:`sklearn.utils.multiclass.type_of_target`:
        two distinct labels are binary, more integer or string labels
        multiclass, non-integer numbers regression. A dict maps task names to
        types (others stay ``"auto"``); a list gives one type per task.
    loss_weights : None, dict, list, str or object, default=None
        How task losses combine. None: each task weighs 1. A dict (task name
        -> weight, others 1) or a list gives static weights; ``"uncertainty"``
        learns them (Kendall et al. 2018); ``"gradnorm"`` balances gradient
        norms (Chen et al. 2018); a :mod:`skmtl.weighting` object such as
        ``DynamicWeights`` (the PLE paper's schedule), your own object with a
        ``combine`` method, or a function ``f(task_losses) -> total``.
    device : str or torch.device, default="auto"
        Where to train and predict: ``"auto"`` (CUDA when available, else
        CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``... In a fit over several
        processes ``"auto"`` and ``"cuda"`` mean ``cuda:LOCAL_RANK``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and dropout. The same integer
        on the same device gives identical predictions.
    verbose : int, default=0
        0 prints nothing; 1 shows a progress bar per epoch (tqdm, on stderr)
        ending with each task's training (and validation) loss, or prints one
        line per epoch when tqdm is not installed.
    encoder : FeatureEncoder or None, default=None
        Encoder to clone and fit on X; None uses ``FeatureEncoder()``.
    early_stopping : bool, default=False
        Stop when ``validation_metric`` has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and restore the best epoch's weights.
        Validation data is ``fit``'s ``eval_set``, else a random
        ``validation_fraction`` of the training rows.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` has no
        ``eval_set``.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Smallest change of the monitored metric that counts as improvement.
    validation_metric : str, default="loss"
        What early stopping monitors: ``"loss"`` (mean validation loss over
        tasks), ``"score"`` (mean of the tasks' scores, see :meth:`score`),
        ``"loss:<task>"`` or ``"score:<task>"`` for one task.
    class_weight : None, "balanced" or dict, default=None
        Per-class loss weights of classification tasks: ``"balanced"`` for
        every one, or a dict from task name to ``"balanced"`` or to a dict
        {label: weight} (labels not listed weigh 1). Multiplies
        ``sample_weight``.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        Optimiser, built as ``optimizer(params, lr=learning_rate_init,
        weight_decay=weight_decay)``.
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``).
    warm_start : bool, default=False
        When True and the model is fitted, ``fit`` trains ``max_iter`` more
        epochs from the current weights (same encoder, tasks and optimizer);
        ``history_`` and ``n_iter_`` count on.
    lr_scheduler : None, "cosine" or callable, default=None
        Learning-rate schedule, stepped after every epoch: ``"cosine"``
        anneals to 0 over ``max_iter`` epochs; a callable gets the optimizer
        and returns a ``torch.optim.lr_scheduler`` (e.g.
        ``lambda opt: StepLR(opt, step_size=2)``).
    max_grad_norm : float or None, default=None
        Clip the gradients' global norm to this value at every step.
    multi_valued_pooling : {"mean", "sum"}, default="mean"
        How the embeddings of a multi-valued column's values (a list of tags,
        say) are pooled into one vector per row.
    precision : {"fp32", "bf16", "auto"}, default="fp32"
        Arithmetic of the forward passes in training and prediction.
        ``"bf16"`` runs them under :func:`torch.autocast` in bfloat16 (weights,
        gradients, optimizer state, losses and metrics stay float32), which is
        faster where the hardware computes bfloat16 natively: CUDA GPUs that
        support it, and CPUs with AVX512-BF16 or AMX. Elsewhere it works but is
        slower. ``"auto"`` is ``"bf16"`` on such hardware, else ``"fp32"``.
    buffer_partitions : int, default=2
        When X is a Dask DataFrame: how many partitions a training epoch
        shuffles together. Partitions come in a random order, in groups of
        this many whose rows are shuffled; the next group is loaded and
        encoded in the background while the current one trains, so memory
        holds about twice this many partitions, whatever the number of rows.
        Larger mixes rows better, at that cost.
    distributed : "auto" or bool, default="auto"
        Train as one process of a DistributedDataParallel fit. ``"auto"``
        does when the script was launched by ``torchrun`` (or has ``RANK``
        and ``WORLD_SIZE`` > 1 in its environment, or an initialised default
        process group), initialising the process group if needed (gloo on
        the CPU, NCCL on CUDA). ``True`` requires such a launch; ``False``
        trains this process alone, e.g. inside your own DDP script. Every
        process must call ``fit`` with the same data; the tasks and encoder
        fitted on rank 0 are sent to the others, each process trains on its
        share of every global batch, and every process ends with the same
        model.
    checkpoint_dir : str, path-like or None, default=None
        Folder where ``fit`` writes checkpoints, and from which it resumes.
        Every ``checkpoint_every`` epochs (and after the last one) a file
        ``checkpoint-<epoch>.safetensors`` holds everything training needs to
        continue (weights, optimizer, schedule, task weighting, early-stopping
        state, random generators, history, encoder, tasks), written to a
        temporary file and renamed, in the format of :meth:`save` (nothing is
        unpickled). When ``fit`` finds a checkpoint there, it continues from the
        newest one: the model is then bit for bit the one an uninterrupted fit
        gives, so rerunning the same script after a crash finishes the job. A
        checkpoint of other data or other parameters is refused with an error
        saying what differs (all parameters count except ``verbose``, the
        ``checkpoint_*`` ones, ``warm_start`` and ``max_iter``, which may grow,
        unless ``lr_scheduler="cosine"`` whose schedule depends on it). Use one
        folder per model, seen by every process of a distributed fit (rank 0
        writes). ``partial_fit`` neither writes nor reads checkpoints.
    checkpoint_every : int, default=1
        Epochs between checkpoints.
    checkpoint_keep : int, default=1
        How many of the newest checkpoints to keep; older ones are deleted.
"""

_COMMON_ATTRIBUTE_DOCS = """
    task_names_ : list of str
        Task names: the columns of Y, or ``"task_0"``... for arrays.
    task_types_ : list of str
        Type of each task.
    classes_ : list of ndarray or None
        Sorted labels of each classification task; None for regression.
    tasks_ : list of skmtl.tasks.Task
        The fitted task objects (type, classes, target scaling).
    encoder_ : FeatureEncoder
        The fitted encoder.
    module_ : torch.nn.Module
        The fitted network.
    device_ : torch.device
        Device the network lives on.
    n_features_in_ : int
        Number of columns of X seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of X, when they are all strings.
    precision_ : {"fp32", "bf16"}
        The arithmetic ``precision`` resolved to on ``device_``.
    history_ : list of dict
        One dict per epoch: ``epoch``, ``train_loss`` (weighted total),
        ``train_loss_per_task`` (task name -> mean loss over labelled rows),
        ``task_weights`` (task name -> weight used in that epoch) and
        ``duration`` (wall seconds of the epoch's training steps); with
        validation data also ``valid_loss_per_task`` and
        ``valid_score_per_task``.
    best_iteration_ : int or None
        Epoch whose weights were restored by early stopping (None without).
    weighting_ : skmtl.weighting.TaskWeighting
        The fitted task-weighting strategy (a copy of ``loss_weights``).
    loss_curve_ : list of float
        ``train_loss`` of each epoch.
    n_iter_ : int
        Number of epochs run (in total, with ``warm_start`` or
        ``partial_fit``).
"""


# Keyword-only parameters of every estimator, with their defaults, in order.
# Defaults are immutable, as scikit-learn's clone requires.
COMMON_DEFAULTS = {
    "embedding_dim": 8,
    "tower_hidden_sizes": (32,),
    "dropout": 0.0,
    "batch_size": 256,
    "learning_rate_init": 1e-3,
    "max_iter": 10,
    "task_types": "auto",
    "loss_weights": None,
    "device": "auto",
    "random_state": None,
    "verbose": 0,
    "encoder": None,
    "early_stopping": False,
    "validation_fraction": 0.1,
    "n_iter_no_change": 5,
    "tol": 1e-4,
    "validation_metric": "loss",
    "class_weight": None,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "warm_start": False,
    "lr_scheduler": None,
    "max_grad_norm": None,
    "multi_valued_pooling": "mean",
    "precision": "fp32",
    "buffer_partitions": 2,
    "distributed": "auto",
    "checkpoint_dir": None,
    "checkpoint_every": 1,
    "checkpoint_keep": 1,
}


def _check_eval_tasks(names, named, task_names):
    """``eval_set``'s y must hold the training tasks (in order, when named)."""
    if len(names) != len(task_names) or (named and names != task_names):
        raise ValueError(
            f"eval_set's y has tasks {names} but y has {task_names}; they must be "
            "the same tasks."
        )


def make_init(own, common=None):
    """Write an estimator's ``__init__``: its own parameters, then the common ones.

    scikit-learn reads an estimator's parameters from the signature of its
    ``__init__``, which must store each argument unchanged. Every estimator
    shares some 25 parameters; rather than repeat them in each class (and in
    each new one), the ``__init__`` is generated with an explicit signature,
    as :mod:`dataclasses` does: ``own`` positional-or-keyword, the common ones
    keyword-only.

    Parameters
    ----------
    own : dict
        The estimator's own parameters and their defaults, in order.
    common : dict, default=None
        The shared keyword-only parameters; :data:`COMMON_DEFAULTS` when None.

    Returns
    -------
    function
    """
    common = COMMON_DEFAULTS if common is None else common
    defaults = {**own, **common}
    own_args = "".join(f", {name}=_defaults[{name!r}]" for name in own)
    common_args = ", ".join(f"{name}=_defaults[{name!r}]" for name in common)
    body = "".join(f"\n    self.{name} = {name}" for name in defaults)
    namespace = {"_defaults": defaults}
    exec(f"def __init__(self{own_args}, *, {common_args}):{body}", namespace)  # noqa: S102
    return namespace["__init__"]


class MultiTaskEstimator(MultiOutputMixin, BaseEstimator):
    """Shared machinery of the skmtl estimators; not used directly.

    Subclasses set ``_network_class``, implement ``_network_params`` and get
    their ``__init__`` from :func:`make_init` (``__init_subclass__`` does it
    from the class attribute ``_own_parameters``).
    """

    _parameter_constraints = {
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "tower_hidden_sizes": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "task_types": [StrOptions({"auto"}), dict, list, tuple],
        "loss_weights": [
            None,
            dict,
            list,
            tuple,
            StrOptions({"uncertainty", "gradnorm"}),
            HasMethods(["combine"]),
            callable,
        ],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "encoder": [None, HasMethods(["fit", "encode"])],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "validation_metric": [str],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "optimizer": [StrOptions({"adam", "adamw", "sgd"}), type],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "lr_scheduler": [None, StrOptions({"cosine"}), callable],
        "max_grad_norm": [None, Interval(Real, 0, None, closed="neither")],
        "multi_valued_pooling": [StrOptions({"mean", "sum"})],
        "precision": [StrOptions({"fp32", "bf16", "auto"})],
        "buffer_partitions": [Interval(Integral, 1, None, closed="left")],
        "distributed": [StrOptions({"auto"}), "boolean"],
        "checkpoint_dir": [None, str, os.PathLike],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
        "checkpoint_keep": [Interval(Integral, 1, None, closed="left")],
    }

    # -- what subclasses provide -------------------------------------------------

    _network_class = None
    _own_parameters = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__ and cls._network_class is not None:
            cls.__init__ = make_init(cls._own_parameters)
            cls.__init__.__qualname__ = f"{cls.__name__}.__init__"

    def _network_params(self):
        """Return the architecture keyword arguments of the network."""
        raise NotImplementedError

    def _validate_params(self):
        """scikit-learn's parameter checks, then those its constraints cannot say."""
        super()._validate_params()
        for name in ("encoder", "loss_weights"):
            value = getattr(self, name)
            if isinstance(value, type):
                raise TypeError(
                    f"{name} is the class {value.__name__}; pass an instance, "
                    f"e.g. {name}={value.__name__}()."
                )

    # -- fit ---------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the encoder and train the network on every task at once.

        Parameters
        ----------
        X : DataFrame, dask DataFrame or array-like of shape (n_samples, n_features)
            Raw features: strings, categories, booleans, numbers, NaN. A Dask
            DataFrame is streamed partition by partition, never held whole
            (see ``buffer_partitions``); y and ``sample_weight`` must then be
            Dask collections with its partitions.
        y : DataFrame, Series or array-like of shape (n_samples, n_tasks) or (n_samples,)
            One column per task; NaN marks a row outside that task's sample
            space (excluded from that task's loss only).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row in every task's loss.
        eval_set : tuple (X_val, y_val), default=None
            Validation data scored after every epoch (recorded in
            ``history_``) and, with ``early_stopping=True``, monitored instead
            of a ``validation_fraction`` split (of whole partitions, for a
            Dask X). May be pandas or Dask collections.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        warm = self.warm_start and hasattr(self, "module_")
        return self._fit(
            X, y, sample_weight, eval_set, self.max_iter, reset=not warm, checkpoint=True
        )

    def partial_fit(self, X, y, sample_weight=None):
        """Train one epoch on a chunk of rows, continuing from earlier calls.

        The first call fits the encoder, the tasks (types and classes) and
        the network on its chunk; later calls reuse them, so the first chunk
        must hold every class of every classification task. Categories
        unseen in the first chunk are encoded as unknown (code 0), like
        unseen categories at prediction. The optimizer's state carries over
        between calls (but not through pickling).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A chunk of raw features.
        y : DataFrame, Series or array-like of shape (n_samples, n_tasks) or (n_samples,)
            Its targets, with the same task columns on every call.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row in every task's loss.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = not hasattr(self, "module_")
        if first:
            self._validate_params()
        return self._fit(X, y, sample_weight, None, 1, reset=first)

    def _fit(self, X, y, sample_weight, eval_set, n_epochs, reset, checkpoint=False):
        """Train ``n_epochs``; from scratch when ``reset``, else continuing.

        With ``checkpoint`` and a ``checkpoint_dir``, write checkpoints and,
        from scratch, resume from the newest one.
        """
        if reset:
            network_params = self._network_params()
            positive_sizes(self.tower_hidden_sizes, "tower_hidden_sizes", allow_empty=True)
        comm, device = connect(self.distributed, self.device if reset else self.device_)
        try:
            with _dask.worker_threads():
                data = self._training_data(X, y, sample_weight, reset, comm)
                self._check_same_data(data, comm)
                if reset:
                    self.tasks_ = comm.on_root(lambda: data.fit_tasks(self.task_types))
                else:
                    self._check_same_tasks(data.task_names)
                class_weights = resolve_class_weight(self.class_weight, self.tasks_)
                # Every process draws the same seeds and validation split.
                random_state = comm.broadcast(check_random_state(self.random_state))
                seed = random_state.randint(np.iinfo(np.int32).max)
                train, validation = self._split_validation(
                    data, eval_set, random_state, comm
                )
                if reset:
                    encoder = self._make_encoder()
                    self.encoder_ = comm.on_root(lambda: train.fit_encoder(encoder))
                    self.device_ = device
                    self.precision_ = resolve_precision(self.precision, self.device_)
                source = train.batch_source(
                    self.encoder_, self.tasks_, class_weights, self.device_,
                    batch_size=self.batch_size, seed=seed, comm=comm,
                )  # fmt: skip
                monitor = None if validation is None else self._monitor(validation)
                checkpoints = None
                if checkpoint and self.checkpoint_dir is not None:
                    from skmtl._checkpoint import Checkpoints  # avoids an import cycle

                    checkpoints = Checkpoints(self, data, source, monitor, comm)
                with torch.random.fork_rng(devices=self._rng_devices()):
                    torch.manual_seed(seed)
                    if reset:
                        self.module_ = self._build_network(network_params)
                        self._start_training()
                        if checkpoints is not None:
                            n_epochs = checkpoints.resume(self)
                    self._train(source, monitor, n_epochs, comm, checkpoints)
        except BaseException:
            if reset and not getattr(self, "history_", None):
                self._forget_fit()  # no epoch completed: not fitted at all
            raise
        return self

    def _forget_fit(self):
        """Remove every fitted attribute, leaving the estimator as constructed."""
        for name in list(vars(self)):
            fitted = name.endswith("_") and not name.startswith("__")
            if fitted or name in ("_optimizer", "_scheduler", "_y_is_1d"):
                delattr(self, name)

    def _training_data(self, X, y, sample_weight, reset, comm):
        """Check ``fit``'s arguments and wrap them as training data."""
        if is_dask_collection(X) or is_dask_collection(y):
            return _dask.training_data(self, X, y, sample_weight, reset, comm)
        frame = as_feature_frame(self, X, reset=reset)
        targets, y_is_1d = as_target_frame(y, len(frame))
        if reset:
            self._y_is_1d = y_is_1d
        weights = check_sample_weight(sample_weight, len(frame))
        return InMemoryData(frame, targets, weights)

    def _make_encoder(self):
        """Return the unfitted encoder ``fit`` fits: a clone of ``encoder``.

        An estimator whose network needs a column encoded a certain way (a
        domain column as categorical codes) overrides it.
        """
        return clone(self.encoder if self.encoder is not None else FeatureEncoder())

    @staticmethod
    def _check_same_data(data, comm):
        """The processes of a distributed fit must all pass the same rows."""
        first = comm.broadcast(data.n_samples)
        if comm.any(data.n_samples != first):
            raise ValueError(
                f"This process has {data.n_samples} rows and rank 0 has {first}; "
                "every process of a distributed fit must pass the same data (each "
                "trains on its share of every batch)."
            )

    def _check_same_tasks(self, names):
        """Continued training must see the tasks the model was built for."""
        if names != self.task_names_:
            raise ValueError(
                f"y has tasks {names} but the model was fitted on {self.task_names_}; "
                "continued training (warm_start, partial_fit) needs the same tasks."
            )

    def _split_validation(self, data, eval_set, random_state, comm):
        """Return the training data and the validation data (or None).

        Validation is ``eval_set`` when given, else a random
        ``validation_fraction`` of the rows when ``early_stopping``, else None.
        """
        if eval_set is not None:
            return data, self._eval_data(eval_set, data, comm)
        if not self.early_stopping:
            return data, None
        return data.split(self.validation_fraction, random_state)

    def _eval_data(self, eval_set, data, comm):
        """Check ``eval_set`` against the training tasks and wrap it."""
        if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
            raise ValueError("eval_set must be a pair (X_val, y_val).")
        if is_dask_collection(eval_set[0]) or is_dask_collection(eval_set[1]):
            validation = _dask.eval_data(*eval_set, comm)
            _check_eval_tasks(validation.task_names, True, data.task_names)
            return validation
        X_val = as_feature_frame(self, eval_set[0], reset=False)
        y_val, _ = as_target_frame(eval_set[1], len(X_val))
        named = isinstance(eval_set[1], (pd.DataFrame, pd.Series))
        _check_eval_tasks([str(c) for c in y_val.columns], named, data.task_names)
        # Arrays carry no names: their columns are the tasks in order.
        y_val = y_val.set_axis(data.task_names, axis=1)
        return InMemoryData(X_val, y_val, np.ones(len(X_val)))

    def _monitor(self, validation):
        """Build the validation callback for ``history_`` and early stopping."""
        batches = validation.evaluation_batches(
            self.encoder_, self.tasks_, self.device_
        )
        return ValidationMonitor(
            batches,
            MultiTaskLoss(self.tasks_).to(self.device_),
            lambda logits: self._scores_from_logits(logits, validation.targets, strict=False),
            self.task_names_,
            self.validation_metric,
            self.tol,
            self.n_iter_no_change if self.early_stopping else None,
        )

    def _rng_devices(self):
        return [self.device_] if self.device_.type == "cuda" else []

    def _features(self, frame):
        """Encode a feature frame into a FeatureBatch on the device."""
        return feature_batch(self.encoder_.encode(frame), self.device_)

    def _build_network(self, network_params):
        """Instantiate the network from the encoder's and tasks' sizes.

        It is built on the CPU, then moved: the CPU's generator draws the
        initial weights, so the same seed starts from the same weights on any
        device.
        """
        return self._network_class(
            self.encoder_.cardinalities_,
            len(self.encoder_.numeric_columns_),
            [task.n_outputs for task in self.tasks_],
            embedding_dim=self.embedding_dim,
            tower_hidden_sizes=tuple(self.tower_hidden_sizes),
            dropout=self.dropout,
            bag_cardinalities=self.encoder_.multi_valued_cardinalities_,
            bag_mode=self.multi_valued_pooling,
            device=torch.device("cpu"),
            **network_params,
        ).to(self.device_)

    def _start_training(self):
        """Create the weighting, optimizer and history that training continues."""
        self.weighting_ = resolve_weighting(self.loss_weights, self.task_names_)
        self.weighting_.setup(len(self.tasks_), self.module_.shared_parameters())
        self._optimizer = self._make_optimizer()
        self._scheduler = make_scheduler(self.lr_scheduler, self._optimizer, self.max_iter)
        self.history_, self.loss_curve_, self.n_iter_ = [], [], 0

    def _make_optimizer(self):
        parameters = [*self.module_.parameters(), *self.weighting_.parameters()]
        return make_optimizer(
            self.optimizer, parameters, self.learning_rate_init, self.weight_decay
        )

    def _callbacks(self, monitor, last_epoch):
        """The collaborators of this fit's training loop, in calling order."""
        # A check waits for the device: every batch on the CPU, less on others.
        every = 1 if self.device_.type == "cpu" else 50
        callbacks = [DivergenceGuard(self.task_names_, every=every)]
        if monitor is None:  # unused without validation data, but still checked
            parse_metric(self.validation_metric, self.task_names_)
        else:
            callbacks.append(monitor)
        scheduler = getattr(self, "_scheduler", None)
        callbacks.append(History(self.history_, self.task_names_, self.weighting_, scheduler))
        if self.verbose:
            callbacks.append(ProgressLog(last_epoch))
        return callbacks

    def _autocast_dtype(self):
        return torch.bfloat16 if self.precision_ == "bf16" else None

    def _train(self, source, monitor, n_epochs, comm, checkpoints=None):
        """Run the shared training loop for ``n_epochs`` and record the history."""
        if getattr(self, "_optimizer", None) is None:  # e.g. after unpickling
            self._optimizer = self._make_optimizer()
        epochs = range(self.n_iter_ + 1, self.n_iter_ + n_epochs + 1)
        last_epoch = self.n_iter_ + n_epochs
        callbacks = self._callbacks(monitor, last_epoch)
        if checkpoints is not None:
            guard = callbacks[0]  # the DivergenceGuard comes first
            callbacks.append(checkpoints.callback(self, guard, monitor, last_epoch))
        trainer = Trainer(
            self.module_,
            self._optimizer,
            MultiTaskLoss(self.tasks_).to(self.device_),
            self.weighting_,
            comm=comm,
            max_grad_norm=self.max_grad_norm,
            callbacks=callbacks,
            autocast_dtype=self._autocast_dtype(),
        )
        try:
            trainer.fit(source, epochs)
        finally:
            self._record_training(trainer, monitor)

    def _record_training(self, trainer, monitor):
        """Make the history and counters describe exactly the epochs completed."""
        last = trainer.epochs_completed[-1] if trainer.epochs_completed else self.n_iter_
        # An epoch interrupted after it was recorded does not count.
        self.history_[:] = [record for record in self.history_ if record["epoch"] <= last]
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = [record["train_loss"] for record in self.history_]
        use_best = monitor is not None and self.early_stopping
        self.best_iteration_ = monitor.best_epoch if use_best else None

    # -- fitted views of the tasks -----------------------------------------------

    @property
    def task_names_(self):
        """Task names, in the column order of Y."""
        check_is_fitted(self, "tasks_")
        return [task.name for task in self.tasks_]

    @property
    def task_types_(self):
        """Type of each task."""
        check_is_fitted(self, "tasks_")
        return [task.kind for task in self.tasks_]

    @property
    def classes_(self):
        """Sorted class labels of each task (None for regression)."""
        check_is_fitted(self, "tasks_")
        return [task.classes for task in self.tasks_]

    # -- prediction --------------------------------------------------------------

    def _logits(self, X):
        """Return the network's outputs for X as a float64 numpy array."""
        check_is_fitted(self, "module_")
        frame = as_feature_frame(self, X, reset=False)
        features = self._features(frame)
        with self._prediction_autocast():
            logits = predict_logits(self.module_, features, PREDICT_BATCH_SIZE)
        return logits.double().numpy()

    def _prediction_autocast(self):
        """Predict in the arithmetic the model was trained in."""
        dtype = self._autocast_dtype()
        return torch.autocast(self.device_.type, dtype=dtype, enabled=dtype is not None)

    def _task_outputs(self, logits):
        """Yield (task, that task's slice of the logits)."""
        start = 0
        for task in self.tasks_:
            yield task, logits[:, start : start + task.n_outputs]
            start += task.n_outputs

    def predict(self, X):
        """Predict every task.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw features with at least the columns seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_tasks) or (n_samples,)
            Column ``k`` predicts ``task_names_[k]``: a class label, or a value
            for a regression task. 1-D when ``fit`` got a 1-D y. The dtype is
            object when labels of different types are mixed.
        """
        if is_dask_collection(X):
            return _dask.predict(self, X)
        return self._predictions_from_logits(self._logits(X))

    def _predictions_from_logits(self, logits):
        columns = [t.decode(out) for t, out in self._task_outputs(logits)]
        if self._y_is_1d:
            return columns[0]
        return np.column_stack(columns)

    def predict_proba(self, X):
        """Predict class probabilities of every classification task.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw features with at least the columns seen in ``fit``.

        Returns
        -------
        list of (ndarray of shape (n_samples, n_classes) or None)
            One entry per task, in the order of ``task_names_``, as
            :class:`sklearn.multioutput.MultiOutputClassifier` does. Columns
            follow ``classes_[k]``. A regression task has no probabilities: its
            entry is None (use :meth:`predict`). With a 1-D y in ``fit``, the
            single task's array is returned instead of a list.
        """
        if is_dask_collection(X):
            return _dask.predict_proba(self, X)
        logits = self._logits(X)
        probas = [self._probas_from_logits(logits, k) for k in range(len(self.tasks_))]
        return probas[0] if self._y_is_1d else probas

    def _probas_from_logits(self, logits, task_index):
        """The probabilities of task ``task_index`` (None for regression)."""
        task, outputs = list(self._task_outputs(logits))[task_index]
        return task.predict_proba(outputs)

    def score_tasks(self, X, y):
        """Score each task on its labelled rows.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw features.
        y : DataFrame, Series or array-like of shape (n_samples, n_tasks) or (n_samples,)
            True targets; NaN rows are ignored for that task.

        Returns
        -------
        dict
            Task name -> score: ROC AUC for a binary task, accuracy for a
            multiclass task, R² for a regression task, D² for a count.
        """
        if is_dask_collection(X):
            return _dask.score_tasks(self, X, y)
        return self._score_logits(self._logits(X), y)

    def _score_logits(self, logits, y):
        """Per-task scores of computed outputs against ``score_tasks``'s y."""
        targets, _ = as_target_frame(y, len(logits))
        return self._scores_from_logits(logits, targets, strict=True)

    def _scores_from_logits(self, logits, targets, strict):
        """Per-task scores of ``logits`` against ``targets``.

        With ``strict=False`` an undefined score (one class only) is NaN
        instead of an error, for monitoring.
        """
        if targets.shape[1] != len(self.tasks_):
            raise ValueError(
                f"y has {targets.shape[1]} tasks but the model was fitted on "
                f"{len(self.tasks_)}: {self.task_names_}."
            )
        targets = self._tasks_by_name(targets)
        scores = {}
        for k, (task, out) in enumerate(self._task_outputs(logits)):
            labelled = targets.iloc[:, k].notna().to_numpy()
            y_true = targets.iloc[:, k].to_numpy()[labelled]
            try:
                scores[task.name] = task.score(y_true, out[labelled])
            except ValueError:
                if strict:
                    raise
                scores[task.name] = float("nan")
        return scores

    def _tasks_by_name(self, targets):
        """Put named target columns in the order of the tasks.

        Columns named ``task_0``, ``task_1``... (an array's) are taken in
        order; other names must be the tasks' names, in any order.
        """
        names = [str(c) for c in targets.columns]
        if len(names) < 2 or names == self.task_names_:
            return targets
        if names == [f"task_{k}" for k in range(len(names))]:
            return targets
        if sorted(names) != sorted(self.task_names_):
            raise ValueError(
                f"y has tasks {names} but the model was fitted on "
                f"{self.task_names_}; name y's columns after the tasks (in any "
                "order), or pass an array in the tasks' order."
            )
        return targets.iloc[:, [names.index(task) for task in self.task_names_]]

    def score(self, X, y, sample_weight=None):
        """Return the mean over tasks of each task's score.

        Each task is scored on its labelled rows: ROC AUC for a binary task
        (accuracy would hide a rare positive class), accuracy for a multiclass
        task (one-vs-rest AUC is undefined when a class is absent from a
        cross-validation fold), R² for a regression task. Use
        :func:`skmtl.metrics.make_task_scorer` to select on one task.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw features.
        y : DataFrame, Series or array-like of shape (n_samples, n_tasks) or (n_samples,)
            True targets; NaN rows are ignored for that task.
        sample_weight : None
            Not supported; must be None.

        Returns
        -------
        float
        """
        if sample_weight is not None:
            raise ValueError("score does not support sample_weight; pass None.")
        return float(np.mean(list(self.score_tasks(X, y).values())))

    # -- persistence -------------------------------------------------------------

    def save(self, path):
        """Save the fitted model to a file that loads without running code.

        The network's weights go in a `safetensors
        <https://github.com/huggingface/safetensors>`_ file whose metadata
        holds, as JSON, the parameters, the encoder's vocabularies and
        statistics, the tasks, the task-weighting state, the history and the
        versions of skmtl and torch. :func:`skmtl.load` reads it back without
        unpickling, so a file from an untrusted source cannot run code. The
        optimizer's state is not saved: continued training after loading
        starts a fresh optimizer, as after unpickling.

        Parameters
        ----------
        path : str or path-like
            File to write (replaced if it exists); ``.safetensors`` is a good
            extension.

        Raises
        ------
        TypeError
            If a parameter or fitted attribute holds something JSON cannot
            describe (a function, an object of your own); the message names
            it. Such a model can still be pickled.

        See Also
        --------
        skmtl.load : Read a model saved by this method.
        """
        from skmtl._persistence import save_estimator  # avoids an import cycle

        save_estimator(self, path)

    def __getstate__(self):
        state = self.__dict__.copy()
        # The optimizer refers to the live parameters; partial_fit after
        # unpickling starts a fresh one.
        state.pop("_optimizer", None)
        state.pop("_scheduler", None)
        if "module_" in state and self.device_.type != "cpu":
            # Pickle CPU copies of everything that lives on the device, so the
            # model loads on machines without a GPU. One deepcopy of both keeps
            # GradNorm's references to the shared layers pointing into the
            # copied network (pickle then stores those parameters once).
            module, weighting = copy.deepcopy((self.module_, state.get("weighting_")))
            state["module_"] = module.cpu()
            if weighting is not None:
                state["weighting_"] = weighting._to("cpu")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "module_" in state:
            self.device_ = loadable_device(self.device_)
            self.module_.to(self.device_)
            if state.get("weighting_") is not None:
                self.weighting_._to(self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags
