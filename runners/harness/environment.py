"""What a run ran on: versions, CPU, memory, OS, git commit, command. One function, used by every record."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from model.frameworks import identity_packages

# Beside the identity packages (model/frameworks.py), read when a record is written.
OTHER_PACKAGES = ("tensorflow", "jaxlib", "numpy", "scikit-learn", "scipy", "pandas",
            "memory-profiler", "typer", "psutil")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "fma", "sse3")
REPO = Path(__file__).resolve().parents[2]
# Set by the Ray executor for the runs it starts (runners/harness/cluster.py).
EXECUTOR_VARIABLE, GIT_VARIABLE = "RNNBENCH_EXECUTOR", "RNNBENCH_GIT"


def package_versions() -> dict:
    versions = {}
    for name in dict.fromkeys((*identity_packages(), *OTHER_PACKAGES)):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_info() -> dict:
    model, flags, numbers = platform.processor() or None, set(), {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in (None, "", platform.machine()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
            # a VM's model name can hide the generation ("AMD EPYC" is a Zen 3, 4 or 5), and the flags we read
            # are the same on a Zen 4 and a Zen 5: family and model number tell them apart
            elif key.strip() in ("cpu family", "model") and key.strip() not in numbers and value.strip().isdigit():
                numbers[key.strip()] = int(value)
    except OSError:
        pass
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return dict(model=model, family=numbers.get("cpu family"), model_number=numbers.get("model"),
                logical_cores=os.cpu_count(),
                usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                flags={flag: flag in flags for flag in CPU_FLAGS},
                governor=governor.read_text().strip() if governor.exists() else None)


def memory_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 ** 2, 2)
    except OSError:
        pass
    return None


def git_commit() -> dict:
    def git(*args):
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
        return result.stdout.strip() if result.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        commit = dirty = None
    if commit is None and os.environ.get(GIT_VARIABLE):  # code shipped by the Ray executor, without .git
        return json.loads(os.environ[GIT_VARIABLE])
    return dict(commit=commit, dirty=None if dirty is None else bool(dirty))


def executor() -> dict:
    """Where the run was started from: the local sweep or a command (name local), or a Ray task (its node)."""
    return json.loads(os.environ.get(EXECUTOR_VARIABLE) or '{"name": "local"}')


def environment() -> dict:
    return dict(python=platform.python_version(), implementation=platform.python_implementation(),
                os=platform.platform(), kernel=platform.release(), hostname=platform.node(),
                cpu=cpu_info(), memory_total_gb=memory_total_gb(),
                load_average=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                packages=package_versions(), git=git_commit(), executor=executor(),
                command=[sys.executable, *sys.argv])
