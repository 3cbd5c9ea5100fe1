"""A batch source that streams partitions: bounded memory for any number of rows.

Each epoch visits every row once. Partitions come in a seeded random order, in
windows of ``buffer_partitions``; a window's rows are shuffled together, and
the next window is loaded and encoded in a background thread while the loop
trains on the current one, so at most two windows are held at a time. Global
batches are cut from the epoch's stream of rows as :class:`TensorSource` cuts
them from a permutation, and each process of a multi-process fit encodes only
its share of each, so the ranks take the steps of one process whose batch is
the sum of theirs.

The source knows nothing of Dask: it is given the partitions' lengths, a
function that loads partitions and one that encodes some rows of a loaded
partition into a :class:`~skmtl._training.Batch`.
"""

import queue
import threading

import numpy as np
import torch
from torch.nn import functional as F

from skmtl._distributed import SingleProcess
from skmtl._training import Batch, epoch_seed, global_batch_sizes, rank_bounds
from skmtl.nn import FeatureBatch


def concat_batches(batches):
    """Concatenate batches row-wise, padding bags of codes to the longest.

    Parameters
    ----------
    batches : list of Batch
        At least one.

    Returns
    -------
    Batch
    """
    if len(batches) == 1:
        return batches[0]
    width = max(b.features.multi_valued.shape[2] for b in batches)
    bags = [
        F.pad(
            b.features.multi_valued,
            (0, width - b.features.multi_valued.shape[2]),
            value=-1,
        )
        for b in batches
    ]
    features = FeatureBatch(
        torch.cat([b.features.categorical for b in batches]),
        torch.cat([b.features.numeric for b in batches]),
        torch.cat(bags),
    )
    targets = torch.cat([b.targets for b in batches])
    return Batch(features, targets, torch.cat([b.weights for b in batches]))


def _copy(batch):
    """A batch that owns its memory (a slice would keep its whole block alive)."""
    return Batch(
        FeatureBatch(*(field.clone() for field in batch.features)),
        batch.targets.clone(),
        batch.weights.clone(),
    )


def _ranges(starts, stops):
    """Concatenate ``arange(start, stop)`` for each pair, vectorised."""
    lengths = stops - starts
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())


class StreamSource:
    """Batches encoded from partitions loaded in the background, epoch by epoch.

    Parameters
    ----------
    lengths : array-like of shape (n_partitions,)
        Rows of each partition, known before the first epoch.
    load : callable
        ``load(partitions)`` returns the pandas frames of those partition
        numbers, in order.
    encode : callable
        ``encode(frame, rows, partition)`` returns the :class:`Batch` of rows
        ``rows`` (positions, never empty; None for every row, in order) of
        partition ``partition``'s frame.
    batch_size : int
        Rows per step of this process.
    seed : int
        Seeds each epoch's order with :func:`~skmtl._training.epoch_seed`.
    comm : communicator, default=SingleProcess()
        Gives ``rank`` and ``world_size``.
    buffer_partitions : int, default=2
        Partitions whose rows are shuffled together; bounds memory.
    """

    def __init__(
        self, lengths, load, encode, batch_size, seed, comm=None, buffer_partitions=2
    ):
        comm = comm or SingleProcess()
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.load, self.encode = load, encode
        self.seed, self.buffer_partitions = int(seed), int(buffer_partitions)
        sizes = global_batch_sizes(self.n_samples, int(batch_size), comm.world_size)
        self._starts, self._stops = rank_bounds(sizes, comm.rank, comm.world_size)

    @property
    def n_samples(self):
        """Rows of all processes together."""
        return int(self.lengths.sum())

    def __len__(self):
        return len(self._starts)

    def batches(self, epoch):
        """Return this process's batches of ``epoch``, in order.

        Parameters
        ----------
        epoch : int
            Epoch number, counting from 1 over the estimator's whole life.

        Returns
        -------
        sized iterable of Batch
            Iterating it streams the epoch; stopping early stops the loading.
        """
        return _Epoch(self, epoch)

    def windows(self, epoch):
        """Yield each window's partitions and the rows this process takes.

        Parameters
        ----------
        epoch : int

        Yields
        ------
        partitions : ndarray of int
            Partition numbers of the window.
        rows : ndarray of int
            Positions in the window's rows (partitions concatenated) that
            this process trains on, in the epoch's order.
        """
        rng = np.random.default_rng(epoch_seed(self.seed, epoch))
        order = rng.permutation(len(self.lengths))
        order = order[self.lengths[order] > 0]  # empty partitions are skipped
        position = 0
        for start in range(0, len(order), self.buffer_partitions):
            window = order[start : start + self.buffer_partitions]
            n_rows = int(self.lengths[window].sum())
            shuffled = rng.permutation(n_rows)
            owned = self._owned(position, position + n_rows) - position
            position += n_rows
            yield window, shuffled[owned]

    def _owned(self, begin, end):
        """This process's positions of the epoch in [begin, end), in order."""
        first = np.searchsorted(self._stops, begin, side="right")
        last = np.searchsorted(self._starts, end, side="left")
        starts = np.maximum(self._starts[first:last], begin)
        stops = np.minimum(self._stops[first:last], end)
        return _ranges(starts, np.maximum(stops, starts))

    def blocks(self, epoch):
        """Yield each window's rows of this process, encoded, in the epoch's order.

        Parameters
        ----------
        epoch : int

        Yields
        ------
        Batch
        """
        for window, rows in self.windows(epoch):
            if len(rows):
                yield self._encode_window(window, rows)

    def _encode_window(self, window, rows):
        """Load a window's partitions and encode ``rows`` of them, in order."""
        frames = self.load(window)
        ends = np.cumsum(self.lengths[window])
        partition_of = np.searchsorted(ends, rows, side="right")  # (n_rows,)
        pieces, gather, start = [], np.empty(len(rows), dtype=np.int64), 0
        for j, (number, frame) in enumerate(zip(window, frames)):
            if len(frame) != self.lengths[number]:
                raise RuntimeError(
                    f"Partition {number} has {len(frame)} rows but had "
                    f"{self.lengths[number]} when counted; the Dask DataFrame must "
                    "give the same rows every time it is computed."
                )
            taken = np.flatnonzero(partition_of == j)
            if not len(taken):
                continue
            local = rows[taken] - (ends[j] - self.lengths[number])
            if len(local) == len(frame):
                # Every row (one process): encode the frame as it is and
                # shuffle the codes, cheaper than gathering raw rows first.
                pieces.append(self.encode(frame, None, number))
                gather[taken] = start + local
            else:
                pieces.append(self.encode(frame, local, number))
                gather[taken] = start + np.arange(len(taken))
            start += len(taken)
        block = concat_batches(pieces)
        # One gather puts the rows of every piece in the epoch's order.
        return block.rows(torch.as_tensor(gather, device=block.targets.device))


