"""Measure this machine's reference set and file it under results/reference/<machine>/: ``make reference``.

    python -m runners.reference             # what is missing here, how long it will take, then measure and file it
    python -m runners.reference --dry-run   # only the plan and the estimate

The set: the quick profile interleaved (the headline) and sequential beside it, the A/A calibration both ways,
decomposition and programming, and the CPU's own axis: ``cpu-axes`` (bf16 beside fp32) where the CPU has bf16
instructions, the threads sweep otherwise. A set this machine's folder already holds is not measured again, unless
it ran with another allocator than today's default (its records then move to ``<set>-<allocator>``); a folder of
the same name written on a CPU with other flags or of another generation is refused, never added to.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from model.errors import fail, user_errors
from model.plan import DEFAULT_SCHEDULE, TWIN_LABEL, Profile, get_profile

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

AA_IMPLEMENTATIONS = ("torch", "tensorflow", "keras-tensorflow")
# The sets measured beside the headline (sequential, A/A, threads) run half of quick's seeds: they size the schedule's
# resolution, which 5 seeds a side show, at half the time.
SIDE_SEEDS = tuple(range(5))


@dataclass(frozen=True)
class ReferenceSet:
    name: str  # the folder under results/reference/<machine>/
    profile: Profile
    schedule: str = DEFAULT_SCHEDULE
    threads: tuple[int, ...] | None = None
    command: str = ""  # the same sweep by hand, for the reader


def reference_sets(bf16: bool) -> list[ReferenceSet]:
    quick = replace(get_profile("quick"), target_reach=None)  # a reference set runs every seed
    side = quick.narrowed(seeds=SIDE_SEEDS)
    aa = side.narrowed(cells=("lstm",), implementations=AA_IMPLEMENTATIONS,
                       variants=tuple((name, (("label", TWIN_LABEL),)) for name in AA_IMPLEMENTATIONS))
    aa_command = (f"--profile quick --repeats {len(SIDE_SEEDS)} --cells lstm --implementations "
                  "torch,tensorflow,keras-tensorflow --variants "
                  + ",".join(f"{name}:label={TWIN_LABEL}" for name in AA_IMPLEMENTATIONS))
    sets = [ReferenceSet("quick", quick, command="--profile quick"),
            ReferenceSet("quick-sequential", side, "sequential",
                         command=f"--profile quick --repeats {len(SIDE_SEEDS)} --schedule sequential"),
            ReferenceSet("aa-interleaved", aa, command=aa_command),
            ReferenceSet("aa-sequential", aa, "sequential", command=aa_command + " --schedule sequential"),
            ReferenceSet("decomposition", get_profile("decomposition"), command="--profile decomposition"),
            ReferenceSet("programming", get_profile("programming"), command="--profile programming")]
    if bf16:
        sets.append(ReferenceSet("cpu-axes", get_profile("cpu-axes"), threads=(2,),
                                 command="--profile cpu-axes --threads 2"))
    else:
        sets.append(ReferenceSet("threads", side.narrowed(cells=("lstm", "gru"), implementations=AA_IMPLEMENTATIONS),
                                 threads=(1, 2), command=f"--profile quick --repeats {len(SIDE_SEEDS)} --cells lstm,gru "
                                 "--implementations torch,tensorflow,keras-tensorflow --threads 1,2"))
    return sets


def planned(environment: dict) -> tuple[Path, list[ReferenceSet], list[str]]:
    """This machine's folder, the sets to measure and those it already holds; refuses a folder of this name that
    another CPU (other flags) wrote."""
    from analysis.reference import REFERENCE, machine_name
    from model import records
    from runners.harness.policy import BF16_FLAGS

    folder = REFERENCE / machine_name(environment)
    flags = environment["cpu"].get("flags") or {}
    present = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    ours = {flag for flag, on in flags.items() if on}
    generation = records.cpu_generation(environment["cpu"])
    for name in present:  # a folder may hold several thread counts, never several CPUs
        for path in (folder / name / records.RUNS_FOLDER).glob(f"*/{records.RECORD_FILE}"):
            identity = records.identity(records.read_record(path.parent))
            if set(identity.flags) != ours:
                fail(f"{folder} was measured on a CPU with other flags "
                     f"({', '.join(sorted(set(identity.flags) ^ ours))} differ); it is another machine's folder "
                     "and is not added to")
            if None not in (identity.generation, generation) and identity.generation != generation:
                fail(f"{folder} was measured on a {identity.generation}, this CPU is a {generation}; it is another "
                     "machine's folder and is not added to")
    sets = reference_sets(any(flags.get(flag) for flag in BF16_FLAGS))
    for name in stale(folder, [s.name for s in sets if s.name in present]):
        if (folder / aside(folder / name)).exists():
            fail(f"{folder / name} ran with another allocator and is to be measured again, but "
                 f"{folder / aside(folder / name)} exists already: move one of them")
    keep = set(present) - set(stale(folder, present))
    return folder, [s for s in sets if s.name not in keep], present


def stale(folder: Path, names: list[str]) -> list[str]:
    """The held sets whose runs used another allocator than today's default: measured again, the old records kept
    beside under ``aside``'s name."""
    from analysis.load import sweep_allocator
    from model import records
    from model.plan import DEFAULT_ALLOCATOR

    return [name for name in names if (folder / name / records.MANIFEST_FILE).exists()
            and sweep_allocator(records.read_manifest(folder / name)) != DEFAULT_ALLOCATOR]


