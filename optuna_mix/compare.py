"""``optuna-mix study compare``: the seed's table, every approach on the same budget, one command.

One Optuna study per approach and seed, all in one storage and named
``f"{config name}/{approach}/seed{seed}"``; each stores its own config (the study's with the
approach's sampler and the seed), so ``study report`` and ``study optimize`` work on it, and
rerunning the comparison carries on where it stopped (finished trials are reused, never rerun).

The table, per approach, over the seeds:

- best: the best trial value found (lowest criterion), mean +- std over seeds;
- vs sobol: its difference to Sobol's mean best (random search on the simplex, the seed's
  reference), and whether that difference is beyond the noise, i.e. larger than twice the
  measured run-to-run noise sigma;
- regret (analytic surfaces only): true, noise-free regret of the best trial's mixture;
- trials to best: how many trials the approach needed before its best-so-far came within
  2 sigma of the overall best (the lowest mean best of any approach), averaged over the seeds
  that got there (the count of those seeds is shown when not all did);
- best mixture: the mixture of the approach's best trial over all seeds.

The noise sigma is measured by repeated evaluations: every trial of a fixed-mixture approach
(uniform, llama, dolma, fixed) evaluates the same mixture, so the spread of those values is the
run-to-run noise of one evaluation: the variance within each seed's study (a noisy objective)
plus the variance of the study means over seeds (an objective that is deterministic given its
seed, like the GPT proxy, which seeds initialisation and batch order from the study's seed),
averaged over the fixed-mixture approaches run. Without a fixed-mixture approach the noise is not measured and the
"beyond noise" and "trials to best" columns say so.
"""

from __future__ import annotations

import copy
import math
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from optuna_mix.config import StudyConfig, load_config, parse_config
from optuna_mix.storage import DEFAULT_STORAGE, open_storage

DEFAULT_APPROACHES = ("gp", "sobol", "uniform", "llama", "dolma", "bimix", "dml", "regmix")
OTHER_APPROACHES = ("fixed", "tpe", "random")
FIXED_APPROACHES = ("uniform", "llama", "dolma", "fixed")
PRESET_APPROACHES = ("llama", "dolma")
GRAPH_ID = "compare-best-so-far"
NOISE_FACTOR = 2.0  # "beyond the noise" = more than 2 sigma


def _presets() -> dict[str, dict[str, float]]:
    from optuna_mix.samplers.fixed import DOLMA_WEIGHTS, LLAMA_WEIGHTS

    return {"llama": LLAMA_WEIGHTS, "dolma": DOLMA_WEIGHTS}


def study_name(config: StudyConfig, approach: str, seed: int) -> str:
    return f"{config.name}/{approach}/seed{seed}"


def sampler_of(approach: str) -> str:
    return "fixed" if approach in PRESET_APPROACHES else approach


def unavailable_reason(config: StudyConfig, approach: str) -> str | None:
    """Why ``approach`` cannot run on ``config`` (None when it can)."""
    from optuna_mix.sampler_factory import _sampler_class

    if approach not in DEFAULT_APPROACHES + OTHER_APPROACHES:
        known = ", ".join(DEFAULT_APPROACHES + OTHER_APPROACHES)
        return f"unknown approach {approach!r} (choose from {known})"
    try:
        _sampler_class(sampler_of(approach))
    except Exception:  # not there, or its module fails to import (e.g. a missing dependency)
        if approach == "gp":
            return "approach 'gp' is not available: optuna_mix.samplers has no SimplexGPSampler"
        return f"approach {approach!r} is not available in this version of optuna-mix"
    if approach in PRESET_APPROACHES:
        missing = [d for d in _presets()[approach] if d not in config.domains]
        if missing:
            return (
                f"approach {approach!r} needs the seed's domains books, web, code, papers, "
                f"social; the config lacks {', '.join(missing)}"
            )
    if approach == "fixed" and "weights" not in config.options_for("fixed"):
        return "approach 'fixed' needs weights in a [sampler.fixed] table of the config"
    return None


