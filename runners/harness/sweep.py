"""The sweep: every (implementation, cell, depth, direction, seed) of a profile in its own fresh process.

The sweep writes one plan per run (``runs/<id>/plan.json``) and starts
``python -m runners.train --plan`` on it. Runs come in blocks (one configuration and seed, every column), each has a
timeout, a failure is recorded (``failed.json``) and the sweep goes on; a run counts as finished
once its ``record.json`` exists (written atomically by the run itself), so
re-running the same command resumes where it stopped.

Where and how runs execute is ``runners.harness.executor``'s business: its ``LocalExecutor`` (the default) runs a
block's columns alive at once, taking turns step by step (``schedule="interleaved"``), or one run after another
(``"sequential"``) on this machine; ``runners.harness.cluster.RayExecutor`` runs the same plans, with the same command,
on a Ray cluster (an interleaved block is one task on one node).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from model import records
from model.errors import UserError
from model.plan import DEFAULT_SCHEDULE, LABEL, PLAN_OPTIONS, Profile, RunPlan
from model.spec import Configuration
from runners.harness.executor import LocalExecutor, data_settings


class SweepError(UserError):
    """A sweep that cannot start as asked (reported to users in one line)."""


ORDER_SEED = 20261130  # grid's default order seed; a sweep draws its own (order_seed) and keeps it in its manifest


def run_id(plan: RunPlan, variant: tuple = ()) -> str:
    spec = plan.model
    options = "".join(f"+{option}-{value}" for option, value in variant)
    return (f"{plan.implementation}{options}-{Configuration.of(spec).slug}"
            f"-s{plan.train.seed}")


def start_orders(columns: int, blocks: int, seed: int, index: int) -> list[list[int]]:
    """The columns' order in each of a configuration's ``blocks`` (its seeds): every ``columns`` consecutive blocks
    form a random Latin square, so each column starts in each position equally often (the column started first had
    read about 1.3% faster), and rows, positions and symbols are shuffled, so a column does not keep one predecessor
    (a cyclic rotation let one follow another in most blocks)."""
    import numpy as np

    rng = np.random.default_rng([seed, index])
    orders = []
    for _ in range(0, blocks, columns):
        rows, positions, symbols = rng.permutation(columns), rng.permutation(columns), rng.permutation(columns)
        orders += [[int(symbols[(row + position) % columns]) for position in positions] for row in rows]
    return orders[:blocks]


def grid(profile: Profile, threads: int | tuple[int, ...], data: str | None = None,
         order_seed: int = ORDER_SEED) -> dict[str, RunPlan]:
    """One plan per run, in order: each configuration and seed is a block of every column (implementations and
    variant columns), in the order ``start_orders`` gives it (the order an interleaved block's processes start in,
    and a sequential sweep's run order)."""
    counts = (threads,) if isinstance(threads, int) else tuple(threads)
    if len(counts) > 1:  # threads as an axis: each count a block of its own, run ids marked -t<count>
        return {f"{name}-t{count}": plan for count in counts
                for name, plan in grid(profile, count, data, order_seed).items()}
    threads = counts[0]
    plans = {}
    columns = [(name, ()) for name in profile.implementations] + list(profile.variants)
    configurations = list(itertools.product(profile.bidirectional, profile.layers, profile.cells))
    orders = {configuration: start_orders(len(columns), len(profile.seeds), order_seed, index)
              for index, configuration in enumerate(configurations)}
    for block, seed in enumerate(profile.seeds):
        for bidirectional, layers, cell in configurations:
            order = orders[(bidirectional, layers, cell)][block]
            model, train = profile.specs(cell=cell, layers=layers, bidirectional=bidirectional, seed=seed)
            for name, variant in (columns[i] for i in order):
                options = {option: value for option, value in variant if option not in PLAN_OPTIONS}
                fields = {option: value for option, value in variant if option in PLAN_OPTIONS}
                if fields.get("allocator") == profile.allocator:  # it would be a second column of the same name
                    raise SweepError(f"--variants {name}:allocator={profile.allocator} is every run's allocator "
                                     "already; a column sets the other one")
                plan = RunPlan(implementation=name, model=model, train=train, variant=options, threads=threads,
                               data=data, profile=profile.name, save_model=False, label=fields.get(LABEL),
                               allocator=fields.get("allocator", profile.allocator),
                               emulate_bf16=profile.emulate_bf16 and options.get("precision") == "bf16")
                plans[run_id(plan, variant)] = plan
    return plans


def order_seed(results: Path) -> int:
    """The sweep's order seed: the one its manifest keeps where it is resumed, else a fresh draw, so that no two
    sweeps (or machines) share their start and turn orders."""
    import secrets

    kept = (records.read_manifest(results) or {}).get("run_order", {}).get("seed")
    return kept if isinstance(kept, int) else secrets.randbits(32)


LOCK_FILE = ".sweep.lock"  # held (flock) by the sweep writing the folder; the kernel drops it when that process dies


@contextlib.contextmanager
def claimed(results: Path, on_message=print):
    """The results folder for this sweep alone: a second sweep on it is refused in one line naming the first; on
    entry, the run processes an earlier sweep of the folder left behind (one killed before it could stop them)
    are killed, so that none holds memory or CPU beside the runs to come."""
    import fcntl

    results.mkdir(parents=True, exist_ok=True)
    path = results / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SweepError(f"{results} is being written by another sweep ({holder}); wait for it to end, or give "
                             "--name another results folder") from None
        if path.exists() and os.stat(path).st_ino == os.fstat(fd).st_ino:
            break  # else the holder removed the file as we opened it: take the new one
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC".encode())
        left = kill_orphans(results)
        if left:
            on_message(f"killed {left} run process(es) an earlier sweep of {results} left behind")
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def kill_orphans(results: Path) -> int:
    """Kill every process training into this folder's runs (``runners.train ... --out <results>/runs/...``, and
    what it forked); called with the folder's lock held, so none of them belongs to a live sweep."""
    import psutil

    runs = str((results / records.RUNS_FOLDER).resolve()) + os.sep
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        command, cwd = process.info["cmdline"] or [], process.info["cwd"] or "/"
        # a sweep names run folders as it was given them (make compare: results/quick/runs/...)
        if "runners.train" in command and any(os.path.join(cwd, arg).startswith(runs) for arg in command):
            # a new handle: psutil (>= 6) keeps process_iter's handles between calls, and one kept from an earlier
            # process whose pid this one reuses refuses to kill (NoSuchProcess), which would leave the run alive
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(process.pid))
    for process in found:
        with contextlib.suppress(psutil.Error):
            process.kill()  # SIGKILL ends a stopped process too
    psutil.wait_procs(found, timeout=10)
    return len(found)


