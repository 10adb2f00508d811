"""Hypervolume of the front after 16 and 32 trials: multi-objective mixture samplers compared.

Every run is an in-memory Optuna study with one direction per validation set of
``make_surface(family, k, seed=seed, noise=sigma)`` (what ``criterion = "pareto"`` makes); a
trial's values are its noisy losses. The score is the hypervolume of the *true* (noise-free)
losses of the evaluated mixtures, so that a sampler is not credited with lucky noise:

- each loss is scaled to [0, 1] by its lowest and highest value over 4096 Sobol mixtures of
  the simplex, and the reference point is 1.1 in every scaled loss (slightly worse than the
  worst such mixture on each set, so that every mixture on the front counts);
- the hypervolume is a quasi-Monte-Carlo estimate over ``MC_POINTS`` Sobol points of the box
  [0, 1.1]^m, the same points for every sampler on a surface (their differences carry little
  estimation noise);
- the table gives the **gap**: the hypervolume of the 4096 Sobol mixtures' front minus the
  run's (lower is better; a run can beat that dense front, giving a gap below 0).

Samplers: ``gp`` (SimplexGPSampler: a GP per validation set, qLogNEI of a random hypervolume
scalarisation per trial, after 16 Sobol start-up trials), ``gp-chebyshev`` (the same with
ParEGO's Chebyshev scalarisation), ``gp-startup4`` (4 start-up trials), ``sobol``
(SobolMixtureSampler), and Optuna's ``nsga2`` (NSGAIISampler, default population 50),
``nsga2-p8`` (population 8, so that it breeds within the budget), ``tpe`` (TPESampler) and
``optuna-gp`` (GPSampler, its multi-objective LogEHVI), the last four through
``suggest_mixture``'s normalisation onto the simplex.

    python benchmarks/pareto.py --families powerlaw,dml,relu,interaction,heldout --k 5 \
        --seeds 10 --out out/pareto    # docs/benchmarks/pareto.md
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

CHECKPOINTS = (16, 32)
FAMILIES = ("powerlaw", "dml", "relu", "interaction", "heldout")
SAMPLERS = ("gp", "gp-chebyshev", "gp-startup4", "sobol", "nsga2", "nsga2-p8", "tpe", "optuna-gp")
DENSE_MIXTURES = 4096  # Sobol mixtures that fix each loss's range and the dense front
MC_POINTS = 65536  # quasi-MC points of the hypervolume's box
REFERENCE = 1.1  # the reference point, in scaled losses


@lru_cache(maxsize=8)
def _yardstick(family: str, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A surface's scaling (lo, hi per loss), its quasi-MC points and the dense front's HV."""
    from scipy.stats import qmc

    from optuna_mix.samplers import sobol_simplex_points
    from optuna_mix.surfaces import make_surface

    surface = make_surface(family, k, seed=seed)
    W = sobol_simplex_points(k, DENSE_MIXTURES, seed=seed)
    L = surface.losses(W)
    lo, hi = L.min(axis=0), L.max(axis=0)
    points = qmc.Sobol(L.shape[1], scramble=True, seed=seed).random(MC_POINTS) * REFERENCE
    return lo, hi, points, dominated_share(_scaled(L, lo, hi), points)


