"""Simple regret of mixture samplers on analytic surfaces of several shapes, and seconds per suggestion.

Every run is an in-memory Optuna study on ``make_surface(family, k, seed=seed, noise=sigma)``;
the trial value is the noisy mean criterion over the surface's validation sets. After 8, 12,
16, 32 and 64 trials the *recommended* mixture is scored by its true (noise-free) regret:
``SimplexGPSampler.recommend`` (posterior mean over the evaluated mixtures) for ``gp``; the
best observed trial's mixture for every other sampler (they have no model to ask).

Families (``optuna_mix.surfaces``): ``powerlaw`` and ``dml`` (the shapes of the project's law
prior), ``relu`` (piecewise linear), ``interaction`` (strong pairwise terms) and ``heldout``
(three validation sets that are no training domain).

Modes: ``values``, a plain Optuna study (the objective keeps no per-domain losses: the GP
models the values alone); ``losses``, the project's objectives (``losses`` kept as a user attr:
the GP's composite model, and the mixing laws, which need them). Samplers that never read the
losses run once and count in both modes.

Samplers: ``gp`` (SimplexGPSampler), ``sobol`` (SobolMixtureSampler), Optuna's ``GPSampler``
and ``TPESampler`` through ``suggest_mixture``'s normalisation (``optuna-gp-norm``,
``tpe-norm``) and through a stick-breaking parametrisation (k-1 floats in [0, 1] mapped onto
the simplex by ``cube_to_simplex``; ``optuna-gp-stick``, ``tpe-stick``), the mixing laws
``dml``, ``regmix`` and ``bimix`` (losses mode; bimix not on ``heldout``) and ``seed-recipe``
(the seed's BO: BoTorch SingleTaskGP + qLogNEI on the first k-1 weights, 32 Sobol start-up
points; benchmarks/seed_recipe.py).

    python benchmarks/regret.py --families powerlaw,dml,relu,interaction,heldout --ks 5 \
        --noises 0.01 --seeds 10 --n-trials 32 --out out/k5      # docs/benchmarks/gp-regret.md
    python benchmarks/regret.py --ks 5 --noises 0.01 --seeds 2 --samplers gp,sobol

Each run pins torch to one thread (a GP on tens of points is several times slower with two
threads contending), and runs go to ``--jobs`` processes. ``--n-trials`` caps every sampler
but ``sobol``, which always runs to 64 (the yardstick "Sobol's median at 64").
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
FAMILIES = ("powerlaw", "dml", "relu", "interaction", "heldout")
MODES = ("values", "losses")
OPTUNAS = ("optuna-gp-norm", "optuna-gp-stick", "tpe-norm", "tpe-stick")
LAWS = ("dml", "regmix", "bimix")
ALL_SAMPLERS = ("gp", "sobol", *OPTUNAS, *LAWS, "seed-recipe")
SOBOL_TRIALS = 64


def reads_losses(sampler: str) -> bool:
    """Whether the sampler's proposals depend on the trials' per-domain losses."""
    return sampler == "gp" or sampler in LAWS


def runs_in(sampler: str, mode: str, family: str) -> bool:
    if sampler in LAWS:
        return mode == "losses" and not (sampler == "bimix" and family == "heldout")
    return True


def _sampler(name: str, seed: int, options: dict, k: int):
    import optuna

    from optuna_mix.samplers import MixingLawSampler, SimplexGPSampler, SobolMixtureSampler

    if name == "gp":
        options = {k: v for k, v in options.items() if k != "recommend"}
        return SimplexGPSampler(seed=seed, **options)
    if name == "sobol":
        return SobolMixtureSampler(seed=seed)
    if name in LAWS:
        return MixingLawSampler(law=name, seed=seed)
    if name == "seed-recipe":
        from seed_recipe import SeedRecipeSampler

        return SeedRecipeSampler(k, seed=seed)
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
    mode: str = "losses",
) -> dict:
    """One study; the regret of the recommended mixture at each checkpoint."""
    import warnings

    import optuna
    import torch

    from optuna_mix import suggest_mixture
    from optuna_mix.samplers import cube_to_simplex
    from optuna_mix.surfaces import make_surface
    from seed_recipe import suggest_first_weights

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    surface = make_surface(family, k, seed=seed, noise=noise)
    domains = list(surface.domains)
    rng = np.random.default_rng([seed, 12345])
    stick = sampler.endswith("-stick")
    keep_losses = mode == "losses"

    def objective(trial):
        if stick:
            u = [trial.suggest_float(f"u{i}", 0.0, 1.0) for i in range(k - 1)]
            w = cube_to_simplex(np.array(u))[0]
            trial.set_user_attr(MIXTURE_ATTR, dict(zip(domains, map(float, w))))
        elif sampler == "seed-recipe":
            w = suggest_first_weights(trial, k)
            trial.set_user_attr(MIXTURE_ATTR, dict(zip(domains, map(float, w))))
        else:
            w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.noisy_losses(w, rng)
        if keep_losses:  # as optuna-mix's objectives keep them (the composite GP, the laws)
            trial.set_user_attr(LOSSES_ATTR, dict(zip(surface.outputs, map(float, losses))))
        return float(np.mean(losses))

    s = _sampler(sampler, seed, options or {}, k)
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
        "mode": mode if reads_losses(sampler) else "any",
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
    data have grown by 10% beyond 32 trials, and the mean must carry that refit's share. (The
    constant-mean GP that only judges a leading law refits at 50% growth, which this window
    does not reach: its share, about one refit per n_done / 2 trials, is left out.)
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
    study.sampler = _sampler(sampler, 0, {}, k)
    times = []
    for _ in range(max(repeats, n_done // 10 + 1) + 1):
        t0 = time.perf_counter()
        study.optimize(objective, n_trials=1)
        times.append(time.perf_counter() - t0)
    return float(np.mean(times[1:]))


def _run(args: tuple) -> dict:
    return run_one(*args)


def _problem(r: dict) -> tuple:
    return (r["family"], r["k"], r["noise"], r["seed"])


def _in_mode(results: list[dict], mode: str, sampler: str) -> list[dict]:
    return [r for r in results if r["sampler"] == sampler and r["mode"] in (mode, "any")]


def _stats(values: list[float]) -> tuple[float, float, float]:
    return float(np.mean(values)), float(np.median(values)), float(np.max(values))


def _by_problem(runs: list[dict], c: int) -> dict[tuple, float]:
    """Each problem's regret at checkpoint c; ValueError where one sampler ran a problem
    twice (merged outputs that overlap, or gp variants pooled): no pairing is then right."""
    out: dict[tuple, float] = {}
    for r in runs:
        if c in r["regret"]:
            if _problem(r) in out:
                raise ValueError(f"{r['sampler']} ran {_problem(r)} twice: merge outputs "
                                 f"that do not overlap, one gp variant at a time")
            out[_problem(r)] = r["regret"][c]
    return out


def _paired(gp: list[dict], runs: list[dict], c: int) -> np.ndarray:
    """(n, 2): gp's and a peer's regret at checkpoint c on each problem both ran."""
    by_problem = _by_problem(gp, c)
    _by_problem(runs, c)  # refuses duplicates
    return np.array([(by_problem[_problem(r)], r["regret"][c]) for r in runs
                     if c in r["regret"] and _problem(r) in by_problem]).reshape(-1, 2)


def _ratio_to_strongest(gp: list[dict], peers: dict[str, list[dict]], c: int
                        ) -> tuple[float, str] | None:
    """max over peers of mean(gp) / mean(peer) at checkpoint c, each over the problems both
    ran (bimix skips heldout: it is compared on the rest), and which peer that is."""
    worst = None
    for name, runs in peers.items():
        pairs = _paired(gp, runs, c)
        if not len(pairs):
            continue
        ratio = float(pairs[:, 0].mean() / max(pairs[:, 1].mean(), 1e-12))
        if worst is None or ratio > worst[0]:
            worst = (ratio, name)
    return worst


def ratio_interval(pairs: np.ndarray, draws: int = 4000, seed: int = 0) -> tuple[float, float]:
    """95% paired-bootstrap interval of mean(gp) / mean(peer) over the problems (rows)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(pairs), (draws, len(pairs)))
    ratios = pairs[rows, 0].mean(axis=1) / np.maximum(pairs[rows, 1].mean(axis=1), 1e-12)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def strongest_ratio_interval(gp: list[dict], peers: dict[str, list[dict]], c: int,
                             draws: int = 4000, seed: int = 0) -> tuple[float, float]:
    """95% paired-bootstrap interval of the ratio to the strongest peer at checkpoint c:
    each draw resamples gp's problems, and the strongest peer is chosen again within it
    (max over peers of mean(gp) / mean(peer) on the drawn problems each peer ran), so the
    interval carries the uncertainty of which peer is strongest, too."""
    ours = _by_problem(gp, c)
    problems = list(ours)
    g = np.array([ours[p] for p in problems])
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(problems), (draws, len(problems)))
    best = np.full(draws, -np.inf)
    for runs in peers.values():
        theirs = _by_problem(runs, c)
        ran = np.array([p in theirs for p in problems], dtype=float)
        if not ran.any():
            continue
        v = np.array([theirs.get(p, 0.0) for p in problems])
        n = np.maximum((ran[rows]).sum(axis=1), 1)
        ratio = ((g * ran)[rows].sum(axis=1) / n) / np.maximum((v * ran)[rows].sum(axis=1) / n,
                                                              1e-12)
        best = np.maximum(best, np.where(ran[rows].sum(axis=1) > 0, ratio, -np.inf))
    best = best[np.isfinite(best)]
    lo, hi = np.percentile(best, [2.5, 97.5])
    return float(lo), float(hi)


