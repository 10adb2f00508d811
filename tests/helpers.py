"""Constants and small helpers the tests share (importable: setup.cfg puts tests/ on the path)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

DOMAINS = ["books", "web", "code", "papers", "social"]
REPO = Path(__file__).resolve().parents[1]
STUDIES = REPO / "studies"


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@contextlib.contextmanager
def scratch_database(admin_url: str, server: str) -> Iterator[str]:
    """The URL of a fresh database on a real server (``server`` names it in messages), dropped
    after. Skips when the server is unreachable, with the reason; fails instead in CI, where
    the server is part of the machine."""
    import pytest
    import sqlalchemy

    admin = sqlalchemy.engine.make_url(admin_url)
    engine = sqlalchemy.create_engine(admin, isolation_level="AUTOCOMMIT")
    name = f"omx_{uuid.uuid4().hex[:12]}"
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    except sqlalchemy.exc.OperationalError as e:
        engine.dispose()
        reason = f"{server} at {admin.host}:{admin.port} not reachable: {e.orig}"
        if running_in_ci():
            pytest.fail(f"{server} is part of CI and must be reachable: {reason}")
        pytest.skip(reason)
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if admin.get_backend_name() == "postgresql" else ""
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"DROP DATABASE {name}{force}"))
        engine.dispose()


def run_study(url: str, raw: dict):
    """Create the study of config ``raw`` in storage ``url`` and run it to its budget."""
    from optuna_mix.config import parse_config
    from optuna_mix.runner import create_mix_study, load_mix_study, optimize
    from optuna_mix.storage import open_storage

    config = parse_config(raw)
    create_mix_study(config, open_storage(url))
    mix = load_mix_study(config.name, open_storage(url))
    optimize(mix, show_progress=False)
    return mix.study
