"""Simple regret of mixture samplers on the analytic surfaces, and seconds per suggestion.

Every run is an in-memory Optuna study on ``make_surface(family, k, seed=seed, noise=sigma)``;
the trial value is the noisy mean criterion. After 8, 16, 32 and 64 trials the *recommended*
mixture is scored by its true (noise-free) regret: ``SimplexGPSampler.recommend`` (posterior
mean over the evaluated mixtures) for ``gp``; the best observed trial's mixture for every
other sampler (they have no model to ask).

Samplers: ``gp`` (SimplexGPSampler), ``sobol`` (SobolMixtureSampler), Optuna's ``GPSampler``
and ``TPESampler`` through ``suggest_mixture``'s normalisation (``optuna-gp-norm``,
``tpe-norm``) and through a stick-breaking parametrisation (k-1 floats in [0, 1] mapped onto
the simplex by ``cube_to_simplex``; ``optuna-gp-stick``, ``tpe-stick``).

    python benchmarks/regret.py --out docs/img/regret            # the full run (docs/benchmarks/gp-regret.md)
    python benchmarks/regret.py --ks 5 --noises 0.01 --seeds 2 --samplers gp,sobol

Each run pins torch to one thread (a GP on tens of points is several times slower with two
threads contending), and runs go to ``--jobs`` processes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from optuna_mix.attrs import LOSSES_ATTR, MIXTURE_ATTR

CHECKPOINTS = (8, 12, 16, 32, 64)
ALL_SAMPLERS = ("gp", "sobol", "optuna-gp-norm", "optuna-gp-stick", "tpe-norm", "tpe-stick")


def _sampler(name: str, seed: int, options: dict):
    import optuna

    from optuna_mix.samplers import SimplexGPSampler, SobolMixtureSampler

    if name == "gp":
        options = {k: v for k, v in options.items() if k != "recommend"}
        return SimplexGPSampler(seed=seed, **options)
    if name == "sobol":
        return SobolMixtureSampler(seed=seed)
    if name.startswith("optuna-gp"):
        return optuna.samplers.GPSampler(seed=seed)
    if name.startswith("tpe"):
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(name)


def run_one(
    sampler: str,
    family: str,
    k: int,
    noise: float,
    seed: int,
    n_trials: int,
    options: dict | None = None,
) -> dict:
    """One study; the regret of the recommended mixture at each checkpoint."""
    import optuna
    import torch

    from optuna_mix import suggest_mixture
    from optuna_mix.samplers import cube_to_simplex
    from optuna_mix.surfaces import make_surface

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    surface = make_surface(family, k, seed=seed, noise=noise)
    domains = list(surface.domains)
    rng = np.random.default_rng([seed, 12345])
    stick = sampler.endswith("-stick")

    def objective(trial):
        if stick:
            u = [trial.suggest_float(f"u{i}", 0.0, 1.0) for i in range(k - 1)]
            w = cube_to_simplex(np.array(u))[0]
            trial.set_user_attr(MIXTURE_ATTR, dict(zip(domains, map(float, w))))
        else:
            w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.noisy_losses(w, rng)
        # kept as optuna-mix's objectives keep them (SimplexGPSampler models each one)
        trial.set_user_attr(LOSSES_ATTR, dict(zip(domains, map(float, losses))))
        return float(np.mean(losses))

    s = _sampler(sampler, seed, options or {})
    study = optuna.create_study(sampler=s)
    regrets, seconds = {}, []
    for n in range(1, n_trials + 1):
        t0 = time.perf_counter()
        study.optimize(objective, n_trials=1)
        seconds.append(time.perf_counter() - t0)
        if n in CHECKPOINTS:
            if sampler == "gp":
                among = (options or {}).get("recommend", "evaluated")
                w = np.array(list(s.recommend(study, among=among).weights.values()))
            else:
                w = np.array(list(study.best_trial.user_attrs[MIXTURE_ATTR].values()))
            regrets[n] = surface.regret(w)
    return {
        "sampler": sampler,
        "family": family,
        "k": k,
        "noise": noise,
        "seed": seed,
        "regret": regrets,
        "seconds": seconds,
        "options": options or {},
    }


def time_suggestion(sampler: str, k: int, n_done: int, repeats: int = 3) -> float:
    """Seconds per suggestion on a study that already has ``n_done`` completed trials.

    The completed trials are Sobol points of a powerlaw surface (sigma 0.01); the sampler
    then runs more trials (each told before the next). The first is dropped (both GP
    samplers warm-start their hyperparameters from the previous trial, as they do in a
    running study) and the mean of the others is returned. They are at least ``repeats``
    and at least n_done / 10 + 1: SimplexGPSampler refits its hyperparameters only when the
    data have grown by 10% beyond 32 trials, and the mean must carry that refit's share.
    """
    import optuna
    import torch

    from optuna_mix import suggest_mixture
    from optuna_mix.samplers import SobolMixtureSampler, cube_to_simplex
    from optuna_mix.surfaces import make_surface

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    surface = make_surface("powerlaw", k, seed=0, noise=0.01)
    domains = list(surface.domains)
    rng = np.random.default_rng(0)
    stick = sampler.endswith("-stick")

    def objective(trial):
        if stick:
            u = [trial.suggest_float(f"u{i}", 0.0, 1.0) for i in range(k - 1)]
            w = cube_to_simplex(np.array(u))[0]
        else:
            w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.noisy_losses(w, rng)
        # kept as optuna-mix's objectives keep them (SimplexGPSampler models each one)
        trial.set_user_attr(LOSSES_ATTR, dict(zip(domains, map(float, losses))))
        return float(np.mean(losses))

    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(objective, n_trials=n_done)
    study.sampler = _sampler(sampler, 0, {})
    times = []
    for _ in range(max(repeats, n_done // 10 + 1) + 1):
        t0 = time.perf_counter()
        study.optimize(objective, n_trials=1)
        times.append(time.perf_counter() - t0)
    return float(np.mean(times[1:]))


def _run(args: tuple) -> dict:
    return run_one(*args)


def _table(results: list[dict], samplers: list[str]) -> str:
    lines = []
    keys = sorted({(r["k"], r["noise"]) for r in results})
    checkpoints = sorted({int(c) for r in results for c in r["regret"]})
    head = "| k | sigma | sampler | seeds | " + " | ".join(f"{c} trials" for c in checkpoints)
    lines += [head + " |", "|" + "---|" * (4 + len(checkpoints))]
    for k, noise in keys:
        for s in samplers:
            rs = [r for r in results if r["k"] == k and r["noise"] == noise and r["sampler"] == s]
            if not rs:
                continue
            cells = []
            for c in checkpoints:
                vals = [r["regret"][c] for r in rs if c in r["regret"]]
                cells.append(f"{np.median(vals):.4f}" if vals else "")
            lines.append(f"| {k} | {noise} | {s} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _timing_table(timing: list[dict]) -> str:
    if not timing:
        return ""
    lines = ["", "| sampler | k | completed trials | s / suggestion |", "|---|---|---|---|"]
    for t in sorted(timing, key=lambda t: (t["k"], t["n"], t["sampler"])):
        lines.append(f"| {t['sampler']} | {t['k']} | {t['n']} | {t['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def _plot(results: list[dict], samplers: list[str], out: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = sorted({(r["k"], r["noise"]) for r in results})
    cols = min(3, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"k={k}, sigma={s}" for k, s in keys])
    colours = dict(zip(ALL_SAMPLERS, ("#d62728", "#7f7f7f", "#1f77b4", "#17becf", "#2ca02c",
                                        "#bcbd22")))
    for i, (k, noise) in enumerate(keys):
        for s in samplers:
            rs = [r for r in results if r["k"] == k and r["noise"] == noise and r["sampler"] == s]
            if not rs:
                continue
            cps = sorted({int(c) for r in rs for c in r["regret"]})
            med = [float(np.median([r["regret"][c] for r in rs if c in r["regret"]])) for c in cps]
            fig.add_trace(
                go.Scatter(x=cps, y=med, name=s, legendgroup=s, showlegend=i == 0,
                           line={"color": colours.get(s)}),
                row=i // cols + 1, col=i % cols + 1,
            )
    fig.update_xaxes(type="log", title_text="trials")
    fig.update_yaxes(type="log", title_text="median simple regret")
    fig.update_layout(height=330 * rows, width=1100, title="Simple regret of the recommended mixture")
    fig.write_html(str(out) + ".html", include_plotlyjs="cdn")
    try:
        fig.write_image(str(out) + ".png")
    except Exception as e:  # kaleido (or its browser) missing: HTML only
        print(f"PNG skipped (kaleido unavailable?): {e.__class__.__name__}: {str(e).strip()[:200]}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--family", default="powerlaw")
    p.add_argument("--ks", default="5,10,20")
    p.add_argument("--noises", default="0,0.01,0.02")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--n-trials", type=int, default=64)
    p.add_argument("--samplers", default=",".join(ALL_SAMPLERS))
    p.add_argument(
        "--gp-options",
        default="{}",
        help='JSON keywords for SimplexGPSampler, plus "recommend": "evaluated" | "all"',
    )
    p.add_argument("--timing", default="", help="k:n,... e.g. 5:16,5:64,5:200,20:200")
    p.add_argument("--timing-samplers", default="gp,optuna-gp-norm")
    p.add_argument("--timing-repeats", type=int, default=3)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="")
    p.add_argument("--merge", default="", help="comma-separated .json outputs to pool (no runs)")
    a = p.parse_args(argv)
    if a.merge:
        results, timing = [], []
        for f in a.merge.split(","):
            data = json.loads(Path(f).read_text())
            results += data["runs"]
            timing += data["timing"]
        for r in results:
            r["regret"] = {int(c): v for c, v in r["regret"].items()}
        samplers = [s for s in ALL_SAMPLERS if any(r["sampler"] == s for r in results)]
        table = _table(results, samplers)
        print(table)
        for t in timing:
            print(f"timing {t['sampler']} k={t['k']} n={t['n']}: {t['seconds']:.3f} s/suggestion")
        if a.out:
            out = Path(a.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            Path(str(out) + ".md").write_text(table + "\n" + _timing_table(timing))
            _plot(results, samplers, out)
        return
    samplers = a.samplers.split(",") if a.samplers else []
    options = json.loads(a.gp_options)
    tasks = [
        (s, a.family, int(k), float(noise), seed, a.n_trials, options if s == "gp" else {})
        for k in a.ks.split(",")
        for noise in a.noises.split(",")
        for seed in range(a.seeds)
        for s in samplers
    ]
    # slow ones first so that the pool ends together
    tasks.sort(key=lambda t: (0 if "gp" in t[0] else 1, -t[2]))
    t0 = time.time()
    with ProcessPoolExecutor(a.jobs) as pool:
        results = list(pool.map(_run, tasks))
    print(f"# {len(tasks)} runs in {time.time() - t0:.0f} s")
    table = _table(results, samplers) if results else ""
    print(table)
    timing = []
    for item in filter(None, a.timing.split(",")):
        k, n = map(int, item.split(":"))
        for s in a.timing_samplers.split(","):
            sec = time_suggestion(s, k, n, a.timing_repeats)
            timing.append({"sampler": s, "k": k, "n": n, "seconds": sec})
            print(f"timing {s} k={k} n={n}: {sec:.3f} s/suggestion", flush=True)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        Path(str(out) + ".json").write_text(json.dumps({"runs": results, "timing": timing}))
        Path(str(out) + ".md").write_text(table + "\n" + _timing_table(timing))
        if results:
            _plot(results, samplers, out)


if __name__ == "__main__":
    main()
