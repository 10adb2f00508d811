"""One schema for study configs: each key of each table declared once, checked one way.

A :class:`Key` carries a key's types, default, check and one-line meaning. :func:`check_table`
reports every problem of a table, one line each, in one style (``[table] key must be ...,
got ...``); :mod:`optuna_mix.config` runs it over a whole file in one pass, and
:mod:`optuna_mix.reference` renders the same declarations as docs/config.md, so the reference
cannot drift from the checks.

| table                 | keys                                                              |
|-----------------------|-------------------------------------------------------------------|
| ``[study]``           | :data:`STUDY_KEYS`                                                |
| ``[sampler]``         | ``name`` plus the sampler's options (:mod:`optuna_mix.catalogue`)  |
| ``[objective]``       | ``kind``, then :data:`SURFACE_KEYS` or :data:`GPT_KEYS`           |
| ``[domains.<name>]``  | :func:`domain_keys` of its ``source``, from the trainers' source  |
|                       | dataclasses (types, defaults and meanings declared there)         |
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna_mix.criteria import criterion_names
from optuna_mix.samplers.registry import Registry

if TYPE_CHECKING:
    from optuna_mix.trainers import DomainSpec

Check = tuple[Callable[[Any], bool], str]  # (holds for a good value, what a bad one "must" be)
Choices = Sequence[str] | Callable[[], Sequence[str]]  # a callable where the list is costly

_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list of strings", dict: "a table of numbers"}


@dataclass(frozen=True)
class Key:
    """One key of a config table."""

    name: str
    types: tuple[type, ...]
    default: Any
    meaning: str
    check: Check | None = None
    choices: Choices | None = None
    required: bool = False

    def allowed_choices(self) -> tuple[str, ...] | None:
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def problem(self, value: Any, where: str) -> str | None:
        """What is wrong with ``value`` for this key, as one line; None when nothing is.

        None is this key's "not set" where that is its default (TOML itself has no null).
        """
        if value is None and self.default is None:
            return None
        if not _has_type(value, self.types):
            words = " or ".join(_TYPE_WORDS[t] for t in self.types)
            return f"{where} {self.name} must be {words}, got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{where} {self.name} must be finite, got {value!r}"
        choices = self.allowed_choices()
        if choices is not None and value not in choices:
            return f"{where} unknown {self.name} {value!r} (choose from {', '.join(choices)})"
        if self.check is not None and not self.check[0](value):
            return f"{where} {self.name} {self.check[1]}, got {value!r}"
        return None


def _has_type(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, list):
        return list in allowed and bool(value) and all(isinstance(v, str) for v in value)
    if isinstance(value, dict):
        return dict in allowed and bool(value) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())
    if isinstance(value, int) and float in allowed:
        return True
    return any(t not in (list, dict) and isinstance(value, t) for t in allowed)


def keys(*declared: Key) -> dict[str, Key]:
    return {k.name: k for k in declared}


def check_table(
    table: Any, declared: Mapping[str, Key], where: str, problems: list[str]
) -> dict[str, Any]:
    """Check ``table`` against ``declared``; append one line per problem to ``problems``.

    Returns the table's values over the defaults (a value with a problem keeps its default).
    """
    if not isinstance(table, dict):
        problems.append(f"{where} must be a table")
        return {k.name: k.default for k in declared.values()}
    values = {k.name: k.default for k in declared.values()}
    for name, value in table.items():
        key = declared.get(name)
        if key is None:
            problems.append(f"{where} unknown key {name!r} (allowed: {', '.join(declared)})")
        elif (problem := key.problem(value, where)) is not None:
            problems.append(problem)
        else:
            values[name] = value
    for key in declared.values():
        if key.required and key.name not in table:
            problems.append(f"{where} {key.name} is missing")
    return values


def table_is(table: Any, where: str, problems: list[str]) -> dict[str, Any]:
    """``table`` if it is a table; else a problem and an empty one."""
    if isinstance(table, dict):
        return table
    problems.append(f"{where} must be a table")
    return {}


_AT_LEAST_1 = (lambda v: v >= 1, "must be >= 1")
_POSITIVE = (lambda v: v > 0, "must be > 0")
_NON_NEGATIVE = (lambda v: v >= 0, "must be >= 0")
_FRACTION = (lambda v: 0 <= v < 1, "must be in [0, 1)")
_UNIT = (lambda v: 0 <= v <= 1, "must be in [0, 1]")

# -- [study] -----------------------------------------------------------------------------------
PRUNERS = ("none", "median", "successive_halving")
STUDY_KEYS = keys(
    Key("name", (str,), "", "default --study-name of the study", required=True,
        check=(lambda v: bool(v.strip()), "must not be empty")),
    Key("n_trials", (int,), 16, "the study's budget: `optimize` stops at this many finished "
        "trials", check=(lambda v: v >= 1, "must be at least 1")),
    Key("seed", (int,), 0, "seed of the sampler, the surface noise and the proxy's training"),
    Key("criterion", (str,), "mean", "how the per-domain losses become the trial value",
        choices=criterion_names),
    Key("criterion_weights", (dict,), None, "weighted: validation set -> weight (>= 0; 1 for "
        "a set not named)"),
    Key("criterion_fraction", (float,), 0.25, "cvar: the share of validation sets, the worst "
        "first, whose mean is the value", check=(lambda v: 0 < v <= 1, "must be in (0, 1]")),
    Key("criterion_reference", (str, dict), "uniform", "excess: the reference mixture, "
        "trained once per study (`uniform`, or a table domain -> weight)"),
    Key("pruner", (str,), "none", "stop bad trials early on their intermediate losses",
        choices=PRUNERS),
    Key("description", (str,), "", "free text, kept with the study"),
)

# -- [storage] -----------------------------------------------------------------------------------
# the defaults: a killed worker's trial is failed and retried after about 3 minutes, which
# an hour-long proxy trial does not notice, and the heartbeats are a write a minute per worker
HEARTBEAT_INTERVAL = 60
GRACE_PERIOD = 180
STORAGE_KEYS = keys(
    Key("heartbeat_interval", (int,), HEARTBEAT_INTERVAL, "seconds between a running trial's "
        "heartbeats", check=_AT_LEAST_1),
    Key("grace_period", (int,), GRACE_PERIOD, "seconds without a heartbeat after which the next "
        "worker fails the trial and runs its mixture again", check=_AT_LEAST_1),
)


def heartbeat_problem(values: Mapping[str, Any], where: str = "[storage]") -> str | None:
    """A grace period must outlast several heartbeats, or live trials would be failed."""
    if values["grace_period"] <= values["heartbeat_interval"]:
        return (f"{where} grace_period ({values['grace_period']}) must be longer than "
                f"heartbeat_interval ({values['heartbeat_interval']})")
    return None


# -- [objective] ---------------------------------------------------------------------------------
SURFACE_FAMILIES = ("dml", "powerlaw", "relu", "interaction", "heldout",  # surfaces.FAMILIES
                    "scaled")  # optuna_mix.scaled_surfaces: over mixture x model size
SCALES_KEY = Key("scales", (list,), None, "model presets trials may train at, e.g. [\"xs\", "
                 "\"s\", \"m\"]: each trial one, chosen by the gp sampler for the target "
                 "(or pinned with enqueue_trial({\"scale\": N}), N the preset's parameters)")
TARGET_KEY = Key("target", (str,), None, "the model preset the mixture is for (default: the "
                 "largest of scales); the study need not train it")
SURFACE_KEYS = keys(
    Key("family", (str,), "powerlaw", "the surface's shape (optuna_mix.surfaces)",
        choices=SURFACE_FAMILIES),
    Key("noise", (float,), 0.0, "std of the run-to-run noise on the mean criterion",
        check=_NON_NEGATIVE),
    Key("seed", (int,), None, "seed that draws the surface (default: [study] seed)"),
    Key("seconds", (float,), 0.0, "seconds each trial takes, as if training: rehearse many "
        "workers, kills and restarts on a surface", check=_NON_NEGATIVE),
    Key("validation_sets", (list,), None, "family heldout: the names of its validation sets, "
        "which are no training domain (default heldout0, heldout1, heldout2)"),
    dataclasses.replace(SCALES_KEY, meaning="family scaled: the presets trials may train at; "
                        "the surface is evaluated at each preset's parameter count"),
    TARGET_KEY,
)


def _surface_problem(values: Mapping[str, Any]) -> str | None:
    if (values["family"] == "scaled") != bool(values["scales"]):
        return ("[objective] a scaled surface needs scales, the presets trials train at"
                if values["family"] == "scaled" else
                f"[objective] scales are for family scaled; a {values['family']} surface has no "
                "model size")
    if problem := _scales_problem(values):
        return problem
    sets = values["validation_sets"]
    if sets is not None and values["family"] != "heldout":
        return (f"[objective] validation_sets are for family heldout; a {values['family']} "
                "surface's validation sets are its domains")
    if sets is not None and len(set(sets)) != len(sets):
        return f"[objective] validation_sets must be distinct, got {', '.join(sets)}"
    return None


def surface_validation_sets(values: Mapping[str, Any], domains: Sequence[str]) -> list[str]:
    """The names a surface trial's ``losses`` are keyed by."""
    if values["family"] != "heldout":
        return list(domains)
    from optuna_mix.surfaces import HELDOUT_OUTPUTS

    return list(values["validation_sets"] or HELDOUT_OUTPUTS)


