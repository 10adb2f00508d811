"""Train a GPT proxy on a mixture and measure its per-domain validation loss.

One loop for CPU and CUDA: AdamW (decay on matrices only), linear warmup then cosine decay,
gradient clipping, AMP (bf16 autocast, or fp16 with a grad scaler on CUDA without bf16),
optional ``torch.compile``. Seeded: on CPU the same seed gives bitwise the same losses.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from .data import DataRepeatWarning, MixtureBatches, MixtureData
from .model import GPT, GPTConfig

AmpMode = Literal["auto", "bf16", "fp16", "off"]
OnEval = Callable[[int, int, dict[str, float]], None]
AMP_MODES = ("auto", "bf16", "fp16", "off")


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite; the message names the step."""


# ---------------------------------------------------------------------------- resolution


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cpu", "cuda", "cuda:N" as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return dev


@dataclass(frozen=True)
class AmpPlan:
    """Resolved mixed precision: the autocast dtype (None: fp32) and whether to scale grads."""

    mode: Literal["bf16", "fp16", "off"]
    dtype: torch.dtype | None
    scaler: bool


def resolve_amp(amp: str, device_type: str, bf16_supported: bool | None = None) -> AmpPlan:
    """Mixed precision for a device type ("cpu" or "cuda").

    "auto": bf16 on CUDA that supports it, fp16 + GradScaler on older CUDA, off on CPU
    (CPU bf16 autocast is slower than fp32 on most CPUs, and the demo should be exact).
    A GradScaler is only ever used with fp16 on CUDA: bf16 has fp32's range and needs none.
    ``bf16_supported`` defaults to asking torch (injectable so tests need no GPU).
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    if bf16_supported is None:
        bf16_supported = device_type != "cuda" or torch.cuda.is_bf16_supported()
    if amp == "auto":
        amp = "off" if device_type == "cpu" else ("bf16" if bf16_supported else "fp16")
    if amp == "bf16":
        return AmpPlan("bf16", torch.bfloat16, scaler=False)
    if amp == "fp16":
        return AmpPlan("fp16", torch.float16, scaler=device_type == "cuda")
    return AmpPlan("off", None, scaler=False)


def token_budget(n_params: int, tokens: int | None = None, tokens_per_param: float = 20.0) -> int:
    """Training tokens: ``tokens`` if given, else Chinchilla's ~20 per (non-embedding) param."""
    if tokens is not None:
        if tokens < 1:
            raise ValueError(f"tokens must be >= 1, got {tokens}")
        return int(tokens)
    return max(1, round(tokens_per_param * n_params))


def lr_at(step: int, steps: int, lr: float, warmup_steps: int, min_lr: float) -> float:
    """Linear warmup to ``lr`` over ``warmup_steps``, then cosine decay to ``min_lr``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------------------- config, result


@dataclass
class TrainConfig:
    """How to train (the model's shape is :class:`GPTConfig`)."""

    batch_size: int = 16
    tokens: int | None = None  # None: tokens_per_param * non-embedding parameters
    tokens_per_param: float = 20.0
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup: float = 0.02  # fraction of the steps
    weight_decay: float = 0.033
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # 0: no clipping
    eval_interval: int = 0  # steps between intermediate evaluations; 0: only at the end
    eval_batch_size: int | None = None  # None: batch_size
    amp: AmpMode = "auto"
    device: str = "auto"
    compile: bool = False
    seed: int = 0
    progress: bool = False  # a tqdm bar over the steps
    check_interval: int = 16  # on CUDA, steps between host syncs to check the loss


@dataclass
class TrainResult:
    """What a run measured. ``tokens_per_second`` counts training time only (not evals)."""

    losses: dict[str, float]  # per-domain validation loss, mean token cross-entropy (nats)
    tokens: int  # training tokens seen
    steps: int
    seconds: float  # wall time of the whole call, evaluations and model build included
    tokens_per_second: float
    epochs: dict[str, float]  # passes over each domain's training tokens
    train_loss: float  # the last step's
    n_params: int  # non-embedding
    device: str
    amp: str
    history: list[dict] = field(default_factory=list)  # {"step", "tokens", "losses"} per eval


# ---------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, val: dict[str, np.ndarray], *, seq_len: int, batch_size: int,
    device: torch.device, amp: AmpPlan,
) -> dict[str, float]:
    """Mean token cross-entropy (nats) on each domain's validation tokens, every one counted."""
    was_training = model.training
    model.eval()
    losses = {}
    for name, arr in val.items():
        tokens = torch.from_numpy(np.asarray(arr, dtype=np.int64))
        n = len(tokens) - 1
        full = n // seq_len
        total = torch.zeros((), dtype=torch.float64, device=device)
        windows = tokens[: full * seq_len].view(full, seq_len) if full else None
        targets = tokens[1 : full * seq_len + 1].view(full, seq_len) if full else None
        for i in range(0, full, batch_size):
            total += _sum_loss(model, windows[i : i + batch_size], targets[i : i + batch_size], device, amp)
        if n > full * seq_len:  # the remainder, as one shorter sequence
            x, y = tokens[full * seq_len : n][None], tokens[full * seq_len + 1 :][None]
            total += _sum_loss(getattr(model, "_orig_mod", model), x, y, device, amp)
        losses[name] = float(total) / n
    model.train(was_training)
    return losses


