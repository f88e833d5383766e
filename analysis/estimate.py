"""How long the full sweep will take, from a quick sweep's measured per-step figures.

    python -m analysis.estimate results/quick

The quick profile trains the same network shape, batch and maxlen as the full
one, so each full run costs about: start-up (measured) + epochs x steps per
epoch x steady step time (measured) + validation and test inference at the
measured inference throughput. Bidirectional layers are not in the quick grid;
they are costed at twice the unidirectional step time, an assumption (two
directions of the same work) that the full sweep's own records then replace.
Early stopping can only make the full sweep shorter than this estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from analysis.load import load
from model.errors import fail, user_errors
from model.imdb import LABELS, REVIEWS_PER_CLASS
from model.plan import PROFILES, Profile

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def split_sizes(val_fraction: float) -> tuple[int, int, int]:
    """Training, validation and test reviews of a run on all the data (22,500 / 2,500 / 25,000)."""
    per_split = REVIEWS_PER_CLASS * len(LABELS)
    validation = round(per_split * val_fraction)
    return per_split - validation, validation, per_split


def full_duration(runs: pd.DataFrame, full: Profile) -> pd.DataFrame:
    """Estimated seconds per full-profile run, one row per (implementation, cell, layers, bidirectional)."""
    _, train = full.specs()
    full_train, full_val, full_test = split_sizes(train.val_fraction)
    finished = runs[runs["status"] == "ok"]
    per_config = finished.groupby(["implementation", "cell", "layers"]).median(numeric_only=True)
    rows = []
    for (implementation, cell, layers), measured in per_config.iterrows():
        if implementation not in full.implementations or cell not in full.cells or layers not in full.layers:
            continue
        for bidirectional in full.bidirectional:
            factor = 2.0 if bidirectional else 1.0
            train_s = train.epochs * (full_train // train.batch_size) * measured["run_step_ms"] / 1e3 * factor
            inference_s = (train.epochs * full_val + full_test) / measured["inference_per_s"] * factor
            rows.append(dict(implementation=implementation, cell=cell, layers=layers, bidirectional=bidirectional,
                             seconds_per_run=measured["ready_s"] + train_s + inference_s, runs=len(full.seeds)))
    table = pd.DataFrame(rows)
    if not table.empty:
        table["seconds"] = table["seconds_per_run"] * table["runs"]
    return table


@app.command()
def main(results: Annotated[Path, typer.Argument(help="a quick sweep's results folder")]):
    """Estimate the full profile's duration from a quick sweep's records."""
    with user_errors():
        runs, _, _, _ = load(results)
    table = full_duration(runs, PROFILES["full"])
    if table.empty:
        fail(f"{results} has no finished runs matching the full grid")
    by_implementation = table.groupby("implementation")["seconds"].sum() / 3600
    typer.echo(by_implementation.round(2).to_string())
    typer.echo(f"full profile, {int(table['runs'].sum())} runs: about {table['seconds'].sum() / 3600:.1f} hours "
               "on this machine (an upper bound: early stopping shortens it)")


if __name__ == "__main__":
    app()