def _table(results: list[dict], samplers: list[str]) -> str:
    """Per mode and (k, sigma): mean / median / worst regret of each sampler at each checkpoint
    over every family and seed, and gp's ratio to the strongest peer."""
    lines = []
    checkpoints = sorted({int(c) for r in results for c in r["regret"]})
    for mode in MODES:
        for k, noise in sorted({(r["k"], r["noise"]) for r in results}):
            block = [r for r in results if r["k"] == k and r["noise"] == noise]
            present = [x for x in samplers if _in_mode(block, mode, x)]
            if mode == "values" and not any(r["mode"] == "values" for r in block):
                continue
            if mode == "losses" and not any(r["mode"] == "losses" for r in block):
                continue
            families = sorted({r["family"] for r in block})
            lines += ["", f"### {mode} mode, k = {k}, sigma = {noise} "
                      f"({', '.join(families)}): mean / median / worst", ""]
            lines += ["| sampler | runs | " + " | ".join(f"{c} trials" for c in checkpoints) + " |",
                      "|---|---|" + "---|" * len(checkpoints)]
            for x in present:
                rs = _in_mode(block, mode, x)
                cells = []
                for c in checkpoints:
                    vals = [r["regret"][c] for r in rs if c in r["regret"]]
                    cells.append("{:.4f} / {:.4f} / {:.4f}".format(*_stats(vals)) if vals else "")
                lines.append(f"| {x} | {len(rs)} | " + " | ".join(cells) + " |")
            gp = _in_mode(block, mode, "gp")
            if not gp:
                continue
            # [lo, hi]: 95% paired-bootstrap interval over the problems, the strongest peer
            # chosen again in every draw
            groups = {"strongest peer": [x for x in present if x != "gp"]}
            if mode == "values":
                groups["strongest Optuna sampler"] = [x for x in present if x in OPTUNAS]
            for label, names in groups.items():
                cells = []
                for c in checkpoints:
                    peers = {x: _in_mode(block, mode, x) for x in names}
                    worst = _ratio_to_strongest(gp, peers, c)
                    if worst is None:
                        cells.append("")
                        continue
                    lo, hi = strongest_ratio_interval(gp, peers, c)
                    cells.append(f"{worst[0]:.2f} [{lo:.2f}, {hi:.2f}] ({worst[1]})")
                lines.append(f"| gp mean / {label}'s | | " + " | ".join(cells) + " |")
            last = max((c for c in checkpoints if all(c in r["regret"] for r in gp)), default=0)
            if last > 8 and all(8 in r["regret"] for r in gp):
                # (a run already within a tenth of the noise of the optimum at 8 is not stuck)
                stuck = [r for r in gp if r["regret"][last] >= r["regret"][8] - 1e-12
                         and r["regret"][8] >= 0.1 * noise]
                lines.append(f"\ngp runs whose recommendation at {last} trials is no better "
                             f"than at 8 (and was not within sigma/10 of the optimum there): "
                             f"{len(stuck)} of {len(gp)}"
                             + "".join(f"; {r['family']} seed {r['seed']}" for r in stuck))
    return "\n".join(lines)


