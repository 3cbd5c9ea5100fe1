"""Dask DataFrames in ``fit`` and ``predict``, never held whole.

``fit`` joins X, y and ``sample_weight`` partition by partition into one Dask
frame, so that they keep the same partitions whatever Dask's optimiser does to
each, and makes one pass over it for each partition's length and its labels'
statistics (the tasks are fitted from them, see
:class:`skmtl._targets.LabelSummary`). The encoder fits out of core on the
Dask frame of features; each epoch then streams the partitions through
:class:`skmtl._streaming.StreamSource`. Validation is an ``eval_set`` or a
share of whole partitions, evaluated one partition at a time.

``predict``, ``predict_proba`` and ``score_tasks`` map the fitted estimator
over the partitions: the first two return lazy Dask arrays.

Dask is imported only when such a frame is given: skmtl works without it.
"""

import contextlib
import functools
import hashlib
import os
import sys

import numpy as np
import pandas as pd
import torch

from skmtl._data import feature_batch, loss_weights
from skmtl._options import balanced_class_weights
from skmtl._streaming import StreamSource, prefetched
from skmtl._targets import LabelSummary, encode_targets, fit_tasks_from_summaries
from skmtl._training import Batch
from skmtl._validation import (
    check_unique_columns,
    format_names,
    is_dask_collection,
    set_feature_names,
)

_TARGET = "__skmtl_target_{}"
_WEIGHT = "__skmtl_sample_weight"


# -- checks --------------------------------------------------------------------


def _check_kind(value, name, kinds):
    """Raise a TypeError unless ``value`` is one of the Dask ``kinds``."""
    import dask.dataframe as dd

    allowed = {"DataFrame": dd.DataFrame, "Series": dd.Series}
    if not isinstance(value, tuple(allowed[k] for k in kinds)):
        raise TypeError(
            f"With a Dask X, {name} must be a Dask {' or '.join(kinds)} with the "
            f"partitions of X, got a {type(value).__module__}.{type(value).__name__}."
        )


def _check_partitions(collections):
    """Every collection must have as many partitions as X."""
    counts = {name: value.npartitions for name, value in collections.items()}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{name} has {n}" for name, n in counts.items())
        raise ValueError(
            f"{shown} partitions; they must have the same partitions. Select them "
            "from one Dask DataFrame (X = ddf[features], y = ddf[targets])."
        )


def check_fitted_columns(estimator, X):
    """Raise if the Dask frame ``X`` lacks a column the fitted encoder reads.

    Parameters
    ----------
    estimator : fitted skmtl estimator
    X : dask.dataframe.DataFrame
    """
    encoder = estimator.encoder_
    needed = [
        *encoder.categorical_columns_,
        *encoder.numeric_columns_,
        *getattr(encoder, "multi_valued_columns_", []),
    ]
    missing = [c for c in needed if c not in X.columns]
    if missing:
        raise ValueError(f"X is missing columns seen in fit: {format_names(missing)}.")


def _target_frame(y):
    """y as a Dask DataFrame of tasks, their names and whether it was a Series."""
    import dask.dataframe as dd

    if isinstance(y, dd.Series):
        name = y.name if y.name is not None else "task_0"
        return y.to_frame(name=name), [str(name)], True
    names = [str(c) for c in y.columns]
    if not names:
        raise ValueError("Y has no columns: give at least one task.")
    if len(set(names)) != len(names):
        raise ValueError(f"Y has duplicate task names: {list(y.columns)}.")
    return y, names, False


# -- one Dask frame of features, targets and weights ---------------------------