def check_resumable(results: Path, plans: dict[str, RunPlan]) -> None:
    """Refuse to resume a results folder whose runs were planned with other settings (a spec field added since, at
    its default, is the same plan; runs under another allocator: the message names the option), or in an older
    version of the run plan (the message names the migration)."""
    for name, plan in plans.items():
        plan_file = results / records.RUNS_FOLDER / name / records.PLAN_FILE
        planned_then = records.read_json(plan_file) if plan_file.exists() else None
        if planned_then is not None and planned_then.get("plan_version") != records.PLAN_VERSION:
            raise SweepError(f"{results} holds run {name} planned in version {planned_then.get('plan_version')} of "
                             f"the run plan; `python -m runners.migrate {results}` rewrites its files, then resume")
        if planned_then is not None and _as_planned_now(planned_then) != plan.to_dict():
            old = planned_then.get("allocator")
            hint = (f" (it ran under --allocator {old}: add that option)" if old and old != plan.allocator else "")
            raise SweepError(f"{results} holds run {name} planned with other settings{hint}; resume it with the "
                             "same options, or give --name a new results folder")


def write_manifest(results: Path, profile: Profile, threads: int | tuple, data: str | None, runs: int,
                   executor: dict, order: list[str], seed: int, new_session: bool = True) -> None:
    from runners.harness.environment import environment

    previous = records.read_manifest(results) or {}
    sessions = previous.get("sessions", []) + ([dict(started=datetime.now(timezone.utc).isoformat(),
                                                     command=[sys.executable, *sys.argv])] if new_session else [])
    order_rule = ("per configuration, a random Latin square over each group of as many seeds as columns "
                  "(start_orders); each round's turn order random from the seed and the block")
    records.write_json_atomic(results / records.MANIFEST_FILE, dict(
        manifest_version=records.MANIFEST_VERSION, profile=profile.to_dict(), threads=threads, data=data, runs=runs,
        run_order=dict(rule=order_rule, seed=seed, runs=order), environment=environment(), executor=executor,
        sessions=sessions, reruns=previous.get("reruns", [])))


