"""Constants and small helpers the tests share (importable: setup.cfg puts tests/ on the path)."""

from __future__ import annotations

import os
from pathlib import Path

DOMAINS = ["books", "web", "code", "papers", "social"]
REPO = Path(__file__).resolve().parents[1]
STUDIES = REPO / "studies"


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