def _presets() -> tuple[str, ...]:
    from optuna_mix.trainers import PRESETS

    return tuple(PRESETS)


def _amp_modes() -> tuple[str, ...]:
    from optuna_mix.trainers.train import AMP_MODES

    return tuple(AMP_MODES)


GPT_KEYS = keys(
    # model
    Key("preset", (str,), "demo", "model shape and vocabulary (demo trains in CPU seconds)",
        choices=_presets),
    Key("n_layer", (int,), None, "override the preset's number of blocks", check=_AT_LEAST_1),
    Key("n_head", (int,), None, "override the preset's attention heads", check=_AT_LEAST_1),
    Key("n_embd", (int,), None, "override the preset's width", check=_AT_LEAST_1),
    Key("seq_len", (int,), None, "override the preset's context length", check=_AT_LEAST_1),
    Key("qk_norm", (bool,), True, "normalise queries and keys (the seed's proxy does)"),
    # data
    Key("vocab_size", (int,), None, "BPE vocabulary trained on the domains (default: the "
        "preset's)", check=(lambda v: v >= 260, "must be >= 260 (bytes + end-of-text)")),
    Key("tokenizer", (str,), None, "a tokenizer.json to use instead of training one",
        check=(lambda v: Path(v).is_file(), "must be an existing file")),
    Key("tokenizer_sample_chars", (int,), 2_000_000, "characters per domain the tokenizer is "
        "trained on", check=_AT_LEAST_1),
    Key("val_tokens", (int,), 262_144, "held-out validation tokens per domain",
        check=_AT_LEAST_1),
    Key("split_seed", (int,), 0, "seed of the train/validation split of the documents"),
    # budget and optimisation
    SCALES_KEY,
    TARGET_KEY,
    Key("tokens", (int,), None, "training tokens per trial (default: tokens_per_param x "
        "non-embedding parameters)", check=_AT_LEAST_1),
    Key("tokens_per_param", (float,), 20.0, "the Chinchilla rule when tokens is not set",
        check=_POSITIVE),
    Key("batch_size", (int,), 16, "sequences per step", check=_AT_LEAST_1),
    Key("lr", (float,), 3e-4, "peak learning rate (AdamW)", check=_POSITIVE),
    Key("min_lr_ratio", (float,), 0.1, "the cosine schedule decays to lr x this", check=_UNIT),
    Key("warmup", (float,), 0.02, "fraction of the steps of linear warm-up", check=_FRACTION),
    Key("weight_decay", (float,), 0.033, "AdamW weight decay", check=_NON_NEGATIVE),
    Key("beta1", (float,), 0.9, "AdamW beta1", check=_FRACTION),
    Key("beta2", (float,), 0.95, "AdamW beta2", check=_FRACTION),
    Key("grad_clip", (float,), 1.0, "gradient norm clip (0: none)", check=_NON_NEGATIVE),
    # evaluation and pruning
    Key("eval_interval", (int,), 0, "steps between intermediate evaluations, for pruners "
        "(0: only at the end)", check=_NON_NEGATIVE),
    Key("eval_batch_size", (int,), None, "sequences per evaluation batch (default: "
        "batch_size)", check=_AT_LEAST_1),
    # hardware
    Key("amp", (str,), "auto", "mixed precision (auto: bf16 where supported, else fp16 with a "
        "grad scaler on CUDA; off on CPU)", choices=_amp_modes),
    Key("device", (str,), "auto", "where to train",
        check=(lambda v: re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
               "must be auto, cpu or cuda[:N]")),
    Key("compile", (bool,), False, "compile the model with torch.compile"),
    Key("threads", (int,), None, "CPU threads of torch", check=_AT_LEAST_1),
    Key("progress", (bool,), None, "a progress bar over the steps (default: when stderr is "
        "a terminal)"),
)