def prepare_data(plans: dict[str, RunPlan]) -> None:
    """Build every data cache entry the runs will read (one per seed), so that no measured run builds one."""
    from model import preprocess

    for source, settings in data_settings(plans.values()):
        preprocess.prepare(source, **settings)


def run_baselines(results: Path, plans: dict[str, RunPlan]) -> None:
    """The TF-IDF reference on exactly the rows of each seed's runs (the split and subset depend on the seed)."""
    import numpy as np

    from model import imdb, preprocess
    from runners.harness.baseline import tfidf_logistic_regression

    path, arrays_path = results / records.BASELINE_FILE, results / records.BASELINE_PROBABILITIES_FILE
    done = records.read_baseline(results) or {"seeds": {}}
    arrays = dict(np.load(arrays_path)) if arrays_path.exists() else {}
    for plan in plans.values():
        model, train = plan.model, plan.train
        seed = str(train.seed)
        if seed in done["seeds"] and f"{seed}/probabilities" in arrays:
            continue
        source = imdb.locate(plan.data)
        prepared = preprocess.prepare(source, **preprocess.settings(model, train))
        result = tfidf_logistic_regression(source, prepared, train.train_size, train.test_size, train.seed,
                                           model.tokenizer)
        arrays[f"{seed}/probabilities"], arrays[f"{seed}/labels"] = result.pop("probabilities"), result.pop("labels")
        done["seeds"][seed] = result
        with records.atomic(arrays_path) as tmp, open(tmp, "wb") as out:
            np.savez_compressed(out, **arrays)
        records.write_json_atomic(path, done)


def run_hybrids(results: Path) -> None:
    """``hybrid.json``: every finished run averaged with the bigram model of its seed (runners/harness/baseline.py)."""
    import numpy as np

    from runners.harness.baseline import hybrid

    arrays_path = results / records.BASELINE_PROBABILITIES_FILE
    if not arrays_path.exists():
        return
    baseline = dict(np.load(arrays_path))
    folder = results / records.RUNS_FOLDER
    found = {run.name: hybrid(run, baseline) for run in sorted(folder.iterdir())
             if records.run_state(run) == "done"}
    # a run whose predictions are gone (a folder resumed from results/reference/) keeps its earlier entry
    earlier = records.read_json(results / records.HYBRID_FILE) if (results / records.HYBRID_FILE).exists() else {}
    kept = {name: earlier[name] for name in found if name in earlier and _scoreless(folder / name)}
    records.write_json_atomic(results / records.HYBRID_FILE, {**kept, **{k: v for k, v in found.items() if v}})


def _scoreless(run_dir: Path) -> bool:
    return not (run_dir / records.PREDICTIONS_FILE).exists()


def scoreless_runs(results: Path) -> int:
    """Finished runs kept as their record alone (a folder resumed from results/reference/) that no hybrid written
    before covers: no hybrid, and no ensemble, can be computed for them."""
    folder, path = results / records.RUNS_FOLDER, results / records.HYBRID_FILE
    hybrids = records.read_json(path) if path.exists() else {}
    return sum(1 for run in (folder.iterdir() if folder.is_dir() else ())
               if records.run_state(run) == "done" and _scoreless(run) and run.name not in hybrids)


def run_ensembles(results: Path) -> None:
    """``ensemble.json``: the finished runs of each configuration averaged in threes of consecutive seeds (an
    ensemble whose members' predictions are gone, in a folder resumed from results/reference/, kept as written)."""
    from runners.harness.baseline import ensembles

    folder = results / records.RUNS_FOLDER
    done = [run for run in folder.iterdir() if records.run_state(run) == "done"] if folder.is_dir() else []
    found = ensembles(done)
    path = results / records.ENSEMBLE_FILE
    computed = {tuple(entry["runs"]) for entry in found}
    kept = [entry for entry in (records.read_json(path) if path.exists() else [])
            if tuple(entry["runs"]) not in computed and any(_scoreless(folder / run) for run in entry["runs"])]
    records.write_json_atomic(path, kept + found)