def _join_partition(X, y, weights=None, partition_info=None):
    """One partition's features, targets and weights side by side, by position."""
    lengths = {"X": len(X), "y": len(y)}
    if weights is not None:
        lengths["sample_weight"] = len(weights)
    if len(set(lengths.values())) > 1:
        number = partition_info["number"] if partition_info else "?"
        shown = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(
            f"Partition {number}: {shown} rows; X, y and sample_weight must have "
            "the same rows in every partition."
        )
    targets = y.set_axis([_TARGET.format(k) for k in range(y.shape[1])], axis=1)
    parts = [X, targets.set_axis(X.index, axis=0)]
    if weights is not None:
        parts.append(weights.rename(_WEIGHT).set_axis(X.index))
    return pd.concat(parts, axis=1)


def _joined(X, targets, sample_weight):
    """The Dask frame of X, targets and weights with X's partitions."""
    import dask.dataframe as dd

    collections = [X, targets] + ([sample_weight] if sample_weight is not None else [])
    meta = _join_partition(*(c._meta for c in collections))
    return dd.map_partitions(
        _join_partition, *collections, meta=meta, align_dataframes=False
    )


def _content_hash(frame):
    """SHA-256 of a partition's column names and cells (lists by their text)."""
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        try:
            hashed = pd.util.hash_pandas_object(column, index=False)
        except TypeError:  # the lists of a multi-valued column are unhashable
            hashed = pd.util.hash_pandas_object(column.astype(str), index=False)
        digest.update(str(name).encode())
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


class _Columns:
    """Where features, targets and weights are in a joined partition (picklable)."""

    def __init__(self, features, task_names, weighted, fingerprint=False):
        self.features, self.task_names, self.weighted = features, task_names, weighted
        self.fingerprint = fingerprint
        self.targets = [_TARGET.format(k) for k in range(len(task_names))]

    def split(self, frame, rows=None):
        """Return a joined partition's features, targets and weights.

        Parameters
        ----------
        frame : DataFrame
            A computed partition of the joined frame.
        rows : ndarray of int or None
            Positions to take; None takes every row.

        Returns
        -------
        X : DataFrame
        targets : DataFrame
            Columns named after the tasks.
        weights : ndarray of shape (n_rows,)
        """
        if rows is not None:
            frame = frame.iloc[rows]
        targets = frame[self.targets].set_axis(self.task_names, axis=1)
        if self.weighted:
            weights = frame[_WEIGHT].to_numpy(dtype=np.float64)
        else:
            weights = np.ones(len(frame))
        return frame[self.features], targets, weights

    def scan(self, frame, number):
        """Length, label summaries, weight check and content hash of one partition.

        The hash (None unless ``fingerprint``) identifies the data of a
        checkpointed fit.
        """
        _, targets, weights = self.split(frame)
        summaries = [
            LabelSummary.of(name, targets.iloc[:, k])
            for k, name in enumerate(self.task_names)
        ]
        valid = bool(np.all(np.isfinite(weights)) and np.all(weights >= 0))
        digest = _content_hash(frame) if self.fingerprint else None
        return len(frame), summaries, (number, valid, float(weights.sum())), digest

    def features_of(self, frame):
        """The feature columns of a joined partition."""
        return frame[self.features]