def check_gpt_objective(
    table: Mapping[str, Any], domains: Mapping[str, Any], problems: list[str]
) -> dict[str, Any]:
    """Check a gpt study's ``[objective]`` (less ``kind``) and ``[domains.*]`` tables.

    Appends one line per problem; returns the objective's values over the defaults.
    """
    return OBJECTIVES["gpt"].check(table, domains, problems)


def _scales_problem(values: Mapping[str, Any]) -> str | None:
    from optuna_mix.scale import scales_problem

    return scales_problem(values)


def _model_problem(values: Mapping[str, Any]) -> str | None:
    """Whether the preset with its overrides makes a valid model (e.g. heads divide width),
    and whether ``scales`` fit the other keys."""
    from optuna_mix.trainers import GPTConfig

    if problem := _scales_problem(values):
        return problem
    if values["scales"]:
        if values["tokens"] is not None:
            return ("[objective] tokens gives every model size one budget; with scales each "
                    "preset trains tokens_per_param x its parameters (Chinchilla-like)")
        if shape := [k for k in ("n_layer", "n_head", "n_embd") if values[k] is not None]:
            return (f"[objective] {', '.join(shape)} would reshape every preset of scales; "
                    "with scales the presets give the shapes")

    shape = {k: values[k] for k in ("n_layer", "n_head", "n_embd", "seq_len")
             if values[k] is not None}
    try:
        GPTConfig.preset(values["preset"], qk_norm=values["qk_norm"], **shape)
    except ValueError as e:
        return f"[objective] {e}"
    return None


