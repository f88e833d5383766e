"""The Ray executor on a two-node cluster simulated on this machine: same plans and records as the local
executor, data shipped to nodes that lack it, a killed worker recorded as lost and finished by a re-run."""

import json
import os
import signal
import sys
import tempfile
import time

import psutil
import pytest

from model import preprocess, records
from runners.harness import cluster as ray_executor
from tests.conftest import invoke, run_module

if not os.environ.get("RNNBENCH_REQUIRE_RAY"):  # CI installs the cluster group and sets it: no silent skip there
    pytest.importorskip("ray")

# --variants '': without quick's A/A twin, the executor's tests need no third column
SWEEP = ("--implementations", "torch,tensorflow", "--variants", "", "--cells", "rnn", "--layers", "1", "--repeats", "1",
         "--train-size", "384", "--test-size", "100", "--epochs", "1", "--threads", "1")


@pytest.fixture(scope="module")
def two_nodes(imdb_archive, cache_dir, tmp_path_factory):
    """A head that lends nothing (Ray's daemons run no measured run), two nodes lending one bench slot each and one
    lending two cores.
    The nodes' cache folder is empty: what they need must come through Ray, as on machines of their own."""
    from ray.cluster_utils import Cluster

    node_cache = tmp_path_factory.mktemp("node-cache")
    saved = {name: os.environ.get(name) for name in ("RNNBENCH_CACHE", "IMDB_DATA")}
    os.environ["RNNBENCH_CACHE"] = str(node_cache)  # raylets and their workers inherit it
    os.environ.pop("IMDB_DATA", None)
    ray_cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, include_dashboard=False))
    for _ in range(2):
        ray_cluster.add_node(num_cpus=1, resources={ray_executor.NODE_RESOURCE: 1}, object_store_memory=400 << 20)
    # A third lends its two cores one by one, for the `cores` placement.
    ray_cluster.add_node(num_cpus=0, resources={ray_executor.CORES_RESOURCE: 2}, object_store_memory=400 << 20)
    ray_cluster.wait_for_nodes()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    yield ray_cluster, node_cache
    ray_cluster.shutdown()


def compare(results, *options, env):
    return run_module("runners.compare", "--results", str(results), *SWEEP, *options, env=env, timeout=600)


