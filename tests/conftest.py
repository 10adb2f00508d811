"""Shared fixtures: quiet Optuna, a fresh SQLite storage per test, the seed's five domains."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from helpers import DOMAINS

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def domains() -> list[str]:
    return list(DOMAINS)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with the working directory in tmp_path (the CLI's default storage)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
