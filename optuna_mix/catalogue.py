"""The catalogue of approaches: every sampler a config, ``--sampler`` or ``compare`` can name.

One table, :data:`APPROACHES`; the config check, the sampler factory, ``study create
--sampler``, ``study compare`` and the sampler list of docs/config.md are all read from it.
Adding a sampler is one :class:`Approach` entry here plus its class (docs/extending.md).

A sampler's options are its constructor's keyword arguments (less :data:`RESERVED`), typed by
their defaults and explained by the "Args:" section of its docstring, so they too are
declared once, where the sampler is written.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.samplers import BaseSampler

from optuna_mix.samplers.fixed import DOLMA_WEIGHTS, LLAMA_WEIGHTS
from optuna_mix.samplers.registry import Registry

# constructor keywords a config may not set: the study's seed, the catalogue's law and preset
# weights, and a Python object
RESERVED = frozenset({"seed", "law", "independent_sampler"})


@dataclass(frozen=True)
class Approach:
    """One way of choosing mixtures: a sampler class with what the catalogue fixes for it.

    Attributes:
        name: the name in configs, ``--sampler`` and ``compare --approaches``.
        sampler: the class, or ``"module:Class"`` to import it only when used (``gp`` loads
            torch and BoTorch).
        summary: one line for the docs and ``--help``.
        searching: False for a fixed mixture (every trial evaluates the same one, so its
            repeats measure the run-to-run noise in ``compare``).
        weights: preset weights (domain -> weight) passed as ``weights=``.
        law: the mixing law passed as ``law=``.
        needs_losses: proposals are fitted to the trials' per-domain losses.
        needs_domain_losses: ... and to one loss per training domain, each tied to its own
            domain's weight (BiMix): validation sets that are not the domains cannot be used.
        scale_aware: it models the trial's model size (``suggest_scale``) and is given the
            config's target size as ``target_scale``: it can choose the size to train at.
        pareto: it proposes for a multi-objective study (``criterion = "pareto"``: one value
            per validation set); None where it can, else why not.
        in_compare: ``compare`` can run it; ``compare_default``: it runs without
            ``--approaches``.
        resumes_by_trial_number: its proposals follow from the trial number and the storage
            (a shared design or a model of the trials), so a resumed worker may keep the study's
            seed; the others (Random, TPE) get the seed offset by the trials run so far, or
            would replay their first proposals.
    """

    name: str
    sampler: str | type[BaseSampler]
    summary: str
    searching: bool = True
    weights: Mapping[str, float] | None = field(default=None, repr=False)
    law: str | None = None
    needs_losses: bool = False
    needs_domain_losses: bool = False
    scale_aware: bool = False
    pareto: str | None = None
    in_compare: bool = True
    compare_default: bool = True
    resumes_by_trial_number: bool = True

    def sampler_class(self) -> type[BaseSampler]:
        """The class, imported now; ValueError naming the approach if it cannot be."""
        if not isinstance(self.sampler, str):
            return self.sampler
        module, _, attribute = self.sampler.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as e:
            raise ValueError(
                f"sampler {self.name!r} is not available in this installation ({e})"
            ) from None
        return cls

    def is_optunas(self) -> bool:
        """Whether the sampler is one of Optuna's own (its options are documented there)."""
        return self.sampler_class().__module__.startswith("optuna.")

    def fixed_arguments(self) -> dict[str, Any]:
        """What the catalogue passes to the constructor besides the config's options."""
        fixed: dict[str, Any] = {}
        if self.law is not None:
            fixed["law"] = self.law
        if self.weights is not None:
            fixed["weights"] = dict(self.weights)
        return fixed

    def option_names(self) -> list[str]:
        """The options a config may set: the constructor's keywords less the fixed ones."""
        taken = RESERVED | set(self.fixed_arguments())
        return [p for p in _parameters(self.sampler_class()) if p not in taken]

    def required_options(self) -> list[str]:
        """The options a config must set (constructor keywords without a default)."""
        parameters = _parameters(self.sampler_class())
        return [p for p in self.option_names()
                if parameters[p].default is inspect.Parameter.empty]

    def create(self, options: Mapping[str, Any], *, seed: int | None) -> BaseSampler:
        """The sampler with ``options`` (a [sampler] table less its name) and ``seed``."""
        cls = self.sampler_class()
        kwargs = {**options, **self.fixed_arguments()}
        if "seed" in _parameters(cls):
            kwargs["seed"] = seed
        return cls(**kwargs)


