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

from analysis import calibration, findings, inference, plots, rendering, tables, verdicts
from analysis.load import AnalysisError, Results, load_machines
from analysis.reference import REPO
from model.errors import user_errors
from model.frameworks import identity_packages
from model.spec import CONFIGURATION

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# Runs on fewer training reviews than this are not trained to convergence: no accuracy verdicts.
CONVERGED_MIN_TRAIN = 20_000


def generate(*paths: Path, out: Path | None = None, figures: bool = True) -> Path:
    """REPORT.md, tables and plots. One folder of one machine: the report in that folder. Several folders, or a
    folder with several machines (a Ray sweep over different CPUs): a report per machine under
    ``OUT/machines/`` and a cross-machine REPORT.md in OUT (default: the folder, or ``cross-machine`` beside the
    first of several)."""
    paths = [Path(path) for path in paths]
    machines, unowned = load_machines(paths)
    if len(machines) == 1 and len(paths) == 1:
        return write(machines[0], out or paths[0], paths[0].name, figures)
    out = Path(out or (paths[0] if len(paths) == 1 else paths[0].parent / "cross-machine"))
    labels = machine_labels(machines)
    for label, data in zip(labels, machines):
        write(data, out / "machines" / slug(label), label, figures)
    report = out / "REPORT.md"
    out.mkdir(parents=True, exist_ok=True)
    report.write_text(render_machines(paths, machines, labels, unowned))
    return report


def write(data: Results, out: Path, title: str, figures: bool = True) -> Path:
    """One machine's report into ``out`` (``figures=False``: the text alone, as the docs check compares it)."""
    if data.finished.empty:
        raise AnalysisError(f"{', '.join(map(str, data.sources)) or out} has no finished runs to analyse")
    out.mkdir(parents=True, exist_ok=True)
    twins = calibration.twins(data)
    summary, family = tables.summary(data.runs), verdicts.comparisons(data.runs, twins)
    long_tables = dict(summary=summary, comparisons=family, aa=twins, steadiness=verdicts.steadiness(data.runs, family), keras_overhead=verdicts.overhead(data.runs, family),
                       depth_scaling=verdicts.depth_scaling(summary, data.runs),
                       loss_agreement=tables.loss_agreement(data.runs, data.losses),
                       equivalence=tables.equivalence(data.runs), programming_model=verdicts.programming_model(summary, data.runs),
                       precision=verdicts.precision(data.runs, family), runs=data.runs)
    (out / "tables").mkdir(exist_ok=True)
    for name, table in long_tables.items():
        (out / "tables" / f"{name}.csv").write_text(rendering.to_csv(table))
        (out / "tables" / f"{name}.md").write_text(rendering.to_markdown(table))
    report = out / "REPORT.md"
    report.write_text(render(title, data, long_tables))
    if not figures:
        return report
    drawn = dict(step_time_vs_depth=plots.step_time_vs_depth(summary),
                 accuracy_vs_training_time=plots.accuracy_vs_training_time(summary, data.baseline),
                 accuracy_vs_cpu_minutes=plots.accuracy_vs_cpu_minutes(data.runs, data.baseline),
                 peak_memory=plots.peak_memory(summary),
                 step_time_distributions=plots.step_time_distributions(data.runs, data.samples),
                 loss_trajectories=plots.loss_trajectories(data.runs, data.losses))
    if data.canary:  # a figure with nothing to show is not written
        drawn["canary"] = plots.canary(data.runs)
    (out / "canary.png").unlink(missing_ok=True)
    for name, figure in drawn.items():
        plots.save(figure, out / f"{name}.png")
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
        differs = {field for field in data.identity._fields if len({getattr(o.identity, field) for o in alike}) > 1}
        parts = []
        if "versions" in differs:
            parts.append(_versions(data.environment))
        if "generation" in differs:
            parts.append(data.identity.generation or "generation not recorded")
        if "flags" in differs:
            parts.append("flags " + " ".join(data.identity.flags))
        if "cores" in differs:
            parts.append(f"{data.identity.cores} cores")
        if "plan" in differs:
            parts.append(f"plan {data.identity.plan} ({data.profile.get('name') or 'no profile'})")
        labels.append(f"{label} ({'; '.join(parts)})")
    return labels


