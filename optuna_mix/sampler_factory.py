"""Build the sampler a study config names, with its options checked before any trial runs."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.samplers import BaseSampler

from optuna_mix import samplers as mix_samplers

MIXING_LAWS = ("bimix", "dml", "regmix")
# options a config may not set: the study seed and the law come from elsewhere
RESERVED = {"seed", "law", "independent_sampler"}


# config name -> (module, class); looked up only when picked, since "gp" loads torch and BoTorch
SAMPLER_CLASSES = {
    "sobol": (mix_samplers, "SobolMixtureSampler"),
    "uniform": (mix_samplers, "UniformMixtureSampler"),
    "fixed": (mix_samplers, "FixedMixtureSampler"),
    "gp": (mix_samplers, "SimplexGPSampler"),
    **{law: (mix_samplers, "MixingLawSampler") for law in MIXING_LAWS},
    "tpe": (optuna.samplers, "TPESampler"),
    "random": (optuna.samplers, "RandomSampler"),
}


def _sampler_class(name: str) -> type[BaseSampler]:
    module, attribute = SAMPLER_CLASSES.get(name, (None, ""))
    cls = getattr(module, attribute, None) if module is not None else None
    if cls is None:
        raise ValueError(f"sampler {name!r} is not available in this version of optuna-mix")
    return cls


def create_sampler(name: str, options: dict[str, Any], *, seed: int | None) -> BaseSampler:
    """The sampler ``name`` with ``options`` (the [sampler] table less its name) and ``seed``."""
    cls = _sampler_class(name)
    kwargs = dict(options)
    if name in MIXING_LAWS:
        kwargs["law"] = name
    if "seed" in inspect.signature(cls).parameters:
        kwargs["seed"] = seed
    return cls(**kwargs)


def allowed_options(name: str) -> list[str]:
    """The [sampler] options sampler ``name`` accepts (its constructor's keywords)."""
    parameters = inspect.signature(_sampler_class(name)).parameters
    return [p for p in parameters if p not in RESERVED and p != "self"]


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _type_problems(name: str, options: dict[str, Any]) -> list[str]:
    """Options whose value is not of the type of the constructor's default for them."""
    problems = []
    parameters = inspect.signature(_sampler_class(name)).parameters
    for key, value in options.items():
        default = parameters[key].default if key in parameters else None
        expected = type(default) if type(default) in _TYPE_WORDS else None
        if expected is None:
            continue
        if expected is bool:
            ok = isinstance(value, bool)
        elif expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, expected) and not isinstance(value, bool)
        if not ok:
            problems.append(
                f"[sampler] {key} must be {_TYPE_WORDS[expected]} for sampler {name!r}, "
                f"got {value!r}"
            )
    return problems


def validate_sampler_options(
    name: str, options: dict[str, Any], domains: Sequence[str]
) -> list[str]:
    """One line per problem with the [sampler] options of sampler ``name``."""
    try:
        allowed = allowed_options(name)
    except ValueError as e:
        return [f"[sampler] {e}"]
    problems = [
        f"[sampler] unknown option {key!r} for sampler {name!r} "
        f"(allowed: {', '.join(allowed) or 'none'})"
        for key in options
        if key not in allowed
    ]
    problems += _type_problems(name, options)
    if name == "fixed":
        weights = options.get("weights")
        if weights is None:
            problems.append("[sampler] the fixed sampler needs weights = { domain = weight, ... }")
        elif isinstance(weights, dict):
            unknown = sorted(set(weights) - set(domains))
            if unknown:
                problems.append(
                    f"[sampler] weights name unknown domain(s) {', '.join(unknown)} "
                    f"(domains: {', '.join(domains)})"
                )
    if not problems:
        try:
            create_sampler(name, options, seed=0)
        except (TypeError, ValueError) as e:
            problems.append(f"[sampler] {e}")
    return problems
