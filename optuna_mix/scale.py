"""Model size as a trial parameter: ``suggest_scale``, and the presets a config's ``scales`` name.

A config's ``[objective] scales = ["xs", "s", "m"]`` lets each trial train at one of those
model presets; the trial's size is the preset's non-embedding parameter count (which does not
depend on the vocabulary), suggested through :func:`suggest_scale` so that a scale-aware
sampler reads it as log model size. ``target`` names the preset the mixture is for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from optuna_mix.samplers import declare_scale

SCALE_PARAM = "scale"  # the parameter name a config's studies use
PRESET_ATTR = "preset"  # trial user attr: the preset a scale-aware trial trained
TARGET_REGRET_ATTR = "regret_at_target"  # scaled surfaces: the mixture's true regret at target


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


def preset_size(preset: str) -> float:
    """The non-embedding parameter count of a model preset (ValueError if there is none)."""
    from optuna_mix.trainers import GPTConfig  # torch: only where sizes are asked for

    return float(GPTConfig.preset(preset).n_params())


@dataclass(frozen=True)
class PresetScales:
    """The presets a study's trials may train at (ascending size) and the one it is for."""

    presets: tuple[str, ...]
    target: str

    @property
    def sizes(self) -> tuple[float, ...]:
        return tuple(preset_size(p) for p in self.presets)

    @property
    def target_size(self) -> float:
        return preset_size(self.target)

    def size_of(self, preset: str) -> float:
        return preset_size(preset)

    def preset_of(self, size: float) -> str:
        """The preset of a trained size (KeyError for a size no preset of these has)."""
        for preset, s in zip(self.presets, self.sizes):
            if s == float(size):
                return preset
        raise KeyError(f"no preset of {list(self.presets)} has {size:g} parameters")

    def suggest(self, trial: optuna.Trial) -> str:
        """The preset this trial trains, through :func:`suggest_scale`; recorded as ``preset``."""
        preset = self.preset_of(suggest_scale(trial, self.sizes, name=SCALE_PARAM))
        trial.set_user_attr(PRESET_ATTR, preset)
        return preset


def preset_scales(objective: Mapping[str, Any]) -> PresetScales | None:
    """The ``scales``/``target`` of a checked ``[objective]`` table, or None without scales."""
    names = objective.get("scales")
    if not names:
        return None
    presets = tuple(sorted(names, key=preset_size))
    return PresetScales(presets, objective.get("target") or presets[-1])


def scales_problem(objective: Mapping[str, Any]) -> str | None:
    """What is wrong with an ``[objective]``'s ``scales`` and ``target`` (one line), or None."""
    from optuna_mix.trainers import PRESETS

    names, target = objective.get("scales"), objective.get("target")
    if target is not None and not names:
        return ("[objective] target is the model size the mixture is for; it needs scales, the "
                "presets trials train at")
    if not names:
        return None
    for name in [*names, *([target] if target is not None else [])]:
        if name not in PRESETS:
            return (f"[objective] unknown model preset {name!r} in "
                    f"{'target' if name == target and name not in names else 'scales'} "
                    f"(choose from {', '.join(PRESETS)})")
    by_size: dict[float, str] = {}
    for name in names:
        if (size := preset_size(name)) in by_size:
            return (f"[objective] scales {by_size[size]!r} and {name!r} are the same size "
                    f"({size:,.0f} parameters); name each size once")
        by_size[size] = name
    return None
