"""The implementations compute the same network: same parameters, logits, loss, gradients and optimizer steps.

Every case compares, against native torch: logits (relative), the first loss (relative), the gradient of
every canonical weight before clipping (norm of the difference over the norm of torch's, per weight) and the
optimizer's total update after several steps (the same relative norm, per weight). Gradients are compared
directly because Adam's first update is about lr * sign(g): weights after one step cannot see a backward pass
that is wrong by a positive factor.

Tolerances. float32 carries 24 bits (relative rounding 6e-8); the forward pass of the small cases sums over at
most 12 timesteps x 2 layers of 4-gate products (the full-size case: 200 timesteps) and the backward pass as
many again, and rounding errors of the different kernel orders (oneDNN, ATen, XLA, TF's Eigen) add up about as
the square root of the number of terms: a few 1e-7 to 1e-6 relative, about 4x more over 200 steps. The bounds
below sit well above what is measured (Zen 3, 2026-12-03: at most 6e-7 on logits, 2e-7 on the loss, 1.2e-5 on a
gradient, 5.4e-5 on a total update, all Keras on torch over the full-size case but the logits; 2.8e-5 on one
update) and far below what a defect produces; every case's measured gaps are
recorded (pytest's cache, ``parity/gaps``) and the largest per quantity must stay under ``GAP_SHARE`` of its
bound, so that a growing gap, or a bound loosened towards the defects, shows (``test_measured_gaps_...``).

Adam's update is about lr * sign(g) at the first step and stays close to it over a few: the total update after
the steps sees an optimizer defect only above ``UPDATE_RTOL``. The single update of the first step that moves the
weights is therefore compared on its own, at ``ONE_UPDATE_RTOL``, which a 0.02% defect fails.

The broken copies (``BROKEN``, each a defect of native torch, ``tests/parity_worker.py``) must fail every case:
recurrent outputs 0.1% too large, one gradient 1% too large, the last timestep's outputs 0.1% too large and the
outputs at padded positions 1% too large (both where max-pooling over time dilutes them), and every optimizer
update 0.02% too large.

Tiers: the four implementations the project compares (``FOUR_WAY``) and the broken copies run in ``make test``;
the extra columns (keras-jax, keras-torch-fused), bf16 and the variant columns carry ``slow`` (``make test-all``
and CI run them).
"""

import itertools
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from model.implementations import FOUR_WAY, NAMES
from model.spec import ModelSpec
from model.weights import parameter_count
from runners.harness.policy import THREAD_VARIABLES
from tests.conftest import run_module, run_module_code

LOGIT_RTOL, LOSS_RTOL, GRADIENT_RTOL, UPDATE_RTOL, ONE_UPDATE_RTOL = 2e-5, 2e-5, 1e-4, 5e-4, 1.25e-4
TOLERANCES = {"logits": LOGIT_RTOL, "loss": LOSS_RTOL, "gradient": GRADIENT_RTOL, "update": UPDATE_RTOL,
              "one update": ONE_UPDATE_RTOL}
GAP_SHARE = 0.25  # the largest measured gap per quantity must stay below this share of its bound

SMALL = dict(units=8, embedding_dim=6, vocab_size=50, maxlen=12, dropout=0.0)
NO_CLIP = dict(clip_global_norm=1e6)
# Every case takes 5 optimizer steps, on batches that differ from step to step, so that gradient norms change
# between steps and a clip that binds changes the ratio m / sqrt(v) that Adam's update depends on.
STEPS = dict(steps=5, train=dict(learning_rate=0.01, **NO_CLIP))
CLIP = dict(steps=5, train=dict(learning_rate=0.01, clip_global_norm=0.01))  # gradient norms here: 0.1-2
PARITY = {}
for cell in ("rnn", "gru", "lstm"):
    one, stack = dict(cell=cell, layers=1, **SMALL), dict(cell=cell, layers=2, bidirectional=True, **SMALL)
    PARITY |= {f"{cell}-1": one | STEPS, f"{cell}-1-clip": one | CLIP, f"{cell}-2-bi": stack | STEPS}
