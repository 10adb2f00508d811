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

from optuna_mix.criteria import CRITERIA

SAMPLER_NAMES = ("gp", "sobol", "uniform", "fixed", "bimix", "dml", "regmix", "tpe", "random")
OBJECTIVE_KINDS = ("gpt", "surface")
SURFACE_FAMILIES = ("dml", "powerlaw")

STUDY_KEYS = {
    "name": str,
    "n_trials": int,
    "seed": int,
    "criterion": str,
    "pruner": str,
    "description": str,
}
PRUNERS = ("none", "median", "successive_halving")
SURFACE_KEYS = {"family": str, "noise": float, "seed": int}
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

    @property
    def domain_names(self) -> list[str]:
        return list(self.domains)

    def options_for(self, sampler: str) -> dict[str, Any]:
        """Options of ``sampler``: its [sampler.<name>] table, over the [sampler] keys if named."""
        base = self.sampler_options if sampler == self.sampler else {}
        return {**base, **self.sampler_tables.get(sampler, {})}

    def with_sampler(self, sampler: str | None) -> StudyConfig:
        """This config with ``sampler`` selected (its own options come along)."""
        if sampler is None or sampler == self.sampler:
            return self
        raw = dict(self.raw)
        tables = {k: v for k, v in raw.get("sampler", {}).items() if k in SAMPLER_NAMES}
        raw["sampler"] = {"name": sampler, **tables}
        return parse_config(raw)

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


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[t]


def _check_type(value: Any, expected: type) -> bool:
    if isinstance(value, bool):
        return expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def _check_table(
    table: Any, where: str, problems: list[str], keys: Mapping[str, type] | None = None
) -> dict[str, Any]:
    if not isinstance(table, dict):
        problems.append(f"[{where}] must be a table")
        return {}
    if keys is not None:
        for key, value in table.items():
            if key not in keys:
                allowed = ", ".join(keys)
                problems.append(f"[{where}] unknown key {key!r} (allowed: {allowed})")
            elif not _check_type(value, keys[key]):
                problems.append(f"[{where}] {key} must be {_type_name(keys[key])}, got {value!r}")
    return table


def parse_config(raw: Mapping[str, Any], source: str | None = None) -> StudyConfig:
    """Validate a parsed config; raise :class:`ConfigError` listing every problem found."""
    problems: list[str] = []
    raw = dict(raw)
    for key in raw:
        if key not in ("study", "sampler", "objective", "domains"):
            problems.append(
                f"unknown table [{key}] (allowed: [study], [sampler], [objective], [domains.*])"
            )

    study = _check_table(raw.get("study", {}), "study", problems, STUDY_KEYS)
    name = study.get("name", "")
    if "name" not in study:
        problems.append("[study] name is missing")
    elif isinstance(name, str) and not name.strip():
        problems.append("[study] name must not be empty")
    n_trials = study.get("n_trials", 16)
    if isinstance(n_trials, int) and not isinstance(n_trials, bool) and n_trials < 1:
        problems.append(f"[study] n_trials must be at least 1, got {n_trials}")
    seed = study.get("seed", 0)
    criterion = study.get("criterion", "mean")
    if isinstance(criterion, str) and criterion not in CRITERIA:
        problems.append(
            f"[study] unknown criterion {criterion!r} (choose from {', '.join(CRITERIA)})"
        )

    pruner = study.get("pruner", "none")
    if isinstance(pruner, str) and pruner not in PRUNERS:
        problems.append(f"[study] unknown pruner {pruner!r} (choose from {', '.join(PRUNERS)})")

    domains_raw = raw.get("domains")
    domains: dict[str, dict[str, Any]] = {}
    if domains_raw is None:
        problems.append("no [domains.<name>] tables: a mixture needs at least 2 domains")
    elif not isinstance(domains_raw, dict):
        problems.append("[domains] must hold one table per domain, e.g. [domains.books]")
    else:
        for dname, table in domains_raw.items():
            if not set(dname) <= DOMAIN_NAME_CHARS:
                problems.append(
                    f"domain name {dname!r} may use only letters, digits, '_' and '-'"
                )
            if not isinstance(table, dict):
                problems.append(f"[domains.{dname}] must be a table")
                continue
            domains[dname] = dict(table)
        if len(domains_raw) < 2:
            problems.append(f"a mixture needs at least 2 domains, got {len(domains_raw)}")

    sampler = _check_table(raw.get("sampler", {}), "sampler", problems)
    sampler_name = sampler.get("name", "gp")
    # [sampler.<name>] sub-tables hold options for samplers picked by --sampler or compare
    sampler_tables = {
        k: v for k, v in sampler.items() if k in SAMPLER_NAMES and isinstance(v, dict)
    }
    sampler_options = {
        k: v for k, v in sampler.items() if k != "name" and k not in sampler_tables
    }
    if sampler_name not in SAMPLER_NAMES:
        problems.append(
            f"[sampler] unknown sampler {sampler_name!r} (choose from {', '.join(SAMPLER_NAMES)})"
        )
    else:
        from optuna_mix.sampler_factory import validate_sampler_options

        chosen = {**sampler_options, **sampler_tables.get(sampler_name, {})}
        problems.extend(validate_sampler_options(sampler_name, chosen, list(domains)))
        for other, table in sampler_tables.items():
            if other != sampler_name:
                problems.extend(
                    p.replace("[sampler]", f"[sampler.{other}]")
                    for p in validate_sampler_options(other, table, list(domains))
                )

    objective = _check_table(raw.get("objective", {}), "objective", problems)
    kind = objective.get("kind", "surface")
    objective_options = {k: v for k, v in objective.items() if k != "kind"}
    if kind not in OBJECTIVE_KINDS:
        problems.append(
            f"[objective] unknown kind {kind!r} (choose from {', '.join(OBJECTIVE_KINDS)})"
        )
    elif kind == "surface":
        _check_table(objective_options, "objective", problems, SURFACE_KEYS)
        family = objective_options.get("family", "powerlaw")
        if isinstance(family, str) and family not in SURFACE_FAMILIES:
            problems.append(
                f"[objective] unknown surface family {family!r} "
                f"(choose from {', '.join(SURFACE_FAMILIES)})"
            )
        noise = objective_options.get("noise", 0.0)
        if _check_type(noise, float) and noise < 0:
            problems.append(f"[objective] noise must be >= 0, got {noise}")
        for dname, table in domains.items():
            if table:
                problems.append(
                    f"[domains.{dname}] a surface objective takes no domain keys, "
                    f"got {', '.join(table)}"
                )
    else:
        from optuna_mix.gpt_objective import validate_gpt_objective

        problems.extend(validate_gpt_objective(objective_options, domains))

    if problems:
        raise ConfigError(problems, source)
    return StudyConfig(
        name=name,
        n_trials=n_trials,
        seed=seed,
        criterion=criterion,
        pruner=pruner,
        sampler=sampler_name,
        sampler_options={**sampler_options, **sampler_tables.get(sampler_name, {})},
        sampler_tables=sampler_tables,
        objective=kind,
        objective_options=objective_options,
        domains=domains,
        raw=raw,
    )
