"""The machine's fp32 GEMM rates, for the roofline: a large GEMM (the peak) and the recurrence's small one.

    python -m runners.roofline --threads 2                        # prints JSON
    python -m runners.roofline --threads 2 --out roofline.json    # writes it (what the sweep does)

Run in a fresh process with the runs' thread count (the sweep does it once,
into ``roofline.json``). The small GEMM is the shape every recurrent step
multiplies, h_t @ U: (batch, units) x (units, G*units); at batch 64 and 64
units it is 2 MFLOP, far too small to reach the large-GEMM rate, which is
what bounds a sequential recurrence on a CPU. Beside them, the machine's
canary reference (``runners/harness/canary.py``).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def gemm_rate(m: int, k: int, n: int, seconds: float = 1.0) -> float:
    """Sustained GFLOP/s of (m, k) x (k, n) float32 products with torch, after a warm-up."""
    import torch

    a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=out)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(max(1, int(2e7 // (m * k * n)) + 1)):
            torch.mm(a, b, out=out)
            calls += 1
    return 2.0 * m * k * n * calls / (time.perf_counter() - start) / 1e9


def measure(threads: int, batch: int = 64, units: int = 64, gates: int = 4) -> dict:
    import torch

    from runners.harness import canary
    from runners.harness.environment import cpu_info

    torch.set_num_threads(threads)
    return dict(cpu_model=cpu_info()["model"], hostname=platform.node(), threads=threads,
                library=f"torch {torch.__version__} torch.mm (float32)",
                peak_gflops=max(gemm_rate(2048, 2048, 2048) for _ in range(2)),
                small_gemm_gflops=gemm_rate(batch, units, gates * units),
                small_gemm_shape=[batch, units, gates * units], canary=canary.reference(threads))


@app.command()
def main(threads: Annotated[int, typer.Option(help="threads, as the runs use")] = 0,
         out: Annotated[Optional[Path], typer.Option(help="write the JSON to this file, not stdout")] = None):
    """The large- and small-GEMM float32 rates of this machine and its canary reference, as JSON."""
    from model import records
    from model.errors import user_errors
    from runners.harness import policy

    with user_errors():
        threads = threads or policy.default_threads()
        policy.set_thread_environment(threads)
        rates = measure(threads)
        if out:
            records.write_json_atomic(out, rates)
        else:
            typer.echo(json.dumps(rates))


if __name__ == "__main__":
    app()
