"""Reference results: the records README's figures are generated from, committed, one folder per machine.

    python -m analysis.reference add results/competitive   # copy a sweep's records in, host details stripped
    python -m analysis.reference add results/depth --name depth   # a profile swept with other settings

README's and docs/results/' generated blocks are written from these folders by ``analysis.docs`` (``make docs``).

``results/reference/<machine>/<profile>/`` holds a sweep's ``runs/*/record.json``, manifest, baselines and
roofline, as ``runners.compare`` wrote them, less what names the host (hostname, absolute paths). ``<machine>``
is the CPU model with its widest vector extension and core count, since a VM's model string can hide a CPU
generation ("AMD EPYC" with AVX2 only and "AMD EPYC" with AVX-512 differ twofold). A machine's folder is added
to, never overwritten by another machine's. README holds blocks between ``<!-- generated: PROFILE -->`` and
``<!-- end generated -->``; each is the table of that profile over every machine that has it (``render_blocks``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from analysis import calibration, rendering, tables, verdicts
from analysis.load import load
from analysis.sets import ACCURACY_SETS, FRONTIER_SETS
from model import records
from model.errors import fail, user_errors
from model.implementations import Column, base_name
from model.spec import CONFIGURATION, Configuration

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "results" / "reference"
README = REPO / "README.md"
BLOCK = re.compile(r"(<!-- generated: (?P<profile>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


# Machines filed before records kept the CPU generation, under names without it (the generation from their lscpu,
# README's "The answer, per CPU"): their new records file there too.
NAMED_BEFORE_GENERATION = {"amd-epyc-zen3-avx2-2c": "amd-epyc-avx2-2c",
                           "amd-epyc-zen4-avx512f-bf16-2c": "amd-epyc-avx512f-bf16-2c"}


def machine_name(environment: dict) -> str:
    """``amd-epyc-zen5-avx512f-bf16-2c``: model, generation (where recorded), widest vector unit, bf16, cores."""
    cpu = environment["cpu"]
    flags = cpu.get("flags") or {}
    widest = next((name for name in ("amx_tile", "avx512f", "avx2") if flags.get(name)), "sse")
    bf16 = " bf16" if flags.get("avx512_bf16") or flags.get("amx_bf16") else ""
    name = f"{cpu['model']} {records.cpu_generation(cpu) or ''} {widest}{bf16} {cpu.get('logical_cores')}c"
    name = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return NAMED_BEFORE_GENERATION.get(name, name)


def _anonymous(document: dict) -> dict:
    """The document without the host's name or absolute paths (kept: file names)."""
    def strip(value):
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key != "hostname"}
        if isinstance(value, list):
            return [strip(item) for item in value]
        if isinstance(value, str) and value.startswith("/"):
            return Path(value).name
        return value
    return strip(document)


def add(results: Path, name: str | None = None) -> Path:
    """Copy a sweep's finished records into ``results/reference/<machine>/<name>/``: by default the profile's
    name; another name for a profile swept with other settings (``--layers 1,2,3``), which must not pool with
    the profile's own records."""
    manifest = records.require_manifest(results)
    profile = manifest["profile"]["name"]
    if name is not None and not re.fullmatch(r"[\w-]+", name):
        fail(f"--name {name!r}: use letters, digits, '-' and '_' (it names a folder and a README block)")
    target = REFERENCE / machine_name(manifest["environment"]) / (name or profile)
    done = [run for run in sorted((results / records.RUNS_FOLDER).iterdir()) if records.run_state(run) == "done"]
    if not done:
        fail(f"{results} has no finished runs to add")
    for run in done:
        records.write_json_atomic(target / records.RUNS_FOLDER / run.name / records.RECORD_FILE,
                                  _anonymous(records.read_json(run / records.RECORD_FILE)))
    for name in (records.MANIFEST_FILE, records.BASELINE_FILE, records.ROOFLINE_FILE, records.HYBRID_FILE,
                 records.ENSEMBLE_FILE):
        if (results / name).exists():
            records.write_json_atomic(target / name, _anonymous(records.read_json(results / name)))
    return target


def _ensemble_cell(row) -> str:
    if not row.get("ensembles"):
        return "-"
    sd = f" ± {row['ensemble_accuracy_sd']:.4f}" if np.isfinite(row["ensemble_accuracy_sd"]) else ""
    return f"{row['ensemble_accuracy']:.4f}{sd} ({int(row['ensembles'])}), {row['ensemble_train_wall_s'] / 60:.0f} min"


