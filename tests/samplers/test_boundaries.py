"""samplers knows Optuna and the simplex, nothing of the glue or of training (DESIGN.md)."""

import ast
from pathlib import Path

import optuna_mix.samplers as samplers

ROOT = Path(samplers.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_samplers_import_nothing_from_the_glue_or_the_trainers():
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) >= 8
    for f in files:
        for name in _imported_modules(f):
            if name == "optuna_mix" or name.startswith("optuna_mix."):
                assert name == "optuna_mix.samplers" or name.startswith("optuna_mix.samplers."), (
                    f"{f.relative_to(ROOT)} imports {name}"
                )
