"""How near the report's best weight cluster lies to the true optimum, on surfaces of two shapes.

For each family and seed: a gp study (SimplexGPSampler through the config path, per-domain
losses kept) of --trials trials on a seeded analytic surface with noise, then the report's
clusters of its good trials (the default top quarter). Prints, per family, the total-variation
distance of the best cluster's centre and of the best trial to the surface's true optimum
(mean, median, worst over seeds) and the number of headline clusters.

    python benchmarks/cluster_centres.py --families powerlaw,dml --seeds 5 --trials 40
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import numpy as np
import optuna

from optuna_mix.config import parse_config
from optuna_mix.report import build_report
from optuna_mix.runner import create_mix_study, optimize
from optuna_mix.storage import open_storage
from optuna_mix.surfaces import make_surface

DOMAINS = ["books", "web", "code", "papers", "social"]


def tv(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum())


def one(family: str, seed: int, trials: int) -> tuple[float, float, int]:
    raw = {"study": {"name": "c", "n_trials": trials, "seed": seed},
           "sampler": {"name": "gp"},
           "objective": {"kind": "surface", "family": family, "noise": 0.01, "seed": seed},
           "domains": {d: {} for d in DOMAINS}}
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(f"sqlite:///{tmp}/c.db")
        mix = create_mix_study(parse_config(raw), storage)
        optimize(mix, show_progress=False)
        report = build_report(mix.study, DOMAINS, with_model=False)
    optimum, _ = make_surface(family, DOMAINS, seed=seed).optimum("mean")
    best = np.array([report.best.weights[d] for d in DOMAINS])
    return tv(report.clusters.clusters[0].centre, optimum), tv(best, optimum), \
        len(report.clusters.clusters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="powerlaw,dml")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("family    | best cluster's centre to optimum (TV) mean / median / worst | "
          "best trial to optimum mean / median / worst | clusters (min-max) | centre closer")
    for family in args.families.split(","):
        rows = [one(family, s, args.trials) for s in range(args.seeds)]
        c, b, n = (np.array(x) for x in zip(*rows))
        print(f"{family:<9} | {c.mean():.3f} / {statistics.median(c):.3f} / {c.max():.3f} | "
              f"{b.mean():.3f} / {statistics.median(b):.3f} / {b.max():.3f} | "
              f"{n.min()}-{n.max()} | {int((c < b).sum())} of {len(c)}")
        print("          per seed: " + ", ".join(f"{x:.3f}/{y:.3f}" for x, y in zip(c, b)))


if __name__ == "__main__":
    main()
