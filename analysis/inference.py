"""The statistics of every verdict: intervals, paired ratios, multiplicity (Holm), equivalence (TOST) and its
power. Arrays in, numbers out; nothing rendered, nothing read.

The unit of evidence is the run (a fresh process). One statistic everywhere: a configuration's step time is
the geometric mean over its timed runs (``analysis.noise``) of each run's median steady step (shown with the
run-to-run min-max), and rankings use it too. A ratio between two columns (``group_ratio``) comes with a 95%
interval at the level of runs, from one of two models:

- Interleaved runs (``paired_ratio``): the columns of one block (configuration and seed) took turns step by step,
  so round r of block b gives the paired log ratio d_br = log a_br - log b_br of the two columns' steps in that
  round. Model: d_br = mu + p_b + e_br, with p_b the block's process-level effect (each block is a new set of
  processes: allocator state, page placement) and e_br what changed between the two turns of a round. Each block's
  estimate D_b is the median of its d_br (a single step stalled by the VM moves a median little); the D_b are
  independent across blocks with variance var(p) + var(median of e), whatever that split, so the interval is a
  t interval over the blocks (B - 1 degrees of freedom), and the ratio is exp(mean D_b). Both levels vary and
  both are inside the spread of the D_b; pairing in time removes the slow periods that dominate the spread of
  sequential runs. ``tests/test_statistics.py`` checks its coverage by simulation.
- Sequential runs: the ratio of geometric means with a 95% Welch t interval on the logarithms of run medians
  (``ratio_interval``), so anything that slowed a whole run widens the interval instead of being credited to the
  implementation. With three runs a side, a bootstrap over runs would have ten distinct resamples per side and
  under-cover; the t interval is the standard small-sample choice.

With fewer than ``MIN_RUNS`` runs (blocks) a side, or no spread at all, there is no interval.
"""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
from scipy import integrate, special, stats
from statsmodels.stats.multitest import multipletests

CONFIDENCE = 0.95
FAMILY_LEVEL = 0.05
MIN_RUNS = 3
# Accuracy differences within this many percentage points count as equivalent.
EQUIVALENCE_MARGIN_POINTS = 1.0
NO_INTERVAL = (float("nan"), float("nan"), float("nan"))


def geometric_mean(values) -> float:
    values = np.asarray(values, float)
    return float(stats.gmean(values)) if len(values) else float("nan")


def ratio_interval(numerator, denominator) -> tuple[float, float, float, float]:
    """Ratio of the geometric means of two groups of run-level values, its 95% Welch t interval and the
    two-sided p-value of "ratio = 1" (interval and p nan with fewer than ``MIN_RUNS`` runs a side or without
    spread on a side: identical numbers prove nothing)."""
    a, b = np.log(np.asarray(numerator, float)), np.log(np.asarray(denominator, float))
    ratio = float(np.exp(a.mean() - b.mean()))
    if min(len(a), len(b)) < MIN_RUNS or np.ptp(a) < 1e-12 or np.ptp(b) < 1e-12:
        return ratio, *NO_INTERVAL
    test = stats.ttest_ind(a, b, equal_var=False)
    interval = test.confidence_interval(CONFIDENCE)
    return ratio, float(np.exp(interval.low)), float(np.exp(interval.high)), float(test.pvalue)


def round_log_ratios(numerator: pd.DataFrame, denominator: pd.DataFrame) -> list[np.ndarray]:
    """Per block both columns ran interleaved in: the log ratio of the two columns' steps in each of their common
    rounds, in round order (``round_step_ms``, one value per round and run)."""
    if "block" not in numerator or "block" not in denominator:
        return []
    theirs = {block: rounds for block, rounds in zip(denominator["block"], denominator["round_step_ms"])
              if isinstance(block, str) and isinstance(rounds, dict)}
    blocks = []
    for block, rounds in zip(numerator["block"], numerator["round_step_ms"]):
        other = theirs.get(block) if isinstance(block, str) and isinstance(rounds, dict) else None
        common = sorted(set(rounds) & set(other)) if other else []
        if common:
            blocks.append(np.log([rounds[r] for r in common]) - np.log([other[r] for r in common]))
    return blocks


def block_estimates(numerator: pd.DataFrame, denominator: pd.DataFrame) -> np.ndarray:
    """Per block both columns ran interleaved in: the median over their common rounds of the log ratio of the
    two columns' steps in that round."""
    return np.asarray([float(np.median(logs)) for logs in round_log_ratios(numerator, denominator)])