def shape(value):
    """A record's structure: every key, recursively, without the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__ if not isinstance(value, list) else "list"


@pytest.mark.slow
def test_a_sweep_through_two_nodes_matches_the_local_executor(two_nodes, imdb_archive, cache_dir, tmp_path):
    ray_cluster, node_cache = two_nodes
    env = {"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)}
    done = compare(tmp_path, "--name", "ray", "--executor", "ray", "--address", ray_cluster.address, "--schedule",
                   "sequential", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 benchmark node(s), 2 run(s) at a time" in done.stdout and "2 of 2 runs finished, 0 failed" in done.stdout
    assert "[2/2]" in done.stdout and " on " in done.stdout
    # One run after another on each node: the local twin runs sequentially too, for the same record shape.
    local = compare(tmp_path, "--name", "local", "--no-report", "--schedule", "sequential", env=env)
    assert local.returncode == 0, local.stderr[-3000:]
    ray_runs, local_runs = tmp_path / "ray" / "runs", tmp_path / "local" / "runs"
    assert sorted(p.name for p in ray_runs.iterdir()) == sorted(p.name for p in local_runs.iterdir()) == [
        "tensorflow-rnn1-s0", "torch-rnn1-s0"]
    nodes = set()
    for run in ray_runs.iterdir():
        assert (run / "plan.json").read_text() == (local_runs / run.name / "plan.json").read_text()
        remote, here = records.read_record(run), records.read_record(local_runs / run.name)
        assert remote["plan"] == here["plan"]
        executor = remote["environment"].pop("executor")  # the one section that names where the run ran
        assert here["environment"].pop("executor") == {"name": "local"}
        assert shape(remote) == shape(here)
        assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in (local_runs / run.name).iterdir())
        assert executor["name"] == "ray" and executor["placement"] == "node" and executor["hostname"]
        assert remote["environment"]["git"]["commit"] == here["environment"]["git"]["commit"]  # shipped code
        nodes.add(executor["node_id"])
    assert len(nodes) == 2  # one run on each node, at the same time
    # The nodes had no prepared arrays: they came through Ray, byte for byte, with the head's modification time.
    plan = json.loads((ray_runs / "torch-rnn1-s0" / "plan.json").read_text())
    cached = preprocess.cache_file(imdb_archive, plan["model"]["vocab_size"], plan["model"]["maxlen"],
                                   plan["train"]["val_fraction"], plan["train"]["seed"], cache_dir=cache_dir)
    shipped = node_cache / "prepared" / cached.name
    assert shipped.read_bytes() == cached.read_bytes() and shipped.stat().st_mtime_ns == cached.stat().st_mtime_ns
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["executor"]["name"] == "ray" and len(manifest["executor"]["nodes"]) == 2
    roofline = json.loads((tmp_path / "ray" / "roofline.json").read_text())
    assert len(roofline["machines"]) == 2 and all(m["threads"] == 1 and m["cpu_model"] for m in roofline["machines"])
    report = (tmp_path / "ray" / "REPORT.md").read_text()
    assert "# rnnbench report: ray" in report and "Roofline" in report


@pytest.mark.slow
def test_an_interleaved_block_takes_turns_on_one_node_and_blocks_run_side_by_side(two_nodes, imdb_archive, cache_dir,
                                                                                   tmp_path):
    """The default schedule under Ray: each block (configuration and seed) is one task, its columns alive together
    on one node taking a turn each round; the two seeds' blocks take the two nodes at once."""
    ray_cluster, _ = two_nodes
    env = {"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)}
    done = run_module("runners.compare", "--results", str(tmp_path), *SWEEP[:6], *SWEEP[8:], "--repeats", "2",
                      "--executor", "ray", "--address", ray_cluster.address, "--no-report", env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 benchmark node(s), 2 block(s) at a time" in done.stdout
    assert "4 of 4 runs finished, 0 failed" in done.stdout
    manifest = json.loads((tmp_path / "quick" / "manifest.json").read_text())
    assert manifest["executor"]["name"] == "ray" and manifest["executor"]["schedule"] == "interleaved"
    nodes = set()
    for seed in (0, 1):
        woven = [records.read_record(tmp_path / "quick" / "runs" / f"{name}-rnn1-s{seed}")
                 for name in ("torch", "tensorflow")]
        assert {record["schedule"]["schedule"] for record in woven} == {"interleaved"}
        assert woven[0]["schedule"]["block"] == woven[1]["schedule"]["block"]
        where = {record["environment"]["executor"]["node_id"] for record in woven}
        assert len(where) == 1  # the block on one node
        nodes |= where
        steps = len(woven[0]["timing"]["step_rounds"][0])
        positions = [position for record in woven for _, position, _ in record["schedule"]["slices"]]
        assert positions.count(0) == positions.count(1) == steps + 1  # both columns in every round
    assert len(nodes) == 2  # the two blocks side by side


@pytest.mark.slow
def test_a_killed_worker_is_recorded_as_lost_and_a_rerun_finishes_it(two_nodes, imdb_archive, cache_dir, tmp_path):
    ray_cluster, _ = two_nodes
    env = {"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)}
    options = ("--implementations", "torch", "--variants", "", "--executor", "ray", "--address", ray_cluster.address,
               "--no-report",
               "--schedule", "sequential")
    sweep = psutil.Popen([sys.executable, "-m", "runners.compare", "--results", str(tmp_path), *SWEEP,
                          *options], cwd=ray_executor.REPO, env={**os.environ, **env},
                         stdout=open(tmp_path / "out.txt", "w"), stderr=open(tmp_path / "err.txt", "w"))
    training = _wait_for_training(timeout_s=120)
    worker = training.parent()
    assert "_run_on_node" in " ".join(worker.cmdline())
    worker.send_signal(signal.SIGKILL)
    assert sweep.wait(timeout=120) == 0, (tmp_path / "err.txt").read_text()[-2000:]
    training.wait(timeout=10)  # the training process died with its worker instead of running on beside the next run
    failure = json.loads((tmp_path / "quick" / "runs" / "torch-rnn1-s0" / "failed.json").read_text())
    assert failure["reason"] == "lost" and "WorkerCrashedError" in failure["stderr_tail"]
    assert "0 of 1 runs finished, 1 failed" in (tmp_path / "out.txt").read_text()
    rerun = run_module("runners.compare", "--results", str(tmp_path), *SWEEP, *options, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "1 of 1 runs finished, 0 failed; 1 run now" in rerun.stdout  # no --retry-failed needed for a lost run
    assert records.run_state(tmp_path / "quick" / "runs" / "torch-rnn1-s0") == "done"


@pytest.mark.slow
def test_core_set_placement_pins_each_run_to_cores_of_its_own(two_nodes, imdb_archive, cache_dir, tmp_path):
    ray_cluster, _ = two_nodes
    env = {"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)}
    done = compare(tmp_path, "--executor", "ray", "--address", ray_cluster.address, "--placement", "cores",
                   "--no-report", "--schedule", "sequential", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 benchmark node(s), 2 run(s) at a time (cores placement), 1 thread(s) per run" in done.stdout
    pinned = []
    for run in (tmp_path / "quick" / "runs").iterdir():
        record = records.read_record(run)
        executor = record["environment"]["executor"]
        assert executor["placement"] == "cores" and record["environment"]["cpu"]["usable_cores"] == 1
        pinned.append(tuple(executor["pinned_cores"]))
    # One core each, from the node's own; that two runs at once hold different sets is the lock's test below.
    assert len(pinned) == 2 and all(len(cores) == 1 and set(cores) <= os.sched_getaffinity(0) for cores in pinned)
    missing = run_module("runners.compare", "--executor", "ray", "--address", ray_cluster.address, "--placement",
                         "cores", "--results", str(tmp_path), env=env)
    assert missing.returncode != 0 and missing.stderr.strip().splitlines() == [
        "error: --placement cores needs --threads (the cores of each run)"]


def test_a_core_set_is_held_until_its_run_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    with ray_executor._core_set("cores", 2) as first, ray_executor._core_set("cores", 2) as second:
        assert (first, second) == ([0, 1], [2, 3])
        with pytest.raises(RuntimeError, match="no free set of 2 cores"):
            ray_executor._core_set("cores", 2).__enter__()
    with ray_executor._core_set("cores", 2) as again:
        assert again == [0, 1]  # released when the run ended
    with ray_executor._core_set("node", 2) as whole:
        assert whole is None


def _wait_for_training(timeout_s: float) -> psutil.Process:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline"]):
            command = process.info["cmdline"] or []
            if "runners.train" in command and "--plan" in command and "rnnbench-" in " ".join(command):
                return process
        time.sleep(0.05)
    raise AssertionError("no training process started on the cluster")


def test_shipped_files_are_written_where_the_head_had_them_with_its_modification_time(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNBENCH_CACHE", str(tmp_path / "node-cache"))
    archive, blobs = tmp_path / "elsewhere" / "aclImdb_v1.tar.gz", {"archive": b"archive bytes", "npz": b"arrays"}
    files = [(str(archive), False, 13, 1_700_000_000_123_456_789, ["archive"]),
             (str(tmp_path / "head-cache" / "prepared" / "imdb-abc.npz"), True, 6, 1_600_000_000_000_000_000, ["npz"])]
    fetched = []
    ray_executor._place(files, lambda ref: fetched.append(ref) or blobs[ref])
    assert archive.read_bytes() == b"archive bytes" and archive.stat().st_mtime_ns == 1_700_000_000_123_456_789
    placed = tmp_path / "node-cache" / "prepared" / "imdb-abc.npz"
    assert placed.read_bytes() == b"arrays" and placed.stat().st_mtime_ns == 1_600_000_000_000_000_000
    ray_executor._place(files, lambda ref: fetched.append(ref) or blobs[ref])
    assert fetched == ["archive", "npz"]  # already there the second time: nothing fetched


def test_ray_options_are_checked(tmp_path):
    done = invoke("runners.compare", "--executor", "dask", "--results", str(tmp_path))
    assert done.returncode != 0 and done.stderr.strip().splitlines() == ["error: unknown executor: dask; choose "
                                                                         "from local, ray"]
    done = invoke("runners.compare", "--placement", "cores", "--results", str(tmp_path))
    assert done.stderr.strip().splitlines() == ["error: --address and --placement apply to --executor ray only"]
    done = run_module("runners.compare", "--executor", "ray", "--address", "127.0.0.1:1", "--results", str(tmp_path))
    assert done.returncode != 0 and done.stderr.strip().startswith("error: no Ray cluster at --address 127.0.0.1:1")
    assert len(done.stderr.strip().splitlines()) == 1