# What does not depend on the cell is checked on fewer cells (each case costs Keras on jax and on TensorFlow a
# trace and compile of several seconds): the clip over a 2-layer bidirectional stack's global norm on the LSTM;
# epsilon as large as sqrt(v), where it is added (raw or bias-corrected sqrt(v)) shows, on the LSTM; the
# competitive recipe's parts (segments as rows, length-bucketed batches of several widths, the warm-up + cosine
# schedule whose learning rate differs at every step) on the gated cells.
PARITY |= {
    "lstm-2-bi-clip": dict(cell="lstm", layers=2, bidirectional=True, **SMALL) | CLIP,
    "lstm-1-eps": dict(cell="lstm", layers=1, **SMALL) | dict(steps=5, train=dict(learning_rate=0.01, epsilon=1e-2,
                                                                                 **NO_CLIP)),
    **{f"{cell}-seg-bi": dict(cell=cell, layers=1, bidirectional=True, segment_len=4, steps=5, widths=[12, 8, 4, 12, 8],
                              train=dict(schedule="warmup_cosine", warmup_fraction=0.4, bucket_pool=1,
                                         learning_rate=0.01, **NO_CLIP), **SMALL) for cell in ("gru", "lstm")},
}
# Hashed bigram and trigram vectors added to the words' (a front end the cell never sees): segments and bucketed
# widths too, 37 rows for the small vocabulary, so that distinct n-grams share rows as they do at full size.
PARITY["lstm-seg-bi-ngrams"] = PARITY["lstm-seg-bi"] | dict(ngram_buckets=37, ngram_order=3)
# ... with a clip that binds: Keras on TensorFlow counts the n-gram table's lookups as unaggregated slices too.
PARITY["lstm-seg-bi-ngrams-clip"] = PARITY["lstm-seg-bi-ngrams"] | dict(train=dict(
    PARITY["lstm-seg-bi"]["train"], clip_global_norm=0.01))
# The mean over real tokens beside the max: with segments and padded rows (fixed_batch pads a quarter of them), and
# without segments, where Keras takes its own pooling layer instead of GlobalMaxPooling1D.
PARITY["lstm-seg-bi-max-mean"] = PARITY["lstm-seg-bi"] | dict(pooling="max-mean")
PARITY["gru-1-max-mean"] = PARITY["gru-1"] | dict(pooling="max-mean")
# No recurrent layer (the ablation of a recipe's recurrent part): the words' and n-grams' vectors pooled directly.
PARITY["none-seg-ngrams-max-mean"] = PARITY["lstm-seg-bi-ngrams"] | dict(layers=0, bidirectional=False,
                                                                          pooling="max-mean")
# One full-size case: the default network (64 units, embedding 64, vocabulary 10,000) over its 200 timesteps, where
# float32 differences accumulate longest; three steps, dropout off. The tolerances above hold for it too, but for
# the single update: Adam's lr * g / (|g| + eps) weighs every element alike, and over 200 timesteps the small
# gradients near eps differ by enough to move it 1e-4 (Keras on torch, measured), the size of the optimizer
# defect that check is there for. The optimizer is the same code in every case: the small ones carry that check.
PARITY["lstm-full"] = dict(cell="lstm", dropout=0.0, steps=3, train=dict(learning_rate=0.01, **NO_CLIP))
ONE_UPDATE_CASES = tuple(key for key in PARITY if key != "lstm-full")
COUNTS = {f"count-{cell}-{layers}-{bi}": dict(cell=cell, layers=layers, bidirectional=bi, count_only=True, **SMALL)
          for cell, layers, bi in itertools.product(("rnn", "gru", "lstm"), (1, 2, 3), (False, True))}
# The front ends' parameters: the n-gram table and the output layer reading max and mean.
COUNTS["count-lstm-1-bi-ngrams-max-mean"] = dict(cell="lstm", layers=1, bidirectional=True, ngram_buckets=37,
                                                 ngram_order=3, pooling="max-mean", count_only=True, **SMALL)
