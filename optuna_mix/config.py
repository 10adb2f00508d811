"""Study configs (TOML): parse, validate fully, and round-trip through the study's storage.

Every mistake is reported, one line each, in a single :class:`ConfigError`, so a user fixes a
file in one pass instead of one error per run.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna_mix import schema
from optuna_mix.catalogue import (
    APPROACHES,
    get_approach,
    objective_problem,
    sampler_option_problems,
    pareto_problem,
    scale_problem,
)
from optuna_mix.criteria import CriterionSpec, criterion_names
from optuna_mix.scale import PresetScales, preset_scales

TABLES = ("study", "sampler", "objective", "storage", "domains")
DOMAIN_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class ConfigError(ValueError):
    """A study config with one or more mistakes; ``problems`` holds one line per mistake."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(problems))


@dataclass
class StudyConfig:
    """A validated study definition. ``raw`` is the TOML as written (stored in the study)."""

    name: str
    n_trials: int
    seed: int
    criterion: str
    pruner: str
    sampler: str
    sampler_options: dict[str, Any]
    sampler_tables: dict[str, dict[str, Any]]
    objective: str
    objective_options: dict[str, Any]
    domains: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)
    storage_options: dict[str, Any] = field(default_factory=dict)  # [storage], over defaults
    # the criterion with its parameters (weights, fraction, reference mixture): what the
    # study stores for its samplers (optuna_mix.criteria.set_criterion)
    criterion_spec: CriterionSpec = field(default_factory=lambda: CriterionSpec("mean"))

    @property
    def domain_names(self) -> list[str]:
        return list(self.domains)

    @property
    def validation_sets(self) -> list[str]:
        """The names each trial's ``losses`` are keyed by: the domains, or other sets."""
        return schema.OBJECTIVES[self.objective].validation_sets(self.objective_options,
                                                                 self.domain_names)

    @property
    def scales(self) -> PresetScales | None:
        """The presets trials may train at and the target, or None (one model size)."""
        return preset_scales(self.objective_options)

    def options_for(self, sampler: str) -> dict[str, Any]:
        """Options of ``sampler``: its [sampler.<name>] table, over the [sampler] keys if named."""
        base = self.sampler_options if sampler == self.sampler else {}
        return {**base, **self.sampler_tables.get(sampler, {})}

    def sampler_arguments(self, sampler: str) -> dict[str, Any]:
        """What ``sampler`` is built with: its options, and the target's size where the
        study has scales and the sampler models size (``target_scale``)."""
        options = self.options_for(sampler)
        if self.scales is not None and get_approach(sampler).scale_aware:
            options["target_scale"] = self.scales.target_size
        return options

    def with_sampler(self, sampler: str | None) -> StudyConfig:
        """This config with ``sampler`` selected (its own options come along)."""
        if sampler is None or sampler == self.sampler:
            return self
        raw = dict(self.raw)
        tables = {k: v for k, v in raw.get("sampler", {}).items() if k in APPROACHES}
        raw["sampler"] = {"name": sampler, **tables}
        return parse_config(raw)

    def with_criterion(self, criterion: str | None) -> StudyConfig:
        """This config with [study] criterion ``criterion`` (``study create --criterion``)."""
        if criterion is None or criterion == self.criterion:
            return self
        raw = {**self.raw, "study": {**self.raw.get("study", {}), "criterion": criterion}}
        return parse_config(raw, source="--criterion")

    def with_device(self, device: str | None) -> StudyConfig:
        """This config training on ``device`` (``optimize --devices``): each worker its own."""
        if device is None:
            return self
        if "device" not in self.objective_options:
            raise ConfigError([f"--devices: objective {self.objective!r} trains no model, so it "
                               "has no device to choose"])
        raw = {**self.raw, "objective": {**self.raw.get("objective", {}), "device": device}}
        return parse_config(raw, source="--devices")

    def to_json(self) -> str:
        return json.dumps(self.raw, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> StudyConfig:
        return parse_config(json.loads(text))


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a TOML study file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"cannot read config: {e.strerror or e}"], str(path)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"not valid TOML: {e}"], str(path)) from None
    return parse_config(raw, source=str(path))


