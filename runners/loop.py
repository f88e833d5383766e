"""The one epoch loop and the one prediction loop, shared by every implementation.

Native implementations expose ``train_step(tokens, labels) -> loss`` and
``predict_batch(tokens) -> logits``; these loops drive them, own the clock and
keep the losses. Keras keeps ``fit``/``predict`` (``drives_own_loop``): its
callbacks call the same ``Steps.begin``/``Steps.end`` at the same points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runners.measure import StepClock


@dataclass
class Steps:
    """What one pass over the data produced, step by step: wall times (the clock's) and losses."""

    clock: StepClock = field(default_factory=StepClock)
    losses: list[float] = field(default_factory=list)
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


def train_epoch(impl, x: np.ndarray, y: np.ndarray, batch_size: int, on_step=None) -> Steps:
    """One pass over ``x`` in its given order; the last partial batch is dropped, as in every implementation."""
    steps = Steps(on_step=on_step)
    usable = len(x) // batch_size * batch_size
    if getattr(impl, "drives_own_loop", False):
        impl.fit_epoch(x[:usable], y[:usable], steps)
        return steps
    for start in range(0, usable, batch_size):
        steps.begin()
        loss = impl.train_step(x[start:start + batch_size], y[start:start + batch_size])
        # float() copies the loss to the host, which waits for the whole step (forward, backward,
        # update) to finish: without it the clock could stop while queued work is still running.
        steps.end(float(loss))
    return steps


def predict(impl, x: np.ndarray, batch_size: int, clock: StepClock | None = None) -> np.ndarray:
    """Logits for every row of ``x`` (float32), in batches of ``batch_size``, each batch timed if a clock is given."""
    if getattr(impl, "drives_own_loop", False):
        return impl.predict(x, batch_size, clock)
    clock = clock or StepClock()
    out = []
    for start in range(0, len(x), batch_size):
        clock.start()
        out.append(impl.predict_batch(x[start:start + batch_size]))  # a NumPy array: the batch has finished
        clock.stop()
    return np.concatenate(out).astype(np.float32)
