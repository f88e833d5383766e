"""How long a profile will take on this machine, from a finished sweep's measured per-run figures.

    python -m analysis.estimate results/quick --profile standard
    python -m analysis.estimate results/quick --profile standard --actual results/standard
    python -m analysis.estimate results/quick --profile full --nodes 1,4,16     # on a Ray cluster of such nodes

Every profile trains the same network shape, batch and maxlen, so each run of
the target profile is costed from the source sweep's runs of the same
implementation, cell and depth:

    start-up (process start to ready)
    + epochs x (steps per epoch x mean steady step + the measured per-epoch overhead beyond the steps)
    + (first step - mean step)                       compile or trace, once a run
    + epochs x validations per epoch x validation reviews / inference throughput
    + test reviews / inference throughput

with mean (not median) step times, because the sum of a run's steps is its
mean times their number. It assumes every run trains all its epochs (early
stopping shortens it) and costs a bidirectional stack the source sweep did
not measure at twice the unidirectional step and inference; run-to-run
spread of 10-15% on these VMs can lengthen or shorten it. It is an
estimate, not a bound. The saving, record writing and process exit of each
run (about a second) are not in the records and not in the estimate.

On N nodes of the same CPU (the Ray executor, one run per node at a time), the
runs are dealt in the sweep's order to whichever node is free first, as Ray
does; the wall time is the last node's finish. The head's preparation (data
caches and the TF-IDF baseline per seed) comes before and is not in it.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer

from analysis.load import load
from model.errors import fail, user_errors
from model.imdb import LABELS, REVIEWS_PER_CLASS
from model.plan import Profile, get_profile

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
CONFIGURATION = ["implementation", "cell", "layers"]


def split_sizes(val_fraction: float, train_size: int | None, test_size: int | None) -> tuple[int, int, int]:
    """Training, validation and test reviews of a run (22,500 / 2,500 / 25,000 on all the data)."""
    per_split = REVIEWS_PER_CLASS * len(LABELS)
    validation = round(per_split * val_fraction)
    train = per_split - validation
    if train_size is not None and train_size < train:
        validation = max(2, round(train_size * validation / train))
        train = train_size
    return train, validation, min(test_size or per_split, per_split)


def per_run_costs(runs: pd.DataFrame) -> pd.DataFrame:
    """The measured figures of each (implementation, cell, depth, direction) of a sweep, averaged over runs."""
    finished = runs[runs["status"] == "ok"].copy()
    finished["epoch_overhead_s"] = (finished["epoch_s"]
                                    - finished["steps_per_epoch"] * finished["run_step_mean_ms"] / 1e3)
    return finished.groupby(CONFIGURATION + ["bidirectional"])[
        ["ready_s", "run_step_mean_ms", "first_step_s", "epoch_overhead_s", "inference_per_s"]].mean()


def estimate(costs: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Estimated seconds of each run of ``profile``, one row per run."""
    model, train = profile.specs()
    n_train, n_val, n_test = split_sizes(train.val_fraction, train.train_size, train.test_size)
    steps = n_train // train.batch_size
    rows = []
    for seed in profile.seeds:
        for bidirectional in profile.bidirectional:
            for implementation in profile.implementations:
                for cell in profile.cells:
                    for layers in profile.layers:
                        measured = (implementation, cell, layers, bidirectional)
                        unidirectional = (implementation, cell, layers, False)
                        if measured in costs.index:
                            c, factor = costs.loc[measured], 1.0
                        elif unidirectional in costs.index:  # a bidirectional stack not measured: twice the steps
                            c, factor = costs.loc[unidirectional], 2.0
                        else:
                            continue
                        step_s = c["run_step_mean_ms"] / 1e3 * factor
                        inference = (train.epochs * train.validations_per_epoch * n_val + n_test) / c["inference_per_s"]
                        seconds = (c["ready_s"] + train.epochs * (steps * step_s + c["epoch_overhead_s"])
                                   + max(0.0, c["first_step_s"] - step_s) + inference * factor)
                        rows.append(dict(implementation=implementation, cell=cell, layers=layers,
                                         bidirectional=bidirectional, seed=seed, estimated_s=seconds))
    return pd.DataFrame(rows)