class _Layout:
    """The partitions of a joined frame: how to load them and what they hold.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        X, targets and weights joined by :func:`_joined`.
    columns : _Columns

    Attributes
    ----------
    parts : list of dask.delayed.Delayed
        Each partition, computed on demand (always the same partitions: Dask's
        optimiser may merge partitions differently for another expression).
    meta : DataFrame
        Empty, with the joined frame's columns and dtypes.
    lengths : ndarray of shape (n_partitions,)
        Rows of each partition, set by :meth:`scan`.
    summaries : list of LabelSummary
        Statistics of each task's labels over all partitions, set by
        :meth:`scan`.
    content_sha256 : str or None
        SHA-256 of every partition's cells, set by :meth:`scan` when
        ``columns.fingerprint``.
    """

    def __init__(self, frame, columns):
        self.columns, self.meta = columns, frame._meta
        self.parts = frame.to_delayed()
        self.lengths, self.summaries, self.content_sha256 = None, None, None

    @property
    def task_names(self):
        """Names of the tasks."""
        return self.columns.task_names

    def scan(self):
        """Count each partition's rows and summarise its labels, in one pass.

        Returns
        -------
        lengths : ndarray of shape (n_partitions,)
        summaries : list of LabelSummary
        content_sha256 : str or None
        """
        import dask

        scans = dask.compute(
            *(
                dask.delayed(self.columns.scan)(part, number)
                for number, part in enumerate(self.parts)
            )
        )
        lengths, summaries, weights, digests = zip(*scans)
        _check_weights(weights, self.columns.weighted)
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.sum() == 0:
            raise ValueError(
                "Found a Dask DataFrame with 0 sample(s) while a minimum of 1 is "
                "required."
            )
        merged = [functools.reduce(LabelSummary.merge, s) for s in zip(*summaries)]
        content = None
        if self.columns.fingerprint:
            content = hashlib.sha256("".join(digests).encode()).hexdigest()
        return lengths, merged, content

    def load(self, numbers):
        """Compute the frames of partitions ``numbers`` (in parallel)."""
        import dask

        return list(dask.compute(*(self.parts[i] for i in numbers)))


def _check_weights(weights, weighted):
    """sample_weight must be finite, non-negative and not all zero."""
    if not weighted:
        return
    bad = [number for number, valid, _ in weights if not valid]
    if bad:
        shown = ", ".join(str(number) for number in bad[:5])
        rest = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(
            "sample_weight must be finite and non-negative; it is not in "
            f"partitions {shown}{rest}."
        )
    if sum(total for _, _, total in weights) <= 0:
        raise ValueError("sample_weight must not be all zero.")


# -- training data -------------------------------------------------------------


