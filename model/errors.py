"""User mistakes: one base class, and the CLI rule that turns them into one line on stderr and a non-zero exit."""

from __future__ import annotations

import contextlib
import sys
from typing import NoReturn

EXIT_USAGE = 2


class UserError(ValueError):
    """A setting, file or environment the user can fix; reported in one line, never as a traceback."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr and the exit code; SystemExit passes through typer (and click) unchanged, so the model
    layer needs no CLI library."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


@contextlib.contextmanager
def user_errors():
    """Turn user errors into ``fail``; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (UserError, FileNotFoundError) as error:
        fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
    except KeyboardInterrupt:
        fail("interrupted; no record was written for the unfinished run", 130)
