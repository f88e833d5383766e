"""Sentiment of new reviews from a saved run, under either Keras backend.

    python -m runners.predict --model runs/<run> "What a wonderful film."
    python -m runners.predict --model runs/<run> --file reviews.txt     # one review per line
    cat reviews.txt | KERAS_BACKEND=torch python -m runners.predict --model runs/<run>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from model.errors import fail, user_errors
from model.frameworks import set_start_up_output

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def load_predictor(run_dir: Path):
    """A function texts -> positive-class probabilities, from a run folder (any implementation's)."""
    import keras
    import numpy as np

    from model import preprocess, records
    from model.keras_model import build_model
    from model.spec import ModelSpec, from_dict
    from runners.harness.metrics import sigmoid

    record = records.read_record(run_dir)
    spec = from_dict(ModelSpec, record["plan"]["model"])
    vocabulary = json.loads((run_dir / records.VOCABULARY_FILE).read_text())
    if (run_dir / "model.keras").exists():
        model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    else:  # native runs: their canonical weights go into the same network definition
        model = build_model(spec)
        with np.load(run_dir / records.WEIGHTS_FILE) as weights:
            model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])

    def predict(texts: list[str]):
        tokens = preprocess.encode_texts(texts, vocabulary, spec.maxlen, spec.tokenizer, spec.head_tokens)
        return sigmoid(np.asarray(model.predict(tokens, batch_size=256, verbose=0)).reshape(-1))

    return predict


def _read_texts(texts: list[str], file: Optional[Path]) -> list[str]:
    if file is not None:
        if not file.is_file():
            fail(f"--file {file} does not exist")
        texts = texts + file.read_text(encoding="utf-8").splitlines()
    elif not texts:
        if sys.stdin is None or sys.stdin.isatty():
            fail("give reviews as arguments, with --file, or on standard input")
        texts = sys.stdin.read().splitlines()
    if not texts:
        fail("no review text given")
    for number, text in enumerate(texts, 1):
        if not text.strip():
            fail(f"review {number} is empty")
    return texts


@app.command()
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(help="review texts (or use --file / standard input)")] = None,
    model: Annotated[Path, typer.Option(help="run folder written by runners.train")] = ...,
    file: Annotated[Optional[Path], typer.Option(help="a text file with one review per line")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Keras backend: torch, tensorflow or jax (default: $KERAS_BACKEND, else tensorflow)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per review")] = False,
    verbose: Annotated[bool, typer.Option(help="also show the frameworks' start-up and log lines (TensorFlow's C++ log)")] = False,
):
    """Print the predicted sentiment and its probability for each review."""
    set_start_up_output(verbose)
    with user_errors():
        if not model.is_dir():
            fail(f"run folder {model} not found")
        from model import records

        if not (model / records.RECORD_FILE).exists():
            fail(f"{model} is not a finished run (no record.json)")
        reviews = _read_texts(list(texts or []), file)
        from model.implementations import resolve
        from runners.harness.policy import import_framework

        import_framework(resolve("keras", backend))  # Keras with --backend, else $KERAS_BACKEND, else tensorflow
        probabilities = load_predictor(model)(reviews)
        for text, probability in zip(reviews, probabilities):
            label = "positive" if probability >= 0.5 else "negative"
            if as_json:
                typer.echo(json.dumps(dict(label=label, probability=float(probability), text=text)))
            else:
                snippet = text if len(text) <= 60 else text[:57] + "..."
                typer.echo(f"{label}\t{probability:.4f}\t{snippet}")


if __name__ == "__main__":
    app()
