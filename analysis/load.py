"""Run records in (through ``model.records``), one flat row per run out, plus each run's steady step samples."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.noise import canary_slowdown
from model import records
from model.errors import UserError
from model.implementations import Column, column
from model.plan import DEFAULT_ALLOCATOR
from model.spec import CONFIGURATION, ModelSpec, from_dict

KEYS = ["implementation", *CONFIGURATION]


class AnalysisError(UserError):
    """Records that cannot be analysed together (reported to users in one line)."""


def run_column(plan: dict, sweep_allocator: str = DEFAULT_ALLOCATOR) -> str:
    """The table column of a run: its implementation, or implementation[option=value] for a variant (an
    allocator other than the sweep's counts as one, after the implementation's own options)."""
    try:
        found = column(plan["implementation"], plan["variant"], from_dict(ModelSpec, plan["model"]))
    except (UserError, TypeError, KeyError):
        found = Column(plan["implementation"])  # partial specs (hand-made records) or retired variants
    if plan["allocator"] != sweep_allocator:
        found = found.with_option("allocator", plan["allocator"])
    return (found.with_option("label", plan["label"]) if plan.get("label") else found).label


def canary_samples(record: dict, phase: str) -> list[float]:
    """Canary times (ms) of one phase of the run (``start``, ``training``, ``end``); none where no canary ran."""
    return [s["total_ms"] for s in (record["canary"] or {}).get("samples", []) if s["phase"] == phase]


def canary_ms(record: dict, phase: str) -> float | None:
    """Median canary time (ms) of one phase of the run."""
    samples = canary_samples(record, phase)
    return statistics.median(samples) if samples else None


def row(record: dict, sweep_allocator: str = DEFAULT_ALLOCATOR) -> dict:
    """One flat row of the figures the analysis tabulates (``sweep_allocator``: the one a column is named by only
    where it differs)."""
    plan, timing, memory, quality = record["plan"], record["timing"], record["memory"], record["metrics"]
    spec, runtime = plan["model"], record["runtime"]
    epochs = timing["epoch_s"]
    warmup = records.warmup_of(record)
    steps = records.summarize(records.steady_samples_ms(record))  # from the raw samples, not the runner's summary
    schedule = record["schedule"]
    # Training as the run pays for it: data-derived initial weights (timing.pretraining) count; none for a drawn init.
    pretraining = timing.get("pretraining") or dict(wall_s=0.0, cpu_s=0.0)
    return dict(
        status="ok", implementation=run_column(plan, sweep_allocator), base_implementation=plan["implementation"],
        cell=spec["cell"], layers=spec["layers"], bidirectional=spec["bidirectional"], seed=plan["train"]["seed"],
        variant=plan["variant"], **_model_settings(spec),
        accuracy=quality["accuracy"], f1=quality["f1"], roc_auc=quality["roc_auc"], log_loss=quality["log_loss"],
        run_step_ms=steps["median"], run_step_iqr_ms=steps["iqr"], run_step_mean_ms=steps["mean"],
        warmup_least=plan["warmup_steps"], warmup_left_out=warmup["steps"], settled=warmup["settled"],
        gemm_gflop_per_step=timing.get("gemm_gflop_per_step"),
        steps_per_epoch=record["data"]["steps_per_epoch"],
        epochs_planned=plan["train"]["epochs"], validations_per_epoch=plan["train"].get("validations_per_epoch", 1),
        validation_s=sum(timing["validation_s"]), total_wall_s=timing.get("total_wall_s"),
        n_val=record["data"]["n_val"],
        epoch_s=sum(epochs) / len(epochs), first_step_s=timing["first_step_s"],
        # training's wall time outside its timed steps (the loop's own, a framework's between and after them)
        untimed_train_s=sum(epochs) - sum(map(sum, timing["step_samples_ms"])) / 1e3,
        ready_s=timing["process_start_to_ready_s"], train_wall_s=timing["train_wall_s"] + pretraining["wall_s"],
        pretraining_s=pretraining["wall_s"],
        train_samples_per_s=timing["train_samples_per_s"],
        inference_per_s=timing["inference"]["throughput_per_s"],
        latency_ms=timing["inference"]["batch_latency_ms"]["median"],
        train_cpu_s=record["cpu"]["train_cpu_s"] + pretraining["cpu_s"],
        cpu_utilisation=record["cpu"]["train_utilisation"],
        minor_faults_per_step=record["cpu"].get("minor_faults_per_step"),
        peak_above_mb=memory["peak_above_baseline_mb"], peak_rss_mb=memory["peak_rss_mb"],
        peak_anonymous_above_mb=memory["peak_anonymous_above_ready_mb"],
        rss_after_imports_mb=memory["rss_after_imports_mb"], baseline_mb=memory["baseline_ready_mb"],
        epochs_run=record["early_stopping"]["epochs_run"], n_train=record["data"]["n_train"],
        n_test=record["data"]["n_test"], kernel_path=runtime["kernel_path"],
        threads=runtime["policy"]["intra_op_threads"], flush_denormal=runtime["policy"]["flush_denormal"],
        jit_compile=runtime["jit_compile"], hostname=record["environment"].get("hostname"),
        precision=plan["variant"].get("precision", "fp32"), bf16_emulated=bool(runtime.get("bf16_emulated")),
        **_quietness(record["cpu"].get("machine_during_training")),
        **_canary_fields(record),
        schedule=schedule["schedule"], block=schedule.get("block"), round_step_ms=records.round_medians(record),
        waited_s=schedule.get("wait_wall_s", 0.0),  # interleaved: the others' turns, inside total_wall_s
    )


def _model_settings(spec: dict) -> dict:
    """The network's settings a row carries beside its shape (settings added later: their defaults, as the runs
    then had them)."""
    return dict(maxlen=spec.get("maxlen"), units=spec.get("units"), embedding_dim=spec.get("embedding_dim"),
                segment_len=spec.get("segment_len"), embedding_init=spec.get("embedding_init", "uniform"),
                ngram_buckets=spec.get("ngram_buckets", 0), ngram_order=spec.get("ngram_order", 2),
                pooling=spec.get("pooling", "max"))


def _canary_fields(record: dict) -> dict:
    canary = record["canary"] or {}
    # Only canaries during training judge a run: the end one follows the last step at once, while the
    # framework's worker threads still spin, and would flag every short run.
    return dict(canary_start_ms=canary_ms(record, "start"), canary_training_ms=canary_ms(record, "training"),
                canary_training_n=len(canary_samples(record, "training")),
                canary_share=canary.get("share_of_training"), canary_every_s=canary.get("every_s"),
                started_at=(canary.get("samples") or [{}])[0].get("at"))


def _quietness(machine: dict | None) -> dict:
    machine = machine or {}
    return dict(other_cpu_fraction=machine.get("other_fraction"), steal_fraction=machine.get("steal_fraction"))


def _failed_row(run_id: str, failure: dict, sweep_allocator: str) -> dict:
    plan = failure["plan"]
    spec = plan["model"]
    return dict(run_id=run_id, status=failure["status"], failure=failure["reason"],
                error=((failure.get("stderr_tail") or "").strip().splitlines() or [""])[-1],
                implementation=run_column(plan, sweep_allocator), base_implementation=plan["implementation"],
                cell=spec["cell"], layers=spec["layers"],
                bidirectional=spec["bidirectional"], seed=plan["train"]["seed"])


def _baseline(raw: dict) -> dict:
    """The TF-IDF reference over the sweep's seeds: each seed's result and the mean of their metrics."""
    per_seed = raw["seeds"]
    metrics = {name: float(np.mean([result["metrics"][name] for result in per_seed.values()]))
               for name in ("accuracy", "f1", "roc_auc")}
    unigram = [result["unigram"]["metrics"]["accuracy"] for result in per_seed.values() if "unigram" in result]
    return dict(metrics=metrics, seeds=per_seed, unigram_accuracy=float(np.mean(unigram)) if unigram else None)


@dataclass
class Results:
    """Runs of one machine and plan (``records.identity``: CPU model and flags, threads, framework versions, plan
    fingerprint), read: one row per run and each run's raw
    series, the baseline, the sweep's manifest, the machine's roofline and the runs' environment."""

    runs: pd.DataFrame  # one row per run, finished or failed
    samples: dict[str, np.ndarray]  # run id -> steady-state step times, ms
    losses: dict[str, np.ndarray]  # run id -> every training step's loss
    baseline: dict | None
    manifest: dict | None
    roofline: dict | None = None  # the machine's GEMM rates (runners/roofline.py)
    environment: dict | None = None  # of the runs (a Ray sweep's manifest holds the head's, not the workers')
    sources: tuple = ()  # the results folders read
    identity: tuple = ()  # records.identity shared by every run
    canary: dict | None = None  # the canary reference the runs' ``canary_slowdown`` is relative to

    @property
    def finished(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"]

    @property
    def profile(self) -> dict:
        return _profile(self.manifest)

    @property
    def allocator(self) -> str:
        return sweep_allocator(self.manifest)

    @property
    def schedule(self) -> str:
        """How the sweep ran its runs: 'interleaved, 1 step a turn' or 'sequential'."""
        executor = (self.manifest or {}).get("executor") or {}
        if executor.get("schedule") == "interleaved":
            return f"interleaved, {executor.get('slice_steps', 1)} step a turn"
        return "sequential"

    @property
    def cpu_model(self) -> str:
        environment = self.environment or (self.manifest or {}).get("environment")
        return environment["cpu"]["model"] if environment else "unknown CPU"


def sweep_allocator(manifest: dict | None) -> str:
    """The allocator every run of a sweep used unless its column set another; a run without a sweep has the
    default."""
    return _profile(manifest).get("allocator", DEFAULT_ALLOCATOR)


def _profile(manifest: dict | None) -> dict:
    return (manifest or {}).get("profile") or {}


@dataclass
class _Folder:
    """One results folder as read, before grouping by machine."""

    path: Path
    rows: list[dict]
    samples: dict
    losses: dict
    environments: dict  # identity -> the environment of its first record
    manifest: dict | None
    baseline: dict | None
    roofline: dict | None


def clip_binding_share(record: dict) -> float | None:
    """Share of the training steps whose gradients' global norm (before clipping, as the record keeps it per
    step) exceeded the clip norm, i.e. where the clip changed the update; None where it was not recorded."""
    norms = [norm for curve in record["curves"] for norm in curve.get("gradient_norms") or ()]
    return float(np.mean(np.asarray(norms) > record["plan"]["train"]["clip_global_norm"])) if norms else None


def _read(results: Path, prefix: str = "", allocator: str | None = None) -> _Folder:
    results = Path(results)
    run_root = results / records.RUNS_FOLDER
    if not run_root.is_dir():
        raise AnalysisError(f"{results} holds no runs (expected {run_root}/)")
    manifest = records.read_manifest(results)
    target = _profile(manifest).get("target_accuracy")
    # runs on the sweep's own allocator carry no [allocator=...] in their column name; a caller pooling folders
    # of different allocators passes one for all
    allocator = allocator or sweep_allocator(manifest)
    hybrid_file = results / records.HYBRID_FILE
    hybrids = records.read_json(hybrid_file) if hybrid_file.exists() else {}
    ensemble_file = results / records.ENSEMBLE_FILE
    # Each member run carries its ensemble (named by its first run): the summary counts each ensemble once.
    ensembles = {run: dict(ensemble=prefix + found["runs"][0], ensemble_accuracy=found["metrics"]["accuracy"],
                           ensemble_train_wall_s=found["train_wall_s"])
                 for found in (records.read_json(ensemble_file) if ensemble_file.exists() else [])
                 for run in found["runs"]}
    rows, samples, losses, environments = [], {}, {}, {}
    for run_dir in sorted(p for p in run_root.iterdir() if p.is_dir()):
        state, run_id = records.run_state(run_dir), prefix + run_dir.name
        if state == "done":
            record = records.read_record(run_dir)
            identity = records.identity(record)
            environments.setdefault(identity, record["environment"])
            reached = records.time_to_target(record, target) if target else None
            rows.append(dict(run_id=run_id, **row(record, allocator), cpu_model=identity.cpu_model, identity=identity,
                             target_accuracy=target, ttt_wall_s=reached and reached["wall_s"],
                             ttt_cpu_s=reached and reached["cpu_s"],
                             ttt_eval_wall_s=reached and reached["wall_with_validation_s"],
                             ttt_step=reached and reached["step"],
                             hybrid_accuracy=hybrids.get(run_dir.name, {}).get("metrics", {}).get("accuracy"),
                             clip_binding_share=clip_binding_share(record),
                             clip_global_norm=record["plan"]["train"].get("clip_global_norm"),
                             **ensembles.get(run_dir.name, {})))
            samples[run_id] = np.asarray(records.steady_samples_ms(record), dtype=float)
            losses[run_id] = np.asarray(records.step_losses(record), dtype=float)
        elif state == "failed":
            rows.append(dict(_failed_row(run_id, records.read_failure(run_dir), allocator),
                             identity=None))
    baseline = records.read_baseline(results)
    baseline = _baseline(baseline) if baseline else None
    roofline_file = results / records.ROOFLINE_FILE
    roofline = records.read_json(roofline_file) if roofline_file.exists() else None
    return _Folder(results, rows, samples, losses, environments, manifest, baseline, roofline)


def _machine_roofline(roofline: dict | None, cpu_model: str, threads: int) -> dict | None:
    """A local sweep measured its one machine; a Ray sweep measured each node (``machines``)."""
    if not roofline or "machines" not in roofline:
        return roofline
    return next((machine for machine in roofline["machines"]
                 if machine.get("cpu_model") == cpu_model and machine.get("threads") == threads), None)


def _results(folders: list[_Folder], identity: tuple) -> Results:
    rows = [row for folder in folders for row in folder.rows
            if row["identity"] == identity or (row["identity"] is None and set(folder.environments) == {identity})]
    ids = {row["run_id"] for row in rows}
    first = next(folder for folder in folders if identity in folder.environments)
    roofline = _machine_roofline(first.roofline, identity.cpu_model, identity.threads)
    runs, canary = canary_slowdown(pd.DataFrame(rows).drop(columns="identity"), roofline)
    return Results(runs,
                   {k: v for folder in folders for k, v in folder.samples.items() if k in ids},
                   {k: v for folder in folders for k, v in folder.losses.items() if k in ids},
                   first.baseline, first.manifest, roofline,
                   first.environments[identity], tuple(folder.path for folder in folders
                                                       if identity in folder.environments), identity, canary)


def load(results: Path) -> Results:
    """One results folder, all of it from one machine (mixed records are refused; see ``load_machines``)."""
    folder = _read(results)
    if len(folder.environments) > 1:
        raise AnalysisError(f"{results} mixes records from different machines, versions or run plans "
                            f"({len(folder.environments)} groups; analysis.report separates them)")
    if not folder.rows:
        raise AnalysisError(f"{results} holds no finished or failed runs yet")
    if not folder.environments:  # failed runs only
        return Results(pd.DataFrame(folder.rows).drop(columns="identity"), {}, {}, folder.baseline,
                       folder.manifest, folder.roofline, None, (folder.path,))
    return _results([folder], next(iter(folder.environments)))


def load_machines(paths: list[Path]) -> tuple[list[Results], pd.DataFrame]:
    """Records of any number of folders, one ``Results`` per machine and plan (``records.identity``), never
    pooled across machines or plans; and the failed runs that no single machine owns (those of a folder with
    several machines)."""
    prefix = len(paths) > 1  # run ids stay unique across folders
    # Folders swept with different allocators name every column against the default one, so that a glibc torch and
    # a retained torch are two columns, never one.
    allocators = {sweep_allocator(records.read_manifest(path)) for path in paths}
    allocator = DEFAULT_ALLOCATOR if len(allocators) > 1 else None
    folders = [_read(path, f"{Path(path).name}/" if prefix else "", allocator) for path in paths]
    identities = sorted({identity for folder in folders for identity in folder.environments}, key=str)
    if not identities:
        raise AnalysisError(f"{', '.join(map(str, paths))}: no finished runs to analyse")
    unowned = [row for folder in folders if len(folder.environments) != 1 for row in folder.rows
               if row["identity"] is None]
    return ([_results(folders, identity) for identity in identities],
            pd.DataFrame(unowned).drop(columns="identity", errors="ignore"))
