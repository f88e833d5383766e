"""Tables and report from hand-made records: medians, ratios, intervals, the written findings."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis import findings, inference, rendering, report, tables, verdicts
from analysis.load import AnalysisError, load, load_machines, row
from model import migration, records
from model.records import PLAN_VERSION, RecordError, write_json_atomic
from tests.conftest import invoke, run_module

ENVIRONMENT = {"cpu": {"model": "Test CPU", "usable_cores": 2, "governor": None}, "memory_total_gb": 24,
               "os": "Linux", "python": "3.11", "git": {"commit": "abc", "dirty": False},
               "packages": {"torch": "2.13.0", "tensorflow-cpu": "2.21.0", "keras": "3.15.1"}}


def fixture_record(implementation, cell, layers, steps_ms, accuracy=0.8, seed=0, peak=100.0, losses=(),
                   n_train=1280, validations=(), other_cpu=0.01):
    return {
        "schema_version": records.SCHEMA_VERSION, "status": "ok", "created": "2026-11-27T00:00:00+00:00",
        "plan": {"plan_version": PLAN_VERSION, "implementation": implementation,
                 "model": {"cell": cell, "layers": layers, "bidirectional": False},
                 "train": {"seed": seed, "epochs": 1, "validations_per_epoch": 1}, "variant": {}, "warmup_steps": 2,
                 "allocator": "glibc"},
        "data": {"n_train": n_train, "n_val": 256, "n_test": 1000, "steps_per_epoch": len(steps_ms)},
        "environment": ENVIRONMENT,
        "runtime": {"kernel_path": f"{implementation} path", "jit_compile": False, "framework": implementation,
                    "policy": {"intra_op_threads": 2, "flush_denormal": True}},
        # No runner-side summary (timing.steady_step_ms): the analysis computes its own from the raw samples.
        "timing": {"step_samples_ms": [list(steps_ms)], "epoch_s": [2.0, 4.0], "validation_s": [0.1, 0.1],
                   "gemm_gflop_per_step": 0.5 * layers,
                   "first_step_s": 1.5, "process_start_to_ready_s": 3.0, "train_wall_s": 6.0, "total_wall_s": 8.0,
                   "train_samples_per_s": 300.0, "warmup": dict(records.warmup_section(list(steps_ms), 2), drift=None),
                   "inference": {"throughput_per_s": 1000.0, "batch_latency_ms": {"median": 50.0}}},
        "cpu": {"train_cpu_s": 10.0, "train_utilisation": 1.6,
                "machine_during_training": {"other_fraction": other_cpu, "steal_fraction": 0.0}},
        "memory": {"peak_above_baseline_mb": peak, "peak_rss_mb": 600.0, "rss_after_imports_mb": 300.0,
                   "baseline_ready_mb": 500.0, "peak_anonymous_above_ready_mb": None},
        "metrics": {"accuracy": accuracy, "f1": accuracy, "roc_auc": 0.9, "log_loss": 0.4},
        "curves": [{"epoch": 1, "step_losses": list(losses)}], "validations": list(validations),
        "early_stopping": {"epochs_run": 2}, "files": [],
        "canary": {"every_s": 15.0, "spent_s": 0.03, "share_of_training": 0.005,
                   "samples": [{"phase": phase, "total_ms": total * (1 + 0.03 * seed),
                                "gemm_ms": 0.1 * total * (1 + 0.03 * seed), "copy_ms": 0.9 * total * (1 + 0.03 * seed),
                                "train_wall_s": 0.0, "at": 1.8e9 + 60 * seed + 20 * layers}
                               for phase, total in CANARY_MS]},
        "schedule": {"schedule": "sequential"},
    }


# Canary readings (ms) by phase, as a quiet machine gives them: no two alike, each seed's run 3% slower than the
# last; the in-training median is what a run's slowdown is read from.
CANARY_MS = (("start", 9.4), ("training", 10.6), ("training", 9.9), ("training", 11.8), ("end", 9.6))



def test_step_statistics_come_from_the_raw_samples_after_warm_up():
    """Median, IQR and mean by hand over the steady samples of two epochs (warm-up: the first 2 steps)."""
    record = fixture_record("torch", "lstm", 1, [900, 800, 10, 14])
    record["timing"]["step_samples_ms"].append([12, 20, 11])
    record["timing"]["steady_step_ms"] = {"median": 1.0, "iqr": 0.0, "mean": 1.0}  # a stale summary, ignored
    flat = row(record)  # steady samples 10, 14, 12, 20, 11: sorted 10 11 12 14 20
    assert flat["run_step_ms"] == 12 and flat["run_step_mean_ms"] == pytest.approx(67 / 5)
    assert flat["run_step_iqr_ms"] == pytest.approx(14 - 11)  # linear quartiles: q1 11, q3 14

# Step samples (ms) of seed 0; the first two of each run are warm-up and must be ignored. Seeds 1 and 2 run
# slower and faster by factors of each column's own: run-to-run variation, unlike from column to column.
STEPS = {
    ("torch", 1): [900, 900, 10, 11, 12, 10, 11],
    ("torch", 2): [900, 900, 20, 21, 22, 20, 21],
    ("tensorflow", 1): [5, 5, 10, 11, 12, 10, 11],  # same as torch: a tie
    ("tensorflow", 2): [5, 5, 20, 22, 24, 20, 22],
    ("keras-torch", 1): [5, 5, 40, 44, 48, 40, 44],
    ("keras-torch", 2): [5, 5, 80, 88, 96, 80, 88],
}
SEED_FACTORS = {"torch": (1.0, 1.05, 0.95), "tensorflow": (1.0, 1.04, 0.97), "keras-torch": (1.0, 1.08, 0.93)}


def spread(name: str) -> float:
    """The geometric mean of a column's seed factors: its step time over seed 0's."""
    return float(np.prod(SEED_FACTORS[name]) ** (1 / len(SEED_FACTORS[name])))


# Test accuracy per seed: tensorflow 0.45-0.55 points above torch, keras-torch 2-3 points below.
ACCURACY = {"torch": (0.80, 0.82, 0.81), "tensorflow": (0.805, 0.8255, 0.8145), "keras-torch": (0.77, 0.80, 0.79)}
LOSSES = {"torch": [0.70, 0.69, 0.68, 0.66], "tensorflow": [0.70, 0.69, 0.681, 0.661],
          "keras-torch": [0.70, 0.70, 0.70, 0.70]}


# Three validation checks, at steps 5, 10 and 15; the first at or above the 85% target per column and seed
# (None: never). Every cell mixes seeds that reach it early, late and not at all: torch's three reach it, one of
# tensorflow's does not (the censored median's case), two of keras-torch's do not (no time).
FIRST_ABOVE = {"torch": (2, 3, 1), "tensorflow": (1, 3, None), "keras-torch": (3, None, None)}


def validation_checks(implementation, layers, seed):
    """Check k after 2.5 k s of training (CPU 4.5 k s) per layer, stretched by the run's seed factor, and
    1 + 0.5 k s of validation (all of which counts on MLPerf's clock)."""
    factor, first = SEED_FACTORS[implementation][seed], FIRST_ABOVE[implementation][seed]
    return [{"epoch": 1, "step": 5 * k, "train_wall_s": 2.5 * k * layers * factor,
             "train_cpu_s": 4.5 * k * layers * factor,
             "val_accuracy": 0.86 if first is not None and k >= first else 0.80 + 0.01 * k, "val_loss": 0.5 - 0.05 * k,
             "validation_s": 1.0 + 0.5 * k} for k in (1, 2, 3)]


def write_results(folder, converged=False, names=("torch", "tensorflow", "keras-torch")):
    for (implementation, layers), steps in STEPS.items():
        if implementation not in names:
            continue
        for seed, factor in enumerate(SEED_FACTORS[implementation]):
            write_json_atomic(folder / "runs" / f"{implementation}-lstm{layers}-s{seed}" / "record.json",
                              fixture_record(implementation, "lstm", layers, [s * factor for s in steps],
                                             ACCURACY[implementation][seed], seed, peak=100.0 * layers,
                                             losses=LOSSES[implementation], n_train=22_500 if converged else 1280,
                                             validations=validation_checks(implementation, layers, seed)))
    write_json_atomic(folder / "baseline.json", {"seeds": {str(seed): {"metrics": {"accuracy": 0.805 + seed / 100,
                      "f1": 0.8, "roc_auc": 0.88}} for seed in range(3)}})
    write_json_atomic(folder / "roofline.json", {"threads": 2, "peak_gflops": 100.0, "small_gemm_gflops": 20.0,
                                                  "small_gemm_shape": [64, 64, 256], "canary": {"total_ms": 9.0}})
    profile = {"name": "standard" if converged else "quick", "description": "test profile",
               "target_accuracy": 0.85 if converged else None, "allocator": "glibc"}
    session = {"started": "now", "command": ["python", "-m", "runners.compare"]}
    write_json_atomic(folder / "manifest.json", {"manifest_version": records.MANIFEST_VERSION, "profile": profile,
                                                 "threads": 2, "environment": ENVIRONMENT, "sessions": [session]})
    return folder


@pytest.fixture
def results(tmp_path):
    folder = write_results(tmp_path / "sweep")
    write_json_atomic(folder / "runs" / "keras-tensorflow-lstm1-s0" / "failed.json",
                      {"status": "failed", "reason": "timeout", "stderr_tail": "killed",
                       "plan": {"plan_version": PLAN_VERSION, "implementation": "keras-tensorflow",
                                "train": {"seed": 0}, "allocator": "glibc",
                                "model": {"cell": "lstm", "layers": 1, "bidirectional": False}}})
    return folder


def test_summary_is_over_runs_and_ratios_are_to_torch(results):
    data = load(results)
    summary = tables.summary(data.runs).set_index(["implementation", "layers"])
    assert summary.loc[("torch", 1), "step_ms"] == pytest.approx(11.0 * spread("torch"))  # run medians 11, 11.55, 10.45
    assert summary.loc[("torch", 1), "step_min_ms"] == pytest.approx(10.45)
    assert summary.loc[("torch", 1), "step_max_ms"] == pytest.approx(11.55)
    assert summary.loc[("keras-torch", 1), "step_ms"] == pytest.approx(44.0 * spread("keras-torch"))
    assert summary.loc[("keras-torch", 1), "step_min_ms"] == pytest.approx(44.0 * min(SEED_FACTORS["keras-torch"]))
    assert summary.loc[("keras-torch", 1), "runs"] == 3
    spreads = spread("keras-torch") / spread("torch")
    assert summary.loc[("keras-torch", 2), "vs_torch"] == pytest.approx(88 / 21 * spreads)
    assert summary.loc[("torch", 1), "vs_torch"] == 1.0
    assert summary.loc[("keras-torch", 1), "vs_torch_low"] > 3.0  # clearly slower: interval far above 1
    low, high = summary.loc[("tensorflow", 1), ["vs_torch_low", "vs_torch_high"]]
    assert low <= 1.0 <= high  # the same seed-0 medians, each column's runs spread its own way: a tie
    assert summary.loc[("torch", 2), "peak_above_mb"] == 200.0
    assert summary.loc[("tensorflow", 1), "accuracy"] == pytest.approx(0.815)
    assert summary.loc[("tensorflow", 1), "accuracy_sd"] == pytest.approx(np.std(ACCURACY["tensorflow"], ddof=1))


def test_ratio_interval_is_over_runs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(30, 1, 200), rng.normal(10, 1, 200)
    ratio, low, high, p = inference.ratio_interval(a, b)
    assert low < ratio < high and 2.8 < low and high < 3.2 and p < 1e-6
    ratio, low, high, p = inference.ratio_interval([30.0], [10.0])  # one run a side: no interval
    assert ratio == pytest.approx(3.0) and np.isnan(low) and np.isnan(high) and np.isnan(p)
    assert np.isnan(inference.ratio_interval([30.0, 31.0], [10.0, 11.0])[1])  # two runs a side: no interval either
    # Identical numbers prove nothing: no spread on a side gives no interval, not a zero-width one.
    assert np.isnan(inference.ratio_interval([30.0, 30.0, 30.0], [10.0, 11.0, 12.0])[1])
    assert np.isnan(inference.difference_interval([0.5, 0.5, 0.5])[1])
    # Runs that disagree by 15% leave a 5% difference undecided.
    ratio, low, high, p = inference.ratio_interval([100, 115, 92], [105, 95, 110])
    assert low < 1.0 < high and p > 0.05


def test_overhead_and_depth_scaling(results):
    runs = load(results).runs
    overhead = verdicts.overhead(runs)
    assert list(overhead["backend"]) == ["torch", "torch"]
    # seed-0 medians 44 and 11 ms, each column's runs spread their own way
    spreads = spread("keras-torch") / spread("torch")
    assert overhead.set_index("layers").loc[1, "overhead"] == pytest.approx(4.0 * spreads)
    depth = verdicts.depth_scaling(tables.summary(runs), runs).set_index("implementation")
    assert depth.loc["torch", "2x_vs_1"] == pytest.approx(21 / 11)
    # the seeds' +-5% spread around it, over 3 runs a depth: a Welch interval about +-12% wide
    assert 1.6 < depth.loc["torch", "2x_vs_1_low"] < 21 / 11 < depth.loc["torch", "2x_vs_1_high"] < 2.2
    sentence = findings.depth_sentences(depth.reset_index())[1]
    assert sentence.startswith("- torch: 2 layers cost LSTM 1.91x (95% CI 1.") and "the 1-layer step time" in sentence
    # a cell timed at one depth only (here: keras-torch's 2-layer runs left out) is named, not printed as nan
    partial = verdicts.depth_scaling(tables.summary(runs[(runs["implementation"] == "torch")
                                                         | (runs["layers"] == 1)]))
    sentences = findings.depth_sentences(partial)
    assert not any("nan" in sentence for sentence in sentences)
    assert any(sentence.startswith("- torch: 2 layers cost LSTM") for sentence in sentences)
    deeper_only = verdicts.depth_scaling(tables.summary(runs[runs["layers"] == 2]))
    assert not [c for c in deeper_only.columns if "x_vs_" in c]  # one depth: nothing to scale against


def test_loss_agreement_against_torch(results):
    data = load(results)
    agreement = tables.loss_agreement(data.runs, data.losses).set_index(["implementation", "layers", "seed"])
    assert agreement.loc[("tensorflow", 1, 0), "first_step_gap"] == 0.0
    assert agreement.loc[("tensorflow", 1, 0), "max_step_gap"] == pytest.approx(0.001)
    assert agreement.loc[("keras-torch", 1, 0), "max_step_gap"] == pytest.approx(0.04)
    assert agreement.loc[("keras-torch", 1, 0), "max_running_mean_gap"] == pytest.approx((0.01 + 0.02 + 0.04) / 4)


def test_equivalence_is_paired_by_seed(results):
    equivalence = tables.equivalence(load(results).runs).set_index(["implementation", "layers"])
    tf = equivalence.loc[("tensorflow", 1)]
    assert tf["difference_points"] == pytest.approx(0.5) and tf["verdict"] == "equivalent within ±1 point"
    keras = equivalence.loc[("keras-torch", 1)]
    assert keras["difference_points"] == pytest.approx(-7 / 3) and keras["high"] < 0 and keras["verdict"] == "lower"


def test_quick_report_states_only_supported_differences(results):
    text = report.generate(results).read_text()
    assert "**Not converged**" in text and "Test CPU" in text.split("## Findings")[0]
    # torch and tensorflow have the same seed-0 medians at 1 layer, their runs spread within 5% of them: the report
    # must call it a tie, not a win.
    line = text.split("LSTM 1L on Test CPU: ")[1].split("\n")[0]
    assert "cannot be told apart from tensorflow" in line
    assert "**keras-torch**" not in text and "keras-torch on torch: median overhead" in text
    assert "Training-loss agreement" in text and "equivalent within" not in text  # no accuracy verdicts in quick
    assert "timeout" in text and "No run was excluded from the timing figures" in text
    for name in ("step_time_vs_depth", "accuracy_vs_training_time", "peak_memory", "step_time_distributions",
                 "loss_trajectories"):
        assert (results / f"{name}.png").stat().st_size > 1000
    for name in ("summary", "keras_overhead", "depth_scaling", "loss_agreement", "equivalence", "runs"):
        assert (results / "tables" / f"{name}.csv").exists() and (results / "tables" / f"{name}.md").exists()
    assert pd.read_csv(results / "tables" / "summary.csv").shape[0] == 6
    headline = text.split("## Headline tables (Test CPU)")[1]
    header = next(line for line in headline.splitlines() if line.startswith("| configuration"))
    # the table's columns, in the table's order (model/implementations.py)
    assert [cell.strip() for cell in header.strip("|").split("|")] == ["configuration", "keras-torch", "torch",
                                                                       "tensorflow"]
    assert "| LSTM 1L " in headline


def test_converged_report_gives_accuracy_time_to_target_and_equivalence(tmp_path):
    folder = write_results(tmp_path / "standard", converged=True)
    text = report.generate(folder).read_text()
    assert "Not converged" not in text
    assert "LSTM 1L: tensorflow minus torch +0.50 points" in text and "**equivalent within ±1 point**" in text
    assert "Time to target on Test CPU" in text
    # By hand from FIRST_ABOVE, the seed factors and validation_checks (check k: 2.5 k s of training, 4.5 k s of
    # CPU, after validations of 1.5, 2.0, 2.5 s), 1 layer:
    # torch reaches at checks 2, 3, 1 of seeds factored 1.0, 1.05, 0.95: training 5.0, 7.875, 2.375 s, with
    # validation 8.5, 13.875, 3.875 s, CPU 9.0, 14.175, 4.275 s; the medians are seed 0's.
    # tensorflow reaches at checks 1 and 3 (factors 1.0 and 1.04) and never: training 2.5, 7.8 s and a miss, which
    # counts as the slowest, so the median is the slower of the two (7.8 s, not their mean 5.15 s); with
    # validation 4.0 and 13.8 s; CPU 4.5 and 14.04 s.
    # keras-torch reaches once: two misses, no time (MLPerf's rule).
    summary = tables.summary(load(folder).runs).set_index(["implementation", "layers"])
    by_hand = {"torch": (3, 5.0, 8.5, 9.0), "tensorflow": (2, 7.8, 13.8, 14.04), "keras-torch": (1,) + (np.nan,) * 3}
    for name, (reached, wall, with_validation, cpu) in by_hand.items():
        row = summary.loc[(name, 1)]
        assert row["reached_target"] == reached and row["ttt_runs"] == 3, name
        assert [row["ttt_wall_s"], row["ttt_eval_wall_s"], row["ttt_cpu_s"]] == pytest.approx(
            [wall, with_validation, cpu], nan_ok=True), name
        assert summary.loc[(name, 2), "ttt_wall_s"] == pytest.approx(2 * wall, nan_ok=True), name  # 2 layers: twice
    assert ("LSTM 1L, torch: 8 s wall with validation; 5 s training only, 9 s CPU (3/3 runs reached it)"
            in text)
    assert ("LSTM 1L, tensorflow: 14 s wall with validation; 8 s training only, 14 s CPU (2/3 runs reached it)"
            in text)
    assert "LSTM 1L, keras-torch: no time (1/3 runs reached it; more than one did not)" in text
    # Paired by seed: the same batches in every column; checks at steps 5, 10 and 15.
    assert ("seed by seed (0, 1, 2; -: never reached; a check every 7 steps), LSTM 1L: keras-torch 15, -, -; "
            "torch 10, 15, 5; tensorflow 5, 15, -." in text)
    assert "mean over 3 seed(s)" in text


def test_report_without_native_torch_and_with_a_run_without_steady_steps(tmp_path):
    folder = write_results(tmp_path / "subset", names=("tensorflow", "keras-torch"))
    write_json_atomic(folder / "runs" / "tensorflow-lstm3-s0" / "record.json",
                      fixture_record("tensorflow", "lstm", 3, [5.0, 5.0]))  # every step is warm-up
    text = report.generate(folder).read_text()
    assert "tensorflow" in text and "vs_torch" not in text.split("## Plots")[0].split("Headline")[0]


def test_roofline_gives_each_implementation_its_share_of_the_gemm_peak(results):
    table = rendering.roofline(tables.summary(load(results).runs), peak_gflops=100.0).set_index("configuration")
    assert table.loc["LSTM 1L", "torch"] == f"{0.5 / 0.011:.1f} (45%)"  # 0.5 GFLOP in 11 ms of a 100 GFLOP/s peak
    assert table.loc["LSTM 2L", "GFLOP/step"] == "1.00"
    text = report.generate(results).read_text()
    assert "Roofline (Test CPU, 2 threads)" in text and "(20% of peak)" in text


def test_programming_model_sets_compile_time_against_the_steady_gain(results):
    # An XLA column for tensorflow: 20% faster per step, 3.5 s more in the first step.
    for seed, factor in enumerate(SEED_FACTORS["tensorflow"]):
        record = fixture_record("tensorflow", "lstm", 1, [s * factor * 0.8 for s in STEPS[("tensorflow", 1)]],
                                seed=seed)
        record["plan"]["model"] = {"cell": "lstm", "layers": 1, "bidirectional": False}
        record["plan"]["variant"] = {"formulation": "loop", "jit_compile": True, "graph": True}
        record["timing"]["first_step_s"] = 5.0
        write_json_atomic(results / "runs" / f"tensorflow+jit_compile-True-lstm1-s{seed}" / "record.json", record)
    summary = tables.summary(load(results).runs)
    assert "tensorflow[jit_compile=True]" in set(summary["implementation"])
    row = verdicts.programming_model(summary, load(results).runs).set_index("variant").loc[
        "tensorflow[jit_compile=True]"]
    assert row["speedup"] == pytest.approx(1.25) and row["variant_first_step_s"] == 5.0
    assert 1 < row["speedup_low"] < 1.25 < row["speedup_high"] < 1.5  # 3 runs a side, +-4% between seeds
    assert row["break_even_steps"] == pytest.approx(3.5e3 / ((11.0 - 8.8) * spread("tensorflow")))
    text = report.generate(results).read_text()
    assert "Programming model (Test CPU)" in text and "| tensorflow[jit_compile=True] " in text


def test_bidirectional_stacks_are_not_pooled_with_unidirectional_ones(results):
    from analysis import plots

    record = json.loads((results / "runs" / "torch-lstm1-s0" / "record.json").read_text())
    record["plan"]["model"]["bidirectional"] = True
    write_json_atomic(results / "runs" / "torch-lstm1-bi-s0" / "record.json", record)
    data = load(results)
    figure = plots.step_time_distributions(data.runs, data.samples)
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert "torch\n1L" in labels and "torch\n1L bi" in labels
    assert "| LSTM 1L bi " in report.generate(results).read_text()  # its own row in the headline tables


def test_busy_runs_are_flagged(results):
    record = json.loads((results / "runs" / "torch-lstm1-s1" / "record.json").read_text())
    record["cpu"]["machine_during_training"]["other_fraction"] = 0.30
    write_json_atomic(results / "runs" / "torch-lstm1-s1" / "record.json", record)
    summary = tables.summary(load(results).runs).set_index(["implementation", "layers"])
    assert summary.loc[("torch", 1), "noisy_runs"] == 1 and summary.loc[("torch", 2), "noisy_runs"] == 0
    assert "torch-lstm1-s1" in report.generate(results).read_text().split("How quiet")[1]


def test_the_canary_is_a_diagnostic_that_judges_no_run(results):
    """Its slowdown is read against the reference measured beside the roofline and reported, but a slowed canary
    makes no run busy (analysis/noise.py says why); with fewer than three in-training canaries there is none."""
    record = json.loads((results / "runs" / "tensorflow-lstm2-s2" / "record.json").read_text())
    for sample in record["canary"]["samples"]:
        sample["total_ms"] = 13.0 if sample["phase"] == "training" else 9.0  # 13 / 9: 1.44x the reference
    write_json_atomic(results / "runs" / "tensorflow-lstm2-s2" / "record.json", record)
    data = load(results)
    assert data.canary == {"ms": 9.0, "source": "measured beside the roofline"}
    runs = data.runs.set_index("run_id")
    assert runs.loc["tensorflow-lstm2-s2", "canary_slowdown"] == pytest.approx(13 / 9)
    # An untouched run: the median of its in-training readings 10.6, 9.9 and 11.8 ms (seed 2: 6% slower) over 9 ms.
    assert runs.loc["torch-lstm1-s2", "canary_slowdown"] == pytest.approx(10.6 * 1.06 / 9.0)
    summary = tables.summary(data.runs).set_index(["implementation", "layers"])
    assert summary.loc[("tensorflow", 2), "noisy_runs"] == 0 and summary.loc[("tensorflow", 2), "timed_runs"] == 3
    text = report.generate(results).read_text().split("How quiet")[1]
    low, high = runs["canary_slowdown"].min(), runs["canary_slowdown"].max()
    assert f"{low:.2f}-{high:.2f}x it" in text and (results / "canary.png").stat().st_size > 1000
    record["canary"]["samples"] = [s for s in record["canary"]["samples"] if s["phase"] != "training"][:1] + [
        dict(record["canary"]["samples"][0], phase="training", total_ms=15.0)] * 2
    write_json_atomic(results / "runs" / "tensorflow-lstm2-s2" / "record.json", record)
    assert np.isnan(load(results).runs.set_index("run_id").loc["tensorflow-lstm2-s2", "canary_slowdown"])


def test_no_canary_reference_no_slowdown_and_no_empty_canary_figure(results):
    """Without the reference measured beside the roofline there is no slowdown (an extreme start canary is no
    reference), and the report writes no canary figure with nothing to show."""
    (results / "roofline.json").unlink()
    data = load(results)
    assert data.canary is None and "canary_slowdown" not in data.runs
    report.generate(results)
    assert not (results / "canary.png").exists()
    assert "canary.png" not in (results / "REPORT.md").read_text()


def test_records_from_different_machines_are_not_pooled(results):
    record = json.loads((results / "runs" / "torch-lstm1-s0" / "record.json").read_text())
    record["environment"]["cpu"]["model"] = "Other CPU"
    write_json_atomic(results / "runs" / "torch-lstm1-s0" / "record.json", record)
    with pytest.raises(AnalysisError, match="different machines"):
        load(results)


def test_empty_results_folder_is_a_clear_error(tmp_path):
    with pytest.raises(AnalysisError, match="holds no runs"):
        load(tmp_path)


def version_2_record(record: dict) -> dict:
    """The same run as schema 2 first wrote it: no canary, schedule, warm-up or anonymous peak; a plan of version
    1 without the allocator (glibc's defaults, as runs ran before the setting)."""
    old = {key: value for key, value in record.items() if key not in ("canary", "schedule")}
    old.update(schema_version=2, plan={key: value for key, value in record["plan"].items() if key != "allocator"},
               timing={key: value for key, value in record["timing"].items() if key != "warmup"},
               memory={key: value for key, value in record["memory"].items()
                       if key != "peak_anonymous_above_ready_mb"})
    old["plan"]["plan_version"] = 1
    return old


def version_1_record(record: dict) -> dict:
    """The same run as schema 1 wrote it: settings at the top level, the warm-up inside train_spec and timing."""
    old = version_2_record(record)
    old = {key: value for key, value in old.items() if key not in ("plan", "created", "validations")}
    plan = record["plan"]
    old.update(schema_version=1, implementation=plan["implementation"], framework=plan["implementation"],
               keras_backend=None, model_spec=plan["model"], train_spec=dict(plan["train"], warmup_steps=2),
               variant={})
    old["timing"] = dict(old["timing"], warmup_steps_excluded=2)
    return old


def test_older_records_are_refused_in_one_line_and_migrated_to_read_as_they_were(results):
    """A record of schema 1 or 2 is refused with the command that migrates it; migrated, it reads as the run did
    (the same row and steady samples; the warm-up rule applied by the migration); the command rewrites a folder's
    records and manifest in place, once; an unknown version is refused."""
    from runners.migrate import migrate

    run_dir, other = results / "runs" / "torch-lstm1-s0", results / "runs" / "torch-lstm1-s1"
    current = records.read_record(run_dir)
    current.pop("migrated_from", None)
    for old in (version_1_record(current), version_2_record(current)):
        migrated = migration.record(old)
        assert migrated["schema_version"] == records.SCHEMA_VERSION and migrated["plan"]["allocator"] == "glibc"
        assert migrated["migrated_from"] == old["schema_version"]
        assert migrated["timing"]["warmup"]["applied_by_migration"]
        assert row(migrated) == row(dict(current, canary=None))  # no canary ran before it existed
        assert records.steady_samples_ms(migrated) == records.steady_samples_ms(current)
        assert migration.record(migrated) == migrated  # a current record is left as it is
    write_json_atomic(run_dir / "record.json", version_1_record(current))
    write_json_atomic(other / "record.json", version_2_record(records.read_record(other)))
    manifest = records.read_json(results / "manifest.json")
    write_json_atomic(results / "manifest.json", {key: value for key, value in manifest.items()
                                                   if key != "manifest_version"})
    with pytest.raises(RecordError, match=r"older than this code reads .*`python -m runners\.migrate ") as refused:
        load(results)
    assert len(str(refused.value).splitlines()) == 1
    checked = invoke("runners.migrate", "--check", str(results))
    assert checked.returncode == 1 and checked.stdout.startswith("would rewrite 2 record.json, 1 manifest.json;")
    assert migrate([results]) == {"record.json": 2, "manifest.json": 1, "current": 18}
    assert invoke("runners.migrate", "--check", str(results)).returncode == 0
    assert records.read_manifest(results)["profile"]["allocator"] == "glibc"
    assert len(load(results).runs) == 19
    write_json_atomic(run_dir / "record.json", dict(current, schema_version=7))
    with pytest.raises(RecordError, match="schema version 7") as refused:
        load(results)
    assert len(str(refused.value).splitlines()) == 1
    write_json_atomic(run_dir / "record.json", current)
    write_json_atomic(run_dir / "plan.json", [1, 2])  # not a plan: refused by the migration in one line
    refused = invoke("runners.migrate", str(results))
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"error: {run_dir / 'plan.json'} holds no JSON object"]
    assert invoke("runners.migrate", str(results / "runs")).returncode == 2  # no results folder in it


