"""Pure table building: run rows and raw series in, pandas tables out (no files read or written).

The unit of evidence is the run (a fresh process): a configuration's step time
is the median over its runs of each run's median steady step, shown with the
run-to-run min-max. Ratios to native PyTorch are geometric-mean ratios of run
medians with a 95% Welch t interval on their logarithms, so anything that
slowed a whole run (a busy neighbour, frequency, allocator state) widens the
interval instead of being credited to the implementation. With three runs a
side, a bootstrap over runs would have ten distinct resamples per side and
under-cover; the t interval is the standard small-sample choice. A winner is
declared only where the interval excludes 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.load import KEYS
from model.implementations import NAMES, base_name, get, native_of

REFERENCE = "torch"
CONFIDENCE = 0.95
# A run is flagged as not quiet when others used more than this share of the machine while it trained.
QUIET_OTHER_CPU, QUIET_STEAL = 0.05, 0.02
# Accuracy differences within this many percentage points count as equivalent.
EQUIVALENCE_MARGIN_POINTS = 1.0


def ratio_interval(numerator, denominator) -> tuple[float, float, float]:
    """Geometric-mean ratio of two groups of run-level values, with a 95% Welch t interval (nan if either
    group has fewer than two runs)."""
    a, b = np.log(np.asarray(numerator, float)), np.log(np.asarray(denominator, float))
    ratio = float(np.exp(a.mean() - b.mean()))
    if len(a) < 2 or len(b) < 2:
        return ratio, float("nan"), float("nan")
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # no spread at all: the interval is the point
        return ratio, ratio, ratio
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    return ratio, float(np.exp(interval.low)), float(np.exp(interval.high))


def difference_interval(differences) -> tuple[float, float, float]:
    """Mean of paired differences with a 95% t interval (nan with fewer than two pairs)."""
    d = np.asarray(differences, float)
    if len(d) < 2:
        return float(d.mean()) if len(d) else float("nan"), float("nan"), float("nan")
    if np.ptp(d) == 0:
        return float(d.mean()), float(d.mean()), float(d.mean())
    interval = stats.ttest_1samp(d, 0.0).confidence_interval(CONFIDENCE)
    return float(d.mean()), float(interval.low), float(interval.high)


def quiet(runs: pd.DataFrame) -> pd.Series:
    """True where the machine was quiet while the run trained (unknown counts as quiet)."""
    other = runs.get("other_cpu_fraction", pd.Series(index=runs.index, dtype=float)).fillna(0)
    steal = runs.get("steal_fraction", pd.Series(index=runs.index, dtype=float)).fillna(0)
    return (other <= QUIET_OTHER_CPU) & (steal <= QUIET_STEAL)


def ordered(columns) -> list[str]:
    """Table columns in the table's order: implementations as listed in the table, each followed by its variants."""
    return sorted(set(columns), key=lambda name: (NAMES.index(base_name(name)), name))


def _order(table: pd.DataFrame, sort: list[str]) -> pd.DataFrame:
    if table.empty:
        return table
    rank = {name: i for i, name in enumerate(ordered(table["implementation"]))}
    table = table.assign(order=table["implementation"].map(rank))
    return table.sort_values(sort + ["order"]).drop(columns="order").reset_index(drop=True)


