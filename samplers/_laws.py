"""Mixing laws: per-domain loss as a function of the mixture, fitted to evaluated trials.

Each law is fitted to ``R`` (n mixtures, shape (n, k)) and ``Y`` (their losses on m
validation sets, shape (n, m)), one output at a time, and predicts those losses for any
mixtures. The validation sets are usually the k training domains, but need not be (a held-out
web set, a downstream task): ``dml`` and ``regmix`` model any output over the k weights;
``bimix`` ties output i to domain i's own weight and needs m = k (``per_domain = True``).

- ``bimix``: L_i = B_i * r_i^(-b_i), the form the seed used for BiMix (Ge et al. 2024 without
  the training-steps factor, which is constant at a fixed token budget). Linear in log space:
  log L_i = log B_i - b_i log r_i, fitted by least squares on the trials with r_i > 0;
  b_i is held >= 0 (more of a domain's own data never hurts it).
- ``dml``: Data Mixing Laws (Ye et al. 2024), L_i = c_i + k_i * exp(sum_j t_ij r_j). Since
  sum_j r_j = 1, adding a constant to a row t_i. only rescales k_i; the fit fixes that gauge
  with sum_j t_ij = 0. Least squares (scipy, Levenberg-Marquardt with the analytic Jacobian) over
  (c_i, k_i, t_i.) from several log-linear starts; exponents are clipped to +-50 against
  overflow.
- ``regmix``: RegMix (Liu et al. 2024) regresses the loss on the mixture; here a Scheffé
  quadratic mixture model (sum_i a_i r_i + sum_{i<j} a_ij r_i r_j) with a ridge penalty on the
  interaction terms, its strength picked per domain by exact leave-one-out error.

Every law reports R^2 per domain on the data it was fitted to and leave-one-out predictions:
exact (hat-matrix) for bimix and regmix, exact refits (warm-started) for dml.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from scipy.optimize import least_squares

LAWS = ("bimix", "dml", "regmix")
R_MIN = 1e-6  # bimix: weights below this are "absent" (the law would predict infinite loss)
EXP_CLIP = 50.0
RIDGE_GRID = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class LawFitError(ValueError):
    """The law cannot be fitted to these trials (too few, degenerate or singular)."""


def _finite(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def r_squared(y: np.ndarray, pred: np.ndarray) -> float:
    mask = np.isfinite(pred) & np.isfinite(y)
    if mask.sum() < 2:
        return float("nan")
    y, pred = y[mask], pred[mask]
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum((y - pred) ** 2))
    if ss_tot <= 0.0:
        return 1.0 if ss_res <= 1e-24 else float("nan")
    return 1.0 - ss_res / ss_tot


def _hat_diagonal(A: np.ndarray, penalty: np.ndarray | None = None) -> np.ndarray:
    """diag(A (A^T A + P)^-1 A^T), via a least-squares solve (pseudo-inverse if singular)."""
    gram = A.T @ A + (penalty if penalty is not None else 0.0)
    inv = np.linalg.pinv(gram)
    return np.einsum("ij,jk,ik->i", A, inv, A)


def _loo_from_hat(y: np.ndarray, fitted: np.ndarray, h: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = y - (y - fitted) / (1.0 - h)
    out[~np.isfinite(out) | (h > 1.0 - 1e-9)] = np.nan
    return out


class Law:
    """A fitted-or-not mixing law: m losses over the weights of k domains."""

    name = ""
    loo_method = ""
    per_domain = False  # True: output i is domain i's own loss (m = k, in domain order)

    def min_trials(self, k: int) -> int:
        raise NotImplementedError

    def fit(self, R: np.ndarray, Y: np.ndarray, *, loo: bool = True) -> Law:
        """Fit to mixtures ``R`` and losses ``Y``; ``loo=False`` skips the leave-one-out."""
        R, Y = np.asarray(R, float), np.asarray(Y, float)
        n, k = R.shape
        if Y.ndim != 2 or len(Y) != n or (self.per_domain and Y.shape[1] != k):
            want = f"({n}, {k}): one per domain" if self.per_domain else f"({n}, m)"
            raise LawFitError(f"losses have shape {Y.shape}, mixtures {R.shape}; need {want}")
        if n < self.min_trials(k):
            raise LawFitError(
                f"{self.name} needs at least {self.min_trials(k)} trials with per-domain "
                f"losses, has {n}"
            )
        if not np.all(np.isfinite(Y)):
            raise LawFitError("non-finite per-domain losses")
        self.k = k
        self._fit(R, Y)
        self.fitted = self.predict(R)
        self.loo = self._loo(R, Y) if loo else np.full_like(Y, np.nan)
        self.r2 = np.array([r_squared(Y[:, i], self.fitted[:, i]) for i in range(Y.shape[1])])
        return self

    def _fit(self, R: np.ndarray, Y: np.ndarray) -> None:
        raise NotImplementedError

    def _loo(self, R: np.ndarray, Y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, R: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self, domains: list[str] | tuple[str, ...],
                 outputs: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        """The fitted parameters by name: ``outputs`` (default: the domains) are the rows."""
        raise NotImplementedError


class BiMixLaw(Law):
    """L_i = B_i * r_i^(-b_i), least squares in log space."""

    name = "bimix"
    loo_method = "exact (hat matrix of the log-space least squares)"
    per_domain = True

    def min_trials(self, k: int) -> int:
        return 3

    def _fit(self, R: np.ndarray, Y: np.ndarray) -> None:
        if np.any(Y <= 0):
            raise LawFitError("bimix needs positive losses (it is fitted in log space)")
        n, k = R.shape
        self.log_B = np.empty(k)
        self.b = np.empty(k)
        self._design: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(k):
            mask = R[:, i] > R_MIN
            if mask.sum() < 3:
                raise LawFitError(f"domain {i}: fewer than 3 trials with a positive weight")
            x = np.log(R[mask, i])
            if np.ptp(x) < 1e-9:
                raise LawFitError(f"domain {i}: every trial has the same weight (singular fit)")
            z = np.log(Y[mask, i])
            A = np.column_stack([np.ones_like(x), -x])
            coef, *_ = np.linalg.lstsq(A, z, rcond=None)
            if coef[1] < 0:  # more own data would hurt: hold b_i at 0, a constant loss
                A = A[:, :1]
                coef = np.array([z.mean(), 0.0])
            self.log_B[i], self.b[i] = coef
            self._design.append((mask, A, z))

    def predict(self, R: np.ndarray) -> np.ndarray:
        r = np.clip(np.asarray(R, float), R_MIN, 1.0)
        return np.exp(self.log_B - self.b * np.log(r))

    def _loo(self, R: np.ndarray, Y: np.ndarray) -> np.ndarray:
        n, k = R.shape
        out = np.full((n, k), np.nan)
        for i, (mask, A, z) in enumerate(self._design):
            coef = np.array([self.log_B[i], self.b[i]])[: A.shape[1]]
            fitted = A @ coef
            out[mask, i] = np.exp(_loo_from_hat(z, fitted, _hat_diagonal(A)))
        return out

    def describe(self, domains: list[str] | tuple[str, ...],
                 outputs: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        return {
            "form": "L_i = B_i * r_i^-b_i",
            "B": {d: _finite(np.exp(v)) for d, v in zip(domains, self.log_B)},
            "b": {d: _finite(v) for d, v in zip(domains, self.b)},
        }


def _gauge_basis(k: int) -> np.ndarray:
    """An orthonormal basis (k, k-1) of the vectors summing to zero."""
    q, _ = np.linalg.qr(np.column_stack([np.ones(k), np.eye(k)[:, : k - 1]]))
    return q[:, 1:]


def _law_basis(k: int, free: int) -> np.ndarray:
    """The exponent's basis (k, k-1): the gauge basis of the first k - free columns (weights,
    summing to one), the identity on the last ``free`` (inputs of their own, e.g. log size)."""
    P = np.zeros((k, k - 1))
    P[: k - free, : k - free - 1] = _gauge_basis(k - free)
    P[k - free:, k - free - 1:] = np.eye(free)
    return P


class DataMixingLaw(Law):
    """L_i = c_i + k_i * exp(t_i . r), sum_j t_ij = 0 (the gauge k_i absorbs).

    ``free_columns``: the last columns of ``r`` that are no weights (e.g. the log model size
    of a scale-aware study: ``L_i = c_i + k_i exp(t_i . w + s_i u)``, the nested form in which
    a domain's reducible loss falls as a power of the model size); the gauge holds only on
    the weights. A loss never grows along a free column (``k_i s_i <= 0``: a larger model
    does not fit worse): an output whose fit has it grow is refitted without that column, so
    that noise at a few trials of a second size cannot make the law extrapolate upwards,
    without bound, to a size far beyond them.
    """

    name = "dml"
    loo_method = "exact (warm-started refits)"

    def __init__(self, *, loo_time_budget: float = 0.15, free_columns: int = 0) -> None:
        self.loo_time_budget = loo_time_budget
        self.free_columns = int(free_columns)

    def min_trials(self, k: int) -> int:
        return k + 2  # k+1 parameters per domain, and one more to judge the fit

    @staticmethod
    def _linear(G: np.ndarray, y: np.ndarray) -> np.ndarray:
        A = np.column_stack([np.ones_like(G), G])
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        return coef

    def _solve(self, RP: np.ndarray, y: np.ndarray, theta0: np.ndarray, max_nfev: int):
        """Least squares over theta = (c, k, z) with the analytic Jacobian (MINPACK LM)."""

        def residual(theta: np.ndarray) -> np.ndarray:
            G = np.exp(np.clip(RP @ theta[2:], -EXP_CLIP, EXP_CLIP))
            return theta[0] + theta[1] * G - y

        def jacobian(theta: np.ndarray) -> np.ndarray:
            G = np.exp(np.clip(RP @ theta[2:], -EXP_CLIP, EXP_CLIP))
            return np.column_stack([np.ones_like(G), G, (theta[1] * G)[:, None] * RP])

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                return least_squares(residual, theta0, jac=jacobian, method="lm", max_nfev=max_nfev)
            except (ValueError, np.linalg.LinAlgError):
                return None

    def _starts(self, R: np.ndarray, y: np.ndarray, basis: np.ndarray) -> list[np.ndarray]:
        """Log-linear fits log(y - c0) = a + u.r for a few floors c0 below the data.

        The exponent's gauge part (u's mean) goes into k; (c, k) is then refitted linearly.
        """
        spread = float(np.ptp(y)) + 1e-3
        RP = R @ basis
        starts = []
        A = np.column_stack([np.ones(len(y)), R])
        for delta in (0.1, 0.5, 2.0):
            c0 = float(y.min()) - delta * spread
            u, *_ = np.linalg.lstsq(A, np.log(y - c0), rcond=None)
            z = basis.T @ u[1:]
            G = np.exp(np.clip(RP @ z, -EXP_CLIP, EXP_CLIP))
            starts.append(np.concatenate([self._linear(G, y), z]))
        return starts

    def _fit(self, R: np.ndarray, Y: np.ndarray) -> None:
        n, k = R.shape
        if k - self.free_columns < 2:
            raise LawFitError(f"dml: {k - self.free_columns} weight columns; a mixture has 2+")
        P = _law_basis(k, self.free_columns)
        self._bases: list[np.ndarray] = []  # per output: the exponent's basis (k, <= k-1)
        self._thetas: list[np.ndarray] = []  # per output: (c, k, z), t = z @ basis.T
        for i in range(Y.shape[1]):
            basis = P
            theta = self._fit_output(R @ basis, R, basis, Y[:, i])
            rising = [j for j in range(k - self.free_columns - 1, k - 1)
                      if theta[1] * theta[2 + j] > 0]
            if rising:  # a loss that grows with the free column: refitted without it
                basis = np.delete(P, rising, axis=1)
                theta = self._fit_output(R @ basis, R, basis, Y[:, i])
            self._bases.append(basis)
            self._thetas.append(theta)
        self.c = np.array([th[0] for th in self._thetas])
        self.kk = np.array([th[1] for th in self._thetas])
        self.t = np.array([th[2:] @ b.T for th, b in zip(self._thetas, self._bases)])  # (m, k)
        if not (np.all(np.isfinite(self.t)) and np.all(np.isfinite(self.c))):
            raise LawFitError("dml: singular fit (non-finite parameters)")

    def _fit_output(self, RP: np.ndarray, R: np.ndarray, basis: np.ndarray,
                    y: np.ndarray) -> np.ndarray:
        """(c, k, z) of one output: the best of the log-linear starts' least-squares fits."""
        best = None
        for theta0 in self._starts(R, y, basis):
            result = self._solve(RP, y, theta0, max_nfev=400)
            if result is not None and np.all(np.isfinite(result.x)):
                if best is None or result.cost < best.cost:
                    best = result
        if best is None:
            raise LawFitError("dml: least squares did not converge (singular fit)")
        return best.x

    def predict(self, R: np.ndarray) -> np.ndarray:
        R = np.asarray(R, float)
        return self.c + self.kk * np.exp(np.clip(R @ self.t.T, -EXP_CLIP, EXP_CLIP))

    def _loo(self, R: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Refit without each trial (warm start); out of time: first-order for the rest."""
        n, m = Y.shape
        RPs = [R @ b for b in self._bases]
        out = np.full((n, m), np.nan)
        deadline = time.perf_counter() + self.loo_time_budget
        refits = 0
        for j in range(n):
            if self.loo_time_budget <= 0 or time.perf_counter() > deadline:
                break
            keep = np.arange(n) != j
            for i in range(m):
                RP, theta0 = RPs[i], self._thetas[i]
                result = self._solve(RP[keep], Y[keep, i], theta0, max_nfev=100)
                theta = result.x if result is not None else theta0
                out[j, i] = theta[0] + theta[1] * np.exp(
                    np.clip(RP[j] @ theta[2:], -EXP_CLIP, EXP_CLIP)
                )
            refits += 1
        if refits < n:  # the rest: first-order (hat matrix of the Jacobian at the fit)
            for i in range(m):
                RP, theta = RPs[i], self._thetas[i]
                G = np.exp(np.clip(RP @ theta[2:], -EXP_CLIP, EXP_CLIP))
                J = np.column_stack([np.ones(n), G, (theta[1] * G)[:, None] * RP])
                approx = _loo_from_hat(Y[:, i], self.fitted[:, i], _hat_diagonal(J))
                out[refits:, i] = approx[refits:]
            self.loo_method = (
                f"exact refits for {refits} of {n} trials, first-order (Jacobian hat matrix) "
                "for the rest"
            )
        return out

    def describe(self, domains: list[str] | tuple[str, ...],
                 outputs: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        outputs = domains if outputs is None else outputs
        return {
            "form": "L_i = c_i + k_i * exp(sum_j t_ij r_j), sum_j t_ij = 0",
            "c": {d: _finite(v) for d, v in zip(outputs, self.c)},
            "k": {d: _finite(v) for d, v in zip(outputs, self.kk)},
            "t": {
                d: {e: _finite(v) for e, v in zip(domains, row)}
                for d, row in zip(outputs, self.t)
            },
        }


def scheffe_features(R: np.ndarray) -> np.ndarray:
    """[r_1..r_k, r_i r_j for i < j]: the Scheffé quadratic mixture model's terms."""
    R = np.atleast_2d(np.asarray(R, float))
    iu, ju = np.triu_indices(R.shape[1], 1)
    return np.hstack([R, R[:, iu] * R[:, ju]])


class RegMixLaw(Law):
    """Ridge regression of each domain's loss on Scheffé quadratic mixture terms."""

    name = "regmix"
    loo_method = "exact (hat matrix of the ridge regression)"

    def min_trials(self, k: int) -> int:
        return k + 2

    def _fit(self, R: np.ndarray, Y: np.ndarray) -> None:
        n, k = R.shape
        Phi = scheffe_features(R)
        p = Phi.shape[1]
        D = np.diag([0.0] * k + [1.0] * (p - k))  # the linear terms (incl. the level) are free
        if np.linalg.matrix_rank(Phi[:, :k]) < k:
            raise LawFitError("regmix: the trials' mixtures do not span the simplex (singular)")
        m = Y.shape[1]
        self.coef = np.empty((m, p))
        self.alpha = np.empty(m)
        self._loo_pred = np.empty((n, m))
        # with fewer trials than terms the interactions must be penalised
        grid = [a for a in RIDGE_GRID if a > 0 or n > p + 1]
        for i in range(m):
            y = Y[:, i]
            best = (np.inf, None, None, None)
            for alpha in grid:
                gram = Phi.T @ Phi + alpha * D
                coef = np.linalg.lstsq(gram, Phi.T @ y, rcond=None)[0]
                fitted = Phi @ coef
                loo = _loo_from_hat(y, fitted, _hat_diagonal(Phi, alpha * D))
                err = float(np.nanmean((loo - y) ** 2)) if np.any(np.isfinite(loo)) else np.inf
                if err < best[0]:
                    best = (err, alpha, coef, loo)
            if best[2] is None:
                raise LawFitError("regmix: singular regression")
            _, self.alpha[i], self.coef[i], self._loo_pred[:, i] = best

    def predict(self, R: np.ndarray) -> np.ndarray:
        return scheffe_features(R) @ self.coef.T

    def _loo(self, R: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return self._loo_pred

    def describe(self, domains: list[str] | tuple[str, ...],
                 outputs: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        outputs = domains if outputs is None else outputs
        k = len(domains)
        iu, ju = np.triu_indices(k, 1)
        terms = list(domains) + [f"{domains[a]}*{domains[b]}" for a, b in zip(iu, ju)]
        return {
            "form": "L_i = sum_j a_ij r_j + sum_{j<l} a_ijl r_j r_l (ridge on interactions)",
            "ridge": {d: float(a) for d, a in zip(outputs, self.alpha)},
            "coef": {
                d: {term: _finite(v) for term, v in zip(terms, row)}
                for d, row in zip(outputs, self.coef)
            },
        }


def make_law(name: str) -> Law:
    if name == "bimix":
        return BiMixLaw()
    if name == "dml":
        return DataMixingLaw()
    if name == "regmix":
        return RegMixLaw()
    raise ValueError(f"unknown mixing law {name!r} (choose from {', '.join(LAWS)})")
