"""Every generated page and figure: README's blocks and claims, docs/results/ whole, every doc's claims.

    python -m analysis.docs            # regenerate them all from results/reference/ (make docs)
    python -m analysis.docs --check    # exit 1 naming each page that differs (the test suite runs it; text only)

Hand-written pages (README.md, docs/*.md) keep their prose; between ``<!-- generated: NAME -->`` and
``<!-- end generated -->`` and inside claim spans (``analysis.claims``) the text is the records'. Everything under
docs/results/ is generated whole: an index with each set's table across machines, the calibration and bf16
tables, and per machine and set the report ``analysis.report`` writes (REPORT.md, tables/, figures).
"""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from analysis import claims, plots, report, tables
from analysis.load import load
from analysis.reference import (
    README,
    REFERENCE,
    REPO,
    frontier_machines,
    quick_machines,
    render_block,
    render_blocks,
)
from analysis.sets import TABLE_SETS, TITLES
from model.errors import fail, user_errors

DOCS = REPO / "docs"
RESULTS = DOCS / "results"
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def hand_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def render_page(text: str) -> str:
    return claims.fill(render_blocks(text))


def index() -> str:
    """docs/results/README.md: each set's table across machines and links to every machine's report."""
    sets: dict[str, list[Path]] = {}
    for folder in sorted(REFERENCE.glob("*/*/")):
        if (folder / "runs").is_dir():
            sets.setdefault(folder.name, []).append(folder)
    order = [name for name in TABLE_SETS if name in sets] + sorted(set(sets) - set(TABLE_SETS))
    parts = ["# Results per machine and set (generated)", "",
             "Every page under `docs/results/` is written by `make docs` from the committed records in "
             "`results/reference/<machine>/<set>/`; edit the records' analysis, not these pages. Each machine's "
             "report per set (verdicts, tables, figures) is linked under its set.", "",
             "![Each column's step time over native torch's per cell and machine](headline.png)", "",
             "Sets: " + ", ".join(f"[{name}](#{name})" for name in order) + ", [accuracy against CPU-minutes]"
             "(#frontier), [calibration](#calibration), [bf16](#bf16).", ""]
    for name in order:
        parts += [f'<a id="{name}"></a>', f"## {TITLES.get(name, f'`{name}`')}", "",
                  "Reports: " + ", ".join(f"[{folder.parent.name}]({folder.parent.name}/{name}/REPORT.md)"
                                          for folder in sets[name]), ""]
        if name in TABLE_SETS:
            parts += [render_block(name)]
    parts += ['<a id="frontier"></a>', "## Accuracy against training CPU-minutes: every recipe, the study, the linear "
              "models", "", "![Test accuracy against training CPU-minutes per machine](frontier.png)", "",
              "![The study's test accuracy against depth, per cell and direction](study-depth.png)", "",
              render_block("frontier")]
    parts += ['<a id="calibration"></a>', "## How fine a difference: the A/A calibration", "",
              render_block("calibration"), '<a id="bf16"></a>', "## bf16 against fp32", "", render_block("bf16")]
    return "\n".join(parts)


def claims_page() -> str:
    """docs/results/claims.md: every figure of the hand-written pages' prose with the query it comes from."""
    rows = []
    for page in hand_pages():
        for query, figure in claims.spans(page.read_text()):
            name = query.split()[0]
            says = (claims.QUERIES[name].__doc__ or "").split("\n")[0]
            rows.append(f"| {page.relative_to(REPO)} | `{query}` | {figure} | {says} |")
    return "\n".join(["# Claims (generated)", "",
                      "Every figure that README and docs/ state in prose, with the query over `results/reference/` "
                      "that produces it (`analysis/claims.py`). `make docs` rewrites each figure from its query; the "
                      "test suite fails where a page's figure differs from it.", "",
                      "| page | query | figure | what it reads |", "|---|---|---|---|", *rows, ""])


def write_results(root: Path, figures: bool = True) -> None:
    """docs/results/ (or a copy of it at ``root``) written whole."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for folder in sorted(REFERENCE.glob("*/*/")):
        if (folder / "runs").is_dir():
            report.generate(folder, out=root / folder.parent.name / folder.name, figures=figures)
    (root / "README.md").write_text(index())
    (root / "claims.md").write_text(claims_page())
    if figures:
        figure = plots.ratios_to_torch({name: tables.summary(data.runs) for name, data in quick_machines().items()})
        plots.save(figure, root / "headline.png")
        machines = frontier_machines()
        plots.save(plots.frontier(machines), root / "frontier.png")
        # accuracy pools across machines (one plan, the same seeds); minutes never do
        studies = [load(folder).runs for folder in sorted(REFERENCE.glob("*/study"))]
        if studies:
            study = tables.accuracy_points(pd.concat(studies, ignore_index=True), "study")
            plots.save(plots.accuracy_vs_depth(study[study["kind"] == "network"]), root / "study-depth.png")


def differences() -> list[str]:
    """Pages whose text differs from what the records give: hand pages' blocks and claims, and every text file
    under docs/results/ (figures are drawn by ``make docs`` and not compared: their bytes follow the font
    stack)."""
    stale = [str(page.relative_to(REPO)) for page in hand_pages() if render_page(page.read_text()) != page.read_text()]
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "results"
        write_results(fresh, figures=False)
        texts = {path.relative_to(fresh) for path in fresh.rglob("*") if path.is_file()}
        present = {path.relative_to(RESULTS) for path in RESULTS.rglob("*")
                   if path.is_file() and path.suffix != ".png"} if RESULTS.is_dir() else set()
        stale += [f"docs/results/{path}" for path in sorted(texts ^ present)]
        stale += [f"docs/results/{path}" for path in sorted(texts & present)
                  if not filecmp.cmp(fresh / path, RESULTS / path, shallow=False)]
    return stale


@app.command()
def main(check: Annotated[bool, typer.Option(help="only compare; exit 1 naming the pages that differ")] = False):
    """Regenerate README's blocks and claims, docs' claims and docs/results/ from results/reference/."""
    with user_errors():
        if check:
            stale = differences()
            if stale:
                fail(f"generated pages differ from results/reference ({', '.join(stale[:5])}"
                     f"{', ...' if len(stale) > 5 else ''}); run `make docs`", 1)
            return
        for page in hand_pages():
            page.write_text(render_page(page.read_text()))
        write_results(RESULTS)
        typer.echo(f"{len(hand_pages())} pages and {RESULTS.relative_to(REPO)}/ regenerated")


if __name__ == "__main__":
    app()