def timed_groups(runs: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """Finished runs with a steady step time, by (implementation, cell, layers, bidirectional)."""
    return dict(tuple(runs[runs["status"] == "ok"].dropna(subset=["run_step_ms"]).groupby(KEYS)))


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (implementation, cell, layers, bidirectional): speed over runs, quality over seeds, CPU,
    memory, and the run-level ratio to native PyTorch."""
    rows = []
    groups = timed_groups(runs)
    for key, group in groups.items():
        implementation, cell, layers, bidirectional = key
        row = dict(zip(KEYS, key), runs=len(group), noisy_runs=int((~quiet(group)).sum()),
                   step_ms=group["run_step_ms"].median(), step_min_ms=group["run_step_ms"].min(),
                   step_max_ms=group["run_step_ms"].max(), step_iqr_ms=group["run_step_iqr_ms"].median(),
                   accuracy=group["accuracy"].mean(), accuracy_sd=group["accuracy"].std(ddof=1),
                   accuracy_min=group["accuracy"].min(), accuracy_max=group["accuracy"].max(),
                   f1=group["f1"].mean(), roc_auc=group["roc_auc"].mean(), log_loss=group["log_loss"].mean(),
                   epoch_s=group["epoch_s"].median(), first_step_s=group["first_step_s"].median(),
                   train_wall_s=group["train_wall_s"].median(), train_cpu_s=group["train_cpu_s"].median(),
                   train_samples_per_s=group["train_samples_per_s"].median(),
                   inference_per_s=group["inference_per_s"].median(), latency_ms=group["latency_ms"].median(),
                   cpu_utilisation=group["cpu_utilisation"].median(), peak_above_mb=group["peak_above_mb"].median(),
                   peak_min_mb=group["peak_above_mb"].min(), peak_max_mb=group["peak_above_mb"].max(),
                   rss_after_imports_mb=group["rss_after_imports_mb"].median(),
                   kernel_path=group["kernel_path"].iloc[0],
                   gemm_gflop_per_step=group["gemm_gflop_per_step"].iloc[0] if "gemm_gflop_per_step" in group
                   else np.nan)
        if "ttt_wall_s" in group and group["target_accuracy"].notna().any():
            reached = group["ttt_wall_s"].notna()
            row.update(target_accuracy=group["target_accuracy"].iloc[0], reached_target=int(reached.sum()),
                       ttt_wall_s=group.loc[reached, "ttt_wall_s"].median() if reached.any() else np.nan,
                       ttt_cpu_s=group.loc[reached, "ttt_cpu_s"].median() if reached.any() else np.nan,
                       ttt_eval_wall_s=group.loc[reached, "ttt_eval_wall_s"].median() if reached.any() else np.nan)
        reference = groups.get((REFERENCE, cell, layers, bidirectional))
        if reference is not None:
            row["vs_torch"], row["vs_torch_low"], row["vs_torch_high"] = ratio_interval(
                group["run_step_ms"], reference["run_step_ms"])
        rows.append(row)
    return _order(pd.DataFrame(rows), ["cell", "bidirectional", "layers"])


def overhead(runs: pd.DataFrame) -> pd.DataFrame:
    """Each Keras implementation against the native one on its backend, per configuration, over runs."""
    groups = timed_groups(runs)
    rows = []
    for (implementation, cell, layers, bidirectional), group in groups.items():
        native = groups.get((native_of(base_name(implementation)), cell, layers, bidirectional))
        if native is None:
            continue
        ratio, low, high = ratio_interval(group["run_step_ms"], native["run_step_ms"])
        rows.append(dict(implementation=implementation, backend=get(base_name(implementation)).keras_backend,
                         cell=cell,
                         layers=layers, bidirectional=bidirectional, keras_ms=group["run_step_ms"].median(),
                         native_ms=native["run_step_ms"].median(), overhead=ratio, low=low, high=high))
    return _order(pd.DataFrame(rows), ["backend", "cell", "bidirectional", "layers"])


def depth_scaling(table: pd.DataFrame) -> pd.DataFrame:
    """Step time per depth and its growth relative to the shallowest depth run, per implementation and cell."""
    wide = table.pivot_table(index=["implementation", "cell", "bidirectional"], columns="layers", values="step_ms")
    depths = list(wide.columns)
    wide.columns = [f"{c}_layer_ms" for c in depths]
    for depth in depths[1:]:
        wide[f"{depth}x_vs_{depths[0]}"] = wide[f"{depth}_layer_ms"] / wide[f"{depths[0]}_layer_ms"]
    return wide.reset_index()


def loss_agreement(runs: pd.DataFrame, losses: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per configuration and seed: how far each implementation's training-loss trajectory is from native
    PyTorch's over the same batches from the same weights (per step, and as the epoch's running mean)."""
    finished = runs[runs["status"] == "ok"]
    rows = []
    for (cell, layers, bidirectional, seed), group in finished.groupby(["cell", "layers", "bidirectional", "seed"]):
        by_name = dict(zip(group["implementation"], group["run_id"]))
        reference = losses.get(by_name.get(REFERENCE, ""), np.array([]))
        for name, run_id in by_name.items():
            mine = losses.get(run_id, np.array([]))
            steps = min(len(mine), len(reference))
            if name == REFERENCE or steps == 0:
                continue
            gap = np.abs(mine[:steps] - reference[:steps])
            running = np.abs(np.cumsum(mine[:steps]) - np.cumsum(reference[:steps])) / np.arange(1, steps + 1)
            rows.append(dict(implementation=name, cell=cell, layers=layers, bidirectional=bidirectional, seed=seed,
                             steps=steps, first_step_gap=float(gap[0]), max_step_gap=float(gap.max()),
                             mean_step_gap=float(gap.mean()), max_running_mean_gap=float(running.max())))
    return _order(pd.DataFrame(rows), ["cell", "bidirectional", "layers", "seed"])


def equivalence(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of each implementation minus native PyTorch's, paired by seed (same weights, same batches),
    with a 95% t interval and a verdict against a margin of ``EQUIVALENCE_MARGIN_POINTS``."""
    finished = runs[runs["status"] == "ok"]
    rows = []
    for (cell, layers, bidirectional), group in finished.groupby(["cell", "layers", "bidirectional"]):
        reference = group[group["implementation"] == REFERENCE].set_index("seed")["accuracy"]
        for name, mine in group.groupby("implementation"):
            if name == REFERENCE:
                continue
            paired = mine.set_index("seed")["accuracy"].to_frame("mine").join(reference.rename("ref"), how="inner")
            if paired.empty:
                continue
            mean, low, high = difference_interval((paired["mine"] - paired["ref"]) * 100)
            margin = EQUIVALENCE_MARGIN_POINTS
            if not np.isfinite(low):
                verdict = "no interval (one seed)"
            elif -margin <= low and high <= margin:
                verdict = f"equivalent within ±{margin:g} point"
            elif low > 0 or high < 0:
                verdict = "higher" if low > 0 else "lower"
            else:
                verdict = "inconclusive"
            rows.append(dict(implementation=name, cell=cell, layers=layers, bidirectional=bidirectional,
                             seeds=len(paired), difference_points=mean, low=low, high=high, verdict=verdict))
    return _order(pd.DataFrame(rows), ["cell", "bidirectional", "layers"])


def programming_model(table: pd.DataFrame) -> pd.DataFrame:
    """Each variant column (eager vs graph, XLA, torch.compile, Keras jit) against its implementation's default
    column on the same configuration: the compile or trace time it adds to the first step, the steady-state
    gain per step, and the number of steps after which it has paid for itself."""
    rows = []
    for _, row in table.iterrows():
        name = row["implementation"]
        if base_name(name) == name:
            continue
        default = table[(table["implementation"] == base_name(name)) & (table["cell"] == row["cell"])
                        & (table["layers"] == row["layers"]) & (table["bidirectional"] == row["bidirectional"])]
        if default.empty:
            continue
        default = default.iloc[0]
        extra_first_s = row["first_step_s"] - default["first_step_s"]
        gain_ms = default["step_ms"] - row["step_ms"]
        if gain_ms > 0:
            break_even = max(0.0, extra_first_s) * 1e3 / gain_ms
        else:
            break_even = np.nan  # never: slower per step
        rows.append(dict(variant=name, cell=row["cell"], layers=row["layers"], bidirectional=row["bidirectional"],
                         default_step_ms=default["step_ms"], variant_step_ms=row["step_ms"],
                         speedup=default["step_ms"] / row["step_ms"], default_first_step_s=default["first_step_s"],
                         variant_first_step_s=row["first_step_s"], break_even_steps=break_even))
    return pd.DataFrame(rows)


def fastest(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration with two or more implementations: the fastest by median step, the runner-up, and the
    runner-up's step ratio to it over whole runs with its interval; ``clear`` where the interval excludes 1."""
    groups, rows = timed_groups(runs), []
    for (cell, bidirectional, layers), group in table.groupby(["cell", "bidirectional", "layers"]):
        if len(group) < 2:
            continue
        best, second = (row for _, row in group.sort_values("step_ms").head(2).iterrows())
        ratio, low, high = ratio_interval(*(groups[(row["implementation"], cell, layers, bidirectional)]["run_step_ms"]
                                            for row in (second, best)))
        rows.append(dict(configuration=configuration_label(cell, layers, bidirectional), cell=cell, layers=layers,
                         bidirectional=bidirectional, best=best["implementation"], best_ms=best["step_ms"],
                         best_runs=int(best["runs"]), second=second["implementation"], second_ms=second["step_ms"],
                         second_runs=int(second["runs"]), ratio=ratio, low=low, high=high,
                         clear=bool(np.isfinite(low) and low > 1.0)))
    return pd.DataFrame(rows)


def winners_across(machines: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Configuration rows x machine columns of ``fastest`` tables, and whether the winner depends on the CPU:
    ``same`` (one clear winner everywhere), ``depends`` (clear winners differ), else ``unclear``."""
    cells, verdicts = {}, {}
    for machine, table in machines.items():
        for _, row in table.iterrows():
            margin = f"{row['ratio']:.2f}x" + (f" ({row['low']:.2f}-{row['high']:.2f})" if np.isfinite(row["low"])
                                               else "")
            cells.setdefault(row["configuration"], {})[machine] = (
                f"{row['best']} {row['best_ms']:.1f} ms; {row['second']} {margin}" if row["clear"]
                else f"{row['best']} ≈ {row['second']} ({margin})")
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
            if not np.isfinite(row.get("vs_torch", np.nan)):
                continue
            key = (configuration_label(row["cell"], row["layers"], row["bidirectional"]), row["implementation"])
            interval = (f" ({row['vs_torch_low']:.2f}-{row['vs_torch_high']:.2f})"
                        if np.isfinite(row["vs_torch_low"]) else "")
            cells.setdefault(key, {})[machine] = f"{row['vs_torch']:.2f}x{interval}"
    if not cells:
        return pd.DataFrame(columns=["configuration", "implementation", *machines])
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=list(machines)).fillna("")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["configuration", "implementation"])
    return frame.reset_index()


def configuration_label(cell: str, layers: int, bidirectional: bool) -> str:
    name = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}[cell]
    return f"{name} {layers}L{' bi' if bidirectional else ''}"


def headline(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """Configuration rows x implementation columns, one cell per configuration and implementation:

    ``step``: median ms/step [run min-max], ratio to torch (95% interval); ``memory``: peak MB above the
    baseline; ``accuracy``: mean test accuracy ± sd over seeds; ``time_to_target``: median training
    seconds to the target validation accuracy (runs that reached it / runs), and the median total training time."""
    cells = {}
    for _, row in table.iterrows():
        label = configuration_label(row["cell"], row["layers"], row["bidirectional"])
        cells.setdefault(label, {})[row["implementation"]] = _headline_cell(row, value)
    frame = pd.DataFrame.from_dict(cells, orient="index")
    return frame.reindex(columns=ordered(table["implementation"])).rename_axis("configuration").reset_index().fillna("")


def _headline_cell(row, value: str) -> str:
    if value == "step":
        text = f"{row['step_ms']:.1f} [{row['step_min_ms']:.1f}-{row['step_max_ms']:.1f}]"
        if row["implementation"] != REFERENCE and np.isfinite(row.get("vs_torch", np.nan)):
            interval = (f" ({row['vs_torch_low']:.2f}-{row['vs_torch_high']:.2f})"
                        if np.isfinite(row["vs_torch_low"]) else "")
            text += f", {row['vs_torch']:.2f}x{interval}"
        return text
    if value == "memory":
        return f"{row['peak_above_mb']:.0f} [{row['peak_min_mb']:.0f}-{row['peak_max_mb']:.0f}]"
    if value == "accuracy":
        sd = f" ± {row['accuracy_sd']:.3f}" if np.isfinite(row["accuracy_sd"]) else ""
        return f"{row['accuracy']:.3f}{sd}"
    if value == "time_to_target":
        total = f"; all training {row['train_wall_s']:.0f} s"
        if not row.get("reached_target"):
            return f"not reached (0/{row['runs']}){total}"
        return (f"{row['ttt_wall_s']:.0f} s, CPU {row['ttt_cpu_s']:.0f} s ({row['reached_target']}/{row['runs']})"
                f"{total}")
    raise ValueError(value)


def roofline(table: pd.DataFrame, peak_gflops: float) -> pd.DataFrame:
    """Configuration rows x implementation columns: achieved GEMM GFLOP/s at the median step, and its share of
    the machine's large-GEMM peak."""
    cells = {}
    for _, row in table.dropna(subset=["gemm_gflop_per_step"]).iterrows():
        achieved = row["gemm_gflop_per_step"] / (row["step_ms"] / 1e3)
        label = configuration_label(row["cell"], row["layers"], row["bidirectional"])
        cells.setdefault(label, {"GFLOP/step": f"{row['gemm_gflop_per_step']:.2f}"})[row["implementation"]] = (
            f"{achieved:.1f} ({achieved / peak_gflops:.0%})")
    frame = pd.DataFrame.from_dict(cells, orient="index")
    return frame.reindex(columns=["GFLOP/step"] + ordered(table["implementation"])).rename_axis(
        "configuration").reset_index().fillna("")


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    if table.empty:
        return "_(no finished runs)_\n"
    return table.to_markdown(index=False, floatfmt=f".{digits}g") + "\n"
