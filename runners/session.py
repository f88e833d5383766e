"""One measured training run of one implementation, from process start to a finished run folder.

The same driver runs all four implementations: same data arrays, same batch
order, same initial weights, same early-stopping rule, same clocks. Only
``impl.train_epoch`` / ``impl.predict_logits`` differ, and they only call the
clock around each step.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psutil

from model.spec import ModelSpec, TrainSpec
from runners import implementations, measure, policy, records
from runners.environment import environment
from runners.metrics import binary_cross_entropy, classification_metrics, sigmoid

VOCABULARY_FILE = "vocabulary.json"
WEIGHTS_FILE = "weights.npz"
PREDICTIONS_FILE = "predictions.npz"


@dataclass
class RunConfig:
    implementation: str  # one of implementations.NAMES
    model: ModelSpec
    train: TrainSpec
    threads: int
    flush_denormal: bool = True
    data: Path | None = None
    out: Path | None = None
    variant: dict = field(default_factory=dict)
    progress: bool = True


def batch_order(seed: int, epoch: int, n: int):
    """The shared, seeded permutation of the training rows for one epoch."""
    import numpy as np

    return np.random.default_rng([seed, epoch]).permutation(n)


def seed_everything(framework: str, seed: int) -> None:
    """Seed by hand: keras.utils.set_random_seed would import TensorFlow under the torch backend."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    if framework == "torch":
        import torch

        torch.manual_seed(seed)
    else:
        import tensorflow as tf

        tf.random.set_seed(seed)


def default_run_dir(config: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    spec = config.model
    name = f"{stamp}-{config.implementation}-{spec.cell}{spec.layers}{'-bi' if spec.bidirectional else ''}"
    return Path("runs") / name


def run(config: RunConfig) -> Path:
    """Train, evaluate and write the run folder; returns it. Records are written last, atomically."""
    process_start = psutil.Process().create_time()
    name, spec, train = config.implementation, config.model, config.train
    framework = implementations.framework_of(name)
    from model import imdb

    source = imdb.locate(config.data)  # a missing dataset is reported before any framework loads
    policy.check(framework, config.flush_denormal)
    implementations.import_framework(name)
    policy.configure(framework, config.threads, config.flush_denormal)
    seed_everything(framework, train.seed)
    rss_after_imports = measure.rss_mb()

    import numpy as np

    from model import preprocess
    from model.weights import initial_weights

    prepared = preprocess.prepare(source, spec.vocab_size, spec.maxlen, train.val_fraction, train.seed)
    data = prepared.subset(train.train_size, train.test_size, train.seed)
    impl = implementations.create(name, spec, train, initial_weights(spec, train.seed), config.variant)
    runtime = dict(policy=policy.probe(framework), threads_requested=config.threads,
                   flush_denormal_requested=config.flush_denormal,
                   tensorflow_imported_at_ready=sys.modules.get("tensorflow") is not None)
    ready_s = time.time() - process_start

    out = Path(config.out or default_run_dir(config))
    out.mkdir(parents=True, exist_ok=True)
    progress = _progress(config.progress)

    cpu_before = measure.cpu_seconds()
    wall_before = time.perf_counter()
    with progress:
        trained, memory = measure.measure_peak(lambda: _train(impl, data, train, progress))
    # Inference gets its own high-water mark: its transient buffers differ from training's.
    inference, inference_memory = measure.measure_peak(lambda: _infer(impl, data.x_test, train))
    memory.update(rss_after_imports_mb=rss_after_imports,
                  inference={k: v for k, v in inference_memory.items() if k not in ("sample_interval_s",)})

    # After training: Keras' kernel path is known only once its layers have run.
    runtime.update(impl.info(), **{f"{module}_imported": sys.modules.get(module) is not None
                                   for module in ("keras", "tensorflow", "torch")})
    probabilities = sigmoid(inference.pop("logits"))
    quality = classification_metrics(data.y_test, probabilities)
    files = impl.save(out)
    np.savez(out / WEIGHTS_FILE, *impl.get_weights())
    np.savez(out / PREDICTIONS_FILE, labels=data.y_test, probabilities=probabilities)
    (out / VOCABULARY_FILE).write_text(json.dumps(prepared.vocabulary))
    files += [WEIGHTS_FILE, PREDICTIONS_FILE, VOCABULARY_FILE]

    steady = [s for epoch in trained["step_samples_s"] for s in epoch][train.warmup_steps:]
    train_wall = trained["train_wall_s"]
    record = dict(
        schema_version=records.SCHEMA_VERSION, status="ok", created=datetime.now(timezone.utc).isoformat(),
        implementation=name, framework=framework,
        keras_backend=framework if name.startswith("keras-") else None,
        model_spec=asdict(spec), train_spec=asdict(train), variant=config.variant,
        data=dict(source=str(source), cache_key=prepared.key, n_train=len(data.y_train), n_val=len(data.y_val),
                  n_test=len(data.y_test), padding=preprocess.PADDING, truncating=preprocess.TRUNCATING,
                  steps_per_epoch=len(data.y_train) // train.batch_size, drop_last_partial_batch=True,
                  batch_order=dict(rule="numpy default_rng([seed, epoch]).permutation(n_train)",
                                   sha256=trained["order_digests"])),
        environment=environment(), runtime=runtime,
        timing=dict(
            process_start_to_ready_s=ready_s,
            first_step_s=trained["step_samples_s"][0][0],
            steady_step_ms=measure.summarize_ms(steady),
            warmup_steps_excluded=train.warmup_steps,
            step_samples_ms=[[s * 1e3 for s in epoch] for epoch in trained["step_samples_s"]],
            epoch_s=trained["epoch_s"], validation_s=trained["validation_s"],
            train_wall_s=train_wall,
            step_time_coverage=sum(map(sum, trained["step_samples_s"])) / sum(trained["epoch_s"]),
            train_samples_per_s=trained["samples_seen"] / sum(trained["epoch_s"]),
            inference=inference,
            total_wall_s=time.perf_counter() - wall_before,
        ),
        cpu=dict(train_cpu_s=trained["train_cpu_s"], train_utilisation=trained["train_cpu_s"] / train_wall,
                 inference_cpu_s=inference["cpu_s"],
                 measured_cpu_s=measure.cpu_seconds() - cpu_before,
                 process_cpu_s=measure.cpu_seconds(), threads=config.threads),
        memory=memory,
        metrics=quality,
        curves=trained["curves"],
        early_stopping=trained["early_stopping"],
        files=files,
    )
    records.write_json_atomic(out / records.RECORD_FILE, record)
    return out


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    # Two refreshes a second: the display thread must not compete with a 2-core training step.
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}  {task.fields[rate]} steps/s"), TimeElapsedColumn(),
                    TimeRemainingColumn(), refresh_per_second=2, disable=not enabled, transient=False)


