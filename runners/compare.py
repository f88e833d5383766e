"""Run the four-way sweep and generate its report.

    python -m runners.compare                  # quick profile, results/quick/
    python -m runners.compare --profile full   # the full study (see README for its duration)
    python -m runners.compare --profile competitive --implementations torch   # the recipe above 89%, native torch
    python -m runners.compare --profile full --executor ray --address HOST:PORT   # on a Ray cluster
    python -m runners.train --profile quick    # one run with the quick profile's settings
    python -m analysis.report results/quick    # regenerate tables and plots from the records
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from model.errors import fail, user_errors
from model.frameworks import set_start_up_output
from model.plan import DEFAULT_SCHEDULE, PROFILES, RUN_SCHEDULES

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _names(text: Optional[str], allowed, kind: str, convert=str):
    if text is None:
        return None
    values = tuple(convert(item.strip()) for item in text.split(",") if item.strip())
    unknown = [str(v) for v in values if v not in allowed]
    if unknown or not values:
        fail(f"unknown {kind}: {', '.join(unknown) or '(none given)'}; choose from {', '.join(map(str, allowed))}")
    return values


@app.command()
def compare(
    profile: Annotated[str, typer.Option(help=f"one of {', '.join(PROFILES)}: quick is a subset of the data (minutes), the others are described in docs/usage.md")] = "quick",
    name: Annotated[Optional[str], typer.Option(help="results folder name under --results (default: the profile)")] = None,
    results: Annotated[Path, typer.Option(help="where result folders go")] = Path("results"),
    implementations: Annotated[Optional[str], typer.Option(help="comma-separated subset of the implementations (default: the profile's)")] = None,
    cells: Annotated[Optional[str], typer.Option(help="comma-separated subset of rnn,gru,lstm")] = None,
    layers: Annotated[Optional[str], typer.Option(help="comma-separated depths, e.g. 1,2,3")] = None,
    bidirectional: Annotated[Optional[str], typer.Option(help="comma-separated: false,true")] = None,
    repeats: Annotated[Optional[int], typer.Option(help="seeds 0..repeats-1, every one run (with --target: the most a configuration gets)")] = None,
    target: Annotated[Optional[float], typer.Option(help="seeds where they are needed: run a few seeds of every configuration, then add seeds only where a ratio to native torch reaches further than this share from its point (quick: 0.05); 0: run every seed")] = None,
    budget: Annotated[Optional[float], typer.Option(help="with a target: seeds are added only while their blocks fit in this many minutes from the start (the first seeds always run)")] = None,
    train_size: Annotated[Optional[int], typer.Option(help="training reviews per run")] = None,
    test_size: Annotated[Optional[int], typer.Option(help="test reviews per run")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="maximum epochs per run")] = None,
    threads: Annotated[Optional[str], typer.Option(help="threads per run (default: usable cores); several, e.g. 1,2: threads as an axis, each count a block of runs")] = None,
    timeout: Annotated[Optional[int], typer.Option(help="per-run timeout in seconds")] = None,
    retry_failed: Annotated[bool, typer.Option(help="run again the runs recorded as failed")] = False,
    variants: Annotated[Optional[str], typer.Option(help="extra columns, e.g. 'tensorflow:graph=false,torch:compile=true,keras-jax:jit_compile=false'")] = None,
    data: Annotated[Optional[Path], typer.Option(help="dataset archive or folder (default: $IMDB_DATA, then usual places)")] = None,
    report: Annotated[bool, typer.Option(help="generate REPORT.md, tables and plots at the end")] = True,
    executor: Annotated[str, typer.Option(help="local (one run after another here) or ray (a Ray cluster; needs "
                                                "the cluster extra: pip install -e '.\\[cluster]')")] = "local",
    address: Annotated[str, typer.Option(help="ray only: the cluster, auto (the one started here with `ray start`) or HOST:PORT")] = "auto",
    placement: Annotated[str, typer.Option(help="ray only: node (one run per node at a time) or cores (one per --threads cores, pinned)")] = "node",
    rerun_noisy: Annotated[int, typer.Option(help="run a cell's busy sequential runs again (/proc/stat: others or steal above the thresholds of analysis/noise.py), up to this many extra runs per cell, until it has 3 timed runs")] = 0,
    schedule: Annotated[str, typer.Option(help="interleaved (each configuration's columns alive at once on one machine, taking turns step by step, so a slow period of the machine falls on every column alike; under Ray a block is one task on one node) or sequential (one run after another)")] = DEFAULT_SCHEDULE,
    allocator: Annotated[Optional[str], typer.Option(help="every run's allocator: retain (freed memory kept for reuse; default), glibc (the C library's defaults), jemalloc or tcmalloc (preloaded, where installed); a column may set its own with --variants IMPL:allocator=glibc")] = None,
    slice_steps: Annotated[Optional[int], typer.Option(help="interleaved only: training steps per turn (default: 1)")] = None,
    emulate_bf16: Annotated[bool, typer.Option(help="run precision=bf16 columns on a CPU without bf16 instructions (timings then measure the software conversion)")] = False,
    verbose: Annotated[bool, typer.Option(help="keep the frameworks' start-up and log lines (TensorFlow's C++ log) in the runs' output, which a failed run's failed.json quotes")] = False,
):
    """Train every configuration of the grid in its own process, then write the report."""
    set_start_up_output(verbose)
    with user_errors():
        from model.implementations import NAMES
        from model.plan import get_profile
        from model.spec import CELLS, MAX_LAYERS
        from runners.harness.sweep import compare_profile

        _check_numbers(repeats, target, budget, schedule, slice_steps, rerun_noisy)
        chosen = get_profile(profile).narrowed(
            implementations=_names(implementations, NAMES, "implementation"),
            cells=_names(cells, CELLS, "cell"),
            layers=_names(layers, tuple(range(1, MAX_LAYERS + 1)), "depth", int),
            bidirectional=_names(bidirectional, (False, True), "bidirectional value",
                                 lambda v: {"true": True, "false": False}.get(v.lower(), v)),
            seeds=tuple(range(repeats)) if repeats else None, train_size=train_size, test_size=test_size,
            epochs=epochs, timeout_s=timeout, variants=_variants(variants, NAMES), allocator=allocator,
            emulate_bf16=emulate_bf16 or None)
        if target is not None or repeats is not None:  # --repeats alone: exactly those seeds
            chosen = replace(chosen, target_reach=target or None)
        elif schedule == "sequential":  # a profile's target reads interleaved blocks: sequential runs every seed
            chosen = replace(chosen, target_reach=None)
        if budget is not None and not chosen.target_reach:
            fail(f"--budget applies to a sweep with a target: give --target (profile {profile} runs every seed)")
        folder, started = results / (name or profile), time.perf_counter()
        counts = compare_profile(folder, chosen, _names(threads, range(1, 1025), "thread count", _integer) if threads
                                 else None, str(data) if data else None, retry_failed, executor, address, placement,
                                 rerun_noisy, on_progress=_printer(), on_message=typer.echo,
                                 schedule=schedule, slice_steps=slice_steps, budget_min=budget)
        if rerun_noisy:
            typer.echo(f"{counts['reran']} noisy run(s) run again (listed in the manifest)")
        typer.echo(f"{counts['done']} of {counts['total']} runs finished, {counts['failed']} failed; "
                   f"{counts['executed']} run now in {time.perf_counter() - started:.0f} s -> {folder}")
        if report:
            _report(folder, chosen.name)


def _check_numbers(repeats, target, budget, schedule: str, slice_steps, rerun_noisy: int) -> None:
    """Refuse, in one line, a number no sweep can take."""
    if repeats is not None and repeats < 1:
        fail("--repeats must be at least 1")
    if target is not None and not 0 <= target < 1:
        fail("--target takes a share such as 0.05 (+-5%), or 0 to run every seed")
    if budget is not None and not 0 < budget < float("inf"):
        fail("--budget takes minutes above 0")
    if schedule not in RUN_SCHEDULES:
        fail(f"unknown schedule {schedule!r}; choose {' or '.join(RUN_SCHEDULES)}")
    if slice_steps is not None and (schedule != "interleaved" or slice_steps < 1):
        fail("--slice-steps takes 1 or more steps, with --schedule interleaved")
    if rerun_noisy < 0:
        fail("--rerun-noisy takes a number of extra runs per cell, 0 or more")


def _report(folder: Path, profile: str) -> None:
    """The sweep's report, and this machine beside the committed reference machines of the profile."""
    from analysis.reference import REFERENCE
    from analysis.report import generate

    typer.echo(f"report: {generate(folder)}")
    references = sorted(REFERENCE.glob(f"*/{profile}"))
    if references:
        typer.echo(f"beside the reference machines: {generate(folder, *references, out=folder / 'beside-reference')}")


