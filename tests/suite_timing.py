"""The suite times itself: run whole with RNNBENCH_FILE_SUITE_TIME=1 and passing, it files its wall time beside this
machine's reference sets (``results/reference/<machine>/test-suite.json``), where README's figure for `make test`
is read from (``analysis.claims.suite``). A partial run (``-k``, a file, a failure) files nothing."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone

STARTED, RAN = [], []


def pytest_sessionstart(session):
    STARTED.append(time.perf_counter())


def pytest_runtest_logreport(report):
    # Called where the reports arrive: in the one process without pytest-xdist, in its controller with it.
    if report.when == "call" or (report.when == "setup" and not report.passed):
        RAN.append(report.nodeid)


def _whole(config) -> bool:
    narrowed = [arg for arg in config.args if arg not in ("tests", "tests/")]
    return not narrowed and not config.option.keyword and not config.option.lf and not config.option.deselect


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    worker = hasattr(config, "workerinput")  # a pytest-xdist worker: its controller files the whole run
    if os.environ.get("RNNBENCH_FILE_SUITE_TIME") != "1" or exitstatus != 0 or not _whole(config) or worker:
        return
    from analysis.reference import REFERENCE, machine_name
    from model import records
    from runners.harness.environment import cpu_info, git_commit

    cpu = cpu_info()
    records.write_json_atomic(REFERENCE / machine_name(dict(cpu=cpu)) / "test-suite.json", dict(
        seconds=round(time.perf_counter() - STARTED[0], 1), tests=len(set(RAN)),
        marker=config.option.markexpr or None, command=" ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        workers=getattr(config.option, "numprocesses", None) or 1,
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"), cpu_model=cpu["model"],
        cpu_flags=sorted(flag for flag, present in cpu["flags"].items() if present), commit=git_commit()["commit"]))
