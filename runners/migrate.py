"""Rewrite a results folder's records, run plans and manifests written by an older version in today's formats.

    python -m runners.migrate                   # every folder under results/
    python -m runners.migrate results/my-sweep  # one folder (or several)
    python -m runners.migrate --check           # count what would change; exit 1 if anything would

Readers take one version of each file and refuse older ones in one line that names this command; what each step
fills in, and why, is in ``model/migration.py``. A file already current is left as it is; each rewrite is atomic,
so a migration stopped half-way is finished by running it again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from model import migration, records
from model.errors import fail, user_errors

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def results_folders(folder: Path) -> list[Path]:
    """The results folders at or under ``folder``: those holding a ``runs`` folder."""
    return sorted({runs.parent for runs in [folder / records.RUNS_FOLDER, *folder.rglob(records.RUNS_FOLDER)]
                   if runs.is_dir()})


def files(results: Path) -> list[Path]:
    """A results folder's files of ``migration.FILES``: each run's, then the folder's own, the manifest last, so
    that a migration stopped half-way leaves the manifest (which readers check first) old."""
    runs = results / records.RUNS_FOLDER
    found = [run / name for run in sorted(runs.iterdir()) if run.is_dir()
             for name in (records.RECORD_FILE, records.PLAN_FILE, records.FAILED_FILE)]
    found += [results / records.BASELINE_FILE, results / records.MANIFEST_FILE]
    return [path for path in found if path.exists()]


def migrate(folders: list[Path], write: bool = True) -> Counter:
    """Migrate (or, ``write=False``, only count) every file of ``migration.FILES`` in the results folders at or
    under ``folders``: a count per file name, and ``current``."""
    counts = Counter()
    for results in (found for folder in folders for found in results_folders(folder)):
        for path in files(results):
            old = records.read_object(path)
            try:
                new = migration.FILES[path.name](old)
            except (records.RecordError, KeyError, TypeError, AttributeError) as error:
                raise records.RecordError(f"{path} cannot be migrated: {error!r}" if not isinstance(
                    error, records.RecordError) else f"{path}: {error}") from None
            if new == old:
                counts["current"] += 1
                continue
            if write:
                records.write_json_atomic(path, new)
            counts[path.name] += 1
    return counts


@app.command()
def main(folders: Annotated[Optional[list[Path]], typer.Argument(help="results folders (default: results/)")] = None,
         check: Annotated[bool, typer.Option(help="only count what would change; exit 1 if anything would")] = False):
    """Rewrite older records, run plans and manifests in today's formats, in place."""
    with user_errors():
        folders = folders or [Path("results")]
        for folder in folders:
            if not folder.is_dir():
                fail(f"{folder} is not a folder")
            if not results_folders(folder):
                fail(f"{folder} holds no results folder (a folder with {records.RUNS_FOLDER}/)")
        counts = migrate(folders, write=not check)
        changed = {name: counts[name] for name in migration.FILES if counts[name]}
        done = "would rewrite" if check else "rewrote"
        summary = ", ".join(f"{n} {name}" for name, n in changed.items()) or "nothing"
        typer.echo(f"{done} {summary}; {counts['current']} file(s) already current")
        if check and changed:
            raise typer.Exit(1)


if __name__ == "__main__":
    app()