# why a mixing-law sampler cannot run a pareto study
_ONE_VALUE = ("it proposes the minimiser of one criterion of the fitted losses, and a pareto "
              "study has none; use gp, sobol, tpe or nsga2")

APPROACHES: Registry[Approach] = Registry(
    "sampler",
    [
        Approach("gp", "optuna_mix.samplers:SimplexGPSampler",
                 "Bayesian optimisation: GPs of the per-domain losses (or of the values), qLogNEI "
                 "on the simplex", scale_aware=True),
        Approach("sobol", "optuna_mix.samplers:SobolMixtureSampler",
                 "random search: a scrambled Sobol design on the simplex, shared by the workers"),
        Approach("uniform", "optuna_mix.samplers:UniformMixtureSampler",
                 "every domain 1/k", searching=False),
        Approach("llama", "optuna_mix.samplers:FixedMixtureSampler",
                 "LLaMA-1's reported proportions over books, web, code, papers, social",
                 searching=False, weights=LLAMA_WEIGHTS),
        Approach("dolma", "optuna_mix.samplers:FixedMixtureSampler",
                 "Dolma v1's natural proportions over books, web, code, papers, social",
                 searching=False, weights=DOLMA_WEIGHTS),
        Approach("fixed", "optuna_mix.samplers:FixedMixtureSampler",
                 "a mixture of your own (weights = { domain = weight, ... })",
                 searching=False, compare_default=False),
        Approach("bimix", "optuna_mix.samplers:MixingLawSampler",
                 "BiMix's law L_i = B_i r_i^-b_i fitted to the losses, its minimiser proposed",
                 law="bimix", needs_losses=True, needs_domain_losses=True,
                 pareto=_ONE_VALUE),
        Approach("dml", "optuna_mix.samplers:MixingLawSampler",
                 "Data Mixing Laws, L_i = c_i + k_i exp(t_i . r), fitted, its minimiser proposed",
                 law="dml", needs_losses=True, pareto=_ONE_VALUE),
        Approach("regmix", "optuna_mix.samplers:MixingLawSampler",
                 "RegMix: a regression of the losses on the mixture, its best predicted mixtures",
                 law="regmix", needs_losses=True, pareto=_ONE_VALUE),
        Approach("tpe", "optuna.samplers:TPESampler",
                 "Optuna's TPE on k independent weights, normalised onto the simplex",
                 compare_default=False, resumes_by_trial_number=False),
        Approach("random", "optuna.samplers:RandomSampler",
                 "Optuna's random sampler, normalised onto the simplex (flat Dirichlet)",
                 compare_default=False, resumes_by_trial_number=False),
        Approach("nsga2", "optuna.samplers:NSGAIISampler",
                 "Optuna's NSGA-II (a genetic algorithm for criterion = \"pareto\"), "
                 "normalised onto the simplex", compare_default=False,
                 resumes_by_trial_number=False),
    ],
)
register_approach = APPROACHES.add
get_approach = APPROACHES.lookup


def create_sampler(name: str, options: Mapping[str, Any], *, seed: int | None) -> BaseSampler:
    """The sampler of approach ``name`` with ``options`` and ``seed``."""
    return get_approach(name).create(options, seed=seed)


def objective_problem(
    name: str, validation_sets: Sequence[str], domains: Sequence[str]
) -> str | None:
    """Why sampler ``name`` cannot work with an objective whose losses are on
    ``validation_sets`` (None when it can, or when ``name`` is unknown: reported elsewhere)."""
    approach = APPROACHES.get(name)
    if approach is None or not approach.needs_domain_losses:
        return None
    if set(validation_sets) == set(domains):
        return None
    return (
        f"sampler {name!r} ties each loss to its own domain's weight, but the objective's "
        f"validation sets ({', '.join(validation_sets)}) are not the domains "
        f"({', '.join(domains)}); choose dml or regmix, which model any validation set"
    )


def scale_problem(name: str, scales: Sequence[str] | None) -> str | None:
    """Why sampler ``name`` cannot run a study whose trials may train at ``scales`` (None when
    it can: one scale leaves nothing to choose)."""
    approach = APPROACHES.get(name)
    if approach is None or approach.scale_aware or not scales or len(scales) < 2:
        return None
    aware = ", ".join(a.name for a in APPROACHES.values() if a.scale_aware)
    return (f"sampler {name!r} cannot choose a trial's model size: it would treat the scales "
            f"as unordered choices, and a larger model's lower loss would win them; use "
            f"{aware}, or one scale")


