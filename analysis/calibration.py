"""The machine's resolution, measured: A/A sweeps (one implementation twice, ``--variants torch:label=b``) and one
profile swept both ways, sequential and interleaved.

    python -m analysis.calibration results/reference/amd-epyc-avx2-2c   # the tables README's blocks hold

An A/A ratio has a true value of 1: how far its interval reaches is the smallest difference the schedule can
resolve on this machine. The variance of an interleaved run's log step times splits into steps within one turn,
turns (slices) within one process and processes (``components``); the first step of a turn shows what a wait costs
a step (caches and pools gone cold, ``first_step_cost``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import pandas as pd
import typer

from analysis import inference, rendering, tables, verdicts
from analysis.load import Results, load
from analysis.sets import AA_FOLDERS, SCHEDULE_FOLDERS, aa_set
from model import records
from model.errors import user_errors
from model.implementations import Column, base_name
from model.plan import LABEL, TARGET_REACH, TWIN_LABEL
from model.spec import CONFIGURATION, Configuration

# The estimand measured directly: a quick cell trained alone (sequential, 160 steps a run, start orders a Latin
# square) and the interleaved designs held against it (1 and 4 steps a turn), within one sitting.
ALONE_SETS = {**{f"{cell}-alone": (f"{cell}-interleaved", f"{cell}-slice4") for cell in ("lstm", "gru", "rnn")},
              # the SimpleRNN's first sitting, kept beside the second: how far two sittings of one design differ
              "rnn-alone-earlier": ("rnn-interleaved-earlier",)}
# Neighbours: quick's LSTM with its full block of columns beside blocks of two (torch and one other), swept in
# alternating chunks of two seeds within one sitting, so drift falls on both designs alike.
NEIGHBOUR_SETS = {"lstm-full": ("lstm-pair-tf", "lstm-pair-kt")}


def half_width(ratio: float, low: float, high: float) -> float:
    """The interval's reach from its point, as a share: max(high / ratio - 1, 1 - low / ratio)."""
    return max(high / ratio - 1, 1 - low / ratio) if np.isfinite(low) else float("nan")


def blocks_needed(sd_log: float, target: float = TARGET_REACH, most: int = 1000) -> int | None:
    """The fewest blocks (or runs a side) whose 95% t interval reaches at most ``target`` from its point, for a
    per-block log ratio with this sd: the smallest B >= 3 with t(0.975, B - 1) * sd / sqrt(B) <= log(1 + target).
    It takes the sd as known, though it is itself estimated from few blocks: a planning figure (the expected
    reach), not a guarantee that a sweep of B blocks reaches the target."""
    from scipy import stats

    if not np.isfinite(sd_log):
        return None
    for blocks in range(inference.MIN_RUNS, most + 1):
        if stats.t.ppf(0.975, blocks - 1) * sd_log / np.sqrt(blocks) <= np.log1p(target):
            return blocks
    return None


def short_of(estimates: dict[object, dict[str, list]], target: float) -> dict[object, dict[str, tuple]]:
    """Per configuration, its comparisons (name -> per-block log ratios, ``inference.block_estimates``) whose 95%
    interval reaches further than ``target`` from its point, or has none: name -> (reach, the blocks its sd needs,
    ``blocks_needed``; nan and None where there is no interval yet)."""
    short = {}
    for key, comparisons in estimates.items():
        for name, d in comparisons.items():
            d = np.asarray(d, float)
            reach = half_width(*inference.paired_ratio(d)[:3])
            if not reach <= target:
                sd = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
                short.setdefault(key, {})[name] = (reach, blocks_needed(sd, target))
    return short


def seeds_wanted(estimates: dict[object, dict[str, list]], have: dict[object, int], target: float,
                 most: int) -> dict:
    """The blocks (seeds) each configuration should have after ``have[key]``: as many as it has where every
    comparison reaches at most ``target`` (``short_of``); else the most any comparison short of it needs at its sd,
    at least one more, at most twice as many as it has (an sd from 5 blocks is rough: the next look corrects it)
    and at most ``most``.

    The rule reads each interval's width, never its point: for normal data a sample's mean is independent of its
    sd, so choosing how many blocks to run from the sd leaves the mean's distribution, and the final t interval's
    coverage, nearly intact (Stein's two-stage procedure, here looked at repeatedly; tests/test_statistics.py
    simulates it). A rule that stopped once an interval cleared 1 would not (optional stopping)."""
    short = short_of(estimates, target)
    wanted = {}
    for key, done in have.items():
        if key not in short or done >= most:
            wanted[key] = done
            continue
        needed = max(n or most for _, n in short[key].values())
        wanted[key] = min(most, max(done + 1, min(needed, 2 * done)))
    return wanted