def _ratio_cell(family: pd.DataFrame, row) -> str:
    """A variant column against its implementation's default, any other column against native torch: the
    ratio of steady step times from the report's Holm family, "clear" where Holm rejects 1 beyond the A/A margin."""
    name = row["implementation"]
    against = base_name(name) if base_name(name) != name else tables.REFERENCE
    if name == against:
        return "-"
    found = verdicts.compared(family, row["cell"], row["layers"], row["bidirectional"], name, against)
    if not np.isfinite(found["ratio"]):
        return "-"
    return (f"{rendering.ratio_text(found['ratio'], found['low'], found['high'])} vs {against}"
            + (", clear" if found["clear"] else ""))


def converged(data) -> bool:
    """Whether a folder's profile trains to an accuracy worth comparing (it names a target accuracy)."""
    return data.profile.get("target_accuracy") is not None


def _profile_row(machine: str, row, family: pd.DataFrame, accuracy: bool) -> dict:
    """One row of a profile's table; ``accuracy``: a converged profile's, with time to target, ensembles and
    hybrids."""
    sd = f" ± {row['accuracy_sd']:.4f}" if np.isfinite(row["accuracy_sd"]) else ""
    ttt = row.get("ttt_eval_wall_s", np.nan)
    return {"machine": machine, "configuration": Configuration.of(row).label,
            "implementation": row["implementation"], "seeds": int(row["seeds"]), "runs": int(row["runs"]),
            "test accuracy": f"{row['accuracy']:.4f}{sd}", "training, min": f"{row['train_wall_s'] / 60:.1f}",
            "ms/step": f"{row['step_ms']:.0f}", "step time ratio": _ratio_cell(family, row),
            "first step, s": f"{row['first_step_s']:.1f}",
            **({"to target, s": f"{ttt:.0f}" if np.isfinite(ttt) else "-", "ensemble of 3": _ensemble_cell(row),
                "hybrid with bigram LR": f"{row['hybrid_accuracy']:.4f}"
                if np.isfinite(row.get("hybrid_accuracy", np.nan)) else "-"} if accuracy else {})}


def profile_table(profile: str) -> str:
    """The README block of one profile: a row per machine, configuration and implementation."""
    folders = sorted(REFERENCE.glob(f"*/{profile}"))
    if not folders:
        return f"_(no reference results for `{profile}` yet)_\n"
    rows, notes = [], []
    for folder in folders:
        data = load(folder)
        summary, family = tables.summary(data.runs), verdicts.comparisons(data.runs, calibration.twins(data))
        rows += [_profile_row(folder.parent.name, row, family, converged(data)) for _, row in summary.iterrows()]
        baseline = ""
        if data.baseline:
            unigram = data.baseline.get("unigram_accuracy")
            baseline = (f"; TF-IDF + logistic regression on the same rows {data.baseline['metrics']['accuracy']:.4f} "
                        "(unigrams and bigrams)" + (f", {unigram:.4f} (unigrams)" if unigram else ""))
        notes.append(f"{folder.parent.name}: schedule {data.schedule}, allocator {data.allocator}{baseline}")
    target = data.profile.get("target_accuracy")
    legend = ("`seeds`: seeds trained, `runs`: runs (a noisy run's re-run repeats its seed); accuracy mean ± sd "
              "over seeds; training wall minutes and steady ms/step are the median and the geometric mean over quiet "
              "runs; `step time ratio`: a variant column's steady step time over its implementation's default, "
              "any other column's over native torch: ratio of geometric means with its 95% run-level interval, "
              "`clear` where Holm's procedure over the report's speed comparisons rejects a ratio of 1 and the "
              "interval clears the A/A margin; "
              "`first step`: median seconds of the first training step (graph building, compilation)")
    if converged(data):
        legend += (f"; `to target`: seconds until validation accuracy first reached {target:.0%}"
                   ", validation on the clock (censored median); `ensemble of 3`: the test accuracy of the runs of "
                   "seeds 0-2 (3-5, 6-8) averaged, mean ± sd over ensembles, (n) ensembles, and the training minutes "
                   "of one ensemble (its runs' sum); `hybrid`: the run's test probabilities averaged "
                   "with the bigram model's (equal weights, an extra row, not the recipe)")
    else:
        legend += ("; accuracies after this little training say nothing of final quality, so time to target, "
                   "ensembles and hybrids are left out")
    legend += f". Generated by `make docs` from `results/reference/*/{profile}/`."
    return "\n".join([pd.DataFrame(rows).to_markdown(index=False), "", legend, ""]
                     + [f"- {note}" for note in notes]) + "\n"


def _short(ratio: float, low: float, high: float, clear: bool = False) -> str:
    text = f"{ratio:.2f}x ({low:.2f}-{high:.2f})" if np.isfinite(low) else f"{ratio:.2f}x (-)"
    return f"**{text}**" if clear else text


def quick_machines() -> dict:
    return {folder.parent.name: load(folder) for folder in sorted(REFERENCE.glob("*/quick"))}