def on_nodes(estimated: pd.DataFrame, nodes: int) -> float:
    """Wall seconds of the runs on ``nodes`` identical nodes, each run to the first free node in sweep order."""
    ordered = estimated.sort_values(["seed", "bidirectional", "layers", "cell"], kind="stable")
    finish = [0.0] * nodes
    for seconds in ordered["estimated_s"]:
        heapq.heapreplace(finish, finish[0] + seconds)
    return max(finish)


def compare_with_actual(estimated: pd.DataFrame, actual_runs: pd.DataFrame) -> pd.DataFrame:
    """Estimated against recorded seconds (start-up + training + inference) per implementation."""
    finished = actual_runs[actual_runs["status"] == "ok"].copy()
    finished["actual_s"] = finished["ready_s"] + finished["total_wall_s"]
    keys = CONFIGURATION + ["bidirectional", "seed"]
    joined = estimated.merge(finished[keys + ["actual_s", "epochs_run"]], on=keys, how="inner")
    table = joined.groupby("implementation")[["estimated_s", "actual_s"]].sum()
    table["actual_over_estimate"] = table["actual_s"] / table["estimated_s"]
    table["runs"] = joined.groupby("implementation").size()
    return table.reset_index()


@app.command()
def main(results: Annotated[Path, typer.Argument(help="a finished sweep's results folder (e.g. results/quick)")],
         profile: Annotated[str, typer.Option(help="the profile to estimate")] = "full",
         actual: Annotated[Optional[Path], typer.Option(help="results of that profile, to compare with")] = None,
         nodes: Annotated[Optional[str], typer.Option(help="comma-separated node counts, e.g. 1,4,16: wall time on a Ray cluster of such machines")] = None):
    """Estimate a profile's duration on this machine from a finished sweep's records."""
    with user_errors():
        target, counts = get_profile(profile), _counts(nodes)
        source = load(results)
        table = estimate(per_run_costs(source.runs), target)
        if table.empty:
            fail(f"{results} has no finished runs matching the {profile} grid")
        planned = (len(target.implementations) * len(target.cells) * len(target.layers) * len(target.bidirectional)
                   * len(target.seeds))
        if len(table) < planned:
            missing = sorted(set(target.layers) - set(table["layers"])) or "some"
            typer.echo(f"warning: {results} measured only some of {profile}'s configurations; {len(table)} of "
                       f"{planned} runs are costed below (depths without measurements: {missing})", err=True)
        hours = table.groupby("implementation")["estimated_s"].sum() / 3600
        typer.echo(f"{profile} on {source.cpu_model}, estimated from {results} (hours per implementation):")
        typer.echo(hours.round(2).to_string())
        typer.echo(f"{profile}: {len(table)} runs, about {table['estimated_s'].sum() / 3600:.1f} hours of runs "
                   "(assumes every run trains all its epochs; early stopping shortens it, run-to-run spread moves "
                   "it either way)")
        for count in counts:
            wall = on_nodes(table, count)
            bound = max(table["estimated_s"].sum() / count, table["estimated_s"].max())
            typer.echo(f"on {count} node(s) like this one, one run per node at a time: about {wall / 3600:.2f} hours "
                       f"of runs (no schedule beats {bound / 3600:.2f})")
        if actual is not None:
            compared = compare_with_actual(table, load(actual).runs)
            typer.echo(f"estimate vs actual for the {int(compared['runs'].sum())} runs in {actual}:")
            typer.echo(compared.round(2).to_string(index=False))


def _counts(text: Optional[str]) -> list[int]:
    if text is None:
        return []
    try:
        counts = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        fail(f"--nodes takes node counts of at least 1, e.g. 1,4,16; got {text!r}")
    return counts


if __name__ == "__main__":
    app()
