"""One measured training run of one plan, from process start to a finished run folder.

The same driver runs every implementation: same data arrays, same batch
order, same initial weights, same early-stopping rule, same clocks. It runs in
named phases: prepare, train, infer, score, save, record; the record is
written last, atomically.
"""

from __future__ import annotations

import json
import random
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from model import implementations, records
from model.frameworks import FRAMEWORKS
from model.plan import RunPlan
from model.weights import gemm_flops_per_training_step
from runners.harness import canary, gate, loop, measure, policy
from runners.harness.environment import environment
from runners.harness.metrics import binary_cross_entropy, classification_metrics, sigmoid


def seed_everything(framework: str, seed: int) -> None:
    """Seed by hand: keras.utils.set_random_seed would import TensorFlow under the torch backend."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    FRAMEWORKS[framework].seed(seed)


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
    # where process start to ready went: the interpreter and this project's modules, the framework's import and
    # configuration, the data arrays, the model; and the CPU seconds (a sweep prepares columns side by side)
    ready_parts_s: dict
    pretraining: dict  # wall_s, cpu_s of building data-derived initial weights (zeros for a drawn init)



def run(plan: RunPlan, out: Path, progress: bool = True) -> Path:
    """Train, evaluate and write the run folder; returns it. Thread policy first: ``runners.harness.run``."""
    gate.tie_forks()
    ready = prepare(plan)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cpu_before, wall_before = measure.cpu_seconds(), time.perf_counter()
    trained, memory = train(ready, progress)
    inference, inference_memory = infer(ready)
    memory.update(ready.memory, inference=inference_memory)
    logits = inference.pop("logits")
    # After training: Keras' kernel path is known only once its layers have run.
    runtime = dict(ready.runtime, **ready.impl.info(), **{f"{module}_imported": sys.modules.get(module) is not None
                                                           for module in ("keras", "tensorflow", "torch", "jax")})
    quality, probabilities = score(ready, logits)
    files = save(ready, out, probabilities, sigmoid(trained.pop("val_logits")))
    timing = dict(trained.pop("timing"), process_start_to_ready_s=ready.ready_s,
                  process_start_to_ready_parts_s=ready.ready_parts_s, pretraining=ready.pretraining,
                  inference=inference, total_wall_s=time.perf_counter() - wall_before)
    cpu = dict(trained.pop("cpu"), inference_cpu_s=inference["cpu_s"],
               measured_cpu_s=measure.cpu_seconds() - cpu_before, process_cpu_s=measure.cpu_seconds(),
               threads=plan.threads)
    record(ready, out, runtime=runtime, timing=timing, cpu=cpu, memory=memory, metrics=quality, files=files,
           **trained)
    return out


def prepare(plan: RunPlan) -> Prepared:
    """Data located, framework imported and configured, data arrays and model built: the run is ready."""
    process_start, cpu_before = policy.process_start()
    marks = [time.time()]
    framework = plan.entry.framework
    from model import imdb

    source = imdb.locate(plan.data)  # a missing dataset is reported before any framework loads
    policy.check(framework, plan.flush_denormal)
    allocator = policy.set_allocator(plan.allocator)  # before the framework allocates anything
    policy.import_framework(plan.implementation)
    policy.configure(framework, plan.threads, plan.flush_denormal)
    seed_everything(framework, plan.train.seed)
    rss_after_imports = measure.rss_mb()
    marks.append(time.time())

    from model import preprocess
    from model.weights import initial_weights

    spec, train_spec = plan.model, plan.train
    prepared = preprocess.prepare(source, **preprocess.settings(spec, train_spec))
    data = prepared.subset(train_spec.train_size, train_spec.test_size, train_spec.data_seed)
    marks.append(time.time())
    # Pretraining (a data-derived embedding) is training the run pays for: timed on its own, reported beside it.
    # A drawn initialisation is not pretraining: it records none.
    pretraining_before = (time.perf_counter(), measure.cpu_seconds())
    weights = initial_weights(spec, train_spec.seed, data.x_train)
    pretraining = (dict(wall_s=time.perf_counter() - pretraining_before[0],
                        cpu_s=measure.cpu_seconds() - pretraining_before[1]) if spec.embedding_init != "uniform"
                   else dict(wall_s=0.0, cpu_s=0.0))
    impl = implementations.create(plan.implementation, spec, train_spec, weights,
                                  plan.variant, total_steps=train_spec.epochs * steps_per_epoch(plan, data))
    # What was asked is the plan's (threads, flush_denormal); what took effect is the probed policy.
    runtime = dict(framework=framework, keras_backend=plan.entry.keras_backend,
                   policy=dict(policy.probe(framework), allocator=allocator),
                   # bf16 converted in software: its timings measure the emulation, not bf16 hardware
                   bf16_emulated=plan.variant.get("precision") == "bf16" and not policy.cpu_has_bf16(),
                   tensorflow_imported_at_ready=sys.modules.get("tensorflow") is not None)
    marks.append(time.time())
    parts = dict(zip(("interpreter_s", "framework_s", "data_s", "model_s"),
                     (b - a for a, b in zip([process_start, *marks], marks))),
                 cpu_s=measure.cpu_seconds() - cpu_before)
    return Prepared(plan, source, prepared, data, impl, runtime, dict(rss_after_imports_mb=rss_after_imports),
                    ready_s=marks[-1] - process_start, ready_parts_s=parts, pretraining=pretraining)


def steps_per_epoch(plan: RunPlan, data) -> int:
    return len(data.y_train) // plan.train.batch_size


def predict(ready: Prepared, x, clock=None):
    """Logits for ``x``, length-bucketed when training is (cut to each batch's longest review)."""
    plan = ready.plan
    return loop.predict(ready.impl, x, plan.train.eval_batch_size, clock, bucket=plan.train.bucket_pool > 0,
                        multiple=plan.model.width_multiple)


def train(ready: Prepared, progress: bool) -> tuple[dict, dict]:
    """The measured training phase: (record sections it fills, its memory figures)."""
    # memory-profiler samples RSS from a forked child that only reads /proc through psutil; it never touches
    # JAX, whose warning about forking a multithreaded process is therefore noise here.
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    display = _progress(progress)
    machine_before, own_before = measure.machine_cpu_seconds(), measure.own_cpu_seconds()
    wall_before, faults_before = time.perf_counter(), policy.minor_faults()
    with display:
        trained, memory = measure.measure_peak(lambda: _epochs(ready, display))
    machine_after, own, wall = (measure.machine_cpu_seconds(), measure.own_cpu_seconds() - own_before,
                                time.perf_counter() - wall_before)
    # The allocator's cost: pages faulted in during training (validation included), per training step.
    faults, steps = policy.minor_faults() - faults_before, sum(map(len, trained["timing"]["step_samples_ms"]))
    trained["cpu"].update(train_minor_faults=faults, minor_faults_per_step=faults / steps if steps else None)
    schedule = trained["schedule"]
    if schedule["schedule"] == "interleaved" and machine_after:  # its own turns only: the others' are not load
        machine_after = {key: value - schedule["machine_waiting"][key] for key, value in machine_after.items()}
        own, wall = own - schedule["wait_cpu_s"], wall - schedule["wait_wall_s"]
    trained["cpu"]["machine_during_training"] = measure.quietness(machine_before, machine_after, own, wall)
    return trained, memory


def infer(ready: Prepared) -> tuple[dict, dict]:
    """The measured test-set inference, with its own high-water mark (its transient buffers differ from training's).

    One batch runs first, untimed in the throughput, for every implementation: it absorbs graph tracing
    for a new batch shape (TensorFlow) and is reported on its own as the first-batch latency.
    """
    batch_size, x_test = ready.plan.train.eval_batch_size, ready.data.x_test
    clock = measure.StepClock()

    def predict_test():
        first = measure.StepClock()
        predict(ready, x_test[:batch_size], first)
        cpu_start, wall_start = measure.cpu_seconds(), time.perf_counter()
        logits = predict(ready, x_test, clock)
        return logits, time.perf_counter() - wall_start, measure.cpu_seconds() - cpu_start, first.samples[0]

    (logits, wall, cpu, first_s), memory = measure.measure_peak(predict_test)
    memory.pop("sample_interval_s")
    # Above the RSS left after training, which depends on each framework's allocator: a figure for the
    # same implementation across configurations, not for ranking frameworks against each other.
    memory = {key.replace("baseline", "post_training"): value for key, value in memory.items()}
    return dict(logits=logits, wall_s=wall, cpu_s=cpu, throughput_per_s=len(x_test) / wall, batch_size=batch_size,
                first_batch_ms=first_s * 1e3, batch_latency_ms=measure.summarize_ms(clock.samples),
                batch_samples_ms=[s * 1e3 for s in clock.samples], warmup_batches_excluded=1), memory


def score(ready: Prepared, logits) -> tuple[dict, object]:
    probabilities = sigmoid(logits)
    return classification_metrics(ready.data.y_test, probabilities), probabilities


def save(ready: Prepared, out: Path, probabilities, val_probabilities) -> list[str]:
    """The canonical weights, the test predictions, the validation predictions of the restored checkpoint (what
    an ensemble or a hybrid is chosen on), the vocabulary and (if the plan asks) the framework's file."""
    import numpy as np

    files = ready.impl.save(out) if ready.plan.save_model else []
    np.savez(out / records.WEIGHTS_FILE, *ready.impl.get_weights())
    np.savez(out / records.PREDICTIONS_FILE, labels=ready.data.y_test, probabilities=probabilities)
    np.savez(out / records.VALIDATION_PREDICTIONS_FILE, labels=ready.data.y_val, probabilities=val_probabilities,
             rows=ready.data.val_index)
    (out / records.VOCABULARY_FILE).write_text(json.dumps(ready.prepared.vocabulary))
    return files + [records.WEIGHTS_FILE, records.PREDICTIONS_FILE, records.VALIDATION_PREDICTIONS_FILE,
                    records.VOCABULARY_FILE]


def record(ready: Prepared, out: Path, **sections) -> None:
    from model import preprocess

    plan, data = ready.plan, ready.data
    sections["data"] = dict(
        source=str(ready.source), cache_key=ready.prepared.key, n_train=len(data.y_train), n_val=len(data.y_val),
        n_test=len(data.y_test), padding=preprocess.PADDING, truncating=preprocess.TRUNCATING,
        steps_per_epoch=steps_per_epoch(plan, data), drop_last_partial_batch=True,
        batch_order=dict(rule="model.batches.epoch_batches: numpy default_rng([seed, epoch]).permutation(n_train)"
                         + (f", length-bucketed in pools of {plan.train.bucket_pool} batches"
                            if plan.train.bucket_pool else ""), sha256=sections.pop("order_digests")),
        tokens_per_epoch=sections.pop("tokens_per_epoch"))
    records.write_record(out, plan=plan.to_dict(), environment=environment(), **sections)


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # Two refreshes a second: the display thread must not compete with a 2-core training step.
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}  {task.fields[rate]} steps/s"), TimeElapsedColumn(),
                    TimeRemainingColumn(), refresh_per_second=2, disable=not enabled, transient=False)