COUNTS["count-none-ngrams-max-mean"] = dict(COUNTS["count-lstm-1-bi-ngrams-max-mean"], layers=0, bidirectional=False)
EXTRA = tuple(name for name in NAMES if name not in FOUR_WAY)  # extra columns: the slow tier
BROKEN = ("torch~outputs", "torch~gradient", "torch~late", "torch~padding", "torch~adam")

# Known differences, each a finding: Keras 3.15.1's global_clipnorm on the TensorFlow backend computes the norm
# of the embedding's gradient as tf.IndexedSlices without summing repeated rows (one slice per token occurrence),
# so whenever the clip binds it scales by another norm than the other implementations (tested directly in
# test_keras_tensorflow_clips_by_the_norm_of_unaggregated_slices). Its gradients agree; its updates differ from
# native torch's, and are compared instead with native torch clipping by that same norm (SLICE_CLIP).
CLIPPED = tuple(key for key in PARITY if key.endswith("-clip"))
KNOWN_DIFFERENCES = {("keras-tensorflow", key) for key in CLIPPED}
SLICE_CLIP = "torch~slice-clip"

# bf16 against the fp32 reference. bf16 keeps 8 significant bits: unit roundoff u = 2^-8 = 3.9e-3, 65,000 times
# float32's. Each implementation rounds at other places (torch's autocast rounds the operands of its matmuls and
# of oneDNN's RNN primitive; Keras' mixed policy and native TF round weights and activations between ops), so
# the columns agree with fp32, and with each other, only to a few u: independent roundings add as the square root
# of their number, and a recurrent state carries them from step to step while the gates' sigmoids and tanh shrink
# them. Bounds: logits and loss within 8u (3.1e-2); each weight's gradient within 24u (9.4e-2) per recurrent
# layer, since the backward pass rounds again through every layer it crosses. Measured here: at most 2.1e-2 on
# logits, 6.4e-2 on a gradient of one layer (Keras on TensorFlow, which rounds between every op) and 7.6e-2 on a
# 2-layer bidirectional stack. A defect below those is invisible in bf16 (the broken copies' 0.1% is), which is
# why the fp32 cases above carry the proof and these show that each bf16 column computes the same network in
# bf16. Updates after Adam steps are not compared: Adam's first update is lr * sign(g), and rounding flips the
# sign of gradients near zero.
BF16_U = 2.0 ** -8
BF16_LOGIT_RTOL, BF16_GRADIENT_RTOL_PER_LAYER = 8 * BF16_U, 24 * BF16_U
BF16_CASES = ("rnn-1", "gru-1", "lstm-1", "lstm-2-bi")
BF16 = {f"{key}-bf16": PARITY[key] | dict(variant=dict(precision="bf16")) for key in BF16_CASES}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b)) / scale if scale else float(np.linalg.norm(a))


def gaps(result: dict, reference: dict, key: str, updates: bool = True) -> dict[str, tuple[float, str]]:
    """One case's largest relative gap per quantity against the reference, with the array it was measured on."""
    found = {"logits": (_relative(result[f"{key}/logits"], reference[f"{key}/logits"]), "logits"),
             "loss": (abs(float(result[f"{key}/loss"]) / float(reference[f"{key}/loss"]) - 1), "loss")}
    names = sorted((k for k in reference if k.startswith(f"{key}/g")), key=lambda k: int(k.rsplit("g", 1)[1]))
    assert names and len(names) == len([k for k in result if k.startswith(f"{key}/g")]), key
    found["gradient"] = max((_relative(result[name], reference[name]), name) for name in names)
    if updates:
        assert int(result[f"{key}/u_step"]) == int(reference[f"{key}/u_step"]), key  # the same step's update
        for quantity, letter in (("update", "d"), ("one update", "u"))[:2 if key in ONE_UPDATE_CASES else 1]:
            found[quantity] = max((_relative(result[name.replace("/g", f"/{letter}")],
                                             reference[name.replace("/g", f"/{letter}")]),
                                   name.replace("/g", f"/{letter}")) for name in names)
    return found


