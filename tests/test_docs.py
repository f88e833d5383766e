"""The front door holds: every generated page and every prose figure is what the committed records say, a figure
typed by hand fails, README stays short, and every relative link resolves."""

import filecmp
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import claims, docs, rendering, report

REPO = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_generated_page_and_prose_figure_matches_the_records():
    assert docs.differences() == [], "run `make docs`"


# docs/results/amd-epyc-avx2-2c/aa-interleaved-glibc/tables/comparisons.csv as a Zen 5 (AVX-512) and a Zen 3 (AVX2)
# computed it, written in full: numpy's vectorized kernels round the last bit differently (issue 36).
HEADER = "cell,layers,bidirectional,numerator,denominator,ratio,low,high,p,testable,clear"
ZEN5 = ["lstm,1,False,keras-tensorflow,torch,0.8494346283175169,0.7850165991272146,0.9191387654568438,0.012383005687238999,True,False",  # noqa: E501
        "lstm,1,False,keras-tensorflow,torch[label=b],0.8088721309868172,0.5818686719006602,1.1244360727481408,0.1093156659248672,True,False",  # noqa: E501
        "lstm,1,False,tensorflow,torch[label=b],0.7845346983293972,0.5043668154431148,1.220331461224409,0.14189873895578817,True,False"]  # noqa: E501
ZEN3 = ["lstm,1,False,keras-tensorflow,torch,0.8494346283175169,0.7850165991272147,0.9191387654568438,0.012383005687238999,True,False",  # noqa: E501
        "lstm,1,False,keras-tensorflow,torch[label=b],0.8088721309868172,0.5818686719006603,1.1244360727481408,0.1093156659248672,True,False",  # noqa: E501
        "lstm,1,False,tensorflow,torch[label=b],0.7845346983293972,0.5043668154431148,1.2203314612244092,0.14189873895578817,True,False"]  # noqa: E501


def _table(rows: list[str]) -> pd.DataFrame:
    return pd.DataFrame([row.split(",") for row in rows], columns=HEADER.split(",")).astype(
        {name: float for name in ("ratio", "low", "high", "p")})


def test_a_zen3s_and_a_zen5s_last_bits_write_the_same_table():
    zen5, zen3 = _table(ZEN5), _table(ZEN3)
    assert not zen5.equals(zen3)  # the fixture holds the two CPUs' differing values
    assert rendering.to_csv(zen5) == rendering.to_csv(zen3)
    assert rendering.to_csv(zen3).splitlines()[1] == (
        "lstm,1,False,keras-tensorflow,torch,0.849435,0.785017,0.919139,0.012383,True,False")


def test_a_csv_keeps_six_significant_digits_and_a_large_values_integer_digits():
    table = pd.DataFrame({"value": [0.12345649, 12345.64, 1796602925.6497073, 2.5e-7, 0.0, -0.0, np.nan, np.inf,
                                    999999.5, -1234567.4]})
    assert rendering.to_csv(table).splitlines() == ["value", "0.123456", "12345.6", "1796602926", "2.5e-07", "0", "0",
                                                 '""', "inf", "999999.5", "-1234567"]


def _avx512_kernels() -> list[str]:
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name) and
            (name.startswith("AVX512") or name == "X86_V4")]


def test_a_folders_pages_and_figures_are_the_same_bytes_on_avx2_and_avx512_kernels(tmp_path):
    """The folder whose tables and figure differed between a Zen 3 and a Zen 5, reported here and again in a process
    whose numpy and OpenBLAS take the AVX2 kernels a Zen 3 runs (NPY_DISABLE_CPU_FEATURES, OPENBLAS_CORETYPE): on
    an AVX-512 CPU it reproduced the Zen 3's 86 changed files of `make docs` exactly, before the fix."""
    kernels = _avx512_kernels()
    if not kernels:
        pytest.skip("this CPU runs numpy's AVX2 kernels only: there is no second path to compare against")
    folder = REPO / "results" / "reference" / "amd-epyc-avx2-2c" / "quick-sequential"
    report.generate(folder, out=tmp_path / "here")
    environment = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(kernels), OPENBLAS_CORETYPE="Haswell")
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from analysis import report; "
                    "report.generate(Path(sys.argv[1]), out=Path(sys.argv[2]))", str(folder), str(tmp_path / "avx2")],
                   cwd=REPO, env=environment, check=True)
    here = sorted(path.relative_to(tmp_path / "here") for path in (tmp_path / "here").rglob("*") if path.is_file())
    assert here and here == sorted(path.relative_to(tmp_path / "avx2") for path in (tmp_path / "avx2").rglob("*")
                                   if path.is_file())
    assert any(path.suffix == ".png" for path in here) and any(path.suffix == ".csv" for path in here)
    assert [path for path in here if not filecmp.cmp(tmp_path / "here" / path, tmp_path / "avx2" / path,
                                                     shallow=False)] == []


