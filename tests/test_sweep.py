"""The sweep: resume, failures recorded and skipped past, and a whole mini sweep to the report."""

import contextlib
import json
from dataclasses import replace

import pytest

from analysis.load import run_column
from model import records
from model.errors import UserError
from model.plan import Profile, RunPlan
from model.spec import SpecError
from runners.harness import sweep
from tests.conftest import invoke, run_module

TINY = Profile("tiny", "test grid", model=dict(units=8, maxlen=64), train=dict(train_size=384, test_size=100, epochs=1),
               implementations=("torch",), cells=("rnn",), layers=(1, 2), timeout_s=300)


@pytest.fixture
def data_env(monkeypatch, imdb_archive, cache_dir):
    """The data, and no roofline: these sweeps test resuming, failures and interleaving, and the roofline's GEMM
    rates take 8 s of CPU per folder (the whole sweep, below, measures it)."""
    monkeypatch.setenv("IMDB_DATA", str(imdb_archive))
    monkeypatch.setenv("RNNBENCH_CACHE", str(cache_dir))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setattr("runners.harness.executor.measure_roofline", lambda results, threads: None)


def test_grid_interleaves_implementations():
    profile = replace(TINY, implementations=("torch", "tensorflow", "keras-torch"), cells=("rnn", "gru"), layers=(1,))
    plans = sweep.grid(profile, threads=1)
    blocks = [[p.implementation for p in list(plans.values())[i:i + 3]] for i in (0, 3)]
    assert all(sorted(block) == ["keras-torch", "tensorflow", "torch"] for block in blocks)  # every column a block
    assert [p.model.cell for p in plans.values()] == ["rnn"] * 3 + ["gru"] * 3
    assert all(p.train.train_size == 384 and p.model.units == 8 and p.threads == 1 for p in plans.values())


def test_the_permission_to_emulate_bf16_travels_in_every_plan_not_the_environment():
    """``--emulate-bf16`` is a field of each bf16 run's plan (a run started on another machine by Ray obeys it too);
    an fp32 run's plan is the same with or without it, so that a sweep resumes either way."""
    profile = replace(TINY, variants=(("torch", (("precision", "bf16"),)),))
    plans = sweep.grid(profile.narrowed(emulate_bf16=True), threads=1)
    emulated = {name for name, plan in plans.items() if RunPlan.from_dict(plan.to_dict()).emulate_bf16}
    assert emulated == {name for name, plan in plans.items() if plan.variant["precision"] == "bf16"} != set()
    assert not any(plan.emulate_bf16 for plan in sweep.grid(profile, threads=1).values())


def test_an_allocator_column_is_a_column_of_its_own_in_its_configurations_block():
    """``--variants torch:allocator=glibc`` sets the run plan's allocator (not an option of torch's), names its
    column beside the sweep's default (retain), and shares the block of its configuration and seed;
    ``--allocator`` sets every run's, and a glibc sweep names its retain column."""
    from runners.harness.executor import block_key

    profile = replace(TINY, cells=("lstm",), layers=(1,), variants=(("torch", (("allocator", "glibc"),)),))
    plans = sweep.grid(profile, threads=1)
    glibc, default = plans["torch+allocator-glibc-lstm1-s0"], plans["torch-lstm1-s0"]
    assert (glibc.allocator, default.allocator) == ("glibc", "retain") and glibc.variant == default.variant
    assert run_column(glibc.to_dict()) == "torch[allocator=glibc]" and run_column(default.to_dict()) == "torch"
    assert run_column(default.to_dict(), "glibc") == "torch[allocator=retain]"
    assert run_column(glibc.to_dict(), "glibc") == "torch"
    assert block_key(glibc) == block_key(default)
    every_glibc = sweep.grid(replace(profile, variants=()).narrowed(allocator="glibc"), 1)
    assert {plan.allocator for plan in every_glibc.values()} == {"glibc"}
    with pytest.raises(SpecError, match="unknown allocator"):
        profile.narrowed(allocator="mimalloc")
    with pytest.raises(UserError, match="every run's allocator already"):  # two columns named torch
        sweep.grid(replace(profile, variants=(("torch", (("allocator", "retain"),)),)), 1)