def sweep(results: Path, profile: Profile, threads: int | tuple[int, ...], data: str | None = None,
          retry_failed: bool = False,
          on_progress=None, executor=None) -> dict:
    """Run every pending plan of the profile's grid; returns counts of done / failed runs."""
    seed = order_seed(results)
    plans = grid(profile, threads, data, seed)
    return run_plans(results, plans, profile, threads, data, retry_failed, on_progress, executor, seed)


def compare_profile(results: Path, profile: Profile, threads: tuple[int, ...] | None = None, data: str | None = None,
                    retry_failed: bool = False, executor: str = "local", address: str = "auto",
                    placement: str = "node", rerun_noisy_runs: int = 0, on_progress=None,
                    on_message=print, schedule: str = DEFAULT_SCHEDULE, slice_steps: int | None = None,
                    budget_min: float | None = None) -> dict:
    """What ``python -m runners.compare`` does after reading its options: the profile's sweep on the chosen
    executor, then up to ``rerun_noisy_runs`` extra runs per cell whose runs were noisy. Returns the sweep's
    counts, with ``reran`` (how many noisy runs were run again). ``schedule``: interleaved (each
    block's columns alive at once, taking turns of ``slice_steps`` steps) or sequential (one run after another).
    A profile with a ``target_reach`` adds seeds where they are needed (``adaptive_sweep``, within ``budget_min``
    minutes); one without runs every seed. One sweep writes a results folder at a time (``claimed``)."""
    from runners.harness import policy

    threads = tuple(threads or profile.threads) or None
    runner = _executor(executor, address, placement, schedule, slice_steps, threads)
    try:
        if executor == "ray":
            threads = threads or (runner.default_threads(),)
            on_message(runner.summary(max(threads)))
        threads = threads or (policy.default_threads(),)
        axis = threads[0] if len(threads) == 1 else threads
        _check_plans(profile, axis, data, schedule)
        with claimed(results, on_message):
            if profile.target_reach:
                counts = adaptive_sweep(results, profile, axis, data, retry_failed, on_progress, runner, budget_min,
                                        on_message)
            else:
                counts = sweep(results, profile, axis, data, retry_failed, on_progress=on_progress, executor=runner)
            counts["reran"] = len(rerun_noisy(results, rerun_noisy_runs, min(3, len(profile.seeds)), profile.timeout_s,
                                              runner, on_progress)) if rerun_noisy_runs else 0
            if scoreless := scoreless_runs(results):
                on_message(f"{scoreless} finished run(s) hold their record alone (as results/reference/ keeps them): "
                           "no hybrid or ensemble with them")
    finally:
        runner.close()
    return counts