class Clocks:
    """The training clocks, wall and CPU, with the spans that are not training paused off them: validation, the
    canary and, in an interleaved block, the wait for the next turn. ``paused_s[reason]`` is [wall, cpu]."""

    def __init__(self):
        self.wall_start, self.cpu_start = time.perf_counter(), measure.cpu_seconds()
        self.paused_s: dict[str, list[float]] = {}

    @contextmanager
    def paused(self, reason: str):
        """Leave the span out of both clocks; yields a dict that holds the span's own wall and cpu once it ends."""
        wall, cpu, span = time.perf_counter(), measure.cpu_seconds(), {}
        try:
            yield span
        finally:
            span.update(wall=time.perf_counter() - wall, cpu=measure.cpu_seconds() - cpu)
            spent = self.paused_s.setdefault(reason, [0.0, 0.0])
            spent[0] += span["wall"]
            spent[1] += span["cpu"]

    def paused_wall(self) -> float:
        return sum(wall for wall, _ in self.paused_s.values())

    def wall(self) -> float:
        """Training wall seconds so far."""
        return time.perf_counter() - self.wall_start - self.paused_wall()

    def cpu(self) -> float:
        return measure.cpu_seconds() - self.cpu_start - sum(cpu for _, cpu in self.paused_s.values())


