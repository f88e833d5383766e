"""Pure table building: run rows and step samples in, pandas tables out (no files read or written).

Speed figures are medians; ratios to native PyTorch carry 95% bootstrap
intervals (``scipy.stats.bootstrap``) over the steady-state step samples of
the runs of each configuration. Those intervals capture step-to-step variation
within the runs; run-to-run spread shows in the min-max columns when a
configuration has several seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.load import KEYS
from model.implementations import NAMES, get, native_of

REFERENCE = "torch"
CONFIDENCE = 0.95


def ratio_interval(numerator: np.ndarray, denominator: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """median(numerator) / median(denominator) with a percentile bootstrap interval."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    ratio = float(np.median(numerator) / np.median(denominator))
    if len(numerator) < 2 or len(denominator) < 2:
        return ratio, float("nan"), float("nan")
    result = stats.bootstrap((numerator, denominator),
                             lambda a, b, axis: np.median(a, axis=axis) / np.median(b, axis=axis),
                             vectorized=True, paired=False, n_resamples=2000, confidence_level=CONFIDENCE,
                             method="percentile", random_state=np.random.default_rng(seed))
    return ratio, float(result.confidence_interval.low), float(result.confidence_interval.high)


def pooled_samples(runs: pd.DataFrame, samples: dict[str, np.ndarray]) -> dict[tuple, np.ndarray]:
    """Steady step samples of all seeds of each configuration."""
    pooled = {}
    for key, group in runs.groupby(KEYS):
        pooled[key] = np.concatenate([samples[run_id] for run_id in group["run_id"]])
    return pooled


def summary(runs: pd.DataFrame, samples: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per (implementation, cell, layers, bidirectional): quality, speed, CPU, memory, ratio to torch."""
    finished = runs[runs["status"] == "ok"]
    pooled = pooled_samples(finished, samples)
    rows = []
    for key, group in finished.groupby(KEYS):
        implementation, cell, layers, bidirectional = key
        steps = pooled[key]
        q1, median, q3 = np.percentile(steps, [25, 50, 75])
        row = dict(zip(KEYS, key), seeds=len(group),
                   accuracy=group["accuracy"].median(), accuracy_min=group["accuracy"].min(),
                   accuracy_max=group["accuracy"].max(), f1=group["f1"].median(), roc_auc=group["roc_auc"].median(),
                   step_ms=median, step_iqr_ms=q3 - q1, step_q1_ms=q1, step_q3_ms=q3, epoch_s=group["epoch_s"].median(),
                   first_step_s=group["first_step_s"].median(), train_samples_per_s=group["train_samples_per_s"].median(),
                   inference_per_s=group["inference_per_s"].median(), latency_ms=group["latency_ms"].median(),
                   train_cpu_s=group["train_cpu_s"].median(), cpu_utilisation=group["cpu_utilisation"].median(),
                   peak_above_mb=group["peak_above_mb"].median(), rss_after_imports_mb=group["rss_after_imports_mb"].median(),
                   kernel_path=group["kernel_path"].iloc[0])
        reference = pooled.get((REFERENCE, cell, layers, bidirectional))
        if reference is not None:
            row["vs_torch"], row["vs_torch_low"], row["vs_torch_high"] = ratio_interval(steps, reference)
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["order"] = table["implementation"].map({n: i for i, n in enumerate(NAMES)})
    return table.sort_values(["cell", "bidirectional", "layers", "order"]).drop(columns="order").reset_index(drop=True)


def overhead(runs: pd.DataFrame, samples: dict[str, np.ndarray]) -> pd.DataFrame:
    """Keras on each backend against that backend's native implementation, per configuration."""
    pooled = pooled_samples(runs[runs["status"] == "ok"], samples)
    rows = []
    for (implementation, cell, layers, bidirectional), steps in pooled.items():
        native = pooled.get((native_of(implementation), cell, layers, bidirectional))
        if native is None:
            continue
        ratio, low, high = ratio_interval(steps, native)
        rows.append(dict(backend=get(implementation).keras_backend, cell=cell, layers=layers,
                         bidirectional=bidirectional, keras_ms=float(np.median(steps)),
                         native_ms=float(np.median(native)), overhead=ratio, low=low, high=high))
    return pd.DataFrame(rows).sort_values(["backend", "cell", "bidirectional", "layers"]).reset_index(drop=True) \
        if rows else pd.DataFrame(rows)


def depth_scaling(table: pd.DataFrame) -> pd.DataFrame:
    """Median step time per depth, and its growth relative to one layer, per implementation and cell."""
    wide = table.pivot_table(index=["implementation", "cell", "bidirectional"], columns="layers", values="step_ms")
    wide.columns = [f"{c}_layer_ms" for c in wide.columns]
    first = wide.columns[0]
    for column in wide.columns[1:]:
        wide[f"{column.split('_')[0]}x_vs_1"] = wide[column] / wide[first]
    return wide.reset_index()


def accuracy_parity(table: pd.DataFrame, baseline: dict | None) -> pd.DataFrame:
    """Test accuracy of the four side by side per configuration, their spread, and the linear baseline."""
    wide = table.pivot_table(index=["cell", "layers", "bidirectional"], columns="implementation", values="accuracy")
    wide = wide[[name for name in NAMES if name in wide.columns]]
    wide["spread_points"] = (wide.max(axis=1) - wide.min(axis=1)) * 100
    if baseline:
        wide["tfidf_baseline"] = baseline["metrics"]["accuracy"]
        wide["beats_baseline"] = wide[[c for c in NAMES if c in wide.columns]].gt(
            baseline["metrics"]["accuracy"]).sum(axis=1).astype(str) + " of " + str(
            len([c for c in NAMES if c in wide.columns]))
    return wide.reset_index()


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    if table.empty:
        return "_(no finished runs)_\n"
    return table.to_markdown(index=False, floatfmt=f".{digits}g") + "\n"
