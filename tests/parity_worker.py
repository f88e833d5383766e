"""Run in a subprocess, one per implementation: what it computes for fixed specs, weights and batches.

For each case: parameter count, the kernel that ran, logits (inference mode),
the loss and the gradient of every canonical weight on the first batch (before
clipping), and the weights after ``steps`` optimizer steps (the first on that
batch, later ones on other batches of the case's widths) and after the first step
alone, all saved to one .npz.

The numbers are made to be sensitive: the embedding and the output kernel are
scaled so that the recurrent activations and the logits are O(1) (at the real initial scale the
logits are about 0.01 and a tolerance on them is loose), and three labels in
four are positive, so that the loss moves with any offset of the logits.

``NAME~DEFECT`` runs a deliberately broken copy of native torch (``perturb``): the
tests show that the comparison catches each. ``torch~slice-clip`` is not broken:
native torch clipping by the global norm Keras 3.15.1 computes on TensorFlow (the
known difference, ``keras_tensorflow_clip``), the reference keras-tensorflow's
updates are compared with where its clip binds.
"""

import json
import sys
import time

import numpy as np

from model import implementations
from model.spec import ModelSpec, TrainSpec
from model.weights import initial_weights
from runners.harness import loop, policy

EMBEDDING_SCALE = 20.0  # uniform(-0.05, 0.05) -> uniform(-1, 1)
LOGIT_SCALE = 5.0