def differences(result: dict, reference: dict, key: str, updates: bool = True) -> list[str]:
    """What separates one implementation's numbers from the reference's in one case (empty: the same)."""
    return [f"{quantity} {name} differs by {gap:.1e} (relative; bound {TOLERANCES[quantity]:.3g})"
            for quantity, (gap, name) in gaps(result, reference, key, updates).items() if gap > TOLERANCES[quantity]]


# Each worker one thread: they run two at a time on a 2-core machine, and their tensors are too small for a
# second thread to help (a framework's idle threads spinning beside the other worker only cost).
ONE_THREAD = dict.fromkeys(THREAD_VARIABLES, "1")


def _run(folder, name, cases, variant=None):
    out = folder / f"{name}{'-' + json.dumps(variant, sort_keys=True) if variant else ''}.npz".replace(" ", "")
    done = run_module("tests.parity_worker", name, json.dumps(cases), str(out), *([json.dumps(variant)] if variant
                                                                                   else []), env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(out))


# Seconds per fp32 case of each worker, as measured on the Zen 3 (the ``seconds`` the worker records; keras-jax
# and keras-torch-fused guessed): the order workers start in, longest first.
COST = {"keras-tensorflow": 15.0, "keras-jax": 10.0, "tensorflow": 6.6, "keras-torch": 3.8, "keras-torch-fused": 3.8,
        "torch": 0.8, **{name: 0.5 for name in ("torch~outputs", "torch~gradient", "torch~late", "torch~padding",
                                                "torch~adam", "torch~slice-clip")}}
VARIANT_COST = {}


def run_workers(folder, jobs: list[tuple]) -> list[dict]:
    """Each (name, cases[, variant]) in a worker process of its own, two at a time, in the order given (longest
    first: the last to start should not be the one that keeps the other core idle)."""
    with ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda job: _run(folder, *job), jobs))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The four implementations (fp32 cases and parameter counts), the broken copies (fp32 cases), and native
    torch clipping as Keras on TensorFlow does (the clip cases)."""
    jobs = [(name, PARITY | COUNTS) for name in FOUR_WAY] + [(name, PARITY) for name in BROKEN] + [
        (SLICE_CLIP, {key: PARITY[key] for key in CLIPPED})]
    jobs.sort(key=lambda job: COST.get(job[0], 1.0) * len(job[1]), reverse=True)
    found = run_workers(tmp_path_factory.mktemp("parity"), jobs)
    return {name: result for (name, _), result in zip(jobs, found)}


@pytest.fixture(scope="module")
def extra_results(tmp_path_factory):
    """The extra columns (fp32, counts and bf16), and the four implementations' bf16 cases."""
    jobs = [(name, PARITY | COUNTS | BF16) for name in EXTRA] + [(name, BF16) for name in FOUR_WAY]
    jobs.sort(key=lambda job: COST.get(job[0], 1.0) * len(job[1]), reverse=True)
    found = run_workers(tmp_path_factory.mktemp("parity-extra"), jobs)
    merged = {}
    for (name, _), result in zip(jobs, found):
        merged.setdefault(name, {}).update(result)
    return merged


@pytest.mark.parametrize("key", sorted(COUNTS))
def test_parameter_counts_are_equal(results, key):
    settings = {k: v for k, v in COUNTS[key].items() if k != "count_only"}
    expected = parameter_count(ModelSpec(**settings))
    assert {name: int(results[name][f"{key}/count"]) for name in FOUR_WAY} == dict.fromkeys(FOUR_WAY, expected)


def _reference(results: dict, name: str, key: str) -> dict:
    """Native torch, or for a known difference native torch with the same difference."""
    return results[SLICE_CLIP] if (name, key) in KNOWN_DIFFERENCES else results["torch"]


@pytest.mark.parametrize("key", sorted(PARITY))
def test_same_logits_loss_gradients_and_updates(results, key):
    for name in FOUR_WAY:
        found = differences(results[name], _reference(results, name, key), key)
        assert not found, f"{name} {key}: {'; '.join(found)}"


