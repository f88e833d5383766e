"""`make reference`'s planning path, without training: what a machine would measure, and what it refuses."""

import shutil

import pytest

from analysis import reference
from runners import reference as make_reference
from tests.conftest import invoke

ZEN3 = reference.REFERENCE / "amd-epyc-avx2-2c"
ZEN4 = reference.REFERENCE / "amd-epyc-avx512f-bf16-2c"
# The Zen 3's quick as it ran before retain was the default: a set held under another allocator.
ZEN3_GLIBC_QUICK = ZEN3 / "quick-glibc"


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
    """aa-interleaved ran under today's allocator: kept. threads ran under glibc: planned again; it holds two thread
    counts, two groups of records of one CPU, which the flags check must not take for two machines."""
    for name in ("aa-interleaved", "threads"):
        shutil.copytree(ZEN3 / name, references / "amd-epyc-avx2-2c" / name)
    _, todo, present = make_reference.planned(environment_of(ZEN3 / "quick"))
    assert present == ["aa-interleaved", "threads"]
    assert "aa-interleaved" not in {s.name for s in todo} and "threads" in {s.name for s in todo}


def test_a_set_held_under_another_allocator_is_measured_again_and_its_records_kept_aside(references):
    """The Zen 3's quick ran before retain was the default: planned again, its records to go to quick-glibc; where
    that name is taken, one line and exit 2."""
    machine = references / "amd-epyc-avx2-2c"
    shutil.copytree(ZEN3_GLIBC_QUICK, machine / "quick")
    shutil.copytree(ZEN3 / "aa-interleaved", machine / "aa-interleaved")  # retain: kept
    _, todo, present = make_reference.planned(environment_of(ZEN3 / "quick"))
    assert present == ["aa-interleaved", "quick"]
    assert [s.name for s in todo][:3] == ["quick", "quick-sequential", "aa-sequential"]
    assert make_reference.stale(machine, present) == ["quick"]
    assert make_reference.aside(machine / "quick") == "quick-glibc"
    shutil.copytree(ZEN3 / "quick", machine / "quick-glibc")
    with pytest.raises(SystemExit):
        make_reference.planned(environment_of(ZEN3 / "quick"))


def test_the_cpu_generation_names_the_machine_where_flags_and_model_string_cannot(references):
    """A Zen 4 and a Zen 5 VM both say "AMD EPYC" and share every flag the records keep: family and model number
    tell them apart, in the folder's name and in the records' identity. The machines filed before the field keep
    their folders, for old records and new ones alike."""
    from model import records

    zen4 = environment_of(ZEN4 / "quick")
    assert reference.machine_name(zen4) == "amd-epyc-avx512f-bf16-2c"
    assert reference.machine_name(dict(cpu=dict(zen4["cpu"], family=25, model_number=17))) == \
        "amd-epyc-avx512f-bf16-2c"
    zen3 = environment_of(ZEN3 / "quick")["cpu"]
    assert reference.machine_name(dict(cpu=dict(zen3, family=25, model_number=1))) == "amd-epyc-avx2-2c"
    expected = {(25, 1): "zen3", (25, 17): "zen4", (25, 97): "zen4", (26, 2): "zen5", (23, 49): "zen2",
                (23, 1): "f23m1"}
    for (family, number), generation in expected.items():
        cpu = dict(zen4["cpu"], family=family, model_number=number)
        assert records.cpu_generation(cpu) == generation
    assert records.cpu_generation(dict(model="Intel(R) Xeon(R) Processor", family=6, model_number=143)) == "f6m143"
    zen5 = dict(zen4, cpu=dict(zen4["cpu"], family=26, model_number=2))
    folder, todo, present = make_reference.planned(zen5)
    assert folder.name == "amd-epyc-zen5-avx512f-bf16-2c" and present == [] and todo[-1].name == "cpu-axes"
    record = records.read_json(next((ZEN4 / "quick" / "runs").glob("*/record.json")))
    other = dict(record, environment=dict(record["environment"], cpu=zen5["cpu"]))
    assert records.identity(record) != records.identity(other)
    assert records.identity(record).flags == records.identity(other).flags
    # A Zen 4's folder holding a Zen 5's records (same flags) is refused, not added to.
    held = references / "amd-epyc-avx512f-bf16-2c" / "quick"
    shutil.copytree(ZEN4 / "quick", held)
    for path in held.glob("runs/*/record.json"):
        written = records.read_json(path)
        written["environment"]["cpu"].update(family=26, model_number=2)
        records.write_json_atomic(path, written)
    with pytest.raises(SystemExit):
        make_reference.planned(dict(zen4, cpu=dict(zen4["cpu"], family=25, model_number=17)))


def test_another_cpus_folder_of_the_same_name_is_refused(references):
    shutil.copytree(ZEN3 / "quick", references / "amd-epyc-avx2-2c" / "quick")
    other = environment_of(ZEN3 / "quick")
    other = dict(other, cpu=dict(other["cpu"], flags=dict(other["cpu"]["flags"], avx512_vnni=True)))
    with pytest.raises(SystemExit):
        make_reference.planned(other)


def test_the_dry_run_says_what_it_would_run_and_how_long(references, monkeypatch):
    shutil.copytree(ZEN3_GLIBC_QUICK, references / "amd-epyc-avx2-2c" / "quick")
    shutil.copytree(ZEN3 / "decomposition", references / "other-machine" / "decomposition")
    monkeypatch.setattr("runners.harness.environment.environment", lambda: environment_of(ZEN3 / "quick"))
    done = invoke("runners.reference", "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "this machine: amd-epyc-avx2-2c (holds quick)"
    assert lines[1] == "  quick ran with another allocator: measured again, the old records kept as quick-glibc"
    assert any(line.startswith("  quick-sequential: python -m runners.compare --profile quick --repeats 5 --schedule "
                               "sequential [sequential], about ") and "(from amd-epyc-avx2-2c's records)" in line
               for line in lines)  # costed from this machine's quick, runs of the same plans
    assert any(line.startswith("  decomposition:") and "(from other-machine's records)" in line for line in lines)
    assert lines[-1].startswith("in all about ")


def test_a_stale_set_moves_aside_only_once_its_successor_is_filed(references, monkeypatch):
    """The Zen 3's quick (glibc) measured again: filed, the old records sit in quick-glibc; where filing fails, the
    old set is back under its name and nothing is left aside."""
    machine = references / "amd-epyc-avx2-2c"
    shutil.copytree(ZEN3_GLIBC_QUICK, machine / "quick")
    quick = next(s for s in make_reference.reference_sets(False) if s.name == "quick")
    monkeypatch.setattr("runners.harness.sweep.compare_profile", lambda *args, **kwargs: None)
    monkeypatch.setattr("analysis.docs.main", lambda check: None)

    def refuse(results, name):
        (machine / name).mkdir()  # half a new set, as a failing copy would leave it
        raise OSError("disk full")

    monkeypatch.setattr("analysis.reference.add", refuse)
    with pytest.raises(OSError):
        make_reference._measure(machine, [quick], references / "results", None)
    assert sorted(p.name for p in machine.iterdir()) == ["quick"]
    assert make_reference.stale(machine, ["quick"]) == ["quick"]  # the old glibc records, back

    def file(results, name):
        (machine / name / "runs").mkdir(parents=True)
        return machine / name

    monkeypatch.setattr("analysis.reference.add", file)
    make_reference._measure(machine, [quick], references / "results", None)
    assert sorted(p.name for p in machine.iterdir()) == ["quick", "quick-glibc"]
    assert (machine / "quick-glibc" / "manifest.json").exists() and not (machine / "quick" / "manifest.json").exists()
