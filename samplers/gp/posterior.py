"""The posterior: a fitted GP conditioned once per suggestion, and its mean and std.

Why: the acquisition search asks for thousands of small joint posteriors (each candidate with
qLogNEI's baseline and the pending points) in a few dozen calls. Through GPyTorch's exact
prediction strategy each call recomputes the test points' covariance with the training data
once per candidate *and* per baseline point, in many small batched matmuls; on 64 trials that
was most of a suggestion's time. Here the conditioning is done once: the Cholesky factor of
the training covariance and ``K^-1 (y - m)`` are cached, the test points of a call are
flattened so that their cross-covariance is one kernel evaluation and one triangular solve,
and each candidate's q x q posterior block comes from that. The kernel, the prior mean, the
input warp and the output standardisation are the fitted GPyTorch/BoTorch modules' own, so
the posterior is the model's (a test checks it against ``SingleTaskGP.posterior``).

:func:`posterior_mean_std` reads the posterior of the maximised objective at given points:
of the one output, or of a composite model's criterion of its outputs;
:func:`posterior_change_mean_std` that of its change from one point to others, from the
joint posterior of each pair.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from botorch.acquisition.objective import PosteriorTransform, ScalarizedPosteriorTransform
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.posteriors.gpytorch import GPyTorchPosterior
from botorch.sampling.normal import SobolQMCNormalSampler
from gpytorch.distributions import MultitaskMultivariateNormal, MultivariateNormal
from linear_operator.operators import DenseLinearOperator
from linear_operator.utils.cholesky import psd_safe_cholesky

from optuna_mix.samplers.gp.model import DTYPE, Composite

# quasi-MC samples for the mean and std of a non-linear criterion (max, median) of the
# outputs, under a fixed seed so that one model always gives the same (not benchmarked)
MC_SAMPLES_FOR_MOMENTS = 512


class ConditionedGP(Model):
    """The posterior of a fitted (possibly batched multi-output) ``SingleTaskGP``.

    Outputs are independent GPs (a batch of m), as ``SingleTaskGP`` fits several columns.
    """

    def __init__(self, gp: SingleTaskGP) -> None:
        super().__init__()
        gp.eval()
        self._gp = gp
        self._m = gp.num_outputs
        with torch.no_grad():
            T = gp.train_inputs[0]  # already warped in eval mode
            T = T if self._m > 1 else T.unsqueeze(0)  # (m, n, d)
            self._train = T
            y = gp.train_targets.reshape(self._m, -1)  # standardised, (m, n)
            K = self._kernel(T, T)
            noise = gp.likelihood.noise.reshape(self._m, 1).expand_as(y)
            K = K + torch.diag_embed(noise)
            self._L = psd_safe_cholesky(K)
            resid = (y - self._prior_mean(T)).unsqueeze(-1)
            self._alpha = torch.cholesky_solve(resid, self._L).squeeze(-1)  # (m, n)
        tf = gp.outcome_transform
        self._y_mean = tf.means.reshape(self._m).detach()
        self._y_std = tf.stdvs.reshape(self._m).detach()

    @property
    def gp(self) -> SingleTaskGP:
        """The fitted model whose posterior this is."""
        return self._gp

    @property
    def num_outputs(self) -> int:
        return self._m

    def noise_variance(self) -> torch.Tensor:
        """The fitted observation-noise variance of each output (m,), in its own units."""
        noise = self._gp.likelihood.noise.detach().reshape(-1)
        return noise.expand(self._m) * self._y_std**2

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    def _kernel(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """Covariances between (..., m, a, d) and (..., m, b, d): (..., m, a, b)."""
        # ``forward``: the kernel's formula on dense tensors, without the lazy wrapper
        # (most of a small call's cost)
        if self._m == 1:
            return self._gp.covar_module.forward(A.squeeze(-3), B.squeeze(-3)).unsqueeze(-3)
        return self._gp.covar_module.forward(A, B)

    def _prior_mean(self, A: torch.Tensor) -> torch.Tensor:
        """The prior mean at (m, a, d): (m, a)."""
        if self._m == 1:
            return self._gp.mean_module(A.squeeze(0)).reshape(1, -1)
        return self._gp.mean_module(A).reshape(self._m, -1)

    def _cross(self, R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (m, r) at rows R (r, d) and V = L^-1 K(T, R) (m, n, r)."""
        flat = R.unsqueeze(0).expand(self._m, *R.shape)
        K_xt = self._kernel(flat, self._train)  # (m, r, n)
        mean = self._prior_mean(flat) + (K_xt @ self._alpha.unsqueeze(-1)).squeeze(-1)
        V = torch.linalg.solve_triangular(self._L, K_xt.transpose(-1, -2), upper=False)
        return mean, V

    def _prior_cov(self, A: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        """Prior covariances of A (B, a, d) and C (B, c, d) in each batch: (m, B, a, c)."""
        m = self._m
        K = self._kernel(A.unsqueeze(-3).expand(A.shape[0], m, *A.shape[1:]),
                         C.unsqueeze(-3).expand(C.shape[0], m, *C.shape[1:]))
        return K.transpose(0, 1)

    def _latent(self, Xw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (m, B, q) and covariance (m, B, q, q) of the standardised latent outputs.

        Rows that are the same in every batch (qLogNEI's baseline and pending points, next
        to each candidate) are conditioned once, and only their covariance with each
        batch's own rows is computed per batch.
        """
        B, q, d = Xw.shape
        m = self._m
        same = (Xw == Xw[:1]).all(dim=-1).all(dim=0) if B > 1 else Xw.new_zeros(q, dtype=bool)
        if not same.any() or same.all():
            mean, V = self._cross(Xw.reshape(B * q, d))
            Vb = V.reshape(m, -1, B, q).permute(0, 2, 3, 1)  # (m, B, q, n)
            cov = self._prior_cov(Xw, Xw) - Vb @ Vb.transpose(-1, -2)
            return mean.reshape(m, B, q), cov
        s_idx, v_idx = same.nonzero().squeeze(-1), (~same).nonzero().squeeze(-1)
        S, Xv = Xw[0, s_idx], Xw[:, v_idx]  # (s, d), (B, v, d)
        s, v = len(s_idx), len(v_idx)
        mean_s, V_s = self._cross(S)  # (m, s), (m, n, s)
        mean_v, V_v = self._cross(Xv.reshape(B * v, d))  # (m, B v), (m, n, B v)
        Vvb = V_v.reshape(m, -1, B, v).permute(0, 2, 3, 1)  # (m, B, v, n)
        cov_ss = self._prior_cov(S[None], S[None]) - (V_s.transpose(-1, -2) @ V_s)[:, None]
        cross = (V_s.transpose(-1, -2) @ V_v).reshape(m, s, B, v).permute(0, 2, 1, 3)
        cov_sv = self._prior_cov(S.expand(B, s, d), Xv) - cross  # (m, B, s, v)
        cov_vv = self._prior_cov(Xv, Xv) - Vvb @ Vvb.transpose(-1, -2)
        cov = torch.cat([
            torch.cat([cov_ss.expand(m, B, s, s), cov_sv], dim=-1),
            torch.cat([cov_sv.transpose(-1, -2), cov_vv], dim=-1),
        ], dim=-2)
        mean = torch.cat([mean_s[:, None, :].expand(m, B, s), mean_v.reshape(m, B, v)], -1)
        back = torch.argsort(torch.cat([s_idx, v_idx]))  # to the rows' own order
        return mean[..., back], cov[..., back, :][..., back]

    def posterior(
        self,
        X: torch.Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | torch.Tensor = False,
        posterior_transform: PosteriorTransform | None = None,
    ) -> GPyTorchPosterior:
        """The joint posterior of the latent outputs at ``X`` (batch x q x d)."""
        if output_indices is not None or observation_noise is not False:
            raise NotImplementedError("ConditionedGP: latent posterior of all outputs only")
        batch, (q, d) = X.shape[:-2], X.shape[-2:]
        Xw = self._gp.transform_inputs(X).reshape(-1, q, d)  # (B, q, d)
        mean, cov = self._latent(Xw)  # (m, B, q), (m, B, q, q), standardised
        mean = mean * self._y_std[:, None, None] + self._y_mean[:, None, None]
        cov = cov * (self._y_std**2)[:, None, None, None]
        if isinstance(posterior_transform, ScalarizedPosteriorTransform):
            # independent outputs: a weighted sum is Gaussian with the weighted covariances,
            # one q x q matrix (the transform itself would build the joint (m q)^2 one)
            w = posterior_transform.weights.to(mean)
            mean = (w[:, None, None] * mean).sum(0) + posterior_transform.offset
            cov = ((w**2)[:, None, None, None] * cov).sum(0)
            return GPyTorchPosterior(
                MultivariateNormal(mean.reshape(*batch, q),
                                   DenseLinearOperator(cov.reshape(*batch, q, q)))
            )
        mvns = [
            # lazy: sampling factors it with jitter (candidates may repeat baseline points)
            MultivariateNormal(
                mean[t].reshape(*batch, q), DenseLinearOperator(cov[t].reshape(*batch, q, q))
            )
            for t in range(self._m)
        ]
        mvn = mvns[0] if self._m == 1 else MultitaskMultivariateNormal.from_independent_mvns(mvns)
        posterior = GPyTorchPosterior(mvn)
        return posterior_transform(posterior) if posterior_transform is not None else posterior


def moments_sampler() -> SobolQMCNormalSampler:
    """The quasi-MC sampler of a non-linear criterion's posterior moments (fixed seed)."""
    return SobolQMCNormalSampler(torch.Size([MC_SAMPLES_FOR_MOMENTS]), seed=0)


def _exact_posterior(
    model: Model, X: np.ndarray, composite: Composite | None
) -> GPyTorchPosterior | None:
    """The Gaussian posterior of the maximised objective at ``X`` (..., q, d) where it is exact
    (one output, the mean criterion), else None."""
    transform = composite.posterior_transform() if composite else None
    if composite is not None and transform is None:
        return None
    return model.posterior(torch.as_tensor(X, dtype=DTYPE), posterior_transform=transform)


def _objective_samples(model: Model, X: np.ndarray, composite: Composite) -> torch.Tensor:
    """Quasi-MC samples of a composite model's maximised objective at ``X`` (..., q, d):
    (samples, ..., q), under the fixed seed of :func:`moments_sampler`."""
    post = model.posterior(torch.as_tensor(X, dtype=DTYPE))
    return composite.mc_objective()(moments_sampler()(post))


def posterior_mean_std(
    model: Model, X: np.ndarray, composite: Composite | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std (each (r,)) of the latent (noise-free) maximised objective at
    the rows of ``X`` (r, d).

    Exact for one output and for the mean criterion; by quasi-MC over the outputs' joint
    posterior at each point for the others (max, median).
    """
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # linear_operator's jitter notices
        post = _exact_posterior(model, X, composite)
        if post is not None:
            return (
                post.mean.squeeze(-1).numpy(),
                post.variance.clamp_min(0).sqrt().squeeze(-1).numpy(),
            )
        assert composite is not None
        # each point alone: marginals per point
        values = _objective_samples(model, X[:, None, :], composite).squeeze(-1)  # (samples, r)
        return values.mean(dim=0).numpy(), values.std(dim=0).numpy()


def posterior_change_mean_std(
    model: Model, x_base: np.ndarray, X: np.ndarray, composite: Composite | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std (each (r,)) of the latent maximised objective's change from
    ``x_base`` (d,) to each row of ``X`` (r, d): objective(X[i]) - objective(x_base).

    From the joint posterior of each pair (x_base, X[i]): near points are strongly
    correlated, so the std of a small step is far below sqrt(2) times the marginal std (their
    covariance cancels most of it). Exact for one output and for the mean criterion; by
    quasi-MC over the joint posterior of the pair's outputs for the others (max, median).
    """
    pairs = np.stack([np.broadcast_to(x_base, X.shape), X], axis=-2)  # (r, 2, d)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # linear_operator's jitter notices
        post = _exact_posterior(model, pairs, composite)
        if post is not None:
            mean = post.mean.squeeze(-1)  # (r, 2)
            cov = post.mvn.covariance_matrix  # (r, 2, 2)
            var = cov[:, 0, 0] + cov[:, 1, 1] - 2.0 * cov[:, 0, 1]
            return (mean[:, 1] - mean[:, 0]).numpy(), var.clamp_min(0).sqrt().numpy()
        assert composite is not None
        values = _objective_samples(model, pairs, composite)  # (samples, r, 2)
        change = values[..., 1] - values[..., 0]
        return change.mean(dim=0).numpy(), change.std(dim=0).numpy()
