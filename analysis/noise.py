"""The noise rules, all of them: which runs a timing figure may rest on.

A sequential run (one after another, ``--schedule sequential``) is *busy* when, while it trained, other processes
used more than ``QUIET_OTHER_CPU`` of the machine or the hypervisor stole more than ``QUIET_STEAL`` of it
(/proc/stat, ``runners.harness.measure.quietness``). A busy run counts in accuracy and never in a timing figure; the
sweep's ``--rerun-noisy`` runs it again. An interleaved run (``--schedule interleaved``) is always timed: a slow
period falls on every column of a round alike, and its comparisons are paired round by round
(``analysis.inference.paired_ratio``), so that slow periods widen the interval instead of deciding it.

The canary (``runners.harness.canary``) is recorded beside every run and judges none. Measured: across the 36
standard runs of a Zen 4 its in-training reading correlated with the run's deviation from its cell at Spearman 0.19
(p = 0.26), it flagged the fastest run of its cell, and runs shorter than three canaries (every quick, decomposition
and depth run) could not be judged at all; the A/A sweeps of the interleaving work repeat the check
(README, "Interleaved runs"). Its slowdown stays in the tables and the canary plot as a diagnostic.

This module is in ``analysis`` because the analysis may not import the runners; the sweep's re-run rule imports it.
"""

from __future__ import annotations

import pandas as pd

# The run-to-run spread on these VMs is about 8% of a run's median step, and the slow periods seen were 20-57% slower.
QUIET_OTHER_CPU, QUIET_STEAL = 0.05, 0.02
# The canary's slowdown (diagnostic only) is the median of at least this many in-training canaries: one is within
# its own noise (single canaries of a quiet AMD EPYC read 1.04-1.63x their reference).
CANARY_MIN_SAMPLES = 3


def interleaved(runs: pd.DataFrame) -> pd.Series:
    return runs.get("schedule", pd.Series("sequential", index=runs.index)).eq("interleaved")


def quiet(runs: pd.DataFrame) -> pd.Series:
    """True where a run may enter timing figures: interleaved, or sequential on a quiet machine by /proc/stat
    (unknown counts as quiet)."""
    def column(name):
        return runs.get(name, pd.Series(index=runs.index, dtype=float)).astype(float).fillna(0)

    calm = (column("other_cpu_fraction") <= QUIET_OTHER_CPU) & (column("steal_fraction") <= QUIET_STEAL)
    return interleaved(runs) | calm


def canary_slowdown(runs: pd.DataFrame, roofline: dict | None) -> tuple[pd.DataFrame, dict | None]:
    """Each run's canary slowdown (median in-training canary over the machine's reference measured beside the
    roofline; none without that reference or with fewer than ``CANARY_MIN_SAMPLES`` canaries): a diagnostic."""
    measured = (roofline or {}).get("canary")
    if not measured or "canary_training_ms" not in runs or runs["canary_training_ms"].isna().all():
        return runs, None
    reference = dict(ms=measured["total_ms"], source="measured beside the roofline")
    judged = runs["canary_training_n"] >= CANARY_MIN_SAMPLES
    return runs.assign(canary_slowdown=(runs["canary_training_ms"] / reference["ms"]).where(judged)), reference
