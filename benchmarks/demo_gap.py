"""Is the embedded corpus's best mixture really better than uniform, beyond run-to-run noise?

1. A short search on studies/demo.toml (resumable: the study lives in --storage).
2. The best mixture it found (SimplexGPSampler.recommend when the study's sampler is the GP,
   else the best trial), and the uniform mixture, each trained --repeats times with other
   training seeds (model initialisation and batch order; the data and validation split stay).
3. Prints each mixture's mean and standard deviation over the repeats, the gap, and the gap
   in units of the repeat-run noise.

    python benchmarks/demo_gap.py --trials 16 --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

from optuna_mix.config import load_config
from optuna_mix.criteria import apply_criterion
from optuna_mix.gpt_objective import GPTObjective
from optuna_mix.report import build_report
from optuna_mix.runner import create_mix_study, optimize
from optuna_mix.storage import open_storage
from optuna_mix.trainers import train

REPO = Path(__file__).resolve().parents[1]


def best_mixture(mix) -> tuple[dict[str, float], str]:
    sampler = mix.study.sampler
    if hasattr(sampler, "recommend"):
        rec = sampler.recommend(mix.study)
        return rec.weights, f"GP recommendation (predicted {rec.value:.4f} +- {rec.std:.4f})"
    best = build_report(mix.study, mix.config.domain_names, top_n=1).top[0]
    return best.user_attrs["mix"], f"best trial #{best.number} ({best.value:.4f})"


def repeat_runs(gpt: GPTObjective, weights: dict[str, float], seeds: list[int], criterion: str):
    data = gpt.prepare()
    model_config = gpt.model_config(data)
    values, per_domain = [], []
    for seed in seeds:
        config = dataclasses.replace(gpt.train_config(), seed=seed, progress=False)
        result = train(model_config, data, weights, config)
        values.append(apply_criterion(criterion, result.losses))
        per_domain.append(result.losses)
        print(f"    seed {seed}: {values[-1]:.4f}  ({result.seconds:.0f} s)", flush=True)
    return values, per_domain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "studies" / "demo.toml"))
    parser.add_argument("--storage", default="sqlite:///demo-gap.db")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="at least 2")
    parser.add_argument("--cache-dir", default=".optuna-mix-cache")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 to measure noise")

    config = load_config(args.config)
    start = time.perf_counter()
    mix = create_mix_study(
        config, open_storage(args.storage), study_name=f"{config.name}-gap", load_if_exists=True
    )
    print(f"search: {config.sampler} on {config.name}, {args.trials} trials", flush=True)
    optimize(mix, n_trials=max(0, args.trials - mix.finished) or None, cache_dir=args.cache_dir)
    best, how = best_mixture(mix)
    print(f"best mixture ({how}): " + ", ".join(f"{d} {w:.3f}" for d, w in best.items()))

    gpt = GPTObjective(
        config.objective_options, config.domains, seed=config.seed, cache_dir=Path(args.cache_dir)
    )
    seeds = [1000 + i for i in range(args.repeats)]  # not the study's seed: fresh repeats
    uniform = {d: 1 / len(config.domains) for d in config.domain_names}
    print("uniform mixture:", flush=True)
    u_values, _ = repeat_runs(gpt, uniform, seeds, config.criterion)
    print("best mixture:", flush=True)
    b_values, _ = repeat_runs(gpt, best, seeds, config.criterion)

    # run-to-run noise: the std of one training run, pooled over both mixtures' repeats
    noise = ((statistics.variance(u_values) + statistics.variance(b_values)) / 2) ** 0.5
    gap = statistics.mean(u_values) - statistics.mean(b_values)
    print()
    print(f"| mixture | mean {config.criterion} val loss | std over {args.repeats} seeds |")
    print("|---|---|---|")
    print(f"| uniform | {statistics.mean(u_values):.4f} | {statistics.stdev(u_values):.4f} |")
    print(f"| best found | {statistics.mean(b_values):.4f} | {statistics.stdev(b_values):.4f} |")
    print()
    print(f"gap (uniform - best): {gap:.4f}; repeat-run noise (pooled std): {noise:.4f}; "
          f"gap / noise: {gap / noise if noise > 0 else float('inf'):.1f}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