def test_estimate_costs_each_term_as_computed_by_hand(results):
    from analysis import estimate
    from model.plan import Profile

    costs = estimate.per_run_costs(load(results).runs)
    torch = costs.loc[("torch", "lstm", 1, False)]
    # Mean steady step of seed 0 is 10.8 ms (10, 11, 12, 10, 11); seeds 1 and 2 scale it by 1.05 and 0.95.
    assert torch["run_step_mean_ms"] == pytest.approx(10.8)
    assert (torch["step_low_ms"], torch["step_high_ms"]) == pytest.approx((10.8 * 0.95, 10.8 * 1.05))
    # The first step's compile counts once: 1.5 s less one mean step.
    assert torch["first_extra_s"] == pytest.approx(1.5 - 0.0108)
    # Two epochs of 2 s and 4 s hold 14 steps: 6 s less the compile, per step, less the step itself. Per run
    # that is (6000 - 1500 + m) / 14 - m ms, linear in the run's mean step m, so its mean over runs is at m = 10.8.
    assert torch["gap_ms"] == pytest.approx((6000 - 1500 + 10.8) / 14 - 10.8)
    profile = Profile("target", "", train=dict(epochs=2, validations_per_epoch=4), implementations=("torch",),
                      cells=("lstm",), layers=(1,), seeds=(0, 1))
    table = estimate.estimate(costs, profile)
    steps, inferred = 22_500 // 64 * 2, 2 * 4 * 2_500 + 25_000

    def by_hand(step_ms):
        return 3.0 + steps * (step_ms + torch["gap_ms"]) / 1e3 + (1.5 - 0.0108) + inferred / 1000.0

    assert len(table) == 2 and table["estimated_s"].tolist() == pytest.approx([by_hand(10.8)] * 2)
    assert table["low_s"].tolist() == pytest.approx([by_hand(10.8 * 0.95)] * 2)
    assert table["high_s"].tolist() == pytest.approx([by_hand(10.8 * 1.05)] * 2)
    compared = estimate.compare_with_actual(table, load(results).runs)
    assert compared.loc[0, "runs"] == 2 and compared.loc[0, "actual_s"] == pytest.approx(2 * (3.0 + 8.0))


