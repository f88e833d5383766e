"""Run records and the other files of a run or results folder: names, schema, writing, reading, accessors.

Everything that writes or reads a record goes through this module; the
analysis reads records only through ``read_record`` and the accessors here
(``steady_samples_ms``, ``summarize``, ...), and computes its summaries from
the raw samples. Records, run plans and manifests are versioned (``SCHEMA_VERSION``,
``PLAN_VERSION``, ``MANIFEST_VERSION``) and read in today's version only: an older file is
refused in one line naming ``python -m runners.migrate``, which rewrites it (``model/migration.py``).

Schema history:
  1  the run's settings as top-level ``implementation``, ``model_spec``, ``train_spec`` (with
     ``warmup_steps``) and ``variant``.
  2  the run's settings as the verbatim ``plan`` (``model.plan.RunPlan.to_dict``); ``framework``
     and ``keras_backend`` moved into ``runtime``; ``timing.warmup_steps_excluded`` is the plan's;
     ``validations`` (each validation with the training clocks at that point, validation excluded);
     ``cpu.machine_during_training`` (other processes' CPU and steal); inference excludes one warm-up
     batch and its memory is measured above the post-training RSS (``*_post_training_*``); later
     ``canary``, ``schedule``, ``timing.warmup`` and ``memory.peak_anonymous_above_ready_mb``, optional.
  3  every section and field of 2 present (``canary`` may be null); the plan of version 2 (its
     allocator always named).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from model.errors import UserError
from model.frameworks import identity_packages
from model.spec import CONFIGURATION, ModelSpec, TrainSpec, from_dict

SCHEMA_VERSION = 3
PLAN_VERSION = 2  # 2: the allocator always named
MANIFEST_VERSION = 1

# Files of a run folder.
RECORD_FILE = "record.json"  # written last, atomically: a folder without it is an unfinished run
FAILED_FILE = "failed.json"  # written by the sweep for a run that failed or timed out
PLAN_FILE = "plan.json"  # written by the sweep before the run starts
WEIGHTS_FILE = "weights.npz"
PREDICTIONS_FILE = "predictions.npz"
VALIDATION_PREDICTIONS_FILE = "validation_predictions.npz"  # of the checkpoint early stopping restored
VOCABULARY_FILE = "vocabulary.json"
# Files of a results folder.
MANIFEST_FILE = "manifest.json"
BASELINE_FILE = "baseline.json"
ROOFLINE_FILE = "roofline.json"  # the machine's GEMM rates, measured once per sweep
BASELINE_PROBABILITIES_FILE = "baseline_probabilities.npz"  # the bigram model's test probabilities, per seed
HYBRID_FILE = "hybrid.json"  # each run averaged with the bigram model (runners/harness/baseline.py)
ENSEMBLE_FILE = "ensemble.json"  # runs of consecutive seeds averaged in threes (runners/harness/baseline.py)
RUNS_FOLDER = "runs"

SECTIONS = ("plan", "data", "environment", "runtime", "timing", "cpu", "memory", "metrics", "curves",
            "validations", "early_stopping", "files", "canary", "schedule")
REQUIRED = ("schema_version", "status", "created") + SECTIONS


class RecordError(UserError):
    """A record this code cannot read (reported to users in one line)."""


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write, renamed onto ``path`` when the block ends without an error
    (removed otherwise): readers see all of the file or none of it. The one way this project writes a file that
    another process may read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data) -> None:
    with atomic(path) as tmp, open(tmp, "w") as out:
        json.dump(data, out, indent=1, default=_jsonable)
        out.flush()
        os.fsync(out.fileno())


def _jsonable(value):
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a record")


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_record(run_dir: Path, **sections) -> dict:
    """The finished run's record, from its sections (all of ``SECTIONS``, nothing else)."""
    if set(sections) != set(SECTIONS):
        raise ValueError(f"record sections differ: missing {sorted(set(SECTIONS) - set(sections))}, "
                         f"unknown {sorted(set(sections) - set(SECTIONS))}")
    record = dict(schema_version=SCHEMA_VERSION, status="ok", created=datetime.now(timezone.utc).isoformat(),
                  **sections)
    write_json_atomic(Path(run_dir) / RECORD_FILE, record)
    return record


