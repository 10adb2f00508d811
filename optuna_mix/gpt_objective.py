"""The gpt objective: train the GPT proxy on a trial's mixture, return per-domain val losses.

This is the only place where Optuna meets :mod:`optuna_mix.trainers`: it turns the study's
``[objective]`` and ``[domains.*]`` tables into a tokenizer, cached token arrays and a
training config, reports the mean intermediate validation loss so that pruners can stop bad
mixtures early, and records throughput in the trial's user attrs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import optuna

from optuna_mix.attrs import FAIL_REASON_ATTR
from optuna_mix.trainers import (
    PRESETS,
    DomainSpec,
    GPTConfig,
    MixtureData,
    NonFiniteLossError,
    TrainConfig,
    TrainResult,
    check_domain_table,
    prepare_data,
    train,
)
from optuna_mix.trainers.train import AMP_MODES

# [objective] keys of a gpt study (besides kind): key -> (types, default, check, meaning).
_POS = (lambda v: v > 0, "must be > 0")
_GE1 = (lambda v: v >= 1, "must be >= 1")
_GE0 = (lambda v: v >= 0, "must be >= 0")
_FRAC = (lambda v: 0 <= v < 1, "must be in [0, 1)")
_UNIT = (lambda v: 0 <= v <= 1, "must be in [0, 1]")
OBJECTIVE_KEYS: dict[str, tuple[tuple[type, ...], Any, tuple | None]] = {
    # model
    "preset": ((str,), "demo", (lambda v: v in PRESETS, f"must be one of {', '.join(PRESETS)}")),
    "n_layer": ((int,), None, _GE1),
    "n_head": ((int,), None, _GE1),
    "n_embd": ((int,), None, _GE1),
    "seq_len": ((int,), None, _GE1),
    "qk_norm": ((bool,), True, None),
    # data
    "vocab_size": ((int,), None, (lambda v: v >= 260, "must be >= 260 (bytes + end-of-text)")),
    "tokenizer": ((str,), None, (lambda v: Path(v).is_file(), "is not a file")),
    "tokenizer_sample_chars": ((int,), 2_000_000, _GE1),
    "val_tokens": ((int,), 262_144, _GE1),
    "split_seed": ((int,), 0, None),
    # budget and optimisation
    "tokens": ((int,), None, _GE1),
    "tokens_per_param": ((int, float), 20.0, _POS),
    "batch_size": ((int,), 16, _GE1),
    "lr": ((int, float), 3e-4, _POS),
    "min_lr_ratio": ((int, float), 0.1, _UNIT),
    "warmup": ((int, float), 0.02, _FRAC),
    "weight_decay": ((int, float), 0.033, _GE0),
    "beta1": ((int, float), 0.9, _FRAC),
    "beta2": ((int, float), 0.95, _FRAC),
    "grad_clip": ((int, float), 1.0, _GE0),
    # evaluation and pruning
    "eval_interval": ((int,), 0, _GE0),
    "eval_batch_size": ((int,), None, _GE1),
    # hardware
    "amp": ((str,), "auto", (lambda v: v in AMP_MODES, f"must be one of {', '.join(AMP_MODES)}")),
    "device": ((str,), "auto", (lambda v: re.fullmatch(r"auto|cpu|cuda(:\d+)?", v), "must be auto, cpu or cuda[:N]")),
    "compile": ((bool,), False, None),
    "threads": ((int,), None, _GE1),
    "progress": ((bool,), None, None),  # default: when stderr is a terminal
}


def validate_gpt_objective(options: dict, domains: dict[str, dict]) -> list[str]:
    """One-line problems with a gpt study's ``[objective]`` options and ``[domains.*]`` tables."""
    errors = []
    for key, value in options.items():
        if key == "kind":
            continue
        if key not in OBJECTIVE_KEYS:
            errors.append(f"[objective]: unknown key {key!r} for kind 'gpt' (known: {', '.join(sorted(OBJECTIVE_KEYS))})")
            continue
        types, _, check = OBJECTIVE_KEYS[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            errors.append(f"[objective]: {key} must be {' or '.join(t.__name__ for t in types)}, got {value!r}")
        elif isinstance(value, float) and not math.isfinite(value):
            errors.append(f"[objective]: {key} must be finite, got {value!r}")
        elif check is not None and not check[0](value):
            errors.append(f"[objective]: {key} {check[1]}, got {value!r}")
    if not errors:
        try:
            _model_config(_with_defaults(options), vocab_size=PRESETS["demo"]["vocab_size"])
        except ValueError as e:
            errors.append(f"[objective]: {e}")
    if not domains:
        errors.append("[domains]: a gpt study needs at least one [domains.<name>] table")
    for name, table in domains.items():
        errors += check_domain_table(name, table)
    return errors


def _with_defaults(options: dict) -> dict[str, Any]:
    out = {k: default for k, (_, default, _) in OBJECTIVE_KEYS.items()}
    out.update({k: v for k, v in options.items() if k != "kind"})
    return out


def _model_config(o: dict[str, Any], vocab_size: int) -> GPTConfig:
    shape = {k: o[k] for k in ("n_layer", "n_head", "n_embd", "seq_len") if o[k] is not None}
    return GPTConfig.preset(o["preset"], vocab_size=vocab_size, qk_norm=o["qk_norm"], **shape)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# Prepared data per process, shared by every GPTObjective built on the same data options.
_PREPARED: dict[str, MixtureData] = {}


class GPTObjective:
    """Trains the proxy on each trial's mixture; data is prepared once per process, lazily.

    Every trial uses the study's ``seed`` for the model's initialisation and the batch order,
    so that two trials differ by their mixture only.
    """

    def __init__(self, objective: dict, domains: dict[str, dict], *, seed: int, cache_dir: Path) -> None:
        errors = validate_gpt_objective(objective, domains)
        if errors:
            raise ValueError("; ".join(errors))
        self.options = _with_defaults(objective)
        self.specs = [DomainSpec.from_table(name, table) for name, table in domains.items()]
        self.domains = [s.name for s in self.specs]
        self.seed = seed
        self.cache_dir = Path(cache_dir)

    def prepare(self) -> MixtureData:
        """Tokenizer and token arrays: from this process's memo, the disk cache, or built."""
        o = self.options
        if o["threads"] is not None:
            import torch

            torch.set_num_threads(o["threads"])
        data_options = {k: o[k] for k in ("vocab_size", "tokenizer", "tokenizer_sample_chars", "val_tokens", "split_seed", "preset")}
        key = _digest([str(self.cache_dir.resolve()), [s.fingerprint() for s in self.specs], data_options])
        if key not in _PREPARED:
            _PREPARED[key] = prepare_data(
                self.specs,
                self.cache_dir,
                val_tokens=o["val_tokens"],
                vocab_size=o["vocab_size"] or PRESETS[o["preset"]]["vocab_size"],
                tokenizer=o["tokenizer"],
                tokenizer_sample_chars=o["tokenizer_sample_chars"],
                split_seed=o["split_seed"],
            )
        return _PREPARED[key]

    def model_config(self, data: MixtureData) -> GPTConfig:
        """The preset with overrides; the vocabulary padded to a multiple of 64 for speed."""
        return _model_config(self.options, vocab_size=-(-data.vocab_size // 64) * 64)

    def train_config(self) -> TrainConfig:
        o = self.options
        progress = o["progress"] if o["progress"] is not None else sys.stderr.isatty()
        return TrainConfig(
            batch_size=o["batch_size"], tokens=o["tokens"], tokens_per_param=float(o["tokens_per_param"]),
            lr=float(o["lr"]), min_lr_ratio=float(o["min_lr_ratio"]), warmup=float(o["warmup"]),
            weight_decay=float(o["weight_decay"]), betas=(float(o["beta1"]), float(o["beta2"])),
            grad_clip=float(o["grad_clip"]), eval_interval=o["eval_interval"],
            eval_batch_size=o["eval_batch_size"], amp=o["amp"], device=o["device"],
            compile=o["compile"], seed=self.seed, progress=progress,
        )

    def evaluate(self, trial: optuna.Trial, weights: dict[str, float]) -> dict[str, float]:
        """Train on ``weights``; per-domain validation losses (nats).

        Raises ``optuna.TrialPruned`` when the pruner says so, and the trainers'
        ``NonFiniteLossError`` (a ValueError) when training diverges, after recording the
        reason as the trial user attr ``fail_reason``.
        """
        data = self.prepare()

        def on_eval(step: int, tokens: int, losses: dict[str, float]) -> None:
            trial.report(sum(losses.values()) / len(losses), step)
            if trial.should_prune():
                trial.set_user_attr("tokens", tokens)
                raise optuna.TrialPruned(f"pruned at step {step} ({tokens} tokens)")

        try:
            result: TrainResult = train(
                self.model_config(data), data, weights, self.train_config(), on_eval=on_eval
            )
        except NonFiniteLossError as e:
            trial.set_user_attr(FAIL_REASON_ATTR, str(e))
            raise
        trial.set_user_attr("tokens", result.tokens)
        trial.set_user_attr("seconds", result.seconds)
        trial.set_user_attr("tokens_per_second", result.tokens_per_second)
        trial.set_user_attr("epochs", result.epochs)
        return result.losses