def test_estimate_scales_with_maxlen_and_refuses_another_network(results):
    from analysis import estimate
    from model.plan import Profile

    runs = load(results).runs.assign(maxlen=200, units=64, embedding_dim=64, segment_len=None)
    costs = estimate.per_run_costs(runs)
    torch = costs.loc[("torch", "lstm", 1, False)]
    longer = Profile("longer", "", model=dict(maxlen=400), train=dict(epochs=1, validations_per_epoch=1),
                     implementations=("torch",), cells=("lstm",), layers=(1,))
    same = Profile("same", "", train=dict(epochs=1, validations_per_epoch=1), implementations=("torch",),
                   cells=("lstm",), layers=(1,))
    steps, inferred = 22_500 // 64, 2_500 + 25_000
    fixed = 3.0 + steps * torch["gap_ms"] / 1e3 + torch["first_extra_s"]
    for profile, scale in ((same, 1.0), (longer, 2.0)):
        expected = fixed + scale * (steps * 10.8 / 1e3 + inferred / 1000.0)
        assert estimate.estimate(costs, profile)["estimated_s"].iloc[0] == pytest.approx(expected)
    wider = Profile("wider", "", model=dict(units=256), implementations=("torch",), cells=("lstm",), layers=(1,))
    with pytest.raises(estimate.EstimateError, match="units"):
        estimate.estimate(costs, wider)


