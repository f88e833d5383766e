"""The one epoch loop and the one prediction loop, shared by every implementation.

Native implementations expose ``train_step(tokens, labels) -> loss`` and
``predict_batch(tokens) -> logits``; these loops drive them, own the clock and
keep the losses. Keras keeps ``fit``/``predict`` (``drives_own_loop``): its
callbacks call the same ``Steps.begin``/``Steps.end`` at the same points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model.batches import gather, inference_batches
from runners.harness.measure import StepClock


@dataclass
class Steps:
    """What one pass over the data produced, step by step: wall times (the clock's) and losses."""

    clock: StepClock = field(default_factory=StepClock)
    losses: list[float] = field(default_factory=list)
    # The gradients' global norm before clipping, per step, where the implementation exposes it (the natives;
    # Keras clips inside its optimizer): the clip binds on the steps where it exceeds the clip norm.
    gradient_norms: list[float] = field(default_factory=list)
    on_step: object = None  # progress display, called outside the timed span

    def begin(self) -> None:
        self.clock.start()

    def end(self, loss: float | None = None) -> None:
        """Call with the step's result already on the host (a Python float): the step is then finished."""
        self.clock.stop()
        if loss is not None:
            self.losses.append(loss)
        if self.on_step:
            self.on_step(len(self.clock.samples), loss)


def train_epoch(impl, batches: list, on_step=None) -> Steps:
    """One pass over ``batches``, a list of (tokens, labels) arrays, in their order (``model.batches``)."""
    steps = Steps(on_step=on_step)
    if getattr(impl, "drives_own_loop", False):
        impl.fit_epoch(batches, steps)
        return steps
    for tokens, labels in batches:
        steps.begin()
        loss = impl.train_step(tokens, labels)
        # float() copies the loss to the host, which waits for the whole step (forward, backward,
        # update) to finish: without it the clock could stop while queued work is still running.
        steps.end(float(loss))
        if getattr(impl, "gradient_norm", None) is not None:  # computed by the step: reading it waits for nothing
            steps.gradient_norms.append(float(impl.gradient_norm))
    return steps


def predict(impl, x: np.ndarray, batch_size: int, clock: StepClock | None = None, bucket: bool = False,
            multiple: int = 1) -> np.ndarray:
    """Logits for every row of ``x`` (float32), in batches of ``batch_size``, each batch timed if a clock is given.

    With ``bucket``, rows run in length order, each batch cut to its longest row (``model.batches``)."""
    if not bucket and getattr(impl, "drives_own_loop", False):
        return impl.predict(x, batch_size, clock)
    clock = clock or StepClock()
    plan = inference_batches(x, batch_size, bucket, multiple)
    out = np.empty(len(x), dtype=np.float32)
    for (rows, _), (tokens, _) in zip(plan, gather(x, None, plan)):
        clock.start()
        out[rows] = impl.predict_batch(tokens)  # a NumPy array: the batch has finished
        clock.stop()
    return out
