"""The gpt objective: train the GPT proxy on a trial's mixture, return per-domain val losses.

This is the only place where Optuna meets :mod:`optuna_mix.trainers`: it turns the study's
``[objective]`` and ``[domains.*]`` tables into a tokenizer, cached token arrays and a
training config, reports the mean intermediate validation loss so that pruners can stop bad
mixtures early, and records throughput in the trial's user attrs.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import optuna

from optuna_mix.attrs import FAIL_REASON_ATTR
from optuna_mix.scale import preset_scales
from optuna_mix.schema import check_gpt_objective, domain_spec
from optuna_mix.trainers import (
    PRESETS,
    GPTConfig,
    MixtureData,
    NonFiniteLossError,
    TrainConfig,
    TrainResult,
    prepare_data,
    train,
)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()

if TYPE_CHECKING:
    from optuna_mix.config import StudyConfig

# Prepared data per process, shared by every GPTObjective built on the same data options.
_PREPARED: dict[str, MixtureData] = {}


class GPTObjective:
    """Trains the proxy on each trial's mixture; data is prepared once per process, lazily.

    Every trial uses the study's ``seed`` for the model's initialisation and the batch order,
    so that two trials differ by their mixture only (and, with ``scales``, by the preset the
    sampler chose, trained on tokens_per_param x its parameters).
    """

    def __init__(self, objective: dict, domains: dict[str, dict], *, seed: int, cache_dir: Path) -> None:
        problems: list[str] = []
        self.options = check_gpt_objective(objective, domains, problems)
        if problems:
            raise ValueError("; ".join(problems))
        self.specs = [domain_spec(name, table) for name, table in domains.items()]
        self.domains = [s.name for s in self.specs]
        self.seed = seed
        self.cache_dir = Path(cache_dir)
        self.scales = preset_scales(self.options)
        # the tokenizer is shared by every size: the smallest preset's vocabulary by default
        self.data_preset = self.scales.presets[0] if self.scales else self.options["preset"]

    def prepare(self) -> MixtureData:
        """Tokenizer and token arrays: from this process's memo, the disk cache, or built."""
        o = self.options
        if o["threads"] is not None:
            import torch

            torch.set_num_threads(o["threads"])
        data_options = {k: o[k] for k in ("vocab_size", "tokenizer", "tokenizer_sample_chars",
                                          "val_tokens", "split_seed")}
        data_options["preset"] = self.data_preset
        key = _digest([str(self.cache_dir.resolve()), [s.fingerprint() for s in self.specs], data_options])
        if key not in _PREPARED:
            _PREPARED[key] = prepare_data(
                self.specs,
                self.cache_dir,
                val_tokens=o["val_tokens"],
                vocab_size=o["vocab_size"] or PRESETS[self.data_preset]["vocab_size"],
                tokenizer=o["tokenizer"],
                tokenizer_sample_chars=o["tokenizer_sample_chars"],
                split_seed=o["split_seed"],
            )
        return _PREPARED[key]

    def model_config(self, data: MixtureData, preset: str | None = None) -> GPTConfig:
        """``preset`` (default: the config's) with overrides; the vocabulary padded to a
        multiple of 64 for speed."""
        o = self.options
        shape = {k: o[k] for k in ("n_layer", "n_head", "n_embd", "seq_len") if o[k] is not None}
        return GPTConfig.preset(
            preset or o["preset"], vocab_size=-(-data.vocab_size // 64) * 64,
            qk_norm=o["qk_norm"], **shape
        )

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
        preset = self.scales.suggest(trial) if self.scales else None
        data = self.prepare()

        def on_eval(step: int, tokens: int, losses: dict[str, float]) -> None:
            if len(trial.study.directions) > 1:
                return  # a pareto study: Optuna keeps no intermediate values, nothing prunes
            trial.report(sum(losses.values()) / len(losses), step)
            if trial.should_prune():
                trial.set_user_attr("tokens", tokens)
                raise optuna.TrialPruned(f"pruned at step {step} ({tokens} tokens)")

        try:
            result: TrainResult = train(
                self.model_config(data, preset), data, weights, self.train_config(),
                on_eval=on_eval
            )
        except NonFiniteLossError as e:
            trial.set_user_attr(FAIL_REASON_ATTR, str(e))
            raise
        trial.set_user_attr("tokens", result.tokens)
        trial.set_user_attr("n_params", result.n_params)
        trial.set_user_attr("seconds", result.seconds)
        trial.set_user_attr("tokens_per_second", result.tokens_per_second)
        trial.set_user_attr("epochs", result.epochs)
        return result.losses


def gpt_evaluator(config: StudyConfig, cache_dir: Path) -> Callable[..., dict[str, float]]:
    """The ``gpt`` objective kind's evaluator (:data:`optuna_mix.schema.OBJECTIVES`)."""
    gpt = GPTObjective(
        config.objective_options, config.domains, seed=config.seed, cache_dir=cache_dir
    )
    return gpt.evaluate