def machine_folder(folder, cpu, tensorflow_factor):
    """The fixture sweep as measured on another CPU: native TensorFlow's steps scaled by ``tensorflow_factor``."""
    write_results(folder)
    for record_file in (folder / "runs").glob("*/record.json"):
        record = json.loads(record_file.read_text())
        record["environment"] = dict(ENVIRONMENT, cpu=dict(ENVIRONMENT["cpu"], model=cpu), hostname=cpu.split()[0])
        if record["plan"]["implementation"] == "tensorflow":
            steps = [step * tensorflow_factor for step in record["timing"]["step_samples_ms"][0]]
            record["timing"]["step_samples_ms"] = [steps]
        write_json_atomic(record_file, record)
    return folder


def test_reports_across_machines_keep_machines_apart_and_find_cpu_dependent_winners(tmp_path):
    # Native TF 1.3x torch's step time on one CPU, 0.7x on the other: the winner flips with the CPU.
    xeon = machine_folder(tmp_path / "xeon", "Xeon Test CPU", 1.3)
    epyc = machine_folder(tmp_path / "epyc", "EPYC Test CPU", 0.7)
    machines, _ = load_machines([xeon, epyc])
    assert [m.cpu_model for m in machines] == ["EPYC Test CPU", "Xeon Test CPU"]
    assert all(len(m.finished) == 18 for m in machines)  # never pooled: each holds only its own 18 runs
    text = report.generate(xeon, epyc).read_text()
    assert (tmp_path / "cross-machine" / "REPORT.md").exists()
    for machine in ("xeon-test-cpu-2-threads", "epyc-test-cpu-2-threads"):
        assert (tmp_path / "cross-machine" / "machines" / machine / "step_time_vs_depth.png").exists()
    assert "**Machine: Xeon Test CPU**" in (tmp_path / "cross-machine" / "machines" / "xeon-test-cpu-2-threads"
                                            / "REPORT.md").read_text()
    winners = text.split("## Fastest implementation per configuration and machine")[1].split("##")[0]
    lstm1 = next(line for line in winners.splitlines() if line.startswith("| LSTM 1L"))
    # Xeon: torch first, tensorflow 1.3x slower; EPYC: tensorflow first at 0.7x its Xeon time, torch 1/0.7 slower;
    # each scaled by the columns' seed spreads.
    torch_ms, tensorflow_ms = 11.0 * spread("torch"), 11.0 * 0.7 * spread("tensorflow")
    slower = spread("tensorflow") / spread("torch")
    assert f"torch {torch_ms:.1f} ms; tensorflow {1.3 * slower:.2f}x" in lstm1
    assert f"tensorflow {tensorflow_ms:.1f} ms; torch {1 / (0.7 * slower):.2f}x" in lstm1
    assert lstm1.rstrip(" |").endswith("depends on the CPU")
    assert "- LSTM 1L: **the winner depends on the CPU**" in text and "- LSTM 2L: **the winner depends" in text
    ratios = text.split("## Ratio to native torch per machine")[1].split("##")[0]
    rows = [[cell.strip() for cell in line.strip(" |").split("|")] for line in ratios.splitlines()
            if line.startswith("| LSTM")]
    # Welch by hand on the log run medians, 3 runs a side with each column's own seed factors: standard error
    # sqrt(s_tf^2 / 3 + s_torch^2 / 3), Welch-Satterthwaite degrees of freedom; the ratio is the factor times the
    # ratio of the columns' geometric spreads.
    from scipy import stats

    a, b = (np.var(np.log(SEED_FACTORS[name]), ddof=1) / 3 for name in ("tensorflow", "torch"))
    half = stats.t.ppf(0.975, (a + b) ** 2 / (a ** 2 / 2 + b ** 2 / 2)) * np.sqrt(a + b)
    ratios = [factor * spread("tensorflow") / spread("torch") for factor in (0.7, 1.3)]
    expected = [f"{r:.2f}x (95% CI {r * np.exp(-half):.2f}-{r * np.exp(half):.2f})" for r in ratios]
    assert ["LSTM 1L", "tensorflow", *expected] in rows  # EPYC, Xeon
    assert "## Xeon Test CPU, 2 threads" in text and "## EPYC Test CPU, 2 threads" in text


