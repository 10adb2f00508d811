"""Resolution of device, AMP and budget: pure logic, no GPU needed."""

import math

import pytest
import torch

from optuna_mix.trainers import GPTConfig, lr_at, resolve_amp, resolve_device, token_budget


def test_amp_auto_resolution():
    assert resolve_amp("auto", "cuda", bf16_supported=True).mode == "bf16"
    fp16 = resolve_amp("auto", "cuda", bf16_supported=False)
    assert (fp16.mode, fp16.dtype, fp16.scaler) == ("fp16", torch.float16, True)
    assert resolve_amp("auto", "cpu").mode == "off"


def test_grad_scaler_only_for_fp16_on_cuda():
    assert resolve_amp("fp16", "cuda", bf16_supported=True).scaler
    assert not resolve_amp("fp16", "cpu").scaler
    assert not resolve_amp("bf16", "cuda", bf16_supported=True).scaler
    assert not resolve_amp("bf16", "cpu").scaler
    assert resolve_amp("off", "cuda", bf16_supported=False) == resolve_amp("off", "cpu")
    with pytest.raises(ValueError, match="amp"):
        resolve_amp("fp8", "cpu")


def test_bf16_autocast_works_on_cpu(tiny_model):
    from optuna_mix.trainers import GPT

    plan = resolve_amp("bf16", "cpu")
    model = GPT(tiny_model)
    idx = torch.randint(0, tiny_model.vocab_size, (2, 8))
    with torch.autocast("cpu", dtype=plan.dtype):
        logits, loss = model(idx, idx)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_budget_is_chinchilla_on_non_embedding_params():
    cfg = GPTConfig.preset("25m")
    assert token_budget(cfg.n_params()) == 20 * cfg.n_params()
    assert token_budget(cfg.n_params()) == pytest.approx(500e6, rel=0.02)  # the seed's 500M
    assert token_budget(1000, tokens_per_param=2.5) == 2500
    assert token_budget(10**9, tokens=12345) == 12345
    with pytest.raises(ValueError):
        token_budget(1000, tokens=0)


def test_warmup_then_cosine():
    lrs = [lr_at(s, 100, 1.0, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lr_at(100, 100, 1.0, 10, 0.1) == pytest.approx(0.1)
    assert lr_at(55, 100, 1.0, 10, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
