"""`make reference`'s planning path, without training: what a machine would measure, and what it refuses."""

import shutil

import pytest

from analysis import reference
from runners import reference as make_reference
from tests.conftest import invoke

ZEN3 = reference.REFERENCE / "amd-epyc-avx2-2c"
ZEN4 = reference.REFERENCE / "amd-epyc-avx512f-bf16-2c"


def environment_of(folder):
    from analysis.load import load

    return load(folder).environment


@pytest.fixture
def references(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "REFERENCE", tmp_path)
    return tmp_path


def test_a_new_machine_plans_every_set_and_its_cpu_axis(references):
    zen3 = environment_of(ZEN3 / "quick")
    folder, todo, present = make_reference.planned(zen3)
    assert folder == references / "amd-epyc-avx2-2c" and present == []
    assert [s.name for s in todo] == ["quick", "quick-sequential", "aa-interleaved", "aa-sequential",
                                      "decomposition", "programming", "threads"]  # no bf16 on a Zen 3
    zen4 = environment_of(ZEN4 / "quick")
    folder, todo, _ = make_reference.planned(zen4)
    assert folder.name == "amd-epyc-avx512f-bf16-2c" and todo[-1].name == "cpu-axes" and todo[-1].threads == (2,)
    aa = next(s for s in todo if s.name == "aa-sequential")
    assert aa.schedule == "sequential" and {name for name, _ in aa.profile.variants} == {
        "torch", "tensorflow", "keras-tensorflow"}


def test_sets_the_machine_holds_are_not_measured_again(references):
    for name in ("quick", "threads"):  # threads holds two thread counts: two groups of records, one CPU
        shutil.copytree(ZEN3 / name, references / "amd-epyc-avx2-2c" / name)
    _, todo, present = make_reference.planned(environment_of(ZEN3 / "quick"))
    assert present == ["quick", "threads"] and not {"quick", "threads"} & {s.name for s in todo}


def test_another_cpus_folder_of_the_same_name_is_refused(references):
    shutil.copytree(ZEN3 / "quick", references / "amd-epyc-avx2-2c" / "quick")
    other = environment_of(ZEN3 / "quick")
    other = dict(other, cpu=dict(other["cpu"], flags=dict(other["cpu"]["flags"], avx512_vnni=True)))
    with pytest.raises(SystemExit):
        make_reference.planned(other)


def test_the_dry_run_says_what_it_would_run_and_how_long(references, monkeypatch):
    shutil.copytree(ZEN3 / "quick", references / "amd-epyc-avx2-2c" / "quick")
    shutil.copytree(ZEN3 / "decomposition", references / "other-machine" / "decomposition")
    monkeypatch.setattr("runners.harness.environment.environment", lambda: environment_of(ZEN3 / "quick"))
    done = invoke("runners.reference", "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "this machine: amd-epyc-avx2-2c (holds quick)"
    assert any(line.startswith("  quick-sequential: python -m runners.compare --profile quick --schedule "
                               "sequential [sequential], about ") and "(from amd-epyc-avx2-2c's records)" in line
               for line in lines)  # costed from this machine's quick, which is the same set of runs
    assert any(line.startswith("  decomposition:") and "(from other-machine's records)" in line for line in lines)
    assert lines[-1].startswith("in all about ")
