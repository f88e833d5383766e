"""The sweep on a Ray cluster: each block (interleaved, the default) or each run (sequential) a Ray task that starts
the same ``python -m runners.train`` processes a local sweep starts.

    python -m runners.compare --executor ray --address auto      # docs/cluster.md: starting a cluster

Measured runs never share cores. The nodes say what they lend to the benchmark when they join, as custom
resources: ``rnnbench_node`` (1 per node) for one run per node at a time (placement ``node``, the default), and
``rnnbench_cores`` (cores lent) for one run per ``--threads`` cores, pinned to a core set of its own (placement
``cores``). A head started without them runs no measured run, so Ray's daemons stay off measured machines.
An interleaved block (the columns of one configuration and seed, taking turns step by step: ``executor.interleave``)
is one task, so all of its runs share one node (and, placed by ``cores``, one core set) and its slow periods.

Nothing is assumed shared. The code travels as Ray's working_dir (so every node runs the head's code); the
dataset archive and each seed's prepared arrays travel as Ray objects and are written on a node, once, at the
head's paths with the head's modification time (so the preprocessing cache key, path + size + mtime, is the
same and no run rebuilds it); a run folder comes back as the task's return value and is written into the
head's results folder, record last. A task whose worker or node dies is recorded as failed with reason
``lost``, and the next sweep runs it again.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import socket
import tempfile
import time
from pathlib import Path

from model import records
from model.plan import DEFAULT_SCHEDULE, RunPlan
from runners.harness import gate
from runners.harness.environment import EXECUTOR_VARIABLE, GIT_VARIABLE, REPO, git_commit
from runners.harness.executor import (
    ExecutorError,
    blocks,
    check_schedule,
    data_settings,
    describe_schedule,
    execute,
    interleave,
    record_failure,
    start_afresh,
)

NODE_RESOURCE, CORES_RESOURCE = "rnnbench_node", "rnnbench_cores"
PLACEMENTS = {"node": NODE_RESOURCE, "cores": CORES_RESOURCE}
# Ray's working_dir upload: the code only (Ray's limit is 500 MiB; this is well under 1).
EXCLUDES = [".git", ".venv", "results", "runs", ".cache", ".pytest_cache", "*.egg-info", "__pycache__", "*.tar.gz",
            "*.png"]


class RayExecutor:
    """Connects on creation; ``close()`` disconnects (the cluster itself is left running)."""

    def __init__(self, address: str = "auto", placement: str = "node", schedule: str = DEFAULT_SCHEDULE,
                 slice_steps: int = gate.SLICE_STEPS):
        if placement not in PLACEMENTS:
            raise ExecutorError(f"unknown placement: {placement}; choose from {', '.join(PLACEMENTS)}")
        check_schedule(schedule, slice_steps)
        self.schedule, self.slice_steps = schedule, slice_steps
        try:
            import ray
        except ImportError:
            raise ExecutorError("--executor ray needs Ray: pip install -e '.[cluster]'") from None
        self.ray, self.address, self.placement = ray, address, placement
        self.resource = PLACEMENTS[placement]
        _reachable(address)
        try:
            ray.init(address=address, runtime_env=dict(working_dir=str(REPO), excludes=EXCLUDES),
                     logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ExecutorError(f"no Ray cluster at --address {address} ({str(error).splitlines()[0]}); start one "
                             "as docs/cluster.md shows") from None
        self.nodes = [node for node in ray.nodes() if node["Alive"] and node["Resources"].get(self.resource)]
        if not self.nodes:
            ray.shutdown()
            raise ExecutorError(f"no node of the Ray cluster at {address} lends {self.resource}; start each "
                             f"benchmark node with ray start --resources='{{\"{self.resource}\": "
                             f"{'1' if placement == 'node' else 'CORES'}}}' (docs/cluster.md)")

    def default_threads(self) -> int:
        if self.placement == "cores":
            raise ExecutorError("--placement cores needs --threads (the cores of each run)")
        return min(int(node["Resources"].get("CPU", 1)) for node in self.nodes)

    def slots(self, threads: int) -> int:
        if self.placement == "node":
            return len(self.nodes)
        return sum(int(node["Resources"][CORES_RESOURCE]) // threads for node in self.nodes)

    def summary(self, threads: int) -> str:
        if not self.slots(threads):
            raise ExecutorError(f"no node lends {threads} {CORES_RESOURCE}; lower --threads")
        unit = "block(s)" if self.schedule == "interleaved" else "run(s)"
        return (f"Ray cluster at {self.address}: {len(self.nodes)} benchmark node(s), {self.slots(threads)} {unit} at "
                f"a time ({self.placement} placement), {threads} thread(s) per run")

    def describe(self) -> dict:
        return dict(name="ray", address=self.address, placement=self.placement,
                    **describe_schedule(self.schedule, self.slice_steps),
                    nodes=[dict(node_id=node["NodeID"], address=node["NodeManagerAddress"],
                                resources={key: value for key, value in node["Resources"].items()
                                           if key in ("CPU", NODE_RESOURCE, CORES_RESOURCE)})
                           for node in self.nodes])

    def close(self) -> None:
        self.ray.shutdown()

    def _task(self, function, threads: int, **options):
        units = 1 if self.placement == "node" else threads
        return self.ray.remote(function).options(num_cpus=0, resources={self.resource: units}, max_retries=0,
                                                 **options)

    def measure_roofline(self, results: Path, threads: int | tuple[int, ...]) -> None:
        """Once per benchmark node and thread count, before any run: each CPU model gets its own GEMM rates."""
        path = results / records.ROOFLINE_FILE
        if path.exists():
            return
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        counts = (threads,) if isinstance(threads, int) else tuple(threads)
        refs = [self._task(_roofline_on_node, count, scheduling_strategy=NodeAffinitySchedulingStrategy(
            node["NodeID"], soft=False)).remote(count) for node in self.nodes for count in counts]
        machines = [measured for measured in self.ray.get(refs) if measured]
        if machines:
            records.write_json_atomic(path, dict(machines=machines))

    def run(self, folder: Path, pending: list[tuple[str, RunPlan]], timeout_s: float, report, seed: int) -> None:
        if not pending:
            return
        threads = pending[0][1].threads
        shipped = self._ship([plan for _, plan in pending])
        interleaved = self.schedule == "interleaved"
        task, inflight = self._task(_block_on_node if interleaved else _run_on_node, threads), {}
        try:
            for unit in blocks(pending) if interleaved else [[run] for run in pending]:
                for name, plan in unit:
                    start_afresh(folder / name, plan)  # the plan on the head: the resume check reads it
                plans = [plan.to_dict() for _, plan in unit]
                ref = (task.remote(plans, timeout_s, self.placement, shipped, self.slice_steps, seed) if interleaved
                       else task.remote(plans[0], timeout_s, self.placement, shipped))
                inflight[ref] = (unit, time.perf_counter())
                for name, _ in unit:
                    report(name, "queued")
            while inflight:
                [ref], _ = self.ray.wait(list(inflight), num_returns=1)
                unit, submitted = inflight.pop(ref)
                try:
                    result = self.ray.get(ref)
                except self.ray.exceptions.RayError as error:
                    # The task's own exception is an error; anything else means its worker or node died.
                    own = isinstance(error, self.ray.exceptions.RayTaskError)
                    lines = str(error).strip().splitlines() or [""]
                    for name, plan in unit:
                        record_failure(folder / name, plan, "error" if own else "lost",
                                       time.perf_counter() - submitted, timeout_s,
                                       stderr=lines[-1] if own else f"{type(error).__name__}: {lines[0]}")
                        report(name, "failed", time.perf_counter() - submitted)
                    continue
                for (name, _), run in zip(unit, result["runs"] if interleaved else [result]):
                    _write_run(folder / name, run["files"])
                    report(name, run["state"], run["wall_s"], result["host"])
        except BaseException:
            for ref in inflight:
                self.ray.cancel(ref, force=True)  # their training processes die with their workers
            raise

    def _ship(self, plans: list[RunPlan]) -> dict:
        """The data source path for the runs, the head's git state, and (path, in the cache?, size, mtime_ns,
        [object]) for the dataset and every prepared-arrays file the runs read. The object sits in a list so that
        Ray does not fetch it for a task that finds the file already there."""
        from model import preprocess

        settings, files = data_settings(plans), {}
        for source, rest in settings:
            for path, cache in ((source, False), (preprocess.cache_file(source, **rest), True)):
                if path.is_file() and path not in files:
                    stat = path.stat()
                    files[path] = (str(path.resolve()), cache, stat.st_size, stat.st_mtime_ns,
                                   [self.ray.put(path.read_bytes())])
        return dict(source=str(settings[0][0].resolve()), files=list(files.values()), git=git_commit())


def _reachable(address: str) -> None:
    """Ray retries an unreachable HOST:PORT for minutes; one short connection attempt tells a typo at once."""
    host, _, port = address.rpartition(":")
    if address == "auto" or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise ExecutorError(f"no Ray cluster at --address {address} ({error.strerror or error}); start one as "
                         "docs/cluster.md shows") from None


def _run_on_node(plan: dict, timeout_s: float, placement: str, shipped: dict) -> dict:
    """On a worker node: the data in place, a core set if asked, the run in a fresh process; its files back."""
    import ray

    from runners.harness import policy

    started, plan = time.perf_counter(), RunPlan.from_dict(plan)
    _place(shipped["files"], ray.get)
    context = ray.get_runtime_context()
    where = dict(name="ray", hostname=platform.node(), node_id=context.get_node_id(), placement=placement)
    with tempfile.TemporaryDirectory(prefix="rnnbench-") as scratch, _core_set(placement, plan.threads) as cores:
        run_dir = Path(scratch) / "run"
        env = {"IMDB_DATA": shipped["source"], GIT_VARIABLE: json.dumps(shipped["git"]),
               EXECUTOR_VARIABLE: json.dumps(dict(where, pinned_cores=cores))}
        if placement == "node" and policy.default_threads() < plan.threads:
            run_dir.mkdir()
            record_failure(run_dir, plan, "error", 0.0, timeout_s, stderr=f"{where['hostname']} has "
                           f"{policy.default_threads()} usable cores; the plan asks for {plan.threads} threads")
            state = "failed"
        else:
            state = execute(plan, run_dir, timeout_s, cores=cores, env=env, tied=True)
        files = {str(path.relative_to(run_dir)): path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    return dict(state=state, files=files, host=where["hostname"], wall_s=time.perf_counter() - started)


def _block_on_node(plans: list[dict], timeout_s: float, placement: str, shipped: dict, slice_steps: int,
                   seed: int) -> dict:
    """On a worker node: one interleaved block, its runs alive together taking turns (on one core set if asked);
    each run's files, state and active seconds back."""
    import ray

    from runners.harness import policy

    plans = [RunPlan.from_dict(plan) for plan in plans]
    threads = plans[0].threads
    _place(shipped["files"], ray.get)
    context = ray.get_runtime_context()
    where = dict(name="ray", hostname=platform.node(), node_id=context.get_node_id(), placement=placement)
    with tempfile.TemporaryDirectory(prefix="rnnbench-") as scratch, _core_set(placement, threads) as cores:
        folder, finished = Path(scratch), {}
        block = [(f"run{i}", plan) for i, plan in enumerate(plans)]
        if placement == "node" and policy.default_threads() < threads:
            for name, plan in block:
                (folder / name).mkdir()
                record_failure(folder / name, plan, "error", 0.0, timeout_s, stderr=f"{where['hostname']} has "
                               f"{policy.default_threads()} usable cores; the plan asks for {threads} threads")
                finished[name] = ("failed", 0.0)
        else:
            env = {"IMDB_DATA": shipped["source"], GIT_VARIABLE: json.dumps(shipped["git"]),
                   EXECUTOR_VARIABLE: json.dumps(dict(where, pinned_cores=cores))}
            interleave(folder, block, timeout_s,
                       lambda name, state, seconds=None: finished.update({name: (state, seconds)}),
                       slice_steps, env=env, cores=cores, seed=seed)
        runs = [dict(state=finished[name][0], wall_s=finished[name][1] or 0.0,
                     files={str(path.relative_to(folder / name)): path.read_bytes()
                            for path in (folder / name).rglob("*") if path.is_file()}) for name, _ in block]
    return dict(runs=runs, host=where["hostname"])


