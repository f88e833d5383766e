"""Train one sentiment RNN on IMDB and write a measured run record.

    KERAS_BACKEND=torch python -m runners.train
    python -m runners.train --impl torch --cell gru --layers 2
    python -m runners.train --plan runs/x/plan.json --out runs/x     # a plan written by the sweep
"""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from model.errors import fail, user_errors
from model.frameworks import set_start_up_output
from model.plan import PROFILES
from model.spec import ModelSpec as M
from model.spec import TrainSpec as T

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
SPEC_FIELDS = [spec_field.name for spec_field in fields(M) + fields(T)]
VARIANT_FIELDS = ("rnn_path", "formulation", "jit_compile", "precision")
NOT_SETTINGS = ("plan", "out", "quiet", "verbose")  # where a run goes and what it shows, beside a --plan too


@app.command()
def train(
    impl: Annotated[str, typer.Option(help="keras (backend from --backend / KERAS_BACKEND), torch, tensorflow, or a full name such as keras-torch")] = "keras",
    backend: Annotated[Optional[str], typer.Option(help="Keras backend: torch, tensorflow or jax (default: $KERAS_BACKEND, else tensorflow)")] = None,
    profile: Annotated[Optional[str], typer.Option(help=f"the per-run settings of a sweep profile: {', '.join(PROFILES)} (docs/usage.md); default: none")] = None,
    cell: Annotated[Optional[str], typer.Option(help=f"rnn, gru or lstm (default: {M.cell})")] = None,
    layers: Annotated[Optional[int], typer.Option(help=f"recurrent layers, 0-4 (0: none, the embeddings pooled: what the recurrent layer adds) (default: {M.layers})")] = None,
    units: Annotated[Optional[int], typer.Option(help=f"hidden units per direction (default: {M.units})")] = None,
    embedding_dim: Annotated[Optional[int], typer.Option(help=f"embedding size (default: {M.embedding_dim})")] = None,
    bidirectional: Annotated[Optional[bool], typer.Option("--bidirectional/--unidirectional", help="(default: unidirectional)")] = None,
    dropout: Annotated[Optional[float], typer.Option(help=f"dropout before the output layer (default: {M.dropout})")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help=f"vocabulary size incl. padding and unknown (default: {M.vocab_size})")] = None,
    maxlen: Annotated[Optional[int], typer.Option(help=f"tokens kept per review, from its end (default: {M.maxlen})")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help=f"words, or punct (also keeps ! ? and ratings such as 7/10) (default: {M.tokenizer})")] = None,
    head_tokens: Annotated[Optional[int], typer.Option(help=f"tokens kept from the start of a long review, the rest from its end (default: {M.head_tokens})")] = None,
    embedding_dropout: Annotated[Optional[float], typer.Option(help=f"dropout on the embedded tokens (default: {M.embedding_dropout})")] = None,
    segment_len: Annotated[Optional[int], typer.Option(help=f"cut reviews into segments of this many tokens, run as rows of their own; 0: off (default: {M.segment_len})")] = None,
    embedding_init: Annotated[Optional[str], typer.Option(help=f"uniform, or ppmi-svd (word vectors from the training rows' co-occurrences, labels unread) (default: {M.embedding_init})")] = None,
    ngram_buckets: Annotated[Optional[int], typer.Option(help=f"add a learned vector per n-gram (n = 2..--ngram-order) each token ends, hashed into this many shared rows; 0: words only (default: {M.ngram_buckets})")] = None,
    ngram_order: Annotated[Optional[int], typer.Option(help=f"the longest n-gram with --ngram-buckets: 2 bigrams, 3 also trigrams (default: {M.ngram_order})")] = None,
    pooling: Annotated[Optional[str], typer.Option(help=f"max (over every timestep), or max-mean (beside it, the mean over the review's real tokens) (default: {M.pooling})")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=f"(default: {T.batch_size})")] = None,
    epochs: Annotated[Optional[int], typer.Option(help=f"maximum epochs (default: {T.epochs})")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help=f"Adam learning rate (the peak with a schedule) (default: {T.learning_rate})")] = None,
    schedule: Annotated[Optional[str], typer.Option(help=f"constant, or warmup_cosine (linear warm-up, then a cosine to 0 over all epochs) (default: {T.schedule})")] = None,
    warmup_fraction: Annotated[Optional[float], typer.Option(help=f"share of all steps spent warming up (default: {T.warmup_fraction})")] = None,
    val_split: Annotated[Optional[str], typer.Option(help=f"reviews (a random share of the training reviews) or movies (of the training movies: no movie on both sides, as in the official test set) (default: {T.val_split})")] = None,
    bucket_pool: Annotated[Optional[int], typer.Option(help=f"length-bucket batches within pools of this many batches; 0: off (default: {T.bucket_pool})")] = None,
    epsilon: Annotated[Optional[float], typer.Option(help=f"Adam epsilon, on sqrt(v) as Keras/TF apply it (default: {T.epsilon})")] = None,
    clip_global_norm: Annotated[Optional[float], typer.Option("--clip-global-norm", "--clip-norm", help=f"global gradient-norm clip (default: {T.clip_global_norm})")] = None,
    patience: Annotated[Optional[int], typer.Option(help=f"early-stopping patience in epochs (default: {T.patience})")] = None,
    restore_best: Annotated[Optional[bool], typer.Option("--restore-best/--keep-last", help="at the end, restore the weights of the epoch with the lowest validation loss, or keep the last ones (default: restore)")] = None,
    validations_per_epoch: Annotated[Optional[int], typer.Option(help=f"validation passes per epoch, evenly spaced, excluded from training time (default: {T.validations_per_epoch})")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"seeds weights, split, batch order, dropout (default: {T.seed})")] = None,
    split_seed: Annotated[Optional[int], typer.Option(help="seeds the validation split (and vocabulary) alone, so that runs of several seeds share it (default: --seed)")] = None,
    train_size: Annotated[Optional[int], typer.Option(help="use a stratified subset of this many training reviews")] = None,
    test_size: Annotated[Optional[int], typer.Option(help="evaluate on a stratified subset of the test set")] = None,
    threads: Annotated[Optional[int], typer.Option(help="intra- and inter-op threads for every framework (default: usable cores)")] = None,
    flush_denormal: Annotated[Optional[bool], typer.Option("--flush-denormal/--no-flush-denormal", help="flush denormal floats to zero (default: on; TensorFlow always does)")] = None,
    allocator: Annotated[Optional[str], typer.Option(help="retain (freed memory kept for reuse; default), glibc (the C library's defaults: large freed buffers go back to the system; docs/findings.md, finding 7), or jemalloc or tcmalloc (preloaded, where installed)")] = None,
    rnn_path: Annotated[Optional[str], typer.Option("--rnn-path", "--keras-rnn", help="keras-* only: RNN path, generic (use_cudnn=False, fastest on CPU; default) or auto (Keras' default)")] = None,
    formulation: Annotated[Optional[str], typer.Option("--formulation", "--tf-formulation", help="tensorflow only: fastest (measured per cell; default), loop, precomputed or block (LSTM only)")] = None,
    jit_compile: Annotated[Optional[bool], typer.Option("--jit-compile/--no-jit-compile", "--xla/--no-xla", help="tensorflow only: compile the step with XLA (default: off)")] = None,
    plan: Annotated[Optional[Path], typer.Option(help="run exactly this plan (JSON, as the sweep writes it); no other settings")] = None,
    data: Annotated[Optional[Path], typer.Option(help="aclImdb_v1.tar.gz, the labelled archive, or an aclImdb/ folder (default: $IMDB_DATA, then usual places)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run folder to create (default: runs/<time>-<impl>-<cell><layers>)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    precision: Annotated[Optional[str], typer.Option(help="fp32 (default) or bf16: bf16 computation, fp32 weights and optimizer state")] = None,
    emulate_bf16: Annotated[bool, typer.Option(help="run --precision bf16 on a CPU without bf16 instructions (timings then measure the software conversion)")] = False,
    verbose: Annotated[bool, typer.Option(help="also show the frameworks' start-up and log lines (TensorFlow's C++ log); the record keeps versions and settings either way")] = False,
):
    """Train on the IMDB training split, stop early on a validation split, test on the official 25k test set."""
    options = dict(locals())  # every option by its name, None (or its default) where not given
    set_start_up_output(verbose)
    # Option names are the plan's: ModelSpec's and TrainSpec's fields, the variant's options (as compare's
    # --variants IMPL:option=value names them) and RunPlan's own.
    settings = {name: options[name] for name in SPEC_FIELDS if name in options}
    variant = {name: options[name] for name in VARIANT_FIELDS}
    with user_errors():
        from model.plan import RunPlan

        if plan is not None:
            defaults = {name: parameter.default for name, parameter in inspect.signature(train).parameters.items()}
            given = [f"--{name.replace('_', '-')}" for name, value in options.items()
                     if name not in NOT_SETTINGS and value != defaults[name]]
            if given:
                fail(f"--plan holds every setting; do not combine it with {', '.join(given)}")
            run_plan = RunPlan.load(plan)
        else:
            run_plan = _plan(impl, backend, profile, settings, variant, threads, flush_denormal, data, allocator,
                             emulate_bf16)
        from runners import harness

        out = out or harness.default_run_dir(run_plan)
        _summary(harness.run(run_plan, out=out, progress=not quiet), out)


def _plan(impl, backend, profile, settings, variant, threads, flush_denormal, data, allocator=None,
          emulate_bf16=False):
    """A run plan from the command line's options (checked here, before any framework loads)."""
    from model import implementations
    from model.plan import DEFAULT_ALLOCATOR, RunPlan, build_specs, get_profile
    from runners.harness import policy

    policy.check_threads(threads)
    name = implementations.resolve(impl, backend)
    entry = implementations.get(name)
    model_spec, train_spec = get_profile(profile).specs(**settings) if profile else build_specs({}, {}, settings)
    for option, value in variant.items():
        if value is not None and option not in entry.variants:
            fail(f"--{option.replace('_', '-')} does not apply to {name}; it applies to "
                 f"{', '.join(n for n, e in implementations.TABLE.items() if option in e.variants)}")
    given = {option: value for option, value in variant.items() if value is not None}
    return RunPlan(implementation=name, model=model_spec, train=train_spec, variant=given,
                   threads=threads if threads is not None else policy.default_threads(),
                   flush_denormal=True if flush_denormal is None else flush_denormal,
                   allocator=allocator or DEFAULT_ALLOCATOR, data=str(data) if data else None, profile=profile,
                   emulate_bf16=emulate_bf16)


def _summary(record: dict, run_dir: Path) -> None:
    timing, quality, memory = record["timing"], record["metrics"], record["memory"]
    step = timing["steady_step_ms"]["median"]
    peak = memory["peak_above_baseline_mb"]
    typer.echo(f"{record['plan']['implementation']}: test accuracy {quality['accuracy']:.4f}, F1 {quality['f1']:.4f}, "
               f"ROC-AUC {_number(quality['roc_auc'], '.4f')}; steady step {_number(step, '.1f')} ms, "
               f"{sum(timing['epoch_s']) / len(timing['epoch_s']):.1f} s/epoch, "
               f"peak memory +{_number(peak, '.0f')} MB ({_number(memory['peak_rss_mb'], '.0f')} MB total)")
    typer.echo(f"run folder: {run_dir}")


def _number(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


if __name__ == "__main__":
    app()