def _sum_loss(model, x: torch.Tensor, y: torch.Tensor, device: torch.device, amp: AmpPlan) -> torch.Tensor:
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=amp.dtype, enabled=amp.dtype is not None):
        logits = model(x)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").double()


# ---------------------------------------------------------------------------- training


def train(
    model_config: GPTConfig,
    data: MixtureData,
    weights: dict[str, float],
    config: TrainConfig | None = None,
    *,
    on_eval: OnEval | None = None,
) -> TrainResult:
    """Train a fresh GPT on ``weights`` of ``data``'s domains; evaluate every domain.

    ``on_eval(step, tokens, losses)`` is called after each intermediate evaluation (every
    ``eval_interval`` steps, not the final one); it may raise to stop training, and the
    exception propagates. A NaN or infinite training loss raises :class:`NonFiniteLossError`.
    A domain whose training tokens were repeated triggers a :class:`DataRepeatWarning`.
    """
    cfg = config or TrainConfig()
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device.type)
    if data.vocab_size > model_config.vocab_size:
        raise ValueError(f"model vocab_size {model_config.vocab_size} < data's {data.vocab_size}")

    torch.manual_seed(cfg.seed)
    model = GPT(model_config).to(device)
    step_fn = torch.compile(model) if cfg.compile else model
    opt = torch.optim.AdamW(
        model.param_groups(cfg.weight_decay), lr=cfg.lr, betas=cfg.betas,
        fused=device.type == "cuda",
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp.scaler)

    seq_len, batch = model_config.seq_len, cfg.batch_size
    n_params = model_config.n_params()
    steps = max(1, math.ceil(token_budget(n_params, cfg.tokens, cfg.tokens_per_param) / (batch * seq_len)))
    warmup_steps = int(cfg.warmup * steps)
    batches = MixtureBatches(data.train, weights, batch_size=batch, seq_len=seq_len, seed=cfg.seed)
    eval_kw = dict(seq_len=seq_len, batch_size=cfg.eval_batch_size or batch, device=device, amp=amp)
    check_every = 1 if device.type == "cpu" else max(1, cfg.check_interval)

    history: list[dict] = []
    pending: list[torch.Tensor] = []  # losses not yet checked on the host
    last_loss = float("nan")
    train_seconds = 0.0
    bar = _progress(steps, cfg.progress)
    tick = time.perf_counter()
    for step in range(steps):
        lr = lr_at(step, steps, cfg.lr, warmup_steps, cfg.lr * cfg.min_lr_ratio)
        for group in opt.param_groups:
            group["lr"] = lr
        xy = torch.from_numpy(batches.next())
        if device.type == "cuda":
            xy = xy.pin_memory().to(device, non_blocking=True)
        x, y = xy[:, :-1], xy[:, 1:]
        with torch.autocast(device.type, dtype=amp.dtype, enabled=amp.dtype is not None):
            _, loss = step_fn(x, y)
        scaler.scale(loss).backward()
        if cfg.grad_clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        pending.append(loss.detach())

        done = step + 1
        evaluating = bool(cfg.eval_interval) and done % cfg.eval_interval == 0 and done < steps
        if done % check_every == 0 or evaluating or done == steps:
            last_loss = _check_finite(pending, first_step=done - len(pending) + 1)
            pending.clear()
            bar.update(done - bar.n)
            bar.set_postfix(loss=f"{last_loss:.3f}", refresh=False)
        if evaluating:
            _sync(device)
            train_seconds += time.perf_counter() - tick
            losses = evaluate(step_fn, data.val, **eval_kw)
            history.append({"step": done, "tokens": done * batch * seq_len, "losses": losses})
            if on_eval is not None:
                on_eval(done, done * batch * seq_len, losses)
            tick = time.perf_counter()
    _sync(device)
    train_seconds += time.perf_counter() - tick
    bar.close()

    losses = evaluate(step_fn, data.val, **eval_kw)
    tokens = steps * batch * seq_len
    history.append({"step": steps, "tokens": tokens, "losses": losses})
    epochs = batches.epochs()
    for d, e in epochs.items():
        if e > 1.0:
            warnings.warn(
                f"domain {d!r} was repeated: {e:.2f} epochs over its {len(data.train[d])} "
                f"training tokens", DataRepeatWarning, stacklevel=2,
            )
    return TrainResult(
        losses=losses, tokens=tokens, steps=steps, seconds=time.perf_counter() - start,
        tokens_per_second=tokens / max(train_seconds, 1e-9), epochs=epochs,
        train_loss=last_loss, n_params=n_params, device=str(device), amp=amp.mode,
        history=history,
    )


def _check_finite(pending: list[torch.Tensor], first_step: int) -> float:
    """The last loss; raises NonFiniteLossError naming the first step whose loss is not finite."""
    values = torch.stack(pending).float().tolist()
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise NonFiniteLossError(f"training loss is {v} at step {first_step + i}")
    return values[-1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress(steps: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=steps, disable=not enabled, desc="train", unit="step", leave=False)