def test_measured_gaps_stay_well_inside_the_tolerances(results, request):
    """Every case's gaps, recorded; the largest per quantity, over the four implementations and every case,
    under GAP_SHARE of its bound."""
    table = {f"{name} {key}": {quantity: gap for quantity, (gap, _) in
                               gaps(results[name], _reference(results, name, key), key).items()}
             for name in FOUR_WAY if name != "torch" for key in PARITY}
    request.config.cache.set("parity/gaps", table)
    for quantity, bound in TOLERANCES.items():
        gap, where = max((row[quantity], case) for case, row in table.items() if quantity in row)
        assert gap < GAP_SHARE * bound, f"{quantity}: {gap:.1e} ({where}) against a bound of {bound:.3g}"


@pytest.mark.parametrize("key", CLIPPED)
def test_keras_tensorflow_clips_by_its_own_norm_in_every_clip_case(results, key):
    """Where the clip binds, Keras on TensorFlow's updates are those of native torch clipping by the norm of the
    unaggregated slices (compared in the test above), and not those of native torch: the difference is that
    norm and nothing else. If Keras fixes its clip norm, this fails and KNOWN_DIFFERENCES goes."""
    assert float(results["torch"][f"{key}/norms"].min()) > CLIP["train"]["clip_global_norm"]  # binds every step
    assert differences(results["keras-tensorflow"], results["torch"], key)
    assert differences(results[SLICE_CLIP], results["torch"], key)


@pytest.mark.parametrize("key, broken", [(key, broken) for broken in BROKEN for key in sorted(PARITY)
                                         if broken != "torch~adam" or key in ONE_UPDATE_CASES])
def test_a_broken_copy_fails(results, key, broken):
    """The tolerances are tight enough: a defect of a fraction of a percent is caught in every case (the
    optimizer's, in every case whose single update is compared)."""
    assert differences(results[broken], results["torch"], key)


@pytest.mark.parametrize("key", ONE_UPDATE_CASES)
def test_an_optimizer_defect_is_seen_in_one_update_not_in_the_total(results, key):
    """Every update 0.02% too large: under the total's bound after the steps, over one update's."""
    found = gaps(results["torch~adam"], results["torch"], key)
    assert found["update"][0] < UPDATE_RTOL and found["one update"][0] > ONE_UPDATE_RTOL, found


def test_the_cases_are_sensitive(results):
    """Logits are O(1) and the loss is away from ln 2, so a relative tolerance on them means something."""
    for key in PARITY:
        logits = results["torch"][f"{key}/logits"]
        assert 0.2 < float(np.abs(logits).mean()) < 10, key
        assert abs(float(results["torch"][f"{key}/loss"]) - np.log(2)) > 0.02, key


def test_keras_tensorflow_clips_by_the_norm_of_unaggregated_slices():
    """The mechanism behind the known difference, shown on Keras' own function in a TensorFlow process."""
    code = ("import tensorflow as tf\nfrom keras.src.optimizers.base_optimizer import global_norm\n"
            "g = tf.IndexedSlices(tf.constant([[1.0, 0.0], [1.0, 0.0]]), tf.constant([3, 3]), tf.constant([5, 2]))\n"
            "print(float(global_norm([g])), float(tf.norm(tf.convert_to_tensor(g))))")
    done = run_module_code(code, env={"KERAS_BACKEND": "tensorflow"})
    keras_norm, dense_norm = map(float, done.stdout.split()[-2:])
    assert dense_norm == pytest.approx(2.0) and keras_norm == pytest.approx(2 ** 0.5)  # row 3 twice: |2| vs sqrt(2)


@pytest.mark.parametrize("case, other", [(f"{cell}-1-clip", f"{cell}-1") for cell in ("rnn", "gru", "lstm")]
                         + [("lstm-1-eps", "lstm-1")])
def test_the_multi_step_cases_can_see_clipping_and_epsilon(results, case, other):
    """Agreement means something only if the clip (or epsilon's place) changes the updates well beyond it."""
    assert _relative(results["torch"][f"{case}/d1"], results["torch"][f"{other}/d1"]) > 100 * UPDATE_RTOL


