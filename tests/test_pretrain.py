"""The input front ends beyond a drawn embedding: the data-derived embedding (model/pretrain.py) against counts
worked out by hand, and the hashed n-gram rows."""

import numpy as np
import pytest

from model.pretrain import UNIFORM_SD, cooccurrence, ppmi, ppmi_svd
from model.spec import ModelSpec, SpecError
from model.weights import initial_weights


def test_cooccurrence_weights_pairs_by_distance_and_skips_padding():
    # Row [0, 2, 3, 2]: pairs (2,3) at 1, (3,2) at 1, (2,2) at 2; the padding 0 pairs with nothing.
    counts = cooccurrence(np.array([[0, 2, 3, 2]]), vocab_size=4, window=2).toarray()
    expected = np.zeros((4, 4))
    expected[2, 3] = expected[3, 2] = 2.0  # two neighbours at distance 1, counted both ways
    expected[2, 2] = 2 * 0.5  # one pair at distance 2, symmetric with itself
    np.testing.assert_allclose(counts, expected)


def test_ppmi_against_a_hand_computed_matrix():
    counts = np.array([[0.0, 2.0, 1.0], [2.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    import scipy.sparse as sparse

    got = ppmi(sparse.csr_matrix(counts)).toarray()
    total = counts.sum()
    p_word = counts.sum(1) / total
    p_context = counts.sum(0) ** 0.75 / (counts.sum(0) ** 0.75).sum()
    with np.errstate(divide="ignore"):
        expected = np.maximum(0.0, np.log(counts / total) - np.log(p_word)[:, None] - np.log(p_context)[None, :])
    np.testing.assert_allclose(got, np.nan_to_num(expected, neginf=0.0), rtol=1e-12)


def test_words_that_share_contexts_get_close_vectors():
    # Two "synonyms" (2, 3) always follow word 4 and precede word 5; words 6-9 form a context of their own.
    rng = np.random.default_rng(0)
    rows = [[4, rng.choice([2, 3]), 5] + list(rng.permutation([6, 7, 8, 9])) for _ in range(300)]
    vectors = ppmi_svd(np.array(rows), vocab_size=10, dim=3)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
    assert unit[2] @ unit[3] > 0.95 and unit[2] @ unit[6] < unit[2] @ unit[3] - 0.2
    np.testing.assert_allclose(vectors[:2], 0.0, atol=1e-9)  # padding and the unknown word never occur
    assert vectors.dtype == np.float32 and vectors.std() == pytest.approx(UNIFORM_SD, rel=1e-5)


def test_initial_weights_replace_only_the_embedding():
    spec = ModelSpec(cell="gru", units=4, embedding_dim=3, vocab_size=10, maxlen=6, embedding_init="ppmi-svd")
    rows = np.random.default_rng(1).integers(2, 10, size=(50, 6))
    drawn = initial_weights(ModelSpec(cell="gru", units=4, embedding_dim=3, vocab_size=10, maxlen=6), seed=3)
    derived = initial_weights(spec, seed=3, x_train=rows)
    assert not np.array_equal(derived[0], drawn[0])
    assert all(np.array_equal(a, b) for a, b in zip(derived[1:], drawn[1:]))
    with pytest.raises(ValueError, match="needs the training rows"):
        initial_weights(spec, seed=3)
    with pytest.raises(SpecError, match="unknown embedding_init"):
        ModelSpec(embedding_init="glove")


def test_ngram_ids_and_the_canonical_layout():
    from model.spec import ngram_ids
    from model.weights import shapes

    spec = ModelSpec(vocab_size=50, ngram_buckets=37)
    # (3 * 50 + 7) % 37 = 157 % 37 = 9; (49 * 50 + 49) % 37 = 2499 % 37 = 20
    assert ngram_ids([np.array([3, 49]), np.array([7, 49])], spec).tolist() == [9, 20]
    # a trigram: (2 * 50 + 3) * 50 + 7 = 5157, 5157 % 37 = 14
    assert ngram_ids([np.array([2]), np.array([3]), np.array([7])], spec).tolist() == [14]
    gru = ModelSpec(cell="gru", units=4, embedding_dim=3, vocab_size=10, maxlen=6, ngram_buckets=11)
    assert shapes(gru)[:2] == [(10, 3), (11, 3)] and gru.embeddings == 2
    weights = initial_weights(gru, seed=3)
    words_only = initial_weights(ModelSpec(cell="gru", units=4, embedding_dim=3, vocab_size=10, maxlen=6), seed=3)
    assert not weights[1].any()  # zeros: the network starts as the words-only one
    assert all(np.array_equal(a, b) for a, b in zip(weights[:1] + weights[2:], words_only))
    with pytest.raises(SpecError, match="ngram_buckets must be at least 0"):
        ModelSpec(ngram_buckets=-1)
    with pytest.raises(SpecError, match="ngram_order must be at least 2"):
        ModelSpec(vocab_size=30_000, ngram_order=5)  # 30,000 ** 5 overflows int64


def test_the_ngram_front_end_adds_each_real_ngram_once():
    """native torch's embedded tokens against NumPy: word vector + one row per real bigram and trigram."""
    torch = pytest.importorskip("torch")
    from model.spec import ngram_ids
    from model.torch_model import SentimentRNN, load_canonical

    spec = ModelSpec(units=4, embedding_dim=3, vocab_size=20, maxlen=6, ngram_buckets=13, ngram_order=3)
    weights = initial_weights(spec, seed=0)
    weights[1] = np.random.default_rng(1).uniform(-1, 1, weights[1].shape).astype(np.float32)
    module = SentimentRNN(spec).eval()
    load_canonical(module, weights)
    seen = {}
    module.embedding_dropout.register_forward_hook(lambda m, inputs, output: seen.update(x=output.detach().numpy()))
    tokens = np.array([[0, 0, 5, 7, 9, 11]])
    module(torch.from_numpy(tokens))
    words, table = weights[0], weights[1]
    expected = words[tokens[0]].copy()
    for t in range(len(tokens[0])):
        for n in (2, 3):
            gram = tokens[0, t - n + 1:t + 1] if t - n + 1 >= 0 else np.array([0])
            if (gram != 0).all():
                expected[t] += table[ngram_ids(list(gram), spec)]
    np.testing.assert_allclose(seen["x"][0], expected, rtol=1e-6)
    assert not np.allclose(expected[4], words[9] + table[ngram_ids([7, 9], spec)])  # the trigram counted


def test_max_mean_pooling_reads_the_mean_over_real_tokens_only():
    """native torch's pooled features against NumPy over the recurrent outputs, segments and padding included."""
    torch = pytest.importorskip("torch")
    from model.torch_model import SentimentRNN, load_canonical

    spec = ModelSpec(units=3, embedding_dim=2, vocab_size=20, maxlen=8, segment_len=4, pooling="max-mean")
    module = SentimentRNN(spec).eval()
    load_canonical(module, initial_weights(spec, seed=0))
    seen = {}
    module.recurrent.register_forward_hook(lambda m, inputs, output: seen.update(h=output[0].detach().numpy()))
    module.dropout.register_forward_hook(lambda m, inputs, output: seen.update(pooled=output.detach().numpy()))
    tokens = np.array([[0, 0, 0, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8]])
    module(torch.from_numpy(tokens))
    outputs = seen["h"].reshape(2, 8, 3)  # two segments a review, in a row
    for row, real in enumerate(tokens != 0):
        expected = np.concatenate([outputs[row].max(0), outputs[row][real].mean(0)])
        np.testing.assert_allclose(seen["pooled"][row], expected, rtol=1e-6)
