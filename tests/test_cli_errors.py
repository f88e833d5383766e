"""User mistakes: one line on stderr, a non-zero exit, no traceback, no half-written run."""

import pytest

from tests.conftest import invoke, run_module


def assert_one_line_error(done, *fragments):
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("args, fragment", [
    (("--cell", "transformer"), "unknown cell"),
    (("--layers", "-1"), "layers must be between 0 and 4"),
    (("--layers", "5"), "layers must be between 0 and 4"),
    (("--layers", "0", "--bidirectional"), "has no direction"),
    (("--maxlen", "0"), "maxlen must be at least 1"),
    (("--impl", "jax"), "unknown implementation"),
    (("--backend", "cntk"), "unknown or unsupported Keras backend"),
    (("--profile", "huge"), "unknown profile"),
    (("--threads", "0"), "threads must be at least 1"),
    (("--threads", "999"), "more than the"),
    (("--segment-len", "30"), "segment_len must be 0 or divide maxlen 200"),
    (("--tokenizer", "bpe"), "unknown tokenizer"),
    (("--schedule", "linear"), "unknown schedule"),
    (("--head-tokens", "200"), "head_tokens must be in [0, maxlen)"),
    (("--impl", "torch", "--jit-compile"), "--jit-compile does not apply to torch"),
    (("--impl", "torch", "--xla"), "--jit-compile does not apply to torch"),  # the older name, still read
    (("--impl", "torch", "--keras-rnn", "auto"), "--rnn-path does not apply to torch"),
    (("--impl", "keras", "--keras-rnn", "fast"), "unknown rnn_path 'fast'"),
    (("--impl", "tensorflow", "--cell", "gru", "--tf-formulation", "block"), "only for the lstm cell"),
    (("--learning-rate", "-1"), "learning_rate must be positive"),
    (("--train-size", "10"), "does not fill one batch"),
    (("--plan", "missing-plan.json"), "cannot read run plan"),
    (("--plan", "missing-plan.json", "--cell", "gru"), "do not combine it with --cell"),
    (("--impl", "torch", "--precision", "fp16"), "unknown precision 'fp16' for torch"),
    (("--allocator", "mimalloc"), "unknown allocator 'mimalloc'; choose one of glibc, retain, jemalloc, tcmalloc"),
    (("--impl", "tensorflow", "--tf-formulation", "block", "--precision", "bf16"), "BlockLSTM) has no bf16 kernel"),
])
def test_train_rejects_bad_settings(tmp_path, args, fragment):
    done = invoke("runners.train", *args, "--out", str(tmp_path / "run"))
    assert_one_line_error(done, fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("module, args", [
    ("runners.train", ("--impl", "torch", "--precision", "bf16")),
    ("runners.compare", ("--implementations", "torch", "--cells", "lstm", "--variants", "torch:precision=bf16")),
])
def test_bf16_is_refused_on_a_cpu_without_bf16_instructions(tmp_path, monkeypatch, module, args):
    from runners.harness import policy

    monkeypatch.setattr(policy, "cpu_has_bf16", lambda: False)
    out = ("--out", str(tmp_path / "run")) if module == "runners.train" else ("--results", str(tmp_path))
    done = invoke(module, *args, *out)
    assert_one_line_error(done, "precision bf16 needs a CPU with bf16 instructions", "--emulate-bf16")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", ["runners.train", "runners.compare"])
def test_a_preloaded_allocator_that_is_not_installed_is_refused_in_one_line(tmp_path, monkeypatch, module):
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    out = ("--out", str(tmp_path / "run")) if module == "runners.train" else ("--results", str(tmp_path))
    done = invoke(module, "--implementations" if module == "runners.compare" else "--impl", "torch",
                  "--allocator", "jemalloc", *out)
    assert_one_line_error(done, "needs libjemalloc.so.2, which is not installed", "apt-get install libjemalloc2")
    assert list(tmp_path.iterdir()) == []


def test_train_rejects_an_unknown_keras_backend_from_the_environment(tmp_path):
    done = run_module("runners.train", "--out", str(tmp_path / "run"), env={"KERAS_BACKEND": "mxnet"})
    assert_one_line_error(done, "mxnet")


def test_train_reports_missing_data_in_one_line(tmp_path):
    done = run_module("runners.train", "--out", str(tmp_path / "run"), "--quiet",
                      env={"IMDB_DATA": str(tmp_path / "missing.tar.gz")})
    assert_one_line_error(done, "IMDB data not found", "IMDB_DATA")
    assert not (tmp_path / "run" / "record.json").exists()


def test_tensorflow_cannot_turn_flush_to_zero_off(tmp_path):
    done = run_module("runners.train", "--impl", "tensorflow", "--no-flush-denormal", "--out", str(tmp_path / "r"),
                      "--quiet")
    assert_one_line_error(done, "TensorFlow always flushes denormals")


def test_uninstalled_backend_is_a_one_line_error(tmp_path):
    """A framework missing from the environment: simulated by hiding torch from the import system."""
    code = ("import importlib.util, sys; real = importlib.util.find_spec; "
            "importlib.util.find_spec = lambda n, *a: None if n == 'torch' else real(n, *a); "
            "from runners.train import app; sys.argv = ['train', '--impl', 'torch']; app()")
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert_one_line_error(done, "not installed")


def test_predict_rejects_a_missing_run_folder(tmp_path):
    done = invoke("runners.predict", "--model", str(tmp_path / "nope"), "great film")
    assert_one_line_error(done, "not found")


def test_predict_rejects_a_folder_without_a_record(tmp_path):
    done = invoke("runners.predict", "--model", str(tmp_path), "great film")
    assert_one_line_error(done, "not a finished run")


def test_predict_rejects_empty_text(tmp_path):
    (tmp_path / "record.json").write_text("{}")
    done = invoke("runners.predict", "--model", str(tmp_path), "   ")
    assert_one_line_error(done, "review 1 is empty")
    done = invoke("runners.predict", "--model", str(tmp_path), input="")
    assert_one_line_error(done, "no review text")


def test_help_lists_the_options():
    done = invoke("runners.train", "--help")
    assert done.returncode == 0
    for option in ("--impl", "--cell", "--layers", "--threads", "--flush-denormal", "--profile", "--out"):
        assert option in done.stdout


@pytest.mark.parametrize("args, fragment", [
    (("--target", "5"), "--target takes a share such as 0.05"),
    (("--target", "-0.1"), "--target takes a share such as 0.05"),
    (("--budget", "0"), "--budget takes minutes above 0"),
    (("--budget", "inf"), "--budget takes minutes above 0"),
    (("--target", "0.05", "--schedule", "sequential"), "with --schedule sequential give --target 0"),
    (("--repeats", "3", "--budget", "10"), "--budget applies to a sweep with a target"),
    (("--profile", "standard", "--budget", "10"), "--budget applies to a sweep with a target"),
    (("--threads", "1,2", "--cells", "lstm"), "with --threads as an axis give --target 0"),
])
def test_compare_rejects_a_bad_target_or_budget(tmp_path, args, fragment):
    done = invoke("runners.compare", *args, "--results", str(tmp_path))
    assert_one_line_error(done, fragment)
    assert list(tmp_path.iterdir()) == []