def read_record(run_dir: Path) -> dict:
    """The record of a finished run, or a one-line refusal (one of an older schema names the migration)."""
    return _read_versioned(Path(run_dir) / RECORD_FILE, lambda found: found.get("schema_version"), SCHEMA_VERSION,
                           "record schema")


def read_manifest(results: Path) -> dict | None:
    """A results folder's manifest (None where it has none), or a one-line refusal of an older one."""
    path = Path(results) / MANIFEST_FILE
    return _read_versioned(path, lambda found: found.get("manifest_version", 0), MANIFEST_VERSION,
                           "manifest") if path.exists() else None


def require_manifest(results: Path) -> dict:
    """A results folder's manifest, or a one-line refusal where it has none."""
    manifest = read_manifest(results)
    if manifest is None:
        raise RecordError(f"{results} holds no sweep (no {MANIFEST_FILE})")
    return manifest


def read_failure(run_dir: Path) -> dict:
    """A failed run's ``failed.json`` (its plan in today's version), or a one-line refusal."""
    return _read_versioned(Path(run_dir) / FAILED_FILE, lambda found: (found.get("plan") or {}).get("plan_version"),
                           PLAN_VERSION, "run plan")


def read_baseline(results: Path) -> dict | None:
    """A sweep's ``baseline.json`` (per-seed results; None where it has none), or a one-line refusal."""
    path = Path(results) / BASELINE_FILE
    return _read_versioned(path, lambda found: 1 if "seeds" in found else 0, 1,
                           "baseline (per seed from version 1)") if path.exists() else None


def _read_versioned(path: Path, version_of, current: int, kind: str) -> dict:
    found = read_object(path)
    _check_version(path, version_of(found), current, kind)
    return found


def read_object(path: Path) -> dict:
    try:
        found = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(found, dict):
        raise RecordError(f"{path} holds no JSON object")
    return found


def _check_version(path: Path, version, current: int, kind: str) -> None:
    if version == current:
        return
    if isinstance(version, int) and version < current:
        folder = next((parent for parent in path.parents if (parent / RUNS_FOLDER).is_dir()), path.parent)
        raise RecordError(f"{path} is a {kind} of version {version}, older than this code reads ({current}): "
                          f"`python -m runners.migrate {folder}` rewrites it")
    raise RecordError(f"{path} has {kind} version {version}; this code reads version {current}")


def missing_fields(record: dict) -> list[str]:
    return [name for name in REQUIRED if name not in record]


# The warm-up rule: MSER-5 (White 1997, "An effective truncation heuristic for bias reduction in simulation
# output"; the best of 42 warm-up methods in Hoad, Robinson & Davies 2010): over batch means of 5 steps, leave
# out the d batches that minimise the squared standard error of the mean of the rest, sum((b_i - mean)^2) / m^2
# over the m batches kept, d at most half of them. It leaves out a start that sits apart from the rest (pools
# filling, caches and branch predictors warming: in quick's interleaved runs steps 5-9 read 3-5% above later
# ones) and nothing where the series starts steady; a fixed count (3 steps before) did neither. Never fewer than
# the plan's ``warmup_steps``, never more than a quarter of the rest (``WARMUP_CAP``): in a run of 40 steps, paired
# round by round, leaving out up to half shortened the pairs and widened quick's intervals (median reach 3.0% ->
# 3.6% on the Zen 4) for ratios that moved under 2%; a run whose rule wants more than the cap is marked unsettled.
MSER_BATCH = 5
WARMUP_CAP = 0.25


