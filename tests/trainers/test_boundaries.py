"""trainers knows nothing of Optuna (DESIGN.md: dependency direction)."""

import ast
from pathlib import Path

import optuna_mix.trainers as trainers


def test_trainers_never_import_optuna():
    files = sorted(Path(trainers.__file__).parent.glob("*.py"))
    assert len(files) >= 5
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "optuna" or n.startswith("optuna.") for n in names), f
