"""Helpers the tests of optuna_mix.samplers.gp share (tests/samplers/gp/)."""

from __future__ import annotations

import numpy as np

from optuna_mix import suggest_mixture
from optuna_mix.samplers.criteria import criterion_fn

# cheap acquisition search for the conformance suite (hundreds of suggestions)
FAST = {"n_raw_samples": 32, "n_restarts": 0, "mc_samples": 16}


def is_simplex(w) -> bool:
    w = np.asarray(w, dtype=float)
    return bool(np.all(w >= 0) and np.all(w <= 1) and abs(w.sum() - 1.0) <= 1e-9)


def surface_objective(surface, rng=None, *, keep_losses=False, criterion="mean"):
    """The surface's criterion; with ``keep_losses`` the per-domain losses in the user attrs,
    as optuna-mix's objectives keep them (the GP then models each one)."""
    domains = list(surface.domains)

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.losses(w) if rng is None else surface.noisy_losses(w, rng)
        if keep_losses:
            trial.set_user_attr("losses", dict(zip(surface.outputs, map(float, losses))))
        return float(criterion_fn(criterion)(losses))

    return objective


def weights(trial, name="mix"):
    return np.array([v for k, v in trial.params.items() if k.startswith(name + ".")])
