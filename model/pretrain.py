"""Self-supervised embeddings from the training reviews alone: PPMI + truncated SVD (Levy, Goldberg & Dagan 2015).

The word vectors a network starts from are drawn from the same rows it then trains on, their labels unread:
co-occurrence counts within a window (weighted 1/distance, as word2vec's dynamic window weights them in
expectation), positive pointwise mutual information with the context distribution smoothed by 0.75, and the
``dim`` leading singular directions, U * sqrt(S). The result is scaled to the spread of the default
initialiser, uniform(-0.05, 0.05), so only the directions change, not the step Adam takes relative to them.
No extra data: the validation and test rows never enter (the caller passes the training rows), and the arrays
are NumPy, so every implementation starts from the same ones (``model/weights.py``).
"""

from __future__ import annotations

import numpy as np

from model.preprocess import PAD

WINDOW = 5
CONTEXT_SMOOTHING = 0.75
UNIFORM_SD = 0.05 / np.sqrt(3.0)  # the sd of uniform(-0.05, 0.05), Keras' Embedding default


def cooccurrence(tokens: np.ndarray, vocab_size: int, window: int = WINDOW):
    """Symmetric (vocab, vocab) counts of token pairs at most ``window`` apart within a row, each pair weighted
    1/distance; padding never counts."""
    import scipy.sparse as sparse

    rows, cols, weights = [], [], []
    real = tokens != PAD
    for distance in range(1, window + 1):
        both = real[:, :-distance] & real[:, distance:]
        rows.append(tokens[:, :-distance][both])
        cols.append(tokens[:, distance:][both])
        weights.append(np.full(int(both.sum()), 1.0 / distance))
    counts = sparse.coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(vocab_size, vocab_size)).tocsr()
    return counts + counts.T


def ppmi(counts):
    """max(0, log p(w, c) / (p(w) p_0.75(c))) of a symmetric count matrix, sparse."""
    import scipy.sparse as sparse

    total = counts.sum()
    words = np.asarray(counts.sum(axis=1)).ravel() / total
    contexts = np.asarray(counts.sum(axis=0)).ravel() ** CONTEXT_SMOOTHING
    contexts /= contexts.sum()
    coo = counts.tocoo()
    values = np.log(coo.data / total) - np.log(words[coo.row]) - np.log(contexts[coo.col])
    keep = values > 0
    return sparse.csr_matrix((values[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)


def ppmi_svd(tokens: np.ndarray, vocab_size: int, dim: int, seed: int = 0) -> np.ndarray:
    """(vocab_size, dim) float32 word vectors from front-padded token rows; words never seen get zero rows."""
    from sklearn.utils.extmath import randomized_svd

    left, singular, _ = randomized_svd(ppmi(cooccurrence(tokens, vocab_size)), dim, n_iter=5, random_state=seed)
    vectors = left * np.sqrt(singular)
    return (vectors * (UNIFORM_SD / vectors.std())).astype(np.float32)