def _versions(environment: dict) -> str:
    packages = environment["packages"]
    return ", ".join(f"{name} {packages.get(name)}" for name in identity_packages())


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def render_machines(paths: list[Path], machines: list[Results], labels: list[str], unowned: pd.DataFrame) -> str:
    """The cross-machine report: which machines, each one's headline table, and the winners side by side. Folders
    inside the repository are named from its root, so that a report reads the same in any clone."""
    def where(sources) -> str:
        return ", ".join(str(Path(path).resolve().relative_to(REPO)) if Path(path).resolve().is_relative_to(REPO)
                         else str(path) for path in sources)

    summaries = {label: tables.summary(data.runs) for label, data in zip(labels, machines)}
    families = {label: verdicts.comparisons(data.runs, calibration.twins(data)) for label, data in zip(labels, machines)}
    fastest = {label: verdicts.fastest(summaries[label], data.runs, families[label])
               for label, data in zip(labels, machines)}
    comparisons = sum(len(family) for family in families.values())
    testable = sum(int(family["testable"].sum()) for family in families.values())
    winners = rendering.winners_across(fastest)
    lines = [f"# rnnbench across machines: {', '.join(path.name for path in paths)}", "",
             "Records are grouped by machine: CPU model, threads, and the versions of torch, TensorFlow, Keras and "
             "JAX. Nothing is pooled across machines; each machine's figures come from its own runs, with its own "
             "run-level intervals, and each has a full report under `machines/`.", "", "## Machines", ""]
    machine_table = pd.DataFrame([dict(machine=label, report=f"machines/{slug(label)}/REPORT.md",
                                       runs=len(data.finished), failed=int((data.runs["status"] != "ok").sum()),
                                       hosts=", ".join(sorted(data.finished.get("hostname", pd.Series(dtype=str))
                                                              .dropna().unique())),
                                       versions=_versions(data.environment),
                                       folders=where(data.sources))
                                  for label, data in zip(labels, machines)])
    lines += [rendering.to_markdown(machine_table), "## Findings", ""]
    lines += findings.machine_findings(winners, labels) or ["- No configuration was measured on two machines."]
    lines += ["", "## Fastest implementation per configuration and machine", "",
              "Per machine: the fastest implementation (geometric mean over quiet runs of each run's median steady "
              "step) and the runner-up's step time relative to it with its 95% run-level interval; `≈` where the "
              "runner-up's interval lies inside the A/A margin, `not resolved` where it is neither clear nor inside it, "
              "`untestable` where the runner-up has no interval (clear: Holm-corrected within each machine's report "
              "and beyond its A/A margin; "
              f"{comparisons} speed comparisons in all, {testable} of them testable; the family-wise "
              f"{inference.FAMILY_LEVEL:.0%} holds per machine, nothing is controlled across machines). `winner`: `same` where one implementation wins clearly "
              "everywhere, `depends on the CPU` where clear winners differ, else `unclear`.", "", rendering.to_markdown(winners),
              "## Ratio to native torch per machine", "",
              "Steady step time relative to native torch on the same machine (95% run-level interval).", "",
              rendering.to_markdown(rendering.ratios_across(summaries))]
    lines += _machine_sections(labels, machines, summaries, families, where)
    if not unowned.empty:
        lines += ["## Failed runs of no single machine", "",
                  "A folder with several machines' runs cannot say which machine a failed run was on.", "",
                  rendering.to_markdown(unowned[[c for c in ("run_id", "failure", "error") if c in unowned.columns]])]
    return "\n".join(lines) + "\n"