# -- [domains.<name>] of a gpt study ----------------------------------------------------------------
SOURCE_KEY = Key("source", (str,), None, "where the documents come from",
                 choices=("synthetic", "hf", "files"), required=True)
FILE_FORMATS = ("json", "parquet", "text")
_DOMAIN_CHOICES: dict[str, Choices] = {
    "format": FILE_FORMATS,
    "sample_by": ("line", "paragraph", "document"),
}


def _corpus_domains() -> tuple[str, ...]:
    from optuna_mix.trainers import corpus

    return tuple(corpus.DOMAINS)


@functools.cache
def domain_keys(source: str) -> dict[str, Key]:
    """The keys of a ``[domains.*]`` table with ``source``, read off the trainers' dataclass.

    Types and defaults are the dataclass fields', meanings their ``help`` metadata; counts
    must be >= 1 (a seed may be any integer); a field without a default is required.
    """
    from optuna_mix.trainers import SOURCES

    hints = typing.get_type_hints(SOURCES[source])
    declared = [SOURCE_KEY]
    for f in dataclasses.fields(SOURCES[source]):
        required = f.default is dataclasses.MISSING
        default = None if required else f.default
        allowed = _toml_types(hints[f.name])
        check = _AT_LEAST_1 if allowed == (int,) and f.name != "seed" else None
        choices = _DOMAIN_CHOICES.get(f.name)
        if source == "synthetic" and f.name == "domain":
            required, choices = False, _corpus_domains  # defaults to the table's name
        meaning = f.metadata.get("help", "")
        if source == "synthetic" and f.name == "domain":
            meaning += " (default: the table's name)"
        declared.append(Key(f.name, allowed, default, meaning, check, choices, required))
    return keys(*declared)