def block_sd(numerator: pd.DataFrame, denominator: pd.DataFrame) -> float:
    """The sd of the per-block log ratios (interleaved), else of the log run medians' difference of means scaled to
    one block (sequential: sqrt(var a + var b))."""
    estimates = inference.block_estimates(numerator, denominator)
    if len(estimates) >= inference.MIN_RUNS:
        return float(np.std(estimates, ddof=1))
    a, b = np.log(numerator["run_step_ms"].astype(float)), np.log(denominator["run_step_ms"].astype(float))
    return float(np.sqrt(a.var(ddof=1) + b.var(ddof=1))) if min(len(a), len(b)) > 1 else float("nan")


def twins(data: Results) -> pd.DataFrame:
    """The A/A twins that set a results folder's margin (``verdicts.aa``, ``verdicts.margin``): its own, and those of
    its machine's A/A set swept under the same schedule and allocator (``sets.aa_set``, a sibling folder from the same
    CPU), the design's bias as that sweep measured it for the columns it doubled."""
    own = verdicts.aa(data.runs)
    if not data.sources:
        return own
    sibling = Path(data.sources[0]).parent / aa_set(data.schedule, data.allocator)
    if sibling == Path(data.sources[0]) or not (sibling / records.RUNS_FOLDER).is_dir():
        return own
    other = load(sibling)
    if not data.identity or not other.identity:
        return own
    machine = ("cpu_model", "threads", "flags", "cores")  # records.Identity, less versions and plan
    # records before the generation field name none: their flags still tell the machines apart
    generations = {data.identity.generation, other.identity.generation} - {None}
    if (other.schedule != data.schedule or other.allocator != data.allocator or len(generations) > 1
            or any(getattr(data.identity, f) != getattr(other.identity, f) for f in machine)):
        return own
    theirs = verdicts.aa(other.runs).assign(source=sibling.name)
    return pd.concat([own.assign(source="this sweep"), theirs], ignore_index=True) if not own.empty else theirs


def aa_table(folder: Path) -> pd.DataFrame:
    """Per implementation of an A/A folder: the twin's step time over the original's (``verdicts.aa``), its interval,
    reach and the blocks a +-5% interval needs."""
    data = load(folder)
    groups = tables.timed_groups(data.runs)
    rows = []
    for row in verdicts.aa(data.runs).itertuples():
        configuration = (row.cell, row.layers, row.bidirectional)
        original = groups[(row.implementation, *configuration)]
        twin = groups[(Column.parse(row.implementation).with_option(LABEL, TWIN_LABEL).label, *configuration)]
        sd = block_sd(twin, original)
        paired = len(inference.block_estimates(twin, original))  # interleaved: the blocks both ran in
        rows.append(dict(implementation=row.implementation, cell=row.cell, schedule=data.schedule,
                         allocator=data.allocator, blocks=paired if paired >= inference.MIN_RUNS else len(original),
                         ratio=row.ratio, low=row.low, high=row.high, reach=half_width(row.ratio, row.low, row.high),
                         sd_log=sd, blocks_for_5_percent=blocks_needed(sd),
                         within_2_percent=bool(np.isfinite(row.low) and 0.98 <= row.low and row.high <= 1.02),
                         covers_1=bool(np.isfinite(row.low) and row.low <= 1 <= row.high)))
    return pd.DataFrame(rows)


def _steps(record: dict) -> pd.DataFrame:
    """An interleaved record's steady steps: log ms, the turn (slice) each belongs to and its place in the turn."""
    frame = pd.DataFrame(dict(log_ms=np.log(records.steady_samples_ms(record)), turn=records.steady_rounds(record)))
    return frame.assign(place=frame.groupby("turn").cumcount())


def interleaved_records(folder: Path) -> dict[str, dict]:
    runs = Path(folder) / records.RUNS_FOLDER
    found = {run.name: records.read_record(run) for run in sorted(runs.iterdir()) if records.run_state(run) == "done"}
    return {name: record for name, record in found.items() if record["timing"].get("step_rounds")}


