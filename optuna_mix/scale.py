"""``suggest_scale``: the proxy size of a trial, as a parameter a scale-aware sampler reads."""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from optuna_mix.samplers import declare_scale


def suggest_scale(trial: optuna.Trial, scales: Sequence[float], *, name: str = "scale") -> float:
    """Suggest the model size (non-embedding parameters) this trial trains at, one of ``scales``.

    A categorical parameter ``name`` over the sizes, declared in the study's storage first
    (as ``suggest_mixture`` declares a mixture) so that a scale-aware sampler on every worker
    reads it as log model size. ``study.enqueue_trial({name: N})`` pins it; a pinned size that
    is not one of ``scales`` is refused.
    """
    scale = declare_scale(trial.study, name, scales)
    fixed = getattr(trial, "_fixed_params", None) or {}
    if name in fixed and float(fixed[name]) not in scale.sizes:
        raise ValueError(f"trial {trial.number} pins {name}={fixed[name]!r}, which is not one "
                         f"of the scales {list(scale.sizes)}")
    # an enqueued int (e.g. 25_000) is the float choice's size: Optuna stores that choice
    return float(trial.suggest_categorical(name, list(scale.sizes)))
