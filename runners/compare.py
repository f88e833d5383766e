"""Run the four-way sweep and generate its report.

    python -m runners.compare                  # quick profile, results/quick/
    python -m runners.compare --profile full   # the full study (see README for its duration)
    python -m analysis.report results/quick    # regenerate tables and plots from the records
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from runners.cli import fail, user_errors

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
    profile: Annotated[str, typer.Option(help="quick (subset of the data, minutes) or full (all 25k/25k, hours)")] = "quick",
    name: Annotated[Optional[str], typer.Option(help="results folder name under --results (default: the profile)")] = None,
    results: Annotated[Path, typer.Option(help="where result folders go")] = Path("results"),
    implementations: Annotated[Optional[str], typer.Option(help="comma-separated subset of keras-torch,keras-tensorflow,torch,tensorflow")] = None,
    cells: Annotated[Optional[str], typer.Option(help="comma-separated subset of rnn,gru,lstm")] = None,
    layers: Annotated[Optional[str], typer.Option(help="comma-separated depths, e.g. 1,2,3")] = None,
    bidirectional: Annotated[Optional[str], typer.Option(help="comma-separated: false,true")] = None,
    repeats: Annotated[Optional[int], typer.Option(help="seeds 0..repeats-1")] = None,
    train_size: Annotated[Optional[int], typer.Option(help="training reviews per run")] = None,
    test_size: Annotated[Optional[int], typer.Option(help="test reviews per run")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="maximum epochs per run")] = None,
    threads: Annotated[Optional[int], typer.Option(help="threads for every run (default: usable cores)")] = None,
    timeout: Annotated[Optional[int], typer.Option(help="per-run timeout in seconds")] = None,
    retry_failed: Annotated[bool, typer.Option(help="run again the runs recorded as failed")] = False,
    data: Annotated[Optional[Path], typer.Option(help="dataset archive or folder (default: $IMDB_DATA, then usual places)")] = None,
    report: Annotated[bool, typer.Option(help="generate REPORT.md, tables and plots at the end")] = True,
):
    """Train every configuration of the grid in its own process, then write the report."""
    with user_errors():
        from model.spec import CELLS
        from runners.implementations import NAMES
        from runners.sweep import SWEEP_PROFILES, sweep

        if profile not in SWEEP_PROFILES:
            fail(f"unknown profile {profile!r}; choose one of {', '.join(SWEEP_PROFILES)}")
        settings = dict(SWEEP_PROFILES[profile])
        overrides = dict(
            implementations=_names(implementations, NAMES, "implementation"),
            cells=_names(cells, CELLS, "cell"),
            layers=_names(layers, (1, 2, 3, 4), "depth", int),
            bidirectional=_names(bidirectional, (False, True), "bidirectional value",
                                 lambda v: {"true": True, "false": False}.get(v.lower(), v)),
            seeds=tuple(range(repeats)) if repeats else None, train_size=train_size, test_size=test_size,
            epochs=epochs, threads=threads, timeout_s=timeout, data=str(data) if data else None)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        if repeats is not None and repeats < 1:
            fail("--repeats must be at least 1")
        folder = results / (name or profile)
        started = time.perf_counter()
        counts = sweep(folder, profile, settings, retry_failed, on_progress=_printer(started))
        typer.echo(f"{counts['done']} of {counts['total']} runs finished, {counts['failed']} failed; "
                   f"{counts['executed']} run now in {time.perf_counter() - started:.0f} s -> {folder}")
        if report:
            from analysis.report import generate

            typer.echo(f"report: {generate(folder)}")


def _printer(started: float):
    """One line per run: index, run, state, elapsed and estimated time left (from runs executed so far)."""
    starts, durations = {}, []

    def show(index, total, run, state, executed):
        now = time.perf_counter()
        if state == "running":
            starts[run.run_id] = now
            typer.echo(f"[{index}/{total}] {run.run_id} ...", nl=False)
        elif run.run_id in starts:
            durations.append(now - starts.pop(run.run_id))
            left = total - index
            eta = f", ~{left * sum(durations) / len(durations) / 60:.1f} min left" if left else ""
            typer.echo(f" {state} in {durations[-1]:.0f} s (elapsed {(now - started) / 60:.1f} min{eta})")
        else:
            typer.echo(f"[{index}/{total}] {run.run_id} {state} earlier, skipped")

    return show


if __name__ == "__main__":
    app()
