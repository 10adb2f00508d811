"""Proxy sizes as a parameter: the scale declarations samplers read.

A *scale* is a categorical Optuna parameter whose choices are model sizes (non-embedding
parameter counts). ``optuna_mix.suggest_scale`` declares it in the study's system attrs before
it suggests it, as ``suggest_mixture`` declares a mixture, so that a scale-aware sampler on
every worker reads the parameter as a model size (its log, one GP input column) rather than
as unordered categories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import optuna

SCALE_DECLARATION_PREFIX = "optuna_mix:scale:"


@dataclass(frozen=True)
class Scale:
    """One declared scale parameter: its name and the sizes trials may train at, ascending."""

    name: str
    sizes: tuple[float, ...]


def positive_size(value: object, what: str = "scale") -> float:
    """``value`` as a model size (a positive finite float); ValueError naming ``what``."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number (a model size in "
                         f"parameters)") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{what} {value!r} is not a positive model size")
    return v


def check_sizes(sizes: Sequence[float]) -> tuple[float, ...]:
    """Sizes as ascending distinct positive finite floats; ValueError naming the bad one."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise ValueError(f"scales must be a list of model sizes, not {type(sizes).__name__}")
    out = [positive_size(s) for s in sizes]
    if not out:
        raise ValueError("scales must name at least one model size")
    if len(set(out)) != len(out):
        raise ValueError(f"scales repeat a size: {list(sizes)}")
    return tuple(sorted(out))


def declare_scale(study: optuna.Study, name: str, sizes: Sequence[float]) -> Scale:
    """Record the scale parameter ``name`` over ``sizes`` in the study's storage (idempotent)."""
    sizes = check_sizes(sizes)
    key = SCALE_DECLARATION_PREFIX + name
    existing = study._storage.get_study_system_attrs(study._study_id).get(key)
    if existing is None:
        study._storage.set_study_system_attr(study._study_id, key, list(sizes))
    elif tuple(float(v) for v in existing) != sizes:
        raise ValueError(f"scale {name!r} is declared in this study over {list(existing)}, "
                         f"not {list(sizes)}")
    return Scale(name, sizes)


def declared_scales(study: optuna.Study) -> list[Scale]:
    """All scale parameters declared in the study's storage, in name order."""
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return [
        Scale(key[len(SCALE_DECLARATION_PREFIX):], tuple(float(v) for v in value))
        for key, value in sorted(attrs.items())
        if key.startswith(SCALE_DECLARATION_PREFIX)
    ]
