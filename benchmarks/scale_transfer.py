"""Regret at the target size, at equal compute: four ways to choose a mixture for a model
larger than any trial (issue 14).

Every run is an in-memory Optuna study on ``make_scaled_surface(k, seed=seed, noise=sigma,
family=family)`` (optuna_mix.scaled_surfaces; ``--family transfer``: per-domain power laws in
the effective data whose reducible loss falls at its own rate with model size, and
cross-domain transfer that grows or shrinks with size; ``--family capacity``: model, data and
capacity-interference terms, a small model preferring few domains; in both the best mixture
moves as the model grows). Trials may train at ``--sizes``; the
mixture is for ``--target`` (never trained). A trial at size N costs (N / N0)^2 (parameters
x Chinchilla-like tokens; N0 = 25k), and every way gets the same ``--budget`` of compute, in
units of one trial at N0. The score is the true regret, at the target, of the mixture each
way ends with:

- ``small``: the study's own way: every trial at the smallest size, SimplexGPSampler
  (composite model of the losses), its recommended mixture taken to the target unchanged;
- ``largest``: every trial at the largest trained size (budget / its cost trials),
  SimplexGPSampler, its recommended mixture;
- ``uniform``: the uniform mixture (no trials);
- ``aware``: the scale-aware SimplexGPSampler (``suggest_scale``, ``target_scale=target``):
  the mixture of most expected improvement at the target, trained at the size that teaches
  most about it per unit of compute, until the budget is spent;
  ``recommend(study, scale=target)``.

    python benchmarks/scale_transfer.py --k 5 --seeds 10 --budget 48 --out out/scale
    python benchmarks/scale_transfer.py --family capacity --k 5 --seeds 10 --out out/capacity
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

WAYS = ("small", "largest", "uniform", "aware")


def run_one(way: str, k: int, seed: int, noise: float, sizes: list[float], target: float,
            budget: float, family: str = "transfer") -> dict:
    """One way on one surface: the regret at the target and the compute it spent."""
    import warnings

    import optuna
    import torch

    from optuna_mix import suggest_mixture, suggest_scale
    from optuna_mix.attrs import LOSSES_ATTR
    from optuna_mix.samplers import SimplexGPSampler
    from optuna_mix.scaled_surfaces import make_scaled_surface

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    surface = make_scaled_surface(k, seed=seed, noise=noise, family=family)
    domains = list(surface.domains)
    if way == "uniform":
        return _result(way, k, seed, noise, surface.regret(np.full(k, 1.0 / k), target), 0.0, 0)
    rng = np.random.default_rng([seed, 777])
    fixed_size = {"small": min(sizes), "largest": max(sizes)}.get(way)
    spent = [0.0]

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, domains).values()))
        size = fixed_size if fixed_size is not None else suggest_scale(trial, sizes)
        spent[0] += surface.cost(size)
        losses = surface.noisy_losses(w, size, rng)
        trial.set_user_attr(LOSSES_ATTR, dict(zip(domains, map(float, losses))))
        return float(np.mean(losses))

    sampler = SimplexGPSampler(seed=seed, target_scale=target if way == "aware" else None)
    study = optuna.create_study(sampler=sampler)
    n = 0
    while True:
        # the next trial must fit the budget: at worst it costs the largest size
        if spent[0] + surface.cost(fixed_size or max(sizes)) > budget + 1e-9:
            if fixed_size is not None or spent[0] + surface.cost(min(sizes)) > budget + 1e-9:
                break
            # an aware study's last trials, once the largest size no longer fits: pinned at
            # the smallest (as the sampler's compute cap keeps most trials), the mixture still
            # the GP's
            study.enqueue_trial({"scale": min(sizes)}, skip_if_exists=False)
        study.optimize(objective, n_trials=1)
        n += 1
    if way == "aware":
        w = np.array(list(sampler.recommend(study, scale=target).weights.values()))
    else:
        w = np.array(list(sampler.recommend(study).weights.values()))
    return _result(way, k, seed, noise, surface.regret(w, target), spent[0], n,
                   sizes=[t.params.get("scale", fixed_size) for t in study.trials])


def _result(way, k, seed, noise, regret, spent, n, sizes=()) -> dict:
    return {"way": way, "k": k, "seed": seed, "noise": noise, "regret": float(regret),
            "compute": float(spent), "trials": n, "sizes": [float(s) for s in sizes]}


def _run(args: tuple) -> dict:
    return run_one(*args)


def _table(results: list[dict]) -> str:
    rows = ["| way | runs | trials (median) | compute (median) | regret at target: mean / "
            "median / worst | runs where aware is better |",
            "|---|---|---|---|---|---|"]
    aware = {(r["k"], r["seed"]): r["regret"] for r in results if r["way"] == "aware"}
    for way in WAYS:
        rs = [r for r in results if r["way"] == way]
        if not rs:
            continue
        reg = np.array([r["regret"] for r in rs])
        wins = [aware[(r["k"], r["seed"])] < r["regret"] for r in rs
                if way != "aware" and (r["k"], r["seed"]) in aware]
        rows.append(
            f"| {way} | {len(rs)} | {np.median([r['trials'] for r in rs]):.0f} | "
            f"{np.median([r['compute'] for r in rs]):.0f} | {reg.mean():.4f} / "
            f"{np.median(reg):.4f} / {reg.max():.4f} | "
            f"{f'{sum(wins)} of {len(wins)}' if wins else ''} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="transfer", help="transfer or capacity")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--sizes", default="25000,50000,100000")
    p.add_argument("--target", type=float, default=400_000)
    p.add_argument("--budget", type=float, default=48.0)
    p.add_argument("--ways", default=",".join(WAYS))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    sizes = [float(s) for s in a.sizes.split(",")]
    tasks = [(w, a.k, s, a.noise, sizes, a.target, a.budget, a.family)
             for s in range(a.first_seed, a.first_seed + a.seeds) for w in a.ways.split(",")]
    t0 = time.time()
    with ProcessPoolExecutor(a.jobs) as pool:
        results = list(pool.map(_run, tasks))
    print(f"# {len(tasks)} runs in {time.time() - t0:.0f} s; family {a.family}, k = {a.k}, "
          f"sigma = {a.noise}, "
          f"sizes {sizes}, target {a.target:g}, budget {a.budget:g} (trials at {sizes[0]:g})")
    print(_table(results))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out + ".json").write_text(json.dumps({"runs": results, "args": vars(a)}))


if __name__ == "__main__":
    main()
