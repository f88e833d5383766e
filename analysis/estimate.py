"""How long a profile will take on this machine, from a finished sweep's measured per-run figures.

    python -m analysis.estimate results/quick --profile standard
    python -m analysis.estimate results/quick --profile standard --actual results/standard
    python -m analysis.estimate results/quick --profile full --nodes 1,4,16     # on a Ray cluster of such nodes

Each run of the target profile is costed from the source sweep's runs of the
same implementation (or variant column), cell, depth and direction:

    start-up (process start to ready)
    + steps x (mean steady step + the mean gap between steps) x maxlen ratio
    + (first step - mean step)                       compile or trace, once a run
    + validations x validation reviews / inference throughput / maxlen ratio
    + test reviews / inference throughput / maxlen ratio

with mean (not median) step times, because the sum of a run's steps is its
mean times their number. The gap between steps (loop, data and callback work
outside the timed step) is measured per step, over all of a source run's
epochs with its first step's compile taken out, so it scales with the target's
steps. Step and inference times scale linearly with the target's maxlen over
the source's (the recurrence is sequential in it); other network differences
(units, embedding, segments) are refused, not guessed. A bidirectional stack
the source sweep did not measure costs twice the unidirectional one. The
estimate comes with a low and a high end, from the fastest and the slowest
source run, since run-to-run spread on these VMs is 10-15%. It assumes every
run trains all its epochs (early stopping shortens it); saving, record
writing and process exit (about a second a run) are not in the records.

On N nodes of the same CPU (the Ray executor, one run per node at a time), the
runs are dealt in the sweep's order to whichever node is free first, as Ray
does; the wall time is the last node's finish. The head's preparation (data
caches and the TF-IDF baseline per seed) comes before and is not in it.
"""

from __future__ import annotations

import heapq
import itertools
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer

from analysis.load import KEYS, load
from model.errors import UserError, fail, user_errors
from model.imdb import LABELS, REVIEWS_PER_CLASS
from model.implementations import Column, base_name, column, resolve_variant
from model.plan import LABEL, PLAN_OPTIONS, Profile, get_profile

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class EstimateError(UserError):
    """Source runs that cannot cost the profile asked for (reported to users in one line)."""


def split_sizes(val_fraction: float, train_size: int | None, test_size: int | None) -> tuple[int, int, int]:
    """Training, validation and test reviews of a run (22,500 / 2,500 / 25,000 on all the data)."""
    per_split = REVIEWS_PER_CLASS * len(LABELS)
    validation = round(per_split * val_fraction)
    train = per_split - validation
    if train_size is not None and train_size < train:
        validation = max(2, round(train_size * validation / train))
        train = train_size
    return train, validation, min(test_size or per_split, per_split)


# What a step's cost depends on besides maxlen (which scales): the source runs must match the profile in these.
SHAPE = ("units", "embedding_dim", "segment_len", "ngram_buckets", "ngram_order", "pooling")
COSTED = ["ready_s", "run_step_mean_ms", "first_extra_s", "gap_ms", "inference_per_s", "maxlen"]


def per_run_costs(runs: pd.DataFrame) -> pd.DataFrame:
    """The measured figures of each (column, cell, depth, direction) of a sweep: the mean over its runs, and the
    fastest and slowest run's mean step (``step_low_ms``, ``step_high_ms``)."""
    finished = runs[runs["status"] == "ok"].copy()
    steps = finished["steps_per_epoch"] * finished["epochs_run"]
    finished["first_extra_s"] = (finished["first_step_s"] - finished["run_step_mean_ms"] / 1e3).clip(lower=0)
    # All epochs' wall time less the steps and the first step's compile, per step.
    finished["gap_ms"] = ((finished["epoch_s"] * finished["epochs_run"] - finished["first_extra_s"]) * 1e3
                          / steps - finished["run_step_mean_ms"]).clip(lower=0)
    grouped = finished.groupby(KEYS)
    costs = grouped[COSTED].mean().join(grouped[[name for name in SHAPE if name in finished]].first())
    return costs.assign(step_low_ms=grouped["run_step_mean_ms"].min(), step_high_ms=grouped["run_step_mean_ms"].max())


