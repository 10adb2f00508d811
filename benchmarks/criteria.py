"""What each criterion's best mixture costs: its worst-domain loss and its mean loss.

Every run is an in-memory Optuna study of SimplexGPSampler on ``make_surface(family, k,
seed=seed, noise=sigma)``, the trial value the noisy criterion of the losses (the losses kept,
so the GP models them: the composite model), the criterion stored in the study as ``study
create`` stores it. After ``--n-trials`` the GP's recommendation is scored on the surface's
noise-free losses: their mean, their maximum (the worst domain) and the number of domains on
which it beats the uniform mixture. Uniform's own figures are the yardstick.

    python benchmarks/criteria.py --families powerlaw,dml,relu,interaction --seeds 4 \
        --criteria mean,max,cvar,median      # docs/benchmarks/criteria.md
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np


def run_one(criterion: str, family: str, k: int, noise: float, seed: int, n_trials: int) -> dict:
    import optuna

    from bench_worker import quiet_worker
    from optuna_mix import suggest_mixture
    from optuna_mix.attrs import LOSSES_ATTR
    from optuna_mix.criteria import CriterionSpec, apply_criterion, set_criterion
    from optuna_mix.samplers import SimplexGPSampler
    from optuna_mix.surfaces import make_surface

    quiet_worker()
    surface = make_surface(family, k, seed=seed, noise=noise)
    domains = list(surface.domains)
    spec = CriterionSpec(criterion)
    bound = spec.bind(list(surface.outputs))
    rng = np.random.default_rng([seed, 777])

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = dict(zip(surface.outputs, map(float, surface.noisy_losses(w, rng))))
        trial.set_user_attr(LOSSES_ATTR, losses)
        return apply_criterion(bound, losses)

    sampler = SimplexGPSampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    set_criterion(study, spec)
    study.optimize(objective, n_trials=n_trials)
    w = np.array(list(sampler.recommend(study).weights.values()))
    L, U = surface.losses(w), surface.losses(np.full(k, 1.0 / k))
    return {"criterion": criterion, "family": family, "seed": seed, "mean": float(L.mean()),
            "worst": float(L.max()), "better": int(np.sum(L < U)),
            "uniform_mean": float(U.mean()), "uniform_worst": float(U.max())}


def _run(args: tuple) -> dict:
    return run_one(*args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="powerlaw,dml,relu,interaction")
    parser.add_argument("--criteria", default="mean,max,cvar,median")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--n-trials", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    criteria = args.criteria.split(",")
    tasks = [(c, f, args.k, args.noise, s, args.n_trials)
             for f in args.families.split(",") for s in range(args.seeds) for c in criteria]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_run, tasks))
    print(f"after {args.n_trials} trials, k = {args.k}, noise {args.noise}, "
          f"{len(tasks) // len(criteria)} problems; true losses of the GP's recommendation\n")
    print("| criterion | mean loss (median) | worst-domain loss (median) | mean loss - uniform's "
          "(median) | worst-domain - uniform's (median) | domains better than uniform (mean) |")
    print("|---|---|---|---|---|---|")
    for c in criteria:
        rs = [r for r in results if r["criterion"] == c]
        mean = np.array([r["mean"] for r in rs])
        worst = np.array([r["worst"] for r in rs])
        print(f"| {c} | {np.median(mean):.4f} | {np.median(worst):.4f} | "
              f"{np.median(mean - [r['uniform_mean'] for r in rs]):+.4f} | "
              f"{np.median(worst - [r['uniform_worst'] for r in rs]):+.4f} | "
              f"{np.mean([r['better'] for r in rs]):.1f} of {args.k} |")


if __name__ == "__main__":
    main()
