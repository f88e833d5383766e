"""Figures from the tables: each function returns a matplotlib Figure; the caller saves it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.load import KEYS  # noqa: E402
from analysis.rendering import frontier_label  # noqa: E402
from analysis.tables import ordered  # noqa: E402
from model.implementations import NAMES, base_name  # noqa: E402
from model.spec import CELL_NAMES, CONFIGURATION, Configuration, depth_label  # noqa: E402

DPI = 110


def _lay_out(figure, rect=(0, 0, 1, 1)) -> None:
    """tight_layout with every axes' edges on whole pixels. Figures are drawn the same on every CPU only where no
    edge sits on a pixel's rounding boundary: tight_layout's default pad (16.5 px at this DPI) put each right edge
    on one, and a legend, tick or dash placed from an edge inherits the last bits of the layout's arithmetic, which
    differ between AVX2 and AVX-512 CPUs (numpy dispatches other kernels; a Zen 3's figures differed from a Zen
    5's). A pad of one font size (15.28 px) keeps the edges off the boundary; rounding them ends the inheritance."""
    figure.tight_layout(pad=1.0, rect=rect)
    width, height = figure.get_size_inches() * DPI
    for axis in figure.axes:
        x0, y0, x1, y1 = axis.get_position().extents
        x0, x1, y0, y1 = round(x0 * width), round(x1 * width), round(y0 * height), round(y1 * height)
        axis.set_position((x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height))


# Fixed colours for the first four, then matplotlib's cycle for any implementation added to the table.
COLOURS = dict(zip(NAMES, ("#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", *plt.get_cmap("tab10").colors[4:])))


def save(figure, path) -> None:
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _implementations(table):
    return ordered(table["implementation"])


def colour_of(name: str) -> str:
    """Variant columns share their implementation's colour."""
    return COLOURS[base_name(name)]


def step_time_vs_depth(table: pd.DataFrame):
    cells = sorted(table["cell"].unique())
    figure, axes = plt.subplots(1, len(cells), figsize=(4.5 * len(cells), 4), squeeze=False, sharey=True)
    for axis, cell in zip(axes[0], cells):
        for name in _implementations(table):
            for bidirectional, style in ((False, "-o"), (True, "--s")):
                rows = table[(table["cell"] == cell) & (table["implementation"] == name)
                             & (table["bidirectional"] == bidirectional)].sort_values("layers")
                if rows.empty:
                    continue
                # clip: the geometric mean of equal runs can round a hair outside their range
                error = [(rows["step_ms"] - rows["step_min_ms"]).clip(lower=0),
                         (rows["step_max_ms"] - rows["step_ms"]).clip(lower=0)]
                axis.errorbar(rows["layers"], rows["step_ms"], yerr=error, fmt=style, capsize=3,
                              color=colour_of(name), label=name + (" (bi)" if bidirectional else ""))
        axis.set_title(CELL_NAMES[cell])
        axis.set_xlabel("recurrent layers")
        axis.set_xticks(sorted(table["layers"].unique()))
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("steady training step, ms (median over runs, bars: run min-max; log scale)")
    axes[0][-1].legend(fontsize=8)
    figure.suptitle("Training step time vs depth")
    _lay_out(figure)
    return figure


def _baseline_lines(axis, baseline: dict | None) -> None:
    """The linear references as horizontal lines (the unigram one where the sweep has it)."""
    if not baseline:
        return
    lines = ((baseline["metrics"]["accuracy"], "TF-IDF uni+bigrams + LR", ":"),
             (baseline.get("unigram_accuracy"), "TF-IDF unigrams + LR", "--"))
    for accuracy, label, style in lines:
        if accuracy is not None:
            axis.axhline(accuracy * 100, color="grey", linestyle=style, label=label)


def accuracy_vs_cpu_minutes(runs: pd.DataFrame, baseline: dict | None):
    """Every run: test accuracy against the CPU time its training took, with the two linear references."""
    figure, axis = plt.subplots(figsize=(7, 5))
    runs = runs[runs["status"] == "ok"]
    for name in _implementations(runs):
        rows = runs[runs["implementation"] == name]
        axis.scatter(rows["train_cpu_s"] / 60, rows["accuracy"] * 100, color=colour_of(name), label=name, alpha=0.8)
    _baseline_lines(axis, baseline)
    axis.set_xscale("log")
    axis.set_xlabel("training CPU-minutes, validation excluded (log scale)")
    axis.set_ylabel("test accuracy, %")
    axis.set_title("Accuracy per CPU-minute: every run (up and left is better)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    _lay_out(figure)
    return figure


def accuracy_vs_training_time(table: pd.DataFrame, baseline: dict | None):
    figure, axis = plt.subplots(figsize=(7, 5))
    for name in _implementations(table):
        rows = table[table["implementation"] == name]
        axis.scatter(rows["epoch_s"] * 1.0, rows["accuracy"] * 100, color=colour_of(name), label=name, alpha=0.8)
        for _, row in rows.iterrows():
            axis.annotate(f"{row['cell']}{row['layers']}", (row["epoch_s"], row["accuracy"] * 100), fontsize=7,
                          xytext=(3, 2), textcoords="offset points")
    _baseline_lines(axis, baseline)
    axis.set_xscale("log")
    axis.set_xlabel("seconds per training epoch, validation excluded (log scale)")
    axis.set_ylabel("test accuracy, %")
    axis.set_title("Accuracy vs training cost (up and left is better)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    _lay_out(figure)
    return figure


def peak_memory(table: pd.DataFrame):
    names = _implementations(table)
    configurations = table[KEYS[1:]].drop_duplicates().sort_values(KEYS[1:]).itertuples(index=False)
    configurations = list(configurations)
    figure, axis = plt.subplots(figsize=(max(7, 0.6 * len(configurations) * len(names) / 2), 4.5))
    width = 0.8 / len(names)
    for offset, name in enumerate(names):
        heights = []
        for cell, layers, bidirectional in configurations:
            row = table[(table["implementation"] == name) & (table["cell"] == cell) & (table["layers"] == layers)
                        & (table["bidirectional"] == bidirectional)]
            heights.append(row["peak_above_mb"].iloc[0] if len(row) else np.nan)
        axis.bar(np.arange(len(configurations)) + offset * width, heights, width, color=colour_of(name), label=name)
    axis.set_xticks(np.arange(len(configurations)) + 0.4 - width / 2)
    axis.set_xticklabels([Configuration(*c).slug for c in configurations], rotation=45, fontsize=8)
    axis.set_ylabel("peak RSS above the ready baseline, MB (median over runs)")
    axis.set_title("Peak memory during training")
    axis.legend(fontsize=8)
    axis.grid(True, axis="y", alpha=0.3)
    _lay_out(figure)
    return figure


def step_time_distributions(runs: pd.DataFrame, samples: dict):
    """Pooled steady step samples per implementation and configuration; bidirectional stacks on their own."""
    finished = runs[runs["status"] == "ok"]
    cells = sorted(finished["cell"].unique())
    figure, axes = plt.subplots(1, len(cells), figsize=(4.5 * len(cells), 4), squeeze=False, sharey=True)
    for axis, cell in zip(axes[0], cells):
        data, labels, colours = [], [], []
        for name in _implementations(finished):
            rows = finished[(finished["cell"] == cell) & (finished["implementation"] == name)]
            for (bidirectional, layers), group in rows.groupby(["bidirectional", "layers"]):
                data.append(np.concatenate([samples[i] for i in group["run_id"]]))
                labels.append(f"{name}\n{depth_label(layers, bidirectional)}")
                colours.append(colour_of(name))
        boxes = axis.boxplot(data, patch_artist=True, showfliers=False)
        for patch, colour in zip(boxes["boxes"], colours):
            patch.set_facecolor(colour)
            patch.set_alpha(0.6)
        axis.set_xticks(range(1, len(labels) + 1))
        axis.set_xticklabels(labels, rotation=90, fontsize=7)
        axis.set_yscale("log")
        axis.set_title(CELL_NAMES[cell])
        axis.grid(True, axis="y", which="both", alpha=0.3)
    axes[0][0].set_ylabel("training step, ms (log scale; whiskers 1.5 IQR)")
    figure.suptitle("Step-time distributions, all runs pooled (warm-up excluded)")
    _lay_out(figure)
    return figure


def loss_trajectories(runs: pd.DataFrame, losses: dict):
    """Running-mean training loss per step of each implementation, seed 0 (or the lowest seed), per cell."""
    finished = runs[runs["status"] == "ok"]
    configurations = finished[CONFIGURATION].drop_duplicates().sort_values(
        CONFIGURATION).itertuples(index=False)
    configurations = list(configurations)
    figure, axes = plt.subplots(1, max(1, len(configurations)), figsize=(4.5 * max(1, len(configurations)), 3.8),
                                squeeze=False)
    for axis, (cell, layers, bidirectional) in zip(axes[0], configurations):
        rows = finished[(finished["cell"] == cell) & (finished["layers"] == layers)
                        & (finished["bidirectional"] == bidirectional)]
        seed = rows["seed"].min()
        for _, row in rows[rows["seed"] == seed].iterrows():
            series = losses.get(row["run_id"], np.array([]))
            if len(series):
                axis.plot(np.arange(1, len(series) + 1), np.cumsum(series) / np.arange(1, len(series) + 1),
                          color=colour_of(row["implementation"]), label=row["implementation"], linewidth=1.2)
        axis.set_title(f"{Configuration(cell, layers, bidirectional).label}, "
                       f"seed {seed}")
        axis.set_xlabel("training step")
        axis.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("training loss, running mean")
    if axes[0][-1].get_legend_handles_labels()[0]:  # schema-1 records have no per-step losses to draw
        axes[0][-1].legend(fontsize=8)
    figure.suptitle("Training-loss trajectories over identical batches from identical weights")
    _lay_out(figure)
    return figure


def canary(runs: pd.DataFrame):
    """Every run against sweep time: its canary slowdown during training, and its steady step relative to the
    median run of its column and configuration, so slow periods and the runs they touched line up."""
    finished = runs[runs["status"] == "ok"].dropna(subset=["started_at", "run_step_ms"])
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    if finished.empty or "canary_slowdown" not in finished:
        top.text(0.5, 0.5, "no canary in these records", ha="center", transform=top.transAxes)
        return figure
    minutes = (finished["started_at"] - finished["started_at"].min()) / 60
    relative = finished["run_step_ms"] / finished.groupby(KEYS)["run_step_ms"].transform("median")
    for name in _implementations(finished):
        mine = finished["implementation"] == name
        top.scatter(minutes[mine], finished.loc[mine, "canary_slowdown"], color=colour_of(name), label=name, s=18)
        bottom.scatter(minutes[mine], relative[mine], color=colour_of(name), s=18)
    top.set_ylabel("canary / reference")
    bottom.axhline(1.0, color="grey", linewidth=1)
    bottom.set_ylabel("step / median of its cell")
    bottom.set_xlabel("minutes since the sweep's first run started")
    top.legend(fontsize=7, ncol=3)
    figure.suptitle("Canary and step time against sweep time")
    _lay_out(figure)
    return figure


def ratios_to_torch(machines: dict[str, pd.DataFrame]):
    """README's figure: per cell, every column's steady step over native torch's with its 95% interval, one marker
    shape per machine (log scale: 2x slower and 2x faster sit equally far from 1)."""
    cells = [cell for cell in CELL_NAMES if any((table["cell"] == cell).any() for table in machines.values())]
    names = [name for name in ordered(pd.concat(machines.values())["implementation"]) if name != "torch"]
    figure, axes = plt.subplots(1, len(cells), figsize=(3.3 * len(cells), 2.9), squeeze=False, sharey=True)
    markers = dict(zip(machines, "osD^v"))
    offsets = dict(zip(machines, np.linspace(-0.15, 0.15, len(machines))))
    for axis, cell in zip(axes[0], cells):
        axis.axvline(1.0, color="0.5", lw=1)
        for machine, table in machines.items():
            rows = table[(table["cell"] == cell) & (table["layers"] == 1) & ~table["bidirectional"].astype(bool)]
            for y, name in enumerate(names):
                row = rows[rows["implementation"] == name]
                if row.empty or not np.isfinite(row["vs_torch"].iloc[0]):
                    continue
                ratio, low, high = (float(row[key].iloc[0]) for key in ("vs_torch", "vs_torch_low", "vs_torch_high"))
                error = [[ratio - low], [high - ratio]] if np.isfinite(low) else None
                axis.errorbar(ratio, y + offsets[machine], xerr=error, fmt=markers[machine], color=colour_of(name),
                              ms=5, capsize=2, lw=1)
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.5, 1, 2, 4, 8]))
        axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}x"))
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_title(CELL_NAMES[cell], fontsize=10)
        axis.set_xlabel("step time / native torch's", fontsize=9)
        axis.tick_params(labelsize=8)
        axis.grid(axis="x", which="both", alpha=0.3)
    axes[0][0].set_yticks(range(len(names)), names, fontsize=9)
    axes[0][0].invert_yaxis()
    handles = [plt.Line2D([], [], ls="", marker=markers[machine], color="0.3", label=machine) for machine in machines]
    handles.append(plt.Line2D([], [], ls="", label="bars: 95% interval over seeds (none: too few quiet runs)"))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    _lay_out(figure, rect=(0, 0.08, 1, 1))
    return figure