def _integer(text: str):
    return int(text) if text.isdigit() else text


def _variants(text: Optional[str], names) -> tuple | None:
    """'impl:option=value;option=value,impl:...' -> ((impl, ((option, value), ...)), ...); values true/false become
    booleans, anything else stays text. Each is checked against the table when its plans are made."""
    if text is None:
        return None
    columns = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, settings = item.partition(":")
        if name not in names or not settings:
            fail(f"bad variant {item!r}; write implementation:option=value, e.g. tensorflow:graph=false")
        pairs = []
        for setting in settings.split(";"):
            option, _, value = setting.partition("=")
            pairs.append((option.strip(), {"true": True, "false": False}.get(value.strip().lower(), value.strip())))
        columns.append((name, tuple(pairs)))
    return tuple(columns)


def _printer():
    """One line per run: position, run, state, where, elapsed and estimated time left. The estimate divides the
    runs left by the throughput since the first run started, so it holds for one machine and for a cluster."""
    first, lines, finished = [], {}, [0]

    def show(position, total, run_id, state, seconds=None, where=None):
        now = time.perf_counter()
        if state in ("running", "queued"):
            first[:] = first or [now]
            if state == "running":  # one machine: the line is finished when the run is
                lines[run_id] = True
                typer.echo(f"[{position}/{total}] {run_id} ...", nl=False)
            return
        if seconds is None:
            typer.echo(f"[{position}/{total}] {run_id} {state}, skipped")
            return
        finished[0] += 1
        left, elapsed = total - position, now - first[0]
        eta = f", ~{left * elapsed / finished[0] / 60:.1f} min left" if left else ""
        text = f"{state} in {seconds:.0f} s{f' on {where}' if where else ''} (elapsed {elapsed / 60:.1f} min{eta})"
        typer.echo(f" {text}" if lines.pop(run_id, False) else f"[{position}/{total}] {run_id} {text}")

    return show


if __name__ == "__main__":
    app()
