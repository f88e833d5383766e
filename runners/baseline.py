"""The linear reference every RNN must beat: TF-IDF (unigrams + bigrams) + logistic regression.

Trained on exactly the training rows of the sweep and scored on exactly its
test rows, with the project's own tokenizer, all in scikit-learn. It reads
whole reviews (no maxlen), which is part of why it is a strong bar.
"""

from __future__ import annotations

import time
from pathlib import Path

from model import preprocess
from runners.metrics import classification_metrics


def tfidf_logistic_regression(source: Path, prepared, train_size=None, test_size=None, seed: int = 0) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train_texts, train_labels, test_texts, test_labels = preprocess.split_texts(
        source, prepared, train_size, test_size, seed)
    # Settings measured here on the full split: 90.6% test accuracy (shared notes, imdb-accuracy-anchors).
    model = make_pipeline(
        TfidfVectorizer(tokenizer=preprocess.tokenize, token_pattern=None, lowercase=False, ngram_range=(1, 2),
                        min_df=2, sublinear_tf=True),
        LogisticRegression(C=30, max_iter=2000),
    )
    start = time.perf_counter()
    model.fit(train_texts, train_labels)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    probabilities = model.predict_proba(test_texts)[:, 1]
    predict_s = time.perf_counter() - start
    return dict(implementation="tfidf-logreg", description="TF-IDF unigrams+bigrams (min_df 2, sublinear tf) + "
                "LogisticRegression(C=30), whole reviews", n_train=len(train_labels), n_test=len(test_labels),
                fit_s=fit_s, predict_s=predict_s, metrics=classification_metrics(test_labels, probabilities))
