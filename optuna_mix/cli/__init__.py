"""The ``optuna-mix`` command line: create, optimise, report, list and compare mixture studies.

User errors (a bad config, an unknown study, an unreachable storage) exit 2 with one line on
stderr and no traceback; Ctrl-C fails only the running trial and exits 130. Nothing outside
this package imports it.

| module        | commands                                                     |
|---------------|--------------------------------------------------------------|
| ``common``    | shared options, the user-error wrapper, interrupt handling    |
| ``study``     | ``study create``, ``optimize``, ``report``, ``list``           |
| ``compare``   | ``study compare`` (the seed's table)                          |
| ``dashboard`` | ``dashboard``                                                 |
"""

from __future__ import annotations

import sys

import click
import optuna

from optuna_mix.cli.common import EXIT_INTERRUPTED
from optuna_mix.cli.compare import compare
from optuna_mix.cli.dashboard import dashboard
from optuna_mix.cli.study import study


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="optuna-mix")
@click.option("-v", "--verbose", is_flag=True, help="Show Optuna's per-trial log lines.")
def cli(verbose: bool) -> None:
    """Find the pretraining data mixture that minimises a proxy model's validation loss."""
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)


cli.add_command(study)
cli.add_command(dashboard)
study.add_command(compare)


def main() -> None:
    """Entry point: click's own usage errors also come out as one line with exit code 2."""
    try:
        cli.main(prog_name="optuna-mix", standalone_mode=False)
        sys.exit(0)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        click.echo(f"optuna-mix: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("optuna-mix: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