def resolve_approaches(
    config: StudyConfig, requested: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The approaches to run and notes on default ones skipped.

    Explicitly requested approaches must all be available (else ValueError naming the first
    that is not); of the defaults, unavailable ones are skipped with a note.
    """
    if requested is not None:
        names = [a.strip() for a in requested if a.strip()]
        if not names:
            raise ValueError("--approaches names no approach")
        dupes = sorted({a for a in names if names.count(a) > 1})
        if dupes:
            raise ValueError(f"--approaches names {', '.join(dupes)} twice")
        for a in names:
            reason = unavailable_reason(config, a)
            if reason:
                raise LookupError(reason)
        return names, []
    names, notes = [], []
    for a in DEFAULT_APPROACHES:
        reason = unavailable_reason(config, a)
        if reason:
            notes.append(f"skipping {reason}")
        else:
            names.append(a)
    return names, notes


def approach_config(
    config: StudyConfig, approach: str, seed: int, n_trials: int
) -> StudyConfig:
    """The config of one study of the comparison: the approach's sampler, the seed, the budget.

    The objective stays the same across seeds (a surface keeps its seed); only the sampler's
    seed (and the GPT objective's, which is the run-to-run noise) changes.
    """
    raw = copy.deepcopy(config.raw)
    raw["study"] = {
        **raw.get("study", {}),
        "name": study_name(config, approach, seed),
        "seed": seed,
        "n_trials": n_trials,
    }
    sampler = sampler_of(approach)
    if approach in PRESET_APPROACHES:
        options: dict[str, Any] = {"weights": dict(_presets()[approach])}
    else:
        options = copy.deepcopy(config.options_for(approach))
    raw["sampler"] = {"name": sampler, **options}
    if config.objective == "surface":
        objective = dict(raw.get("objective", {}))
        objective.setdefault("seed", config.seed)
        raw["objective"] = objective
    return parse_config(raw, source=f"approach {approach!r}")


# -- running the studies ------------------------------------------------------------------------
@dataclass
class Plan:
    approach: str
    seed: int
    name: str
    config: StudyConfig

    @property
    def budget(self) -> int:
        return self.config.n_trials


def budget_of(approach: str, n_trials: int, fixed_trials: int | None) -> int:
    """Trials per study: ``fixed_trials`` for the fixed-mixture approaches when given."""
    if fixed_trials is not None and approach in FIXED_APPROACHES:
        return fixed_trials
    return n_trials


def make_plans(
    config: StudyConfig,
    approaches: Sequence[str],
    seeds: int,
    n_trials: int,
    fixed_trials: int | None = None,
) -> list[Plan]:
    return [
        Plan(
            a, s, study_name(config, a, s),
            approach_config(config, a, s, budget_of(a, n_trials, fixed_trials)),
        )
        for a in approaches
        for s in range(config.seed, config.seed + seeds)
    ]


def _run_study(storage_url: str, name: str, n_trials: int, cache_dir: str) -> int:
    """Run ``n_trials`` more trials of one study (in this process or a worker process)."""
    import optuna

    from optuna_mix.runner import load_mix_study, optimize

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mix = load_mix_study(name, open_storage(storage_url), worker_seed_offset=True)
    return optimize(mix, n_trials=n_trials, cache_dir=cache_dir, show_progress=False)


class _Progress:
    """One bar over every study's budget, refreshed from the storage twice a second."""

    def __init__(self, storage, study_ids: list[int], total: int, enabled: bool) -> None:
        from optuna.trial import TrialState
        from tqdm.auto import tqdm

        self.storage, self.study_ids = storage, study_ids
        self.states = (TrialState.COMPLETE, TrialState.PRUNED)
        initial = self.count()
        self.bar = tqdm(
            total=total, initial=initial, desc="compare", unit="trial",
            file=sys.stderr, disable=not enabled or initial >= total,  # nothing left: no bar
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def count(self) -> int:
        return sum(self.storage.get_n_trials(i, state=self.states) for i in self.study_ids)

    def refresh(self) -> None:
        try:
            done = self.count()
        except Exception:  # a busy SQLite file: try again on the next tick
            return
        self.bar.update(done - self.bar.n)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.refresh()

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.refresh()
        self.bar.close()


def run_studies(
    plans: Sequence[Plan],
    storage_url: str,
    *,
    jobs: int = 1,
    cache_dir: str | Path = ".optuna-mix-cache",
    progress: bool = True,
) -> int:
    """Create (or resume) every study and run each up to its budget of finished trials.

    Returns how many trials finished in this call. Studies run one after another, or ``jobs``
    at a time in worker processes.
    """
    from optuna.trial import TrialState

    from optuna_mix.attrs import CONFIG_ATTR
    from optuna_mix.runner import create_mix_study

    storage = open_storage(storage_url)
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    todo: list[tuple[str, int]] = []
    study_ids = []
    for plan in plans:
        try:
            study_id = storage.get_study_id_from_name(plan.name)
        except KeyError:
            study_id = None
        if study_id is not None:
            # a finished study is only checked, not loaded (loading builds its sampler)
            stored = storage.get_study_user_attrs(study_id).get(CONFIG_ATTR) or {}
            if list(stored.get("domains", {})) != plan.config.domain_names:
                raise ValueError(
                    f"study {plan.name!r} already exists with other domains; use another "
                    "storage or another [study] name"
                )
            finished = storage.get_n_trials(study_id, state=finished_states)
            if finished >= plan.budget:
                study_ids.append(study_id)
                continue
        mix = create_mix_study(plan.config, storage, study_name=plan.name, load_if_exists=True)
        study_ids.append(mix.study._study_id)
        if mix.finished < plan.budget:
            todo.append((plan.name, plan.budget - mix.finished))
    total = sum(plan.budget for plan in plans)
    ran = 0
    with _Progress(storage, study_ids, total, progress) as bar:
        if jobs <= 1 or len(todo) <= 1:
            for name, remaining in todo:
                bar.bar.set_postfix_str(name, refresh=False)
                ran += _run_study(storage_url, name, remaining, str(cache_dir))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")  # torch and threads: no fork
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                futures = [
                    pool.submit(_run_study, storage_url, name, remaining, str(cache_dir))
                    for name, remaining in todo
                ]
                ran = sum(f.result() for f in futures)
    return ran


# -- the table ------------------------------------------------------------------------------
@dataclass
class ApproachResult:
    approach: str
    seeds: list[int]
    curves: list[np.ndarray]  # best-so-far after each complete trial, one per seed
    best_values: np.ndarray  # per seed
    regrets: np.ndarray | None  # true regret of each seed's best trial (surfaces)
    best_mixture: dict[str, float]
    n_trials: list[int]
    fixed_values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.best_values))

    @property
    def std(self) -> float:
        return float(np.std(self.best_values, ddof=1)) if len(self.best_values) > 1 else 0.0


@dataclass
class CompareResult:
    config: StudyConfig
    approaches: list[ApproachResult]
    noise: float | None
    noise_how: str
    n_trials: int
    seeds: list[int]
    fixed_trials: int | None = None

    def get(self, approach: str) -> ApproachResult | None:
        return next((a for a in self.approaches if a.approach == approach), None)

    @property
    def overall_best(self) -> float:
        return min(a.mean for a in self.approaches)

    def delta_to_sobol(self, a: ApproachResult) -> float | None:
        sobol = self.get("sobol")
        return None if sobol is None else a.mean - sobol.mean

    def beyond_noise(self, a: ApproachResult) -> bool | None:
        delta = self.delta_to_sobol(a)
        if delta is None or self.noise is None:
            return None
        return abs(delta) > NOISE_FACTOR * self.noise

    def trials_to_best(self, a: ApproachResult) -> tuple[float | None, int]:
        """Mean trials to come within 2 sigma of the overall best, and how many seeds did."""
        if self.noise is None:
            return None, 0
        target = self.overall_best + NOISE_FACTOR * self.noise
        hits = [int(np.argmax(c <= target)) + 1 for c in a.curves if len(c) and c.min() <= target]
        return (float(np.mean(hits)) if hits else None), len(hits)


def collect(
    config: StudyConfig,
    storage,
    approaches: Sequence[str],
    seeds: Sequence[int],
    n_trials: int,
    fixed_trials: int | None = None,
) -> CompareResult:
    """Read the comparison's studies back from the storage."""
    import optuna
    from optuna.trial import TrialState

    from optuna_mix.attrs import MIXTURE_ATTR

    results = []
    variances: list[float] = []  # per fixed-mixture approach: the variance of one evaluation
    n_evaluations = 0
    for approach in approaches:
        curves, bests, regrets, counts, fixed_values = [], [], [], [], []
        per_seed: list[np.ndarray] = []
        best_trial = None
        for seed in seeds:
            study = optuna.load_study(study_name=study_name(config, approach, seed), storage=storage)
            trials = [
                t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)
            ]
            trials.sort(key=lambda t: t.number)
            trials = trials[: budget_of(approach, n_trials, fixed_trials)]
            counts.append(len(trials))
            if not trials:
                continue
            values = np.array([t.value for t in trials])
            curves.append(np.minimum.accumulate(values))
            best = trials[int(np.argmin(values))]
            bests.append(best.value)
            if "regret" in best.user_attrs:
                regrets.append(float(best.user_attrs["regret"]))
            if best_trial is None or best.value < best_trial.value:
                best_trial = best
            if approach in FIXED_APPROACHES:
                fixed_values.extend(values.tolist())
                per_seed.append(values)
        if not bests:
            raise LookupError(f"approach {approach!r} has no complete trial in any seed")
        variance = evaluation_variance(per_seed) if approach in FIXED_APPROACHES else None
        if variance is not None:
            variances.append(variance)
            n_evaluations += len(fixed_values)
        mixture = best_trial.user_attrs.get(MIXTURE_ATTR, {})
        results.append(
            ApproachResult(
                approach=approach,
                seeds=list(seeds),
                curves=curves,
                best_values=np.array(bests),
                regrets=np.array(regrets) if len(regrets) == len(bests) else None,
                best_mixture={d: float(mixture.get(d, float("nan"))) for d in config.domain_names},
                n_trials=counts,
                fixed_values=fixed_values,
            )
        )
    fixed_run = [a for a in approaches if a in FIXED_APPROACHES]
    if variances:
        noise = math.sqrt(float(np.mean(variances)))
        how = (
            f"std of one evaluation of a fixed mixture, from {n_evaluations} repeated "
            f"evaluations ({', '.join(fixed_run)}; within-study and between-seed variance, "
            "averaged over those approaches)"
        )
        if noise == 0.0:
            how += (
                "; every repeated evaluation gave the same value: for an objective that is "
                "deterministic given its seed, run --seeds 2 or more"
            )
    else:
        noise, how = None, "not measured (run a fixed-mixture approach: uniform, llama or dolma)"
    return CompareResult(config, results, noise, how, n_trials, list(seeds), fixed_trials)


