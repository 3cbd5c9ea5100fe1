"""The base class every skmtl estimator shares: fit, predict, score, pickling.

Subclasses only say which network to build and with which architecture
parameters (:meth:`_network_class`, :meth:`_network_params`); this module
knows nothing of the layers inside.
"""

import copy

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, MultiOutputMixin, clone
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.utils import check_random_state

from skmtl._device import loadable_device, resolve_device
from skmtl._encoder import FeatureEncoder
from skmtl._losses import MultiTaskLoss
from skmtl._monitor import ValidationMonitor
from skmtl._options import (
    class_weight_matrix,
    make_optimizer,
    make_scheduler,
    resolve_class_weight,
)
from skmtl._targets import as_target_frame, encode_targets, fit_tasks
from skmtl._training import fit_module, map_batches, predict_logits
from skmtl._validation import (
    HasMethods,
    Integral,
    Interval,
    Real,
    StrOptions,
    as_feature_frame,
    check_is_fitted,
    check_sample_weight,
    positive_sizes,
)
from skmtl.weighting import resolve_weighting

# Rows per forward pass at prediction: large enough to keep the CPU busy,
# small enough that memory stays bounded for any number of rows.
_PREDICT_BATCH_SIZE = 16384

_COMMON_PARAMETER_DOCS = """
    embedding_dim : int, default=8
        Size of the embedding of every categorical column.
    tower_hidden_sizes : tuple of int, default=(32,)
        Hidden layers of each task's tower; ``()`` gives a linear head.
    dropout : float, default=0.0
        Dropout probability after every hidden activation.
    batch_size : int, default=256
        Rows per optimisation step.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    max_iter : int, default=10
        Number of epochs.
    task_types : "auto", dict or list, default="auto"
        Type of each task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
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
        CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
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
"""

