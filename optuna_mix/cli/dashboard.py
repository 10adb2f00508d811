"""``optuna-mix dashboard``: optuna-dashboard on a study storage."""

from __future__ import annotations

import click

from optuna_mix.cli.common import storage_option, user_errors
from optuna_mix.storage import open_storage


@click.command()
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@user_errors
def dashboard(storage: str | None, host: str, port: int) -> None:
    """Serve optuna-dashboard on the storage (blocks until Ctrl-C)."""
    from optuna_dashboard import run_server

    click.echo(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    try:
        run_server(open_storage(storage), host=host, port=port)
    except KeyboardInterrupt:
        pass