def _family_table(results: list[dict], samplers: list[str], checkpoints=(16, 32)) -> str:
    """Per mode, k, sigma and family: gp's mean regret against the strongest peer's."""
    lines = ["", "### by family: gp's mean regret and the strongest peer's (same problems)", "",
             "| mode | k | sigma | family | " + " | ".join(
                 f"gp at {c} | strongest peer at {c}" for c in checkpoints) + " |",
             "|---|---|---|---|" + "---|---|" * len(checkpoints)]
    keys = sorted({(r["k"], r["noise"], r["family"]) for r in results})
    for mode in MODES:
        for k, noise, family in keys:
            block = [r for r in results
                     if (r["k"], r["noise"], r["family"]) == (k, noise, family)]
            gp = _in_mode(block, mode, "gp")
            if not gp or not any(r["mode"] == mode for r in gp):
                continue
            cells = []
            for c in checkpoints:
                ours = [r["regret"][c] for r in gp if c in r["regret"]]
                best = None
                for x in samplers:
                    if x == "gp":
                        continue
                    vals = [r["regret"][c] for r in _in_mode(block, mode, x) if c in r["regret"]]
                    if vals and (best is None or np.mean(vals) < best[0]):
                        best = (float(np.mean(vals)), x)
                cells.append(f"{np.mean(ours):.4f}" if ours else "")
                cells.append(f"{best[0]:.4f} ({best[1]})" if best else "")
            lines.append(f"| {mode} | {k} | {noise} | {family} | " + " | ".join(cells) + " |")
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

    panels = [(m, k, s) for m in MODES for k, s in sorted({(r["k"], r["noise"]) for r in results})
              if any(r["mode"] == m and r["k"] == k and r["noise"] == s for r in results)]
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols,
                        subplot_titles=[f"{m}: k={k}, sigma={s}" for m, k, s in panels])
    palette = ("#d62728", "#7f7f7f", "#1f77b4", "#17becf", "#2ca02c", "#bcbd22", "#9467bd",
               "#8c564b", "#e377c2", "#ff7f0e")
    colours = dict(zip(ALL_SAMPLERS, palette))
    for i, (mode, k, noise) in enumerate(panels):
        block = [r for r in results if r["k"] == k and r["noise"] == noise]
        for x in samplers:
            rs = _in_mode(block, mode, x)
            if not rs:
                continue
            cps = sorted({int(c) for r in rs for c in r["regret"]})
            mean = [float(np.mean([r["regret"][c] for r in rs if c in r["regret"]])) for c in cps]
            fig.add_trace(
                go.Scatter(x=cps, y=mean, name=x, legendgroup=x, showlegend=i == 0,
                           line={"color": colours.get(x)}),
                row=i // cols + 1, col=i % cols + 1,
            )
    fig.update_xaxes(type="log", title_text="trials")
    fig.update_yaxes(type="log", title_text="mean simple regret")
    fig.update_layout(height=330 * rows, width=1100,
                      title="Mean simple regret of the recommended mixture, over families and seeds")
    fig.write_html(str(out) + ".html", include_plotlyjs="cdn")
    try:
        fig.write_image(str(out) + ".png")
    except Exception as e:  # kaleido (or its browser) missing: HTML only
        print(f"PNG skipped (kaleido unavailable?): {e.__class__.__name__}: {str(e).strip()[:200]}")