def evaluation_variance(per_seed: Sequence[np.ndarray]) -> float | None:
    """Variance of one evaluation of a fixed mixture, from its values in each seed's study.

    Within-study variance (a noisy objective: each trial draws new noise) plus the variance of
    the study means over seeds (an objective that is deterministic given the study's seed, like
    the GPT proxy, varies only between seeds). None with fewer than two evaluations.
    """
    per_seed = [np.asarray(v, float) for v in per_seed if len(v)]
    if sum(len(v) for v in per_seed) < 2:
        return None
    within = [float(np.var(v, ddof=1)) for v in per_seed if len(v) > 1]
    means = [float(np.mean(v)) for v in per_seed]
    between = float(np.var(means, ddof=1)) if len(means) > 1 else 0.0
    return (float(np.mean(within)) if within else 0.0) + between


def _fmt(x: float | None, digits: int = 4, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def table_rows(result: CompareResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table (shared by the terminal and Markdown renderings)."""
    surfaces = any(a.regrets is not None for a in result.approaches)
    header = ["approach", "best (mean ± std)", "vs sobol", "beyond noise"]
    if surfaces:
        header.append("true regret")
    header += ["trials to best", "best mixture (" + " / ".join(result.config.domain_names) + ")"]
    rows = []
    for a in sorted(result.approaches, key=lambda a: a.mean):
        beyond = result.beyond_noise(a)
        hits_mean, hits = result.trials_to_best(a)
        if hits_mean is None:
            to_best = "-" if result.noise is None else "never"
        else:
            to_best = f"{hits_mean:.0f}" + ("" if hits == len(a.curves) else f" ({hits}/{len(a.curves)} seeds)")
        row = [
            a.approach,
            f"{a.mean:.4f} ± {a.std:.4f}",
            "-" if a.approach == "sobol" else _fmt(result.delta_to_sobol(a), sign=True),
            "-" if beyond is None or a.approach == "sobol" else ("yes" if beyond else "no"),
        ]
        if surfaces:
            row.append(_fmt(float(np.mean(a.regrets)) if a.regrets is not None else None))
        row += [
            to_best,
            " / ".join(f"{w:.2f}" for w in a.best_mixture.values()),
        ]
        rows.append(row)
    return header, rows


def summary_lines(result: CompareResult) -> list[str]:
    config = result.config
    seeds = result.seeds
    lines = [
        f"{config.name}: {len(result.approaches)} approaches x {len(seeds)} seeds "
        f"({seeds[0]}..{seeds[-1]}) x {result.n_trials} trials"
        + (f" ({result.fixed_trials} for fixed mixtures)" if result.fixed_trials else "")
        + f"; objective {config.objective}, criterion {config.criterion} (lower is better)",
        f"run-to-run noise sigma = {_fmt(result.noise)}: {result.noise_how}",
        f"beyond noise: |difference to sobol| > {NOISE_FACTOR:g} sigma; trials to best: trials "
        f"until the best-so-far is within {NOISE_FACTOR:g} sigma of the overall best "
        f"({_fmt(result.overall_best)})",
    ]
    short = [
        f"{a.approach} ({min(a.n_trials)} trials)" for a in result.approaches
        if min(a.n_trials) < budget_of(a.approach, result.n_trials, result.fixed_trials)
    ]
    if short:
        lines.append("not all trials finished: " + ", ".join(short))
    return lines


def markdown(result: CompareResult) -> str:
    header, rows = table_rows(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([*summary_lines(result), "", *lines]) + "\n"


def print_table(result: CompareResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    for line in summary_lines(result):
        console.print(line, highlight=False)
    header, rows = table_rows(result)
    table = Table(title="best value per approach (same budget)")
    for column in header:
        table.add_column(column, justify="left" if column == "approach" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def best_so_far_figure(result: CompareResult):  # -> plotly.graph_objects.Figure
    """Best value so far vs trials per approach: mean over seeds, band from min to max."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    figure = go.Figure()
    palette = qualitative.Plotly
    for i, a in enumerate(sorted(result.approaches, key=lambda a: a.mean)):
        n = min(len(c) for c in a.curves)
        curves = np.vstack([c[:n] for c in a.curves])
        x = np.arange(1, n + 1)
        color = palette[i % len(palette)]
        if len(curves) > 1:
            figure.add_trace(go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([curves.max(0), curves.min(0)[::-1]]),
                fill="toself", fillcolor=color, opacity=0.15, line={"width": 0},
                hoverinfo="skip", legendgroup=a.approach, showlegend=False,
            ))
        figure.add_trace(go.Scatter(
            x=x, y=curves.mean(0), mode="lines" if n > 1 else "markers", name=a.approach,
            legendgroup=a.approach,
            line={"color": color},
        ))
    if result.noise is not None:
        figure.add_hline(
            y=result.overall_best + NOISE_FACTOR * result.noise, line_dash="dot",
            annotation_text=f"overall best + {NOISE_FACTOR:g} sigma",
        )
    figure.update_layout(
        title=f"{result.config.name}: best {result.config.criterion} loss so far "
        f"(mean over {len(result.seeds)} seeds, band: min to max)",
        xaxis_title="trials",
        yaxis_title=f"best value so far ({result.config.criterion} validation loss)",
    )
    return figure


def save_outputs(result: CompareResult, output_dir: Path) -> list[Path]:
    """The plot as HTML (and PNG where kaleido is installed) and the table as Markdown."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", result.config.name) + "-compare"
    figure = best_so_far_figure(result)
    written = [output_dir / f"{stem}.html", output_dir / f"{stem}.md"]
    figure.write_html(written[0], include_plotlyjs="cdn")
    written[1].write_text(markdown(result), encoding="utf-8")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        pass
    else:
        try:
            figure.write_image(output_dir / f"{stem}.png", width=1000, height=600)
            written.append(output_dir / f"{stem}.png")
        except Exception as e:  # kaleido present but no browser: the HTML is there
            click.echo(f"optuna-mix: no PNG ({type(e).__name__}: {e})", err=True)
    return written


def publish_to_dashboard(result: CompareResult, storage) -> None:
    """The best-so-far plot into every study of the comparison, for optuna-dashboard."""
    import optuna
    from optuna_dashboard import save_plotly_graph_object

    figure = best_so_far_figure(result)
    for a in result.approaches:
        for seed in result.seeds:
            study = optuna.load_study(
                study_name=study_name(result.config, a.approach, seed), storage=storage
            )
            save_plotly_graph_object(study, figure, graph_object_id=GRAPH_ID)


def run_compare(
    config: StudyConfig,
    storage_url: str,
    *,
    approaches: Sequence[str] | None = None,
    n_trials: int | None = None,
    seeds: int = 3,
    fixed_trials: int | None = None,
    jobs: int = 1,
    cache_dir: str | Path = ".optuna-mix-cache",
    progress: bool = True,
) -> CompareResult:
    """Run (or resume) the comparison and read back its table; the library entry point."""
    names, notes = resolve_approaches(config, approaches)
    for note in notes:
        click.echo(f"optuna-mix: {note}", err=True)
    budget = n_trials or config.n_trials
    # every study's config is checked before any trial runs
    plans = make_plans(config, names, seeds, budget, fixed_trials)
    run_studies(plans, storage_url, jobs=jobs, cache_dir=cache_dir, progress=progress)
    seed_list = list(range(config.seed, config.seed + seeds))
    return collect(config, open_storage(storage_url), names, seed_list, budget, fixed_trials)


@click.command("compare")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Study config (TOML): objective, domains, per-sampler options.")
@click.option("--approaches", default=None, metavar="A,B,...",
              help="Comma-separated approaches: " + ", ".join(DEFAULT_APPROACHES + OTHER_APPROACHES)
              + " [default: every available one of " + ",".join(DEFAULT_APPROACHES) + "].")
@click.option("--n-trials", type=click.IntRange(min=1), default=None,
              help="Budget per approach and seed [default: the config's [study] n_trials].")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Seeds per approach: the config's seed, seed+1, ...")
@click.option("--fixed-trials", type=click.IntRange(min=1), default=None,
              help="Budget of the fixed-mixture approaches (uniform, llama, dolma, fixed) "
              "[default: --n-trials]. 1 suffices for an objective that is deterministic given "
              "its seed (the GPT proxy): the seeds then measure the noise.")
@click.option("--storage", default=None, metavar="URL",
              help=f"SQLAlchemy URL of the study storage [default: {DEFAULT_STORAGE}].")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Studies run at once, in worker processes.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where the plot (HTML, PNG with kaleido) and the Markdown table go.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=".optuna-mix-cache",
              show_default=True, help="Tokenizer and token cache of the GPT objective.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--dashboard/--no-dashboard", default=True, show_default=True,
              help="Also save the plot into every study for optuna-dashboard.")
def compare(
    config_path: str,
    approaches: str | None,
    n_trials: int | None,
    seeds: int,
    fixed_trials: int | None,
    storage: str | None,
    jobs: int,
    output_dir: str,
    cache_dir: str,
    progress: bool,
    dashboard: bool,
) -> None:
    """Every approach on the same budget, several seeds: the seed's table (resumable)."""
    from optuna_mix.cli import USER_ERRORS, UserError

    try:
        config = load_config(config_path)
        url = storage or DEFAULT_STORAGE
        open_storage(url)  # a bad URL is a one-line error before anything runs
        started = time.perf_counter()
        try:
            result = run_compare(
                config, url,
                approaches=approaches.split(",") if approaches is not None else None,
                n_trials=n_trials, seeds=seeds, fixed_trials=fixed_trials, jobs=jobs,
                cache_dir=cache_dir,
                progress=progress,
            )
        except KeyboardInterrupt:
            click.echo(
                "optuna-mix: interrupted; finished trials are kept. Run the same command "
                "again to carry on.", err=True,
            )
            sys.exit(130)
        print_table(result)
        written = save_outputs(result, Path(output_dir))
        if dashboard:
            publish_to_dashboard(result, open_storage(url))
        click.echo(
            f"plot and table: {', '.join(str(p) for p in written)}"
            + (f"; plot saved in every study (graph {GRAPH_ID!r})" if dashboard else "")
            + f" ({time.perf_counter() - started:.0f} s)"
        )
    except USER_ERRORS as e:
        raise UserError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