def _train(impl, data, train: TrainSpec, progress) -> dict:
    import numpy as np

    steps = len(data.y_train) // train.batch_size
    if steps < 1:
        raise ValueError(f"{len(data.y_train)} training reviews do not fill one batch of {train.batch_size}")
    result = dict(step_samples_s=[], epoch_s=[], validation_s=[], curves=[], order_digests=[], samples_seen=0)
    best = dict(loss=np.inf, epoch=0, weights=None)
    wall_start, cpu_start = time.perf_counter(), measure.cpu_seconds()
    stopped = None
    for epoch in range(1, train.epochs + 1):
        order = batch_order(train.seed, epoch, len(data.y_train))
        result["order_digests"].append(hashlib.sha256(order.tobytes()).hexdigest()[:16])
        x, y = data.x_train[order], data.y_train[order]
        task = progress.add_task(f"epoch {epoch}/{train.epochs}", total=steps, loss="-", rate="-")
        epoch_start = time.perf_counter()

        def show(step, loss, task=task, start=epoch_start):
            progress.update(task, completed=step, loss=f"{loss:.4f}",
                            rate=f"{step / (time.perf_counter() - start):.2f}")

        clock = measure.StepClock(on_step=show if not progress.disable else None)
        impl.train_epoch(x, y, clock)
        epoch_s = time.perf_counter() - epoch_start
        validation_start = time.perf_counter()
        val_logits = impl.predict_logits(data.x_val)
        val_loss = binary_cross_entropy(data.y_val, val_logits)
        val_accuracy = float(np.mean((val_logits >= 0) == (data.y_val >= 0.5)))
        result["validation_s"].append(time.perf_counter() - validation_start)
        result["step_samples_s"].append(clock.samples)
        result["epoch_s"].append(epoch_s)
        result["samples_seen"] += len(clock.samples) * train.batch_size
        result["curves"].append(dict(epoch=epoch, train_loss=clock.losses[-1], val_loss=val_loss,
                                     val_accuracy=val_accuracy, epoch_s=epoch_s))
        if not progress.disable:
            progress.console.print(f"epoch {epoch}: validation loss {val_loss:.4f}, accuracy {val_accuracy:.4f}")
        if not np.isfinite(clock.losses[-1]):
            raise FloatingPointError(f"training loss became {clock.losses[-1]} in epoch {epoch}")
        if val_loss < best["loss"]:
            best = dict(loss=val_loss, epoch=epoch, weights=impl.get_weights())
        elif epoch - best["epoch"] >= train.patience:
            stopped = epoch
            break
    restored = best["epoch"] != len(result["epoch_s"])
    if restored:
        impl.set_weights(best["weights"])
    result["train_wall_s"] = time.perf_counter() - wall_start
    result["train_cpu_s"] = measure.cpu_seconds() - cpu_start
    result["early_stopping"] = dict(monitor="val_loss", patience=train.patience, best_epoch=best["epoch"],
                                    best_val_loss=best["loss"], stopped_after_epoch=stopped,
                                    epochs_run=len(result["epoch_s"]), restored_best_weights=restored)
    return result


def _infer(impl, x_test, train: TrainSpec) -> dict:
    clock = measure.StepClock()
    cpu_start, wall_start = measure.cpu_seconds(), time.perf_counter()
    logits = impl.predict_logits(x_test, clock)
    wall = time.perf_counter() - wall_start
    latency = measure.summarize_ms(clock.samples[1:] if len(clock.samples) > 1 else clock.samples)
    return dict(logits=logits, wall_s=wall, cpu_s=measure.cpu_seconds() - cpu_start,
                throughput_per_s=len(x_test) / wall, batch_size=train.eval_batch_size,
                first_batch_ms=clock.samples[0] * 1e3, batch_latency_ms=latency,
                batch_samples_ms=[s * 1e3 for s in clock.samples])