def _machine_sections(labels: list[str], machines: list[Results], summaries: dict, families: dict, where) -> list[str]:
    """Each machine's step and memory tables, the thread counts' speed-ups, and bf16 against fp32 per machine."""
    lines = []
    for label, data in zip(labels, machines):
        lines += [f"## {label}", "", f"{len(data.finished)} finished runs from {where(data.sources)}. "
                  "Steady ms/step: median over runs [run min-max], ratio to native torch (95% interval).", "",
                  rendering.to_markdown(rendering.headline(summaries[label], "step")),
                  "Peak training memory, MB above the ready baseline: median [min-max over runs].", "",
                  rendering.to_markdown(rendering.headline(summaries[label], "memory"))]
    lines += _threads_sections(machines)
    precisions = {label: verdicts.precision(data.runs, families[label]) for label, data in zip(labels, machines)}
    if any(not table.empty for table in precisions.values()):
        lines += ["## bf16 / fp32 per machine", "",
                  "Steady step of each bf16 column over its fp32 default, per machine (or thread count, or width: "
                  "whatever separates the groups), with the 95% run-level interval; `emulated` where the CPU had no "
                  "bf16 instructions. Where the gain depends on the width or the CPU, the rows differ.", "",
                  rendering.to_markdown(rendering.precision_across(precisions))]
    return lines


def _threads_sections(machines: list[Results]) -> list[str]:
    """Where groups differ only in their thread count: the parallel speed-up and efficiency per thread count."""
    same_machine: dict[tuple, dict[int, Results]] = {}
    for data in machines:
        same_machine.setdefault(data.identity._replace(threads=0), {})[data.identity.threads] = data
    lines = []
    for by_threads in same_machine.values():
        if len(by_threads) < 2:
            continue
        table = tables.thread_scaling({count: data.runs for count, data in by_threads.items()})
        base = min(by_threads)
        cells = table.assign(speedup=[rendering.ratio_text(r.speedup, r.low, r.high) if r.threads != base else "1"
                                      for r in table.itertuples()])
        lines += [f"## Threads: parallel speed-up on {by_threads[base].cpu_model}", "",
                  f"Steady step at each thread count (geometric mean over quiet runs), the speed-up over {base} "
                  f"thread(s) with its 95% run-level interval, the efficiency (speed-up / thread ratio) and CPU "
                  "milliseconds per step (the cost of the extra threads).", "",
                  rendering.to_markdown(cells[["configuration", "implementation", "threads", "runs", "step_ms",
                                            "speedup", "efficiency", "cpu_ms_per_step"]])]
    return lines


def render(title: str, data: Results, long_tables: dict) -> str:
    """REPORT.md, section by section."""
    converged = int(data.finished["n_train"].min()) >= CONVERGED_MIN_TRAIN
    sections = (_header(title, data, converged), _findings(data, long_tables, converged),
                _headline_tables(data, long_tables, converged), _detail_tables(data, long_tables),
                _failed(data), _plots(bool(data.canary)), _kernel_paths(long_tables["summary"]), _environment(data))
    return "\n".join(line for section in sections for line in section) + "\n"


def _header(title: str, data: Results, converged: bool) -> list[str]:
    finished, profile = data.finished, data.profile
    n_train, n_test = int(finished["n_train"].iloc[0]), int(finished["n_test"].iloc[0])
    threads = sorted(int(t) for t in finished["threads"].unique())
    per_cell = finished.groupby(["implementation", *CONFIGURATION]).size()
    lines = [f"# rnnbench report: {title}", "",
             f"**Machine: {data.cpu_model}**, {', '.join(map(str, threads))} threads; runs {data.schedule}, "
             f"allocator {data.allocator}. Every figure below holds for this CPU only; winners change with the CPU.",
             ""]
    if profile.get("description"):
        lines += [f"Profile `{profile.get('name')}`: {profile['description']}.", ""]
    if not converged:
        lines += [f"> **Not converged** ({n_train} training and {n_test} test reviews, "
                  f"{'/'.join(map(str, sorted(finished['epochs_run'].unique())))} epoch(s) per run). This profile "
                  "answers *speed and memory*, per cell and implementation, with run-level intervals; it makes "
                  f"no accuracy verdicts ({_early_accuracy(finished)}). In their place "
                  "it checks that the implementations' training losses agree over identical batches. Depth, "
                  "direction and converged accuracy are the `standard` and `full` profiles' questions.", ""]
    return lines + [f"{len(finished)} finished runs, {int((data.runs['status'] != 'ok').sum())} failed; "
                    f"{per_cell.min()}-{per_cell.max()} runs per cell; flush-to-zero "
                    f"{sorted(finished['flush_denormal'].unique().tolist())}, jit/XLA "
                    f"{sorted(finished['jit_compile'].unique().tolist())}.", ""] + _seeds(data.manifest)