def components(folder: Path) -> pd.DataFrame:
    """Per implementation, the variance of log step times split by nested ANOVA (method of moments): steps within a
    turn, turns within a process, processes within a column (the A/A's two columns pooled). A share of sd each."""
    rows = []
    by_column: dict[str, list[pd.DataFrame]] = {}
    for record in interleaved_records(folder).values():
        by_column.setdefault(base_name(record["plan"]["implementation"]), []).append(_steps(record))
    for name, runs in sorted(by_column.items()):
        within_turn = [turn["log_ms"].var(ddof=1) for run in runs for _, turn in run.groupby("turn") if len(turn) > 1]
        per_turn = int(round(np.mean([len(turn) for run in runs for _, turn in run.groupby("turn")])))
        turn_means = [run.groupby("turn")["log_ms"].mean() for run in runs]
        steps = float(np.mean(within_turn)) if within_turn else float("nan")
        turns = max(0.0, float(np.mean([means.var(ddof=1) for means in turn_means]))
                    - (steps / per_turn if np.isfinite(steps) else 0.0))
        process = max(0.0, float(np.var([means.mean() for means in turn_means], ddof=1))
                      - float(np.mean([means.var(ddof=1) / len(means) for means in turn_means])))
        rows.append(dict(implementation=name, runs=len(runs), steps_per_turn=per_turn,
                         within_turn_sd=np.sqrt(steps) if np.isfinite(steps) else np.nan,
                         between_turns_sd=np.sqrt(turns), between_processes_sd=np.sqrt(process)))
    return pd.DataFrame(rows)


def first_step_cost(folder: Path) -> pd.DataFrame:
    """Per implementation: the first step of a turn over the later ones (ratio of medians), with turns of several
    steps; and the CPU a waiting process used, as a share of its wait."""
    rows = []
    found: dict[str, list] = {}
    for record in interleaved_records(folder).values():
        found.setdefault(base_name(record["plan"]["implementation"]), []).append(record)
    for name, runs in sorted(found.items()):
        steps = pd.concat([_steps(record) for record in runs])
        first, later = steps.loc[steps["place"] == 0, "log_ms"], steps.loc[steps["place"] > 0, "log_ms"]
        waits = [record["schedule"] for record in runs]
        share = [wait["wait_cpu_s"] / wait["wait_wall_s"] for wait in waits]
        rows.append(dict(implementation=name, runs=len(runs),
                         first_over_later=float(np.exp(first.median() - later.median())) if len(later) else np.nan,
                         wait_cpu_share_median=float(np.median(share)), wait_cpu_share_max=float(np.max(share)),
                         wait_cpu_ms_per_turn=float(np.median([1e3 * w["wait_cpu_s"] / w["waits"] for w in waits]))))
    return pd.DataFrame(rows)


def sweep_minutes(folder: Path) -> float:
    """Wall minutes of a sweep: per session, from its start to its last record before the next session started; a
    resumed sweep's gap between sessions is no sweep time."""
    manifest = records.require_manifest(folder)
    starts = sorted(datetime.fromisoformat(session["started"]) for session in manifest["sessions"])
    runs = Path(folder) / records.RUNS_FOLDER
    ends = [datetime.fromisoformat(records.read_json(run / records.RECORD_FILE)["created"])
            for run in runs.iterdir() if records.run_state(run) == "done"]
    total = 0.0
    for start, stop in zip(starts, [*starts[1:], None]):
        inside = [end for end in ends if end >= start and (stop is None or end < stop)]
        total += (max(inside) - start).total_seconds() if inside else 0.0
    return total / 60


def measured_share(folder: Path) -> float:
    """The share of a sweep's wall time (``sweep_minutes``) spent in the steps its verdicts are computed from:
    every finished run's steady steps (warm-up and a turn's first step left out as the analysis leaves them)."""
    runs = Path(folder) / records.RUNS_FOLDER
    steps_ms = sum(sum(records.steady_samples_ms(records.read_record(run))) for run in runs.iterdir()
                   if records.run_state(run) == "done")
    return steps_ms / 1000 / 60 / sweep_minutes(folder)


