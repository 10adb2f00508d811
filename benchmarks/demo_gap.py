"""Is the embedded corpus's best mixture really better than uniform, beyond run-to-run noise?

1. A short search on studies/demo.toml (resumable: the study lives in --storage), unless
   --best gives the mixture or --trials is 0 (then --best is required).
2. The best mixture it found (SimplexGPSampler.recommend when the study's sampler is the GP,
   else the best trial), and the uniform mixture, trained in pairs: for each of --repeats
   training seeds (model initialisation and batch order; the data and validation split stay),
   both mixtures are trained with that same seed, so the seed's share of the noise cancels in
   the paired difference.
3. Prints each mixture's mean and standard deviation over the seeds, the mean paired gap
   (uniform - best), the standard deviation of the paired gaps, and the gap in units of
   (a) the standard error of the mean paired gap and (b) the single-run noise.

    python benchmarks/demo_gap.py --trials 16 --repeats 3
    python benchmarks/demo_gap.py --best "books=0.3,web=0.1,code=0.3,papers=0.3,social=0" --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

from optuna_mix.attrs import MIXTURE_ATTR
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
    return best.user_attrs[MIXTURE_ATTR], f"best trial #{best.number} ({best.value:.4f})"


def parse_mixture(text: str, domains: list[str]) -> dict[str, float]:
    """``"books=0.1,web=0.5,..."`` -> weights normalised to sum 1; unnamed domains get 0."""
    weights = dict.fromkeys(domains, 0.0)
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in weights:
            raise ValueError(f"bad mixture item {item!r}: want DOMAIN=WEIGHT, DOMAIN in {domains}")
        weights[name] = float(value)
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"mixture weights must be >= 0 and not all 0: {text!r}")
    return {d: w / total for d, w in weights.items()}


def paired_runs(gpt: GPTObjective, mixtures: dict[str, dict[str, float]], seeds: list[int], criterion: str):
    """{mixture name: [criterion value per seed]}: every mixture trained with every seed."""
    data = gpt.prepare()
    model_config = gpt.model_config(data)
    values: dict[str, list[float]] = {name: [] for name in mixtures}
    for seed in seeds:
        config = dataclasses.replace(gpt.train_config(), seed=seed, progress=False)
        line = []
        for name, weights in mixtures.items():
            result = train(model_config, data, weights, config)
            values[name].append(apply_criterion(criterion, result.losses))
            line.append(f"{name} {values[name][-1]:.4f} ({result.seconds:.0f} s)")
        print(f"    seed {seed}: " + ", ".join(line), flush=True)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "studies" / "demo.toml"))
    parser.add_argument("--storage", default="sqlite:///demo-gap.db")
    parser.add_argument("--trials", type=int, default=16, help="search trials; 0: no search (needs --best)")
    parser.add_argument("--repeats", type=int, default=3, help="training seeds per mixture, at least 2")
    parser.add_argument("--best", help='skip the search and use this mixture: "books=0.1,web=0.5,..."')
    parser.add_argument("--cache-dir", default=".optuna-mix-cache")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 to measure noise")
    if args.trials < 0:
        parser.error("--trials must be >= 0")
    if args.trials == 0 and not args.best:
        parser.error("--trials 0 needs --best")

    config = load_config(args.config)
    start = time.perf_counter()
    if args.best:
        try:
            best = parse_mixture(args.best, config.domain_names)
        except ValueError as e:
            parser.error(str(e))
        how = "given by --best"
    else:
        mix = create_mix_study(
            config, open_storage(args.storage), study_name=f"{config.name}-gap", load_if_exists=True
        )
        print(f"search: {config.sampler} on {config.name}, {args.trials} trials", flush=True)
        optimize(mix, n_trials=max(0, args.trials - mix.finished) or None, cache_dir=args.cache_dir)
        best, how = best_mixture(mix)
        print(f"search: {time.perf_counter() - start:.0f} s")
    print(f"best mixture ({how}): " + ", ".join(f"{d} {w:.3f}" for d, w in best.items()), flush=True)

    gpt = GPTObjective(
        config.objective_options, config.domains, seed=config.seed, cache_dir=Path(args.cache_dir)
    )
    seeds = [1000 + i for i in range(args.repeats)]  # not the study's seed: fresh repeats
    uniform = {d: 1 / len(config.domains) for d in config.domain_names}
    print(f"paired runs, {args.repeats} training seeds, both mixtures per seed:", flush=True)
    values = paired_runs(gpt, {"uniform": uniform, "best": best}, seeds, config.criterion)
    u, b = values["uniform"], values["best"]
    diffs = [x - y for x, y in zip(u, b)]
    n = len(diffs)
    gap, diff_sd = statistics.mean(diffs), statistics.stdev(diffs)
    se = diff_sd / n**0.5
    noise = ((statistics.variance(u) + statistics.variance(b)) / 2) ** 0.5  # one run's std

    def ratio(x: float, y: float) -> str:
        return f"{x / y:.1f}" if y > 0 else "inf"

    print()
    print(f"| mixture | mean {config.criterion} val loss | std over {n} seeds |")
    print("|---|---|---|")
    print(f"| uniform | {statistics.mean(u):.4f} | {statistics.stdev(u):.4f} |")
    print(f"| best found | {statistics.mean(b):.4f} | {statistics.stdev(b):.4f} |")
    print(f"| paired gap (uniform - best) | {gap:.4f} | {diff_sd:.4f} |")
    print()
    print(f"gap {gap:.4f}; std of the {n} paired gaps {diff_sd:.4f}, standard error {se:.4f}: "
          f"gap / standard error = {ratio(gap, se)}")
    print(f"single-run noise (std of one run over seeds, pooled over both mixtures) {noise:.4f}: "
          f"gap / single-run noise = {ratio(gap, noise)}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