def test_variant_columns_get_their_own_runs():
    profile = replace(TINY, implementations=("torch", "tensorflow"), cells=("lstm",), layers=(1,),
                      variants=(("tensorflow", (("graph", False),)),))
    plans = sweep.grid(profile, threads=1)
    assert sorted(plans) == ["tensorflow+graph-False-lstm1-s0", "tensorflow-lstm1-s0", "torch-lstm1-s0"]
    eager = plans["tensorflow+graph-False-lstm1-s0"]
    assert eager.variant == {"formulation": "loop", "jit_compile": False, "graph": False, "precision": "fp32"}
    assert run_column(eager.to_dict()) == "tensorflow[graph=False]"
    assert run_column(plans["tensorflow-lstm1-s0"].to_dict()) == "tensorflow"
    with pytest.raises(UserError, match="needs the graph"):
        sweep.grid(replace(profile, variants=(("tensorflow", (("graph", False), ("jit_compile", True))),)), 1)


def test_compare_rejects_a_malformed_variant(tmp_path):
    done = invoke("runners.compare", "--variants", "tensorflow-graph", "--results", str(tmp_path))
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        "error: bad variant 'tensorflow-graph'; write implementation:option=value, e.g. tensorflow:graph=false"]


def test_plans_round_trip_through_json(tmp_path):
    plan = sweep.grid(replace(TINY, implementations=("tensorflow",)), threads=2)["tensorflow-rnn1-s0"]
    assert plan.variant == {"formulation": "precomputed", "jit_compile": False, "graph": True,
                            "precision": "fp32"}  # "fastest" per cell
    plan.save(tmp_path / "plan.json")
    assert RunPlan.load(tmp_path / "plan.json") == plan
    with pytest.raises(SpecError, match="plan version 9"):
        RunPlan.from_dict(dict(plan.to_dict(), plan_version=9))
    with pytest.raises(SpecError, match=r"plan version 1 .*`python -m runners\.migrate FOLDER`"):
        RunPlan.from_dict(dict(plan.to_dict(), plan_version=1))


def test_sweep_resumes_without_redoing_finished_runs(tmp_path, data_env):
    results = tmp_path / "sweep"
    first = sweep.sweep(results, TINY, threads=1)
    assert first == dict(total=2, executed=2, done=2, failed=0)
    kept = results / "runs" / "torch-rnn1-s0" / "record.json"
    kept_mtime = kept.stat().st_mtime_ns
    record = records.read_record(kept.parent)
    assert record["plan"] == RunPlan.load(kept.parent / "plan.json").to_dict()  # the record embeds its plan
    # An interrupted run: its folder has files but no record.
    interrupted = results / "runs" / "torch-rnn2-s0"
    (interrupted / "record.json").unlink()
    (interrupted / "partial.tmp").write_text("half")
    second = sweep.sweep(results, TINY, threads=1)
    assert second == dict(total=2, executed=1, done=2, failed=0)
    assert kept.stat().st_mtime_ns == kept_mtime
    assert not (interrupted / "partial.tmp").exists()
    manifest = json.loads((results / "manifest.json").read_text())
    assert len(manifest["sessions"]) == 2 and manifest["environment"]["packages"]["keras"] == "3.15.1"
    assert manifest["profile"]["name"] == "tiny" and manifest["threads"] == 1
    baseline = json.loads((results / "baseline.json").read_text())["seeds"]["0"]
    assert baseline["n_train"] == 384 and baseline["n_test"] == 100 and 0.5 < baseline["metrics"]["accuracy"] <= 1
    with pytest.raises(sweep.SweepError, match="planned with other settings"):
        sweep.sweep(results, TINY.narrowed(epochs=2), threads=1)


def test_failed_and_timed_out_runs_are_recorded_and_skipped(tmp_path, data_env):
    results = tmp_path / "sweep"
    plans = sweep.grid(replace(TINY, layers=(1,)), threads=1)
    # A plan that is valid on paper but refused by the run itself: TensorFlow cannot stop flushing denormals.
    model, train = TINY.specs()
    plans["tensorflow-no-ftz"] = RunPlan("tensorflow", model, train, flush_denormal=False, threads=1)
    counts = sweep.run_plans(results, plans, TINY, threads=1, data=None)
    assert counts == dict(total=2, executed=2, done=1, failed=1)
    failure = json.loads((results / "runs" / "tensorflow-no-ftz" / "failed.json").read_text())
    assert failure["reason"] == "error" and "TensorFlow always flushes denormals" in failure["stderr_tail"]
    assert failure["plan"]["flush_denormal"] is False
    again = sweep.run_plans(results, plans, TINY, threads=1, data=None)
    assert again["executed"] == 0 and again["failed"] == 1  # not retried unless asked
    timed_out = sweep.sweep(tmp_path / "slow", replace(TINY, layers=(1,), timeout_s=1), threads=1)
    assert timed_out["failed"] == 1
    failure = json.loads((tmp_path / "slow" / "runs" / "torch-rnn1-s0" / "failed.json").read_text())
    assert failure["reason"] == "timeout"