def _toml_types(hint: Any) -> tuple[type, ...]:
    """The TOML value types a dataclass field's type admits (a tuple of str: a list)."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    out: list[type] = []
    for a in args:
        if a is type(None):
            continue
        out.append(list if typing.get_origin(a) is tuple else a)
    return tuple(out)


def check_domain_table(name: str, table: Any, problems: list[str]) -> None:
    """Append one line per problem of the gpt study's ``[domains.<name>]`` table."""
    where = f"[domains.{name}]"
    table = table_is(table, where, problems)
    source = table.get("source")
    if source is None or SOURCE_KEY.problem(source, where):
        problems.append(SOURCE_KEY.problem(source, where) if source is not None
                        else f"{where} source is missing (one of synthetic, hf, files)")
        return
    domain = {"domain": name, **table} if source == "synthetic" else table
    check_table(domain, domain_keys(source), where, problems)


def domain_spec(name: str, table: Mapping[str, Any]) -> DomainSpec:
    """The trainers' typed :class:`DomainSpec` of a checked ``[domains.<name>]`` table."""
    from optuna_mix.trainers import SOURCES, DomainSpec

    options = {k: v for k, v in table.items() if k != "source"}
    if table["source"] == "synthetic":
        options.setdefault("domain", name)
    for key, value in options.items():
        if isinstance(value, list):
            options[key] = tuple(value)
    return DomainSpec(name, SOURCES[table["source"]](**options))


# -- objective kinds --------------------------------------------------------------------------------
def no_domain_keys(name: str, table: Any, problems: list[str]) -> None:
    """For objectives whose domains are names only (an analytic surface)."""
    if table:
        problems.append(
            f"[domains.{name}] this objective takes no domain keys, got {', '.join(table)}"
        )


@dataclass(frozen=True)
class ObjectiveKind:
    """One ``[objective] kind``: its keys, how its domain tables are checked, its evaluator.

    ``evaluator`` is called as ``evaluator(config, cache_dir)`` to give ``(trial, weights) ->
    per-domain losses``; as ``"module:callable"`` it is imported only when a trial runs.
    ``extra_check`` sees the checked values when every key was fine (cross-key rules).
    ``validation_sets(values, domains)`` names the sets a trial's ``losses`` are keyed by
    (default: the training domains).
    """

    name: str
    summary: str
    keys: Mapping[str, Key]
    evaluator: str | Callable[..., Any]
    check_domain: Callable[[str, Any, list[str]], None] = no_domain_keys
    extra_check: Callable[[Mapping[str, Any]], str | None] | None = None
    validation_sets: Callable[[Mapping[str, Any], Sequence[str]], list[str]] = (
        lambda values, domains: list(domains))

    def check(
        self, table: Mapping[str, Any], domains: Mapping[str, Any], problems: list[str]
    ) -> dict[str, Any]:
        """Check ``[objective]`` (less ``kind``) and the domain tables; values over defaults."""
        before = len(problems)
        rest = {k: v for k, v in table.items() if k != "kind"}
        values = check_table(rest, self.keys, "[objective]", problems)
        if self.extra_check and len(problems) == before and (p := self.extra_check(values)):
            problems.append(p)
        for name, domain in domains.items():
            self.check_domain(name, domain, problems)
        return values


OBJECTIVES: Registry[ObjectiveKind] = Registry(
    "objective kind",
    [
        ObjectiveKind("gpt", "train the GPT proxy on each trial's mixture", GPT_KEYS,
                      "optuna_mix.gpt_objective:gpt_evaluator", check_domain_table,
                      _model_problem),
        ObjectiveKind("surface", "an analytic benchmark with a known optimum, no training",
                      SURFACE_KEYS, "optuna_mix.objective:SurfaceEvaluator",
                      extra_check=_surface_problem, validation_sets=surface_validation_sets),
    ],
)
KIND_KEY = Key("kind", (str,), "surface", "what a trial evaluates (see the kinds below)",
               choices=lambda: tuple(OBJECTIVES))


register_objective = OBJECTIVES.add