def _report(results: list[dict], samplers: list[str]) -> str:
    return _table(results, samplers) + "\n" + _family_table(results, samplers)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--families", "--family", default=",".join(FAMILIES))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--ks", default="5,10,20")
    p.add_argument("--noises", default="0.01,0.02")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--n-trials", type=int, default=32)
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
        table = _report(results, samplers)
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
    modes = a.modes.split(",")
    options = json.loads(a.gp_options)
    tasks = []
    for family in a.families.split(","):
        for k in map(int, a.ks.split(",")):
            for noise in map(float, a.noises.split(",")):
                for seed in range(a.first_seed, a.first_seed + a.seeds):
                    for x in samplers:
                        n = SOBOL_TRIALS if x == "sobol" else a.n_trials
                        # a sampler that never reads the losses runs once for both modes
                        for mode in (modes if reads_losses(x) else modes[-1:]):
                            if runs_in(x, mode, family):
                                tasks.append((x, family, k, noise, seed, n,
                                              options if x == "gp" else {}, mode))
    # slow ones first so that the pool ends together
    tasks.sort(key=lambda t: (0 if "gp" in t[0] or t[0] in LAWS else 1, -t[2]))
    t0 = time.time()
    results = []
    with ProcessPoolExecutor(a.jobs) as pool:
        for i, r in enumerate(pool.map(_run, tasks), 1):
            results.append(r)
            if i % max(1, len(tasks) // 20) == 0:
                print(f"# {i}/{len(tasks)} runs, {time.time() - t0:.0f} s", flush=True)
    print(f"# {len(tasks)} runs in {time.time() - t0:.0f} s")
    table = _report(results, samplers) if results else ""
    print(table)
    timing = []
    for item in filter(None, a.timing.split(",")):
        k, n = map(int, item.split(":"))
        for x in a.timing_samplers.split(","):
            sec = time_suggestion(x, k, n, a.timing_repeats)
            timing.append({"sampler": x, "k": k, "n": n, "seconds": sec})
            print(f"timing {x} k={k} n={n}: {sec:.3f} s/suggestion", flush=True)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        Path(str(out) + ".json").write_text(json.dumps({"runs": results, "timing": timing}))
        Path(str(out) + ".md").write_text(table + "\n" + _timing_table(timing))
        if results:
            _plot(results, samplers, out)


if __name__ == "__main__":
    main()