def headline_block() -> str:
    """The answer per CPU, side by side, from each machine's quick folder: the fastest column per cell (or the set it
    cannot be told from), every column's step over native torch's and each Keras backend's over its native
    framework; from the competitive folders, the best accuracy and its cost beside the linear baselines."""
    machines = quick_machines()
    if not machines:
        return "_(no reference results yet)_\n"
    summaries = {name: tables.summary(data.runs) for name, data in machines.items()}
    families = {name: verdicts.comparisons(data.runs, calibration.twins(data)) for name, data in machines.items()}
    winners = rendering.winners_across({name: verdicts.fastest(summaries[name], machines[name].runs, families[name])
                                     for name in machines})
    rows = []
    for machine, summary in summaries.items():
        names = [name for name in tables.ordered(summary["implementation"])
                 if name != tables.REFERENCE and not verdicts.twin_of(name)]
        for (cell, layers, bidirectional), _ in summary.groupby(CONFIGURATION, sort=False):
            row = {"configuration": Configuration(cell, layers, bidirectional).label, "machine": machine}
            for name in names:
                found = verdicts.compared(families[machine], cell, layers, bidirectional, name, tables.REFERENCE)
                row[name] = _short(found["ratio"], found["low"], found["high"], found["clear"])
            # Keras on torch over native torch is its column already; Keras on TensorFlow over native TF is not
            found = verdicts.compared(families[machine], cell, layers, bidirectional, "keras-tensorflow", "tensorflow")
            row["keras-tensorflow / tensorflow"] = _short(found["ratio"], found["low"], found["high"], found["clear"])
            rows.append(row)
    ratios = pd.DataFrame(rows).sort_values(["configuration", "machine"], kind="stable")
    parts = ["Fastest column per cell (quick profile, 2 threads; \"a ≈ b\": the runner-up's interval lies inside "
             "the machine's A/A margin; \"not resolved\": neither clear nor inside it; \"untestable\": no interval "
             "between them, fewer than 3 timed runs a side; `winner`: whether the answer holds on every CPU):", "",
             winners.to_markdown(index=False),
             "", "Step time over native torch's, and Keras on TensorFlow's over native TF's (95% interval over seeds; "
             "**bold**: clear, that is rejected by Holm's correction over the report's comparisons and beyond the "
             "machine's A/A margin (docs/methodology.md); `-`: fewer than 3 timed runs a side):", "",
             ratios.to_markdown(index=False), "",
             "![Each column's step time over native torch's per cell and machine](docs/results/headline.png)", "",
             "How each machine's quick sweep ran: " + "; ".join(
                 f"{name}, {data.schedule}, allocator {data.allocator}, {data.runs['seed'].nunique()} seeds"
                 for name, data in machines.items()) + ".", ""]
    sources = ["quick"]
    for recipe in ACCURACY_SETS:
        for folder in sorted(REFERENCE.glob(f"*/{recipe}")):
            parts += [accuracy_line(folder), ""]
            sources += [recipe] if recipe not in sources else []
    named = [f"`results/reference/*/{name}/`" for name in sources]
    return "\n".join(parts) + "\nGenerated by `make docs` from " + (
        " and ".join(named) if len(named) < 3 else ", ".join(named[:-1]) + " and " + named[-1]) + ".\n"



def accuracy_line(folder: Path) -> str:
    """The best accuracy a machine's competitive folder reached, what it cost, and the linear models beside it."""
    data = load(folder)
    summary = tables.summary(data.runs)
    best = summary.sort_values(["seeds", "accuracy"], ascending=False).iloc[0]
    ensemble = (f"; the ensemble of 3 of its runs {best['ensemble_accuracy']:.4f}"
                + (f" ± {best['ensemble_accuracy_sd']:.4f}" if np.isfinite(best["ensemble_accuracy_sd"]) else "")
                + f" ({int(best['ensembles'])} ensemble{'s' if best['ensembles'] != 1 else ''}, "
                  f"{best['ensemble_train_wall_s'] / 60:.0f} min of training "
                  "each)" if best.get("ensembles") else "")
    seeds = data.baseline["seeds"].values()
    fit = np.median([result["fit_s"] for result in seeds])
    return (f"Accuracy worth training (`{folder.name}` recipe, the 25,000 official test reviews, "
            f"{folder.parent.name}): "
            f"one run of {best['implementation']} {best['accuracy']:.4f} ± {best['accuracy_sd']:.4f} over "
            f"{int(best['seeds'])} seeds, {best['train_wall_s'] / 60:.1f} min of training{ensemble}; TF-IDF + "
            f"logistic regression on the same rows {data.baseline['metrics']['accuracy']:.4f} with bigrams, "
            f"{data.baseline['unigram_accuracy']:.4f} with unigrams, fitted in {fit:.0f} s.")


