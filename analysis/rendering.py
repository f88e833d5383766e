"""Tables and figures as text: Markdown and CSV tables, ratios as every sentence writes them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.tables import REFERENCE, ordered
from analysis.verdicts import twin_of
from model.spec import Configuration

# Significant digits of a float in a CSV table: more than any measurement here resolves, few enough that the last
# bits, which numpy's vectorized kernels round differently on AVX2 and AVX-512 CPUs, never reach the text (written
# in full, a Zen 3's tables differed from a Zen 5's in 81 files: 0.7850165991272147 against ...146).
CSV_DIGITS = 6


def ratio_text(ratio: float, low: float, high: float) -> str:
    """A ratio as every table and sentence writes it: '1.23x (95% CI 1.10-1.38)', or the point and 'no
    interval'."""
    interval = f"95% CI {low:.2f}-{high:.2f}" if np.isfinite(low) else "no interval"
    return f"{ratio:.2f}x ({interval})"


def _csv_float(value: float) -> str:
    if not math.isfinite(value) or value == 0:
        return f"{abs(value) if value == 0 else value:g}"
    # a large value keeps its integer digits (a run's start in epoch seconds), up to a double's 17
    return f"{value:.{min(max(CSV_DIGITS, math.floor(math.log10(abs(value) + 0.5)) + 1), 17)}g}"


def to_csv(table: pd.DataFrame) -> str:
    """The table as CSV, floats at ``CSV_DIGITS`` significant digits."""
    return table.to_csv(index=False, float_format=_csv_float)


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    if table.empty:
        return "_(no finished runs)_\n"
    return table.to_markdown(index=False, floatfmt=f".{digits}g") + "\n"


LINEAR_NAMES = {"tfidf-logreg": "TF-IDF uni+bigrams + LR", "tfidf-logreg-unigram": "TF-IDF unigrams + LR"}


def frontier_label(row) -> str:
    """A point of the accuracy-against-minutes picture (``analysis.tables.frontier``): 'GRU 1L bi (study)',
    'LSTM 1L bi, tensorflow (competitive-ngrams), ensemble of 3', 'TF-IDF uni+bigrams + LR (competitive)'."""
    if row["kind"] == "linear":  # named by the set that first fitted it: a machine may hold two tokenizers' fits
        return f"{LINEAR_NAMES.get(row['implementation'], row['implementation'])} ({row['set']})"
    column = "" if row["set"] == "study" else f", {row['implementation']}"
    # a table holding linear rows too carries layers as floats
    shape = Configuration(row["cell"], int(row["layers"]), bool(row["bidirectional"]))
    return (f"{shape.label}{column} ({row['set']})"
            + (", ensemble of 3" if row["kind"] == "ensemble" else ""))


def winners_across(machines: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Configuration rows x machine columns of ``fastest`` tables, and whether the winner depends on the CPU:
    ``same`` (one clear winner everywhere), ``depends`` (clear winners differ), else ``unclear``."""
    cells, verdicts = {}, {}
    for machine, table in machines.items():
        for _, row in table.iterrows():
            interval = ratio_text(row["ratio"], row["low"], row["high"])
            cells.setdefault(row["configuration"], {})[machine] = (
                f"{row['best']} {row['best_ms']:.1f} ms; {row['second']} {interval}" if row["clear"]
                else f"{row['best']} ≈ {row['second']} ({interval}, within the A/A margin)" if row["equivalent"]
                else f"{row['best']}, {row['second']}: not resolved ({interval})" if np.isfinite(row["low"])
                else f"{row['best']}, {row['second']}: untestable ({interval})")
            verdicts.setdefault(row["configuration"], []).append((row["best"], row["clear"]))
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=list(machines)).fillna("")
    frame["winner"] = [_verdict(verdicts[label]) for label in frame.index]
    return frame.rename_axis("configuration").reset_index()


def _verdict(results: list[tuple[str, bool]]) -> str:
    clear = {best for best, is_clear in results if is_clear}
    if len(results) < 2:
        return "one machine"
    if len(clear) > 1:
        return "depends on the CPU"
    if len(clear) == 1 and all(is_clear and best in clear for best, is_clear in results):
        return f"same: {clear.pop()}"
    return "unclear"


def ratios_across(machines: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(configuration, implementation) rows x machine columns: step ratio to native torch with its interval."""
    cells = {}
    for machine, table in machines.items():
        for _, row in table[table["implementation"] != REFERENCE].iterrows():
            if not np.isfinite(row.get("vs_torch", np.nan)) or twin_of(row["implementation"]):
                continue
            key = (Configuration.of(row).label, row["implementation"])
            cells.setdefault(key, {})[machine] = ratio_text(row["vs_torch"], row["vs_torch_low"],
                                                            row["vs_torch_high"])
    if not cells:
        return pd.DataFrame(columns=["configuration", "implementation", *machines])
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=list(machines)).fillna("")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["configuration", "implementation"])
    return frame.reset_index()