CELL_COLOURS = {"rnn": "#9467bd", "gru": "#2ca02c", "lstm": "#1f77b4"}
KIND_MARKERS = {"network": "o", "ensemble": "D", "linear": "X"}


def frontier(machines: dict[str, pd.DataFrame]):
    """The study's answer (``analysis.tables.frontier`` per machine, one panel each): test accuracy against
    training CPU-minutes for every network, ensemble and linear model, the Pareto front drawn through the points
    nothing beats (log minutes: a 10x cost is as far at any scale)."""
    figure, axes = plt.subplots(1, len(machines), figsize=(7.5 * len(machines), 5.5), squeeze=False, sharey=True)
    for axis, (machine, table) in zip(axes[0], machines.items()):
        for _, row in table.iterrows():
            study = row["set"] == "study" and row["kind"] != "linear"
            colour = (CELL_COLOURS.get(row["cell"], "0.4") if row["kind"] != "linear" else "black")
            marker = KIND_MARKERS[row["kind"]] if not (study and row.get("bidirectional")) else "s"
            error = ([[row["accuracy"] - row["low"]], [row["high"] - row["accuracy"]]] if np.isfinite(row["low"])
                     else None)
            axis.errorbar(row["cpu_minutes"], row["accuracy"] * 100, yerr=None if error is None else
                          np.asarray(error) * 100, fmt=marker, color=colour, mfc=colour if study or
                          row["kind"] == "linear" else "white", ms=6, capsize=2, lw=1)
            if study and not row["pareto"]:  # its colour is the cell, its label the depth
                axis.annotate(depth_label(int(row["layers"]), bool(row["bidirectional"])),
                              (row["cpu_minutes"], row["accuracy"] * 100), fontsize=6.5, xytext=(4, -3),
                              textcoords="offset points")
        # the front numbered by cost, named in a box (names beside the points would overlap where they crowd)
        front = table[table["pareto"]].sort_values("cpu_minutes")
        axis.step(front["cpu_minutes"], front["accuracy"] * 100, where="post", color="0.5", lw=1, ls="--", zorder=0)
        for number, (_, row) in enumerate(front.iterrows(), 1):
            axis.annotate(str(number), (row["cpu_minutes"], row["accuracy"] * 100), fontsize=7, weight="bold",
                          xytext=(-3, 5), textcoords="offset points", ha="right")
        axis.text(0.02, 0.03, "Pareto front:\n" + "\n".join(f"{number}. {frontier_label(row)}" for number, (_, row)
                                                            in enumerate(front.iterrows(), 1)),
                  transform=axis.transAxes, ha="left", va="bottom", fontsize=6.5,
                  bbox=dict(boxstyle="round", fc="white", ec="0.7"))
        axis.set_xscale("log")
        axis.set_xlabel("training CPU-minutes a run (log scale; 2 threads; the linear models: one core)")
        axis.set_title(machine, fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("test accuracy, % (the 25,000 official test reviews)")
    handles = [plt.Line2D([], [], ls="", marker="o", color=colour, label=CELL_NAMES[cell])
               for cell, colour in CELL_COLOURS.items()]
    handles += [plt.Line2D([], [], ls="", marker="s", color="0.3", label="two-directional"),
                plt.Line2D([], [], ls="", marker="o", mfc="white", color="0.3", label="another set's network"),
                plt.Line2D([], [], ls="", marker="D", mfc="white", color="0.3", label="ensemble of 3"),
                plt.Line2D([], [], ls="", marker="X", color="black", label="linear model"),
                plt.Line2D([], [], ls="--", color="0.5", label="Pareto front")]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    figure.suptitle("Test accuracy against training CPU-minutes (up and left is better; bars: 95% interval over "
                    "seeds, none with fewer than 3)")
    _lay_out(figure, rect=(0, 0.06, 1, 1))
    return figure


def accuracy_vs_depth(table: pd.DataFrame):
    """The study per cell: mean test accuracy over seeds against recurrent layers, one line per direction, bars
    the 95% t interval over seeds (``analysis.tables.frontier``'s network rows of the study set)."""
    cells = [cell for cell in CELL_NAMES if (table["cell"] == cell).any()]
    figure, axes = plt.subplots(1, len(cells), figsize=(4 * len(cells), 3.6), squeeze=False, sharey=True)
    for axis, cell in zip(axes[0], cells):
        for bidirectional, style in ((False, "-o"), (True, "--s")):
            rows = table[(table["cell"] == cell) & (table["bidirectional"] == bidirectional)].sort_values("layers")
            if rows.empty:
                continue
            finite = np.isfinite(rows["low"])
            error = np.where(finite, [rows["accuracy"] - rows["low"], rows["high"] - rows["accuracy"]], 0) * 100
            axis.errorbar(rows["layers"], rows["accuracy"] * 100, yerr=error, fmt=style, capsize=3,
                          color=CELL_COLOURS[cell], label="two-directional" if bidirectional else "one-directional")
        axis.set_title(CELL_NAMES[cell], fontsize=10)
        axis.set_xlabel("recurrent layers")
        axis.set_xticks(sorted(table["layers"].unique()))
        axis.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("test accuracy, %")
    figure.legend(handles=[plt.Line2D([], [], ls="-", marker="o", color="0.3", label="one-directional"),
                           plt.Line2D([], [], ls="--", marker="s", color="0.3", label="two-directional")],
                  loc="lower center", ncol=2, fontsize=8, frameon=False)
    figure.suptitle("Accuracy against depth and direction (the study; bars: 95% interval over seeds, none with "
                    "fewer than 3)")
    _lay_out(figure, rect=(0, 0.07, 1, 1))
    return figure