def test_the_steps_change_the_weights(results):
    """Agreement after the steps would prove nothing if they did not move the weights; the one update compared
    is the first that moves them (after a warm-up's first step at a learning rate of 0)."""
    for key in PARITY:
        assert all(np.abs(results["torch"][f"{key}/d{i}"]).max() > 0 for i in range(1, 4)), key
        assert all(np.abs(results["torch"][f"{key}/u{i}"]).max() > 0 for i in range(1, 4)), key
        warm_up = PARITY[key]["train"].get("schedule") == "warmup_cosine"
        assert int(results["torch"][f"{key}/u_step"]) == (2 if warm_up else 1), key


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(COUNTS))
def test_the_extra_columns_count_the_same_parameters(extra_results, key):
    settings = {k: v for k, v in COUNTS[key].items() if k != "count_only"}
    expected = parameter_count(ModelSpec(**settings))
    assert {name: int(extra_results[name][f"{key}/count"]) for name in EXTRA} == dict.fromkeys(EXTRA, expected)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(PARITY))
def test_the_extra_columns_compute_the_same_network(results, extra_results, key):
    for name in EXTRA:
        found = differences(extra_results[name], results["torch"], key)
        assert not found, f"{name} {key}: {'; '.join(found)}"


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(PARITY))
def test_fused_keras_torch_matches_the_generic_loop(results, extra_results, key):
    """The keras-torch-fused patch changes the kernel, not the numbers."""
    assert not differences(extra_results["keras-torch-fused"], results["keras-torch"], key)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(PARITY))
def test_the_fused_kernel_ran(results, extra_results, key):
    kernel = str(extra_results["keras-torch-fused"][f"{key}/kernel"])
    if PARITY[key].get("layers", 1) == 0:
        assert kernel.startswith("no recurrent layer"), kernel
    elif key.startswith("rnn"):
        assert kernel.startswith("keras generic rnn"), kernel
    else:  # the kernel under the patch is observed, as native torch's is: oneDNN's primitive serves the LSTM only
        assert kernel.startswith("keras-torch-fused patch"), kernel
        assert ("oneDNN RNN primitive" in kernel) == key.startswith("lstm"), kernel
        assert str(results["torch"][f"{key}/kernel"]).split(": ", 1)[1] in kernel  # native torch's kernel


# Every variant column against its implementation's default, on a multi-step case with a binding clip and a
# 2-layer bidirectional stack (a SimpleRNN where the variant changes its path; the fused BlockLSTM formulation
# exists only for the LSTM cell): a column that computed another network could never enter a table.
VARIANT_CASES = ("lstm-1-clip", "gru-2-bi")
VARIANTS = (
    ("torch", {"compile": True}, ("lstm-1-clip",)),  # Inductor compiles each case anew: one case
    ("tensorflow", {"graph": False}, VARIANT_CASES),
    ("tensorflow", {"jit_compile": True}, VARIANT_CASES),
    ("tensorflow", {"formulation": "loop"}, ("rnn-1", "gru-2-bi")),  # SimpleRNN's default is precomputed
    ("tensorflow", {"formulation": "precomputed"}, VARIANT_CASES),
    ("tensorflow", {"formulation": "block"}, ("lstm-1-clip", "lstm-2-bi")),
    ("keras-tensorflow", {"rnn_path": "auto"}, VARIANT_CASES),
    ("keras-tensorflow", {"jit_compile": True}, VARIANT_CASES),
    ("keras-torch", {"rnn_path": "auto"}, VARIANT_CASES),
    ("keras-jax", {"jit_compile": False}, VARIANT_CASES),
)




def _renamed(result: dict, old: str, new: str) -> dict:
    """One case's numbers under another case's key."""
    return {name.replace(f"{old}/", f"{new}/", 1): value for name, value in result.items()
            if name.startswith(f"{old}/")}


def bf16_differences(result: dict, reference: dict, key: str) -> list[str]:
    found = []
    logits = _relative(result[f"{key}/logits"], reference[f"{key}/logits"])
    loss = abs(float(result[f"{key}/loss"]) / float(reference[f"{key}/loss"]) - 1)
    for what, gap, bound in (("logits", logits, BF16_LOGIT_RTOL), ("loss", loss, BF16_LOGIT_RTOL)):
        if gap > bound:
            found.append(f"{what} differ by {gap:.1e} (relative; bound {bound:.1e})")
    bound = BF16_GRADIENT_RTOL_PER_LAYER * PARITY[key].get("layers", 1)
    for name in (k for k in reference if k.startswith(f"{key}/g")):
        gap = _relative(result[name], reference[name])
        if gap > bound:
            found.append(f"gradient {name} differs by {gap:.1e} (relative; bound {bound:.1e})")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_bf16_columns_compute_the_same_network_within_bf16_rounding(results, extra_results, name):
    for key in BF16_CASES:
        found = bf16_differences(_renamed(extra_results[name], f"{key}-bf16", key), results["torch"], key)
        assert not found, f"{name}[precision=bf16] {key}: {'; '.join(found)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_bf16_columns_record_the_dtype_that_computed(results, extra_results, name):
    """No silent fp32 fallback: the record's kernel path names the dtype the recurrent layers computed in, and
    where that is bf16 the logits move by bf16's rounding, far beyond fp32's."""
    for key in BF16_CASES:
        kernel = str(extra_results[name][f"{key}-bf16/kernel"])
        # the phrase, not any mention: Keras' path also names its policy, "mixed_bfloat16", whatever computed
        computed = re.search(r"computing in (bfloat16|bf16|float32)\b", kernel)
        assert computed, kernel
        if computed.group(1) != "float32":
            fp32 = results[name] if name in FOUR_WAY else extra_results[name]
            moved = _relative(extra_results[name][f"{key}-bf16/logits"], fp32[f"{key}/logits"])
            assert moved > 20 * LOGIT_RTOL, (key, kernel)


@pytest.mark.slow
def test_torch_autocast_leaves_the_gru_in_fp32(extra_results):
    """A finding the record keeps: torch 2.13's CPU autocast has no rule for nn.GRU, so "bf16" native torch
    computes its GRU in fp32 (the SimpleRNN in bf16). If torch adds the rule, this fails and the README changes."""
    assert "computing in float32" in str(extra_results["torch"]["gru-1-bf16/kernel"])
    assert "computing in bfloat16" in str(extra_results["torch"]["rnn-1-bf16/kernel"])


def _variant_id(name: str, variant: dict) -> str:
    return name + "".join(f"[{option}={value}]" for option, value in variant.items())


@pytest.fixture(scope="module")
def variant_results(tmp_path_factory):
    jobs = sorted(VARIANTS, key=lambda job: COST.get(job[0], 1.0) * len(job[2]) * VARIANT_COST.get(
        _variant_id(job[0], job[1]), 1.0), reverse=True)
    found = run_workers(tmp_path_factory.mktemp("variants"),
                        [(name, {key: PARITY[key] for key in cases}, variant) for name, variant, cases in jobs])
    return {_variant_id(name, variant): result for (name, variant, _), result in zip(jobs, found)}


@pytest.mark.slow
@pytest.mark.parametrize("name, variant, cases", VARIANTS, ids=[_variant_id(n, v) for n, v, _ in VARIANTS])
def test_every_variant_column_computes_its_implementations_network(results, extra_results, variant_results, name,
                                                                   variant, cases):
    mine = variant_results[_variant_id(name, variant)]
    theirs = results[name] if name in FOUR_WAY else extra_results[name]  # extra_results holds the four's bf16 only
    for key in cases:
        found = differences(mine, theirs, key)
        assert not found, f"{_variant_id(name, variant)} {key} ({mine[f'{key}/kernel']}): {'; '.join(found)}"


@pytest.mark.slow
@pytest.mark.parametrize("name, variant, expected", [
    ("torch", {"compile": True}, "TorchDynamo explain"), ("tensorflow", {"jit_compile": True}, "XLA"),
    ("tensorflow", {"formulation": "block"}, "Block")])
def test_the_variant_kernel_ran(variant_results, name, variant, expected):
    """The record names the path that executed; for these variants it must say so."""
    mine = variant_results[_variant_id(name, variant)]
    kernels = {str(mine[key]) for key in mine if key.endswith("/kernel")}
    assert kernels and all(expected.lower() in kernel.lower() for kernel in kernels), kernels