def schedules_table(folders: list[Path]) -> pd.DataFrame:
    """One profile swept both ways: the sweep's wall time, the column-vs-native-torch ratios' median and widest
    reach, and how many of the report's speed verdicts are clear (Holm, beyond the A/A margin)."""
    rows = []
    for folder in folders:
        data = load(folder)
        family, groups = verdicts.comparisons(data.runs, twins(data)), tables.timed_groups(data.runs)
        versus = family[((family["numerator"] == tables.REFERENCE) | (family["denominator"] == tables.REFERENCE))
                        & family["testable"]]
        reach = [half_width(r.ratio, r.low, r.high) for r in versus.itertuples()]
        needed = [blocks_needed(block_sd(groups[(r.numerator, r.cell, r.layers, r.bidirectional)],
                                         groups[(r.denominator, r.cell, r.layers, r.bidirectional)]))
                  for r in versus.itertuples()]
        finished = int((data.runs["status"] == "ok").sum())
        rows.append(dict(folder=Path(folder).name, schedule=data.schedule, allocator=data.allocator,
                         seeds=data.runs["seed"].nunique(), runs=finished,
                         wall_min=sweep_minutes(folder), vs_torch=len(versus),
                         reach_median=float(np.nanmedian(reach)) if reach else np.nan,
                         reach_widest=float(np.nanmax(reach)) if reach else np.nan,
                         within_5_percent=int(np.sum(np.asarray(reach) <= TARGET_REACH)),
                         with_interval=int(np.isfinite(reach).sum()), comparisons=len(family),
                         clear=int(family["clear"].sum()),
                         seeds_for_5_percent_median=float(np.median([n or np.inf for n in needed])),
                         seeds_for_5_percent_most=max((n or np.inf for n in needed), default=np.nan)))
    return pd.DataFrame(rows)


def seed_estimates(numerator: pd.DataFrame, denominator: pd.DataFrame) -> np.ndarray:
    """Runs trained alone, one after another in rotation: per seed both columns ran, the log ratio of their run
    medians (neighbours in time, so a slow hour of the VM falls on both), each seed once."""
    def per_seed(runs):  # a seed run again (a noisy run's re-run) counts once: the mean of its runs' logs
        return np.log(runs["run_step_ms"].astype(float)).groupby(runs["seed"]).mean()

    ours, theirs = per_seed(numerator), per_seed(denominator)
    common = ours.index.intersection(theirs.index)
    return (ours[common] - theirs[common]).to_numpy()


def alone_table(alone: Path, design: Path, reference: str = tables.REFERENCE) -> pd.DataFrame:
    """Each column's step time over native torch's as a user who trains alone gets it (``alone``: a sequential sweep
    of long runs whose start order rotates; the estimand) beside a schedule's reading (``design``), and the
    design's bias: its ratio over the alone one, a 95% Welch interval over the two sets' per-seed (per-block) log
    ratios, and whether the design's point lies inside the alone interval."""
    groups, measured = tables.timed_groups(load(alone).runs), tables.timed_groups(load(design).runs)
    rows = []
    for (name, cell, layers, bidirectional), group in sorted(measured.items()):
        torch_key = (reference, cell, layers, bidirectional)
        if name == reference or torch_key not in measured or (name, cell, layers, bidirectional) not in groups:
            continue
        truth = seed_estimates(groups[(name, cell, layers, bidirectional)], groups[torch_key])
        reading = inference.block_estimates(group, measured[torch_key])
        if len(reading) < inference.MIN_RUNS:
            reading = seed_estimates(group, measured[torch_key])
        a_ratio, a_low, a_high, _ = inference.paired_ratio(truth)
        d_ratio, d_low, d_high, _ = inference.paired_ratio(reading)
        bias, b_low, b_high, b_p = inference.ratio_interval(np.exp(reading), np.exp(truth))
        rows.append(dict(implementation=name, cell=cell, layers=layers, bidirectional=bidirectional,
                         alone_seeds=len(truth), alone=a_ratio, alone_low=a_low, alone_high=a_high,
                         design_blocks=len(reading), design=d_ratio, design_low=d_low, design_high=d_high,
                         bias=bias, bias_low=b_low, bias_high=b_high, bias_p=b_p,
                         inside=bool(np.isfinite(a_low) and a_low <= d_ratio <= a_high)))
    return pd.DataFrame(rows)