def test_a_folder_holding_two_machines_gets_a_report_per_machine(tmp_path):
    # A Ray sweep over two CPU models writes both into one folder.
    folder = machine_folder(tmp_path / "cluster", "Xeon Test CPU", 1.3)
    other = machine_folder(tmp_path / "other", "EPYC Test CPU", 0.7)
    for run in (other / "runs").iterdir():
        run.rename(folder / "runs" / f"{run.name}-epyc")
    write_json_atomic(folder / "runs" / "torch-lstm9-s0" / "failed.json",
                      {"status": "failed", "reason": "lost", "stderr_tail": "NodeDiedError: node gone",
                       "plan": {"plan_version": PLAN_VERSION, "implementation": "torch", "train": {"seed": 0},
                                "model": {"cell": "lstm", "layers": 9, "bidirectional": False}, "allocator": "glibc"}})
    with pytest.raises(AnalysisError, match="different machines"):
        load(folder)
    text = report.generate(folder).read_text()
    assert text.startswith("# rnnbench across machines: cluster")
    assert "**the winner depends on the CPU**" in text
    assert "torch-lstm9-s0" in text.split("## Failed runs of no single machine")[1]
    assert (folder / "machines" / "epyc-test-cpu-2-threads" / "REPORT.md").exists()


def test_wall_time_on_nodes_deals_runs_in_sweep_order_to_the_first_free_node(results):
    from analysis import estimate

    table = pd.DataFrame(dict(seed=[0, 0, 0, 1], bidirectional=False, layers=1, cell="lstm",
                              estimated_s=[10.0, 10.0, 10.0, 30.0]))
    assert estimate.on_nodes(table, 1) == 60.0
    assert estimate.on_nodes(table, 2) == 40.0  # 10 | 10, then 10 on the first, 30 on the second: 20 and 40
    assert estimate.on_nodes(table, 16) == 30.0  # the longest run
    done = run_module(
        "analysis.estimate", str(results), "--profile", "quick", "--nodes", "1,2")
    assert done.returncode == 0, done.stderr
    assert "on 1 node(s) like this one" in done.stdout and "on 2 node(s)" in done.stdout
    refused = run_module(
        "analysis.estimate", str(results), "--nodes", "0")
    assert refused.returncode != 0 and refused.stderr.strip().splitlines() == [
        "error: --nodes takes node counts of at least 1, e.g. 1,4,16; got '0'"]