def _blocks_to_add(short: dict, wanted: dict, have: dict, minutes: dict, left: float | None) -> tuple[dict, float]:
    """Seeds (blocks) to add per configuration short of the target, and their minutes: the widest first, one with
    no interval (a column failing or untimed) last, since more seeds may not give it one; within ``left`` minutes
    where a budget is set."""
    adding, cost = {}, 0.0
    widest_first = sorted(short, key=lambda k: -max(r if r == r else -1.0 for r, _ in short[k].values()))
    for key in (k for k in widest_first if wanted[k] > have[k]):
        each = minutes.get(key) or max(minutes.values(), default=0.0)
        blocks = wanted[key] - have[key]
        blocks = blocks if left is None or each <= 0 else min(blocks, int((left - cost) // each))
        if blocks > 0:
            adding[key], cost = blocks, cost + blocks * each
    return adding, cost


def _executor(executor: str, address: str, placement: str, schedule: str, slice_steps: int | None,
              threads: tuple[int, ...] | None):
    """The executor the options name, its options checked (a local one: the thread counts too)."""
    from runners.harness import policy
    from runners.harness.gate import SLICE_STEPS

    if executor not in ("local", "ray"):
        raise SweepError(f"unknown executor: {executor}; choose from local, ray")
    if executor == "local" and (address != "auto" or placement != "node"):
        raise SweepError("--address and --placement apply to --executor ray only")
    slice_steps = SLICE_STEPS if slice_steps is None else slice_steps
    if executor == "local":
        for count in threads or ():
            policy.check_threads(count)
        return LocalExecutor(schedule, slice_steps)
    from runners.harness.cluster import RayExecutor

    return RayExecutor(address, placement, schedule, slice_steps)


def _check_plans(profile: Profile, axis: int | tuple[int, ...], data: str | None, schedule: str) -> None:
    """Refuse, before any run starts, what this machine or the options cannot do: a precision or allocator the
    CPU lacks, a target with threads as an axis or without interleaving."""
    from runners.harness import policy

    planned = grid(profile, axis, data).values()
    for plan in planned:
        policy.check_precision(plan.variant, plan.emulate_bf16)
    for allocator in {plan.allocator for plan in planned}:
        policy.check_allocator(allocator)
    if profile.target_reach and isinstance(axis, tuple):
        raise SweepError("--target adds seeds per configuration at one thread count; with --threads as an axis "
                         "give --target 0 (every seed)")
    if profile.target_reach and schedule != "interleaved":
        raise SweepError("--target reads intervals over interleaved blocks; with --schedule sequential give "
                         "--target 0 or --repeats N (every seed)")


def run_plans(results: Path, plans: dict[str, RunPlan], profile: Profile, threads: int | tuple, data: str | None,
              retry_failed: bool = False, on_progress=None, executor=None, seed: int | None = None,
              new_session: bool = True) -> dict:
    """``on_progress(position, total, run_id, state, seconds=None, where=None)`` hears of every run: skipped
    ("done earlier", "failed earlier"), started ("running", local) or submitted ("queued", Ray), and finished.
    ``new_session``: this call starts a command's work on the folder (an adaptive sweep's later looks do not)."""
    executor = executor or LocalExecutor("sequential")  # called without one: one run after another
    seed = order_seed(results) if seed is None else seed
    check_resumable(results, plans)
    results.mkdir(parents=True, exist_ok=True)
    write_manifest(results, profile, threads, data, len(plans), executor.describe(), list(plans), seed, new_session)
    prepare_data(plans)
    run_baselines(results, plans)
    executor.measure_roofline(results, threads)  # at each thread count of the sweep
    folder, total, finished = results / records.RUNS_FOLDER, len(plans), 0

    def report(name: str, state: str, seconds: float | None = None, where: str | None = None) -> None:
        nonlocal finished
        waiting = state in ("running", "queued")
        finished += not waiting
        if on_progress:
            on_progress(finished + waiting, total, name, state, seconds, where)

    pending = []
    for name, plan in plans.items():
        state = records.run_state(folder / name)
        if state == "done" or (state == "failed" and not retry_failed and not _lost(folder / name)):
            report(name, f"{state} earlier")
        else:
            pending.append((name, plan))
    executor.run(folder, pending, profile.timeout_s, report, seed)
    run_hybrids(results)
    run_ensembles(results)
    states = [records.run_state(folder / name) for name in plans]
    return dict(total=total, executed=len(pending), done=states.count("done"), failed=states.count("failed"))


def _as_planned_now(saved: dict) -> dict:
    try:
        return RunPlan.from_dict(saved).to_dict()
    except UserError:
        return saved


def _lost(run_dir: Path) -> bool:
    """A run whose worker or node died was not at fault: a re-run runs it again without being asked."""
    return records.read_failure(run_dir).get("reason") == "lost"


RERUN_MARK = "-rerun"


def reruns_needed(runs, quiet_needed: int, extra: int) -> list[tuple[str, str]]:
    """Per cell (column and configuration) with fewer than ``quiet_needed`` quiet finished runs: which noisy runs
    to run again, as (run to repeat, new run id), at most ``extra`` re-runs per cell over the whole folder
    (failed re-runs count)."""
    from analysis.load import KEYS
    from analysis.noise import quiet

    todo = []
    for _, cell in runs.groupby(KEYS):
        finished = cell[cell["status"] == "ok"]
        calm = quiet(finished)
        done = int(cell["run_id"].str.contains(RERUN_MARK, regex=False).sum())
        missing = min(quiet_needed - int(calm.sum()), extra - done)
        noisy = sorted(finished.loc[~calm, "run_id"])
        for n in range(max(0, missing) if noisy else 0):
            repeated = noisy[n % len(noisy)]
            todo.append((repeated, f"{repeated.split(RERUN_MARK)[0]}{RERUN_MARK}{done + n + 1}"))
    return todo


def rerun_noisy(results: Path, extra: int, quiet_needed: int, timeout_s: float, executor=None,
                on_progress=None) -> list[dict]:
    """Run again the noisy runs of cells short of ``quiet_needed`` quiet runs, up to ``extra`` re-runs per cell,
    round after round until every cell has enough or its re-runs are spent. Each re-run repeats its run's plan
    under a new run id (the noisy run stays, flagged); the manifest lists what was re-run and why."""
    from analysis.load import load

    executor = executor or LocalExecutor("sequential")  # called without one: one run after another
    folder, made = results / records.RUNS_FOLDER, []
    while todo := reruns_needed(runs := load(results).runs, quiet_needed, extra):
        runs = runs.set_index("run_id")
        this_round = [dict(run_id=new, repeats=old, reason="noisy",
                           canary_slowdown=_number(runs.loc[old].get("canary_slowdown")),
                           other_cpu_fraction=_number(runs.loc[old].get("other_cpu_fraction")))
                      for old, new in todo]
        pending = [(new, RunPlan.from_dict(records.read_json(folder / old / records.PLAN_FILE))) for old, new in todo]
        position, total = itertools.count(1), len(pending)

        def report(name, state, seconds=None, where=None, position=position, total=total):
            if on_progress:
                on_progress(next(position) if state not in ("running", "queued") else 0, total, name, state,
                            seconds, where)

        executor.run(folder, pending, timeout_s, report, order_seed(results))
        run_hybrids(results)
        run_ensembles(results)
        made += this_round
        manifest = records.read_manifest(results)
        manifest["reruns"] = manifest.get("reruns", []) + this_round
        records.write_json_atomic(results / records.MANIFEST_FILE, manifest)
    return made


def _number(value) -> float | None:
    return None if value is None or value != value else float(value)


def configuration(plan: RunPlan) -> Configuration:
    return Configuration.of(plan.model)


def adaptive_sweep(results: Path, profile: Profile, threads: int, data: str | None = None, retry_failed: bool = False,
                   on_progress=None, executor=None, budget_min: float | None = None, on_message=print) -> dict:
    """Seeds where they are needed: ``profile.first_seeds`` blocks of every configuration, then, look after look,
    more blocks only for the configurations whose ratios to native torch still reach further than
    ``profile.target_reach`` (``analysis.calibration.seeds_wanted``), up to the profile's seeds, the widest first,
    while their blocks fit in what is left of ``budget_min`` minutes from this command's start (a block's
    minutes: what its runs held the CPU, from their records; the first seeds always run). A resumed sweep
    replays the same looks from its records (each look reads only the seeds it has). Returns the counts and
    ``seeds``, the account the manifest keeps: each look, the blocks per configuration, and each comparison short
    of the target with the blocks its sd needs."""
    from analysis.calibration import seeds_wanted, short_of

    started, seed, most, target = time.perf_counter(), order_seed(results), len(profile.seeds), profile.target_reach
    plans = grid(profile, threads, data, seed)
    have = dict.fromkeys(map(configuration, plans.values()), min(profile.first_seeds, most))
    looks, heard_of, executed = [], set(), 0

    def heard(position, total, name, state, seconds=None, where=None):  # each run once, not again at every look
        if not (state.endswith("earlier") and name in heard_of) and on_progress:
            on_progress(position, total, name, state, seconds, where)
        heard_of.add(name)

    while True:
        chosen = {name: plan for name, plan in plans.items()
                  if profile.seeds.index(plan.train.seed) < have[configuration(plan)]}
        counts = run_plans(results, chosen, profile, threads, data, retry_failed and not looks, heard, executor,
                           seed, new_session=not looks)
        executed += counts["executed"]
        estimates, minutes = _look(results, {key: profile.seeds[:n] for key, n in have.items()})
        short, wanted = short_of(estimates, target), seeds_wanted(estimates, have, target, most)
        left = None if budget_min is None else budget_min - (time.perf_counter() - started) / 60
        adding, cost = _blocks_to_add(short, wanted, have, minutes, left)
        looks.append(dict(seeds={_label(k): n for k, n in have.items()}, short=_named(short),
                          adding={_label(k): n for k, n in adding.items()}, budget_left_min=left))
        on_message(_look_line(have, short, adding, cost, left, target, most))
        if not adding:
            break
        for key, blocks in adding.items():
            have[key] += blocks
    account = dict(rule="adaptive", target_reach=target, first_seeds=profile.first_seeds, most_seeds=most,
                   budget_min=budget_min, seeds={_label(k): n for k, n in have.items()}, short=_named(short),
                   looks=looks)
    manifest = records.read_manifest(results)
    records.write_json_atomic(results / records.MANIFEST_FILE, {**manifest, "seeds": account})
    return dict(counts, executed=executed, seeds=account)


def _look(results: Path, seeds: dict[tuple, tuple]) -> tuple[dict, dict]:
    """From the folder's records of each configuration's ``seeds`` (only those: a resumed sweep, or a folder holding
    more seeds, replays the same looks): the per-block log ratios of each column but an A/A twin to native torch (of
    every pair where torch is not a column), named ``a/b``; and a block's minutes, what its runs held the CPU."""
    import numpy as np

    from analysis import inference, tables, verdicts
    from analysis.load import load

    runs = load(results).runs
    estimates, minutes = {}, {}
    for key, kept in seeds.items():
        mine = runs[(runs["cell"] == key[0]) & (runs["layers"] == key[1]) & (runs["bidirectional"] == key[2])
                    & runs["seed"].isin(kept)]
        groups = tables.timed_groups(mine)
        # an A/A twin's deviation is the margin, not a verdict: it adds no seeds
        columns = sorted({name for name, *rest in groups if tuple(rest) == key and verdicts.twin_of(name) is None})
        pairs = ([(name, tables.REFERENCE) for name in columns if name != tables.REFERENCE]
                 if tables.REFERENCE in columns else list(itertools.combinations(columns, 2)))
        estimates[key] = {f"{a}/{b}": inference.block_estimates(groups[(a, *key)], groups[(b, *key)]) for a, b in pairs}
        done = mine[mine["status"] == "ok"]
        if len(done):
            held = (done["ready_s"].astype(float) + done["total_wall_s"].astype(float)
                    - done["waited_s"].astype(float).fillna(0.0))
            minutes[key] = float(np.nansum(held)) / 60 / done["seed"].nunique()
    return estimates, minutes


def _label(key: tuple) -> str:
    return Configuration(*key).slug


def _named(short: dict) -> dict:
    return {_label(key): {name: dict(reach=reach, needs=needs) for name, (reach, needs) in comparisons.items()}
            for key, comparisons in short.items()}


def _look_line(have: dict, short: dict, adding: dict, cost: float, left: float | None, target: float,
               most: int) -> str:
    """The progress line of one look: seeds per configuration, what is still short and what comes next."""
    text = "seeds " + ", ".join(f"{_label(k)} {n}" for k, n in have.items())
    if not short:
        return f"{text}: every ratio to native torch within +-{target:.0%}"
    wide = "; ".join(f"{_label(k)} {name} " + (f"+-{reach:.1%}" if reach == reach else "no interval")
                     + (f" (needs ~{needs})" if needs else "")
                     for k, comparisons in short.items() for name, (reach, needs) in comparisons.items())
    text += f"; short of +-{target:.0%}: {wide}"
    if adding:
        return (text + f"; adding {', '.join(f'{n} to {_label(k)}' for k, n in adding.items())} "
                f"(~{cost:.1f} min" + (f" of {left:.1f} left)" if left is not None else ")"))
    every = all(have[k] >= most for k in short)
    return text + ("; stopping: every seed is run" if every else "; stopping: the budget is spent")