def neighbours_table(full: Path, few: list[Path], reference: str = tables.REFERENCE) -> pd.DataFrame:
    """Whether a ratio depends on which columns share its block: each column's step over native torch's in the
    full block (``full``) and in a block of only the two (each of ``few``), the ratio of the two readings with a
    95% Welch interval over their per-block log ratios (separate sweeps: unpaired)."""
    everyone = tables.timed_groups(load(full).runs)
    rows = []
    for folder in few:
        groups = tables.timed_groups(load(folder).runs)
        for (name, *configuration), group in sorted(groups.items()):
            torch_key, full_key = (reference, *configuration), (name, *configuration)
            if name == reference or torch_key not in groups or full_key not in everyone:
                continue
            alone, crowded = (inference.block_estimates(group, groups[torch_key]),
                              inference.block_estimates(everyone[full_key], everyone[torch_key]))
            few_ratio, few_low, few_high, _ = inference.paired_ratio(alone)
            full_ratio, full_low, full_high, _ = inference.paired_ratio(crowded)
            effect, low, high, p = inference.ratio_interval(np.exp(alone), np.exp(crowded))
            rows.append(dict(implementation=name, **dict(zip(CONFIGURATION, configuration)), folder=folder.name,
                             few_blocks=len(alone), few=few_ratio, few_low=few_low, few_high=few_high,
                             full_blocks=len(crowded), full=full_ratio, full_low=full_low, full_high=full_high,
                             effect=effect, low=low, high=high, p=p))
    return pd.DataFrame(rows)


