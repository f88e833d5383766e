"""The harness a Python user drives: a run plan in, the finished run's record out.

    from pathlib import Path
    from model.plan import RunPlan, get_profile
    from runners import harness
    model, train = get_profile("quick").specs(cell="gru")
    record = harness.run(RunPlan(implementation="torch", model=model, train=train, threads=2), Path("runs/gru"))

It does what ``python -m runners.train`` does after parsing its options: refuse an implementation that is not
installed or a folder that holds a finished run, set the thread policy (before numpy or any framework loads:
refused in one line otherwise, which is why the sweep gives every run a fresh process), train, evaluate and
write the run folder.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from model import implementations, records
from model.errors import UserError
from model.plan import RunPlan
from model.spec import Configuration
from runners.harness import policy


class HarnessError(UserError):
    """A run that cannot start as asked (reported to users in one line)."""


def default_run_dir(plan: RunPlan) -> Path:
    spec, stamp = plan.model, datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = Configuration.of(spec).slug
    return Path("runs") / f"{stamp}-{plan.implementation}-{slug}"


def run(plan: RunPlan, out: Path | None = None, progress: bool = False) -> dict:
    """Train and evaluate ``plan`` into ``out`` (default: ``default_run_dir``); returns its record."""
    out = Path(out or default_run_dir(plan))
    implementations.check_installed(plan.implementation)
    if out is not None and (Path(out) / records.RECORD_FILE).exists():
        raise HarnessError(f"{out} already holds a finished run; choose another --out")
    policy.check_precision(plan.variant, plan.emulate_bf16)
    policy.preload(plan.allocator)  # may start this process again, with the allocator's library loaded
    policy.set_thread_environment(plan.threads, plan.entry.framework)

    from runners.harness.session import run as train_and_evaluate

    return records.read_record(train_and_evaluate(plan, out=out, progress=progress))