# --- Verdicts: what a statistician's review asked for ---------------------------------------------------------

def step_runs(columns: dict[str, list[float]], cell="lstm", other_cpu=None) -> pd.DataFrame:
    """Run rows as load() gives them: one per run median, seeds numbered per column."""
    rows = [dict(implementation=name, cell=cell, layers=1, bidirectional=False, seed=seed, status="ok",
                 run_step_ms=ms, run_step_iqr_ms=1.0, other_cpu_fraction=(other_cpu or {}).get((name, seed), 0.0),
                 steal_fraction=0.0)
            for name, medians in columns.items() for seed, ms in enumerate(medians)]
    return pd.DataFrame(rows)


def test_a_winner_is_named_only_when_it_beats_every_other_column():
    # tensorflow beats the runner-up clearly, but keras-torch, third by its mean, spreads so widely that it
    # cannot be told apart from the fastest: no winner, and the report lists it.
    runs = step_runs({"tensorflow": [10.0, 10.1, 9.9], "torch": [13.0, 13.1, 12.9],
                      "keras-torch": [9.0, 20.0, 14.0]})
    table = pd.DataFrame([dict(implementation=name, cell="lstm", layers=1, bidirectional=False,
                               step_ms=inference.geometric_mean(group["run_step_ms"]), timed_runs=3)
                          for name, group in runs.groupby("implementation")])
    row = verdicts.fastest(table, runs).iloc[0]
    assert row["best"] == "tensorflow" and row["second"] == "torch" and row["low"] > 1.0
    assert not row["clear"] and row["ties"] == "keras-torch"
    runs = step_runs({"tensorflow": [10.0, 10.1, 9.9], "torch": [13.0, 13.1, 12.9], "keras-torch": [30, 31, 29]})
    table["step_ms"] = [30.0, 10.0, 13.0]  # keras-torch, tensorflow, torch (groupby order)
    assert verdicts.fastest(table, runs).iloc[0]["clear"]


def test_holm_on_a_known_family():
    # Holm at 5% over four p-values: 0.01 <= 0.05/4 fails, so nothing is rejected; 0.011 alone would be.
    assert inference.holm([0.02, 0.013, 0.04, 0.03]).tolist() == [False] * 4
    assert inference.holm([0.001, 0.013, 0.04, 0.03]).tolist() == [True, True, False, False]  # 0.013 <= 0.05/3
    assert inference.holm([0.011]).tolist() == [True]
    assert inference.holm([float("nan"), 0.001]).tolist() == [False, True]  # untested rows stay untested
    # Each comparison with torch alone excludes 1 (p 0.03 and 0.04), but the family holds all three pairs
    # (keras-torch/tensorflow too, p 0.69): Holm's first step needs 0.031 <= 0.05/3, so none is clear.
    runs = step_runs({"torch": [10.0, 10.4, 9.6], "tensorflow": [11.0, 11.5, 10.6],
                      "keras-torch": [11.2, 11.7, 10.7]})
    family = verdicts.comparisons(runs).set_index(["numerator", "denominator"])
    versus_torch = family.loc[[("keras-torch", "torch"), ("tensorflow", "torch")]]
    assert len(family) == 3 and (versus_torch["low"] > 1.0).all() and (versus_torch["p"] < 0.05).all()
    assert not family["clear"].any()


def test_the_ratio_interval_covers_the_true_ratio_95_percent_of_the_time():
    # 2,000 draws of 3 vs 3 log-normal runs (15% run-to-run spread) around a true ratio of 1.3.
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2_000):
        a, b = 13.0 * rng.lognormal(0, 0.15, 3), 10.0 * rng.lognormal(0, 0.15, 3)
        _, low, high, _ = inference.ratio_interval(a, b)
        covered += low <= 1.3 <= high
    assert 0.93 <= covered / 2_000 <= 0.97


def test_busy_runs_enter_no_timing_verdict():
    # torch's third run was slowed by a neighbour: left out, the two quiet runs a side give no interval.
    runs = step_runs({"torch": [10.0, 10.2, 25.0], "tensorflow": [12.0, 12.1, 11.9]},
                     other_cpu={("torch", 2): 0.3})
    assert len(tables.timed_groups(runs)[("torch", "lstm", 1, False)]) == 2
    summary = tables.summary(runs.assign(accuracy=0.8, f1=0.8, roc_auc=0.9, log_loss=0.4, epochs_run=1,
                                         epoch_s=1.0, first_step_s=1.0, train_wall_s=1.0, train_cpu_s=1.0,
                                         train_samples_per_s=1.0, inference_per_s=1.0, latency_ms=1.0,
                                         cpu_utilisation=1.0, peak_above_mb=1.0, rss_after_imports_mb=1.0,
                                         kernel_path="k")).set_index("implementation")
    assert summary.loc["torch", "step_ms"] == pytest.approx(np.sqrt(10.0 * 10.2))
    assert summary.loc["torch", "noisy_runs"] == 1 and summary.loc["torch", "runs"] == 3
    assert "†1 busy" in rendering.headline(summary.reset_index(), "step").iloc[0]["torch"]
    assert np.isnan(verdicts.comparisons(runs)["p"]).all()


def test_duplicate_seeds_are_paired_once():
    # A seed run twice (two sweeps of one plan) counts once, as its mean: no cartesian join.
    runs = pd.DataFrame([dict(implementation=name, cell="lstm", layers=1, bidirectional=False, seed=seed,
                              status="ok", accuracy=accuracy)
                         for name, seed, accuracy in [("torch", 0, 0.80), ("torch", 0, 0.82), ("torch", 1, 0.81),
                                                      ("torch", 2, 0.83), ("tensorflow", 0, 0.815),
                                                      ("tensorflow", 1, 0.816), ("tensorflow", 2, 0.834)]])
    row = tables.equivalence(runs).iloc[0]
    assert row["seeds"] == 3
    assert row["difference_points"] == pytest.approx(((0.815 - 0.81) + (0.816 - 0.81) + (0.834 - 0.83)) / 3 * 100)


