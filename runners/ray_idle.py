"""What an idle Ray head costs the machine it runs on (docs/cluster.md's figure, regenerable):

    python -m runners.ray_idle                       # 3 windows of 60 s without Ray, then 3 with an idle head
    python -m runners.ray_idle --windows 2 --seconds 20 --out idle.json

The machine's busy share comes from /proc/stat over each window (every process, as the runs' quietness check
reads it); Ray's own share is the CPU time of its processes (psutil, by command line) over the same window.
Run it on an otherwise quiet machine with no Ray running; it stops the head it started.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import psutil
import typer

from model.errors import fail, user_errors
from runners.harness import measure

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
SETTLE_S = 15  # after `ray start`, before the first window: its start-up work is not idle cost


def _ray_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or ())
        if "ray" in command and ("raylet" in command or "gcs_server" in command or "ray/_private" in command
                                 or "ray::" in command or "default_worker" in command or "dashboard" in command):
            found.append(process)
    return found


def _cpu_s(processes) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def window(seconds: float) -> dict:
    """The machine's busy share and Ray's processes' share of one core over ``seconds``."""
    processes = _ray_processes()
    before, ray_before, start = measure.machine_cpu_seconds(), _cpu_s(processes), time.perf_counter()
    time.sleep(seconds)
    after, ray_after, wall = measure.machine_cpu_seconds(), _cpu_s(processes), time.perf_counter() - start
    return dict(machine_busy_share=(after["busy_s"] - before["busy_s"]) / (wall * (os.cpu_count() or 1)),
                ray_share_of_one_core=(ray_after - ray_before) / wall, ray_processes=len(processes), wall_s=wall)


def idle_cost(windows: int, seconds: float) -> dict:
    if _ray_processes():
        fail("Ray is already running here; stop it (`ray stop`) so that the windows without Ray are without it")
    without = [window(seconds) for _ in range(windows)]
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    subprocess.run([*ray, "start", "--head", "--include-dashboard=false", "--disable-usage-stats"], check=True,
                   capture_output=True)
    try:
        time.sleep(SETTLE_S)
        with_head = [window(seconds) for _ in range(windows)]
    finally:
        subprocess.run([*ray, "stop", "--force"], capture_output=True)

    def summary(rows, key):
        values = [row[key] for row in rows]
        return dict(median=statistics.median(values), min=min(values), max=max(values))

    return dict(windows=windows, window_s=seconds, settle_s=SETTLE_S, cpu=measure_cpu(),
                without_ray=dict(machine_busy_share=summary(without, "machine_busy_share")),
                idle_head=dict(machine_busy_share=summary(with_head, "machine_busy_share"),
                               ray_share_of_one_core=summary(with_head, "ray_share_of_one_core"),
                               ray_processes=with_head[-1]["ray_processes"]))


def measure_cpu() -> dict:
    from runners.harness.environment import cpu_info

    info = cpu_info()
    return dict(model=info.get("model"), logical_cores=info.get("logical_cores"))


@app.command()
def main(windows: Annotated[int, typer.Option(help="windows of each kind")] = 3,
         seconds: Annotated[float, typer.Option(help="length of one window")] = 60.0,
         out: Annotated[Optional[Path], typer.Option(help="write the JSON here (default: print it)")] = None):
    """Measure what an idle Ray head (no dashboard) costs this machine."""
    with user_errors():
        if windows < 1 or seconds <= 0:
            fail("--windows must be at least 1 and --seconds positive")
        if importlib.util.find_spec("ray") is None:  # only its command line runs here (no import of ray)
            fail("Ray is not installed; run `make install EXTRAS=test,cluster`")
        text = json.dumps(idle_cost(windows, seconds), indent=2)
        if out:
            out.write_text(text + "\n")
        typer.echo(text if not out else f"written: {out}")


if __name__ == "__main__":
    app()
