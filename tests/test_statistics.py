"""The paired ratio of interleaved runs: hand-computed values, pairing by block and round, and its coverage."""

import numpy as np
import pandas as pd
import pytest

from analysis import tables


def interleaved_runs(column: str, blocks: dict[str, dict[int, float]]) -> pd.DataFrame:
    return pd.DataFrame([dict(implementation=column, block=block, round_step_ms=rounds,
                              run_step_ms=float(np.median(list(rounds.values()))), schedule="interleaved")
                         for block, rounds in blocks.items()])


def test_paired_ratio_against_hand_computed_values():
    # Block log ratios 0.10, 0.12, 0.08: mean 0.10, sd 0.02, se 0.02 / sqrt(3) = 0.011547, t(0.975, 2) = 4.302653;
    # exp(0.10) = 1.105171, exp(0.10 -+ 4.302653 * 0.011547) = 1.051605, 1.161466; p = 2 * P(T2 > 8.660) = 0.01307.
    ratio, low, high, p = tables.paired_ratio([0.10, 0.12, 0.08])
    assert (ratio, low, high, p) == pytest.approx((1.105171, 1.051605, 1.161466, 0.013072), abs=1e-6)
    assert np.isnan(tables.paired_ratio([0.1, 0.2])[1])  # two blocks: no interval
    assert np.isnan(tables.paired_ratio([0.1, 0.1, 0.1])[1])  # no spread: no interval


def test_block_estimates_pair_rounds_within_a_block_and_never_across_blocks():
    a = interleaved_runs("tensorflow", {"b1": {0: 20.0, 1: 22.0, 2: 40.0}, "b2": {0: 11.0, 1: 30.0},
                                        "b9": {0: 5.0}})
    b = interleaved_runs("torch", {"b1": {0: 10.0, 1: 11.0, 2: 10.0}, "b2": {0: 10.0, 1: 20.0, 2: 99.0}})
    estimates = tables.block_estimates(a, b)
    # b1: log 2, log 2, log 4 -> median log 2; b2: common rounds 0 and 1 -> median of log 1.1 and log 1.5; b9 unpaired.
    assert estimates == pytest.approx([np.log(2.0), (np.log(1.1) + np.log(1.5)) / 2])


def test_group_ratio_pairs_interleaved_runs_and_falls_back_to_welch_for_sequential_ones():
    a = interleaved_runs("tensorflow", {f"b{i}": {r: 20.0 * (1 + 0.1 * i) * (1.02 if r % 2 else 1.0)
                                                 for r in range(5)} for i in range(3)})
    b = interleaved_runs("torch", {f"b{i}": {r: 10.0 * (1 + 0.1 * i) for r in range(5)} for i in range(3)})
    ratio, low, high, p = tables.group_ratio(a, b)
    # Every block has 3 of 5 rounds at 2.0 and 2 at 2.04: median log 2.0 in each, so no spread, no interval.
    assert ratio == pytest.approx(2.0) and np.isnan(low)
    a["round_step_ms"] = [rounds if i < 2 else {r: 2.1 * v for r, v in b["round_step_ms"][2].items()}
                          for i, rounds in enumerate(a["round_step_ms"])]
    assert tables.group_ratio(a, b)[0] == pytest.approx(np.exp((2 * np.log(2.0) + np.log(2.1)) / 3))
    sequential = a.drop(columns=["block", "round_step_ms"])
    assert tables.group_ratio(sequential, b) == tables.ratio_interval(a["run_step_ms"], b["run_step_ms"])


def simulated_blocks(rng, true_ratio: float, blocks: int, rounds: int) -> np.ndarray:
    """Log step times of two columns interleaved: a slow period shared by both turns of a round (up to 1.6x, for
    minutes), a process effect per block and column (2%), step noise (8%) and rare stalls of one step (2-3x)."""
    period = np.repeat(rng.choice([1.0, 1.6], size=(blocks, rounds // 10 + 1), p=[0.7, 0.3]), 10, axis=1)[:, :rounds]
    shared = np.log(period)
    process = rng.normal(0, 0.02, size=(2, blocks, 1))
    noise = rng.normal(0, 0.08, size=(2, blocks, rounds))
    stalls = np.log(rng.uniform(2, 3, size=(2, blocks, rounds))) * (rng.random((2, blocks, rounds)) < 0.02)
    a = np.log(true_ratio) + shared + process[0] + noise[0] + stalls[0]
    b = shared + process[1] + noise[1] + stalls[1]
    return np.median(a - b, axis=1)


@pytest.mark.parametrize("blocks", [3, 5])
def test_the_paired_interval_covers_the_true_ratio_95_percent_of_the_time(blocks):
    rng = np.random.default_rng(0)
    covered, draws = 0, 2_000
    for _ in range(draws):
        _, low, high, _ = tables.paired_ratio(simulated_blocks(rng, 1.05, blocks, 37))
        covered += low <= 1.05 <= high
    assert 0.93 <= covered / draws <= 0.97