class DaskData:
    """Rows of a Dask fit: some partitions of a joined frame, never held whole.

    Answers what ``fit`` asks of training data (see
    :class:`skmtl._data.InMemoryData`) by passes over the partitions.

    Parameters
    ----------
    layout : _Layout
        The scanned partitions.
    numbers : ndarray of int
        The partitions these rows are.
    buffer_partitions : int
        Partitions whose rows a training epoch shuffles together.
    """

    def __init__(self, layout, numbers, buffer_partitions):
        self.layout, self.numbers = layout, np.asarray(numbers, dtype=np.int64)
        self.buffer_partitions = buffer_partitions
        self._targets = None

    @property
    def n_samples(self):
        """Number of rows."""
        return int(self.layout.lengths[self.numbers].sum())

    @property
    def content_sha256(self):
        """SHA-256 of the cells of every partition of ``fit``'s data, or None.

        Computed by the scan when the estimator has a ``checkpoint_dir``.
        """
        return self.layout.content_sha256

    @property
    def task_names(self):
        """Names of the target columns, as strings."""
        return list(self.layout.task_names)

    def fit_tasks(self, task_types):
        """Fit the task objects on the label summaries of every partition."""
        return fit_tasks_from_summaries(self.layout.summaries, task_types)

    def fit_encoder(self, encoder):
        """Fit ``encoder`` out of core on the features of these partitions."""
        import dask
        import dask.dataframe as dd

        columns = self.layout.columns
        parts = [
            dask.delayed(columns.features_of)(self.layout.parts[i])
            for i in self.numbers
        ]
        meta = columns.features_of(self.layout.meta)
        # The partitions are the caller's: converting their object columns to
        # strings again would turn lists into strings.
        with dask.config.set({"dataframe.convert-string": False}):
            features = dd.from_delayed(parts, meta=meta, verify_meta=False)
        return encoder.fit(features)

    def split(self, fraction, random_state):
        """Hold out whole partitions, in a seeded order, for validation.

        The first partitions of a random order that together hold at least
        ``fraction`` of the rows (at least one partition) validate; the others
        train.

        Parameters
        ----------
        fraction : float in (0, 1)
        random_state : numpy RandomState

        Returns
        -------
        train, validation : DaskData
        """
        order = random_state.permutation(self.numbers)
        held = np.cumsum(self.layout.lengths[order])
        n_valid = int(np.searchsorted(held, np.ceil(fraction * self.n_samples))) + 1
        train, valid = np.sort(order[n_valid:]), np.sort(order[:n_valid])
        if not self.layout.lengths[train].sum():
            raise ValueError(
                f"validation_fraction={fraction} of {len(self.numbers)} partitions "
                "leaves no rows for training: validation takes whole partitions. "
                "Repartition the data into more partitions or pass an eval_set."
            )
        return self._subset(train), self._subset(valid)

    def _subset(self, numbers):
        return DaskData(self.layout, numbers, self.buffer_partitions)

    def _encode(self, frame, rows, number, encoder, tasks, class_weights, device):
        """Encode some rows of a loaded partition, naming it in any error."""
        X, targets, weights = self.layout.columns.split(frame, rows)
        with _naming_partition(number):
            encoded = encoder.encode(X)
            values, mask = encode_targets(targets, tasks)
        weights = loss_weights(values, mask, weights, class_weights)
        return Batch(
            feature_batch(encoded, device),
            torch.as_tensor(values, device=device),
            torch.as_tensor(weights, device=device),
        )

    def batch_source(
        self, encoder, tasks, class_weights, device, *, batch_size, seed, comm=None
    ):
        """Return a :class:`~skmtl._streaming.StreamSource` over these partitions.

        Parameters
        ----------
        encoder, tasks, class_weights, device
            As for :meth:`skmtl._data.InMemoryData.to_batch`. ``"balanced"``
            class weights are counted over every partition of ``fit``'s data.
        batch_size : int
            Rows per step of this process.
        seed : int
            Seeds each epoch's order.
        comm : communicator, default=None
            For this process's share of each global batch.

        Returns
        -------
        StreamSource
        """
        weights = self._explicit_class_weights(class_weights, tasks)
        numbers = self.numbers
        encode = functools.partial(
            self._encode,
            encoder=encoder,
            tasks=tasks,
            class_weights=weights,
            device=device,
        )
        return StreamSource(
            self.layout.lengths[numbers],
            lambda window: self.layout.load(numbers[window]),
            lambda frame, rows, j: encode(frame, rows, numbers[j]),
            batch_size,
            seed,
            comm,
            self.buffer_partitions,
        )

    def _explicit_class_weights(self, class_weights, tasks):
        """Turn ``"balanced"`` into weights from the labels of every partition."""
        if class_weights is None:
            return None
        return [
            balanced_class_weights(summary.class_counts(task.classes))
            if isinstance(spec, str)
            else spec
            for spec, task, summary in zip(class_weights, tasks, self.layout.summaries)
        ]

    def evaluation_batches(self, encoder, tasks, device):
        """Return the rows as batches, one per partition, for validation.

        Parameters
        ----------
        encoder, tasks, device
            As for :meth:`skmtl._data.InMemoryData.to_batch`.

        Returns
        -------
        iterable of Batch
            Re-iterable: each iteration streams the partitions again, in
            order, loading the next one in the background.
        """
        return _Evaluation(self, encoder, tasks, device)

    @property
    def targets(self):
        """The raw targets of these rows as a pandas DataFrame (computed once)."""
        if self._targets is None:
            split = self.layout.columns.split
            frames = [split(self.layout.load([i])[0])[1] for i in self.numbers]
            self._targets = pd.concat(frames, ignore_index=True)
        return self._targets


class _Evaluation:
    """The partitions of validation data, encoded one at a time, in order."""

    def __init__(self, data, encoder, tasks, device):
        self.data, self.encoder, self.tasks, self.device = data, encoder, tasks, device

    def __iter__(self):
        data = self.data
        numbers = [i for i in data.numbers if data.layout.lengths[i]]
        frames = prefetched(data.layout.load([i])[0] for i in numbers)
        for number, frame in zip(numbers, frames):
            yield data._encode(
                frame, None, number, self.encoder, self.tasks, None, self.device
            )


