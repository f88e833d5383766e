"""One measured training run of one plan, from process start to a finished run folder.

The same driver runs every implementation: same data arrays, same batch
order, same initial weights, same early-stopping rule, same clocks. It runs in
named phases: prepare, train, infer, score, save, record; the record is
written last, atomically.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

from model import implementations, records
from model.plan import RunPlan
from model.spec import SpecError
from runners import loop, measure, policy
from runners.environment import environment
from runners.metrics import binary_cross_entropy, classification_metrics, sigmoid


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


def default_run_dir(plan: RunPlan) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    spec = plan.model
    return Path("runs") / f"{stamp}-{plan.implementation}-{spec.cell}{spec.layers}{'-bi' if spec.bidirectional else ''}"


@dataclass
class Prepared:
    """Everything the measured phases need, built before the first one starts."""

    plan: RunPlan
    source: Path
    prepared: object  # model.preprocess.Prepared: the whole cache entry (vocabulary, cache key)
    data: object  # the rows this run trains, validates and tests on
    impl: object
    runtime: dict
    memory: dict
    ready_s: float


def run(plan: RunPlan, out: Path | None = None, progress: bool = True) -> Path:
    """Train, evaluate and write the run folder; returns it."""
    ready = prepare(plan)
    out = Path(out or default_run_dir(plan))
    out.mkdir(parents=True, exist_ok=True)
    cpu_before, wall_before = measure.cpu_seconds(), time.perf_counter()
    trained, memory = train(ready, progress)
    inference, inference_memory = infer(ready)
    memory.update(ready.memory, inference=inference_memory)
    logits = inference.pop("logits")
    # After training: Keras' kernel path is known only once its layers have run.
    runtime = dict(ready.runtime, **ready.impl.info(), **{f"{module}_imported": sys.modules.get(module) is not None
                                                           for module in ("keras", "tensorflow", "torch")})
    quality, probabilities = score(ready, logits)
    files = save(ready, out, probabilities)
    timing = dict(trained.pop("timing"), process_start_to_ready_s=ready.ready_s, inference=inference,
                  total_wall_s=time.perf_counter() - wall_before)
    cpu = dict(trained.pop("cpu"), inference_cpu_s=inference["cpu_s"],
               measured_cpu_s=measure.cpu_seconds() - cpu_before, process_cpu_s=measure.cpu_seconds(),
               threads=plan.threads)
    record(ready, out, runtime=runtime, timing=timing, cpu=cpu, memory=memory, metrics=quality, files=files,
           **trained)
    return out


def prepare(plan: RunPlan) -> Prepared:
    """Data located, framework imported and configured, data arrays and model built: the run is ready."""
    process_start = psutil.Process().create_time()
    framework = plan.entry.framework
    from model import imdb

    source = imdb.locate(plan.data)  # a missing dataset is reported before any framework loads
    policy.check(framework, plan.flush_denormal)
    implementations.import_framework(plan.implementation)
    policy.configure(framework, plan.threads, plan.flush_denormal)
    seed_everything(framework, plan.train.seed)
    rss_after_imports = measure.rss_mb()

    from model import preprocess
    from model.weights import initial_weights

    spec, train_spec = plan.model, plan.train
    prepared = preprocess.prepare(source, spec.vocab_size, spec.maxlen, train_spec.val_fraction, train_spec.seed)
    data = prepared.subset(train_spec.train_size, train_spec.test_size, train_spec.seed)
    if len(data.y_train) < train_spec.batch_size:
        raise SpecError(
            f"{len(data.y_train)} training reviews do not fill one batch of {train_spec.batch_size}")
    impl = implementations.create(plan.implementation, spec, train_spec, initial_weights(spec, train_spec.seed),
                                  plan.variant)
    runtime = dict(framework=framework, keras_backend=plan.entry.keras_backend, policy=policy.probe(framework),
                   threads_requested=plan.threads, flush_denormal_requested=plan.flush_denormal,
                   tensorflow_imported_at_ready=sys.modules.get("tensorflow") is not None)
    return Prepared(plan, source, prepared, data, impl, runtime, dict(rss_after_imports_mb=rss_after_imports),
                    ready_s=time.time() - process_start)


def train(ready: Prepared, progress: bool) -> tuple[dict, dict]:
    """The measured training phase: (record sections it fills, its memory figures)."""
    display = _progress(progress)
    with display:
        trained, memory = measure.measure_peak(lambda: _epochs(ready, display))
    return trained, memory


def infer(ready: Prepared) -> tuple[dict, dict]:
    """The measured test-set inference, with its own high-water mark (its transient buffers differ from training's)."""
    batch_size = ready.plan.train.eval_batch_size
    clock = measure.StepClock()

    def predict_test():
        cpu_start, wall_start = measure.cpu_seconds(), time.perf_counter()
        logits = loop.predict(ready.impl, ready.data.x_test, batch_size, clock)
        return logits, time.perf_counter() - wall_start, measure.cpu_seconds() - cpu_start

    (logits, wall, cpu), memory = measure.measure_peak(predict_test)
    memory.pop("sample_interval_s")
    samples = clock.samples
    latency = measure.summarize_ms(samples[1:] if len(samples) > 1 else samples)
    return dict(logits=logits, wall_s=wall, cpu_s=cpu, throughput_per_s=len(ready.data.x_test) / wall,
                batch_size=batch_size, first_batch_ms=samples[0] * 1e3, batch_latency_ms=latency,
                batch_samples_ms=[s * 1e3 for s in samples]), memory


def score(ready: Prepared, logits) -> tuple[dict, object]:
    probabilities = sigmoid(logits)
    return classification_metrics(ready.data.y_test, probabilities), probabilities


def save(ready: Prepared, out: Path, probabilities) -> list[str]:
    """The framework's own model file, the canonical weights, the test predictions and the vocabulary."""
    import numpy as np

    files = ready.impl.save(out)
    np.savez(out / records.WEIGHTS_FILE, *ready.impl.get_weights())
    np.savez(out / records.PREDICTIONS_FILE, labels=ready.data.y_test, probabilities=probabilities)
    (out / records.VOCABULARY_FILE).write_text(json.dumps(ready.prepared.vocabulary))
    return files + [records.WEIGHTS_FILE, records.PREDICTIONS_FILE, records.VOCABULARY_FILE]


def record(ready: Prepared, out: Path, **sections) -> None:
    from model import preprocess

    plan, data = ready.plan, ready.data
    sections["data"] = dict(
        source=str(ready.source), cache_key=ready.prepared.key, n_train=len(data.y_train), n_val=len(data.y_val),
        n_test=len(data.y_test), padding=preprocess.PADDING, truncating=preprocess.TRUNCATING,
        steps_per_epoch=len(data.y_train) // plan.train.batch_size, drop_last_partial_batch=True,
        batch_order=dict(rule="numpy default_rng([seed, epoch]).permutation(n_train)",
                         sha256=sections.pop("order_digests")))
    records.write_record(out, plan=plan.to_dict(), environment=environment(), **sections)


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    # Two refreshes a second: the display thread must not compete with a 2-core training step.
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}  {task.fields[rate]} steps/s"), TimeElapsedColumn(),
                    TimeRemainingColumn(), refresh_per_second=2, disable=not enabled, transient=False)


