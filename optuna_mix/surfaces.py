"""Analytic benchmark objectives: mixture -> per-domain losses with a known optimum.

They let samplers be compared in seconds instead of GPU-days. Every family is drawn from a
seed for any number of domains k; its losses are on m validation sets (``outputs``), the
training domains themselves (m = k) except for ``heldout``:

- ``dml``, the Data Mixing Laws form (Ye et al. 2024): L_i = c_i + k_i * exp(sum_j t_ij w_j),
  with t_ii < 0 (own data helps) and mostly negative, sometimes positive, transfer t_ij.
- ``powerlaw``, power law with transfer: L_i = a_i + b_i * (eps + sum_j T_ij w_j)^(-alpha_i),
  with T_ii = 1 and sparse partial transfer 0 <= T_ij < 1 (the effective data of domain i).
- ``relu``, piecewise linear, a random one-layer ReLU network over the weights:
  L_i = a_i + b_i * relu(1 - w_i / tau_i) + sum_h V_ih relu(u_h . w - c_h): own data helps
  until it saturates at tau_i, plus kinked cross-domain effects; the optimum sits on a kink,
  where no smooth law has its minimum.
- ``interaction``, the power law plus strong pairwise terms: L_i = powerlaw_i(w) +
  sum_{j<l} Q_ijl w_j w_l, with Q_ijl of either sign for a third of the pairs (two domains that
  help or hurt each other together more than apart), which no per-domain law can express.
- ``heldout``, validation sets that are no training domain (a held-out web set, a downstream
  task): L_v = a_v + b_v * (eps + sum_j A_vj w_j)^(-alpha_v), each set drawing on a Dirichlet
  blend A_v of the domains; m = len(outputs) (default 3) need not be k.

``noise`` is the standard deviation of the *mean* criterion: each loss gets independent
Gaussian noise of sigma * sqrt(m), as a trial's run-to-run noise would show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optuna_mix.samplers.criteria import Criterion, as_criterion, criterion_key
from optuna_mix.samplers import minimize_on_simplex, sobol_simplex_points

POWERLAW_EPS = 0.02
FAMILIES = ("dml", "powerlaw", "relu", "interaction", "heldout")
HELDOUT_OUTPUTS = ("heldout0", "heldout1", "heldout2")
_OPTIMA: dict[tuple[str, tuple[str, ...], int, str], tuple[np.ndarray, float]] = {}


def _powerlaw(p: dict[str, np.ndarray], w: np.ndarray, transfer: str = "T") -> np.ndarray:
    return p["a"] + p["b"] * (POWERLAW_EPS + w @ p[transfer].T) ** (-p["alpha"])


@dataclass(frozen=True)
class Surface:
    """A seeded analytic loss surface over ``domains``."""

    family: str
    domains: tuple[str, ...]
    params: dict[str, np.ndarray] = field(repr=False)
    noise: float = 0.0
    seed: int = 0
    outputs: tuple[str, ...] = ()  # the validation sets; () means the domains

    def __post_init__(self) -> None:
        if not self.outputs:
            object.__setattr__(self, "outputs", self.domains)

    @property
    def k(self) -> int:
        return len(self.domains)

    @property
    def m(self) -> int:
        return len(self.outputs)

    def losses(self, w: np.ndarray) -> np.ndarray:
        """Noise-free losses (..., m) on the validation sets for weights of shape (..., k)."""
        w = np.asarray(w, dtype=float)
        p = self.params
        if self.family == "dml":
            return p["c"] + p["k"] * np.exp(w @ p["t"].T)
        if self.family == "relu":
            own = p["b"] * np.maximum(0.0, 1.0 - w / p["tau"])
            hidden = np.maximum(0.0, w @ p["U"].T - p["c"])
            return p["a"] + own + hidden @ p["V"].T
        if self.family == "interaction":
            iu, ju = np.triu_indices(self.k, 1)
            pairs = w[..., iu] * w[..., ju]
            return _powerlaw(p, w) + pairs @ p["Q"].T
        if self.family == "heldout":
            return _powerlaw(p, w, transfer="A")
        return _powerlaw(p, w)

    def noisy_losses(self, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        clean = self.losses(w)
        if self.noise <= 0:
            return clean
        return clean + rng.normal(0.0, self.noise * np.sqrt(self.m), size=clean.shape)

    def value(self, w: np.ndarray, criterion: str | Criterion = "mean") -> np.ndarray | float:
        """The noise-free criterion of the losses at ``w`` (vectorised over leading axes)."""
        return as_criterion(criterion)(self.losses(w))

    def optimum(self, criterion: str | Criterion = "mean") -> tuple[np.ndarray, float]:
        """The minimiser on the simplex and its value (multi-start SLSQP, cached per process).

        A surface is fixed by (family, k, seed), so every study on it shares one solve.
        """
        key = (self.family, self.domains + ("|",) + self.outputs, self.seed,
               criterion_key(criterion))
        if key not in _OPTIMA:
            _OPTIMA[key] = self._solve(criterion)
        w, v = _OPTIMA[key]
        return w.copy(), v

    def regret(self, w: np.ndarray, criterion: str | Criterion = "mean") -> float:
        return float(self.value(w, criterion)) - self.optimum(criterion)[1]

    def _solve(self, criterion: str | Criterion) -> tuple[np.ndarray, float]:
        candidates = sobol_simplex_points(self.k, 4096, seed=self.seed)
        values = self.value(candidates, criterion)
        order = np.argsort(values)[:16]
        starts = np.vstack([candidates[order], np.full(self.k, 1.0 / self.k)])
        return minimize_on_simplex(lambda x: float(self.value(x, criterion)), starts)


def make_surface(
    family: str,
    domains: int | list[str] | tuple[str, ...],
    *,
    seed: int = 0,
    noise: float = 0.0,
    outputs: list[str] | tuple[str, ...] | None = None,
) -> Surface:
    """Draw a surface of ``family`` (one of :data:`FAMILIES`) over ``domains`` (names or a
    count); ``outputs`` names the validation sets of ``heldout`` (others: the domains)."""
    names = tuple(f"d{i}" for i in range(domains)) if isinstance(domains, int) else tuple(domains)
    k = len(names)
    if k < 2:
        raise ValueError(f"a surface needs at least 2 domains, got {k}")
    if family not in FAMILIES:
        raise ValueError(f"unknown surface family {family!r} (choose from {', '.join(FAMILIES)})")
    if outputs is not None and family != "heldout" and tuple(outputs) != names:
        raise ValueError(f"a {family} surface's validation sets are its domains; only "
                         "heldout takes other outputs")
    sets = tuple(outputs) if outputs else (HELDOUT_OUTPUTS if family == "heldout" else names)
    if len(set(sets)) != len(sets):
        raise ValueError(f"validation set names must be distinct, got {', '.join(sets)}")
    rng = np.random.default_rng([seed, k, FAMILIES.index(family)])
    off = ~np.eye(k, dtype=bool)
    if family == "dml":
        t = np.where(
            rng.random((k, k)) < 0.7, -rng.uniform(0.0, 1.2, (k, k)), rng.uniform(0.0, 0.4, (k, k))
        )
        t[~off] = -rng.uniform(1.5, 3.5, k)
        params = {"c": rng.uniform(2.0, 3.5, k), "k": rng.uniform(0.6, 1.6, k), "t": t}
    elif family in ("powerlaw", "interaction"):
        T = np.where(rng.random((k, k)) < 0.4, rng.uniform(0.05, 0.6, (k, k)), 0.0)
        T[~off] = 1.0
        params = {
            "a": rng.uniform(2.0, 3.5, k),
            "b": rng.uniform(0.2, 0.8, k),
            "alpha": rng.uniform(0.2, 0.6, k),
            "T": T,
        }
        if family == "interaction":
            n_pairs = k * (k - 1) // 2
            strength = rng.uniform(0.5, 2.0, (k, n_pairs)) * rng.choice([-1.0, 1.0], (k, n_pairs))
            params["Q"] = np.where(rng.random((k, n_pairs)) < 1 / 3, strength, 0.0)
    elif family == "relu":
        hidden = 2 * k
        params = {
            "a": rng.uniform(2.0, 3.5, k),
            "b": rng.uniform(0.3, 1.0, k),
            "tau": rng.uniform(1.0, 3.0, k) / k,  # own data saturates at 1-3 times uniform
            "U": rng.normal(0.0, 2.0, (hidden, k)),
            "c": rng.uniform(-0.5, 0.5, hidden),
            "V": rng.normal(0.0, 0.15, (k, hidden)),
        }
    else:  # heldout
        m = len(sets)
        params = {
            "a": rng.uniform(2.0, 3.5, m),
            "b": rng.uniform(0.2, 0.8, m),
            "alpha": rng.uniform(0.2, 0.6, m),
            "A": rng.dirichlet(np.full(k, 0.5), size=m),
        }
    return Surface(family, names, params, float(noise), seed, outputs=sets)