def fixed_batch(spec: ModelSpec, size: int = 16, seed: int = 123, width: int | None = None):
    width = width or spec.maxlen
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, spec.vocab_size, size=(size, width), dtype=np.int32)
    tokens[: size // 4, : width // 2] = 0  # front padding, as in the real data
    labels = (np.arange(size) % 4 != 0).astype(np.float32)
    return tokens, labels


def perturb(impl, how: str) -> None:
    """Break native torch on purpose, by a fraction of a percent (or 1% where max-pooling dilutes the defect).
    Without a recurrent layer the sequence defects go where the pooled sequence is made, the embeddings."""
    import torch

    recurrent = impl.module.recurrent
    source = recurrent if recurrent is not None else impl.module.embedding_dropout

    def on_sequence(change):  # a recurrent module returns (outputs, state), the embeddings a tensor
        def hook(module, inputs, output):
            return (change(output[0]), *output[1:]) if isinstance(output, tuple) else change(output)

        source.register_forward_hook(hook)

    if how == "outputs":  # every sequence output 0.1% too large
        on_sequence(lambda sequence: sequence * (1 + 1e-3))
    elif how == "gradient":  # the first recurrent kernel's (or the embedding's) gradient 1% too large
        first = recurrent.weight_hh_l0 if recurrent is not None else impl.module.embedding.weight
        first.register_hook(lambda gradient: gradient * 1.01)
    elif how == "late":  # the last timestep's outputs 0.1% too large: max-pooling sees them only where they peak
        def late(sequence):
            scale = torch.ones(sequence.shape[1], 1)
            scale[-1] = 1 + 1e-3
            return sequence * scale

        on_sequence(late)
    elif how == "padding":  # outputs at padded positions 1% too large: a quarter of the rows, half their width
        tokens = {}
        impl.module.embedding.register_forward_pre_hook(lambda module, inputs: tokens.update(last=inputs[0]))
        on_sequence(lambda sequence: sequence * (1 + 1e-2 * (tokens["last"] == 0).reshape(*sequence.shape[:2], 1)))
    elif how == "adam":  # every optimizer update 0.02% too large, below what 5 steps' totals resolve
        step, parameters = impl.optimizer.step, impl.parameters

        def skewed(*args, **kwargs):
            before = [p.detach().clone() for p in parameters]
            result = step(*args, **kwargs)
            with torch.no_grad():
                for p, start in zip(parameters, before):
                    p.copy_(start + (p - start) * (1 + 2e-4))
            return result

        impl.optimizer.step = skewed
    elif how == "slice-clip":
        keras_tensorflow_clip(impl)
    else:
        raise ValueError(how)
    assert isinstance(source, torch.nn.Module)


def keras_tensorflow_clip(impl) -> None:
    """Native torch clipping as Keras 3.15.1's global_clipnorm does on TensorFlow: each embedding table's gradient
    counts as one slice per lookup (tf.IndexedSlices, repeated rows not summed; the n-gram table's lookups of every
    order, padded positions included) in the global norm; every gradient is then scaled by clip / max(norm, clip),
    as everywhere."""
    import torch

    occurrences = {"words": None, "ngrams": []}

    def keep_words(module, inputs, output):
        occurrences["ngrams"] = []  # the word lookup opens each forward pass
        if output.requires_grad:
            output.register_hook(lambda gradient: occurrences.update(words=gradient))

    def keep_ngrams(module, inputs, output):
        if output.requires_grad:
            output.register_hook(lambda gradient: occurrences["ngrams"].append(gradient))

    impl.module.embedding.register_forward_hook(keep_words)
    tables = [impl.module.embedding.weight]
    if impl.module.ngrams is not None:
        impl.module.ngrams.register_forward_hook(keep_ngrams)
        tables.append(impl.module.ngrams.weight)

    def clip(parameters, max_norm):
        parameters = list(parameters)
        squares = [(p.grad.double() ** 2).sum() for p in parameters if all(p is not table for table in tables)]
        slices = [occurrences["words"], *occurrences["ngrams"]]
        norm = torch.sqrt(sum(squares) + sum((gradient.double() ** 2).sum() for gradient in slices))
        scale = max_norm / max(float(norm), max_norm)
        for p in parameters:
            p.grad.mul_(scale)
        return norm.float()

    torch.nn.utils.clip_grad_norm_ = clip  # torch_model reads it from torch.nn.utils at each step


def main(name: str, specs_json: str, out: str, variant_json: str = "{}") -> None:
    name, _, broken = name.partition("~")
    results = {}
    for key, settings in json.loads(specs_json).items():
        started = time.perf_counter()
        count_only = settings.pop("count_only", False)
        steps = settings.pop("steps", 1)
        widths = settings.pop("widths", None)
        given = {**json.loads(variant_json), **settings.pop("variant", {})}  # the process's, then the case's
        train = TrainSpec(batch_size=16, eval_batch_size=16, **settings.pop("train", {}))
        spec = ModelSpec(**settings)
        variant = implementations.resolve_variant(name, given, spec)
        weights = initial_weights(spec, seed=7)
        weights[0], weights[-2] = weights[0] * EMBEDDING_SCALE, weights[-2] * LOGIT_SCALE
        if spec.ngram_buckets:  # zeros at the start; values, so that the forward pass reads the right rows
            weights[1] = np.random.default_rng(8).uniform(-1, 1, weights[1].shape).astype(np.float32)
        policy.import_framework(name)
        impl = implementations.create(name, spec, train, weights, variant, total_steps=steps)
        if broken:
            perturb(impl, broken)
        if count_only:
            results[f"{key}/count"] = np.int64(impl.info()["parameter_count"])
            continue
        batches = [fixed_batch(spec, seed=123 + step, width=widths[step] if widths else None)
                   for step in range(steps)]
        tokens, labels = batches[0]
        results[f"{key}/logits"] = loop.predict(impl, tokens, train.eval_batch_size)
        for i, gradient in enumerate(impl.gradients(tokens, labels)):
            results[f"{key}/g{i}"] = gradient
        # Later steps see other batches: gradient norms then differ between steps, so a clip that binds changes
        # the ratio m / sqrt(v) that Adam's update depends on (a constant rescaling would cancel out).
        # Step by step until one moves the weights (a warm-up starts at a learning rate of 0), then the rest: that
        # one Adam update, compared directly, sees a defect of the optimizer that the total after several steps
        # averages away.
        taken, before = [], impl.get_weights()
        while len(taken) < steps:
            taken.append(loop.train_epoch(impl, batches[len(taken):len(taken) + 1]))
            after = impl.get_weights()
            if any(np.any(a != b) for a, b in zip(after, before)):
                break
            before = after
        results[f"{key}/loss"] = np.float64(taken[0].losses[0])
        results[f"{key}/u_step"] = np.int64(len(taken))  # 1-based: the step whose update u* is
        for i, (weight, start) in enumerate(zip(after, before)):
            results[f"{key}/u{i}"] = weight - start
        if len(taken) < steps:
            taken.append(loop.train_epoch(impl, batches[len(taken):]))
        norms = [norm for steps_taken in taken for norm in steps_taken.gradient_norms]
        if norms:  # native implementations: the global norm before clipping, step by step
            results[f"{key}/norms"] = np.array(norms, dtype=np.float64)
        for i, (weight, start) in enumerate(zip(impl.get_weights(), weights)):
            results[f"{key}/w{i}"] = weight
            results[f"{key}/d{i}"] = weight - start  # the optimizer's total update
        # info() once, after the steps (Keras' names the path its calls took; under torch.compile it runs
        # TorchDynamo's explain)
        info = impl.info()
        results[f"{key}/count"] = np.int64(info["parameter_count"])
        results[f"{key}/kernel"] = np.array(info["kernel_path"])
        results[f"{key}/seconds"] = np.float64(time.perf_counter() - started)  # where the suite's time goes
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
