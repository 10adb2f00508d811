"""docs/config.md is what the schema and the catalogue declare (it cannot drift)."""

from helpers import REPO
from optuna_mix import schema
from optuna_mix.catalogue import APPROACHES
from optuna_mix.reference import render


def test_the_committed_config_reference_is_the_rendered_one():
    committed = (REPO / "docs" / "config.md").read_text()
    assert committed == render(), "run: python -m optuna_mix.reference docs/config.md"


def test_every_declared_key_and_approach_is_on_the_page():
    page = render()
    for table in (schema.STUDY_KEYS, schema.GPT_KEYS, schema.SURFACE_KEYS,
                  *(schema.domain_keys(s) for s in ("synthetic", "hf", "files"))):
        for name, key in table.items():
            assert f"| `{name}` |" in page or name == "source"
            assert key.meaning or name == "source", name
    for name in APPROACHES:
        assert f"| `{name}` |" in page