def test_equivalence_is_a_holm_corrected_tost_and_its_power_is_stated():
    # Differences of 0.2 +- 0.1 points over 3 seeds: the 95% interval sits inside +-1 point.
    d = np.array([0.1, 0.2, 0.3])
    low, high = inference.difference_interval(d)[1:]
    assert low == pytest.approx(0.2 - stats_t(2) * 0.1 / np.sqrt(3)) and high < 1.0
    # Power by hand: sd 0.5 points, 3 seeds: the interval half-width is t(0.975, 2) s / sqrt(3), 2.48 s; it lands
    # inside +-1 only when the sample sd and mean are small, about a third of the time (the figure).
    assert 0.25 < inference.tost_power(3, 0.5) < 0.40
    assert inference.tost_power(10, 0.5) > 0.9 and np.isnan(inference.tost_power(2, 0.5))


def stats_t(df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def test_time_to_target_is_over_timed_runs_one_per_seed():
    # The competitive case: torch's seed 1 ran busy (456 s) and its re-run quiet (243 s). Over every run the
    # censored median would be (243 + 350) / 2 = 296.5 s; over timed runs, one per seed: median(229, 243, 350).
    runs = step_runs({"torch": [10.0, 10.4, 9.6, 10.1]}, other_cpu={("torch", 1): 0.3})
    runs["seed"] = [0, 1, 2, 1]
    runs["run_id"] = ["torch-lstm1-s0", "torch-lstm1-s1", "torch-lstm1-s2", "torch-lstm1-s1-rerun1"]
    runs = runs.assign(ttt_wall_s=[229.0, 456.0, 350.0, 243.0], ttt_cpu_s=[400.0, 800.0, 600.0, 420.0],
                       ttt_eval_wall_s=[239.0, 466.0, 360.0, 253.0], target_accuracy=0.89, accuracy=0.89, f1=0.89,
                       roc_auc=0.9, log_loss=0.3, epochs_run=3, epoch_s=1.0, first_step_s=1.0, train_wall_s=1.0,
                       train_cpu_s=1.0, train_samples_per_s=1.0, inference_per_s=1.0, latency_ms=1.0,
                       cpu_utilisation=1.0, peak_above_mb=1.0, rss_after_imports_mb=1.0, kernel_path="k")
    row = tables.summary(runs).iloc[0]
    assert row["ttt_wall_s"] == 243.0 and row["ttt_eval_wall_s"] == 253.0 and row["ttt_cpu_s"] == 420.0
    assert row["reached_target"] == 3 and row["ttt_runs"] == 3 and row["runs"] == 4
    assert "(3/3)" in rendering.headline(tables.summary(runs), "time_to_target").iloc[0]["torch"]


def ttt_runs(step_medians, ttt_wall_s, other_cpu=None, **columns) -> pd.DataFrame:
    """torch runs with one seed each, as ``load`` gives them in a converged sweep (time to target per run)."""
    runs = step_runs({"torch": step_medians}, other_cpu=other_cpu)
    runs["run_id"] = [f"torch-lstm1-s{seed}" for seed in runs["seed"]]
    return runs.assign(ttt_wall_s=ttt_wall_s, ttt_cpu_s=[2 * s for s in ttt_wall_s],
                       ttt_eval_wall_s=[s + 10 for s in ttt_wall_s], target_accuracy=0.89, accuracy=0.89, f1=0.89,
                       roc_auc=0.9, log_loss=0.3, epochs_run=3, epoch_s=1.0, first_step_s=1.0, train_wall_s=1.0,
                       train_cpu_s=1.0, train_samples_per_s=1.0, inference_per_s=1.0, latency_ms=1.0,
                       cpu_utilisation=1.0, peak_above_mb=1.0, rss_after_imports_mb=1.0, kernel_path="k", **columns)


def test_a_busy_run_without_a_rerun_is_left_out_of_time_to_target():
    # Seed 1 ran busy and fastest to the target (100 s); it was never re-run. Over every run the median would be
    # 229 s; over the timed runs (229 and 350 s) it is their mean, 289.5 s, and only two runs count.
    runs = ttt_runs([10.0, 10.4, 9.6], [229.0, 100.0, 350.0], other_cpu={("torch", 1): 0.3})
    row = tables.summary(runs).iloc[0]
    assert row["ttt_wall_s"] == (229.0 + 350.0) / 2 and row["ttt_cpu_s"] == 229.0 + 350.0
    assert row["ttt_runs"] == 2 and row["reached_target"] == 2 and row["runs"] == 3
    # The same run busy and never reaching the target: it cannot make the cell's time either.
    runs = ttt_runs([10.0, 10.4, 9.6], [229.0, np.nan, 350.0], other_cpu={("torch", 1): 0.3})
    assert tables.summary(runs).iloc[0]["ttt_wall_s"] == (229.0 + 350.0) / 2


def test_an_ensembles_minutes_are_its_timed_runs_a_busy_members_quiet_rerun_standing_in():
    # One ensemble of seeds 0-2 (named by its first run, as load gives it); seed 1 ran busy (30 s of training)
    # and again quietly (7 s). Its minutes are a timing figure: 6 + 7 + 5 s, not the busy run's 30 s.
    runs = ttt_runs([10.0, 10.4, 9.6, 10.2], [229.0] * 4, other_cpu={("torch", 1): 0.3},
                    ensemble=["torch-lstm1-s0"] * 3 + [None], ensemble_accuracy=[0.9] * 3 + [None])
    runs["seed"], runs["run_id"] = [0, 1, 2, 1], [*runs["run_id"][:3], "torch-lstm1-s1-rerun1"]
    runs["train_wall_s"] = [6.0, 30.0, 5.0, 7.0]
    row = tables.summary(runs).iloc[0]
    assert row["ensembles"] == 1 and row["ensemble_accuracy"] == 0.9
    assert row["ensemble_train_wall_s"] == 6.0 + 7.0 + 5.0


def test_censored_time_to_target_counts_a_run_that_never_reached_as_the_slowest():
    assert inference.censored_median(pd.Series([100.0, np.nan, 50.0])) == 100.0  # not the mean of the two lucky ones
    assert np.isnan(inference.censored_median(pd.Series([100.0, np.nan, np.nan])))  # MLPerf: two misses, no time
    assert inference.censored_median(pd.Series([30.0, 10.0, 20.0])) == 20.0


def test_two_run_plans_are_separated_not_pooled(tmp_path):
    # The same machine ran the same cells at maxlen 200 and at maxlen 400: two groups, each with its own report.
    short, long = write_results(tmp_path / "short"), write_results(tmp_path / "long")
    for record_file in (long / "runs").glob("*/record.json"):
        record = json.loads(record_file.read_text())
        record["plan"]["model"]["maxlen"] = 400
        write_json_atomic(record_file, record)
    for run in (long / "runs").iterdir():
        run.rename(short / "runs" / f"{run.name}-400")
    with pytest.raises(AnalysisError, match="run plans") as refused:
        load(short)
    assert len(str(refused.value).splitlines()) == 1
    machines, _ = load_machines([short])
    assert [len(m.finished) for m in machines] == [18, 18]
    labels = report.machine_labels(machines)
    assert len(set(labels)) == 2 and all("plan " in label for label in labels)
    # The CPU flags tell apart two machines whose VM shows the same model string.
    record = json.loads((long / "..").joinpath("short", "runs", "torch-lstm1-s0", "record.json").read_text())
    other = dict(record, environment=dict(record["environment"], cpu=dict(record["environment"]["cpu"],
                                                                          flags={"avx512f": True})))
    assert records.identity(record) != records.identity(other)


def test_a_sweep_with_other_settings_enters_the_reference_under_its_own_name(tmp_path, monkeypatch):
    """A quick sweep over depths must not pool with quick's own reference records: ``--name`` files it apart, and
    its README block gives each column's step time ratio with the report's interval and Holm verdict."""
    from analysis import reference

    results = write_results(tmp_path / "depth")
    monkeypatch.setattr(reference, "REFERENCE", tmp_path / "reference")
    target = reference.add(results, "depth")
    assert target == tmp_path / "reference" / reference.machine_name(ENVIRONMENT) / "depth"
    assert len(list((target / "runs").glob("*/record.json"))) == len(list((results / "runs").iterdir())) == 18
    table = reference.profile_table("depth")
    keras_torch = next(line for line in table.splitlines() if "| LSTM 2L " in line and "keras-torch " in line)
    ratio = 88 / 21 * spread("keras-torch") / spread("torch")  # seed-0 medians 88 and 21 ms
    assert f"{ratio:.2f}x (95% CI" in keras_torch and "vs torch, clear" in keras_torch
    assert "`results/reference/*/depth/`" in table and reference.profile_table("quick").startswith("_(no reference")
    with pytest.raises(SystemExit):
        reference.add(results, "../quick")

def test_reference_records_name_no_host():
    from analysis import reference

    document = {"environment": {"hostname": "vm-17", "command": ["/home/me/.venv/bin/python", "-m", "x"],
                                "cpu": {"model": "AMD EPYC", "logical_cores": 2,
                                        "flags": {"avx2": True, "avx512f": False}}},
                "data": {"source": "/home/me/data/aclImdb_v1.tar.gz", "n_train": 10}}
    clean = reference._anonymous(document)
    assert "hostname" not in clean["environment"] and clean["environment"]["command"][0] == "python"
    assert clean["data"] == {"source": "aclImdb_v1.tar.gz", "n_train": 10}
    assert reference.machine_name(document["environment"]) == "amd-epyc-avx2-2c"


def test_threads_as_an_axis_give_speed_up_and_efficiency(tmp_path):
    # The fixture sweep at 2 threads, and again at 1 thread with every step 1.6x as long.
    two, one = write_results(tmp_path / "t2"), write_results(tmp_path / "t1")
    for record_file in (one / "runs").glob("*/record.json"):
        record = json.loads(record_file.read_text())
        record["runtime"]["policy"]["intra_op_threads"] = 1
        steps = [step * 1.6 for step in record["timing"]["step_samples_ms"][0]]
        record["timing"]["step_samples_ms"] = [steps]
        write_json_atomic(record_file, record)
    for run in (one / "runs").iterdir():
        run.rename(two / "runs" / f"{run.name}-t1")
    machines, _ = load_machines([two])
    assert sorted(data.identity.threads for data in machines) == [1, 2]
    table = tables.thread_scaling({data.identity.threads: data.runs for data in machines})
    row = table.set_index(["implementation", "layers", "threads"]).loc[("torch", 1, 2)]
    assert row["speedup"] == pytest.approx(1.6) and row["efficiency"] == pytest.approx(0.8)
    assert row["low"] < 1.6 < row["high"]
    text = report.generate(two).read_text()
    assert "## Threads: parallel speed-up on Test CPU" in text and "1.60x (95% CI" in text


def test_the_clip_binding_share_is_read_from_the_recorded_norms():
    from analysis.load import clip_binding_share

    record = {"plan": {"train": {"clip_global_norm": 1.0}},
              "curves": [{"gradient_norms": [0.5, 1.5, 2.0]}, {"gradient_norms": [0.9]}]}
    assert clip_binding_share(record) == 0.5  # 2 of 4 steps above the clip norm
    assert clip_binding_share({"plan": record["plan"], "curves": [{"step_losses": [0.7]}]}) is None  # Keras


def test_an_ensemble_is_counted_once_in_its_configuration_and_reported(tmp_path):
    folder = write_results(tmp_path / "standard", converged=True)
    write_json_atomic(folder / records.ENSEMBLE_FILE, [
        {"runs": [f"torch-lstm1-s{seed}" for seed in range(3)], "seeds": [0, 1, 2], "metrics": {"accuracy": 0.9},
         "train_wall_s": 18.0, "train_cpu_s": 30.0}])
    summary = tables.summary(load(folder).runs).set_index(["implementation", "layers"])
    assert summary.loc[("torch", 1), "ensembles"] == 1 and summary.loc[("torch", 1), "ensemble_accuracy"] == 0.9
    assert summary.loc[("torch", 2), "ensembles"] == 0 and summary.loc[("tensorflow", 1), "ensembles"] == 0
    text = report.generate(folder).read_text()
    assert "LSTM 1L, torch: test accuracy 0.9000 over 1 ensemble(s), 0.3 min of training each" in text


def test_bf16_columns_get_their_ratio_to_fp32_and_an_accuracy_verdict(results):
    # A bf16 column of native torch: every step 0.6x fp32's, test accuracy 0.2, 0.3 and 0.1 points lower by seed.
    for seed, factor in enumerate(SEED_FACTORS["torch"]):
        record = fixture_record("torch", "lstm", 1, [s * factor * 0.6 for s in STEPS[("torch", 1)]],
                                accuracy=ACCURACY["torch"][seed] - (0.002, 0.003, 0.001)[seed], seed=seed)
        record["plan"]["variant"] = {"compile": False, "precision": "bf16"}
        record["runtime"]["bf16_emulated"] = True
        write_json_atomic(results / "runs" / f"torch+precision-bf16-lstm1-s{seed}" / "record.json", record)
    row = verdicts.precision(load(results).runs).set_index("implementation").loc["torch"]
    assert row["ratio"] == pytest.approx(0.6) and row["low"] < 0.6 < row["high"] and row["clear"]
    # mean -0.2 points, sd 0.1 over 3 seeds: t(2) interval -0.2 +- 4.303 * 0.1 / sqrt(3)
    half = stats_t(2) * 0.1 / 3 ** 0.5
    assert row["accuracy_points"] == pytest.approx(-0.2)
    assert (row["accuracy_low"], row["accuracy_high"]) == pytest.approx((-0.2 - half, -0.2 + half))
    assert row["accuracy"] == "equivalent within ±1 point" and row["emulated"]
    text = report.generate(results).read_text()
    assert "Precision (Test CPU)" in text and "**Emulated**" in text and "| torch " in text


def test_folders_swept_with_different_allocators_keep_their_columns_apart(tmp_path):
    """A sweep's own allocator names no column; read together with a sweep of the other allocator, every column is
    named against the default (retain), so glibc's torch and retained torch never pool into one column."""
    glibc = write_results(tmp_path / "glibc", names=("torch",))  # the fixture's sweeps run glibc's defaults
    retained = write_results(tmp_path / "retain", names=("torch",))
    manifest = records.read_json(retained / "manifest.json")
    write_json_atomic(retained / "manifest.json", dict(manifest, profile=dict(manifest["profile"], allocator="retain")))
    for record_file in (retained / "runs").glob("*/record.json"):
        record = records.read_json(record_file)
        write_json_atomic(record_file, dict(record, plan=dict(record["plan"], allocator="retain")))
    assert set(load(glibc).runs["implementation"]) == set(load(retained).runs["implementation"]) == {"torch"}
    assert (load(glibc).allocator, load(retained).allocator) == ("glibc", "retain")
    (both,), _ = load_machines([glibc, retained])
    assert both.runs.groupby("implementation").size().to_dict() == {"torch": 6, "torch[allocator=glibc]": 6}