def test_a_figure_typed_over_by_hand_fails():
    text = (REPO / "README.md").read_text()
    query, figure = claims.spans(text)[0]
    edited = text.replace(f"<!-- claim: {query} -->{figure}<!-- /claim -->",
                          f"<!-- claim: {query} -->{figure}0<!-- /claim -->", 1)
    assert edited != text
    assert docs.render_page(edited) != edited  # the check's comparison, on the edited page
    assert docs.render_page(edited) == text


def test_a_record_that_moved_under_a_sentence_fails():
    """The span's figure is recomputed from the query, not read back: a query over another folder or column
    gives another figure."""
    assert claims.value("ratio amd-epyc-avx2-2c/quick tensorflow torch gru1") != claims.value(
        "ratio amd-epyc-avx2-2c/quick keras-tensorflow torch gru1")


@pytest.mark.parametrize("page", docs.hand_pages(), ids=lambda page: str(page.relative_to(REPO)))
def test_prose_states_no_figure_outside_a_claim(page):
    name = str(page.relative_to(REPO))
    assert claims.unclaimed(name, page.read_text()) == []


def test_a_prose_figure_added_by_hand_is_refused():
    text = (REPO / "README.md").read_text()
    edited = text.replace("## Start here", "Native TF trains 1.31x faster here, at 0.8871.\n\n## Start here", 1)
    assert claims.unclaimed("README.md", edited) == ["1.31x", "0.8871"]
    # where a reader cannot see it as prose, it is not a claim: code, tables, generated blocks
    assert claims.unclaimed("README.md", "`1.31x`\n\n| 1.31x |\n\n```\n1.31x\n```\n") == []


def test_no_claim_starts_a_line():
    """A line that starts with an HTML comment starts an HTML block in CommonMark: the figure would leave its
    sentence."""
    for page in docs.hand_pages():
        starts = [line for line in page.read_text().splitlines() if line.lstrip().startswith("<!-- claim:")]
        assert starts == [], page.name


def test_every_claim_names_a_known_query():
    for page in docs.hand_pages():
        for query, _ in claims.spans(page.read_text()):
            name = query.split()[0]
            assert name in claims.QUERIES, f"{page.name}: {query}"


def test_readme_is_short_and_answers_on_its_first_screen():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    first_screen = "\n".join(lines[:60])
    assert "<!-- generated: headline -->" in first_screen and "docs/results/headline.png" in "\n".join(lines)


def _pages():
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def broken_links(pages) -> list[str]:
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.name} -> {target}")
    return broken


def test_every_relative_link_resolves():
    assert broken_links(_pages()) == []


def test_the_link_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[there](missing.md#part), [fine](page.md#top), [web](https://example.org) and [here](#top)")
    assert broken_links([page]) == ["page.md -> missing.md#part"]


def test_the_record_schema_page_names_every_section_of_the_schema():
    """docs/record-schema.md against model/records.py: its title's version and a row for every section."""
    from model import records

    page = (REPO / "docs" / "record-schema.md").read_text()
    assert f"`schema_version` {records.SCHEMA_VERSION})" in page.splitlines()[0]
    rows = [line.split("|")[1] for line in page.splitlines() if line.startswith("| `")]
    named = {name.strip(" `") for row in rows for name in row.split(",")}
    assert named == set(records.SECTIONS), named ^ set(records.SECTIONS)
