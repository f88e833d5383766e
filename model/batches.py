"""Which rows form each batch, and how wide it is: the same NumPy index arrays for every implementation.

Training: epoch ``e`` permutes the rows with ``default_rng([seed, e])`` and drops
the last partial batch. Without bucketing every batch is ``maxlen`` wide. With
bucketing (``TrainSpec.bucket_pool``), the permutation is cut into pools of
``bucket_pool`` batches, each pool is sorted by review length and cut into
batches, the batches are shuffled (``default_rng([seed, e, 1])``), and each is
cut to its longest review rounded up to ``ModelSpec.width_multiple``: padding,
not review length, would otherwise decide the cost of long ``maxlen``.

Inference: rows in length order when bucketing (results are put back in the
original order), else in their own order.
"""

from __future__ import annotations

import hashlib

import numpy as np

from model.preprocess import lengths as row_lengths


def _width(lengths: np.ndarray, multiple: int, maxlen: int) -> int:
    longest = int(lengths.max()) if len(lengths) else 0
    return min(maxlen, max(multiple, -(-longest // multiple) * multiple))


def epoch_batches(x: np.ndarray, batch_size: int, seed: int, epoch: int, pool: int = 0,
                  multiple: int = 1) -> list[tuple[np.ndarray, int]]:
    """(rows, width) of every training batch of one epoch, in the order they run."""
    n, maxlen = x.shape
    order = np.random.default_rng([seed, epoch]).permutation(n)[: n // batch_size * batch_size]
    if not pool:
        return [(order[start:start + batch_size], maxlen) for start in range(0, len(order), batch_size)]
    lengths = row_lengths(x)
    batches = []
    for start in range(0, len(order), pool * batch_size):
        rows = order[start:start + pool * batch_size]
        rows = rows[np.argsort(lengths[rows], kind="stable")]
        batches += [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    batches = [batches[i] for i in np.random.default_rng([seed, epoch, 1]).permutation(len(batches))]
    return [(rows, _width(lengths[rows], multiple, maxlen)) for rows in batches]


def inference_batches(x: np.ndarray, batch_size: int, bucket: bool = False,
                      multiple: int = 1) -> list[tuple[np.ndarray, int]]:
    """(rows, width) covering every row once, the last batch possibly partial."""
    n, maxlen = x.shape
    if not bucket:
        return [(np.arange(start, min(n, start + batch_size)), maxlen) for start in range(0, n, batch_size)]
    lengths = row_lengths(x)
    order = np.argsort(lengths, kind="stable")
    return [(order[i:i + batch_size], _width(lengths[order[i:i + batch_size]], multiple, maxlen))
            for i in range(0, n, batch_size)]


def gather(x: np.ndarray, y: np.ndarray | None, batches):
    """The (tokens, labels) arrays of each batch in turn, each cut to its width (the padding is at the front);
    one batch at a time, so that inference never holds a second copy of a whole split."""
    for rows, width in batches:
        yield x[rows, x.shape[1] - width:], None if y is None else y[rows]


def digest(batches) -> str:
    """One short hash of the rows and widths of an epoch, for the record."""
    hasher = hashlib.sha256()
    for rows, width in batches:
        hasher.update(np.asarray(rows, dtype=np.int64).tobytes())
        hasher.update(np.int64(width).tobytes())
    return hasher.hexdigest()[:16]
