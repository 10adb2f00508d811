"""Trainer throughput against a bare PyTorch loop, same model, batch and AMP.

The bare loop is the floor of what training costs: forward, backward, AdamW step on a batch
already on the device, no data pipeline, no schedule, no clipping, no loss checks, no eval.
``train()``'s tokens/s (training time only) should stay within 10% of it (ratio >= 0.9).
Runs alternate between the two, after one untimed warm-up of each, and the medians are
compared, so that a noisy machine hurts both sides alike.

    python benchmarks/throughput.py                                  # CPU, demo preset
    python benchmarks/throughput.py --device cuda --preset 25m       # + MFU, bf16 autocast
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from optuna_mix.trainers import GPT, GPTConfig, MixtureData, TrainConfig, resolve_amp, resolve_device, train

# Dense bf16 tensor-core peaks (FLOP/s) by device-name fragment; --peak-tflops overrides.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12,
             "A10": 125e12, "4090": 165e12, "3090": 71e12, "V100": 125e12, "T4": 65e12}


def flops_per_token(cfg: GPTConfig) -> float:
    """Training FLOPs per token: 6 x (non-embedding params + LM head) + attention (PaLM)."""
    n = cfg.n_params() + cfg.vocab_size * cfg.n_embd
    return 6 * n + 12 * cfg.n_layer * cfg.n_embd * cfg.seq_len


def random_data(cfg: GPTConfig, tokens: int, seed: int = 0) -> MixtureData:
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if cfg.vocab_size <= 2**16 else np.uint32
    arrays = {d: rng.integers(0, cfg.vocab_size, tokens + 1).astype(dtype) for d in ("a", "b")}
    val = {d: rng.integers(0, cfg.vocab_size, cfg.seq_len + 1).astype(dtype) for d in arrays}
    return MixtureData.from_arrays(arrays, val, cfg.vocab_size)


def run_trainer(cfg: GPTConfig, data: MixtureData, args: argparse.Namespace) -> float:
    tc = TrainConfig(batch_size=args.batch_size, tokens=args.steps * args.batch_size * cfg.seq_len,
                     device=args.device, amp=args.amp, compile=args.compile, seed=0)
    return train(cfg, data, {"a": 0.5, "b": 0.5}, tc).tokens_per_second


def run_bare(cfg: GPTConfig, args: argparse.Namespace) -> float:
    """Forward, backward, AdamW: nothing else. Same AMP plan and optimizer as the trainer."""
    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device.type)
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    step_fn = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=amp.scaler)
    xy = torch.randint(0, cfg.vocab_size, (args.batch_size, cfg.seq_len + 1), device=device)
    x, y = xy[:, :-1], xy[:, 1:]
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        with torch.autocast(device.type, dtype=amp.dtype, enabled=amp.dtype is not None):
            _, loss = step_fn(x, y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    _sync(device)
    return args.steps * args.batch_size * cfg.seq_len / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="demo")
    p.add_argument("--batch-size", type=int, default=None, help="default: 32 (demo), 16 (others)")
    p.add_argument("--seq-len", type=int, default=None, help="default: the preset's")
    p.add_argument("--steps", type=int, default=None, help="timed steps per run (default 40 CPU, 100 CUDA)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--peak-tflops", type=float, default=None, help="for MFU; default: by GPU name")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    args.batch_size = args.batch_size or (32 if args.preset == "demo" else 16)
    args.steps = args.steps or (40 if device.type == "cpu" else 100)
    cfg = GPTConfig.preset(args.preset, **({"seq_len": args.seq_len} if args.seq_len else {}))
    data = random_data(cfg, args.steps * args.batch_size * cfg.seq_len)
    amp = resolve_amp(args.amp, device.type)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU x {torch.get_num_threads()} threads"
    print(f"{name}; preset {args.preset} ({cfg.n_params() / 1e6:.2f}M non-embedding params), "
          f"batch {args.batch_size} x {cfg.seq_len}, amp {amp.mode}, compile {args.compile}, "
          f"{args.steps} steps x {args.repeats} repeats")

    run_trainer(cfg, data, args), run_bare(cfg, args)  # warm-up: allocator, kernels, compile
    trainer, bare = [], []
    for r in range(args.repeats):
        pair = [("trainer", lambda: run_trainer(cfg, data, args)), ("bare", lambda: run_bare(cfg, args))]
        for label, fn in pair if r % 2 == 0 else pair[::-1]:
            (trainer if label == "trainer" else bare).append(fn())
    t, b = statistics.median(trainer), statistics.median(bare)
    print(f"trainer tokens/s: {t:,.0f}   (runs: {', '.join(f'{v:,.0f}' for v in trainer)})")
    print(f"bare    tokens/s: {b:,.0f}   (runs: {', '.join(f'{v:,.0f}' for v in bare)})")
    print(f"ratio trainer/bare: {t / b:.3f}")
    if device.type == "cuda":
        peak = args.peak_tflops * 1e12 if args.peak_tflops else next(
            (v for k, v in PEAK_BF16.items() if k in name), None)
        if peak is None:
            print("MFU: unknown peak for this GPU; pass --peak-tflops")
        else:
            fpt = flops_per_token(cfg)
            print(f"MFU (bf16 dense peak {peak / 1e12:.0f} TFLOP/s, {fpt / 1e6:.1f} MFLOP/token): "
                  f"trainer {fpt * t / peak:.1%}, bare {fpt * b / peak:.1%}")


if __name__ == "__main__":
    main()
