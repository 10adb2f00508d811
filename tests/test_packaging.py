"""samplers/ (with its gp/ subpackage) and trainers/ install as optuna_mix.samplers and
optuna_mix.trainers, both ways."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers import REPO

PROBE = (
    "import optuna_mix, optuna_mix.samplers as s, optuna_mix.trainers as t; "
    "from optuna_mix import suggest_mixture; "
    "import optuna_mix.cli.study, optuna_mix.compare.stats; "
    "print(s.__file__); print(t.__file__); print(s.SobolMixtureSampler.__module__); "
    # the GP subpackage, found without importing it (it loads torch)
    "import importlib.util as u; print(u.find_spec('optuna_mix.samplers.gp').origin)"
)


def _pip(python: Path | str, *args: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", *args],
        check=True, capture_output=True, timeout=600,
    )


def _probe(python: Path | str, cwd: Path) -> list[str]:
    out = subprocess.run(
        [str(python), "-c", PROBE], cwd=cwd, check=True, capture_output=True, text=True,
        timeout=300,
    )
    return out.stdout.strip().splitlines()


@pytest.fixture(scope="module")
def env_python(tmp_path_factory) -> Path:
    """A venv that sees the installed dependencies but not this checkout."""
    where = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(where)
    return where / "bin" / "python"


def test_regular_install_copies_the_mapped_packages(tmp_path):
    target = tmp_path / "site"
    _pip(sys.executable, "--target", str(target), str(REPO))
    assert (target / "optuna_mix" / "samplers" / "sobol.py").exists()
    assert (target / "optuna_mix" / "samplers" / "gp" / "sampler.py").exists()
    assert (target / "optuna_mix" / "trainers" / "__init__.py").exists()
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import sys; sys.path[:0] = [sys.argv[1]] + "
         "__import__('site').getsitepackages(); exec(sys.argv[2])", str(target), PROBE],
        cwd=tmp_path, check=True, capture_output=True, text=True, timeout=300,
    ).stdout.splitlines()
    assert probe[0].startswith(str(target / "optuna_mix" / "samplers"))
    assert probe[1].startswith(str(target / "optuna_mix" / "trainers"))
    assert probe[2] == "optuna_mix.samplers.sobol"
    assert probe[3] == str(target / "optuna_mix" / "samplers" / "gp" / "__init__.py")


def test_editable_install_maps_the_top_level_folders(env_python, tmp_path):
    _pip(env_python, "-e", str(REPO))
    samplers, trainers, module, gp = _probe(env_python, tmp_path)
    assert Path(samplers) == REPO / "samplers" / "__init__.py"
    assert Path(trainers) == REPO / "trainers" / "__init__.py"
    assert module == "optuna_mix.samplers.sobol"
    assert Path(gp) == REPO / "samplers" / "gp" / "__init__.py"