def bf16_table() -> str:
    """bf16 against fp32 per machine, width, cell and implementation, from the cpu-axes folders."""
    bf16 = []
    for folder in sorted(REFERENCE.glob("*/cpu-axes*")):
        data = load(folder)
        summary = tables.summary(data.runs).set_index(["implementation", *CONFIGURATION])
        units = data.runs["units"].dropna().iloc[0]
        for row in verdicts.precision(data.runs).itertuples():
            key = (Column(row.implementation, (("precision", "bf16"),)).label, row.cell, row.layers, row.bidirectional)
            accuracy = (f"{row.accuracy_points:+.1f} ({row.accuracy_low:+.1f} to {row.accuracy_high:+.1f})"
                        if np.isfinite(row.accuracy_low) else f"{row.accuracy_points:+.1f} (no interval)")
            bf16.append({"machine": folder.parent.name, "units": int(units),
                         "configuration": Configuration.of(row).label,
                         "implementation": row.implementation,
                         "bf16 / fp32 step": rendering.ratio_text(row.ratio, row.low, row.high)
                         + (", clear" if row.clear else ""),
                         "accuracy, points (paired by seed)": accuracy,
                         "kernel that ran (bf16 column)": summary.loc[key, "kernel_path"] if key in summary.index
                         else "-"})
    if not bf16:
        return "_(no cpu-axes reference results yet)_\n"
    return "\n".join(["bf16 against fp32 (the `cpu-axes` profiles: quick's data at 64 and 256 units; the ratio's "
                      "interval as in every table here, accuracy bf16 - fp32 in points with its 95% interval):", "",
                      pd.DataFrame(bf16).to_markdown(index=False), ""])


def frontier_machines() -> dict[str, pd.DataFrame]:
    """Per machine with any of ``FRONTIER_SETS``: its accuracy-against-CPU-minutes points (``tables.frontier``)."""
    machines = {}
    for machine in sorted(path for path in REFERENCE.iterdir() if path.is_dir()):
        found = {name: load(machine / name) for name in FRONTIER_SETS if (machine / name / "runs").is_dir()}
        if found:
            machines[machine.name] = tables.frontier(found)
    return machines


def frontier_block() -> str:
    """The study's table: per machine, every point of the accuracy-against-minutes picture, cheapest first."""
    rows = []
    for machine, table in frontier_machines().items():
        for _, row in table.iterrows():
            interval = (f" ({row['low']:.4f}-{row['high']:.4f})" if np.isfinite(row["low"]) else "")
            rows.append({"machine": machine, "what": rendering.frontier_label(row), "seeds": int(row["seeds"]),
                         "test accuracy (95% CI)": f"{row['accuracy']:.4f}{interval}",
                         "training CPU-min": f"{row['cpu_minutes']:.1f}", "on the front": "yes" if row["pareto"]
                         else ""})
    if not rows:
        return "_(no accuracy reference results yet)_\n"
    return "\n".join([pd.DataFrame(rows).to_markdown(index=False), "",
                      "Test accuracy on the 25,000 official test reviews, mean over seeds with its 95% t interval "
                      "(none with fewer than 3 seeds; an ensemble's seeds are its ensembles), against the median "
                      "run's training CPU-minutes (2 threads; validation and testing out, pretraining in; an "
                      "ensemble of 3: its runs' sum; the linear models: the fit, on one core). `on the front`: no "
                      "other point of its machine reaches more accuracy for no more CPU (the Pareto front). Minutes "
                      "compare within a machine only. Generated by `make docs` from `results/reference/*/` sets "
                      + ", ".join(f"`{name}`" for name in FRONTIER_SETS) + ".", ""])


def render_block(name: str) -> str:
    """A README block: ``calibration`` (every machine's A/A and schedules, ``analysis.calibration``), else the
    table of the profile (or reference folder) of that name."""
    if name == "headline":
        return headline_block()
    if name == "bf16":
        return bf16_table()
    if name == "frontier":
        return frontier_block()
    if name == "calibration":
        return "\n".join(calibration.render(machine) for machine in sorted(p for p in REFERENCE.iterdir()
                                                                           if p.is_dir()))
    return profile_table(name)


def render_blocks(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render_block(m.group("profile")) + m.group(4), text)


@app.callback()
def commands():
    """Committed reference results (README and docs are regenerated from them by `python -m analysis.docs`)."""


@app.command("add")
def add_command(results: Annotated[Path, typer.Argument(help="a results folder written by runners.compare")],
                name: Annotated[str | None, typer.Option(help="folder name under the machine (default: the "
                                                               "profile's)")] = None):
    """Copy a sweep's records into results/reference/<machine>/<name>/ (host details stripped)."""
    with user_errors():
        typer.echo(add(results, name))


if __name__ == "__main__":
    app()
