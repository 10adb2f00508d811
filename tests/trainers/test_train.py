import dataclasses
import math
import warnings

import numpy as np
import pytest

from optuna_mix.trainers import (
    DataRepeatWarning,
    MixtureData,
    NonFiniteLossError,
    corpus,
    train,
)

UNIFORM = {d: 0.2 for d in corpus.DOMAINS}


def test_result_has_per_domain_losses_and_throughput(tiny_data, tiny_model, tiny_train):
    r = train(tiny_model, tiny_data, UNIFORM, tiny_train)
    assert set(r.losses) == set(corpus.DOMAINS)
    assert all(0 < v < math.log(tiny_model.vocab_size) + 1 for v in r.losses.values())
    assert r.steps == 12 and r.tokens == 12 * 4 * 32
    assert r.seconds > 0 and r.tokens_per_second > 0
    assert set(r.epochs) == set(corpus.DOMAINS) and r.amp == "off" and r.device == "cpu"
    assert r.history[-1]["losses"] == r.losses


def test_same_seed_gives_bitwise_same_losses(tiny_data, tiny_model, tiny_train):
    cfg = dataclasses.replace(tiny_train, eval_interval=4)
    a = train(tiny_model, tiny_data, UNIFORM, cfg)
    b = train(tiny_model, tiny_data, UNIFORM, cfg)
    assert [h["losses"] for h in a.history] == [h["losses"] for h in b.history]
    assert a.train_loss == b.train_loss
    c = train(tiny_model, tiny_data, UNIFORM, dataclasses.replace(cfg, seed=1))
    assert c.losses != a.losses


def test_training_lowers_the_loss(tiny_data, tiny_model, tiny_train):
    cfg = dataclasses.replace(tiny_train, tokens=4 * 32 * 30, eval_interval=10)
    r = train(tiny_model, tiny_data, UNIFORM, cfg)
    first, last = (sum(h["losses"].values()) for h in (r.history[0], r.history[-1]))
    assert last < first


def test_on_eval_called_at_intermediate_evals_and_may_stop(tiny_data, tiny_model, tiny_train):
    calls = []
    cfg = dataclasses.replace(tiny_train, eval_interval=5)
    train(tiny_model, tiny_data, UNIFORM, cfg, on_eval=lambda *a: calls.append(a))
    assert [(s, t) for s, t, _ in calls] == [(5, 5 * 128), (10, 10 * 128)]
    assert set(calls[0][2]) == set(corpus.DOMAINS)

    class Stop(Exception):
        pass

    def stop(step, tokens, losses):
        raise Stop(step)

    with pytest.raises(Stop):
        train(tiny_model, tiny_data, UNIFORM, cfg, on_eval=stop)


def test_bf16_training_on_cpu(tiny_data, tiny_model, tiny_train):
    r = train(tiny_model, tiny_data, UNIFORM, dataclasses.replace(tiny_train, amp="bf16"))
    assert r.amp == "bf16" and all(math.isfinite(v) for v in r.losses.values())


def test_nan_loss_raises_with_step(tiny_data, tiny_model, tiny_train):
    with pytest.raises(NonFiniteLossError, match=r"at step \d+") as e:
        train(tiny_model, tiny_data, UNIFORM, dataclasses.replace(tiny_train, lr=1e30, grad_clip=0))
    assert isinstance(e.value, ValueError)


def test_repeated_domain_warns_with_epochs(tiny_model, tiny_train):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 50, 32 * 4 + 1).astype(np.uint16)  # 4 windows
    big = rng.integers(0, 50, 32 * 1000 + 1).astype(np.uint16)
    val = rng.integers(0, 50, 65).astype(np.uint16)
    data = MixtureData.from_arrays({"small": small, "big": big}, {"small": val, "big": val}, 50)
    with pytest.warns(DataRepeatWarning, match=r"'small' was repeated: \d+\.\d\d epochs"):
        r = train(tiny_model, data, {"small": 0.5, "big": 0.5}, tiny_train)
    assert r.epochs["small"] > 1 > r.epochs["big"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataRepeatWarning)
        train(tiny_model, data, {"small": 0.0, "big": 1.0}, tiny_train)


def test_model_vocab_must_cover_data(tiny_data, tiny_model, tiny_train):
    with pytest.raises(ValueError, match="vocab"):
        train(tiny_model.replace(vocab_size=100), tiny_data, UNIFORM, tiny_train)
