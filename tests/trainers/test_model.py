import pytest
import torch

from optuna_mix.trainers import GPT, PRESETS, GPTConfig


def test_forward_shapes_and_loss(tiny_model):
    model = GPT(tiny_model)
    idx = torch.randint(0, tiny_model.vocab_size, (3, tiny_model.seq_len))
    assert model(idx).shape == (3, tiny_model.seq_len, tiny_model.vocab_size)
    logits, loss = model(idx, idx)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # a fresh model predicts nearly uniformly: loss close to log(vocab)
    assert abs(loss.item() - torch.log(torch.tensor(tiny_model.vocab_size)).item()) < 0.5


def test_causal_future_tokens_do_not_change_past_logits(tiny_model):
    torch.manual_seed(0)
    model = GPT(tiny_model).eval()
    a = torch.randint(0, tiny_model.vocab_size, (2, tiny_model.seq_len))
    b = a.clone()
    b[:, 10:] = torch.randint(0, tiny_model.vocab_size, (2, tiny_model.seq_len - 10))
    la, lb = model(a), model(b)
    torch.testing.assert_close(la[:, :10], lb[:, :10])
    assert not torch.allclose(la[:, 10:], lb[:, 10:])


def test_tied_embeddings_and_too_long_input(tiny_model):
    model = GPT(tiny_model)
    assert model.lm_head.weight is model.wte.weight
    with pytest.raises(ValueError, match="seq_len"):
        model(torch.zeros(1, tiny_model.seq_len + 1, dtype=torch.long))


@pytest.mark.parametrize("qk_norm,bias", [(True, False), (False, True)])
def test_param_count_formula_matches_module(qk_norm, bias):
    cfg = GPTConfig(vocab_size=97, seq_len=24, n_layer=3, n_head=4, n_embd=32, qk_norm=qk_norm, bias=bias)
    model = GPT(cfg)
    assert model.n_params() == cfg.n_params()
    assert model.n_params(non_embedding=False) == cfg.n_params(non_embedding=False)
    assert cfg.n_params(False) - cfg.n_params() == (97 + 24) * 32


def test_presets_count_non_embedding_parameters():
    assert set(PRESETS) == {"demo", "xs", "s", "m", "l", "25m", "125m"}
    # the CPU sizes of scale-aware studies, each within 12% of its nominal 25k ... 400k
    for name, nominal in [("xs", 25e3), ("s", 50e3), ("m", 100e3), ("l", 400e3)]:
        assert GPTConfig.preset(name).n_params() == pytest.approx(nominal, rel=0.12)
    assert GPTConfig.preset("demo").n_params() < 200_000
    assert GPTConfig.preset("25m").n_params() == pytest.approx(25e6, rel=0.02)
    assert GPTConfig.preset("125m").n_params() == pytest.approx(125e6, rel=0.02)
    assert GPTConfig.preset("25m", seq_len=512).seq_len == 512
    with pytest.raises(ValueError, match="unknown preset"):
        GPTConfig.preset("7b")
    with pytest.raises(ValueError, match="multiple"):
        GPTConfig(n_embd=30, n_head=4)


def test_weight_decay_only_on_matrices(tiny_model):
    decay, no_decay = GPT(tiny_model).param_groups(0.033)
    assert decay["weight_decay"] == 0.033 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