def _run_seconds(c, steps: int, inferred: int, scale: float, factor: float, step_ms: float) -> float:
    step_s = step_ms / 1e3 * scale * factor
    return (c["ready_s"] + steps * (step_s + c["gap_ms"] / 1e3) + c["first_extra_s"]
            + inferred / c["inference_per_s"] * scale * factor)


def estimate(costs: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Estimated seconds of each run of ``profile`` (low and high ends beside), one row per run it can cost."""
    model, train = profile.specs()
    n_train, n_val, n_test = split_sizes(train.val_fraction, train.train_size, train.test_size)
    steps = n_train // train.batch_size * train.epochs
    inferred = train.epochs * train.validations_per_epoch * n_val + n_test
    columns = list(profile.implementations) + [_label(name, options, model) for name, options in profile.variants]
    rows = []
    for seed, bidirectional, implementation, cell, layers in itertools.product(
            profile.seeds, profile.bidirectional, columns, profile.cells, profile.layers):
        # a labelled column (an A/A twin) costs what its column costs where no run of it was recorded
        unlabelled = Column.parse(implementation).without(LABEL).label
        known = implementation if any(key[0] == implementation for key in costs.index) else unlabelled
        measured = (known, cell, layers, bidirectional)
        unidirectional = (known, cell, layers, False)
        if measured in costs.index:
            c, factor = costs.loc[measured], 1.0
        elif unidirectional in costs.index:  # a bidirectional stack not measured: twice the steps
            c, factor = costs.loc[unidirectional], 2.0
        else:
            continue
        different = [name for name in SHAPE
                     if name in c and pd.notna(c[name]) and c[name] != getattr(model, name)]
        if different:
            raise EstimateError(f"the source runs differ from {profile.name}'s network in "
                                f"{', '.join(different)}; estimate from a sweep of the same network")
        scale = model.maxlen / c["maxlen"] if pd.notna(c.get("maxlen", float("nan"))) else 1.0
        rows.append(dict(implementation=implementation, cell=cell, layers=layers, bidirectional=bidirectional,
                         seed=seed, **{key: _run_seconds(c, steps, inferred, scale, factor, c[step]) for key, step in
                                       (("estimated_s", "run_step_mean_ms"), ("low_s", "step_low_ms"),
                                        ("high_s", "step_high_ms"))}))
    return pd.DataFrame(rows)


def _label(name: str, options: tuple, model) -> str:
    """A variant column's label as its runs' records name it (``load.run_column``): the implementation's own options
    resolved, then the plan's (allocator, label)."""
    own = {option: value for option, value in options if option not in PLAN_OPTIONS}
    found = column(name, resolve_variant(name, own, model), model)
    for option in ("allocator", LABEL):
        found = found.with_option(option, dict(options)[option]) if option in dict(options) else found
    return found.label


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
    keys = [*KEYS, "seed"]
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
        planned += len(target.variants) * len(target.cells) * len(target.layers) * len(target.bidirectional) * len(
            target.seeds)
        if len(table) < planned:
            columns = set(target.implementations) | {name for name, _ in target.variants}
            unmeasured = sorted(name for name in columns if not any(
                base_name(implemented) == name for implemented in table["implementation"]))
            missing = sorted(set(target.layers) - set(table["layers"]))
            typer.echo(f"warning: {results} measured only some of {profile}'s runs; {len(table)} of {planned} are "
                       f"costed below (not measured: columns {unmeasured or 'none'}, depths {missing or 'none'})",
                       err=True)
        hours = table.groupby("implementation")["estimated_s"].sum() / 3600
        typer.echo(f"{profile} on {source.cpu_model}, estimated from {results} (hours per implementation):")
        typer.echo(hours.round(2).to_string())
        typer.echo(f"{profile}: {len(table)} runs, about {table['estimated_s'].sum() / 3600:.1f} hours of runs "
                   f"({table['low_s'].sum() / 3600:.1f}-{table['high_s'].sum() / 3600:.1f} from the fastest and the "
                   "slowest source run; assumes every run trains all its epochs, which early stopping shortens)")
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
