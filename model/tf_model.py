"""The network in native TensorFlow: ``tf.Module`` variables, ``tf.function`` + ``GradientTape``.

No Keras: in TF 2.21, ``tf.keras`` layers, initialisers and optimizers *are*
Keras 3, and ``tf.compat.v1`` RNN cells are gone. The cells are written out
with TF ops over a ``tf.while_loop``; Adam is TensorFlow's own fused
``ResourceApplyAdam`` kernel (the same formula as Keras' Adam, epsilon on the
raw sqrt(v)); clipping is ``tf.clip_by_global_norm``. Variables use the
canonical (Keras) layout, so weights load without conversion, except for the
fused ``BlockLSTM`` formulation, which wants gates (i, c, f, o).

Formulations measured on this 2-core machine (1 layer, 64 units, embedding
64, batch 64, maxlen 200; median ms per training step over 20 steps after 4
warm-up steps, 2 threads; ``python -m runners.bench_tf --cell CELL``). All
agree with the plain loop to 1e-6 after one Adam step; the fastest per cell
(``TF_FASTEST`` in ``model/spec.py``) is the default:

    formulation                        LSTM    GRU    SimpleRNN
    while_loop, x@W per step           46.8    49.1   29.5 (29.0 on a 30-step rerun)
    while_loop, x@W per step + XLA    110.1    87.6   78.7
    while_loop, x@W precomputed        60.7    61.5   26.1 (26.4)
    while_loop, x@W precomputed + XLA  97.9    94.7   71.5
    tf.raw_ops.BlockLSTM (fused op)    75.8     -      -

bf16 (``precision="bf16"``) is written as Keras' mixed precision does it:
the fp32 variables are cast to bf16 where the forward pass reads them, the
network computes in bf16, and the logits are cast back to fp32 for the loss;
the gradients flow through the casts to the fp32 variables and Adam.

The step functions are traced per concrete batch shape: with a
``(None, maxlen)`` input signature the same LSTM step took 62.7 ms instead of
48.4 ms.

``BlockLSTMV2`` is not a candidate: its registered gradient is v1's, with a
different gate layout, so its gradients are wrong (see
``../shared/notes/keras-rnn-internals.md``); ``BlockLSTM`` has no XLA kernel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from model.preprocess import PAD
from model.spec import TF_FASTEST, ModelSpec, TrainSpec, learning_rate_at, ngram_ids
from model.spec import TF_FORMULATIONS as FORMULATIONS


def _cell_step(cell: str, x_projection, h, c, recurrent, recurrent_bias):
    """One timestep given x@W (+ input bias) already computed; returns (h, c)."""
    if cell == "rnn":
        return tf.tanh(x_projection + tf.matmul(h, recurrent)), c
    if cell == "lstm":
        i, f, g, o = tf.split(x_projection + tf.matmul(h, recurrent), 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c
    # GRU with the reset gate applied after the recurrent matmul (Keras reset_after=True, torch, cuDNN).
    xz, xr, xh = tf.split(x_projection, 3, axis=1)
    hz, hr, hh = tf.split(tf.matmul(h, recurrent) + recurrent_bias, 3, axis=1)
    z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
    return z * h + (1.0 - z) * tf.tanh(xh + r * hh), c


def _while_loop_layer(cell, x, kernel, recurrent, bias, precompute: bool):
    """x: (time, batch, features) -> (time, batch, units)."""
    units = recurrent.shape[0]
    input_bias, recurrent_bias = (bias[0], bias[1]) if cell == "gru" else (bias, None)
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    if precompute:  # one big matmul for all timesteps, then only h@U inside the loop
        x = tf.reshape(tf.matmul(tf.reshape(x, (-1, x.shape[-1])), kernel) + input_bias, (steps, batch, -1))
    inputs = tf.TensorArray(x.dtype, size=x.shape[0] or steps).unstack(x)
    outputs = tf.TensorArray(x.dtype, size=x.shape[0] or steps)
    zeros = tf.zeros((batch, units), x.dtype)

    def body(t, h, c, outputs):
        x_t = inputs.read(t)
        projection = x_t if precompute else tf.matmul(x_t, kernel) + input_bias
        h, c = _cell_step(cell, projection, h, c, recurrent, recurrent_bias)
        return t + 1, h, c, outputs.write(t, h)

    # maxlen is static (input signature), which XLA needs as the loop bound.
    _, _, _, outputs = tf.while_loop(lambda t, *_: t < steps, body, (0, zeros, zeros, outputs),
                                     parallel_iterations=32, maximum_iterations=x.shape[0])
    return outputs.stack()


def _block_lstm_layer(x, kernel, recurrent, bias):
    """tf.raw_ops.BlockLSTM (v1; V2's gradient is wrong in TF 2.21): gates reordered to (i, c, f, o)."""
    units = recurrent.shape[0]
    order = lambda m: tf.concat([m[..., :units], m[..., 2 * units:3 * units], m[..., units:2 * units],  # noqa: E731
                                 m[..., 3 * units:]], axis=-1)
    batch = tf.shape(x)[1]
    zeros = tf.zeros((batch, units), x.dtype)
    peephole = tf.zeros((units,), x.dtype)
    outputs = tf.raw_ops.BlockLSTM(seq_len_max=tf.cast(tf.shape(x)[0], tf.int64), x=x, cs_prev=zeros,
                                   h_prev=zeros, w=order(tf.concat([kernel, recurrent], axis=0)),
                                   wci=peephole, wcf=peephole, wco=peephole, b=order(bias),
                                   forget_bias=0.0, cell_clip=-1.0, use_peephole=False)
    return outputs.h


class SentimentRNN(tf.Module):
    """Embedding -> recurrent stack -> max over time -> dropout -> logit, on canonical weights."""

    def __init__(self, spec: ModelSpec, weights: list[np.ndarray], formulation: str | None = None,
                 precision: str = "fp32"):
        super().__init__(name=f"imdb_{spec.cell}")
        self.compute_dtype = tf.bfloat16 if precision == "bf16" else tf.float32
        formulation = formulation or TF_FASTEST[spec.cell]
        if formulation not in FORMULATIONS:
            raise ValueError(f"unknown formulation {formulation!r}; choose one of {', '.join(FORMULATIONS)}")
        if formulation == "block" and spec.cell != "lstm":
            raise ValueError("the fused BlockLSTM formulation exists only for the LSTM cell")
        self.spec, self.formulation = spec, formulation
        self.weights = [tf.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]

    def __call__(self, tokens, training: bool = False, dropout_seed=None):
        spec = self.spec
        weights = [tf.cast(w, self.compute_dtype) for w in self.weights]  # no-ops in fp32
        x = tf.gather(weights[0], tokens)  # (batch, time, embedding)
        if spec.ngram_buckets:  # each position's n-grams, n = 2..order, ending at it
            current = tf.cast(tokens, tf.int64)
            back = [current] + [tf.pad(current[:, :-k], [[0, 0], [k, 0]], constant_values=PAD)
                                for k in range(1, spec.ngram_order)]
            for n in range(2, spec.ngram_order + 1):
                history = back[n - 1::-1]  # oldest first
                real = tf.cast(tf.reduce_all(tf.stack([h != PAD for h in history]), axis=0), x.dtype)[..., None]
                x = x + tf.gather(weights[1], ngram_ids(history, spec)) * real
        if training and spec.embedding_dropout > 0:
            x = tf.nn.experimental.stateless_dropout(x, rate=spec.embedding_dropout,
                                                     seed=tf.random.experimental.stateless_fold_in(dropout_seed, 1))
        if spec.segment_len:  # each segment a row of its own: (batch * segments, segment_len, embedding)
            x = tf.reshape(x, (-1, spec.segment_len, x.shape[-1]))
        x = tf.transpose(x, (1, 0, 2))  # time-major for the loop
        rest = iter(weights[spec.embeddings:-2])
        for _ in range(spec.layers):
            directions = []
            for direction in range(spec.directions):
                kernel, recurrent, bias = next(rest), next(rest), next(rest)
                sequence = tf.reverse(x, axis=[0]) if direction else x
                if self.formulation == "block":
                    y = _block_lstm_layer(sequence, kernel, recurrent, bias)
                else:
                    y = _while_loop_layer(spec.cell, sequence, kernel, recurrent, bias,
                                          precompute=self.formulation == "precomputed")
                directions.append(tf.reverse(y, axis=[0]) if direction else y)
            x = tf.concat(directions, axis=-1) if len(directions) > 1 else directions[0]
        outputs = x
        x = tf.reduce_max(x, axis=0)  # max over time: (rows, directions * units)
        if spec.segment_len:  # and over a review's segments
            x = tf.reduce_max(tf.reshape(x, (tf.shape(tokens)[0], -1, x.shape[-1])), axis=1)
        if spec.pooling == "max-mean":  # and the mean over the real tokens
            outputs = tf.reshape(tf.transpose(outputs, (1, 0, 2)), (tf.shape(tokens)[0], -1, x.shape[-1]))
            real = tf.cast(tokens != PAD, tf.float32)[..., None]  # summed in fp32: bf16 cannot count past 256
            mean = tf.reduce_sum(tf.cast(outputs, tf.float32) * real, axis=1) / tf.maximum(tf.reduce_sum(real, 1), 1.0)
            x = tf.concat([x, tf.cast(mean, x.dtype)], axis=-1)
        if training and spec.dropout > 0:
            x = tf.nn.experimental.stateless_dropout(x, rate=spec.dropout, seed=dropout_seed)
        return tf.cast(tf.squeeze(tf.matmul(x, weights[-2]) + weights[-1], axis=-1), tf.float32)


class TensorFlowImplementation:
    """Native TensorFlow: one compiled train step, Adam by ``ResourceApplyAdam``."""


    def __init__(self, spec: ModelSpec, train: TrainSpec, weights: list[np.ndarray],
                 formulation: str | None = None, jit_compile: bool = False, graph: bool = True,
                 precision: str = "fp32", total_steps: int = 1):
        self.spec, self.train, self.jit_compile, self.graph = spec, train, jit_compile, graph
        self.total_steps, self.steps, self.precision = total_steps, 0, precision
        self.network = SentimentRNN(spec, weights, formulation, precision)
        variables = self.network.weights
        self.momentums = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.velocities = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        # Traced per concrete batch shape, not for a (None, maxlen) signature: the shape-polymorphic
        # graph measured 62.7 ms per LSTM step against 48.4 ms with the batch size known (batch 64).
        # Training batches all have one shape (the last partial batch is dropped), so it traces once.
        predict = lambda t: self.network(t, training=False)  # noqa: E731
        if graph:
            self._train_step = tf.function(self._train_step_eager, jit_compile=jit_compile)
            self._predict = tf.function(predict, jit_compile=jit_compile)
        else:  # eager: every op dispatched from Python, the while_loop run as a Python loop
            self._train_step, self._predict = self._train_step_eager, predict

    def _train_step_eager(self, tokens, labels, learning_rate):
        train, variables = self.train, self.network.weights
        self.step.assign_add(1)
        seed = tf.stack([tf.constant(train.seed, tf.int64), self.step])
        loss, gradients = self._loss_and_gradients(tokens, labels, seed)
        gradients, norm = tf.clip_by_global_norm(gradients, train.clip_global_norm)
        step = tf.cast(self.step, tf.float32)
        beta_1_power, beta_2_power = train.beta_1 ** step, train.beta_2 ** step
        for variable, m, v, gradient in zip(variables, self.momentums, self.velocities, gradients):
            tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power,
                                         beta2_power=beta_2_power, lr=learning_rate, beta1=train.beta_1,
                                         beta2=train.beta_2, epsilon=train.epsilon, grad=gradient)
        return loss, norm

    def _loss_and_gradients(self, tokens, labels, dropout_seed):
        with tf.GradientTape() as tape:
            logits = self.network(tokens, training=True, dropout_seed=dropout_seed)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
        # The embedding's gradient arrives as IndexedSlices; Keras' Adam densifies it, so do we.
        return loss, [tf.convert_to_tensor(g) for g in tape.gradient(loss, self.network.weights)]

    def gradients(self, tokens: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        """d loss / d each canonical weight on one batch, before clipping (training mode; no step is taken)."""
        _, gradients = self._loss_and_gradients(tf.convert_to_tensor(tokens), tf.convert_to_tensor(labels),
                                                tf.constant([self.train.seed, 0], tf.int64))
        return [g.numpy() for g in gradients]

    def train_step(self, tokens: np.ndarray, labels: np.ndarray) -> tf.Tensor:
        """One Adam step on one batch; returns the loss (a scalar tensor, not yet read). The gradients' global
        norm before clipping is left in ``gradient_norm`` (the loop reads it after the step)."""
        # The learning rate is an argument (a tensor: no retracing) so that one formula serves every step.
        learning_rate = learning_rate_at(self.train, self.steps, self.total_steps)
        self.steps += 1
        loss, self.gradient_norm = self._train_step(tf.convert_to_tensor(tokens), tf.convert_to_tensor(labels),
                                                    tf.constant(learning_rate, tf.float32))
        return loss

    def predict_batch(self, tokens: np.ndarray) -> np.ndarray:
        return self._predict(tf.convert_to_tensor(tokens)).numpy()

    def get_weights(self) -> list[np.ndarray]:
        return [v.numpy().copy() for v in self.network.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        for variable, value in zip(self.network.weights, weights):
            variable.assign(value)

    def save(self, run_dir: Path) -> list[str]:
        tf.train.Checkpoint(network=self.network).write(str(run_dir / "tf_checkpoint" / "weights"))
        return ["tf_checkpoint"]

    def info(self) -> dict:
        if not self.spec.layers:
            path = "no recurrent layer (the embeddings pooled)"
        elif self.network.formulation == "block":
            path = "native TF tf.raw_ops.BlockLSTM fused op"
        else:
            precomputed = self.network.formulation == "precomputed"
            projection = "x@W precomputed for all steps" if precomputed else "x@W per step"
            where = "in a tf.function graph" if self.graph else "run eagerly (no tf.function)"
            path = f"native TF tf.while_loop cell ({projection}, parallel_iterations=32) {where}"
        computing = "" if self.precision == "fp32" else ", computing in bf16 (fp32 variables cast per step)"
        return dict(kernel_path=path + (" compiled by XLA" if self.jit_compile else "") + computing,
                    formulation=self.network.formulation, jit_compile=self.jit_compile, precision=self.precision,
                    graph=self.graph, training_api=("tf.function" if self.graph else "eager")
                    + " + GradientTape + ResourceApplyAdam",
                    parameter_count=int(sum(np.prod(v.shape) for v in self.network.weights)))