@dataclass
class _Trajectory:
    """What the epochs leave for the record: one entry per epoch run (``validations``: one per check)."""

    samples: list = field(default_factory=list)  # each step's seconds
    rounds: list = field(default_factory=list)  # each step's round of turns (None where the run was alone)
    epoch_s: list = field(default_factory=list)  # training seconds, pauses left out
    tokens: list = field(default_factory=list)  # tokens the epoch's batches held (less with length bucketing)
    digests: list = field(default_factory=list)  # of the epoch's batch order, the same in every implementation
    curves: list = field(default_factory=list)
    validations: list = field(default_factory=list)
    train_wall_s: float = 0.0
    train_cpu_s: float = 0.0

    def add_epoch(self, epoch: int, seconds: float, steps, rounds: list) -> dict:
        """An epoch trained (``steps``: ``loop.train_epoch``'s account): its clocks and its curve, closed by the
        epoch's last validation; the curve is returned."""
        import numpy as np

        self.epoch_s.append(seconds)
        self.samples.append(steps.clock.samples)
        self.rounds.append(rounds)
        train_loss, last = float(np.mean(steps.losses)), self.validations[-1]
        if not np.isfinite(train_loss):
            raise FloatingPointError(f"training loss became {train_loss} in epoch {epoch}")
        self.curves.append(dict(epoch=epoch, train_loss=train_loss, val_loss=last["val_loss"],
                                val_accuracy=last["val_accuracy"], epoch_s=seconds, step_losses=steps.losses,
                                gradient_norms=steps.gradient_norms))
        return self.curves[-1]