def _seeds(manifest: dict | None) -> list[str]:
    """How a sweep with a target chose its seeds, and every comparison it left short of the target."""
    account = (manifest or {}).get("seeds")
    if not account:
        return []
    target = account["target_reach"]
    lines = [f"**Seeds where they were needed**: {account['first_seeds']} of every configuration, then more only "
             f"where a ratio to native torch reached further than ±{target:.0%} from its point, up to "
             f"{account['most_seeds']}" + (f", within {account['budget_min']:g} min" if account["budget_min"] else "")
             + " (the rule reads intervals' widths, never their points: docs/methodology.md). Seeds: "
             + ", ".join(f"{key} {n}" for key, n in account["seeds"].items()) + "."]
    short = [f"{key} {name} " + (f"±{entry['reach']:.1%}" if entry["reach"] == entry["reach"] else "no interval")
             + (f" (its sd needs {entry['needs']} seeds)" if entry["needs"] else "")
             for key, comparisons in account["short"].items() for name, entry in comparisons.items()]
    lines += [f"Short of ±{target:.0%}: {'; '.join(short)}." if short
              else f"Every ratio to native torch reaches within ±{target:.0%}.", ""]
    return lines


def _early_accuracy(finished) -> str:
    """What this budget's test accuracies are, in words the numbers support."""
    accuracy = finished["accuracy"].astype(float)
    if accuracy.median() < 0.6:
        return f"test accuracies {accuracy.min():.2f}-{accuracy.max():.2f}, near chance, say nothing of final quality"
    return (f"test accuracies {accuracy.min():.2f}-{accuracy.max():.2f} after this little training say little of "
            "final quality")


def _findings(data: Results, long_tables: dict, converged: bool) -> list[str]:
    summary, runs, cpu = long_tables["summary"], data.runs, data.cpu_model
    finished, family, overhead = data.finished, long_tables["comparisons"], long_tables["keras_overhead"]
    lines = ["## Findings", "", f"**Fastest implementation per configuration on {cpu}** (geometric mean over "
             "quiet runs of each run's median steady step; ratio with a 95% interval over whole runs):", ""]
    lines += findings.fastest_sentences(summary, runs, cpu, family)
    backends = findings.keras_backend_sentences(summary, runs, cpu, family)
    if backends:
        lines += ["", f"**Fastest Keras backend per configuration on {cpu}** (the one model definition, Keras as "
                  "released, each backend's default jit setting):", ""] + backends
    lines += ["", f"**Keras overhead per backend on {cpu}** (Keras step time / native step time, same backend):", ""]
    lines += findings.overhead_sentences(overhead, summary) if not overhead.empty else ["- (no Keras/native pairs)"]
    lines += ["", "**Depth scaling**:", ""] + findings.depth_sentences(long_tables["depth_scaling"])
    lines += ["", f"**Memory on {cpu}**:", ""] + findings.memory_sentences(summary)
    if converged:
        capped = int((finished["epochs_run"] >= finished["epochs_planned"]).sum())
        cap = int(finished["epochs_planned"].max())
        stopped = ("every run trained all of them" if capped == len(finished)
                   else f"{capped} of {len(finished)} runs stopped at that cap, the others by early stopping")
        lines += ["", "**Test accuracy and equivalence to native PyTorch**:", "",
                  f"- Trained on all {int(finished['n_train'].iloc[0])} training reviews for at most {cap} epochs: "
                  f"{stopped}; accuracies are after at most that many epochs, not necessarily converged."]
        lines += findings.quality_sentences(summary, long_tables["equivalence"], data.baseline)
        ttt = findings.time_to_target_sentences(summary, finished)
        if ttt:
            lines += ["", f"**Time to target on {cpu}**:", ""] + ttt
    else:
        lines += ["", "**Training-loss agreement** (replaces accuracy verdicts at this budget):", ""]
        lines += findings.loss_sentences(long_tables["loss_agreement"])
    clips = finished["clip_global_norm"].dropna() if "clip_global_norm" in finished else ()
    clipping = findings.clipping_sentences(summary, float(clips.iloc[0])) if len(clips) else []
    if clipping:
        lines += ["", "**Gradient clipping**:", ""] + clipping
    lines += ["", "**How quiet the machine was**:", ""] + findings.quietness_sentences(runs, data.canary)
    lines += ["", "**How steady the timed steps were**:", ""] + findings.steadiness_sentences(
        long_tables["steadiness"], verdicts.unsettled(runs))
    return lines + ["", "**How the verdicts are decided**:", ""] + findings.method_sentences(
        family, long_tables["equivalence"] if converged else None, long_tables["aa"])


