"""Generate REPORT.md, CSV/Markdown tables and PNG plots from a results folder.

    python -m analysis.report results/quick
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from analysis import plots, tables
from analysis.load import AnalysisError, load
from model.errors import user_errors
from model.implementations import NAMES, get, native_of

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

SUMMARY_COLUMNS = ["implementation", "layers", "bidirectional", "seeds", "accuracy", "accuracy_min", "accuracy_max",
                   "f1", "roc_auc", "step_ms", "step_iqr_ms", "vs_torch", "vs_torch_low", "vs_torch_high", "epoch_s",
                   "first_step_s", "train_samples_per_s", "inference_per_s", "latency_ms", "train_cpu_s",
                   "cpu_utilisation", "peak_above_mb"]


def _cell_name(cell: str) -> str:
    return {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}[cell]


def _interval(ratio, low, high) -> str:
    return f"{ratio:.2f}x (95% CI {low:.2f}-{high:.2f})" if np.isfinite(low) else f"{ratio:.2f}x (no interval)"


def fastest_sentences(runs, samples, table) -> list[str]:
    """Per cell and depth: the fastest implementation, its margin over the runner-up, and whether it is a tie."""
    pooled = tables.pooled_samples(runs[runs["status"] == "ok"], samples)
    sentences = []
    for (cell, bidirectional, layers), group in table.groupby(["cell", "bidirectional", "layers"]):
        ranked = group.sort_values("step_ms")
        label = f"{_cell_name(cell)}, {layers} layer{'s' if layers > 1 else ''}{', bidirectional' if bidirectional else ''}"
        if len(ranked) < 2:
            continue
        best, second = ranked.iloc[0], ranked.iloc[1]
        ratio, low, high = tables.ratio_interval(pooled[(second["implementation"], cell, layers, bidirectional)],
                                                 pooled[(best["implementation"], cell, layers, bidirectional)])
        if np.isfinite(low) and low > 1.0:
            sentences.append(f"- {label}: **{best['implementation']}** is fastest ({best['step_ms']:.0f} ms/step); "
                             f"the runner-up {second['implementation']} takes {_interval(ratio, low, high)} as long.")
        else:
            sentences.append(f"- {label}: {best['implementation']} ({best['step_ms']:.0f} ms) and "
                             f"{second['implementation']} ({second['step_ms']:.0f} ms) are not distinguishable: "
                             f"ratio {_interval(ratio, low, high)} includes 1.")
    return sentences


def overhead_sentences(overhead: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    sentences = []
    for backend, group in overhead.groupby("backend"):
        slower = group[group["low"] > 1.0]
        faster = group[group["high"] < 1.0]
        tied = len(group) - len(slower) - len(faster)
        keras_name = next(name for name in NAMES if get(name).keras_backend == backend)
        paths = table[table["implementation"] == keras_name]["kernel_path"].unique()
        native_paths = table[table["implementation"] == native_of(keras_name)]["kernel_path"].unique()
        sentences.append(
            f"- Keras on {backend}: median overhead {group['overhead'].median():.2f}x over native {backend} "
            f"(range {group['overhead'].min():.2f}-{group['overhead'].max():.2f}x across {len(group)} configurations; "
            f"slower with the interval excluding 1 in {len(slower)}, faster in {len(faster)}, not distinguishable "
            f"in {tied}). Kernel path: Keras ran *{'; '.join(paths)}*, native ran *{'; '.join(native_paths)}*.")
    return sentences


def depth_sentences(depth: pd.DataFrame) -> list[str]:
    growth = [c for c in depth.columns if c.endswith("x_vs_1")]
    if not growth:
        return ["- Only one depth was run; no depth scaling to report."]
    deepest = growth[-1]
    sentences = []
    for name in [n for n in NAMES if n in set(depth["implementation"])]:
        rows = depth[depth["implementation"] == name]
        values = ", ".join(f"{_cell_name(r['cell'])} {r[deepest]:.2f}x" for _, r in rows.iterrows())
        sentences.append(f"- {name}: {deepest.split('x')[0]} layers cost {values} the one-layer step time.")
    return sentences


def memory_sentences(table: pd.DataFrame) -> list[str]:
    sentences = []
    for name in [n for n in NAMES if n in set(table["implementation"])]:
        rows = table[table["implementation"] == name]
        sentences.append(f"- {name}: peak RSS above its post-build baseline {rows['peak_above_mb'].median():.0f} MB "
                         f"median (range {rows['peak_above_mb'].min():.0f}-{rows['peak_above_mb'].max():.0f} MB); "
                         f"RSS after imports {rows['rss_after_imports_mb'].median():.0f} MB.")
    sentences.append("- Memory figures are single measurements per run (kernel high-water mark after a reset), "
                     "without intervals; differences of a few tens of MB should not be read as real.")
    return sentences


def accuracy_sentences(parity: pd.DataFrame, baseline: dict | None, runs: pd.DataFrame) -> list[str]:
    sentences = [f"- Largest accuracy spread between the four on one configuration: "
                 f"{parity['spread_points'].max():.1f} points (median {parity['spread_points'].median():.1f}). "
                 "All four start from identical weights and see identical batches; what remains is floating-point "
                 "order and dropout randomness, which differ by framework."]
    if baseline:
        columns = [c for c in NAMES if c in parity.columns]
        best = parity[columns].max().max()
        beating = int(parity[columns].gt(baseline["metrics"]["accuracy"]).sum().sum())
        total = int(parity[columns].notna().sum().sum())
        sentences.append(f"- The TF-IDF + logistic-regression baseline reaches {baseline['metrics']['accuracy']:.3f} "
                         f"on the same rows; {beating} of {total} RNN configurations beat it (best RNN {best:.3f}).")
    if runs["seed"].nunique() < 2:
        sentences.append("- One seed per configuration: accuracy differences between configurations are not "
                         "backed by any interval here.")
    return sentences


def generate(results: Path) -> Path:
    results = Path(results)
    runs, samples, baseline, manifest = load(results)
    finished = runs[runs["status"] == "ok"]
    if finished.empty:
        raise AnalysisError(f"{results} has no finished runs to analyse")
    summary = tables.summary(runs, samples)
    overhead = tables.overhead(runs, samples)
    depth = tables.depth_scaling(summary)
    parity = tables.accuracy_parity(summary, baseline)
    out = results / "tables"
    out.mkdir(exist_ok=True)
    for name, table in dict(summary=summary, keras_overhead=overhead, depth_scaling=depth,
                            accuracy_parity=parity, runs=runs).items():
        table.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(tables.to_markdown(table))
    figures = dict(step_time_vs_depth=plots.step_time_vs_depth(summary),
                   accuracy_vs_training_time=plots.accuracy_vs_training_time(summary, baseline),
                   peak_memory=plots.peak_memory(summary),
                   step_time_distributions=plots.step_time_distributions(runs, samples))
    for name, figure in figures.items():
        figure.savefig(results / f"{name}.png", dpi=110)
        plots.plt.close(figure)
    report = results / "REPORT.md"
    report.write_text(render(results, runs, samples, summary, overhead, depth, parity, baseline, manifest))
    return report


def render(results, runs, samples, summary, overhead, depth, parity, baseline, manifest) -> str:
    finished = runs[runs["status"] == "ok"]
    failed = runs[runs["status"] != "ok"]
    profile = (manifest or {}).get("profile") or {}
    profile = {"name": profile} if isinstance(profile, str) else profile  # manifests before the run plan
    epochs = sorted(finished["epochs_run"].unique().tolist()) if "epochs_run" in finished else "?"
    n_train, n_test = int(finished["n_train"].iloc[0]), int(finished["n_test"].iloc[0])
    lines = [f"# rnnbench report: {results.name}", ""]
    if n_train < 20_000:
        lines += [f"> **Quick profile**: {n_train} training and {n_test} test reviews, "
                  f"{'/'.join(map(str, epochs))} epoch(s) per run. It shows the *shape* of the speed and memory "
                  "results; its accuracies are far from converged and say nothing about final quality. "
                  "Use `make compare PROFILE=full` for the study.", ""]
    lines += [f"{len(finished)} finished runs, {len(failed)} failed; profile `{profile.get('name', 'unknown')}`; "
              f"threads {sorted(finished['threads'].unique().tolist())}, flush-to-zero "
              f"{sorted(finished['flush_denormal'].unique().tolist())}, jit/XLA {sorted(finished['jit_compile'].unique().tolist())}.",
              "", "## Findings", "", "**Fastest implementation per cell and depth** (median steady training step; "
              "ratio of medians with a 95% bootstrap interval over step samples):", ""]
    lines += fastest_sentences(runs, samples, summary)
    lines += ["", "**Keras overhead per backend** (Keras step time / native step time on the same backend):", ""]
    lines += overhead_sentences(overhead, summary) if not overhead.empty else ["- (no Keras/native pairs)"]
    lines += ["", "**Depth scaling**:", ""] + depth_sentences(depth)
    lines += ["", "**Memory**:", ""] + memory_sentences(summary)
    lines += ["", "**Accuracy parity and the baseline**:", ""] + accuracy_sentences(parity, baseline, runs)
    lines += ["", "## Four-way tables", "",
              "`vs_torch`: step-time ratio to native PyTorch on the same configuration with its 95% interval "
              "(`_low`-`_high`). Times in ms or s as named; memory in MB above the post-build baseline.", ""]
    baseline_row = None
    if baseline:
        baseline_row = dict(implementation="tfidf-logreg (reference)", accuracy=baseline["metrics"]["accuracy"],
                            f1=baseline["metrics"]["f1"], roc_auc=baseline["metrics"]["roc_auc"])
    for cell in sorted(summary["cell"].unique()):
        table = summary[summary["cell"] == cell][SUMMARY_COLUMNS]
        if baseline_row:
            table = pd.concat([table, pd.DataFrame([baseline_row])], ignore_index=True)
        lines += [f"### {_cell_name(cell)}", "", tables.to_markdown(table)]
    lines += ["## Keras overhead per backend", "", tables.to_markdown(overhead),
              "## Cost vs depth", "", tables.to_markdown(depth),
              "## Accuracy parity", "", tables.to_markdown(parity)]
    if not failed.empty:
        lines += ["## Failed runs", "", tables.to_markdown(failed[[c for c in ("run_id", "failure", "error")
                                                                  if c in failed.columns]])]
    lines += ["## Plots", "", "![step time vs depth](step_time_vs_depth.png)", "",
              "![accuracy vs training time](accuracy_vs_training_time.png)", "", "![peak memory](peak_memory.png)",
              "", "![step-time distributions](step_time_distributions.png)", "",
              "## Kernel paths", ""]
    for name in [n for n in NAMES if n in set(summary["implementation"])]:
        for path in summary[summary["implementation"] == name]["kernel_path"].unique():
            lines.append(f"- {name}: {path}")
    lines += ["", "## Environment and command", ""]
    if manifest:
        environment = manifest["environment"]
        packages = ", ".join(f"{k} {v}" for k, v in environment["packages"].items() if v)
        lines += [f"- CPU: {environment['cpu']['model']} ({environment['cpu']['usable_cores']} usable cores, "
                  f"governor {environment['cpu']['governor']}), {environment['memory_total_gb']} GB RAM",
                  f"- OS: {environment['os']}; Python {environment['python']}",
                  f"- Packages: {packages}",
                  f"- Git commit: {environment['git']['commit']} (dirty: {environment['git']['dirty']})",
                  f"- Sweep profile: `{profile}`; threads {manifest.get('threads')}"]
        lines += [f"- Command ({session['started']}): `{' '.join(session['command'])}`" for session in manifest["sessions"]]
    lines += ["", "Tables as CSV and Markdown: `tables/`. Raw per-step samples: each run's `record.json`.", ""]
    return "\n".join(lines)


@app.command()
def main(results: Annotated[Path, typer.Argument(help="a results folder written by runners.compare")]):
    """Regenerate REPORT.md, tables/ and the plots from the run records in RESULTS."""
    with user_errors():
        typer.echo(generate(results))


if __name__ == "__main__":
    app()