def pareto_problem(name: str, criterion: str) -> str | None:
    """Why sampler ``name`` cannot run a study of ``criterion`` (None when it can)."""
    approach = APPROACHES.get(name)
    if approach is None or criterion != "pareto" or approach.pareto is None:
        return None
    return f"sampler {name!r} cannot run criterion = \"pareto\": {approach.pareto}"


def sampler_option_problems(
    name: str, options: Mapping[str, Any], domains: Sequence[str], where: str = "[sampler]"
) -> list[str]:
    """One line per problem with the options of sampler ``name`` in table ``where``."""
    try:
        approach = get_approach(name)
        allowed = approach.option_names()
    except ValueError as e:
        return [f"{where} {e}"]
    problems = [
        f"{where} unknown option {key!r} for sampler {name!r} "
        f"(allowed: {', '.join(allowed) or 'none'})"
        for key in options
        if key not in allowed
    ]
    parameters = _parameters(approach.sampler_class())
    for key, value in options.items():
        if key in allowed:
            expected = _type_of_default(parameters[key].default)
            if expected is not None and not _is_a(value, expected):
                problems.append(
                    f"{where} {key} must be {_TYPE_WORDS[expected]} for sampler {name!r}, "
                    f"got {value!r}"
                )
    for key in approach.required_options():
        if key not in options:
            example = " = { domain = weight, ... }" if key == "weights" else ""
            problems.append(f"{where} the {name} sampler needs {key}{example}")
    if "weights" in approach.required_options() and isinstance(options.get("weights"), dict):
        weights = options["weights"]
        if unknown := sorted(set(weights) - set(domains)):
            problems.append(
                f"{where} weights name unknown domain(s) {', '.join(unknown)} "
                f"(domains: {', '.join(domains)})"
            )
    if approach.weights is not None and (missing := [d for d in approach.weights if d not in domains]):
        problems.append(
            f"{where} sampler {name!r} needs the seed's domains "
            f"{', '.join(approach.weights)}; the config lacks {', '.join(missing)}"
        )
    if not problems:
        try:
            approach.create(options, seed=0)
        except (TypeError, ValueError) as e:
            problems.append(f"{where} {e}")
    return problems


def option_meanings(name: str) -> dict[str, str]:
    """Option -> its one-line meaning, from the "Args:" section of the class docstring."""
    approach = get_approach(name)
    return {
        option: meaning
        for option, meaning in _docstring_args(approach.sampler_class()).items()
        if option in approach.option_names()
    }


# -- helpers ------------------------------------------------------------------------------------
_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _parameters(cls: type) -> Mapping[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(cls).parameters.items() if n != "self"}


def _type_of_default(default: Any) -> type | None:
    return type(default) if type(default) in _TYPE_WORDS else None


def _is_a(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def _docstring_args(cls: type) -> dict[str, str]:
    """Google-style ``Args:`` entries of a class (or its ``__init__``) docstring."""
    doc = inspect.getdoc(cls) or ""
    if "Args:" not in doc:
        doc = inspect.getdoc(cls.__init__) or ""  # type: ignore[misc]
    lines = doc.partition("Args:")[2].splitlines()
    body = [line for line in lines if line.strip()]
    if not body:
        return {}
    indent = len(body[0]) - len(body[0].lstrip())  # entries start here, continuations deeper
    entries: dict[str, str] = {}
    current = None
    for line in lines:
        depth = len(line) - len(line.lstrip())
        if line.strip() and depth < indent:  # the next section
            break
        match = re.match(r"^(\w+(?:, \w+)*)(?: \([^)]*\))?:\s*(.*)$", line.strip())
        if depth == indent and match:
            current = match.group(1)
            entries[current] = match.group(2)
        elif current is not None and line.strip():
            entries[current] += " " + line.strip()
    return {
        name: _plain(text)
        for names, text in entries.items()
        for name in names.split(", ")
    }


def _plain(text: str) -> str:
    """One line of Markdown: whitespace collapsed, reST literals as code spans."""
    text = re.sub(r":\w+:`([^`]+)`", r"`\1`", re.sub(r"\s+", " ", text))  # :class:`X`
    return re.sub(r"``([^`]+)``", r"`\1`", text).strip()
