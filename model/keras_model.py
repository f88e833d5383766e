"""The one Keras 3 model definition, and its training through ``fit``; runs unchanged on any backend.

``KERAS_BACKEND`` must be set before this module is imported
(``runners.harness.policy.import_framework`` does it).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from model.preprocess import PAD
from model.spec import ModelSpec, TrainSpec, ngram_ids, warmup_steps

RECURRENT_LAYERS = {"rnn": layers.SimpleRNN, "gru": layers.GRU, "lstm": layers.LSTM}

# Keras' RNN layers try a fused (cuDNN) kernel first when use_cudnn="auto". On
# the CPU the torch backend then falls back to a per-timestep loop that is
# 2.2x slower than its generic loop (use_cudnn=False); on TensorFlow both
# settings run the same tf.while_loop. "generic" is the fast default here,
# "auto" is Keras' own default, kept as a variant to measure; "fused" is
# "auto" with model/keras_fused.py's patch of the torch backend installed.
RNN_PATHS = {"generic": False, "auto": "auto", "fused": "auto"}


@keras.saving.register_keras_serializable(package="rnnbench")
class Segments(layers.Layer):
    """(batch, time, features) -> (batch * time / length, length, features): each segment a row of its own."""

    def __init__(self, length: int, **kwargs):
        super().__init__(**kwargs)
        self.length = length

    def call(self, x):
        return ops.reshape(x, (-1, self.length, x.shape[-1]))

    def compute_output_shape(self, shape):
        return (None, self.length, shape[-1])

    def get_config(self):
        return {**super().get_config(), "length": self.length}


@keras.saving.register_keras_serializable(package="rnnbench")
class MaxOverReview(layers.Layer):
    """[(batch * segments, length, features), tokens (batch, time)] -> (batch, features): the max over every
    timestep of every segment of a review; with ``mean``, beside it the mean over the review's real tokens
    (batch, 2 * features)."""

    def __init__(self, mean: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mean = mean

    def call(self, inputs):
        x, tokens = inputs
        x = ops.reshape(x, (ops.shape(tokens)[0], -1, x.shape[-1]))
        if not self.mean:
            return ops.max(x, axis=1)
        real = ops.expand_dims(ops.cast(ops.not_equal(tokens, PAD), "float32"), -1)  # fp32: bf16 counts to 256
        mean = ops.sum(ops.cast(x, "float32") * real, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)
        return ops.concatenate([ops.max(x, axis=1), ops.cast(mean, x.dtype)], axis=-1)

    def compute_output_shape(self, shapes):
        return (shapes[1][0], shapes[0][-1] * (2 if self.mean else 1))

    def get_config(self):
        return {**super().get_config(), "mean": self.mean}


@keras.saving.register_keras_serializable(package="rnnbench")
class NgramEmbedding(layers.Layer):
    """tokens (batch, time) -> (batch, time, dim): the sum of the learned vectors of the n-grams (n = 2..order)
    each token ends, hashed into ``buckets`` shared rows (``model.spec.ngram_ids``); an n-gram touching padding
    adds nothing."""

    def __init__(self, vocab_size: int, buckets: int, order: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.buckets, self.order, self.dim = vocab_size, buckets, order, dim
        self.spec = ModelSpec(vocab_size=vocab_size, ngram_buckets=buckets, ngram_order=order)

    def build(self, shape):
        self.embeddings = self.add_weight(shape=(self.buckets, self.dim), initializer="zeros", name="embeddings")

    def call(self, tokens):
        current = ops.cast(tokens, "int64")
        back = [current] + [ops.pad(current[:, :-k], [[0, 0], [k, 0]], constant_values=PAD)
                            for k in range(1, self.order)]
        total = 0
        for n in range(2, self.order + 1):
            history = back[n - 1::-1]  # oldest first
            real = ops.cast(ops.all(ops.stack([ops.not_equal(h, PAD) for h in history]), axis=0), self.compute_dtype)
            total = total + ops.take(self.embeddings, ngram_ids(history, self.spec), axis=0) * ops.expand_dims(real, -1)
        return total

    def compute_output_shape(self, shape):
        return (*shape, self.dim)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "buckets": self.buckets, "order": self.order,
                "dim": self.dim}


# bf16: Keras' mixed_bfloat16 policy on every layer (variables in fp32, computation in bf16); the loss casts
# the logits to fp32, as the native implementations do.
DTYPE_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}


def build_model(spec: ModelSpec, rnn_path: str = "generic", variable_width: bool = False,
                precision: str = "fp32") -> keras.Model:
    options = {} if spec.cell == "rnn" else {"use_cudnn": RNN_PATHS[rnn_path]}
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(DTYPE_POLICIES[precision])
    try:
        return _network(spec, options, variable_width)
    finally:
        keras.config.set_dtype_policy(previous)


def _network(spec: ModelSpec, options: dict, variable_width: bool) -> keras.Model:
    # Integer token ids, padded at the front to maxlen (or, for length-bucketed batches, to the batch's width).
    tokens = keras.Input(shape=(None if variable_width else spec.maxlen,), dtype="int32", name="tokens")
    # Each token id becomes a learned embedding_dim vector.
    x = layers.Embedding(spec.vocab_size, spec.embedding_dim, name="embedding")(tokens)
    if spec.ngram_buckets:  # plus the vectors of the n-grams each token ends
        ngrams = NgramEmbedding(spec.vocab_size, spec.ngram_buckets, spec.ngram_order, spec.embedding_dim,
                                name="ngrams")(tokens)
        x = layers.Add(name="words_and_ngrams")([x, ngrams])
    if spec.embedding_dropout:
        x = layers.Dropout(spec.embedding_dropout, name="embedding_dropout")(x)
    if spec.segment_len:
        x = Segments(spec.segment_len, name="segments")(x)
    # A stack of recurrent layers, each returning its whole output sequence.
    for depth in range(1, spec.layers + 1):
        recurrent = RECURRENT_LAYERS[spec.cell](spec.units, return_sequences=True,
                                                name=f"{spec.cell}_{depth}", **options)
        if spec.bidirectional:
            recurrent = layers.Bidirectional(recurrent, name=f"bidirectional_{spec.cell}_{depth}")
        x = recurrent(x)
    # Pool over time: the strongest evidence anywhere in the review, not just the last state (and, with max-mean,
    # the weight of all of it).
    if spec.segment_len or spec.pooling == "max-mean":
        x = MaxOverReview(spec.pooling == "max-mean", name="max_over_review")([x, tokens])
    else:
        x = layers.GlobalMaxPooling1D(name="max_over_time")(x)
    x = layers.Dropout(spec.dropout, name="dropout")(x)
    # One logit; the loss applies the sigmoid.
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model(tokens, logit, name=f"imdb_{spec.cell}")


class _StepReporter(keras.callbacks.Callback):
    """Hands each training or prediction batch's boundaries (and training loss) to the runner's loop."""

    def __init__(self, steps=None, clock=None):
        super().__init__()
        self.steps, self.clock = steps, clock
        self.previous_mean = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self.steps.begin()

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the running mean over the epoch; every batch has the same size, so the
        # batch's own loss is n * mean_n - (n - 1) * mean_(n-1). float() waits for the step to finish.
        mean = float(logs["loss"])
        loss, self.previous_mean = (batch + 1) * mean - batch * self.previous_mean, mean
        self.steps.end(loss)

    def on_predict_batch_begin(self, batch, logs=None):
        self.clock.start()

    def on_predict_batch_end(self, batch, logs=None):
        self.clock.stop()


class _KernelProbe:
    """Counts which of the backend's RNN functions ran, by wrapping them by name (once per process)."""

    NAMES = ("lstm", "gru", "rnn", "_fallback_lstm", "_fallback_gru", "_cudnn_lstm", "_cudnn_gru")
    calls: dict[str, int] = {}

    @classmethod
    def install(cls) -> None:
        import importlib

        backend_module = importlib.import_module(f"keras.src.backend.{keras.backend.backend()}.rnn")
        for module in (importlib.import_module("keras.src.backend"), backend_module):
            for name in cls.NAMES:
                function = getattr(module, name, None)
                if callable(function) and not getattr(function, "_counted", False):
                    setattr(module, name, cls._counting(function, name))

    @classmethod
    def _counting(cls, function, name):
        def counted(*args, **kwargs):
            result = function(*args, **kwargs)  # a NotImplementedError (no fused kernel) is not counted
            cls.calls[name] = cls.calls.get(name, 0) + 1
            return result

        counted._counted = True
        return counted

    def __init__(self):
        self.install()
        self.start = dict(self.calls)

    @property
    def ran(self) -> dict[str, int]:
        """Calls since this probe was made."""
        return {name: count - self.start.get(name, 0) for name, count in self.calls.items()
                if count > self.start.get(name, 0)}

    def describe(self, jit: bool = False, model=None) -> str:
        ran = set(self.ran)
        if ran & {"_cudnn_lstm", "_cudnn_gru"} and keras.backend.backend() == "torch":
            return ("keras-torch-fused patch: torch._VF.lstm/gru on CPU tensors, one fused call per layer; "
                    f"observed: {_fused_kernel(model)}")
        if ran & {"_cudnn_lstm", "_cudnn_gru"} or (keras.backend.backend() == "tensorflow" and ran & {"lstm", "gru"}):
            return "fused cuDNN kernel"
        if ran & {"_fallback_lstm", "_fallback_gru"}:
            return "keras torch-backend _fallback_lstm/_fallback_gru: Python loop over timesteps, eager"
        if "rnn" in ran:
            if keras.backend.backend() == "jax":
                compiled = "inside the train step compiled by XLA" if jit else "eager, op by op"
                return f"keras generic rnn: jax.lax.scan over timesteps calling the cell, {compiled}"
            if keras.backend.backend() == "tensorflow":
                return "keras generic rnn: tf.while_loop over timesteps calling the cell, in a tf.function graph"
            return "keras generic rnn: Python loop over timesteps calling the cell, eager torch ops"
        return "unknown (no RNN backend function observed)"