def _headline_tables(data: Results, long_tables: dict, converged: bool) -> list[str]:
    summary = long_tables["summary"]
    lines = ["", f"## Headline tables ({data.cpu_model})", "",
             "Steady ms/step: geometric mean over quiet runs [run-to-run min-max], then the ratio to native torch "
             "with its 95% run-level interval; † marks a cell with busy runs left out.", "",
             rendering.to_markdown(rendering.headline(summary, "step")),
             "Peak training memory, MB above the ready baseline: median [min-max over runs].", "",
             rendering.to_markdown(rendering.headline(summary, "memory"))]
    if converged:
        lines += ["Test accuracy, mean ± sd over seeds.", "", rendering.to_markdown(rendering.headline(summary, "accuracy"))]
        if "ttt_wall_s" in summary and summary["target_accuracy"].notna().any():
            lines += ["Time to target validation accuracy with validation on the clock (MLPerf; censored median "
                      "over runs), training-only beside it, and all training until early stopping.", "",
                      rendering.to_markdown(rendering.headline(summary, "time_to_target"))]
        return lines + ["Equivalence to native torch (test accuracy, points, paired by seed); `power`: the row's "
                        "chance of \"equivalent\" were nothing different, from its own seeds and paired sd.", "",
                        rendering.to_markdown(long_tables["equivalence"])]
    agreement = long_tables["loss_agreement"]
    if not agreement.empty:
        largest = agreement.groupby(["implementation", *CONFIGURATION], sort=False)[
            ["first_step_gap", "max_running_mean_gap", "max_step_gap"]].max().reset_index()
        lines += ["Largest training-loss gap to native torch over the same batches (all seeds).", "",
                  rendering.to_markdown(largest)]
    return lines


def _detail_tables(data: Results, long_tables: dict) -> list[str]:
    summary, cpu, lines = long_tables["summary"], data.cpu_model, []
    if data.roofline and "gemm_gflop_per_step" in summary and summary["gemm_gflop_per_step"].notna().any():
        peak, small = data.roofline["peak_gflops"], data.roofline["small_gemm_gflops"]
        m, k, n = data.roofline["small_gemm_shape"]
        lines += [f"Roofline ({cpu}, {data.roofline['threads']} threads): achieved GEMM GFLOP/s at the median "
                  f"step (analytic GEMM work of forward and backward, `model/weights.py`) and its share of the "
                  f"machine's fp32 peak, {peak:.0f} GFLOP/s on a 2048^3 product. The recurrence multiplies "
                  f"({m} x {k}) by ({k} x {n}) once per timestep, strictly in sequence; this machine runs that "
                  f"shape at {small:.0f} GFLOP/s ({small / peak:.0%} of peak), which bounds the recurrent part of "
                  "each step (the input projection x@W and the weight gradients can run as larger GEMMs).", "",
                  rendering.to_markdown(rendering.roofline(summary, peak))]
    precision = long_tables["precision"]
    if not precision.empty:
        emulated = " **Emulated**: this CPU has no bf16 instructions, so these ratios measure the frameworks' " \
            "software conversion, not bf16 hardware." if precision["emulated"].any() else ""
        cells = precision.assign(
            ratio=[rendering.ratio_text(r.ratio, r.low, r.high) + ("" if r.clear else " (not clear)")
                   for r in precision.itertuples()],
            accuracy_points=[f"{r.accuracy_points:+.2f} ({r.accuracy_low:+.2f}..{r.accuracy_high:+.2f})"
                             if np.isfinite(r.accuracy_low) else f"{r.accuracy_points:+.2f}"
                             for r in precision.itertuples()])
        lines += [f"Precision ({cpu}): each bf16 column against its fp32 default. Steady step (geometric means of "
                  "quiet runs), bf16 / fp32 with its 95% run-level interval (below 1: bf16 is faster; Holm-corrected "
                  "with the report's other speed verdicts), and test accuracy bf16 - fp32 in points, paired by "
                  f"seed, with its 95% interval and a TOST verdict within ±{inference.EQUIVALENCE_MARGIN_POINTS:g} "
                  f"point. A precision that trains faster but loses accuracy shows it here.{emulated}", "",
                  rendering.to_markdown(cells[["implementation", "cell", "layers", "bidirectional", "fp32_ms",
                                            "bf16_ms", "ratio", "seeds", "accuracy_points", "accuracy"]])]
    programming = long_tables["programming_model"]
    if not programming.empty:
        lines += [f"Programming model ({cpu}): each variant against its implementation's default on the same "
                  "configuration: `speedup` is default / variant step time with its 95% run-level interval "
                  "(`speedup_low`-`speedup_high`, quiet runs; Holm's verdict on the same pair is in the findings). "
                  "The first step holds tracing or compilation; `break_even_steps` is the number "
                  "of steady steps after which the variant has paid for it (empty: slower per step, never).", "",
                  rendering.to_markdown(programming)]
    return lines + [f"Keras overhead per backend ({cpu}).", "", rendering.to_markdown(long_tables["keras_overhead"]),
                    "Every column (quality, CPU time, throughput, latency, first step, kernel path) is in "
                    "`tables/summary.csv`; one row per run in `tables/runs.csv`, each comparison of the verdict "
                    "family with its p-value in `tables/comparisons.csv`.", ""]