@pytest.mark.slow
def test_mini_sweep_produces_every_file(tmp_path, imdb_archive, cache_dir):
    done = run_module("runners.compare", "--name", "mini", "--results", str(tmp_path), "--cells", "lstm",
                      "--layers", "1", "--repeats", "1", "--train-size", "384", "--test-size", "100", "--epochs", "1",
                      env={"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)}, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "mini"
    assert "6 of 6 runs finished, 0 failed" in done.stdout  # quick: the four, keras-torch-fused and torch's twin
    assert "[6/6]" in done.stdout and "min left" in done.stdout
    for name in ("REPORT.md", "manifest.json", "baseline.json", "roofline.json", "step_time_vs_depth.png",
                 "accuracy_vs_training_time.png", "peak_memory.png", "step_time_distributions.png"):
        assert (folder / name).exists(), name
    text = (folder / "REPORT.md").read_text()
    for implementation in ("keras-torch", "keras-tensorflow", "torch", "tensorflow", "keras-torch-fused"):
        assert implementation in text
    assert "keras-tensorflow on tensorflow: median overhead" in text and "keras-torch on torch: median overhead" in text
    assert "A/A, LSTM 1L: torch's twin over it" in text and "The A/A margin" in text  # one block: no interval, a point
    regenerated = run_module("analysis.report", str(folder))
    assert regenerated.returncode == 0 and regenerated.stdout.strip().endswith("REPORT.md")


def test_compare_rejects_unknown_names(tmp_path):
    done = invoke("runners.compare", "--cells", "lstm,cnn", "--results", str(tmp_path))
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        "error: unknown cell: cnn; choose from rnn, gru, lstm"]


def test_every_seeds_data_is_prepared_before_the_first_run(tmp_path, monkeypatch):
    """A cache entry built inside a measured run would inflate its ready time and memory baseline."""
    events = []
    monkeypatch.setattr("model.preprocess.prepare", lambda source, **settings:
                        events.append(("prepare", settings["seed"])))
    monkeypatch.setattr("model.imdb.locate", lambda data=None: tmp_path)
    monkeypatch.setattr(sweep, "run_baselines", lambda results, plans: events.append(("baselines",)))
    monkeypatch.setattr("runners.harness.executor.execute", lambda plan, run_dir, timeout_s, tied=False:
                        events.append(("run", plan.train.seed)) or "done")
    profile = replace(TINY, seeds=(0, 1, 2), layers=(1,))
    sweep.sweep(tmp_path / "sweep", profile, threads=1)
    assert events[:4] == [("prepare", 0), ("prepare", 1), ("prepare", 2), ("baselines",)]
    assert [event[0] for event in events[4:]] == ["run"] * 3


def test_start_order_is_a_latin_square_per_configuration_drawn_per_sweep(tmp_path):
    """Quick's six columns: in each whole square of 6 blocks per cell each column starts in each position once (its
    10 seeds end 4 rows into the next square, whose rows are drawn at random, so what is left over is spread, not a
    bias); the order seed is drawn per sweep (two sweeps differ; a resumed one keeps its manifest's), so machines
    do not share orders."""
    from collections import Counter

    from model.plan import get_profile
    from runners.harness.sweep import grid, order_seed

    profile = get_profile("quick")
    width = len(profile.implementations) + len(profile.variants)
    names = list(grid(profile, 2, order_seed=7))
    assert names == list(grid(profile, 2, order_seed=7))  # one seed, one order: a resumed sweep plans the same
    assert names != list(grid(profile, 2, order_seed=8))
    blocks = [names[i:i + width] for i in range(0, len(names), width)]
    for cell in profile.cells:
        mine = [block for block in blocks if block[0].rsplit("-", 2)[1] == f"{cell}1"]
        assert len(mine) == len(profile.seeds)
        # every whole square (6 blocks for quick's six columns; 10 seeds hold one and 4 rows of the next) is balanced
        whole = mine[:width * (len(mine) // width)]
        positions = Counter((name.rsplit("-", 2)[0], place) for block in whole for place, name in enumerate(block))
        assert len(positions) == width * width and set(positions.values()) == {len(whole) // width}
    # No column keeps the same predecessor in most blocks (a cyclic rotation gave 7 of 9).
    pairs = Counter((a.rsplit("-", 2)[0], b.rsplit("-", 2)[0]) for block in blocks for a, b in zip(block, block[1:]))
    assert max(pairs.values()) <= len(blocks) // 2
    drawn = {order_seed(tmp_path / f"new{i}") for i in range(3)}
    assert len(drawn) == 3
    records.write_json_atomic(tmp_path / "kept" / records.MANIFEST_FILE,
                              dict(manifest_version=records.MANIFEST_VERSION, run_order=dict(seed=12345)))
    assert order_seed(tmp_path / "kept") == 12345


def test_the_hybrid_row_averages_a_run_with_the_bigram_model_of_its_seed(tmp_path):
    import numpy as np

    from runners.harness.baseline import hybrid
    from tests.test_analysis import fixture_record

    run = tmp_path / "runs" / "torch-lstm1-s1"
    records.write_json_atomic(run / records.RECORD_FILE, fixture_record("torch", "lstm", 1, [10.0] * 5, seed=1))
    assert hybrid(run, {}) is None  # no predictions (a run as committed under results/reference/): no hybrid
    np.savez(run / records.PREDICTIONS_FILE, labels=np.array([1, 0, 1, 0]),
             probabilities=np.array([0.9, 0.4, 0.3, 0.2]))
    baseline = {"1/probabilities": np.array([0.7, 0.8, 0.9, 0.1]), "1/labels": np.array([1, 0, 1, 0], np.int8)}
    # Averages 0.8, 0.6, 0.6, 0.15: the second review flips to positive, the third is rescued.
    assert hybrid(run, baseline)["metrics"]["accuracy"] == 0.75
    assert hybrid(run, {}) is None  # no bigram model for the seed: no hybrid
    with pytest.raises(ValueError, match="not the baseline's"):
        hybrid(run, {**baseline, "1/labels": np.array([0, 0, 1, 0])})


def test_a_plan_without_a_later_spec_field_resumes_and_another_plan_or_version_is_refused(tmp_path):
    plans = sweep.grid(TINY, threads=1)
    name, plan = next(iter(plans.items()))
    saved = plan.to_dict()
    del saved["train"]["val_split"]  # as plans were written before the setting existed, at its default
    (tmp_path / "runs" / name).mkdir(parents=True)
    (tmp_path / "runs" / name / records.PLAN_FILE).write_text(json.dumps(saved))
    sweep.check_resumable(tmp_path, plans)
    saved["allocator"] = "glibc"  # planned under another allocator: the message names the option
    (tmp_path / "runs" / name / records.PLAN_FILE).write_text(json.dumps(saved))
    with pytest.raises(UserError, match=r"it ran under --allocator glibc: add that option"):
        sweep.check_resumable(tmp_path, plans)
    sweep.check_resumable(tmp_path, {key: replace(value, allocator="glibc") for key, value in plans.items()})
    (tmp_path / "runs" / name / records.PLAN_FILE).write_text(json.dumps(dict(saved, plan_version=1)))
    with pytest.raises(UserError, match=r"planned in version 1 of the run plan; `python -m runners\.migrate "):
        sweep.check_resumable(tmp_path, plans)
    saved["allocator"], saved["train"]["epochs"] = plan.allocator, 7
    (tmp_path / "runs" / name / records.PLAN_FILE).write_text(json.dumps(saved))
    with pytest.raises(UserError, match="planned with other settings; resume"):
        sweep.check_resumable(tmp_path, plans)


def test_ensembles_average_consecutive_seeds_in_threes_and_count_a_rerun_seed_once(tmp_path):
    import numpy as np

    from runners.harness.baseline import ensembles
    from tests.test_analysis import fixture_record

    labels = np.array([1, 0, 1, 0])
    probabilities = {"s0": [0.9, 0.6, 0.4, 0.2], "s1": [0.8, 0.3, 0.7, 0.6], "s2": [0.7, 0.4, 0.6, 0.1],
                     "s1-rerun1": [0.0, 0.0, 0.0, 0.0], "s3": [0.4, 0.6, 0.4, 0.6], "s4": [0.4, 0.6, 0.4, 0.6],
                     "s5": [0.4, 0.6, 0.4, 0.6], "s6": [0.9, 0.1, 0.9, 0.1]}
    for name, values in probabilities.items():
        run = tmp_path / f"torch-lstm1-{name}"
        seed = int(name[1])
        records.write_json_atomic(run / records.RECORD_FILE, fixture_record("torch", "lstm", 1, [10.0] * 5, seed=seed))
        np.savez(run / records.PREDICTIONS_FILE, labels=labels, probabilities=np.array(values))
    found = ensembles(list(tmp_path.iterdir()))
    assert [e["seeds"] for e in found] == [[0, 1, 2], [3, 4, 5]]  # seed 6 alone makes no ensemble
    assert found[0]["runs"] == ["torch-lstm1-s0", "torch-lstm1-s1", "torch-lstm1-s2"]  # not the re-run
    # Means 0.8, 0.433, 0.567, 0.3: all four right, though the members score 0.5, 0.75 and 1.0.
    assert found[0]["metrics"]["accuracy"] == 1.0 and found[1]["metrics"]["accuracy"] == 0.0
    assert found[0]["train_wall_s"] == 18.0 and found[0]["train_cpu_s"] == 30.0  # the members' sums


def test_a_folder_resumed_from_the_reference_keeps_the_hybrids_and_ensembles_of_runs_kept_as_records(tmp_path):
    """results/reference/ keeps a run's record alone: a sweep resumed from such a copy (the study, in sittings)
    must neither fail at its end nor drop the hybrids and ensembles computed before its predictions were left out."""
    import numpy as np

    from tests.test_analysis import fixture_record

    labels = np.array([1, 0, 1, 0])
    for seed in range(6):
        run = tmp_path / "runs" / f"torch-lstm1-s{seed}"
        records.write_json_atomic(run / records.RECORD_FILE, fixture_record("torch", "lstm", 1, [10.0] * 5, seed=seed))
        if seed >= 3:  # run in this sitting: its predictions are here
            np.savez(run / records.PREDICTIONS_FILE, labels=labels, probabilities=np.array([0.9, 0.1, 0.9, 0.1]))
    np.savez(tmp_path / records.BASELINE_PROBABILITIES_FILE,
             **{f"{seed}/{name}": values for seed in range(6)
                for name, values in (("labels", labels), ("probabilities", np.array([0.6, 0.6, 0.6, 0.6])))})
    earlier_ensemble = dict(runs=[f"torch-lstm1-s{seed}" for seed in range(3)], seeds=[0, 1, 2],
                            metrics=dict(accuracy=0.9), train_wall_s=1.0, train_cpu_s=2.0)
    records.write_json_atomic(tmp_path / records.ENSEMBLE_FILE, [earlier_ensemble])
    records.write_json_atomic(tmp_path / records.HYBRID_FILE, {"torch-lstm1-s0": dict(metrics=dict(accuracy=0.7))})
    sweep.run_hybrids(tmp_path)
    sweep.run_ensembles(tmp_path)
    hybrids = records.read_json(tmp_path / records.HYBRID_FILE)
    assert hybrids["torch-lstm1-s0"] == dict(metrics=dict(accuracy=0.7))  # kept
    assert sorted(hybrids) == ["torch-lstm1-s0", *(f"torch-lstm1-s{seed}" for seed in range(3, 6))]
    found = records.read_json(tmp_path / records.ENSEMBLE_FILE)
    assert found[0] == earlier_ensemble and [e["seeds"] for e in found] == [[0, 1, 2], [3, 4, 5]]
    assert found[1]["metrics"]["accuracy"] == 1.0
    assert sweep.scoreless_runs(tmp_path) == 2  # seeds 1 and 2: neither predictions nor an earlier hybrid


def test_an_interleaved_block_trains_as_each_run_would_alone_taking_turns_step_by_step(tmp_path, data_env):
    """Interleaving moves only the clocks: the same losses and test accuracy as the same plan run alone; the two
    columns of an A/A (a label tells them apart) take every round together, each step keeps its round, and a
    waiting process is stopped (the CPU it used while waiting is a small share of the wait)."""
    from analysis.load import load
    from runners.harness.executor import LocalExecutor

    profile = replace(TINY, cells=("gru",), layers=(1,), variants=(("torch", (("label", "b"),)),))
    plans = sweep.grid(profile, threads=1)
    assert sorted(plans) == ["torch+label-b-gru1-s0", "torch-gru1-s0"]
    alone = {"torch-gru1-s0": plans["torch-gru1-s0"]}
    assert sweep.run_plans(tmp_path / "alone", alone, profile, 1, None)["done"] == 1
    counts = sweep.run_plans(tmp_path / "woven", plans, profile, 1, None, executor=LocalExecutor("interleaved"))
    assert counts["done"] == 2
    solo = records.read_record(tmp_path / "alone" / "runs" / "torch-gru1-s0")
    woven = {name: records.read_record(tmp_path / "woven" / "runs" / name) for name in plans}
    assert solo["schedule"] == {"schedule": "sequential"}
    for record in woven.values():
        assert records.step_losses(record) == records.step_losses(solo)
        assert record["metrics"] == solo["metrics"]
        assert record["schedule"]["schedule"] == "interleaved" and record["memory"]["peak_rss_mb"] > 0
        assert record["timing"]["step_rounds"] == [list(range(len(record["timing"]["step_samples_ms"][0])))]
        assert record["timing"]["paused_s"]["gate"]["wall"] > 0
        assert record["schedule"]["wait_cpu_s"] < 0.2 * record["schedule"]["wait_wall_s"]
    first, second = woven.values()
    assert first["schedule"]["block"] == second["schedule"]["block"]
    # a turn per step, and a last one in which the run trains no more: it evaluates and ends while holding the CPU
    steps = len(first["timing"]["step_rounds"][0])
    positions = [position for record in woven.values() for _, position, _ in record["schedule"]["slices"]]
    assert positions.count(0) == positions.count(1) == steps + 1  # both columns in every round
    manifest = json.loads((tmp_path / "woven" / "manifest.json").read_text())
    assert manifest["executor"]["schedule"] == "interleaved" and manifest["executor"]["slice_steps"] == 1
    runs = load(tmp_path / "woven").runs
    assert sorted(runs["implementation"]) == ["torch", "torch[label=b]"] and runs["round_step_ms"].notna().all()


def test_a_subset_of_implementations_holds_for_the_profiles_variant_columns():
    from model.plan import get_profile

    wide = get_profile("cpu-axes-wide").narrowed(implementations=("torch", "tensorflow", "keras-tensorflow"))
    assert {name for name, _ in wide.variants} == {"torch", "tensorflow", "keras-tensorflow"}
    assert all(not name.startswith("keras-torch") for name in sweep.grid(wide, 2))
    kept = get_profile("cpu-axes-wide").narrowed(implementations=("torch",), variants=(("tensorflow", ()),))
    assert kept.variants == (("tensorflow", ()),)  # variants given explicitly stay as given


def test_every_timed_profile_runs_the_aa_twin_and_its_deviation_adds_no_seeds(tmp_path):
    """The twin sets the margin (analysis.verdicts.comparisons): every interleaved speed profile runs it, quick's
    first look is one whole Latin square of its six columns, and the seed rule's look leaves it out."""
    from model.plan import TWIN, get_profile

    for name in ("quick", "programming", "decomposition", "cpu-axes", "cpu-axes-wide"):
        assert TWIN in get_profile(name).variants, name
    quick = get_profile("quick")
    assert quick.first_seeds == len(quick.implementations) + len(quick.variants) == 6
    plans = sweep.grid(quick.narrowed(cells=("lstm",), seeds=(0,)), 2)
    assert "torch+label-b-lstm1-s0" in plans and plans["torch+label-b-lstm1-s0"].label == "b"
    from model import records
    from tests.test_analysis import fixture_record

    for seed in range(3):
        for column, label, ms in (("torch", None, 10.0), ("torch", "b", 10.5), ("tensorflow", None, 16.0)):
            record = fixture_record(column, "lstm", 1, [900, 900, ms, ms * 1.01, ms], seed=seed)
            record["plan"].update(allocator="retain", label=label)
            record["timing"]["step_rounds"] = [[0, 1, 2, 3, 4]]
            record["schedule"] = dict(schedule="interleaved", block=f"block{seed}")
            records.write_json_atomic(tmp_path / "runs" / f"{column}{label or ''}-s{seed}" / "record.json", record)
    estimates, _ = sweep._look(tmp_path, {("lstm", 1, False): (0, 1, 2)})
    assert list(estimates[("lstm", 1, False)]) == ["tensorflow/torch"]


def _runs_of(folder):
    """The processes training into this folder's runs: each run, and what it forked (memory-profiler's sampler)."""
    import psutil

    runs, found = str((folder / "runs").resolve()) + "/", []
    for process in psutil.process_iter(["cmdline", "ppid", "pid", "status"]):
        command = process.info["cmdline"] or []
        if "runners.train" in command and any(arg.startswith(runs) for arg in command):
            found.append(process)
    return found


@pytest.mark.parametrize("how", ["SIGKILL of the sweep", "SIGHUP to its process group"])
def test_no_run_outlives_its_sweep(tmp_path, imdb_archive, cache_dir, how):
    """An out-of-memory kill (SIGKILL) or a closed terminal (SIGHUP) ending an interleaved sweep mid-block leaves no
    process behind: not its runs (each in a session of its own) nor their memory samplers, stopped with them
    between turns (one was left in state T for good)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    from tests.conftest import QUIET_ENV, REPO

    folder = tmp_path / "swept"
    folder.mkdir()
    (folder / "roofline.json").write_text("{}")  # the machine's GEMM rates are not what this test is about
    command = [sys.executable, "-m", "runners.compare", "--profile", "quick", "--implementations", "torch",
               "--variants", "torch:label=b", "--cells", "lstm", "--repeats", "1", "--train-size", "640",
               "--test-size", "100", "--epochs", "3", "--threads", "1", "--no-report", "--results", str(tmp_path),
               "--name", "swept"]
    env = {**os.environ, **QUIET_ENV, "IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)}
    swept = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and swept.poll() is None:
            found = _runs_of(folder)
            runs = {q.info["pid"] for q in found}
            if any(p.info["ppid"] in runs and p.info["status"] == psutil.STATUS_STOPPED for p in found):
                break  # a run's sampler, stopped with the run between turns
            time.sleep(0.01)
        assert swept.poll() is None, f"the sweep ended before a run was training: {swept.stderr.read()[-500:]}"
        if how.startswith("SIGKILL"):
            swept.kill()
        else:
            os.killpg(swept.pid, signal.SIGHUP)
        swept.wait(timeout=30)
        deadline = time.monotonic() + 15
        while (left := _runs_of(folder)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, [(p.info["pid"], p.info["status"]) for p in left]
    finally:
        for process in _runs_of(folder):
            with contextlib.suppress(psutil.Error):
                process.kill()
        if swept.poll() is None:
            swept.kill()


def test_a_second_sweep_on_a_folder_in_use_is_refused_and_an_earlier_ones_runs_are_killed(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "quick"
    # A run an earlier sweep left behind (its sweep killed): a process training into the folder's runs, named
    # relative to where the sweep ran, as make compare names them (results/quick/runs/...).
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "runners.train", "--out",
                               "quick/runs/torch-lstm1-s0"], cwd=tmp_path)
    messages = []
    try:
        with sweep.claimed(folder, messages.append):
            orphan.wait(timeout=10)  # it sleeps for 120 s unless killed (reaped by the sweep here: no status)
            assert messages == [f"killed 1 run process(es) an earlier sweep of {folder} left behind"]
            result = invoke("runners.compare", "--results", str(tmp_path), "--repeats", "1", "--no-report")
            assert result.returncode != 0
            line = (result.stdout + result.stderr).strip()
            assert "\n" not in line and f"{folder} is being written by another sweep (pid " in line
            assert "give --name another results folder" in line
        assert not (folder / sweep.LOCK_FILE).exists()  # released: the next sweep may start
        with sweep.claimed(folder, messages.append):
            pass
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_an_earlier_sweeps_run_is_killed_though_psutil_kept_a_handle_of_an_older_process_with_its_pid(tmp_path):
    """CI's failure of stop 46: in one long pytest process pids are reused, psutil (>= 6) keeps process_iter's
    handles between calls, and a kept handle whose pid a new process took refuses kill() (NoSuchProcess)."""
    import subprocess
    import sys

    import psutil

    folder = tmp_path / "quick"
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "runners.train", "--out",
                               "quick/runs/torch-lstm1-s0"], cwd=tmp_path)
    try:
        list(psutil.process_iter())
        kept = getattr(psutil, "_pmap", {}).get(orphan.pid)
        if kept is None:
            pytest.skip("this psutil keeps no handles between process_iter calls")
        kept._ident, kept._create_time = (orphan.pid, 1.0), 1.0  # as if an older process had held the pid
        assert sweep.kill_orphans(folder) == 1
        assert orphan.wait(timeout=10) is not None
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_an_adaptive_sweep_adds_seeds_only_where_a_ratio_is_short_and_within_its_budget(tmp_path, monkeypatch):
    """The loop around seeds_wanted: which plans each look runs, the widest configuration first, the budget, and
    the account the manifest keeps (the runs themselves and the rule are tested elsewhere)."""
    import numpy as np

    profile = replace(TINY, cells=("rnn", "gru"), layers=(1,), seeds=tuple(range(10)), target_reach=0.05,
                      first_seeds=5, implementations=("torch", "tensorflow"))
    ran, done, looks = [], set(), iter([
        # 5 seeds each: the GRU's ratio reaches far (sd 0.079: 13 seeds needed, capped at twice 5), the RNN's is done
        {("rnn", 1, False): [0.01, 0.012, 0.011, 0.009, 0.010], ("gru", 1, False): [0.0, 0.1, 0.2, 0.05, 0.15]},
        # 8 seeds of the GRU (the budget held 3 of 5): still short (sd 0.075: 12 needed)
        {("rnn", 1, False): [0.01, 0.012, 0.011, 0.009, 0.010], ("gru", 1, False): [0.0, 0.1, 0.2, 0.05, 0.15] * 2},
    ])

    def run_plans(results, plans, *args, **kwargs):  # as the real one: runs what is not done yet
        ran.append(sorted({(plan.model.cell, plan.train.seed) for plan in plans.values()}))
        pending = set(plans) - done
        done.update(plans)
        results.mkdir(parents=True, exist_ok=True)
        records.write_json_atomic(results / records.MANIFEST_FILE,
                                  {"manifest_version": records.MANIFEST_VERSION, "sessions": []})
        return dict(total=len(plans), executed=len(pending), done=len(plans), failed=0)

    def look(results, seeds):
        assert all(kept == tuple(range(len(kept))) for kept in seeds.values())  # a look reads the seeds it has
        estimates = next(looks)
        return ({key: {"tensorflow/torch": np.asarray(estimates[key])} for key in seeds},
                {("rnn", 1, False): 1.5, ("gru", 1, False): 1.5})  # a block's minutes

    clock = iter([0.0, 0.0, 60.0 * 4])  # started; the first look at once, the second after 4 of the 5 minutes
    monkeypatch.setattr(sweep, "run_plans", run_plans)
    monkeypatch.setattr(sweep, "_look", look)
    monkeypatch.setattr(sweep.time, "perf_counter", lambda: next(clock))
    messages = []
    counts = sweep.adaptive_sweep(tmp_path / "a", profile, 1, budget_min=5, on_message=messages.append)
    assert ran[0] == [(cell, seed) for cell in ("gru", "rnn") for seed in range(5)]
    assert ran[1] == sorted([*ran[0], ("gru", 5), ("gru", 6), ("gru", 7)])  # 5 min left, 1.5 a block: 3 of 5
    assert len(ran) == 2  # 1 min left at the second look: no block fits
    account = records.read_json(tmp_path / "a" / records.MANIFEST_FILE)["seeds"]
    assert account == counts["seeds"] and account["seeds"] == {"rnn1": 5, "gru1": 8}
    assert counts["executed"] == 20 + 6 and counts["total"] == 26  # two columns: every look's new runs
    assert list(account["short"]) == ["gru1"] and account["short"]["gru1"]["tensorflow/torch"]["needs"] == 12
    assert "adding 3 to gru1" in messages[0] and messages[-1].endswith("stopping: the budget is spent")