def _fused_kernel(model) -> str:
    """The kernel under the patched layer, read from the autograd graph of a tiny forward through the model's
    first recurrent layer (as native torch's is): torch is the backend here, so importing it costs nothing."""
    import torch

    from model.torch_model import autograd_kernel

    layer = next((layer for layer in (model.layers if model is not None else ())
                  if isinstance(getattr(layer, "forward_layer", layer), (layers.LSTM, layers.GRU))), None)
    if layer is None:
        return "no recurrent layer found"
    width = layer.input.shape[-1]
    with torch.enable_grad():
        output = layer(torch.zeros((2, 4, width), requires_grad=True))
    return autograd_kernel(output)


class KerasImplementation:
    """Keras' own training path: compile + fit, on whichever backend Keras was imported with."""

    drives_own_loop = True  # fit() and predict() run the batches; runners.harness.loop only listens

    def __init__(self, spec: ModelSpec, train: TrainSpec, weights: list[np.ndarray], rnn_path: str = "generic",
                 jit_compile: bool | str = False, precision: str = "fp32", total_steps: int = 1):
        self.spec, self.train, self.rnn_path, self.precision = spec, train, rnn_path, precision
        if rnn_path == "fused":
            if keras.backend.backend() != "torch":
                raise ValueError("the fused RNN path is a patch of Keras' torch backend")
            from model import keras_fused

            keras_fused.install()  # before the probe, which then counts the fused calls too
        self.probe = _KernelProbe()
        self.model = build_model(spec, rnn_path, variable_width=train.bucket_pool > 0, precision=precision)
        self.model.set_weights(weights)
        learning_rate = train.learning_rate
        if train.schedule == "warmup_cosine":  # model.spec.learning_rate_at is this formula
            warmup = warmup_steps(train, total_steps)
            learning_rate = keras.optimizers.schedules.CosineDecay(
                0.0, total_steps - warmup, warmup_target=train.learning_rate, warmup_steps=warmup)
        self.model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate, beta_1=train.beta_1,
                                            beta_2=train.beta_2, epsilon=train.epsilon,
                                            global_clipnorm=train.clip_global_norm),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            # False for torch and TensorFlow (XLA / torch.compile measured slower for these RNNs on the CPU);
            # "auto" for jax, whose eager mode runs op by op: Keras then resolves it to True.
            jit_compile=jit_compile,
        )

    def fit_epoch(self, batches: list, steps) -> None:
        """One pass over the (tokens, labels) batches in their order, reporting each step to ``steps``."""
        reporter = _StepReporter(steps=steps)
        if len({tokens.shape for tokens, _ in batches}) == 1:  # one shape: Keras' own array path
            x, y = (np.concatenate(part) for part in zip(*batches))
            self.model.fit(x, y, batch_size=len(batches[0][1]), epochs=1, shuffle=False, verbose=0,
                           callbacks=[reporter])
            return
        # Length-bucketed batches of several widths: fit's data adapters fix the width from its first two
        # batches on the TensorFlow backend, so each batch goes through Keras' own train_on_batch.
        for tokens, labels in batches:
            steps.begin()
            steps.end(float(self.model.train_on_batch(tokens, labels, return_dict=True)["loss"]))

    def predict(self, x: np.ndarray, batch_size: int, clock=None) -> np.ndarray:
        # Inside fit (validation within an epoch) the jax backend holds the weights outside the model until
        # they are synced back; torch and TensorFlow train the model's variables in place.
        getattr(self.model, "jax_state_sync", lambda: None)()
        callbacks = [_StepReporter(clock=clock)] if clock else []
        logits = self.model.predict(x, batch_size=batch_size, verbose=0, callbacks=callbacks)
        return np.asarray(logits, dtype=np.float32).reshape(-1)

    def gradients(self, tokens: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        """d loss / d each canonical weight on one batch, before clipping (training mode; no step is taken).
        Keras has no backend-neutral gradient call: each backend's own autodiff, as its trainer uses it."""
        getattr(self.model, "jax_state_sync", lambda: None)()
        variables, backend = self.model.trainable_variables, keras.backend.backend()
        loss = lambda logits: self.model.loss(labels, logits)  # noqa: E731
        if backend == "torch":
            import torch

            values = [v.value for v in variables]
            gradients = torch.autograd.grad(loss(self.model(tokens, training=True)), values)
        elif backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                value = loss(self.model(tokens, training=True))
            gradients = [tf.convert_to_tensor(g) for g in tape.gradient(value, variables)]
        else:
            import jax

            fixed = [v.value for v in self.model.non_trainable_variables]
            gradients = jax.grad(lambda trainable: loss(self.model.stateless_call(
                trainable, fixed, tokens, training=True)[0]))([v.value for v in variables])
        return [np.array(keras.ops.convert_to_numpy(g), dtype=np.float32) for g in gradients]

    def predict_batch(self, tokens: np.ndarray) -> np.ndarray:
        getattr(self.model, "jax_state_sync", lambda: None)()
        return np.asarray(self.model.predict_on_batch(tokens), dtype=np.float32).reshape(-1)

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(w, dtype=np.float32, copy=True) for w in self.model.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.model.set_weights(weights)

    def save(self, run_dir: Path) -> list[str]:
        self.model.save(run_dir / "model.keras")
        return ["model.keras"]

    def info(self) -> dict:
        calls = self.probe.ran  # before describe(), whose probe of the fused kernel calls the layer once more
        path = (self.probe.describe(bool(self.model.jit_compile), self.model) if self.spec.layers
                else "no recurrent layer (the embeddings pooled)")
        if self.precision != "fp32":
            layer = self.model.layers[-1]
            path += f", computing in {layer.compute_dtype} (dtype policy {layer.dtype_policy.name})"
        return dict(kernel_path=path, kernel_calls=calls, precision=self.precision,
                    keras_rnn_path=self.rnn_path, use_cudnn=RNN_PATHS[self.rnn_path],
                    jit_compile=bool(self.model.jit_compile), keras_backend=keras.backend.backend(),
                    training_api="keras.Model.train_on_batch" if self.train.bucket_pool else "keras.Model.fit",
                    parameter_count=int(self.model.count_params()))