def render_neighbours(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(dict(
        cell=[Configuration.of(r).label for r in table.itertuples()], column=table["implementation"],
        blocks=[f"{r.few_blocks} / {r.full_blocks}" for r in table.itertuples()],
        two_columns=[rendering.ratio_text(r.few, r.few_low, r.few_high) for r in table.itertuples()],
        full_block=[rendering.ratio_text(r.full, r.full_low, r.full_high) for r in table.itertuples()],
        neighbours=[rendering.ratio_text(r.effect, r.low, r.high) for r in table.itertuples()],
        p=table["p"].map("{:.2f}".format)))
    return shown.to_markdown(index=False)


def steadiness_parts(folder: Path) -> list[str]:
    """A sweep's warm-up and drift: per column the steps the warm-up rule left out and its unsettled runs; per
    ratio to native torch its drift from the first third of the rounds to the last, Holm over the family."""
    data = load(folder)
    family = verdicts.comparisons(data.runs, twins(data))
    drift = verdicts.steadiness(data.runs, family)
    if drift.empty:
        return []
    versus = drift[drift["denominator"] == tables.REFERENCE]
    shown = pd.DataFrame(dict(cell=[Configuration.of(r).label for r in versus.itertuples()],
                              column=versus["numerator"], blocks=versus["blocks"],
                              drift=[rendering.ratio_text(r.drift, r.low, r.high) for r in versus.itertuples()],
                              p=versus["p"].map("{:.2f}".format), drifts=versus["drifts"]))
    warm = verdicts.unsettled(data.runs)
    return [f"Steadiness of `{folder.name}`: the warm-up rule (MSER-5, at least the plan's {int(warm['least'].min())} "
            "steps, at most a quarter of the steps after them: `records.warmup`) left out a median of "
            + ", ".join(f"{r.implementation} {r.left_out:g}" for r in warm.itertuples())
            + " steps; runs whose rule wanted more than the cap: " + ", ".join(
                f"{r.implementation} {r.unsettled} of {r.runs}" for r in warm.itertuples())
            + ". Each ratio to native torch from the first third of its rounds to the last (`drift`, 95% interval "
            f"over blocks; `drifts`: Holm over the report's {len(drift)} comparisons rejects a drift of 0 at 5%, "
            f"which it does for {int(drift['drifts'].sum())}):", "", shown.to_markdown(index=False), ""]


def render_alone(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(dict(
        cell=[Configuration.of(r).label for r in table.itertuples()],
        column=table["implementation"],
        alone=[rendering.ratio_text(r.alone, r.alone_low, r.alone_high) for r in table.itertuples()],
        design=[rendering.ratio_text(r.design, r.design_low, r.design_high) for r in table.itertuples()],
        bias=[rendering.ratio_text(r.bias, r.bias_low, r.bias_high) for r in table.itertuples()],
        inside=table["inside"]))
    return shown.to_markdown(index=False)


def _aa_parts(aa: list[Path]) -> list[str]:
    parts = []
    table = pd.concat([aa_table(folder) for folder in aa])
    table["A/A ratio"] = [rendering.ratio_text(r.ratio, r.low, r.high) for r in table.itertuples()]
    table["reach"] = [f"±{r:.1%}" if np.isfinite(r) else "-" for r in table["reach"]]
    columns = ["implementation", "schedule", "allocator", "blocks", "A/A ratio", "reach", "covers_1",
               "within_2_percent", "sd_log", "blocks_for_5_percent"]
    parts += [table[columns].to_markdown(index=False, floatfmt=".3f"), "",
              "`sd_log`: the sd of one block's log ratio (interleaved) or of a run pair's (sequential); "
              "`blocks_for_5_percent`: the seeds (blocks) whose 95% interval would reach at most ±5% at that sd.", ""]
    woven = [folder for folder in aa if interleaved_records(folder)]
    if woven:
        split = pd.concat([components(folder).assign(folder=folder.name) for folder in woven])
        parts += ["Variance of log step times in interleaved runs (sd as a share of the step; nested ANOVA):", "",
                  split.to_markdown(index=False, floatfmt=".3f"), "",
                  "The first step of a turn and the CPU a waiting process used:", "",
                  pd.concat([first_step_cost(folder).assign(folder=folder.name) for folder in woven])
                  .to_markdown(index=False, floatfmt=".4f"), ""]
    return parts


def render(machine: Path) -> str:
    """The README block: A/A per implementation and schedule, the variance components, the cost of a wait, and the
    profile swept both ways; each from the machine's committed folders."""
    aa = [machine / name for name in AA_FOLDERS if (machine / name).is_dir()]
    if not aa and not any((machine / alone).is_dir() for alone in ALONE_SETS):
        return f"_(no A/A calibration for `{machine.name}` yet)_\n"
    parts = [f"**{machine.name}**" + (", A/A (one implementation twice; the twin's step time over the original's, "
                                      "95% interval over blocks or runs):" if aa else ", no A/A yet."), ""]
    if aa:
        parts += _aa_parts(aa)
    for alone, designs in ALONE_SETS.items():
        for design in (name for name in designs if (machine / alone).is_dir() and (machine / name).is_dir()):
            parts += [f"Each column's step over native torch's trained alone (`{alone}`: one process after another, "
                      "paired by seed) beside the interleaved design `" + design + "`; `bias`: the design's ratio "
                      "over the alone one (95% Welch interval); `inside`: the design's point inside the alone "
                      "interval:", "", render_alone(alone_table(machine / alone, machine / design)), ""]
    for full, few in NEIGHBOUR_SETS.items():
        present = [machine / name for name in few if (machine / name).is_dir()]
        if (machine / full).is_dir() and present:
            parts += [f"Neighbours (`{full}` beside " + ", ".join(f"`{p.name}`" for p in present) + "): each column's "
                      "step over native torch's in a block of the two alone and in the full block; `neighbours`: the "
                      "first over the second (95% Welch interval over blocks):", "",
                      render_neighbours(neighbours_table(machine / full, present)), ""]
    if (machine / "quick").is_dir():
        parts += steadiness_parts(machine / "quick")
    both = [machine / name for name in SCHEDULE_FOLDERS if (machine / name).is_dir()]
    if (machine / "quick-sequential").is_dir() and len(both) >= 2:
        sweeps = schedules_table(both)
        sweeps["wall_min"] = sweeps["wall_min"].map("{:.1f}".format)
        for column in ("reach_median", "reach_widest"):
            sweeps[column] = sweeps[column].map(lambda r: f"±{r:.1%}" if np.isfinite(r) else "-")
        parts += ["The quick profile swept both ways (`reach`: the 95% interval's reach from its point, over the "
                  "comparisons with native torch; `clear`: speed verdicts of the report's family that Holm rejects "
                  "beyond the A/A margin; compare "
                  "schedules at equal `seeds`: make reference runs quick at 10 and sequential at 5):", "",
                  sweeps.to_markdown(index=False), ""]
    return "\n".join(parts)


def main(machine: Annotated[Path, typer.Argument(help="a machine's reference folder, e.g. "
                                                    "results/reference/amd-epyc-avx2-2c")],
         alone: Annotated[Optional[Path], typer.Option(help="a sweep of runs trained alone: print its ratios to "
                                                        "native torch beside MACHINE's (then a sweep folder)")] = None):
    """Print the calibration tables of one machine, or a sweep's ratios beside those of training alone."""
    with user_errors():
        typer.echo(render(machine) if alone is None else render_alone(alone_table(alone, machine)))


if __name__ == "__main__":
    typer.run(main)