def _scaled(L: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (np.asarray(L, float) - lo) / np.where(hi > lo, hi - lo, 1.0)


def dominated_share(F: np.ndarray, points: np.ndarray, chunk: int = 256) -> float:
    """The share of ``points`` (p, m) that some row of ``F`` (n, m) weakly dominates (is
    below or equal in every column): the hypervolume over the box, as a fraction of it."""
    hit = np.zeros(len(points), bool)
    for i in range(0, len(F), chunk):
        block = F[i:i + chunk]
        hit |= np.any(np.all(block[:, None, :] <= points[None, :, :], axis=2), axis=0)
    return float(hit.mean())


def _sampler(name: str, seed: int):
    import optuna

    from optuna_mix.samplers import SimplexGPSampler, SobolMixtureSampler

    if name == "gp":
        return SimplexGPSampler(seed=seed)
    if name == "gp-chebyshev":
        return SimplexGPSampler(seed=seed, pareto_scalarisation="chebyshev")
    if name == "gp-startup4":
        return SimplexGPSampler(seed=seed, pareto_startup_trials=4)
    if name == "sobol":
        return SobolMixtureSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "nsga2-p8":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "optuna-gp":
        _chunk_logehvi()
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(name)


# bytes of one chunk's (candidates, qmc samples, boxes, objectives) difference tensor in
# GPSampler's LogEHVI: whole, the 2048 preliminary candidates x 128 samples x the front's
# boxes at five objectives took 13-18 GB and more (docs/benchmarks/pareto.md)
EHVI_CHUNK_BYTES = 2**28


def _chunk_logehvi() -> None:
    """Make Optuna's ``logehvi`` evaluate its candidates in chunks: the same values (each
    candidate's is computed alone), a bounded memory. Idempotent; this process only."""
    import torch
    from optuna._gp import acqf

    whole = getattr(acqf.logehvi, "whole", acqf.logehvi)

    def chunked(Y_post, non_dominated_box_lower_bounds, non_dominated_box_intervals):
        lead, (n_samples, m) = Y_post.shape[:-2], Y_post.shape[-2:]
        per_candidate = n_samples * len(non_dominated_box_lower_bounds) * m * 8
        step = max(1, EHVI_CHUNK_BYTES // per_candidate)
        flat = Y_post.reshape(-1, n_samples, m)
        if len(flat) <= step:
            return whole(Y_post, non_dominated_box_lower_bounds, non_dominated_box_intervals)
        parts = [whole(flat[i:i + step], non_dominated_box_lower_bounds,
                       non_dominated_box_intervals) for i in range(0, len(flat), step)]
        return torch.cat(parts).reshape(lead)

    chunked.whole = whole
    acqf.logehvi = chunked


def run_one(sampler: str, family: str, k: int, noise: float, seed: int, n_trials: int) -> dict:
    """One study; the hypervolume gap of its evaluated mixtures at each checkpoint."""
    import optuna

    from bench_worker import quiet_worker
    from optuna_mix import suggest_mixture
    from optuna_mix.attrs import LOSSES_ATTR
    from optuna_mix.surfaces import make_surface

    quiet_worker()
    surface = make_surface(family, k, seed=seed, noise=noise)
    domains = list(surface.domains)
    rng = np.random.default_rng([seed, 54321])
    lo, hi, points, dense = _yardstick(family, k, seed)
    true: list[np.ndarray] = []

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.noisy_losses(w, rng)
        trial.set_user_attr(LOSSES_ATTR, dict(zip(surface.outputs, map(float, losses))))
        true.append(surface.losses(w))
        return [float(x) for x in losses]

    study = optuna.create_study(sampler=_sampler(sampler, seed),
                                directions=["minimize"] * len(surface.outputs))
    gaps, seconds = {}, []
    for n in range(1, n_trials + 1):
        t0 = time.perf_counter()
        study.optimize(objective, n_trials=1)
        seconds.append(time.perf_counter() - t0)
        if n in CHECKPOINTS:
            gaps[n] = dense - dominated_share(_scaled(np.array(true), lo, hi), points)
    return {"sampler": sampler, "family": family, "k": k, "noise": noise, "seed": seed,
            "gap": gaps, "seconds": seconds}


def _run(args: tuple) -> dict:
    return run_one(*args)


def _table(results: list[dict], samplers: list[str]) -> str:
    """Per checkpoint: each sampler's median / mean / worst gap over every family and seed,
    its median gap per family, and the GP's paired wins against it."""
    families = sorted({r["family"] for r in results}, key=FAMILIES.index)
    lines = []
    for c in CHECKPOINTS:
        by = {s: {(r["family"], r["seed"]): r["gap"][str(c)] if str(c) in r["gap"]
                  else r["gap"][c] for r in results if r["sampler"] == s} for s in samplers}
        lines += [f"### after {c} trials: hypervolume gap (lower is better)", "",
                  "| sampler | median | mean | worst | "
                  + " | ".join(f"{f} median" for f in families) + " | gp better on |",
                  "|---|---|---|---|" + "---|" * len(families) + "---|"]
        for s in samplers:
            v = np.array(list(by[s].values()))
            if not len(v):
                continue
            per_family = [np.median([g for (f, _), g in by[s].items() if f == fam])
                          for fam in families]
            shared = [p for p in by[s] if p in by.get("gp", {})]
            wins = sum(by["gp"][p] < by[s][p] for p in shared)
            lines.append(f"| {s} | {np.median(v):.4f} | {v.mean():.4f} | {v.max():.4f} | "
                         + " | ".join(f"{x:.4f}" for x in per_family)
                         + (f" | {wins} of {len(shared)} |" if s != "gp" else " | |"))
        lines.append("")
    seconds = {s: np.mean([np.mean(r["seconds"]) for r in results if r["sampler"] == s])
               for s in samplers}
    lines += ["mean seconds per trial (suggestion included): "
              + ", ".join(f"{s} {t:.2f}" for s, t in seconds.items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--problems", default=None,
                        help="family:seed,... to run instead of every family x seed")
    parser.add_argument("--n-trials", type=int, default=max(CHECKPOINTS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="results.json and report.md here")
    args = parser.parse_args(argv)
    samplers = args.samplers.split(",")
    problems = ([(f, int(seed)) for f, seed in (p.split(":") for p in args.problems.split(","))]
                if args.problems else
                [(f, seed) for f in args.families.split(",") for seed in range(args.seeds)])
    tasks = [(s, f, args.k, args.noise, seed, args.n_trials)
             for f, seed in problems for s in samplers]
    results = []
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        for i, r in enumerate(pool.map(_run, tasks), 1):
            results.append(r)
            print(f"[{i}/{len(tasks)}] {r['sampler']} {r['family']} seed {r['seed']}: gap "
                  + ", ".join(f"{n} {g:.4f}" for n, g in r["gap"].items())
                  + f" ({sum(r['seconds']):.0f} s)", flush=True)
            if args.out is not None:  # so far: a long run stopped early keeps what it did
                (args.out / "results.json").write_text(json.dumps(results))
    report = _table(results, samplers)
    print(report)
    if args.out is not None:
        (args.out / "report.md").write_text(report)


if __name__ == "__main__":
    main()