def precision_across(machines: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(configuration, implementation) rows x machine columns of ``precision`` tables: bf16 / fp32 with its
    interval."""
    cells = {}
    for machine, table in machines.items():
        for row in table.itertuples():
            key = (Configuration.of(row).label, row.implementation)
            cells.setdefault(key, {})[machine] = (ratio_text(row.ratio, row.low, row.high)
                                                  + (" emulated" if row.emulated else ""))
    if not cells:
        return pd.DataFrame(columns=["configuration", "implementation", *machines])
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=list(machines)).fillna("")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["configuration", "implementation"])
    return frame.reset_index()


def headline(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """Configuration rows x implementation columns, one cell per configuration and implementation:

    ``step``: geometric-mean ms/step [run min-max] (†: busy runs left out), ratio to torch (95% interval);
    ``memory``: peak MB above the baseline; ``accuracy``: mean test accuracy ± sd over seeds;
    ``time_to_target``: censored median seconds to the target validation accuracy with validation on the clock,
    then training only (runs that reached it / runs), and the median total training time."""
    cells = {}
    for _, row in table.iterrows():
        label = Configuration.of(row).label
        cells.setdefault(label, {})[row["implementation"]] = _headline_cell(row, value)
    frame = pd.DataFrame.from_dict(cells, orient="index")
    return frame.reindex(columns=ordered(table["implementation"])).rename_axis("configuration").reset_index().fillna("")


def _headline_cell(row, value: str) -> str:
    if value == "step":
        busy = f" †{row['noisy_runs']} busy" if row.get("noisy_runs") else ""
        text = f"{row['step_ms']:.1f} [{row['step_min_ms']:.1f}-{row['step_max_ms']:.1f}]{busy}"
        if row["implementation"] != REFERENCE and np.isfinite(row.get("vs_torch", np.nan)):
            text += ", " + ratio_text(row["vs_torch"], row["vs_torch_low"], row["vs_torch_high"])
        return text
    if value == "memory":
        return f"{row['peak_above_mb']:.0f} [{row['peak_min_mb']:.0f}-{row['peak_max_mb']:.0f}]"
    if value == "accuracy":
        sd = f" ± {row['accuracy_sd']:.3f}" if np.isfinite(row["accuracy_sd"]) else " (one seed)"
        return f"{row['accuracy']:.3f}{sd}"
    if value == "time_to_target":
        total = f"; all training {row['train_wall_s']:.0f} s"
        reached = f"({row['reached_target']}/{row.get('ttt_runs', row['runs'])})"
        if not np.isfinite(row.get("ttt_eval_wall_s", np.nan)):
            return f"{'no time' if row.get('reached_target') else 'not reached'} {reached}{total}"
        return (f"{row['ttt_eval_wall_s']:.0f} s with validation; training {row['ttt_wall_s']:.0f} s, CPU "
                f"{row['ttt_cpu_s']:.0f} s {reached}{total}")
    raise ValueError(value)


def roofline(table: pd.DataFrame, peak_gflops: float) -> pd.DataFrame:
    """Configuration rows x implementation columns: achieved GEMM GFLOP/s at the median step, and its share of
    the machine's large-GEMM peak."""
    cells = {}
    for _, row in table.dropna(subset=["gemm_gflop_per_step"]).iterrows():
        achieved = row["gemm_gflop_per_step"] / (row["step_ms"] / 1e3)
        label = Configuration.of(row).label
        cells.setdefault(label, {"GFLOP/step": f"{row['gemm_gflop_per_step']:.2f}"})[row["implementation"]] = (
            f"{achieved:.1f} ({achieved / peak_gflops:.0%})")
    frame = pd.DataFrame.from_dict(cells, orient="index")
    return frame.reindex(columns=["GFLOP/step"] + ordered(table["implementation"])).rename_axis(
        "configuration").reset_index().fillna("")
