"""Measure the native TensorFlow formulations of a cell against each other, and check they agree.

    python -m runners.bench_tf --cell lstm --steps 20

Each candidate trains on the same fixed batch from the same canonical weights;
the first steps are warm-up (tracing, XLA compilation) and are reported apart.
A candidate whose weights after one step differ from the plain while-loop by
more than 1e-4 is marked incorrect (tf.raw_ops.BlockLSTMV2's gradient would be).
"""

from __future__ import annotations

from typing import Annotated

import typer

from model.spec import ModelSpec, TrainSpec

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def measure(cell: str, steps: int, warmup: int, threads: int, batch: int, maxlen: int, units: int) -> list[dict]:
    import time

    import numpy as np

    from model.spec import TF_FORMULATIONS
    from model.tf_model import TensorFlowImplementation
    from model.weights import initial_weights
    from runners.harness import policy
    from runners.harness.measure import StepClock, summarize_ms

    policy.configure("tensorflow", threads, True)
    spec = ModelSpec(cell=cell, units=units, maxlen=maxlen, dropout=0.0)
    train = TrainSpec(batch_size=batch)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, spec.vocab_size, size=(batch, maxlen), dtype=np.int32)
    labels = (np.arange(batch) % 2).astype(np.float32)
    rows, reference = [], None
    for formulation in TF_FORMULATIONS:
        for xla in (False, True):
            if formulation == "block" and (cell != "lstm" or xla):  # BlockLSTM has no XLA kernel
                continue
            impl = TensorFlowImplementation(spec, train, initial_weights(spec, 0), formulation, jit_compile=xla)
            start = time.perf_counter()
            impl.train_step(tokens, labels).numpy()
            first = time.perf_counter() - start
            after_one = impl.get_weights()
            reference = reference or after_one
            error = max(float(np.abs(a - b).max()) for a, b in zip(after_one, reference))
            clock = StepClock()
            for _ in range(warmup + steps):
                clock.start()
                impl.train_step(tokens, labels).numpy()  # .numpy() waits for the step to finish
                clock.stop()
            summary = summarize_ms(clock.samples[warmup:])
            rows.append(dict(formulation=formulation, xla=xla, median_ms=summary["median"], iqr_ms=summary["iqr"],
                             first_step_s=first, max_weight_error=error, correct=error < 1e-4))
    return rows


@app.command()
def bench(cell: Annotated[str, typer.Option(help="rnn, gru or lstm")] = "lstm",
          steps: Annotated[int, typer.Option(help="timed steps per candidate")] = 20,
          warmup: Annotated[int, typer.Option(help="untimed steps after the first")] = 3,
          threads: Annotated[int, typer.Option(help="intra- and inter-op threads")] = 0,
          batch: int = TrainSpec.batch_size, maxlen: int = ModelSpec.maxlen, units: int = ModelSpec.units):
    """Median train-step time of each native TF formulation on one fixed batch."""
    from model.errors import user_errors
    from runners.harness import policy

    with user_errors():
        threads = threads or policy.default_threads()
        policy.set_thread_environment(threads)
        rows = measure(cell, steps, warmup, threads, batch, maxlen, units)
    typer.echo(f"{cell}, batch {batch}, maxlen {maxlen}, units {units}, {threads} threads, {steps} timed steps")
    typer.echo("| formulation | XLA | median ms/step | IQR ms | first step s | max weight error | correct |")
    typer.echo("|---|---|---|---|---|---|---|")
    for row in rows:
        typer.echo(f"| {row['formulation']} | {row['xla']} | {row['median_ms']:.1f} | {row['iqr_ms']:.1f} | "
                   f"{row['first_step_s']:.2f} | {row['max_weight_error']:.1e} | {row['correct']} |")


if __name__ == "__main__":
    app()