def _epochs(ready: Prepared, display) -> dict:
    """Epochs until early stopping, validating ``validations_per_epoch`` times an epoch (the last at its end,
    which early stopping reads). Validation, canaries and an interleaved run's waits for its turn are left out of
    the training clocks."""
    import numpy as np

    from model import batches

    plan, impl, data, train_spec = ready.plan, ready.impl, ready.data, ready.plan.train
    per_epoch = steps_per_epoch(plan, data)
    every = min(train_spec.validations_per_epoch, per_epoch)
    checkpoints = {round(j * per_epoch / every) for j in range(1, every + 1)}
    log = _Trajectory()
    stopper = _EarlyStopping(train_spec.patience, train_spec.restore_best)
    watch, turn = canary.Canary(plan.threads), gate.Gate.from_environment()
    if turn:
        turn.wait()  # prepared: the sweep prepares the other columns (some beside this one), then hands out turns
    watch.start()  # with the CPU its own: an interleaved column may have prepared beside another
    clocks = Clocks()
    latest = {}  # the latest validation's logits, which early stopping keeps with the best weights

    def validate(epoch: int, step: int) -> None:
        wall, cpu = clocks.wall(), clocks.cpu()
        with clocks.paused("validation") as span:
            logits = latest["logits"] = predict(ready, data.x_val)
        log.validations.append(dict(epoch=epoch, step=(epoch - 1) * per_epoch + step, train_wall_s=wall,
                                train_cpu_s=cpu, val_loss=binary_cross_entropy(data.y_val, logits),
                                val_accuracy=float(np.mean((logits >= 0) == (data.y_val >= 0.5))),
                                validation_s=span["wall"], validation_cpu_s=span["cpu"]))

    for epoch in range(1, train_spec.epochs + 1):
        plan_batches = batches.epoch_batches(data.x_train, train_spec.batch_size, train_spec.seed, epoch,
                                             train_spec.bucket_pool, plan.model.width_multiple)
        log.digests.append(batches.digest(plan_batches))
        log.tokens.append(sum(len(rows) * width for rows, width in plan_batches))
        show, epoch_rounds = _display_step(display, epoch, train_spec, len(data.y_train)), []

        def after_step(step, loss, epoch=epoch, show=show, epoch_rounds=epoch_rounds):
            epoch_rounds.append(turn.stepped() if turn else None)
            if show:
                show(step, loss)
            if step in checkpoints:
                validate(epoch, step)
            if watch.due(clocks.wall()):
                with clocks.paused("canary"):
                    watch.during(clocks.wall())
            if turn and turn.due():
                with clocks.paused("gate"):
                    turn.wait()

        epoch_start, paused_before = time.perf_counter(), clocks.paused_wall()
        steps = loop.train_epoch(impl, list(batches.gather(data.x_train, data.y_train, plan_batches)),
                                 on_step=after_step)
        last = log.add_epoch(epoch, time.perf_counter() - epoch_start - (clocks.paused_wall() - paused_before),
                             steps, epoch_rounds)
        if not display.disable:
            display.console.print(f"epoch {epoch}: validation loss {last['val_loss']:.4f}, "
                                  f"accuracy {last['val_accuracy']:.4f}")
        if stopper.update(epoch, last["val_loss"], impl, latest["logits"]):
            break
    restored = stopper.restore(impl, len(log.epoch_s), latest["logits"])
    log.train_wall_s, log.train_cpu_s = clocks.wall(), clocks.cpu()
    watch.end(log.train_wall_s)
    return _trained(ready, log, clocks, stopper, restored, watch, turn)