class _Epoch:
    """One epoch of a :class:`StreamSource`: batches cut from prefetched blocks."""

    def __init__(self, source, epoch):
        self.source, self.epoch = source, epoch

    def __len__(self):
        return len(self.source)

    def __iter__(self):
        sizes = (self.source._stops - self.source._starts).tolist()
        blocks = prefetched(self.source.blocks(self.epoch))
        try:
            yield from _rebatch(blocks, sizes)
        finally:
            blocks.close()


def _rebatch(blocks, sizes):
    """Cut consecutive batches of ``sizes`` rows from a stream of blocks."""
    pending, n_pending, k = [], 0, 0
    for block in blocks:
        start, n_rows = 0, block.n_samples
        while k < len(sizes) and n_pending + n_rows - start >= sizes[k]:
            stop = start + sizes[k] - n_pending
            piece = block.rows(slice(start, stop))
            yield concat_batches(pending + [piece]) if pending else piece
            pending, n_pending, start, k = [], 0, stop, k + 1
        if start < n_rows:
            pending.append(_copy(block.rows(slice(start, n_rows))))
            n_pending += n_rows - start
    if pending or k < len(sizes):
        raise RuntimeError(
            f"The partitions gave {k} of the {len(sizes)} batches of the epoch; "
            "their rows changed since they were counted."
        )


class _Failure:
    """An exception raised in the loading thread, to re-raise in the caller."""

    def __init__(self, error):
        self.error = error


_DONE = object()


def prefetched(items):
    """Iterate ``items`` one item ahead in a background thread.

    The thread computes the next item while the caller uses the current one,
    and waits before computing another: at most two items exist at a time.
    Exceptions are raised in the caller; closing the returned generator stops
    the thread.

    Parameters
    ----------
    items : iterator

    Yields
    ------
    object
        The items, in order.
    """
    ready = queue.Queue(maxsize=1)
    tokens = threading.Semaphore(1)
    stop = threading.Event()

    def produce():
        try:
            while True:
                tokens.acquire()
                if stop.is_set():
                    return
                item = next(items, _DONE)
                ready.put(item)
                if item is _DONE:
                    return
        except BaseException as error:  # noqa: BLE001  (re-raised by the caller)
            ready.put(_Failure(error))

    thread = threading.Thread(target=produce, name="skmtl-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            tokens.release()  # the thread may now compute the next item
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        tokens.release()
        thread.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()
