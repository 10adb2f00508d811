"""What every command shares: the ``--storage`` and ``--study-name`` options, the user-error
wrapper (one line on stderr, exit 2, no traceback) and the interrupt handling (exit 130)."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from optuna_mix.config import ConfigError
from optuna_mix.excess import ReferenceFailed
from optuna_mix.signals import Interrupted
from optuna_mix.storage import DEFAULT_STORAGE, StorageError

USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError, StorageError, LookupError, ValueError, ReferenceFailed)
EXIT_INTERRUPTED = 130


class UserError(click.ClickException):
    """A mistake of the user's: printed as one line, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"optuna-mix: error: {self.format_message()}", err=True)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's user-facing exceptions into a one-line exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            raise UserError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None

    return wrapper


@contextlib.contextmanager
def exit_on_interrupt(what_is_kept: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM: say what was kept and how to carry on, exit 130 or 143."""
    try:
        yield
    except KeyboardInterrupt as e:
        code = e.exit_code if isinstance(e, Interrupted) else EXIT_INTERRUPTED
        by = f" by {e.signal_name}" if isinstance(e, Interrupted) else ""
        click.echo(
            f"optuna-mix: interrupted{by}; {what_is_kept}. Run the same command again to carry "
            "on.", err=True,
        )
        sys.exit(code)


storage_option = click.option(
    "--storage",
    default=None,
    metavar="URL",
    help=f"SQLAlchemy URL of the study storage [default: {DEFAULT_STORAGE}].",
)
study_name_option = click.option("--study-name", required=True, help="Name of the study.")
cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=".optuna-mix-cache",
    show_default=True,
    help="Tokenizer and token cache of the GPT objective.",
)
progress_option = click.option("--progress/--no-progress", default=True, show_default=True)