def training_data(estimator, X, y, sample_weight, reset, comm):
    """Check ``fit``'s Dask arguments and wrap them as streamed training data.

    Parameters
    ----------
    estimator : MultiTaskEstimator
        Receives ``n_features_in_``, ``feature_names_in_`` and whether y was a
        Series, when ``reset``.
    X : dask.dataframe.DataFrame
    y : dask.dataframe.DataFrame or dask.dataframe.Series
    sample_weight : dask.dataframe.Series or None
    reset : bool
        True for a fresh fit, False to continue one.
    comm : communicator
        The scan runs on rank 0 and is broadcast.

    Returns
    -------
    DaskData
    """
    layout, is_1d = _layout(estimator, X, y, sample_weight, comm)
    if reset:
        check_unique_columns(X.columns)
        set_feature_names(estimator, list(X.columns))
        estimator._y_is_1d = is_1d
    else:
        check_fitted_columns(estimator, X)
    return DaskData(layout, np.arange(len(layout.lengths)), estimator.buffer_partitions)


def eval_data(X, y, comm):
    """Wrap a Dask ``eval_set`` as validation data.

    Parameters
    ----------
    X : dask.dataframe.DataFrame
    y : dask.dataframe.DataFrame or dask.dataframe.Series
    comm : communicator

    Returns
    -------
    DaskData
    """
    layout, _ = _layout(None, X, y, None, comm, name="eval_set")
    return DaskData(layout, np.arange(len(layout.lengths)), 1)


def _layout(estimator, X, y, sample_weight, comm, name="fit"):
    """Check the Dask inputs, join them and scan their partitions on rank 0."""
    _check_kind(X, "X", ["DataFrame"])
    if y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None."
        )
    _check_kind(y, "y", ["DataFrame", "Series"])
    collections = {"X": X, "y": y}
    if sample_weight is not None:
        _check_kind(sample_weight, "sample_weight", ["Series"])
        collections["sample_weight"] = sample_weight
    _check_partitions(collections)
    if not len(X.columns):
        raise ValueError(
            "Found a Dask DataFrame with 0 feature(s) while a minimum of 1 is required."
        )
    targets, names, is_1d = _target_frame(y)
    # A checkpointed fit identifies its data by their content.
    fingerprint = getattr(estimator, "checkpoint_dir", None) is not None
    columns = _Columns(list(X.columns), names, sample_weight is not None, fingerprint)
    layout = _Layout(_joined(X, targets, sample_weight), columns)
    scanned = comm.on_root(layout.scan)
    layout.lengths, layout.summaries, layout.content_sha256 = scanned
    return layout, is_1d


# -- prediction ------------------------------------------------------------------


def _partition_logits(frame, estimator, partition_info=None):
    """The network's outputs for one partition, as a float64 DataFrame."""
    n_outputs = sum(task.n_outputs for task in estimator.tasks_)
    if not len(frame):
        return pd.DataFrame(np.empty((0, n_outputs)), index=frame.index)
    number = partition_info["number"] if partition_info else "?"
    with worker_threads(), _naming_partition(number):
        return pd.DataFrame(estimator._logits(frame), index=frame.index)