def _trained(ready: Prepared, log: _Trajectory, clocks, stopper, restored: bool, watch, turn) -> dict:
    """The record sections the training phase fills."""
    plan, train_spec = ready.plan, ready.plan.train
    samples, epoch_s, tokens, validations = log.samples, log.epoch_s, log.tokens, log.validations
    train_wall, train_cpu = log.train_wall_s, log.train_cpu_s
    per_epoch = steps_per_epoch(plan, ready.data)
    warmup = records.warmup_section([s for epoch in samples for s in epoch], plan.warmup_steps)
    steady = records.steady(samples, warmup["steps"])
    per_epoch_validation = [sum(v["validation_s"] for v in validations if v["epoch"] == e)
                            for e in range(1, len(epoch_s) + 1)]
    # Per step at maxlen, scaled to the tokens the epochs' batches really held (less with length bucketing).
    flops = gemm_flops_per_training_step(plan.model, train_spec.batch_size) * (
        sum(tokens) / (len(tokens) * per_epoch * train_spec.batch_size * plan.model.maxlen))
    summary = measure.summarize_ms(steady)
    timing = dict(first_step_s=samples[0][0], steady_step_ms=summary, gemm_gflop_per_step=flops / 1e9,
                  achieved_gemm_gflops=flops / summary["median"] / 1e6 if summary["median"] else None,
                  step_samples_ms=[[s * 1e3 for s in epoch] for epoch in samples], epoch_s=epoch_s,
                  validation_s=per_epoch_validation, train_wall_s=train_wall,
                  step_time_coverage=sum(map(sum, samples)) / sum(epoch_s),
                  train_samples_per_s=sum(map(len, samples)) * train_spec.batch_size / sum(epoch_s),
                  paused_s={reason: dict(wall=wall, cpu=cpu) for reason, (wall, cpu) in clocks.paused_s.items()},
                  warmup=dict(warmup, drift=records.drift(steady)))
    if turn:  # each step's round, shaped as step_samples_ms: the analysis pairs columns round by round
        timing["step_rounds"] = log.rounds
    return dict(val_logits=stopper.best_logits,
                timing=timing, cpu=dict(train_cpu_s=train_cpu, train_utilisation=train_cpu / train_wall,
                                        validation_cpu_s=clocks.paused_s.get("validation", [0.0, 0.0])[1]),
                curves=log.curves, validations=validations, order_digests=log.digests, tokens_per_epoch=tokens,
                canary=watch.to_record(train_wall),
                schedule=turn.to_record() if turn else dict(schedule="sequential"),
                early_stopping=dict(monitor="val_loss", patience=train_spec.patience,
                                    restore_best=train_spec.restore_best, best_epoch=stopper.best_epoch,
                                    # the epoch whose weights the test set sees: the best, or the last one run
                                    kept_epoch=stopper.best_epoch if train_spec.restore_best else len(epoch_s),
                                    best_val_loss=stopper.best_loss, stopped_after_epoch=stopper.stopped,
                                    epochs_run=len(epoch_s), restored_best_weights=restored))


class _EarlyStopping:
    """Stop after ``patience`` epochs without a lower validation loss; keep the best weights to restore (or, with
    ``restore_best`` off, nothing: the run ends on its last weights)."""

    def __init__(self, patience: int, restore_best: bool = True):
        self.patience, self.restore_best, self.best_loss, self.best_epoch = patience, restore_best, float("inf"), 0
        self.best_weights, self.best_logits, self.stopped = None, None, None

    def update(self, epoch: int, val_loss: float, impl, val_logits) -> bool:
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.best_logits = val_loss, epoch, val_logits
            self.best_weights = impl.get_weights() if self.restore_best else None
        elif epoch - self.best_epoch >= self.patience:
            self.stopped = epoch
        return self.stopped is not None

    def restore(self, impl, epochs_run: int, last_logits) -> bool:
        """Put the weights the test set will see in place; ``best_logits`` becomes their validation logits."""
        if not self.restore_best:
            self.best_logits = last_logits
            return False
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
