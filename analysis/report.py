"""Generate REPORT.md, CSV/Markdown tables and PNG plots from a results folder.

    python -m analysis.report results/quick
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import pandas as pd
import typer

from analysis import plots, tables
from analysis.load import AnalysisError, Results, load_machines
from model.errors import user_errors
from model.implementations import base_name, get, native_of

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# Runs on fewer training reviews than this are not trained to convergence: no accuracy verdicts.
CONVERGED_MIN_TRAIN = 20_000


def _present(names) -> list[str]:
    return tables.ordered(names)


def _interval(ratio, low, high) -> str:
    return (f"{ratio:.2f}x (95% CI {low:.2f}-{high:.2f})" if np.isfinite(low)
            else f"{ratio:.2f}x (no interval: fewer than {tables.MIN_RUNS} quiet runs a side or no spread)")


def fastest_sentences(summary: pd.DataFrame, runs: pd.DataFrame, cpu: str, family: pd.DataFrame) -> list[str]:
    """Per configuration: the fastest implementation, named only where it is clearly faster than every other."""
    sentences = []
    for _, row in tables.fastest(summary, runs, family).iterrows():
        runs_note = f"{row['best_runs']} and {row['second_runs']} quiet runs"
        ratio = _interval(row["ratio"], row["low"], row["high"])
        if row["clear"]:
            sentences.append(f"- {row['configuration']} on {cpu}: **{row['best']}** is fastest "
                             f"({row['best_ms']:.1f} ms/step), clearly ahead of every other column; the runner-up "
                             f"{row['second']} takes {ratio} as long ({runs_note}).")
        else:
            sentences.append(f"- {row['configuration']} on {cpu}: {row['best']} ({row['best_ms']:.1f} ms) cannot be "
                             f"told apart from {row['ties']}; runner-up {row['second']} ({row['second_ms']:.1f} ms) "
                             f"at {ratio} ({runs_note}).")
    return sentences


def keras_backend_sentences(summary: pd.DataFrame, runs: pd.DataFrame, cpu: str, family: pd.DataFrame) -> list[str]:
    """Which Keras backend (as released) is fastest per configuration: the same rule as for implementations."""
    keras = [name for name in summary["implementation"].unique() if tables._released_keras(name)]
    if len(keras) < 2:
        return []
    return fastest_sentences(summary[summary["implementation"].isin(keras)], runs, cpu, family)


def method_sentences(family: pd.DataFrame, equivalence: pd.DataFrame | None) -> list[str]:
    """Which statistic, which correction and which equivalence test this report's verdicts use."""
    sentences = [f"- Step time: geometric mean over quiet runs of each run's median steady step; ratios are ratios "
                 f"of those means with a 95% Welch t interval on log run medians (no interval with fewer than "
                 f"{tables.MIN_RUNS} runs a side or no spread). The {len(family)} speed comparisons this report "
                 f"states as verdicts (each column against torch, against its native backend and against the "
                 f"fastest) are one family: a verdict is \"clear\" only where Holm's step-down procedure rejects a "
                 f"ratio of 1 at {tables.FAMILY_LEVEL:.0%} family-wise ({int(family['clear'].sum())} clear). "
                 "Intervals printed are the unadjusted 95% ones."]
    if equivalence is not None and not equivalence.empty:
        margin = tables.EQUIVALENCE_MARGIN_POINTS
        sentences.append(f"- Accuracy: \"equivalent\" is a TOST (two one-sided t tests against ±{margin:g} point, "
                         "2.5% per side, i.e. the 95% interval inside the margin), \"higher\"/\"lower\" a two-sided "
                         f"t test at 5%; each Holm-corrected over the {len(equivalence)} rows of the equivalence "
                         "table.")
        sd = equivalence["sd_points"].median()
        seeds = int(equivalence["seeds"].median())
        power = tables.tost_power(seeds, sd)
        if np.isfinite(power):
            sentences.append(f"- Power: with {seeds} seeds and the median paired sd here ({sd:.2f} points), the "
                             f"interval lands inside ±{margin:g} point only {power:.0%} of the time when nothing "
                             "differs (before Holm), so \"inconclusive\" is not evidence of a difference.")
    return sentences


