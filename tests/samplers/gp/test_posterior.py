"""ConditionedGP must be the fitted SingleTaskGP's posterior, only computed faster; the
posterior mean and std of the maximised objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.acquisition.objective import ScalarizedPosteriorTransform

from optuna_mix.samplers._laws import DataMixingLaw
from optuna_mix.samplers.gp.law import LawPrior
from optuna_mix.samplers.gp.model import Composite, fit_gp
from optuna_mix.samplers.gp.posterior import ConditionedGP, posterior_mean_std
from optuna_mix.surfaces import make_surface

K = 4


def _data(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    surface = make_surface("powerlaw", K, seed=seed, noise=0.01)
    X = rng.dirichlet(np.ones(K), n)
    Y = np.array([surface.noisy_losses(w, rng) for w in X])
    return X, Y


def _law(X: np.ndarray, Y: np.ndarray) -> LawPrior:
    law = DataMixingLaw()
    law.fit(X, Y, loo=False)
    return LawPrior(c=law.c, k=law.kk, t=law.t, columns=tuple(range(K)))


def _test_points(shape: tuple[int, ...]) -> torch.Tensor:
    W = np.random.default_rng(7).dirichlet(np.ones(K), shape)
    return torch.as_tensor(W, dtype=torch.float64)


def _assert_same_posterior(got, want) -> None:
    """Same means and covariances to 1e-9."""
    np.testing.assert_allclose(got.mean.numpy(), want.mean.numpy(), atol=1e-9)
    np.testing.assert_allclose(
        got.distribution.covariance_matrix.numpy(),
        want.distribution.covariance_matrix.numpy(),
        atol=1e-9,
    )


CASES = {
    "one output": dict(outputs="mean", law=False, warp=None),
    "one output, warped": dict(outputs="mean", law=False, warp=0.05),
    "batched outputs": dict(outputs="all", law=False, warp=0.05),
    "batched outputs, law prior": dict(outputs="all", law=True, warp=0.05),
}


@pytest.fixture(scope="module", params=CASES.values(), ids=CASES.keys())
def fitted(request):
    case = request.param
    X, Y = _data()
    y = Y.mean(axis=1) if case["outputs"] == "mean" else Y
    law = _law(X, Y) if case["law"] else None
    gp, _ = fit_gp(X, y, warp_columns=list(range(K)), warp=case["warp"], law=law, maxiter=5)
    return gp


@pytest.mark.parametrize("shape", [(9, 1), (5, 3), (2, 4, 2)], ids=str)
def test_matches_the_models_own_posterior(fitted, shape):
    gp, fast = fitted, ConditionedGP(fitted)
    Xt = _test_points(shape)  # batch shape, then q
    with torch.no_grad():
        want, got = gp.posterior(Xt), fast.posterior(Xt)
    assert got.mean.shape == want.mean.shape
    _assert_same_posterior(got, want)


@pytest.mark.parametrize("layout", ["shared first", "shared last", "interleaved"])
def test_rows_shared_by_every_batch_are_conditioned_once_with_the_same_result(fitted, layout):
    # qLogNEI's calls: each candidate with the same baseline (and pending) points
    shared, own = _test_points((1, 3)), _test_points((6, 2)).flip(-1)
    shared = shared.expand(6, 3, K)
    Xt = {
        "shared first": torch.cat([shared, own], dim=-2),
        "shared last": torch.cat([own, shared], dim=-2),
        "interleaved": torch.stack(
            [shared[:, 0], own[:, 0], shared[:, 1], own[:, 1], shared[:, 2]], dim=-2
        ),
    }[layout]
    with torch.no_grad():
        want, got = fitted.posterior(Xt), ConditionedGP(fitted).posterior(Xt)
    _assert_same_posterior(got, want)


def test_a_scalarised_posterior_is_the_weighted_sum_of_the_outputs():
    X, Y = _data()
    gp, _ = fit_gp(X, Y, warp_columns=list(range(K)), warp=0.05, maxiter=5)
    weights = torch.full((K,), -1.0 / K, dtype=torch.float64)
    transform = ScalarizedPosteriorTransform(weights)
    Xt = _test_points((6, 3))
    with torch.no_grad():
        want = gp.posterior(Xt, posterior_transform=transform)
        got = ConditionedGP(gp).posterior(Xt, posterior_transform=transform)
    _assert_same_posterior(got, want)


def test_gradients_flow_to_the_inputs():
    # the SLSQP refinement of the acquisition needs d posterior / d X
    X, Y = _data()
    gp, _ = fit_gp(X, Y, warp_columns=list(range(K)), warp=0.05, maxiter=5)
    Xt = _test_points((3, 1)).requires_grad_(True)
    ConditionedGP(gp).posterior(Xt).mean.sum().backward()
    Xt2 = Xt.detach().clone().requires_grad_(True)
    gp.posterior(Xt2).mean.sum().backward()
    np.testing.assert_allclose(Xt.grad.numpy(), Xt2.grad.numpy(), atol=1e-8)


def test_only_the_latent_posterior_of_all_outputs_is_offered():
    X, Y = _data()
    gp, _ = fit_gp(X, Y.mean(axis=1), maxiter=10)
    with pytest.raises(NotImplementedError):
        ConditionedGP(gp).posterior(_test_points((2, 1)), observation_noise=True)


@pytest.mark.parametrize("criterion", ["mean", "max"])
def test_the_mean_and_std_of_a_composite_are_those_of_its_criterion(criterion):
    X, Y = _data()
    gp = ConditionedGP(fit_gp(X, Y, warp_columns=list(range(K)), warp=0.05, maxiter=5)[0])
    W = _test_points((5,)).numpy()
    mean, std = posterior_mean_std(gp, W, Composite(criterion, -1.0, K))
    assert mean.shape == std.shape == (5,) and (std > 0).all()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        post = gp.posterior(torch.as_tensor(W)[:, None, :])
        draws = post.rsample(torch.Size([4096])).squeeze(-2).numpy()  # (draws, 5, K)
    values = -(draws.mean(-1) if criterion == "mean" else draws.max(-1))
    np.testing.assert_allclose(mean, values.mean(0), atol=4 * values.std(0).max() / 64)
    np.testing.assert_allclose(std, values.std(0), rtol=0.1)
    if criterion == "mean":  # exact: the weighted sum of independent outputs
        np.testing.assert_allclose(mean, -post.mean.squeeze(-2).numpy().mean(-1), atol=1e-12)
