"""The committed reference sets (``results/reference/<machine>/<set>/``) and what each publishes, declared once: the
docs' pages of tables (``analysis/docs.py``), README's accuracy answer (``analysis/reference.py``) and the
calibration's blocks (``analysis/calibration.py``) read this table (``make reference``, ``runners/reference.py``,
measures the sets of its own list under the same names)."""

from __future__ import annotations

from typing import NamedTuple


class Published(NamedTuple):
    name: str
    # the title of its section of tables pooled across machines (docs/results/index.md); empty: no such section
    # (one plan and thread count per folder is what pools)
    title: str = ""
    accuracy: bool = False  # README's accuracy answer quotes its best single run beside the linear models
    # what the calibration reads it as: "aa", an A/A pair (two columns of one implementation); "schedule", quick's
    # plan under one design (interleaved, or sequential at the side seeds) beside the others
    calibrates: str = ""
    # a point set of the accuracy-against-CPU-minutes picture (analysis.tables.frontier), per machine
    frontier: bool = False


SETS = (
    Published("quick", "The quick profile (`make compare`)", calibrates="schedule"),
    Published("quick-5seeds", calibrates="schedule"),  # interleaved within the hour of quick-sequential
    Published("quick-sequential", "The quick profile, sequential runs", calibrates="schedule"),
    Published("standard", "The standard profile (converged accuracy)", frontier=True),
    Published("competitive", "The competitive recipe", accuracy=True, frontier=True),
    Published("competitive-ngrams", "The competitive recipe with pretrained word vectors and bigram vectors",
              accuracy=True, frontier=True),
    Published("ngram-bag", "The recipe's vectors without its recurrent layer", accuracy=True, frontier=True),
    Published("study", "The study: every cell, depth and direction, converged", frontier=True),
    Published("decomposition", "Where Keras on torch loses its time"),
    Published("programming", "Imperative against declarative"),
    Published("depth", "Depth and direction (the LSTM at 1-3 layers, one- and two-directional)"),
    # make reference's A/A sets, and the names runners.reference.aside gives them when measured again under another
    # allocator (-glibc: glibc's defaults, before retain became the default; docs/findings.md, finding 7), and a
    # slice-4 A/A measured by hand beside them
    *(Published(name, calibrates="aa") for name in ("aa-interleaved", "aa-sequential", "aa-interleaved-glibc",
                                                     "aa-sequential-glibc", "aa-slice4-glibc")),
)
TABLE_SETS = tuple(s.name for s in SETS if s.title)
TITLES = {s.name: s.title for s in SETS if s.title}
ACCURACY_SETS = tuple(s.name for s in SETS if s.accuracy)  # in the order README quotes them
FRONTIER_SETS = tuple(s.name for s in SETS if s.frontier)
AA_FOLDERS = tuple(s.name for s in SETS if s.calibrates == "aa")
SCHEDULE_FOLDERS = tuple(s.name for s in SETS if s.calibrates == "schedule")


def aa_set(schedule: str, allocator: str) -> str:
    """The machine's A/A set whose twins give the margin of a set measured without a twin of its own
    (``analysis.verdicts.margin``): the one swept under the same schedule and allocator (glibc's sets carry -glibc)."""
    return f"aa-{'interleaved' if schedule.startswith('interleaved') else 'sequential'}" + (
        "-glibc" if allocator == "glibc" else "")