@contextlib.contextmanager
def _naming_partition(number):
    """Re-raise a bad-input error with the partition it came from."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"In partition {number} of the Dask DataFrame: {exc}") from exc


def lazy_logits(estimator, X):
    """The network's outputs for a Dask DataFrame, and the model's graph key.

    Returns
    -------
    logits : dask.array.Array of shape (n_samples, n_outputs)
        One block per partition of X, row counts unknown until computed.
    model : dask.delayed.Delayed
        The estimator, one key in the graph: sent once to each worker rather
        than once per partition.
    """
    import dask

    _check_kind(X, "X", ["DataFrame"])
    check_fitted_columns(estimator, X)
    n_outputs = sum(task.n_outputs for task in estimator.tasks_)
    model = dask.delayed(estimator, pure=True)
    meta = pd.DataFrame(np.empty((0, n_outputs)))
    logits = X.map_partitions(_partition_logits, model, meta=meta).to_dask_array()
    return logits, model


def _decode_block(block, estimator):
    return estimator._predictions_from_logits(block)


def _proba_block(block, estimator, task_index):
    return estimator._probas_from_logits(block, task_index)


def predict(estimator, X):
    """``estimator.predict`` of a Dask DataFrame: a lazy Dask array.

    Parameters
    ----------
    estimator : fitted MultiTaskEstimator
    X : dask.dataframe.DataFrame

    Returns
    -------
    dask.array.Array of shape (n_samples, n_tasks) or (n_samples,)
    """
    logits, model = lazy_logits(estimator, X)
    # The dtype and width of the predictions, from one row of zeros.
    sample = estimator._predictions_from_logits(np.zeros((1, logits.shape[1])))
    if sample.ndim == 1:
        return logits.map_blocks(_decode_block, model, dtype=sample.dtype, drop_axis=1)
    chunks = (logits.chunks[0], (sample.shape[1],))
    return logits.map_blocks(_decode_block, model, dtype=sample.dtype, chunks=chunks)


def predict_proba(estimator, X):
    """``estimator.predict_proba`` of a Dask DataFrame: lazy Dask arrays.

    Parameters
    ----------
    estimator : fitted MultiTaskEstimator
    X : dask.dataframe.DataFrame

    Returns
    -------
    list of (dask.array.Array of shape (n_samples, n_classes) or None)
        Or the one task's array when ``fit`` got a 1-D y. Computing them
        together (``dask.compute(*probas)``) runs the network once.
    """
    logits, model = lazy_logits(estimator, X)
    probas = []
    for k, task in enumerate(estimator.tasks_):
        if task.classes is None:
            probas.append(None)
            continue
        chunks = (logits.chunks[0], (len(task.classes),))
        probas.append(
            logits.map_blocks(_proba_block, model, k, dtype=np.float64, chunks=chunks)
        )
    return probas[0] if estimator._y_is_1d else probas


def score_tasks(estimator, X, y):
    """``estimator.score_tasks`` of Dask collections, computed.

    Holds the outputs and the targets of every row (not the features).

    Parameters
    ----------
    estimator : fitted MultiTaskEstimator
    X : dask.dataframe.DataFrame
    y : dask.dataframe.DataFrame or dask.dataframe.Series

    Returns
    -------
    dict
    """
    _check_kind(y, "y", ["DataFrame", "Series"])
    logits, _ = lazy_logits(estimator, X)
    # Separately: Dask warns when arrays and expressions are computed together.
    logits, targets = logits.compute(), y.compute()
    return estimator._score_logits(logits, targets)


# -- threads ---------------------------------------------------------------------


def _worker_thread_budget():
    """Torch threads for a task of the current Dask worker, or None outside one.

    A worker runs ``nthreads`` tasks at once; each gets OMP_NUM_THREADS (which
    Dask's nanny sets to 1) or its share of the machine's cores.
    """
    if sys.modules.get("distributed") is None:
        return None
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return None
    limit = os.environ.get("OMP_NUM_THREADS", "")
    if limit.isdigit() and int(limit) > 0:
        return int(limit)
    return max(1, (os.cpu_count() or 1) // max(1, worker.state.nthreads))


@contextlib.contextmanager
def worker_threads():
    """Inside a Dask worker, limit torch to the worker's thread budget.

    Restores the previous number of threads afterwards; outside a worker it
    changes nothing.
    """
    budget = _worker_thread_budget()
    if budget is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(budget)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