def _roofline_on_node(threads: int) -> dict | None:
    from runners.harness.executor import measure_roofline as measure

    with tempfile.TemporaryDirectory(prefix="rnnbench-") as scratch:
        measure(Path(scratch), threads)
        path = Path(scratch) / records.ROOFLINE_FILE
        return records.read_json(path) if path.exists() else None


def _place(files: list, fetch) -> None:
    """Write each shipped file where the head had it, unless this node has it already (same size and mtime);
    ``fetch`` turns a shipped object into its bytes (``ray.get``)."""
    from model import imdb

    for path, cache, size, mtime_ns, [ref] in files:
        target = imdb.default_cache_dir() / "prepared" / Path(path).name if cache else Path(path)
        if target.is_file() and (target.stat().st_size, target.stat().st_mtime_ns) == (size, mtime_ns):
            continue
        with records.atomic(target) as partial:
            partial.write_bytes(fetch(ref))
            os.utime(partial, ns=(mtime_ns, mtime_ns))


class _core_set:
    """Placement ``cores``: a free set of ``threads`` cores on this node, held by an exclusive file lock for the
    run (the kernel releases it if the worker dies). Ray's resource count guarantees a free set exists."""

    def __init__(self, placement: str, threads: int):
        self.placement, self.threads, self.lock = placement, threads, None

    def __enter__(self) -> list[int] | None:
        if self.placement != "cores":
            return None
        cores = sorted(os.sched_getaffinity(0))
        for start in range(0, len(cores) - self.threads + 1, self.threads):
            chosen = cores[start:start + self.threads]
            lock = open(Path(tempfile.gettempdir()) / f"rnnbench-cores-{chosen[0]}-{chosen[-1]}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self.lock = lock
            return chosen
        raise RuntimeError(f"no free set of {self.threads} cores on {platform.node()}: does this node lend more "
                           f"{CORES_RESOURCE} than it has cores?")

    def __exit__(self, *exc) -> None:
        if self.lock:
            self.lock.close()


def _write_run(run_dir: Path, files: dict[str, bytes]) -> None:
    """A run folder from a node, record last: until the record is there the run is not done."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda name: name == records.RECORD_FILE):
        with records.atomic(run_dir / name) as partial:
            partial.write_bytes(files[name])
