"""Quality metrics from logits, computed by scikit-learn; the sigmoid that prediction shares."""

from __future__ import annotations

import numpy as np


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float64)))  # overflow-free


def binary_cross_entropy(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean loss on logits, the same formula every framework uses (stable for large |logit|)."""
    z, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    from sklearn import metrics  # here, not at the top: prediction needs sigmoid only

    labels = np.asarray(labels).astype(int)
    predicted = (probabilities >= threshold).astype(int)
    return dict(
        accuracy=float(metrics.accuracy_score(labels, predicted)),
        precision=float(metrics.precision_score(labels, predicted, zero_division=0)),
        recall=float(metrics.recall_score(labels, predicted, zero_division=0)),
        f1=float(metrics.f1_score(labels, predicted, zero_division=0)),
        roc_auc=float(metrics.roc_auc_score(labels, probabilities)) if len(set(labels)) == 2 else None,
        log_loss=float(metrics.log_loss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7), labels=[0, 1])),
        confusion_matrix=metrics.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        threshold=threshold,
        n=int(labels.size),
    )