def _failed(data: Results) -> list[str]:
    failed = data.runs[data.runs["status"] != "ok"]
    if failed.empty:
        return []
    return ["## Failed runs", "", rendering.to_markdown(failed[[c for c in ("run_id", "failure", "error")
                                                             if c in failed.columns]])]


def _plots(canary: bool) -> list[str]:
    return ["## Plots", "", "![step time vs depth](step_time_vs_depth.png)", "",
            "![accuracy vs training time](accuracy_vs_training_time.png)", "",
            "![accuracy vs training CPU-minutes](accuracy_vs_cpu_minutes.png)", "", "![peak memory](peak_memory.png)",
            "", "![step-time distributions](step_time_distributions.png)", "",
            "![training-loss trajectories](loss_trajectories.png)", ""] + (
        ["![canary and step time against sweep time](canary.png)", ""] if canary else [])


def _kernel_paths(summary: pd.DataFrame) -> list[str]:
    return ["## Kernel paths", ""] + [f"- {name}: {path}" for name in tables.ordered(summary["implementation"])
                                      for path in summary[summary["implementation"] == name]["kernel_path"].unique()]


def _environment(data: Results) -> list[str]:
    lines = ["", "## Environment and command", ""]
    if data.manifest:
        environment = data.environment or data.manifest["environment"]
        packages = ", ".join(f"{k} {v}" for k, v in environment["packages"].items() if v)
        lines += [f"- CPU: {environment['cpu']['model']} ({environment['cpu']['usable_cores']} usable cores, "
                  f"governor {environment['cpu']['governor']}), {environment['memory_total_gb']} GB RAM",
                  f"- OS: {environment['os']}; Python {environment['python']}",
                  f"- Packages: {packages}",
                  f"- Git commit: {environment['git']['commit']} (dirty: {environment['git']['dirty']})",
                  f"- Sweep profile: `{data.profile}`; threads {data.manifest.get('threads')}"]
        lines += [f"- Command ({session['started']}): `{' '.join(session['command'])}`"
                  for session in data.manifest["sessions"]]
    return lines + ["", "Tables as CSV and Markdown: `tables/`. Raw per-step samples: each run's `record.json`."]


@app.command()
def main(results: Annotated[list[Path], typer.Argument(help="results folders written by runners.compare (several: one report across machines)")],
         out: Annotated[Optional[Path], typer.Option(help="where the report goes (default: the folder; for several, cross-machine/ beside the first)")] = None):
    """Regenerate REPORT.md, tables/ and the plots from the run records in RESULTS."""
    with user_errors():
        typer.echo(generate(*results, out=out))


if __name__ == "__main__":
    app()
