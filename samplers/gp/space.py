"""The GP's input space: declared mixtures as simplex blocks, other parameters as columns.

The encoding of trials' parameters as rows of X (n, d) and back.

Every column lies in [0, 1]:

- a mixture of k domains is k columns, its raw weights (``coordinates="weights"``, the
  default: symmetric in the domains, faces and edges at finite, reachable places, one linear
  equality constraint) or its first k-1 weights (``coordinates="first"``, the seed's choice:
  the last weight is implicit, one inequality constraint sum <= 1);
- a float or int parameter is one column, its value (its log where the distribution is log)
  scaled to [0, 1]; steps and ints are rounded back onto their grid when decoded;
- a categorical parameter is one-hot columns; the acquisition search keeps them exact
  one-hots (raw candidates draw them, the gradient refinement holds them fixed);
- a declared scale (``optuna_mix.suggest_scale``: a categorical over model sizes) is one
  column, the log size scaled to [0, 1] between the smallest size and the largest of the
  sizes and the target (:meth:`EncodedSpace.unit_of_size`); it decodes to the nearest size
  a trial may train at, so the target itself (u = 1 where it is the largest) is a point the
  model predicts at, never one a trial is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_mix.samplers._scale import Scale
from optuna_mix.samplers._simplex import (
    Mixture,
    mixtures_in,
    normalise_weights,
    project_to_simplex,
)

COORDINATES = ("weights", "first")
# weights below this are snapped to exactly zero: a domain at 1e-4 of the budget is no domain
# (docs/gp.md, "How it works, and why")
ZERO_WEIGHT = 1e-4


@dataclass(frozen=True)
class Block:
    kind: str  # "mixture" | "numeric" | "categorical" | "scale"
    names: tuple[str, ...]  # parameter names (k for a mixture, 1 otherwise)
    start: int  # first column
    width: int  # number of columns
    distribution: BaseDistribution | None = None
    mixture: Mixture | None = None
    log_range: tuple[float, float] | None = None  # a scale: log sizes at u = 0 and u = 1

    @property
    def columns(self) -> list[int]:
        return list(range(self.start, self.start + self.width))


class EncodedSpace:
    """The map between Optuna parameters and the GP's input columns."""

    def __init__(
        self,
        mixtures: Sequence[Mixture],
        others: Mapping[str, BaseDistribution],
        coordinates: str = "weights",
        scales: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        """``scales``: the scale parameters among ``others``, name -> (smallest, largest)
        model size of their column (the largest: of the sizes and the target)."""
        scales = dict(scales or {})
        if coordinates not in COORDINATES:
            raise ValueError(f"coordinates must be one of {COORDINATES}, not {coordinates!r}")
        self.coordinates = coordinates
        blocks: list[Block] = []
        col = 0
        for m in mixtures:
            width = m.k if coordinates == "weights" else m.k - 1
            blocks.append(Block("mixture", tuple(m.param_names), col, width, mixture=m))
            col += width
        for name, dist in others.items():
            if name in scales:
                lo, hi = (math.log(float(v)) for v in scales[name])
                width = 1
                blocks.append(Block("scale", (name,), col, width, dist, log_range=(lo, hi)))
            elif isinstance(dist, CategoricalDistribution):
                width = len(dist.choices)
                blocks.append(Block("categorical", (name,), col, width, dist))
            else:
                width = 1
                blocks.append(Block("numeric", (name,), col, width, dist))
            col += width
        self.blocks = blocks
        self.dim = col

    # -- structure --------------------------------------------------------------------
    @property
    def mixture_blocks(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "mixture"]

    @property
    def categorical_blocks(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "categorical"]

    @property
    def scale_blocks(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "scale"]

    @staticmethod
    def unit_of_size(b: Block, size: float) -> float:
        """The column value of model size ``size`` in scale block ``b`` (beyond [0, 1] for a
        size outside the block's range: the model extrapolates there)."""
        assert b.log_range is not None
        lo, hi = b.log_range
        return 0.5 if hi <= lo else (math.log(float(size)) - lo) / (hi - lo)

    @staticmethod
    def nearest_size(b: Block, u: float) -> float:
        """The size a trial may train at (a choice of ``b``) nearest to column value ``u``."""
        assert isinstance(b.distribution, CategoricalDistribution)
        sizes = [float(c) for c in b.distribution.choices]
        return min(sizes, key=lambda s: abs(EncodedSpace.unit_of_size(b, s) - u))

    @property
    def param_names(self) -> list[str]:
        return [n for b in self.blocks for n in b.names]

    def linear_constraints(self) -> tuple[list, list]:
        """(equalities, inequalities) as (indices, coefficients, rhs) over the columns."""
        eq, ineq = [], []
        for b in self.mixture_blocks:
            idx = list(range(b.start, b.start + b.width))
            if self.coordinates == "weights":
                eq.append((idx, [1.0] * b.width, 1.0))
            else:  # sum <= 1  <=>  -sum >= -1 (BoTorch's inequalities are >=)
                ineq.append((idx, [-1.0] * b.width, -1.0))
        return eq, ineq

    # -- encode -------------------------------------------------------------------------
    def has_all(self, params: Mapping[str, Any]) -> bool:
        return all(n in params for n in self.param_names)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        x = np.zeros(self.dim)
        for b in self.blocks:
            if b.kind == "mixture":
                w = normalise_weights([params[n] for n in b.names])
                x[b.start : b.start + b.width] = w[: b.width]
            elif b.kind == "numeric":
                x[b.start] = _to_unit(b.distribution, params[b.names[0]])
            elif b.kind == "scale":
                x[b.start] = self.unit_of_size(b, params[b.names[0]])
            else:
                dist = b.distribution
                assert isinstance(dist, CategoricalDistribution)
                x[b.start + dist.to_internal_repr(params[b.names[0]])] = 1.0
        return x

    # -- decode -------------------------------------------------------------------------
    def weights(self, x: np.ndarray, b: Block) -> np.ndarray:
        """The exact simplex point of mixture block ``b`` in column vector ``x``."""
        cols = np.clip(np.asarray(x[b.start : b.start + b.width], dtype=float), 0.0, 1.0)
        if self.coordinates == "first":
            cols = np.append(cols, max(0.0, 1.0 - cols.sum()))
        w = project_to_simplex(cols)
        if np.any((w > 0) & (w < ZERO_WEIGHT)):
            w = project_to_simplex(np.where(w < ZERO_WEIGHT, 0.0, w))
        return w

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for b in self.blocks:
            if b.kind == "mixture":
                params.update(zip(b.names, (float(v) for v in self.weights(x, b))))
            elif b.kind == "numeric":
                params[b.names[0]] = _from_unit(b.distribution, float(x[b.start]))
            elif b.kind == "scale":
                params[b.names[0]] = self.nearest_size(b, float(x[b.start]))
            else:
                dist = b.distribution
                assert isinstance(dist, CategoricalDistribution)
                i = int(np.argmax(x[b.start : b.start + b.width]))
                params[b.names[0]] = dist.to_external_repr(i)
        return params

    def snap(self, x: np.ndarray) -> np.ndarray:
        """The column vector of the parameters ``x`` decodes to (exact simplex, grid, one-hot)."""
        return self.encode(self.decode(x))

    def snap_many(self, X: np.ndarray) -> np.ndarray:
        """:meth:`snap` for the rows of ``X``, vectorised (mixture blocks exact to the last bit
        after :meth:`decode`; this is the cheap version for scoring candidates)."""
        X = np.clip(np.array(X, dtype=float), 0.0, 1.0)
        for b in self.blocks:
            cols = slice(b.start, b.start + b.width)
            if b.kind == "mixture":
                W = X[:, cols]
                if self.coordinates == "first":
                    W = np.hstack([W, np.clip(1.0 - W.sum(1, keepdims=True), 0.0, 1.0)])
                W = _normalise_rows(W)
                W = _normalise_rows(np.where(W < ZERO_WEIGHT, 0.0, W))
                X[:, cols] = W[:, : b.width]
            elif b.kind == "numeric":
                X[:, b.start] = [_to_unit(b.distribution, _from_unit(b.distribution, u))
                                 for u in X[:, b.start]]
            elif b.kind == "scale":
                X[:, b.start] = [self.unit_of_size(b, self.nearest_size(b, u))
                                 for u in X[:, b.start]]
            else:
                onehot = np.zeros((len(X), b.width))
                onehot[np.arange(len(X)), np.argmax(X[:, cols], axis=1)] = 1.0
                X[:, cols] = onehot
        return X

    # -- random points ------------------------------------------------------------------
    def random_points(
        self, n: int, rng: np.random.Generator, mixture_points: dict[str, np.ndarray]
    ) -> np.ndarray:
        """``n`` points: given simplex points per mixture, uniform numerics, random one-hots."""
        X = np.zeros((n, self.dim))
        for b in self.blocks:
            if b.kind == "mixture":
                assert b.mixture is not None
                X[:, b.start : b.start + b.width] = mixture_points[b.mixture.name][:, : b.width]
            elif b.kind == "numeric":
                X[:, b.start] = rng.random(n)
            elif b.kind == "scale":
                assert isinstance(b.distribution, CategoricalDistribution)
                sizes = [float(c) for c in b.distribution.choices]
                X[:, b.start] = [self.unit_of_size(b, sizes[i])
                                 for i in rng.integers(0, len(sizes), n)]
            else:
                X[np.arange(n), b.start + rng.integers(0, b.width, n)] = 1.0
        return X


def encoded_space(
    search_space: Mapping[str, BaseDistribution],
    declared: Sequence[Mixture],
    coordinates: str = "weights",
    scales: Sequence[Scale] = (),
    target_size: float | None = None,
) -> EncodedSpace:
    """The GP's space of a relative search space: the ``declared`` mixtures in it, then its
    other parameters (those with a single value are no input: a scale of one size too, whose
    size law cannot be fitted); the declared ``scales`` among them as log-size columns up to
    ``target_size``."""
    mixtures = mixtures_in(search_space, declared)
    in_mixture = {p for m in mixtures for p in m.param_names}
    ranges = {}
    for sc in scales:
        dist = search_space.get(sc.name)
        if isinstance(dist, CategoricalDistribution) and \
                {float(c) for c in dist.choices} <= set(sc.sizes):
            sizes = [float(c) for c in dist.choices]
            hi = max(sizes + ([float(target_size)] if target_size else []))
            ranges[sc.name] = (min(sizes), hi)
    others = {
        n: d for n, d in search_space.items() if n not in in_mixture and not d.single()
    }
    return EncodedSpace(mixtures, others, coordinates,
                        {n: r for n, r in ranges.items() if n in others})


def _normalise_rows(W: np.ndarray) -> np.ndarray:
    total = W.sum(axis=1, keepdims=True)
    bad = ~(total[:, 0] > 0)
    W = W / np.where(total > 0, total, 1.0)
    W[bad] = 1.0 / W.shape[1]
    return W


def _bounds(dist: BaseDistribution) -> tuple[float, float, bool]:
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    low, high = float(dist.low), float(dist.high)
    if dist.log:
        return math.log(low), math.log(high), True
    return low, high, False


def _to_unit(dist: BaseDistribution, value: float) -> float:
    low, high, log = _bounds(dist)
    v = math.log(value) if log else float(value)
    return 0.5 if high <= low else min(1.0, max(0.0, (v - low) / (high - low)))


def _from_unit(dist: BaseDistribution, u: float) -> float | int:
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    low, high, log = _bounds(dist)
    v = low + min(1.0, max(0.0, u)) * (high - low)
    if log:
        v = math.exp(v)
    step = dist.step
    if step is not None:
        v = dist.low + round((v - dist.low) / step) * step
    v = min(max(v, dist.low), dist.high)
    if isinstance(dist, IntDistribution):
        v = int(round(v))
        v = min(max(v, dist.low), dist.high)
        if dist.step != 1:
            v = dist.low + ((v - dist.low) // dist.step) * dist.step
        return int(v)
    return float(v)
