"""The front door holds: every generated page and every prose figure is what the committed records say, a figure
typed by hand fails, README stays short, and every relative link resolves."""

import re
from pathlib import Path

import pytest

from analysis import claims, docs

REPO = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_generated_page_and_prose_figure_matches_the_records():
    assert docs.differences() == [], "run `make docs`"


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
            assert name in claims.QUERIES or name in claims.CLAIMS, f"{page.name}: {query}"


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