_COMMON_ATTRIBUTE_DOCS = """
    task_names_ : list of str
        Task names: the columns of Y, or ``"task_0"``... for arrays.
    task_types_ : list of str
        Type of each task.
    classes_ : list of ndarray or None
        Sorted labels of each classification task; None for regression.
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
    history_ : list of dict
        One dict per epoch: ``epoch``, ``train_loss`` (weighted total),
        ``train_loss_per_task`` (task name -> mean loss over labelled rows) and
        ``task_weights`` (task name -> weight used in that epoch); with
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


def store_parameters(estimator, arguments):
    """Store ``__init__``'s arguments unchanged, as scikit-learn requires.

    Each estimator's ``__init__`` spells out its parameters (``get_params``
    reads the signature) and passes ``locals()`` here, so the assignments are
    not written out once per estimator.
    """
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _task_score(task, y_true, y_score):
    """Score one task: ROC AUC (binary), accuracy (multiclass), R² (regression)."""
    if task.type == "binary":
        if len(np.unique(y_true)) < 2:
            raise ValueError(
                f"Cannot compute ROC AUC for task {task.name!r}: its labelled rows "
                "hold only one class."
            )
        return roc_auc_score(y_true == task.classes[1], y_score)
    if task.type == "multiclass":
        return accuracy_score(y_true, y_score)
    return r2_score(y_true, y_score)


class MultiTaskEstimator(MultiOutputMixin, BaseEstimator):
    """Shared machinery of the skmtl estimators; not used directly.

    Subclasses define ``__init__`` with their parameters, ``_network_class``
    and ``_network_params``.
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
    }

    # -- what subclasses provide -------------------------------------------------

    _network_class = None

    def _network_params(self):
        """Return the architecture keyword arguments of the network."""
        raise NotImplementedError

    # -- fit ---------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the encoder and train the network on every task at once.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw features: strings, categories, booleans, numbers, NaN.
        y : DataFrame, Series or array-like of shape (n_samples, n_tasks) or (n_samples,)
            One column per task; NaN marks a row outside that task's sample
            space (excluded from that task's loss only).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row in every task's loss.
        eval_set : tuple (X_val, y_val), default=None
            Validation data scored after every epoch (recorded in
            ``history_``) and, with ``early_stopping=True``, monitored instead
            of a ``validation_fraction`` split.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        warm = self.warm_start and hasattr(self, "module_")
        return self._fit(X, y, sample_weight, eval_set, self.max_iter, reset=not warm)

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

    def _fit(self, X, y, sample_weight, eval_set, n_epochs, reset):
        """Train ``n_epochs``; from scratch when ``reset``, else continuing."""
        if reset:
            network_params = self._network_params()
            positive_sizes(self.tower_hidden_sizes, "tower_hidden_sizes", allow_empty=True)
        frame = as_feature_frame(self, X, reset=reset)
        targets, y_is_1d = as_target_frame(y, len(frame))
        weights = check_sample_weight(sample_weight, len(frame))
        if reset:
            self._y_is_1d = y_is_1d
            self._tasks = fit_tasks(targets, self.task_types)
        else:
            self._check_same_tasks(targets)
        class_weights = resolve_class_weight(self.class_weight, self._tasks)
        random_state = check_random_state(self.random_state)
        seed = random_state.randint(np.iinfo(np.int32).max)
        train, validation = self._split_validation(
            frame, targets, weights, eval_set, random_state
        )
        if reset:
            self.encoder_ = clone(self.encoder if self.encoder is not None else FeatureEncoder())
            self.encoder_.fit(train[0])
            self.device_ = resolve_device(self.device)
        data = self._training_tensors(*train, class_weights)
        monitor = None
        if validation is not None:
            monitor = self._monitor(self._training_tensors(*validation, None), validation[1])
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(seed)
            if reset:
                self.module_ = self._build_network(network_params)
                self._start_training()
            self._train(data, monitor, seed, n_epochs)
        return self

    def _check_same_tasks(self, targets):
        """Continued training must see the tasks the model was built for."""
        names = [str(c) for c in targets.columns]
        if names != self.task_names_:
            raise ValueError(
                f"y has tasks {names} but the model was fitted on {self.task_names_}; "
                "continued training (warm_start, partial_fit) needs the same tasks."
            )

    def _split_validation(self, frame, targets, weights, eval_set, random_state):
        """Return (frame, targets, weights) for training and for validation.

        Validation is ``eval_set`` when given, else a random
        ``validation_fraction`` of the rows when ``early_stopping``, else None.
        """
        if eval_set is not None:
            if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
                raise ValueError("eval_set must be a pair (X_val, y_val).")
            X_val = as_feature_frame(self, eval_set[0], reset=False)
            y_val, _ = as_target_frame(eval_set[1], len(X_val))
            named = isinstance(eval_set[1], (pd.DataFrame, pd.Series))
            if y_val.shape[1] != targets.shape[1] or (
                named and list(y_val.columns) != list(targets.columns)
            ):
                raise ValueError(
                    f"eval_set's y has tasks {list(y_val.columns)} but y has "
                    f"{list(targets.columns)}; they must be the same tasks."
                )
            # Arrays carry no names: their columns are the tasks in order.
            y_val = y_val.set_axis(targets.columns, axis=1)
            return (frame, targets, weights), (X_val, y_val, np.ones(len(X_val)))
        if not self.early_stopping:
            return (frame, targets, weights), None
        n_valid = int(np.ceil(self.validation_fraction * len(frame)))
        if n_valid < 1 or n_valid >= len(frame):
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no rows "
                f"for training or validation out of {len(frame)}."
            )
        order = random_state.permutation(len(frame))
        parts = (order[n_valid:], order[:n_valid])
        return tuple((frame.iloc[i], targets.iloc[i], weights[i]) for i in parts)

    def _monitor(self, data, targets):
        """Build the validation monitor for ``history_`` and early stopping."""
        return ValidationMonitor(
            data,
            MultiTaskLoss(self.task_types_, [t.n_outputs for t in self._tasks]),
            lambda logits: self._scores_from_logits(logits, targets, strict=False),
            self.task_names_,
            self.validation_metric,
            self.tol,
            self.n_iter_no_change if self.early_stopping else None,
        )

    def _rng_devices(self):
        return [self.device_] if self.device_.type == "cuda" else []

    def _encoded_tensors(self, frame):
        """Encode a feature frame into (categorical, numeric) tensors on the device."""
        encoded = self.encoder_.encode(frame)
        return (
            torch.as_tensor(encoded.categorical, device=self.device_),
            torch.as_tensor(encoded.numeric, device=self.device_),
        )

    def _training_tensors(self, frame, targets, weights, class_weights):
        """Build every tensor the training loop slices, once, on the device.

        The loss weight of each (row, task) is the sample weight, times the
        class weight of its label, times 0 where the label is missing.
        """
        values, mask = encode_targets(targets, self._tasks)
        row_weights = mask * weights[:, None]
        if class_weights is not None:
            row_weights = row_weights * class_weight_matrix(values, mask, class_weights)
        categorical, numeric = self._encoded_tensors(frame)
        return (
            categorical,
            numeric,
            torch.as_tensor(values, device=self.device_),
            torch.as_tensor(row_weights, dtype=torch.float32, device=self.device_),
        )

    def _build_network(self, network_params):
        """Instantiate the network from the encoder's and tasks' sizes."""
        return self._network_class(
            self.encoder_.cardinalities_,
            len(self.encoder_.numeric_columns_),
            [task.n_outputs for task in self._tasks],
            embedding_dim=self.embedding_dim,
            tower_hidden_sizes=tuple(self.tower_hidden_sizes),
            dropout=self.dropout,
            device=self.device_,
            **network_params,
        )

    def _start_training(self):
        """Create the weighting, optimizer and history that training continues."""
        self.weighting_ = resolve_weighting(self.loss_weights, self.task_names_)
        self.weighting_.setup(len(self._tasks), self.module_.shared_parameters())
        parameters = [*self.module_.parameters(), *self.weighting_.parameters()]
        self._optimizer = make_optimizer(
            self.optimizer, parameters, self.learning_rate_init, self.weight_decay
        )
        self._scheduler = make_scheduler(self.lr_scheduler, self._optimizer, self.max_iter)
        self.history_, self.loss_curve_, self.n_iter_ = [], [], 0

    def _train(self, data, monitor, seed, n_epochs):
        """Run the shared training loop for ``n_epochs`` and record the history."""
        if getattr(self, "_optimizer", None) is None:  # e.g. after unpickling
            parameters = [*self.module_.parameters(), *self.weighting_.parameters()]
            self._optimizer = make_optimizer(
                self.optimizer, parameters, self.learning_rate_init, self.weight_decay
            )
        self._validation = monitor
        self.n_iter_ += fit_module(
            self.module_,
            self._optimizer,
            MultiTaskLoss(self.task_types_, [t.n_outputs for t in self._tasks]),
            self.weighting_,
            data,
            max_iter=n_epochs,
            batch_size=self.batch_size,
            generator=torch.Generator().manual_seed(seed),
            on_epoch_end=self._end_epoch,
            progress=self._progress_bar if self.verbose else None,
            max_grad_norm=self.max_grad_norm,
        )
        self.loss_curve_ = [record["train_loss"] for record in self.history_]
        self.best_iteration_ = None
        if monitor is not None and self.early_stopping:
            monitor.restore_best(self.module_)
            self.best_iteration_ = monitor.best_epoch
        del self._validation

    def _progress_bar(self, epoch):
        """Return a wrapper showing the epoch's batches in a tqdm bar, if installed."""
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional: verbose falls back to a line per epoch
            return iter

        def wrap(batches):
            # Updated by hand: iterating a tqdm closes it before the epoch's
            # losses are known, and they belong on the finished bar.
            self._bar = tqdm(
                total=len(batches), desc=f"epoch {epoch}/{self.max_iter}", unit="batch"
            )
            for batch in batches:
                yield batch
                self._bar.update()

        return wrap

    def _end_epoch(self, epoch, losses):
        """Record the epoch in ``history_``, log it, and update the weighting."""
        epoch = len(self.history_) + 1  # counts on through continued training
        task_weights = self.weighting_.weights()
        record = {
            "epoch": epoch,
            "train_loss": float(np.dot(task_weights, losses)),
            "train_loss_per_task": dict(zip(self.task_names_, losses)),
            "task_weights": dict(zip(self.task_names_, task_weights)),
        }
        stop = False
        if self._validation is not None:
            fields, stop = self._validation.step(self.module_, epoch)
            record.update(fields)
        self.history_.append(record)
        if self.verbose:
            self._log_epoch(record)
        self.weighting_.end_epoch(epoch)
        if getattr(self, "_scheduler", None) is not None:
            self._scheduler.step()
        return stop

    def _log_epoch(self, record):
        """Show the epoch's per-task losses on its progress bar, or print them."""
        losses = {**record["train_loss_per_task"]}
        losses.update({f"val_{k}": v for k, v in record.get("valid_loss_per_task", {}).items()})
        bar = self.__dict__.pop("_bar", None)
        if bar is not None:
            bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
            bar.close()
            return
        per_task = ", ".join(f"{k}={v:.4f}" for k, v in losses.items())
        print(f"epoch {record['epoch']}/{self.max_iter}: {per_task}")

    # -- fitted views of the tasks -----------------------------------------------

    @property
    def task_names_(self):
        """Task names, in the column order of Y."""
        check_is_fitted(self, "_tasks")
        return [task.name for task in self._tasks]

    @property
    def task_types_(self):
        """Type of each task."""
        check_is_fitted(self, "_tasks")
        return [task.type for task in self._tasks]

    @property
    def classes_(self):
        """Sorted class labels of each task (None for regression)."""
        check_is_fitted(self, "_tasks")
        return [task.classes for task in self._tasks]

    # -- prediction --------------------------------------------------------------

    def _logits(self, X):
        """Return the network's outputs for X as a float64 numpy array."""
        check_is_fitted(self, "module_")
        frame = as_feature_frame(self, X, reset=False)
        categorical, numeric = self._encoded_tensors(frame)
        logits = predict_logits(self.module_, categorical, numeric, _PREDICT_BATCH_SIZE)
        return logits.double().numpy()

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
        categorical, numeric = self._encoded_tensors(frame)
        batches = map_batches(
            lambda module, c, n: module.gate_distributions(c, n),
            self.module_,
            categorical,
            numeric,
            _PREDICT_BATCH_SIZE,
        )
        levels = []
        for level in zip(*batches):
            task_gates = torch.cat([g for g, _ in level], dim=1).cpu().numpy()
            shared = [s for _, s in level]
            shared = None if shared[0] is None else torch.cat(shared).cpu().numpy()
            levels.append((task_gates, shared))
        return levels

    def _task_outputs(self, logits):
        """Yield (task, that task's slice of the logits)."""
        start = 0
        for task in self._tasks:
            yield task, logits[:, start : start + task.n_outputs]
            start += task.n_outputs

    @staticmethod
    def _decode(task, out):
        """Turn one task's raw outputs into predictions in the label space."""
        if task.type == "regression":
            return out[:, 0] * task.scale + task.mean
        if task.type == "binary":
            return task.classes[(out[:, 0] > 0).astype(int)]
        return task.classes[out.argmax(axis=1)]

    @staticmethod
    def _probabilities(task, out):
        """Class probabilities of a classification task, None for regression."""
        if task.type == "regression":
            return None
        if task.type == "binary":
            positive = 1.0 / (1.0 + np.exp(-out[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

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
        columns = [self._decode(t, out) for t, out in self._task_outputs(self._logits(X))]
        if self._y_is_1d:
            return columns[0]
        return np.column_stack(columns) if columns else None

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
        probas = [self._probabilities(t, out) for t, out in self._task_outputs(self._logits(X))]
        return probas[0] if self._y_is_1d else probas

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
            multiclass task, R² for a regression task.
        """
        logits = self._logits(X)
        targets, _ = as_target_frame(y, len(logits))
        return self._scores_from_logits(logits, targets, strict=True)

    def _scores_from_logits(self, logits, targets, strict):
        """Per-task scores of ``logits`` against ``targets``.

        With ``strict=False`` an undefined score (one class only) is NaN
        instead of an error, for monitoring.
        """
        if targets.shape[1] != len(self._tasks):
            raise ValueError(
                f"y has {targets.shape[1]} tasks but the model was fitted on "
                f"{len(self._tasks)}: {self.task_names_}."
            )
        scores = {}
        for k, (task, out) in enumerate(self._task_outputs(logits)):
            labelled = targets.iloc[:, k].notna().to_numpy()
            y_true = targets.iloc[:, k].to_numpy()[labelled]
            y_score = out[labelled, 0] if task.type == "binary" else self._decode(task, out[labelled])
            try:
                scores[task.name] = float(_task_score(task, y_true, y_score))
            except ValueError:
                if strict:
                    raise
                scores[task.name] = float("nan")
        return scores

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

    # -- pickling ----------------------------------------------------------------

    def __getstate__(self):
        state = self.__dict__.copy()
        # The optimizer refers to the live parameters; partial_fit after
        # unpickling starts a fresh one.
        state.pop("_optimizer", None)
        state.pop("_scheduler", None)
        module = state.get("module_")
        if module is not None and self.device_.type != "cpu":
            # Pickle a CPU copy so the model loads on machines without a GPU.
            state["module_"] = copy.deepcopy(module).cpu()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "module_" in state:
            self.device_ = loadable_device(self.device_)
            self.module_.to(self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags
