"""Small pure pieces: specs, canonical weights, metrics, records, clocks."""

import json
import time

import numpy as np
import pytest

from model import records
from model.implementations import Column, column
from model.plan import get_profile
from model.spec import Configuration, ModelSpec, SpecError, TrainSpec
from model.weights import initial_weights, parameter_count, shapes
from runners.harness import measure
from runners.harness.metrics import binary_cross_entropy, classification_metrics


def test_profiles_and_overrides():
    model, train = get_profile("published").specs(cell="gru", epochs=None)
    assert model.maxlen == 400 and model.cell == "gru" and train.epochs == 8 and train.patience == 2
    model, train = get_profile("quick").specs(layers=2)
    assert (train.train_size, train.test_size, train.epochs, model.layers) == (2560, 1000, 1, 2)
    with pytest.raises(SpecError, match="unknown setting"):
        get_profile("quick").specs(colour="red")
    with pytest.raises(SpecError, match="unknown profile"):
        get_profile("huge")


@pytest.mark.parametrize("settings", [dict(cell="cnn"), dict(layers=-1), dict(layers=0, bidirectional=True),
                                      dict(maxlen=0), dict(dropout=1.0)])
def test_invalid_model_specs(settings):
    with pytest.raises(SpecError):
        ModelSpec(**settings)


def test_without_a_recurrent_layer_the_output_layer_reads_the_pooled_embeddings():
    spec = ModelSpec(layers=0, embedding_dim=8, vocab_size=100, ngram_buckets=7, pooling="max-mean")
    assert shapes(spec) == [(100, 8), (7, 8), (16, 1), (1,)]
    assert Configuration.of(spec).label == "no recurrent layer"


def test_a_configuration_and_a_column_read_back_from_their_names():
    for configuration in (Configuration("lstm", 1, False), Configuration("gru", 3, True)):
        assert Configuration.parse(configuration.slug) == configuration
    assert Configuration("gru", 2, True).label == "GRU 2L bi"
    with pytest.raises(SpecError, match="e.g. lstm1"):
        Configuration.parse("cnn1")
    spec = ModelSpec()
    assert column("tensorflow", dict(formulation="loop", graph=False), spec).label == "tensorflow[graph=False]"
    named = Column("torch", (("precision", "bf16"), ("label", "b")))
    assert named.label == "torch[precision=bf16][label=b]" and Column.parse(named.label) == named
    assert Column.parse("keras-torch").options == ()


@pytest.mark.parametrize("settings, message", [
    (dict(batch_size=0), "batch_size must be at least 1"), (dict(train_size=2), "at least 4 reviews"),
    (dict(train_size=32), "does not fill one batch of 64"),
    (dict(learning_rate=-1.0), "learning_rate must be positive"),
    (dict(epsilon=0.0), "epsilon must be positive"), (dict(beta_2=1.0), "beta_2 must be in"),
    (dict(patience=0), "patience must be at least 1"), (dict(seed=-1), "seed must be at least 0")])
def test_invalid_train_specs(settings, message):
    with pytest.raises(SpecError, match=message):
        TrainSpec(**settings)


def test_canonical_weights_follow_keras_initialisers():
    spec = ModelSpec(cell="lstm", units=16, embedding_dim=8, vocab_size=100, maxlen=5, bidirectional=True)
    weights = initial_weights(spec, seed=0)
    assert [w.shape for w in weights] == shapes(spec)
    assert sum(w.size for w in weights) == parameter_count(spec)
    assert all(w.dtype == np.float32 for w in weights)
    assert np.abs(weights[0]).max() <= 0.05
    kernel, recurrent, bias = weights[1:4]
    assert np.abs(kernel).max() <= np.sqrt(6 / (8 + 64))
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(16), atol=1e-5)  # orthogonal rows
    assert bias[16:32].tolist() == [1.0] * 16 and not bias[:16].any() and not bias[32:].any()
    assert not np.array_equal(weights[1], weights[4])  # the backward direction draws its own
    assert all(np.array_equal(a, b) for a, b in zip(weights, initial_weights(spec, seed=0)))


def test_gru_bias_has_input_and_recurrent_rows():
    spec = ModelSpec(cell="gru", units=4, embedding_dim=3, vocab_size=10, maxlen=2)
    assert shapes(spec)[3] == (2, 12)
    # embedding 10*3 + kernel 3*12 + recurrent 4*12 + bias 2*12 + dense 4 + 1
    assert parameter_count(spec) == 30 + 36 + 48 + 24 + 5


def test_gemm_flops_of_a_training_step():
    from model.weights import gemm_flops_per_training_step

    # Default LSTM: x@W and h@U per step, (64 x 64)(64 x 256) each, over 200 steps; the logit (64 x 64)(64 x 1);
    # backward twice the forward: 3 * (2*64*200*256*(64+64) + 2*64*64) = 2,516,606,976 (the 2.5 GFLOP).
    assert gemm_flops_per_training_step(ModelSpec(), 64) == 2_516_606_976
    bi = ModelSpec(cell="gru", layers=2, bidirectional=True, units=8, embedding_dim=4, maxlen=10)
    # Layer 1 reads 4 inputs, layer 2 reads 16 (two directions of 8); 3 gates of 8; two directions each.
    forward = 2 * 2 * 10 * 24 * ((4 + 8) + (16 + 8)) * 2 + 2 * 2 * 16
    assert gemm_flops_per_training_step(bi, 2) == 3 * forward


def test_metrics_against_hand_computed_values():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    probabilities = np.array([0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.4, 0.7])
    quality = classification_metrics(labels, probabilities)
    # predicted: 1 1 0 0 1 0 0 1 -> TP 3, FN 1, FP 1, TN 3
    assert quality["confusion_matrix"] == [[3, 1], [1, 3]]
    assert quality["accuracy"] == 0.75 and quality["precision"] == 0.75 and quality["recall"] == 0.75
    assert quality["f1"] == 0.75
    # ROC-AUC: of the 16 (positive, negative) pairs, 14 are ordered correctly (0.3 is below 0.6 and 0.4).
    assert quality["roc_auc"] == pytest.approx(14 / 16)
    expected_log_loss = -np.mean(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
    assert quality["log_loss"] == pytest.approx(expected_log_loss)


def test_binary_cross_entropy_on_logits():
    assert binary_cross_entropy(np.array([1.0, 0.0]), np.array([0.0, 0.0])) == pytest.approx(np.log(2))
    assert binary_cross_entropy(np.array([1.0]), np.array([1000.0])) == pytest.approx(0.0)
    assert binary_cross_entropy(np.array([0.0]), np.array([1000.0])) == pytest.approx(1000.0)


def test_records_are_written_atomically(tmp_path):
    path = tmp_path / "run" / "record.json"
    records.write_json_atomic(path, {"a": np.float32(1.5), "b": np.arange(3)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]
    with pytest.raises(TypeError):
        records.write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2]}  # the old record survives a failed write


def test_summaries_are_medians_and_quartiles_in_ms():
    summary = measure.summarize_ms([0.001, 0.002, 0.003, 0.004, 0.100])
    assert summary["median"] == pytest.approx(3.0) and summary["q1"] == pytest.approx(2.0)
    assert summary["q3"] == pytest.approx(4.0) and summary["n"] == 5


def test_measured_function_runs_exactly_once():
    """memory-profiler re-runs a function that returns within one sampling interval unless told not to."""
    calls = []
    result, memory = measure.measure_peak(lambda: calls.append(1) or "done", interval_s=0.05)
    assert calls == [1] and result == "done" and memory["peak_sampled_mb"] > 0