def _epochs(ready: Prepared, display) -> dict:
    """Epochs until early stopping; validation after each, the best weights restored at the end."""
    import numpy as np

    plan, impl, data, train_spec = ready.plan, ready.impl, ready.data, ready.plan.train
    samples, epoch_s, validation_s, curves, digests = [], [], [], [], []
    stopper = _EarlyStopping(train_spec.patience)
    wall_start, cpu_start = time.perf_counter(), measure.cpu_seconds()
    for epoch in range(1, train_spec.epochs + 1):
        order = batch_order(train_spec.seed, epoch, len(data.y_train))
        digests.append(hashlib.sha256(order.tobytes()).hexdigest()[:16])
        epoch_start = time.perf_counter()
        steps = loop.train_epoch(impl, data.x_train[order], data.y_train[order], train_spec.batch_size,
                                 on_step=_display_step(display, epoch, train_spec, len(data.y_train)))
        epoch_s.append(time.perf_counter() - epoch_start)
        samples.append(steps.clock.samples)
        train_loss = float(np.mean(steps.losses))
        if not np.isfinite(train_loss):
            raise FloatingPointError(f"training loss became {train_loss} in epoch {epoch}")

        validation_start = time.perf_counter()
        val_logits = loop.predict(impl, data.x_val, train_spec.eval_batch_size)
        val_loss = binary_cross_entropy(data.y_val, val_logits)
        val_accuracy = float(np.mean((val_logits >= 0) == (data.y_val >= 0.5)))
        validation_s.append(time.perf_counter() - validation_start)
        curves.append(dict(epoch=epoch, train_loss=train_loss, val_loss=val_loss, val_accuracy=val_accuracy,
                           epoch_s=epoch_s[-1], step_losses=steps.losses))
        if not display.disable:
            display.console.print(f"epoch {epoch}: validation loss {val_loss:.4f}, accuracy {val_accuracy:.4f}")
        if stopper.update(epoch, val_loss, impl):
            break
    restored = stopper.restore(impl, len(epoch_s))
    train_wall, train_cpu = time.perf_counter() - wall_start, measure.cpu_seconds() - cpu_start
    steady = records.steady(samples, plan.warmup_steps)
    timing = dict(first_step_s=samples[0][0], steady_step_ms=measure.summarize_ms(steady),
                  step_samples_ms=[[s * 1e3 for s in epoch] for epoch in samples], epoch_s=epoch_s,
                  validation_s=validation_s, train_wall_s=train_wall,
                  step_time_coverage=sum(map(sum, samples)) / sum(epoch_s),
                  train_samples_per_s=sum(map(len, samples)) * train_spec.batch_size / sum(epoch_s))
    return dict(timing=timing, cpu=dict(train_cpu_s=train_cpu, train_utilisation=train_cpu / train_wall),
                curves=curves, order_digests=digests,
                early_stopping=dict(monitor="val_loss", patience=train_spec.patience, best_epoch=stopper.best_epoch,
                                    best_val_loss=stopper.best_loss, stopped_after_epoch=stopper.stopped,
                                    epochs_run=len(epoch_s), restored_best_weights=restored))


class _EarlyStopping:
    """Stop after ``patience`` epochs without a lower validation loss; keep the best weights to restore."""

    def __init__(self, patience: int):
        self.patience, self.best_loss, self.best_epoch, self.best_weights, self.stopped = patience, float("inf"), 0, None, None

    def update(self, epoch: int, val_loss: float, impl) -> bool:
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.best_weights = val_loss, epoch, impl.get_weights()
        elif epoch - self.best_epoch >= self.patience:
            self.stopped = epoch
        return self.stopped is not None

    def restore(self, impl, epochs_run: int) -> bool:
        if self.best_epoch == epochs_run:
            return False
        impl.set_weights(self.best_weights)
        return True


def _display_step(display, epoch: int, train_spec, n_train: int):
    if display.disable:
        return None
    task = display.add_task(f"epoch {epoch}/{train_spec.epochs}", total=n_train // train_spec.batch_size,
                            loss="-", rate="-")
    start = time.perf_counter()

    def show(step, loss):
        display.update(task, completed=step, loss=f"{loss:.4f}", rate=f"{step / (time.perf_counter() - start):.2f}")

    return show
