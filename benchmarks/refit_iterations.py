"""What a warm-started hyperparameter refit buys, by its L-BFGS-B iteration cap.

The composite GP (one output per domain) is fitted to n0 random mixtures of a surface, then
refitted on 10% more trials from those hyperparameters with each cap; printed: the refit's
seconds and the posterior mean's RMSE over 300 random mixtures against the true losses.
Behind ``FIT_MAXITER_WARM`` (docs/benchmarks/gp-timing.md, "Cheaper refits").

    python benchmarks/refit_iterations.py --k 5 --n 64
    python benchmarks/refit_iterations.py --k 20 --n 200
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from optuna_mix.samplers.gp import model as gp_model
from optuna_mix.samplers.gp.posterior import ConditionedGP
from optuna_mix.surfaces import make_surface


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--family", default="powerlaw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--caps", default="0,15,30,100", help="iteration caps; 0: no refit")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    rng = np.random.default_rng(a.seed)
    surface = make_surface(a.family, a.k, seed=a.seed, noise=0.01)
    n1 = int(a.n * 1.1) + 1
    W = rng.dirichlet(np.ones(a.k), n1)
    Y = np.array([surface.noisy_losses(w, rng) for w in W])
    W_test = rng.dirichlet(np.ones(a.k), 300)
    Y_test = np.array([surface.losses(w) for w in W_test])
    kw = dict(warp_columns=list(range(a.k)), warp=0.1)
    _, warm = gp_model.fit_gp(W[: a.n], Y[: a.n], **kw)
    print(f"{a.family} k={a.k}: hyperparameters of {a.n} trials, refitted on {n1}")
    for cap in map(int, a.caps.split(",")):
        t0 = time.perf_counter()
        model, _ = gp_model.fit_gp(W, Y, warm_start=warm, refit=cap > 0, maxiter=max(cap, 1), **kw)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            mean = ConditionedGP(model).posterior(torch.as_tensor(W_test)[:, None, :]).mean
        rmse = float(np.sqrt(np.mean((mean.squeeze(1).numpy() - Y_test) ** 2)))
        print(f"cap {cap:>3}: {seconds:6.2f} s, test RMSE {rmse:.4f}")


if __name__ == "__main__":
    main()