def block_drifts(numerator: pd.DataFrame, denominator: pd.DataFrame) -> np.ndarray:
    """Whether a paired ratio is steady: per block both columns ran interleaved in, the median log ratio over the
    last third of their common rounds minus that over the first third (a block with fewer than 6 common rounds
    gives none). Their mean over blocks is the ratio's drift within a run, tested like any paired estimate."""
    return np.asarray([float(np.median(logs[-(len(logs) // 3):]) - np.median(logs[:len(logs) // 3]))
                       for logs in round_log_ratios(numerator, denominator) if len(logs) // 3 >= 2])


def paired_ratio(estimates) -> tuple[float, float, float, float]:
    """Ratio, 95% t interval over blocks and two-sided p of "ratio = 1" from per-block log ratios (the model in
    this module's docstring); interval and p nan with fewer than ``MIN_RUNS`` blocks or no spread."""
    d = np.asarray(estimates, float)
    ratio = float(np.exp(d.mean())) if len(d) else float("nan")
    if len(d) < MIN_RUNS or np.ptp(d) < 1e-12:  # equal up to rounding: identical numbers prove nothing
        return ratio, *NO_INTERVAL
    test = stats.ttest_1samp(d, 0.0)
    interval = test.confidence_interval(CONFIDENCE)
    return ratio, float(np.exp(interval.low)), float(np.exp(interval.high)), float(test.pvalue)


def group_ratio(numerator: pd.DataFrame, denominator: pd.DataFrame) -> tuple[float, float, float, float]:
    """The ratio of two columns' step times with its interval and p: paired by round where they ran interleaved
    in at least ``MIN_RUNS`` common blocks, else from run medians (Welch)."""
    estimates = block_estimates(numerator, denominator)
    if len(estimates) >= MIN_RUNS:
        return paired_ratio(estimates)
    return ratio_interval(numerator["run_step_ms"], denominator["run_step_ms"])


def difference_interval(differences) -> tuple[float, float, float]:
    """Mean of paired differences (or of any per-seed values: test accuracies) with a 95% t interval (nan with
    fewer than ``MIN_RUNS`` values or no spread)."""
    d = np.asarray(differences, float)
    mean = float(d.mean()) if len(d) else float("nan")
    if len(d) < MIN_RUNS or np.ptp(d) == 0:
        return mean, float("nan"), float("nan")
    interval = stats.ttest_1samp(d, 0.0).confidence_interval(CONFIDENCE)
    return mean, float(interval.low), float(interval.high)


def pooled_sd(groups) -> tuple[float, int]:
    """The within-group standard deviation pooled over groups (each a configuration's values over seeds):
    sqrt(sum of (n_i - 1) s_i^2 over sum of (n_i - 1)), and its degrees of freedom; groups of one value add none.
    Nan with no degrees of freedom."""
    squares = dof = 0
    for values in groups:
        values = np.asarray(values, float)
        if len(values) > 1:
            squares += float(np.sum((values - values.mean()) ** 2))
            dof += len(values) - 1
    return (float(np.sqrt(squares / dof)) if dof else float("nan")), dof


def holm(p_values, level: float = FAMILY_LEVEL) -> np.ndarray:
    """Which hypotheses Holm's step-down procedure rejects at ``level`` family-wise (nan: not tested)."""
    p = np.asarray(p_values, float)
    rejected = np.zeros(len(p), bool)
    tested = np.isfinite(p)
    if tested.any():
        # statsmodels' Holm ends in a full gc.collect(), about 0.1 s in a process holding pandas and scipy and paid
        # per family (make docs tests about 80): frozen objects are outside every collection, and freezing and
        # thawing are O(1).
        gc.freeze()
        try:
            rejected[tested] = multipletests(p[tested], alpha=level, method="holm")[0]
        finally:
            gc.unfreeze()
    return rejected


def tost_power(seeds: int, sd_points: float, margin: float = EQUIVALENCE_MARGIN_POINTS) -> float:
    """Chance that a paired 95% t interval over ``seeds`` differences lands inside +-margin (the TOST verdict, before
    Holm) when the true difference is zero and the paired sd is ``sd_points``: the power the equivalence verdicts
    have. Exact, by integrating over the sample variance: given s, the mean must lie within margin - h of 0, h the
    interval's half-width t s / sqrt(n), which is impossible once h > margin."""
    if seeds < MIN_RUNS or not np.isfinite(sd_points) or sd_points <= 0:
        return float("nan")
    df, quantile = seeds - 1, stats.t.ppf(0.5 + CONFIDENCE / 2, seeds - 1)

    # scipy.special's chi-square and normal functions: the same values as scipy.stats' distributions without their
    # per-call overhead (the integrand is called hundreds of times per row)
    def inside(share):  # share: the chi-square(n - 1) probability of (n - 1) s^2 / sigma^2 up to this value
        s = sd_points * np.sqrt(special.chdtri(df, 1.0 - share) / df)
        return 2 * special.ndtr((margin - quantile * s / np.sqrt(seeds)) * np.sqrt(seeds) / sd_points) - 1

    # Integrating over the variance's probability rather than the variance itself keeps the range finite and the
    # whole mass in view, however small the sd; beyond ``widest`` the half-width exceeds the margin.
    widest = df * (margin * np.sqrt(seeds) / (quantile * sd_points)) ** 2
    return float(integrate.quad(inside, 0.0, special.chdtr(df, widest), limit=200)[0])


def tost_p(differences, margin: float = EQUIVALENCE_MARGIN_POINTS) -> float:
    """The p-value of equivalence within +-margin: the larger of the two one-sided t tests (TOST)."""
    return max(stats.ttest_1samp(differences, -margin, alternative="greater").pvalue,
               stats.ttest_1samp(differences, margin, alternative="less").pvalue)


def censored_median(seconds: pd.Series) -> float:
    """Median time to target where a run that never reached it counts as the slowest; MLPerf's rule: more than
    one such run invalidates the cell (nan)."""
    values = seconds.astype(float).fillna(np.inf).to_numpy()
    if (values == np.inf).sum() > 1 or not len(values):
        return float("nan")
    median = float(np.median(values))
    return median if np.isfinite(median) else float("nan")