def test_high_water_mark_resets():
    if not measure.reset_high_water_mark():
        pytest.skip("/proc/self/clear_refs is not writable here")
    before = measure.high_water_mark_mb()
    block = np.ones(50 * 2**20 // 8)  # 50 MB, touched
    assert measure.high_water_mark_mb() >= before + 45
    del block


def test_warmup_cosine_learning_rate_against_hand_computed_values():
    from model.spec import TrainSpec, learning_rate_at

    train = TrainSpec(learning_rate=1e-3, schedule="warmup_cosine", warmup_fraction=0.1)
    # 100 steps: 10 of linear warm-up from 0, then a cosine over 90 steps to 0.
    expected = {0: 0.0, 5: 5e-4, 10: 1e-3, 55: 5e-4, 100: 0.0, 150: 0.0}
    for step, value in expected.items():
        assert abs(learning_rate_at(train, step, 100) - value) < 1e-12, step
    assert learning_rate_at(TrainSpec(learning_rate=3e-3), 57, 100) == 3e-3


def test_every_implementation_runs_on_a_framework_of_the_table():
    from model.frameworks import FRAMEWORKS, identity_packages
    from model.implementations import TABLE

    assert {entry.framework for entry in TABLE.values()} <= set(FRAMEWORKS)
    assert set(identity_packages()) >= {"torch", "tensorflow-cpu", "jax", "keras"}


# A framework the project has never seen, registered in two entries and nothing else, trains end to end
# through the harness: its configure, probe and seed functions run, and its version enters the record.
NEW_FRAMEWORK = """
import importlib
from model import frameworks, implementations
from model.plan import RunPlan
from model.spec import ModelSpec, TrainSpec
from runners import harness

fake = lambda name: lambda *args: getattr(importlib.import_module("tests.fake_framework"), name)(*args)
frameworks.FRAMEWORKS["numpy-bag"] = frameworks.Framework(
    "numpy-bag", module="tests.fake_framework", package="numpy", display="NumPy", always_flushes_denormals=False,
    configure=fake("configure"), probe=fake("probe"), seed=fake("seed"))
implementations.TABLE["bag"] = implementations.Implementation(
    "bag", "numpy-bag", None, "tests.fake_framework:BagOfEmbeddings", description="a framework added in a test")
plan = RunPlan(implementation="bag", model=ModelSpec(units=16, embedding_dim=16, maxlen=64),
               train=TrainSpec(train_size=320, test_size=200, epochs=2, batch_size=32), threads=1)
harness.run(plan, OUT)
"""


def test_a_new_framework_is_one_table_entry_plus_its_implementation(tmp_path, imdb_archive, cache_dir):
    from tests.conftest import run_module_code

    out = tmp_path / "bag"
    run_module_code(NEW_FRAMEWORK.replace("OUT", repr(str(out))),
                    env={"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)})
    record = records.read_record(out)
    policy = record["runtime"]["policy"]
    assert record["plan"]["implementation"] == "bag" and record["runtime"]["framework"] == "numpy-bag"
    assert policy["intra_op_threads"] == 1 and policy["flush_denormal"] is True and policy["seeded"] == 0
    assert record["environment"]["packages"]["numpy"] and len(record["curves"]) == 2
    assert 0.0 <= record["metrics"]["accuracy"] <= 1.0 and len(record["validations"]) == 2


def test_the_anonymous_peak_sees_an_allocation_the_function_frees_again():
    def allocate_and_free():
        block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
        time.sleep(0.5)  # a few samples
        del block
        return "done"

    result, memory = measure.measure_peak(allocate_and_free)
    assert result == "done"
    assert 180 < memory["peak_anonymous_above_ready_mb"] < 260
    assert memory["peak_anonymous_mb"] >= memory["anonymous_ready_mb"] + 180



# Through malloc itself: numpy asks for huge pages on large arrays, which would hide the 4 KB faults.
RETAINED = """
import ctypes, resource
from runners.harness import policy
print(policy.set_allocator("{allocator}")["allocator"])
libc, size, faults = ctypes.CDLL(None), 64 * 2**20, []
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
for _ in range(4):  # a 64 MB buffer written and freed, as a training step writes and frees its activations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults)
"""


def _preloaded(allocator: str) -> dict:
    """The environment a run under ``allocator`` starts with (the test is skipped where its library is not
    installed: Debian's libjemalloc2 and libtcmalloc-minimal4)."""
    from runners.harness import policy

    try:
        policy.check_allocator(allocator)
    except policy.PolicyError as error:
        pytest.skip(str(error))
    return policy.preload_environment(allocator)


@pytest.mark.parametrize("allocator", ["glibc", "retain", "jemalloc", "tcmalloc"])
def test_the_retain_allocator_reuses_freed_memory_where_glibc_faults_it_in_again(allocator):
    """glibc maps a 64 MB block of its own and unmaps it when it is freed: each new one faults its 16,384 pages in
    again. Under ``retain`` only the first does; the ones after reuse its pages, as tcmalloc's do. jemalloc, as
    torch's CPU launcher configures it, returns the block as glibc does (preloaded: ``set_allocator`` checks the
    library is the one loaded)."""
    from tests.conftest import run_module_code

    lines = run_module_code(RETAINED.format(allocator=allocator), env=_preloaded(allocator)).stdout.split("\n")
    first, *later = map(int, lines[1].split())
    assert lines[0] == allocator and first > 16_000  # 16,384 pages, less any the heap held already
    returns = allocator in ("glibc", "jemalloc")
    assert all(faults >= 16_384 for faults in later) if returns else max(later) < 100


class _Weights:
    def __init__(self):
        self.weights = [np.zeros(1)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stopping_restores_the_lowest_loss_or_keeps_the_last(restore_best):
    from runners.harness.session import _EarlyStopping

    impl, stopper = _Weights(), _EarlyStopping(patience=2, restore_best=restore_best)
    stopped = []
    for epoch, loss in enumerate([0.5, 0.4, 0.45, 0.47, 0.3], start=1):  # patience runs out after epoch 4
        impl.weights = [np.full(1, float(epoch))]
        stopped.append(stopper.update(epoch, loss, impl, f"logits {epoch}"))
        if stopped[-1]:
            break
    assert stopped == [False, False, False, True] and stopper.best_epoch == 2
    assert stopper.restore(impl, 4, "logits 4") is restore_best
    assert impl.weights[0][0] == (2.0 if restore_best else 4.0)
    assert stopper.best_logits == ("logits 2" if restore_best else "logits 4")
