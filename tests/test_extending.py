"""docs/extending.md's examples run as written: an approach, a criterion, an objective."""

from __future__ import annotations

import re

import pytest

from helpers import REPO
from optuna_mix import catalogue, schema
from optuna_mix.samplers import criteria

PAGE = REPO / "docs" / "extending.md"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_page_has_an_example_for_each_table():
    text = PAGE.read_text()
    assert len(code_blocks(text)) >= 3
    for call in ("register_approach(", "register_objective(", "register_criterion("):
        assert call in text, call


@pytest.fixture
def restored_tables():
    """The examples register entries: the tables are put back as they were afterwards."""
    tables = [catalogue.APPROACHES, schema.OBJECTIVES, criteria.CRITERIA]
    saved = [dict(t) for t in tables]
    yield
    for table, before in zip(tables, saved):
        table.clear()
        table.update(before)


def test_the_examples_run(in_tmp, restored_tables):
    namespace: dict = {"__name__": "extending_example"}
    for i, block in enumerate(code_blocks(PAGE.read_text())):
        try:
            exec(compile(block, f"docs/extending.md block {i + 1}", "exec"), namespace)
        except Exception as e:  # name the block in the failure
            pytest.fail(f"block {i + 1} of docs/extending.md: {type(e).__name__}: {e}")