def overhead_sentences(overhead: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    sentences = []
    for keras_name in _present(overhead["implementation"]):
        group = overhead[overhead["implementation"] == keras_name]
        backend, native = get(base_name(keras_name)).keras_backend, native_of(base_name(keras_name))
        slower = group[group["clear"] & (group["overhead"] > 1.0)]
        faster = group[group["clear"] & (group["overhead"] < 1.0)]
        tied = len(group) - len(slower) - len(faster)
        paths = summary[summary["implementation"] == keras_name]["kernel_path"].unique()
        native_paths = summary[summary["implementation"] == native]["kernel_path"].unique()
        patch = f" (patched: {get(base_name(keras_name)).patch})" if get(base_name(keras_name)).patch else ""
        sentences.append(
            f"- {keras_name}{patch} on {backend}: median overhead {group['overhead'].median():.2f}x over native "
            f"{native} (range {group['overhead'].min():.2f}-{group['overhead'].max():.2f}x across {len(group)} "
            f"configurations; clearly slower in {len(slower)}, clearly faster in "
            f"{len(faster)}, not distinguishable in {tied}). Kernel path: Keras ran *{'; '.join(paths)}*, native "
            f"ran *{'; '.join(native_paths)}*.")
    return sentences


def depth_sentences(depth: pd.DataFrame) -> list[str]:
    growth = [c for c in depth.columns if "x_vs_" in c]
    if not growth:
        return ["- One depth only in this profile; depth scaling is the full profile's question."]
    deepest = growth[-1]
    deeper, shallow = deepest.split("x_vs_")
    sentences = []
    for name in _present(depth["implementation"]):
        rows = depth[depth["implementation"] == name]
        values = ", ".join(f"{tables.configuration_label(r['cell'], 1, r['bidirectional']).replace(' 1L', '')} "
                           f"{r[deepest]:.2f}x" for _, r in rows.iterrows())
        sentences.append(f"- {name}: {deeper} layers cost {values} the {shallow}-layer step time.")
    return sentences


def memory_sentences(summary: pd.DataFrame) -> list[str]:
    sentences = []
    for name in _present(summary["implementation"]):
        rows = summary[summary["implementation"] == name]
        sentences.append(f"- {name}: training peak RSS above its ready baseline {rows['peak_above_mb'].median():.0f} MB "
                         f"median (runs range {rows['peak_min_mb'].min():.0f}-{rows['peak_max_mb'].max():.0f} MB); "
                         f"RSS after imports {rows['rss_after_imports_mb'].median():.0f} MB.")
    sentences.append("- Peaks are kernel high-water marks after a reset, one per run; the range is over runs. "
                     "Inference peaks (in the records) are measured above the post-training RSS, which depends on "
                     "each framework's allocator, and are not compared across frameworks.")
    return sentences


def loss_sentences(agreement: pd.DataFrame) -> list[str]:
    if agreement.empty:
        return ["- No per-step losses in these records (schema 1), or no native PyTorch runs to compare with."]
    sentences = []
    for name, group in agreement.groupby("implementation", sort=False):
        sentences.append(f"- {name} vs torch over {int(group['steps'].median())} identical batches: first-step loss "
                         f"gap at most {group['first_step_gap'].max():.1e}; running-mean loss gap at most "
                         f"{group['max_running_mean_gap'].max():.3f} (per-step gap median "
                         f"{group['mean_step_gap'].median():.3f}).")
    sentences.append("- All start from the same weights and see the same batches; what separates them is dropout "
                     "(each framework draws its own masks, from the first step on), float32 rounding"
                     + (", and keras-tensorflow's gradient clip: Keras' global_clipnorm on TensorFlow takes the norm "
                        "of the embedding gradient's unsummed slices, so whenever the clip binds it scales by "
                        "another factor (a known difference, tested)" if "keras-tensorflow" in set(
                            agreement["implementation"]) else "")
                     + ". With dropout off, tests/test_parity.py shows the same logits, losses and gradients to "
                     "2e-5-1e-4 (relative) and the same updates after 5 Adam steps to 5e-4; here the running "
                     "means staying close is the check.")
    return sentences


def quality_sentences(summary: pd.DataFrame, equivalence: pd.DataFrame, baseline: dict | None) -> list[str]:
    sentences = []
    for _, row in summary.iterrows():
        label = tables.configuration_label(row["cell"], row["layers"], row["bidirectional"])
        spread = (f" ± {row['accuracy_sd']:.4f} (min {row['accuracy_min']:.4f}, max {row['accuracy_max']:.4f}, "
                  f"{int(row['runs'])} seeds)" if np.isfinite(row["accuracy_sd"]) else " (one seed: no spread)")
        sentences.append(f"- {label}, {row['implementation']}: test accuracy {row['accuracy']:.4f}{spread}, "
                         f"F1 {row['f1']:.4f}, ROC-AUC {row['roc_auc']:.4f}.")
    for _, row in equivalence.iterrows():
        label = tables.configuration_label(row["cell"], row["layers"], row["bidirectional"])
        interval = f"95% CI {row['low']:+.2f} to {row['high']:+.2f}" if np.isfinite(row["low"]) else "no interval"
        sentences.append(f"- {label}: {row['implementation']} minus torch {row['difference_points']:+.2f} points "
                         f"({interval}, paired over {int(row['seeds'])} seeds): **{row['verdict']}**.")
    if baseline:
        unigram = baseline.get("unigram_accuracy")
        sentences.append(f"- The TF-IDF + logistic-regression baseline reaches {baseline['metrics']['accuracy']:.4f} "
                         "with unigrams and bigrams" + (f", {unigram:.4f} with unigrams only," if unigram else "")
                         + f" on the same rows (mean over {len(baseline['seeds'])} seed(s)).")
    return sentences


def time_to_target_sentences(summary: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    if "ttt_wall_s" not in summary or summary["target_accuracy"].isna().all():
        return []
    target = summary["target_accuracy"].dropna().iloc[0]
    checks = "/".join(map(str, sorted(runs["validations_per_epoch"].dropna().astype(int).unique())))
    sentences = [f"- Time until validation accuracy first reached {target:.0%}, MLPerf's way: validation on the "
                 f"clock, the median over runs with a run that never reached it counted as the slowest (more than "
                 f"one such run: no time). Checked {checks} times per epoch, so times are rounded up to the next "
                 "check; training-only time beside it:"]
    for _, row in summary.iterrows():
        label = tables.configuration_label(row["cell"], row["layers"], row["bidirectional"])
        reached = f"{row['reached_target']}/{row['runs']} runs reached it"
        if np.isfinite(row["ttt_eval_wall_s"]):
            sentences.append(f"  - {label}, {row['implementation']}: {row['ttt_eval_wall_s']:.0f} s wall with "
                             f"validation; {row['ttt_wall_s']:.0f} s training only, {row['ttt_cpu_s']:.0f} s CPU "
                             f"({reached}).")
        elif row["reached_target"]:
            sentences.append(f"  - {label}, {row['implementation']}: no time ({reached}; more than one did not).")
        else:
            sentences.append(f"  - {label}, {row['implementation']}: not reached in {row['runs']} runs.")
    return sentences


def quietness_sentences(runs: pd.DataFrame, canary: dict | None = None) -> list[str]:
    finished = runs[runs["status"] == "ok"]
    if "other_cpu_fraction" not in finished or finished["other_cpu_fraction"].isna().all():
        return ["- Machine load during training was not recorded (schema-1 records)."]
    noisy = finished[~tables.quiet(finished)]
    sentences = [f"- /proc/stat: other processes used at most {finished['other_cpu_fraction'].max():.1%} of the "
                 f"machine and the hypervisor stole at most {finished['steal_fraction'].max():.1%} of it while any "
                 f"run trained (thresholds for a quiet run: {tables.QUIET_OTHER_CPU:.0%} and "
                 f"{tables.QUIET_STEAL:.0%})."]
    if canary and "canary_slowdown" in finished:
        slow = finished["canary_slowdown"].dropna()
        sentences.append(
            f"- Canary (a fixed matrix product and copy, `runners/canary.py`, timed every "
            f"{finished['canary_every_s'].max():.0f} s of training): "
            f"reference {canary['ms']:.1f} ms ({canary['source']}); during training the runs' canaries ran "
            f"{slow.min():.2f}-{slow.max():.2f}x the reference (median {slow.median():.2f}x; threshold "
            f"{tables.CANARY_SLOWDOWN:.2f}x), at a cost of at most {finished['canary_share'].max():.2%} of "
            "training time. The plot `canary.png` sets each run's canary and step time against sweep time.")
    if noisy.empty:
        sentences.append("- Every run trained on a quiet machine.")
    else:
        sentences.append(f"- {len(noisy)} of {len(finished)} run(s) trained on a busy or slowed machine: their "
                         "accuracy counts, their times enter no verdict and no step-time figure (cells marked † in "
                         f"the headline tables): {', '.join(noisy['run_id'])}.")
    return sentences


def generate(*paths: Path, out: Path | None = None) -> Path:
    """REPORT.md, tables and plots. One folder of one machine: the report in that folder. Several folders, or a
    folder with several machines (a Ray sweep over different CPUs): a report per machine under
    ``OUT/machines/`` and a cross-machine REPORT.md in OUT (default: the folder, or ``cross-machine`` beside the
    first of several)."""
    paths = [Path(path) for path in paths]
    machines, unowned = load_machines(paths)
    if len(machines) == 1 and len(paths) == 1:
        return write(machines[0], out or paths[0], paths[0].name)
    out = Path(out or (paths[0] if len(paths) == 1 else paths[0].parent / "cross-machine"))
    labels = machine_labels(machines)
    for label, data in zip(labels, machines):
        write(data, out / "machines" / slug(label), label)
    report = out / "REPORT.md"
    out.mkdir(parents=True, exist_ok=True)
    report.write_text(render_machines(paths, machines, labels, unowned))
    return report


def write(data: Results, out: Path, title: str) -> Path:
    """One machine's report into ``out``."""
    if data.finished.empty:
        raise AnalysisError(f"{', '.join(map(str, data.sources)) or out} has no finished runs to analyse")
    out.mkdir(parents=True, exist_ok=True)
    summary, family = tables.summary(data.runs), tables.comparisons(data.runs)
    long_tables = dict(summary=summary, comparisons=family, keras_overhead=tables.overhead(data.runs, family),
                       depth_scaling=tables.depth_scaling(summary),
                       loss_agreement=tables.loss_agreement(data.runs, data.losses),
                       equivalence=tables.equivalence(data.runs), programming_model=tables.programming_model(summary),
                       runs=data.runs)
    (out / "tables").mkdir(exist_ok=True)
    for name, table in long_tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
        (out / "tables" / f"{name}.md").write_text(tables.to_markdown(table))
    figures = dict(step_time_vs_depth=plots.step_time_vs_depth(summary),
                   accuracy_vs_training_time=plots.accuracy_vs_training_time(summary, data.baseline),
                   accuracy_vs_cpu_minutes=plots.accuracy_vs_cpu_minutes(data.runs, data.baseline),
                   peak_memory=plots.peak_memory(summary),
                   step_time_distributions=plots.step_time_distributions(data.runs, data.samples),
                   loss_trajectories=plots.loss_trajectories(data.runs, data.losses),
                   canary=plots.canary(data.runs, tables.CANARY_SLOWDOWN))
    for name, figure in figures.items():
        figure.savefig(out / f"{name}.png", dpi=110)
        plots.plt.close(figure)
    report = out / "REPORT.md"
    report.write_text(render(title, data, long_tables))
    return report


def machine_labels(machines: list[Results]) -> list[str]:
    """'CPU model, N threads', with what else tells two groups apart where that alone would name them alike:
    framework versions, CPU flags, core count, or the run plan."""
    short = [f"{data.cpu_model}, {int(data.finished['threads'].iloc[0])} threads" for data in machines]
    labels = []
    for label, data in zip(short, machines):
        alike = [other for other, name in zip(machines, short) if name == label]
        if len(alike) == 1:
            labels.append(label)
            continue
        differs = [i for i in range(2, len(data.identity)) if len({other.identity[i] for other in alike}) > 1]
        parts = []
        if any(i <= 5 for i in differs):
            parts.append(_versions(data.environment))
        if 6 in differs:
            parts.append("flags " + " ".join(data.identity[6]))
        if 7 in differs:
            parts.append(f"{data.identity[7]} cores")
        if 8 in differs:
            parts.append(f"plan {data.identity[8]} ({data.profile.get('name') or 'no profile'})")
        labels.append(f"{label} ({'; '.join(parts)})")
    return labels


def _versions(environment: dict) -> str:
    packages = environment["packages"]
    return ", ".join(f"{name} {packages.get(name)}" for name in ("torch", "tensorflow-cpu", "keras", "jax"))


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def render_machines(paths: list[Path], machines: list[Results], labels: list[str], unowned: pd.DataFrame) -> str:
    """The cross-machine report: which machines, each one's headline table, and the winners side by side."""
    summaries = {label: tables.summary(data.runs) for label, data in zip(labels, machines)}
    fastest = {label: tables.fastest(summaries[label], data.runs) for label, data in zip(labels, machines)}
    verdicts = sum(len(tables.comparisons(data.runs)) for data in machines)
    winners = tables.winners_across(fastest)
    lines = [f"# rnnbench across machines: {', '.join(path.name for path in paths)}", "",
             "Records are grouped by machine: CPU model, threads, and the versions of torch, TensorFlow, Keras and "
             "JAX. Nothing is pooled across machines; each machine's figures come from its own runs, with its own "
             "run-level intervals, and each has a full report under `machines/`.", "", "## Machines", ""]
    machine_table = pd.DataFrame([dict(machine=label, report=f"machines/{slug(label)}/REPORT.md",
                                       runs=len(data.finished), failed=int((data.runs["status"] != "ok").sum()),
                                       hosts=", ".join(sorted(data.finished.get("hostname", pd.Series(dtype=str))
                                                              .dropna().unique())),
                                       versions=_versions(data.environment),
                                       folders=", ".join(str(path) for path in data.sources))
                                  for label, data in zip(labels, machines)])
    lines += [tables.to_markdown(machine_table), "## Findings", ""]
    lines += machine_findings(winners, labels) or ["- No configuration was measured on two machines."]
    lines += ["", "## Fastest implementation per configuration and machine", "",
              "Per machine: the fastest implementation (geometric mean over quiet runs of each run's median steady "
              "step) and the runner-up's step time relative to it with its 95% run-level interval; `≈` where some "
              "column cannot be told apart from it (Holm-corrected within each machine's report, "
              f"{verdicts} speed comparisons in all). `winner`: `same` where one implementation wins clearly "
              "everywhere, `depends on the CPU` where clear winners differ, else `unclear`.", "", tables.to_markdown(winners),
              "## Ratio to native torch per machine", "",
              "Steady step time relative to native torch on the same machine (95% run-level interval).", "",
              tables.to_markdown(tables.ratios_across(summaries))]
    for label, data in zip(labels, machines):
        lines += [f"## {label}", "", f"{len(data.finished)} finished runs from {', '.join(map(str, data.sources))}. "
                  "Steady ms/step: median over runs [run min-max], ratio to native torch (95% interval).", "",
                  tables.to_markdown(tables.headline(summaries[label], "step")),
                  "Peak training memory, MB above the ready baseline: median [min-max over runs].", "",
                  tables.to_markdown(tables.headline(summaries[label], "memory"))]
    if not unowned.empty:
        lines += ["## Failed runs of no single machine", "",
                  "A folder with several machines' runs cannot say which machine a failed run was on.", "",
                  tables.to_markdown(unowned[[c for c in ("run_id", "failure", "error") if c in unowned.columns]])]
    return "\n".join(lines) + "\n"


def machine_findings(winners: pd.DataFrame, labels: list[str]) -> list[str]:
    sentences = []
    for _, row in winners[winners["winner"] != "one machine"].iterrows():
        measured = {label: row[label] for label in labels if row[label]}
        detail = "; ".join(f"{label}: {text}" for label, text in measured.items())
        if row["winner"] == "depends on the CPU":
            sentences.append(f"- {row['configuration']}: **the winner depends on the CPU** ({detail}).")
        elif row["winner"].startswith("same"):
            sentences.append(f"- {row['configuration']}: {row['winner'].removeprefix('same: ')} is fastest on "
                             f"every machine ({detail}).")
        else:
            sentences.append(f"- {row['configuration']}: no winner on at least one machine ({detail}).")
    return sentences


def render(title: str, data: Results, long_tables: dict) -> str:
    finished, runs = data.finished, data.runs
    failed = runs[runs["status"] != "ok"]
    summary = long_tables["summary"]
    cpu, profile = data.cpu_model, data.profile
    converged = int(finished["n_train"].min()) >= CONVERGED_MIN_TRAIN
    n_train, n_test = int(finished["n_train"].iloc[0]), int(finished["n_test"].iloc[0])
    threads = sorted(int(t) for t in finished["threads"].unique())
    lines = [f"# rnnbench report: {title}", "",
             f"**Machine: {cpu}**, {', '.join(map(str, threads))} threads. Every figure below holds for this CPU only; "
             "winners change with the CPU.", ""]
    if profile.get("description"):
        lines += [f"Profile `{profile.get('name')}`: {profile['description']}.", ""]
    if not converged:
        lines += [f"> **Not converged** ({n_train} training and {n_test} test reviews, "
                  f"{'/'.join(map(str, sorted(finished['epochs_run'].unique())))} epoch(s) per run). This profile "
                  "answers *speed and memory*, per cell and implementation, with run-level intervals; it makes "
                  "no accuracy verdicts (accuracies near chance say nothing about final quality). In their place "
                  "it checks that the implementations' training losses agree over identical batches. Depth, "
                  "direction and converged accuracy are the `standard` and `full` profiles' questions.", ""]
    lines += [f"{len(finished)} finished runs, {len(failed)} failed; "
              f"{finished.groupby(['implementation', 'cell', 'layers', 'bidirectional']).size().min()}-"
              f"{finished.groupby(['implementation', 'cell', 'layers', 'bidirectional']).size().max()} runs per "
              f"cell; flush-to-zero {sorted(finished['flush_denormal'].unique().tolist())}, jit/XLA "
              f"{sorted(finished['jit_compile'].unique().tolist())}.", "",
              "## Findings", "", f"**Fastest implementation per configuration on {cpu}** (median over runs of "
              "each run's median steady step; ratio with a 95% interval over whole runs):", ""]
    family = long_tables["comparisons"]
    lines += fastest_sentences(summary, runs, cpu, family)
    overhead = long_tables["keras_overhead"]
    backends = keras_backend_sentences(summary, runs, cpu, family)
    if backends:
        lines += ["", f"**Fastest Keras backend per configuration on {cpu}** (the one model definition, Keras as "
                  "released, each backend's default jit setting):", ""] + backends
    lines += ["", f"**Keras overhead per backend on {cpu}** (Keras step time / native step time, same backend):", ""]
    lines += overhead_sentences(overhead, summary) if not overhead.empty else ["- (no Keras/native pairs)"]
    lines += ["", "**Depth scaling**:", ""] + depth_sentences(long_tables["depth_scaling"])
    lines += ["", f"**Memory on {cpu}**:", ""] + memory_sentences(summary)
    if converged:
        capped = int((finished["epochs_run"] >= finished["epochs_planned"]).sum())
        lines += ["", "**Test accuracy and equivalence to native PyTorch**:", "",
                  f"- Trained on all {n_train} training reviews for at most "
                  f"{int(finished['epochs_planned'].max())} epochs: {capped} of {len(finished)} runs stopped at "
                  "that cap, the others by early stopping; accuracies are after at most that many epochs, not "
                  "necessarily converged."]
        lines += quality_sentences(summary, long_tables["equivalence"], data.baseline)
        ttt = time_to_target_sentences(summary, finished)
        if ttt:
            lines += ["", f"**Time to target on {cpu}**:", ""] + ttt
    else:
        lines += ["", "**Training-loss agreement** (replaces accuracy verdicts at this budget):", ""]
        lines += loss_sentences(long_tables["loss_agreement"])
    lines += ["", "**How quiet the machine was**:", ""] + quietness_sentences(runs, data.canary)
    lines += ["", "**How the verdicts are decided**:", ""] + method_sentences(
        family, long_tables["equivalence"] if converged else None)
    lines += ["", f"## Headline tables ({cpu})", "",
              "Steady ms/step: geometric mean over quiet runs [run-to-run min-max], then the ratio to native torch "
              "with its 95% run-level interval; † marks a cell with busy runs left out.", "",
              tables.to_markdown(tables.headline(summary, "step")),
              "Peak training memory, MB above the ready baseline: median [min-max over runs].", "",
              tables.to_markdown(tables.headline(summary, "memory"))]
    if converged:
        lines += ["Test accuracy, mean ± sd over seeds.", "", tables.to_markdown(tables.headline(summary, "accuracy"))]
        if "ttt_wall_s" in summary and summary["target_accuracy"].notna().any():
            lines += ["Time to target validation accuracy with validation on the clock (MLPerf; censored median "
                      "over runs), training-only beside it, and all training until early stopping.", "",
                      tables.to_markdown(tables.headline(summary, "time_to_target"))]
        lines += ["Equivalence to native torch (test accuracy, points, paired by seed).", "",
                  tables.to_markdown(long_tables["equivalence"])]
    else:
        agreement = long_tables["loss_agreement"]
        if not agreement.empty:
            largest = agreement.groupby(["implementation", "cell", "layers", "bidirectional"], sort=False)[
                ["first_step_gap", "max_running_mean_gap", "max_step_gap"]].max().reset_index()
            lines += ["Largest training-loss gap to native torch over the same batches (all seeds).", "",
                      tables.to_markdown(largest)]
    if data.roofline and "gemm_gflop_per_step" in summary and summary["gemm_gflop_per_step"].notna().any():
        peak, small = data.roofline["peak_gflops"], data.roofline["small_gemm_gflops"]
        m, k, n = data.roofline["small_gemm_shape"]
        lines += [f"Roofline ({cpu}, {data.roofline['threads']} threads): achieved GEMM GFLOP/s at the median "
                  f"step (analytic GEMM work of forward and backward, `model/weights.py`) and its share of the "
                  f"machine's fp32 peak, {peak:.0f} GFLOP/s on a 2048^3 product. The recurrence multiplies "
                  f"({m} x {k}) by ({k} x {n}) once per timestep, strictly in sequence; this machine runs that "
                  f"shape at {small:.0f} GFLOP/s ({small / peak:.0%} of peak), which bounds every "
                  "implementation far below the large-GEMM peak.", "",
                  tables.to_markdown(tables.roofline(summary, peak))]
    programming = long_tables["programming_model"]
    if not programming.empty:
        lines += [f"Programming model ({cpu}): each variant against its implementation's default on the same "
                  "configuration. The first step holds tracing or compilation; `break_even_steps` is the number "
                  "of steady steps after which the variant has paid for it (empty: slower per step, never).", "",
                  tables.to_markdown(programming)]
    lines += [f"Keras overhead per backend ({cpu}).", "", tables.to_markdown(overhead),
              "Every column (quality, CPU time, throughput, latency, first step, kernel path) is in "
              "`tables/summary.csv`; one row per run in `tables/runs.csv`.", ""]
    if not failed.empty:
        lines += ["## Failed runs", "", tables.to_markdown(failed[[c for c in ("run_id", "failure", "error")
                                                                  if c in failed.columns]])]
    lines += ["## Plots", "", "![step time vs depth](step_time_vs_depth.png)", "",
              "![accuracy vs training time](accuracy_vs_training_time.png)", "",
              "![accuracy vs training CPU-minutes](accuracy_vs_cpu_minutes.png)", "", "![peak memory](peak_memory.png)",
              "", "![step-time distributions](step_time_distributions.png)", "",
              "![training-loss trajectories](loss_trajectories.png)", "",
              "![canary and step time against sweep time](canary.png)", "", "## Kernel paths", ""]
    for name in _present(summary["implementation"]):
        for path in summary[summary["implementation"] == name]["kernel_path"].unique():
            lines.append(f"- {name}: {path}")
    lines += ["", "## Environment and command", ""]
    if data.manifest:
        environment = data.environment or data.manifest["environment"]
        packages = ", ".join(f"{k} {v}" for k, v in environment["packages"].items() if v)
        lines += [f"- CPU: {environment['cpu']['model']} ({environment['cpu']['usable_cores']} usable cores, "
                  f"governor {environment['cpu']['governor']}), {environment['memory_total_gb']} GB RAM",
                  f"- OS: {environment['os']}; Python {environment['python']}",
                  f"- Packages: {packages}",
                  f"- Git commit: {environment['git']['commit']} (dirty: {environment['git']['dirty']})",
                  f"- Sweep profile: `{profile}`; threads {data.manifest.get('threads')}"]
        lines += [f"- Command ({session['started']}): `{' '.join(session['command'])}`"
                  for session in data.manifest["sessions"]]
    lines += ["", "Tables as CSV and Markdown: `tables/`. Raw per-step samples: each run's `record.json`.", ""]
    return "\n".join(lines)


@app.command()
def main(results: Annotated[list[Path], typer.Argument(help="results folders written by runners.compare (several: one report across machines)")],
         out: Annotated[Optional[Path], typer.Option(help="where the report goes (default: the folder; for several, cross-machine/ beside the first)")] = None):
    """Regenerate REPORT.md, tables/ and the plots from the run records in RESULTS."""
    with user_errors():
        typer.echo(generate(*results, out=out))


if __name__ == "__main__":
    app()