def parse_config(raw: Mapping[str, Any], source: str | None = None) -> StudyConfig:
    """Validate a parsed config; raise :class:`ConfigError` listing every problem found."""
    problems: list[str] = []
    raw = dict(raw)
    for key in raw:
        if key not in TABLES:
            problems.append(
                f"unknown table [{key}] (allowed: [study], [sampler], [objective], [storage], "
                "[domains.*])"
            )
    study = schema.check_table(raw.get("study", {}), schema.STUDY_KEYS, "[study]", problems)
    domains = _check_domains(raw.get("domains"), problems)
    sampler_name, sampler_options, sampler_tables = _check_sampler(
        raw.get("sampler", {}), list(domains), problems
    )
    kind, objective_options = _check_objective(raw.get("objective", {}), domains, problems)
    if not problems:  # the sampler must be able to use what the objective's trials hold
        sets = schema.OBJECTIVES[kind].validation_sets(objective_options, list(domains))
        if problem := objective_problem(sampler_name, sets, list(domains)):
            problems.append(f"[sampler] {problem}")
        scales = objective_options.get("scales")
        if problem := scale_problem(sampler_name, scales):
            problems.append(f"[sampler] {problem}")
        if scales and "target_scale" in sampler_options:
            problems.append("[sampler] target_scale is set by [objective] target in a study "
                            "with scales; drop it here")
    spec = _criterion_spec(raw.get("study", {}), study, list(domains), problems)
    if not problems and (problem := pareto_problem(sampler_name, spec.name)):
        problems.append(f"[sampler] {problem}")
    if not problems and spec.multi_objective and study["pruner"] != "none":
        problems.append(f"[study] pruner {study['pruner']!r} with criterion pareto: Optuna "
                        "prunes on one intermediate value, and a pareto trial has one per "
                        "validation set; use pruner = \"none\"")
    if not problems and spec.multi_objective and objective_options.get("scales"):
        problems.append("[study] criterion pareto with [objective] scales: trials at several "
                        "model sizes have losses on different levels, so no front of them "
                        "compares like with like; use one scale")
    if not problems and spec.name == "excess" and objective_options.get("scales"):
        problems.append("[study] criterion excess with [objective] scales: a trial's losses "
                        "would be measured against a reference trained at another size")
    if not problems and spec.weights:
        sets = schema.OBJECTIVES[kind].validation_sets(objective_options, list(domains))
        if unknown := [n for n, _ in spec.weights if n not in sets]:
            problems.append(f"[study] criterion_weights for {', '.join(unknown)}: not among the "
                            f"validation sets ({', '.join(sets)})")
        else:
            try:
                spec.bind(sets)
            except ValueError as e:
                problems.append(f"[study] {e}")
    before = len(problems)
    storage = schema.check_table(raw.get("storage", {}), schema.STORAGE_KEYS, "[storage]", problems)
    if len(problems) == before and (problem := schema.heartbeat_problem(storage)):
        problems.append(problem)
    if problems:
        raise ConfigError(problems, source)
    return StudyConfig(
        name=study["name"],
        n_trials=study["n_trials"],
        seed=study["seed"],
        criterion=study["criterion"],
        pruner=study["pruner"],
        sampler=sampler_name,
        sampler_options=sampler_options,
        sampler_tables=sampler_tables,
        objective=kind,
        objective_options=objective_options,
        domains=domains,
        raw=raw,
        storage_options=storage,
        criterion_spec=spec,
    )


# each criterion key of [study] and the criterion it is for
CRITERION_KEYS = {"criterion_weights": "weighted", "criterion_fraction": "cvar",
                   "criterion_reference": "excess"}


