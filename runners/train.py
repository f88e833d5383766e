"""Train one sentiment RNN on IMDB and write a measured run record.

    KERAS_BACKEND=torch python -m runners.train
    python -m runners.train --impl torch --cell gru --layers 2
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from model.spec import ModelSpec as M
from model.spec import TrainSpec as T
from runners.cli import fail, user_errors

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def train(
    impl: Annotated[str, typer.Option(help="keras (backend from --backend / KERAS_BACKEND), torch or tensorflow")] = "keras",
    backend: Annotated[Optional[str], typer.Option(help="Keras backend: torch or tensorflow (default: $KERAS_BACKEND, else tensorflow)")] = None,
    profile: Annotated[str, typer.Option(help="named settings: quick (default) or full (maxlen 400, 8 epochs)")] = "quick",
    cell: Annotated[Optional[str], typer.Option(help=f"rnn, gru or lstm (default: {M.cell})")] = None,
    layers: Annotated[Optional[int], typer.Option(help=f"recurrent layers, 1-4 (default: {M.layers})")] = None,
    units: Annotated[Optional[int], typer.Option(help=f"hidden units per direction (default: {M.units})")] = None,
    embedding_dim: Annotated[Optional[int], typer.Option(help=f"embedding size (default: {M.embedding_dim})")] = None,
    bidirectional: Annotated[Optional[bool], typer.Option("--bidirectional/--unidirectional", help="(default: unidirectional)")] = None,
    dropout: Annotated[Optional[float], typer.Option(help=f"dropout before the output layer (default: {M.dropout})")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help=f"vocabulary size incl. padding and unknown (default: {M.vocab_size})")] = None,
    maxlen: Annotated[Optional[int], typer.Option(help=f"tokens kept per review, from its end (default: {M.maxlen})")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=f"(default: {T.batch_size})")] = None,
    epochs: Annotated[Optional[int], typer.Option(help=f"maximum epochs (default: {T.epochs})")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help=f"Adam learning rate (default: {T.learning_rate})")] = None,
    epsilon: Annotated[Optional[float], typer.Option(help=f"Adam epsilon, on sqrt(v) as Keras/TF apply it (default: {T.epsilon})")] = None,
    clip_norm: Annotated[Optional[float], typer.Option(help=f"global gradient-norm clip (default: {T.clip_global_norm})")] = None,
    patience: Annotated[Optional[int], typer.Option(help=f"early-stopping patience in epochs (default: {T.patience})")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"seeds weights, split, batch order, dropout (default: {T.seed})")] = None,
    train_size: Annotated[Optional[int], typer.Option(help="use a stratified subset of this many training reviews")] = None,
    test_size: Annotated[Optional[int], typer.Option(help="evaluate on a stratified subset of the test set")] = None,
    threads: Annotated[Optional[int], typer.Option(help="intra- and inter-op threads for every framework (default: usable cores)")] = None,
    flush_denormal: Annotated[bool, typer.Option("--flush-denormal/--no-flush-denormal", help="flush denormal floats to zero (TensorFlow always does)")] = True,
    keras_rnn: Annotated[str, typer.Option(help="Keras RNN path: generic (use_cudnn=False, fastest on CPU) or auto (Keras' default)")] = "generic",
    tf_formulation: Annotated[str, typer.Option(help="native TensorFlow cell: fastest (measured per cell), loop, precomputed or block (LSTM only)")] = "fastest",
    xla: Annotated[bool, typer.Option(help="native TensorFlow only: compile the step with XLA")] = False,
    data: Annotated[Optional[Path], typer.Option(help="aclImdb_v1.tar.gz, the labelled archive, or an aclImdb/ folder (default: $IMDB_DATA, then usual places)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run folder to create (default: runs/<time>-<impl>-<cell><layers>)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
):
    """Train on the IMDB training split, stop early on a validation split, test on the official 25k test set."""
    with user_errors():
        from runners import implementations, policy
        from model.spec import make_specs

        name = implementations.resolve(impl, backend)
        implementations.check_installed(name)
        model_spec, train_spec = make_specs(
            profile, cell=cell, layers=layers, units=units, embedding_dim=embedding_dim, bidirectional=bidirectional,
            dropout=dropout, vocab_size=vocab_size, maxlen=maxlen, batch_size=batch_size, epochs=epochs,
            learning_rate=learning_rate, epsilon=epsilon, clip_global_norm=clip_norm, patience=patience, seed=seed,
            train_size=train_size, test_size=test_size)
        variant = _variant(name, keras_rnn, tf_formulation, xla, model_spec.cell)
        if out is not None and (out / "record.json").exists():
            fail(f"{out} already holds a finished run; choose another --out")
        threads = threads if threads is not None else policy.default_threads()
        policy.set_thread_environment(threads)  # before numpy, torch or tensorflow is imported

        from runners.session import RunConfig, run

        run_dir = run(RunConfig(implementation=name, model=model_spec, train=train_spec, threads=threads,
                                flush_denormal=flush_denormal, data=data, out=out, variant=variant,
                                progress=not quiet))
        _summary(run_dir)


def _variant(name: str, keras_rnn: str, tf_formulation: str, xla: bool, cell: str) -> dict:
    from model.spec import KERAS_RNN_PATHS, TF_FASTEST
    from model.spec import TF_FORMULATIONS as FORMULATIONS

    if xla and name != "tensorflow":
        fail("--xla applies only to --impl tensorflow (Keras runs use jit_compile=False, see README)")
    if name.startswith("keras-"):
        if keras_rnn not in KERAS_RNN_PATHS:
            fail(f"unknown --keras-rnn {keras_rnn!r}; choose one of {', '.join(KERAS_RNN_PATHS)}")
        return {"rnn_path": keras_rnn}
    if name == "tensorflow":
        if tf_formulation == "fastest":
            tf_formulation = TF_FASTEST[cell]
        if tf_formulation not in FORMULATIONS:
            fail(f"unknown --tf-formulation {tf_formulation!r}; choose fastest or one of {', '.join(FORMULATIONS)}")
        if tf_formulation == "block" and cell != "lstm":
            fail("--tf-formulation block exists only for --cell lstm")
        return {"formulation": tf_formulation, "jit_compile": xla}
    return {}


def _summary(run_dir: Path) -> None:
    from runners.records import read_record

    record = read_record(run_dir)
    timing, quality = record["timing"], record["metrics"]
    typer.echo(f"{record['implementation']}: test accuracy {quality['accuracy']:.4f}, F1 {quality['f1']:.4f}, "
               f"ROC-AUC {quality['roc_auc']:.4f}; steady step {timing['steady_step_ms']['median']:.1f} ms, "
               f"{sum(timing['epoch_s']) / len(timing['epoch_s']):.1f} s/epoch, "
               f"peak memory +{record['memory']['peak_above_baseline_mb']:.0f} MB "
               f"({record['memory']['peak_rss_mb']:.0f} MB total)")
    typer.echo(f"run folder: {run_dir}")


if __name__ == "__main__":
    app()