def mser(samples: list[float], least: int, batch: int = MSER_BATCH) -> int:
    """The steps MSER-5 (above) leaves out of a run's pooled steps: ``least``, plus a whole number of batches of
    ``batch`` steps after them, at most half of those batches."""
    rest = samples[least:]
    means = [statistics.fmean(rest[i:i + batch]) for i in range(0, len(rest) - batch + 1, batch)]
    if len(means) < 4:
        return least
    # suffix sums, so that every truncation point costs O(1)
    total = squares = 0.0
    scores = []
    for kept, value in enumerate(reversed(means), 1):
        total, squares = total + value, squares + value * value
        scores.append((squares - total * total / kept) / kept ** 2)
    scores.reverse()  # scores[d]: d batches left out
    best = min(range(len(means) // 2 + 1), key=lambda d: (scores[d], d))
    return least + batch * best


def warmup(samples: list[float], least: int) -> int:
    """The steps a run's steady state leaves out: MSER-5's, at most ``least`` plus a quarter of the rest."""
    return warmup_section(samples, least)["steps"]


def drift(samples: list[float]) -> float | None:
    """Whether the steps kept are steady: the median of their last third over that of their first, minus 1 (a
    share; None with fewer than 6 steps)."""
    third = len(samples) // 3
    return statistics.median(samples[-third:]) / statistics.median(samples[:third]) - 1 if third >= 2 else None


def warmup_section(pooled: list[float], least: int) -> dict:
    """A record's ``timing.warmup`` for a run's pooled steps (drift left to the caller, which holds the steady ones)."""
    wanted = mser(pooled, least)
    steps = min(wanted, least + int(WARMUP_CAP * max(0, len(pooled) - least)))
    return dict(rule=f"mser-{MSER_BATCH}", least=least, steps=steps, settled=wanted <= steps)


def warmup_of(record: dict) -> dict:
    """A run's warm-up: the steps its steady state leaves out and whether the rule settled within its cap."""
    kept = record["timing"]["warmup"]
    return dict(steps=kept["steps"], settled=kept["settled"])


def warmup_steps(record: dict) -> int:
    return warmup_of(record)["steps"]


def steady(step_samples: list[list[float]], warmup_steps: int) -> list[float]:
    """The steady-state samples of a run: every epoch's steps pooled, the first ``warmup_steps`` left out."""
    return [sample for epoch in step_samples for sample in epoch][warmup_steps:]


def steady_samples_ms(record: dict) -> list[float]:
    return steady(record["timing"]["step_samples_ms"], warmup_steps(record))


def steady_rounds(record: dict) -> list[int]:
    """The round of each of ``steady_samples_ms``, for an interleaved run (``runners.harness.gate``)."""
    return steady(record["timing"]["step_rounds"], warmup_steps(record))


def round_medians(record: dict) -> dict[int, float] | None:
    """An interleaved run's median steady step (ms) per round of its block (``runners.harness.gate``); None for a
    run that ran alone. Where a turn holds several steps its first is left out: it follows a wait in which the
    other columns ran and evicted its caches, and cost 2-6% more than the turn's later steps (Zen 3, 4 steps a
    turn), a cost a process training alone never pays."""
    if not record["timing"].get("step_rounds"):
        return None
    rounds = [round_ for epoch in record["timing"]["step_rounds"] for round_ in epoch]
    samples = [sample for epoch in record["timing"]["step_samples_ms"] for sample in epoch]
    several = max(Counter(rounds).values(), default=0) > 1  # the run's turns held several steps
    left_out = warmup_steps(record)
    by_round: dict[int, list[float]] = {}
    for index, (round_, sample) in enumerate(zip(rounds, samples)):
        first = index == 0 or rounds[index - 1] != round_
        if index >= left_out and not (first and several):
            by_round.setdefault(round_, []).append(sample)
    return {round_: statistics.median(samples) for round_, samples in by_round.items()}


def summarize(samples_ms: list[float]) -> dict:
    """Median, quartiles (linear interpolation) and mean of timed samples, in the samples' unit."""
    if not samples_ms:
        return dict(n=0, median=None, q1=None, q3=None, iqr=None, mean=None)
    # statistics, not numpy: this module is imported before the runner sets numpy's thread variables.
    # "inclusive" is numpy's default linear interpolation.
    q1, median, q3 = (statistics.quantiles(samples_ms, n=4, method="inclusive") if len(samples_ms) > 1
                      else samples_ms * 3)
    return dict(n=len(samples_ms), median=float(median), q1=float(q1), q3=float(q3), iqr=float(q3 - q1),
                mean=statistics.fmean(samples_ms))


def step_losses(record: dict) -> list[float]:
    """Every training step's loss in order (empty for schema-1 records, which kept epoch means only)."""
    return [loss for curve in record["curves"] for loss in curve.get("step_losses", [])]


def time_to_target(record: dict, target: float) -> dict | None:
    """The first validation at or above ``target`` accuracy: training wall and CPU seconds (validation
    excluded) and steps until then, and the wall time with every validation so far on the clock, this one
    included (as MLPerf counts it); None if the run never reached it."""
    validation_s = 0.0
    for validation in record["validations"]:
        validation_s += validation.get("validation_s", 0.0)
        if validation["val_accuracy"] >= target and validation.get("train_wall_s") is not None:
            return dict(wall_s=validation["train_wall_s"], cpu_s=validation["train_cpu_s"], step=validation["step"],
                        wall_with_validation_s=validation["train_wall_s"] + validation_s)
    return None


def run_state(run_dir: Path) -> str:
    """done (a record exists), failed (the sweep recorded a failure) or pending."""
    if (Path(run_dir) / RECORD_FILE).exists():
        return "done"
    if (Path(run_dir) / FAILED_FILE).exists():
        return "failed"
    return "pending"


# Grid axes of a sweep: they vary inside one analysis (rows and columns of its tables), so they are not part of
# the plan a group of records must share.
GRID_MODEL, GRID_TRAIN = tuple(CONFIGURATION), ("seed",)


def plan_fingerprint(record: dict) -> str:
    """Short hash of what the runs of one analysis must share beyond the machine: the model and training
    settings without the grid axes (implementation, variant, cell, depth, direction, seed), the data sizes and
    the profile name."""
    plan = record["plan"]
    model, train = (_with_defaults(cls, plan[part]) for cls, part in ((ModelSpec, "model"), (TrainSpec, "train")))
    shared = dict(model={k: v for k, v in model.items() if k not in GRID_MODEL},
                  train={k: v for k, v in train.items() if k not in GRID_TRAIN},
                  data={k: record["data"].get(k) for k in _shared_sizes(train)},
                  profile=plan.get("profile"))
    return hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _shared_sizes(train: dict) -> tuple[str, ...]:
    """The data sizes the runs of one analysis share: a movie-grouped split seeded by the run's seed holds out whole
    movies, so its training and validation sizes differ from seed to seed (a grid axis), and only the test's is."""
    if train.get("val_split") == "movies" and train.get("split_seed") is None:
        return ("n_test",)
    return ("n_train", "n_val", "n_test")


class Identity(NamedTuple):
    cpu_model: str
    threads: int
    versions: tuple  # of frameworks.identity_packages(), in order
    flags: tuple  # the CPU flags present, of those the environment reads
    cores: int | None
    plan: str  # plan_fingerprint
    generation: str | None = None  # cpu_generation: None in records older than the field


def _with_defaults(cls, settings: dict) -> dict:
    """Settings with every field a later version added at its default, so that records written before a field
    existed fingerprint like those after it (hand-made partial specs stay as they are)."""
    try:
        return asdict(from_dict(cls, settings))
    except (UserError, TypeError):
        return settings


def identity(record: dict) -> Identity:
    """What must be equal for records to be pooled: the machine as the runs used it (CPU model, threads, the
    instruction-set flags and core count, since a VM's model string can hide a CPU generation), the versions of
    the frameworks under test and Keras (``frameworks.identity_packages``), and the plan's fingerprint."""
    environment = record["environment"]
    packages, cpu = environment["packages"], environment["cpu"]
    flags = tuple(sorted(flag for flag, present in (cpu.get("flags") or {}).items() if present))
    return Identity(cpu["model"], record["runtime"]["policy"]["intra_op_threads"],
                    tuple(packages.get(name) for name in identity_packages()), flags, cpu.get("logical_cores"),
                    plan_fingerprint(record), cpu_generation(cpu))


# AMD's CPU families and model numbers (/proc/cpuinfo) by microarchitecture: a VM's "AMD EPYC" names none of them
ZEN4_MODELS_OF_FAMILY_25 = (range(0x10, 0x20), range(0x60, 0x80), range(0xa0, 0xb0))


def cpu_generation(cpu: dict) -> str | None:
    """``zen2`` (family 23 from model 0x30; below it Zen 1 and Zen+), ``zen3``, ``zen4`` (family 25), ``zen5``
    (family 26) for AMD, else ``f<family>m<model>``; None where the record predates the field. Part of a record's
    identity: records of one machine written before and after the field do not pool (refused as mixed), since
    pooling a Zen 4's old records with a Zen 5's new ones would be worse."""
    family, number = cpu.get("family"), cpu.get("model_number")
    if family is None or number is None:
        return None
    if "AMD" in (cpu.get("model") or ""):
        if family == 25:
            return "zen4" if any(number in models for models in ZEN4_MODELS_OF_FAMILY_25) else "zen3"
        if family == 26:
            return "zen5"
        if family == 23 and number >= 0x30:
            return "zen2"
    return f"f{family}m{number}"