def _criterion_spec(table: Any, study: dict[str, Any], domains: list[str],
                    problems: list[str]) -> CriterionSpec:
    """The [study] criterion with the parameters its keys give; one line per mistake."""
    name = study["criterion"]
    given = table if isinstance(table, dict) else {}
    before = len(problems)  # an unrelated mistake elsewhere still lets these be checked
    for key, owner in CRITERION_KEYS.items():
        if key in given and name != owner:
            problems.append(f"[study] {key} is for criterion = \"{owner}\", not {name!r}")
    if len(problems) > before or name not in criterion_names():
        return CriterionSpec("mean")
    reference: tuple[tuple[str, float], ...] = ()
    if name == "excess":
        ref = study["criterion_reference"]
        if ref == "uniform":
            reference = tuple((d, 1.0 / len(domains)) for d in domains)
        elif isinstance(ref, str):
            problems.append(f"[study] criterion_reference must be \"uniform\" or a table domain "
                            f"-> weight, got {ref!r}")
        else:
            if unknown := [d for d in ref if d not in domains]:
                problems.append(f"[study] criterion_reference names {', '.join(unknown)}: not "
                                f"among the domains ({', '.join(domains)})")
            elif any(v < 0 for v in ref.values()) or abs(sum(ref.values()) - 1.0) > 1e-6:
                problems.append("[study] criterion_reference weights must be >= 0 and sum to 1, "
                                f"got sum {sum(ref.values()):g}")
            else:
                reference = tuple((d, float(ref.get(d, 0.0))) for d in domains)
    weights = tuple((str(k), float(v)) for k, v in (study["criterion_weights"] or {}).items())
    try:
        return CriterionSpec(name, weights=weights if name == "weighted" else (),
                             fraction=study["criterion_fraction"] if name == "cvar" else None,
                             reference_mixture=reference)
    except ValueError as e:
        problems.append(f"[study] {e}")
        return CriterionSpec("mean")


def _check_domains(tables: Any, problems: list[str]) -> dict[str, dict[str, Any]]:
    """The [domains.<name>] tables in order (their keys are checked with the objective)."""
    if tables is None:
        problems.append("no [domains.<name>] tables: a mixture needs at least 2 domains")
        return {}
    if not isinstance(tables, dict):
        problems.append("[domains] must hold one table per domain, e.g. [domains.books]")
        return {}
    domains: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        if not set(name) <= DOMAIN_NAME_CHARS:
            problems.append(f"domain name {name!r} may use only letters, digits, '_' and '-'")
        if not isinstance(table, dict):
            problems.append(f"[domains.{name}] must be a table")
            continue
        domains[name] = dict(table)
    if len(tables) < 2:
        problems.append(f"a mixture needs at least 2 domains, got {len(tables)}")
    return domains


def _check_sampler(
    table: Any, domains: list[str], problems: list[str]
) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
    """The chosen sampler, its options, and the [sampler.<name>] tables of the others.

    [sampler.<name>] sub-tables hold options for samplers picked by --sampler or compare;
    each is checked against its own sampler's options.
    """
    table = schema.table_is(table, "[sampler]", problems)
    name = table.get("name", "gp")
    tables = {k: v for k, v in table.items() if k in APPROACHES and isinstance(v, dict)}
    options = {k: v for k, v in table.items() if k != "name" and k not in tables}
    if name not in APPROACHES:
        problems.append(
            f"[sampler] unknown sampler {name!r} (choose from {', '.join(APPROACHES)})"
        )
        return name, options, tables
    chosen = {**options, **tables.get(name, {})}
    problems.extend(sampler_option_problems(name, chosen, domains))
    for other, options_of_other in tables.items():
        if other != name:
            problems.extend(
                sampler_option_problems(other, options_of_other, domains, f"[sampler.{other}]")
            )
    return name, chosen, tables


def _check_objective(
    table: Any, domains: dict[str, dict[str, Any]], problems: list[str]
) -> tuple[str, dict[str, Any]]:
    """The objective's kind and its options over their defaults; domain tables by kind."""
    table = schema.table_is(table, "[objective]", problems)
    kind = table.get("kind", schema.KIND_KEY.default)
    if (problem := schema.KIND_KEY.problem(kind, "[objective]")) is not None:
        problems.append(problem)
        return str(kind), {}
    return kind, schema.OBJECTIVES[kind].check(table, domains, problems)