def aside(path: Path) -> str:
    """Where a stale set's records go when it is measured again: its name and its allocator (``quick-glibc``)."""
    from analysis.load import sweep_allocator
    from model import records

    return f"{path.name}-{sweep_allocator(records.read_manifest(path))}"


def estimate_minutes(reference_set: ReferenceSet, folder: Path) -> tuple[float, str] | None:
    """Minutes of the set's runs from recorded runs: of the same set, else of its profile; this machine's records
    first, else another machine's. A twin column of an A/A costs what its implementation costs."""
    from analysis.estimate import estimate, per_run_costs
    from analysis.load import load
    from analysis.reference import REFERENCE
    profile = reference_set.profile
    factor = len(reference_set.threads or (1,))
    names = dict.fromkeys([reference_set.name, profile.name])
    sources = [path for name in names for path in [folder / name, *sorted(REFERENCE.glob(f"*/{name}"))]]
    for source in sources:
        if source.is_dir():
            runs = load(source).runs
            runs = runs[runs["threads"] == max(reference_set.threads or runs["threads"])]
            table = estimate(per_run_costs(runs), profile)
            if not table.empty:
                return table["estimated_s"].sum() * factor / 60, source.parent.name
    return None


@app.command()
def main(dry_run: Annotated[bool, typer.Option(help="print the plan and its estimate; measure nothing")] = False,
         results: Annotated[Path, typer.Option(help="where the sweeps write before they are filed")] = Path("results"),
         data: Annotated[Optional[Path], typer.Option(help="dataset archive or folder (default: $IMDB_DATA, then usual places)")] = None):
    """Measure the reference sets this machine lacks, file them and regenerate README's blocks."""
    with user_errors():
        from runners.harness.environment import environment

        folder, todo, present = planned(environment())
        typer.echo(f"this machine: {folder.name} ({'new' if not present else 'holds ' + ', '.join(present)})")
        for name in stale(folder, [s.name for s in todo if s.name in present]):
            typer.echo(f"  {name} ran with another allocator: measured again, the old records kept as "
                       f"{aside(folder / name)}")
        if not todo:
            typer.echo(f"{folder} already holds every reference set; nothing to measure")
            return
        total = 0.0
        for reference_set in todo:
            found = estimate_minutes(reference_set, folder)
            total += found[0] if found else 0.0
            guess = f"about {found[0]:.0f} min (from {found[1]}'s records)" if found else "no estimate"
            typer.echo(f"  {reference_set.name}: python -m runners.compare {reference_set.command} "
                       f"[{reference_set.schedule}], {guess}")
        typer.echo(f"in all about {total:.0f} min of runs on a machine like the sources (a Zen 4 is about twice a "
                   "Zen 3), plus a few minutes of data preparation")
        if dry_run:
            return
        _measure(folder, todo, results, data)


def _measure(folder: Path, todo: list[ReferenceSet], results: Path, data: Optional[Path]) -> None:
    from analysis import docs
    from analysis.reference import add
    from runners.harness.sweep import compare_profile

    started = time.perf_counter()
    for reference_set in todo:
        out = results / f"reference-{reference_set.name}"
        typer.echo(f"{reference_set.name} -> {out}")
        compare_profile(out, reference_set.profile, reference_set.threads, str(data) if data else None,
                        schedule=reference_set.schedule, on_message=typer.echo)
        held, moved = folder / reference_set.name, None
        if held.is_dir():  # a stale set, moved aside only now that its successor is measured
            moved = held.rename(folder / aside(held))
        try:
            typer.echo(f"filed: {add(out, reference_set.name)}")
        except BaseException:  # put the old set back rather than leave half a new one in its place
            if moved:
                shutil.rmtree(held, ignore_errors=True)
                moved.rename(held)
            raise
    docs.main(check=False)
    typer.echo(f"{len(todo)} set(s) in {(time.perf_counter() - started) / 60:.0f} min -> {folder}; README and docs/ "
               "regenerated: commit the folder, README and docs/")


if __name__ == "__main__":
    app()
