"""Rewrite a results folder's records, run plans and manifests written by an older version in today's formats.

    python -m runners.migrate                   # every folder under results/
    python -m runners.migrate results/my-sweep  # one folder (or several)
    python -m runners.migrate --check           # list what would change; exit 1 if anything would

Readers take one version of each file and refuse older ones in one line that names this command; what each step
fills in, and why, is in ``model/migration.py``. A file already current is left as it is; each rewrite is atomic,
so a migration stopped half-way is finished by running it again.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from model import migration, records
from model.errors import fail, user_errors

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def migrate(folders: list[Path], write: bool = True) -> Counter:
    """Migrate (or, ``write=False``, only count) every file of ``migration.FILES`` under ``folders``: a count per
    file name, and ``current``."""
    counts = Counter()
    for folder in folders:
        for name, step in migration.FILES.items():
            for path in sorted(folder.rglob(name)):
                try:
                    old = records.read_json(path)
                except json.JSONDecodeError as error:
                    raise records.RecordError(f"{path} is not valid JSON ({error})") from None
                try:
                    new = step(old)
                except records.RecordError as error:
                    raise records.RecordError(f"{path}: {error}") from None
                if new == old:
                    counts["current"] += 1
                    continue
                if write:
                    records.write_json_atomic(path, new)
                counts[name] += 1
    return counts


@app.command()
def main(folders: Annotated[Optional[list[Path]], typer.Argument(help="results folders (default: results/)")] = None,
         check: Annotated[bool, typer.Option(help="only list what would change; exit 1 if anything would")] = False):
    """Rewrite older records, run plans and manifests in today's formats, in place."""
    with user_errors():
        folders = folders or [Path("results")]
        for folder in folders:
            if not folder.is_dir():
                fail(f"{folder} is not a folder")
        counts = migrate(folders, write=not check)
        changed = {name: counts[name] for name in migration.FILES if counts[name]}
        done = "would rewrite" if check else "rewrote"
        summary = ", ".join(f"{n} {name}" for name, n in changed.items()) or "nothing"
        typer.echo(f"{done} {summary}; {counts['current']} file(s) already current")
        if check and changed:
            raise typer.Exit(1)


if __name__ == "__main__":
    app()
