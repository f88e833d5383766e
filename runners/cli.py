"""What every CLI shares: user mistakes become one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import contextlib

import typer

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def user_errors():
    """Turn the project's user-facing errors into ``fail``; anything else is a bug and keeps its traceback."""
    from model.imdb import DatasetError
    from model.spec import SpecError
    from runners.implementations import ImplementationError
    from runners.policy import PolicyError

    try:
        yield
    except (DatasetError, SpecError, ImplementationError, PolicyError, FileNotFoundError) as error:
        fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
    except KeyboardInterrupt:
        fail("interrupted; no record was written for the unfinished run", 130)
