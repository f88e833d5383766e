"""Records, run plans and sweep manifests of older versions rewritten in today's, once: ``python -m runners.migrate``.

Each file kind is read in one version only (``records.SCHEMA_VERSION``, ``records.PLAN_VERSION``,
``records.MANIFEST_VERSION``); an older file is refused in one line that names the migration. So a field added
later is written out here, once, with the value the runs then had, instead of being guessed by every reader.

A setting added with a default that reproduces what earlier runs did (a ModelSpec or TrainSpec field) needs no
step here: ``spec.from_dict`` fills it. A field whose absence meant something else than its default does (the
allocator: runs before it ran with glibc's, today's default is ``retain``), and every new section, does.

The steps, each from one version to the next:
  record 1 -> 2  the run's settings, then top-level (``implementation``, ``model_spec``, ``train_spec``, ``variant``),
                 as the run plan; schema 1 validated once an epoch without the training clocks.
  record 2 -> 3  sections and fields added to schema 2 after its first records, written out: ``canary`` none (no
                 canary ran), ``schedule`` sequential (interleaving came later), ``timing.warmup`` the MSER-5 rule
                 applied to the run's samples (``applied_by_migration``), the sampled anonymous peak none (not
                 sampled); and the plan migrated.
  plan 1 -> 2    ``allocator`` glibc where absent (``BEFORE_ALLOCATOR``).
  manifest 0 -> 1  (manifests had no version) the profile as a dict (the first named it only), its allocator glibc
                 where absent, the executor's schedule sequential where absent.
  failure        (``failed.json``) its plan migrated.
  baseline       (``baseline.json``) one result, of seed 0, as per-seed results (sweeps before per-seed baselines).
"""

from __future__ import annotations

from model import records
from model.records import PLAN_VERSION

# What a plan or sweep written before the allocator setting existed ran with: glibc's defaults.
BEFORE_ALLOCATOR = "glibc"


def record(old: dict) -> dict:
    """A record in today's schema (``old`` untouched); one of a version this code does not know is refused."""
    version = old.get("schema_version") if isinstance(old, dict) else None
    steps = {1: _record_1_to_2, 2: _record_2_to_3}
    if version != records.SCHEMA_VERSION and version not in steps:
        raise records.RecordError(f"record schema version {version} is unknown to this code (it writes "
                                  f"{records.SCHEMA_VERSION})")
    new = old
    while new["schema_version"] in steps:
        new = steps[new["schema_version"]](new)
    if version != records.SCHEMA_VERSION:
        new["migrated_from"] = old.get("migrated_from", version)
    return new


def _record_1_to_2(old: dict) -> dict:
    new = {key: value for key, value in old.items()
           if key not in ("implementation", "framework", "keras_backend", "model_spec", "train_spec", "variant",
                          "upgraded_from")}
    train = dict(old["train_spec"])
    warmup = train.pop("warmup_steps", old["timing"].get("warmup_steps_excluded", 3))
    runtime = old.get("runtime", {})
    new["plan"] = dict(plan_version=1, implementation=old["implementation"], model=old["model_spec"], train=train,
                       variant=old.get("variant", {}), threads=old.get("cpu", {}).get("threads"),
                       flush_denormal=runtime.get("flush_denormal_requested", True), warmup_steps=warmup,
                       data=old.get("data", {}).get("source"), profile=None)
    new["runtime"] = dict(runtime, framework=old.get("framework"), keras_backend=old.get("keras_backend"))
    new["validations"] = [dict(epoch=curve["epoch"], step=None, train_wall_s=None, train_cpu_s=None,
                               val_loss=curve.get("val_loss"), val_accuracy=curve.get("val_accuracy"))
                          for curve in old.get("curves", [])]
    new["schema_version"] = 2
    return new


def _record_2_to_3(old: dict) -> dict:
    new = dict(old, canary=old.get("canary"), schedule=old.get("schedule") or dict(schedule="sequential"),
               plan=plan(old["plan"]), timing=dict(old["timing"]), memory=dict(old["memory"]))
    if not new["timing"].get("warmup"):
        pooled = [sample for epoch in new["timing"]["step_samples_ms"] for sample in epoch]
        warmup = records.warmup_section(pooled, new["plan"]["warmup_steps"])
        new["timing"]["warmup"] = dict(warmup, drift=records.drift(pooled[warmup["steps"]:]),
                                       applied_by_migration=True)
    new["memory"].setdefault("peak_anonymous_above_ready_mb", None)
    new["schema_version"] = 3
    return new


def plan(old: dict) -> dict:
    """A run plan (as ``RunPlan.to_dict`` writes it) in today's version; one without a version is refused."""
    version = old.get("plan_version")
    if version == PLAN_VERSION:
        return old
    if version != 1:
        raise records.RecordError(f"run plan version {version} is unknown to this code (it writes {PLAN_VERSION})")
    return dict(old, plan_version=2, allocator=old.get("allocator", BEFORE_ALLOCATOR))


def manifest(old: dict) -> dict:
    """A sweep's manifest in today's version."""
    version = old.get("manifest_version", 0)
    if version == records.MANIFEST_VERSION:
        return old
    if version != 0:
        raise records.RecordError(f"manifest version {version} is unknown to this code (it writes "
                                  f"{records.MANIFEST_VERSION})")
    profile = old.get("profile") or {}
    profile = {"name": profile} if isinstance(profile, str) else profile
    return dict(old, manifest_version=1, profile=dict(profile, allocator=profile.get("allocator", BEFORE_ALLOCATOR)),
                executor=dict(old.get("executor") or {"name": "local"},
                              schedule=(old.get("executor") or {}).get("schedule", "sequential")))


def failure(old: dict) -> dict:
    """A failed run's ``failed.json`` with its plan in today's version."""
    if "plan" not in old:
        raise records.RecordError("a failure recorded before run plans, which names no plan to migrate: remove it, "
                                  "and a resumed sweep runs the run again")
    return dict(old, plan=plan(old["plan"]))


def baseline(old: dict) -> dict:
    """A sweep's ``baseline.json`` as per-seed results."""
    if "metrics" not in old and "seeds" not in old:
        raise records.RecordError("not a baseline: neither per-seed results nor one result's metrics")
    return old if "seeds" in old else {"seeds": {"0": old}}


# Each kind of file by its name, and its migration (a current file comes back equal).
FILES = {records.RECORD_FILE: record, records.PLAN_FILE: plan, records.MANIFEST_FILE: manifest,
         records.FAILED_FILE: failure, records.BASELINE_FILE: baseline}
