"""Which rows form each batch and how wide it is: the same for every implementation, and cheaper with bucketing."""

import numpy as np

from model import batches


def _reviews(n=200, maxlen=40, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, maxlen), dtype=np.int32)
    for row, length in enumerate(rng.integers(1, maxlen + 1, size=n)):
        x[row, maxlen - length:] = rng.integers(1, 50, size=length)
    return x


def test_without_bucketing_batches_are_the_seeded_permutation_at_full_width():
    x = _reviews()
    plan = batches.epoch_batches(x, 32, seed=3, epoch=2)
    order = np.random.default_rng([3, 2]).permutation(len(x))
    assert [w for _, w in plan] == [40] * 6  # 200 // 32 batches; the last partial batch is dropped
    assert np.array_equal(np.concatenate([rows for rows, _ in plan]), order[:192])


def test_bucketing_covers_the_same_rows_in_narrower_batches():
    x = _reviews()
    plain = batches.epoch_batches(x, 32, seed=3, epoch=2)
    bucketed = batches.epoch_batches(x, 32, seed=3, epoch=2, pool=3, multiple=8)
    rows = [sorted(np.concatenate([r for r, _ in plan]).tolist()) for plan in (bucketed, plain)]
    assert rows[0] == rows[1]
    lengths = 40 - (x != 0).argmax(axis=1)
    for rows, width in bucketed:
        assert width % 8 == 0 and lengths[rows].max() <= width < lengths[rows].max() + 8
    assert sum(len(r) * w for r, w in bucketed) < 0.8 * sum(len(r) * w for r, w in plain)
    again = batches.epoch_batches(x, 32, seed=3, epoch=2, pool=3, multiple=8)
    assert batches.digest(again) == batches.digest(bucketed) != batches.digest(
        batches.epoch_batches(x, 32, seed=3, epoch=3, pool=3, multiple=8))


def test_gather_cuts_each_batch_at_the_front():
    x = _reviews(n=10, maxlen=16)
    y = np.arange(10, dtype=np.float32)
    (tokens, labels), = batches.gather(x, y, [(np.array([4, 1]), 8)])
    assert np.array_equal(tokens, x[[4, 1], 8:]) and labels.tolist() == [4.0, 1.0]


def test_inference_batches_cover_every_row_once():
    x = _reviews(n=103)
    for bucket in (False, True):
        plan = batches.inference_batches(x, 25, bucket=bucket, multiple=8)
        assert sorted(np.concatenate([r for r, _ in plan]).tolist()) == list(range(103))
