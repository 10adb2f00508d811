"""Every sampler proposes, for a fixed seed, the mixtures it proposed when they were recorded.

The guard of behaviour-preserving refactors: each case runs one sampler through the config ->
study -> optimise path (or, for the values-only GP, a plain Optuna study) on a seeded analytic
surface and compares its trials' mixtures with ``proposals.json``, recorded from the code
before the refactor of issue 10 (re-recorded on 2026-12-02 from 6a6de1d, which no longer
reproduced the old file with the dependencies installed here; the gp case re-recorded for
issue 13, where the law prior leads only on leave-one-out evidence, and again for issue 14,
where a fit between refits keeps the last refit's hyperparameters exactly instead of their
values read back through the constraints, which drifted in the last digits: the composite
gp's trials 10-13 moved). A deliberate change of a
sampler's behaviour re-records the file (``python tests/samplers/test_proposals.py``) in the
same commit, and says why.

The cases run in a child process whose numerics are pinned (``PINNED_NUMERICS``): on a
machine of another CPU generation MKL, OpenBLAS and torch's own kernels take other code
paths, whose last-bit differences the GP's fits and acquisition search grow into other
proposals after ten trials (on 2026-12-04 the file of 2026-12-03 failed at trial 10 of the
gp case and 9 of the values-only case, the sampler code unchanged). Re-recorded then under
the pinned numerics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

RECORDED = Path(__file__).with_name("proposals.json")
DOMAINS = ["books", "web", "code", "papers", "social"]
TOLERANCE = 1e-6

# case -> (sampler, sampler options, trials); enough trials to pass each start-up design
CASES: dict[str, tuple[str, dict[str, Any], int]] = {
    "gp": ("gp", {}, 14),
    "sobol": ("sobol", {}, 6),
    "uniform": ("uniform", {}, 2),
    "fixed": ("fixed", {"weights": {"books": 0.1, "web": 0.4, "code": 0.2, "papers": 0.2,
                                    "social": 0.1}}, 2),
    "bimix": ("bimix", {"n_startup_trials": 6}, 9),
    "dml": ("dml", {"n_startup_trials": 8}, 10),
    "regmix": ("regmix", {"n_startup_trials": 6, "n_candidates": 4000}, 9),
    "tpe": ("tpe", {"n_startup_trials": 4}, 8),
    "random": ("random", {}, 4),
    "nsga2": ("nsga2", {"population_size": 4}, 8),  # two generations bred from the first
}
VALUES_ONLY_GP_TRIALS = 10
# the same floating-point code paths on any x86-64 machine with AVX2: MKL's conditional
# numerical reproducibility, one OpenBLAS kernel, torch's AVX2 kernels, one thread each
PINNED_NUMERICS = {"MKL_CBWR": "COMPATIBLE", "OPENBLAS_CORETYPE": "Haswell",
                   "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _config(sampler: str, options: dict[str, Any], n_trials: int) -> dict[str, Any]:
    return {
        "study": {"name": f"proposals-{sampler}", "n_trials": n_trials, "seed": 3},
        "sampler": {"name": sampler, **options},
        "objective": {"kind": "surface", "family": "powerlaw", "noise": 0.01, "seed": 1},
        "domains": {d: {} for d in DOMAINS},
    }


def run_case(case: str, storage_url: str) -> list[list[float]]:
    """The mixtures of the case's trials, in trial order."""
    from optuna_mix.config import parse_config
    from optuna_mix.runner import create_mix_study, optimize
    from optuna_mix.storage import open_storage

    sampler, options, n_trials = CASES[case]
    config = parse_config(_config(sampler, options, n_trials))
    mix = create_mix_study(config, open_storage(storage_url))
    optimize(mix, show_progress=False)
    trials = sorted(mix.study.get_trials(deepcopy=False), key=lambda t: t.number)
    return [[float(t.user_attrs["mix"][d]) for d in DOMAINS] for t in trials]


def run_values_only_gp() -> list[list[float]]:
    """SimplexGPSampler in a plain Optuna study whose trials keep no per-domain losses."""
    from optuna_mix import suggest_mixture
    from optuna_mix.samplers import SimplexGPSampler
    from optuna_mix.surfaces import make_surface

    surface = make_surface("dml", DOMAINS, seed=2, noise=0.01)
    rng = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> float:
        w = np.array(list(suggest_mixture(trial, DOMAINS).values()))
        return float(np.mean(surface.noisy_losses(w, rng)))

    study = optuna.create_study(sampler=SimplexGPSampler(seed=5, n_startup_trials=4))
    study.optimize(objective, n_trials=VALUES_ONLY_GP_TRIALS)
    return [[float(t.user_attrs["mix"][d]) for d in DOMAINS] for t in study.trials]


def _recorded() -> dict[str, list[list[float]]]:
    return json.loads(RECORDED.read_text())


def run_all(directory: str) -> dict[str, list[list[float]]]:
    """Every case's proposals (SQLite studies in ``directory``), in this process."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    proposals = {case: run_case(case, f"sqlite:///{directory}/{case}.db") for case in CASES}
    proposals["gp-values-only"] = run_values_only_gp()
    return proposals


def run_pinned(directory: Path) -> dict[str, list[list[float]]]:
    """:func:`run_all` in a child process under ``PINNED_NUMERICS``."""
    out = directory / "proposals.json"
    subprocess.run([sys.executable, __file__, "--out", str(out)], check=True, timeout=600,
                   env={**os.environ, **PINNED_NUMERICS}, cwd=directory)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def proposed(tmp_path_factory) -> dict[str, list[list[float]]]:
    return run_pinned(tmp_path_factory.mktemp("proposals"))


@pytest.mark.parametrize("case", [*CASES, "gp-values-only"])
def test_sampler_proposes_the_recorded_mixtures(case, proposed):
    got = np.array(proposed[case])
    want = np.array(_recorded()[case])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


def test_the_cases_cover_every_sampler_of_the_catalogue():
    """Every approach but the presets (llama, dolma: FixedMixtureSampler with given weights,
    the class the fixed case covers) has a recorded case."""
    from optuna_mix.catalogue import APPROACHES

    presets = {a.name for a in APPROACHES.values() if a.weights is not None}
    assert {sampler for sampler, _, _ in CASES.values()} == set(APPROACHES) - presets


if __name__ == "__main__":  # re-record: python tests/samplers/test_proposals.py
    import tempfile

    if "--out" in sys.argv:  # the child of run_pinned
        with tempfile.TemporaryDirectory() as tmp:
            Path(sys.argv[sys.argv.index("--out") + 1]).write_text(json.dumps(run_all(tmp)))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            recorded = run_pinned(Path(tmp))
        RECORDED.write_text(json.dumps(recorded, indent=1) + "\n")
        print(f"wrote {RECORDED}", file=sys.stderr)
