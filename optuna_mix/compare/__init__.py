"""``optuna-mix study compare``: the seed's table, every approach on the same budget, one command.

One Optuna study per approach and seed, all in one storage and named
``f"{config name}/{approach}/seed{seed}"``; each stores its own config (the study's with the
approach's sampler and the seed), so ``study report`` and ``study optimize`` work on it, and
rerunning the comparison carries on where it stopped (finished trials are reused, never rerun).

The table, per approach, over the seeds:

- best: the best trial value found (lowest criterion), mean +- std over seeds;
- vs sobol: its best minus Sobol's (random search on the simplex, the seed's reference),
  paired by seed, since every approach at one seed shares that seed's initialisation and
  noise: mean +- standard error and the 95% t interval over the seeds; beyond noise: that
  interval excludes 0 (with one seed, the difference exceeds twice the run-to-run sigma);
  seeds for it: how many seeds a difference of that size and spread needs for its interval
  to exclude 0;
- regret (analytic surfaces only): true, noise-free regret of the best trial's mixture;
- trials to best: how many trials the approach needed before its best-so-far came within
  2 x the re-evaluation noise of the best value any approach reached at the same seed,
  averaged over the seeds that got there (the count of those seeds is shown when not all did);
- best mixture: the mixture of the approach's best trial over all seeds.

The noise sigma is measured by repeated evaluations: every trial of a fixed-mixture approach
(uniform, llama, dolma, fixed) evaluates the same mixture, so the spread of those values is the
run-to-run noise of one evaluation: the variance within each seed's study (a noisy objective)
plus the variance of the study means over seeds (an objective that is deterministic given its
seed, like the GPT proxy, which seeds initialisation and batch order from the study's seed),
averaged over the fixed-mixture approaches run. The first part alone, the re-evaluation noise
of one mixture within a study, is reported apart: pairing by seed removes the second. Without
a fixed-mixture approach the noise is not measured and the "trials to best" column says so.

| module       | its job                                                                   |
|--------------|---------------------------------------------------------------------------|
| ``plan``     | which approaches run, each study's name, config and budget                |
| ``run``      | create or resume the studies, run them (in worker processes with jobs > 1) |
| ``stats``    | read them back: best values, noise sigma, trials to best                  |
| ``render``   | the table (terminal, Markdown), the best-so-far plot, files, dashboard    |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from optuna_mix.compare.plan import (
    Plan,
    approach_config,
    budget_of,
    compare_approaches,
    default_approaches,
    make_plans,
    resolve_approaches,
    study_name,
    unavailable_reason,
)
from optuna_mix.compare.render import (
    GRAPH_ID,
    best_so_far_figure,
    criteria_table_rows,
    print_criteria_table,
    markdown,
    print_table,
    publish_to_dashboard,
    save_outputs,
    table_rows,
)
from optuna_mix.compare.run import run_studies
from optuna_mix.compare.stats import (
    NOISE_FACTOR,
    ApproachResult,
    CompareResult,
    CriterionRow,
    collect,
    criterion_rows,
    evaluation_variance,
    paired_difference,
    within_study_variance,
)
from optuna_mix.config import CRITERION_KEYS, StudyConfig, parse_config
from optuna_mix.storage import open_storage


def criterion_config(config: StudyConfig, criterion: str) -> StudyConfig:
    """``config`` under ``criterion``: its own criterion keeps the study names, another one
    names its studies ``f"{name}@{criterion}"`` (the criterion's keys from the config kept)."""
    if criterion == config.criterion:
        return config
    study = {k: v for k, v in config.raw.get("study", {}).items()
             if not k.startswith("criterion_")
             or CRITERION_KEYS.get(k) == criterion}
    study.update(name=f"{config.name}@{criterion}", criterion=criterion)
    return parse_config({**config.raw, "study": study}, source=f"--criteria {criterion}")


def run_compare_criteria(
    config: StudyConfig, storage_url: str, criteria: Sequence[str], **options: Any
) -> list[tuple[str, CompareResult]]:
    """:func:`run_compare` under each of ``criteria`` (each resumable on its own)."""
    configs = [(c, criterion_config(config, c)) for c in criteria]  # all checked first
    for _, cfg in configs:
        _refuse(cfg)
    return [(c, run_compare(cfg, storage_url, **options)) for c, cfg in configs]


def _refuse(config: StudyConfig) -> None:
    """A config compare cannot run, with the reason (ValueError, one line)."""
    if config.scales is not None and len(config.scales.presets) > 1:
        raise ValueError("compare ranks the approaches by trial values, which differ by model "
                         "size in a study with several scales; compare mixtures at one size with "
                         "`study transfer`, or give the config one scale")
    if config.criterion_spec.multi_objective:
        raise ValueError("compare ranks approaches by one value per trial, and a pareto study "
                         "has one per validation set; compare its fronts by hypervolume with "
                         "benchmarks/pareto.py, or compare under another criterion")
    if config.criterion_spec.name == "excess":
        raise ValueError("compare with the excess criterion: every approach's study would train "
                         "its own reference mixture first, and a fixed mixture's study would "
                         "evaluate the reference instead of its own; compare under another "
                         "criterion")


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
    on_note: Callable[[str], None] = lambda note: None,
) -> CompareResult:
    """Run (or resume) the comparison and read back its table; the library entry point."""
    _refuse(config)
    names, notes = resolve_approaches(config, approaches)
    for note in notes:
        on_note(note)
    budget = n_trials or config.n_trials
    # every study's config is checked before any trial runs
    plans = make_plans(config, names, seeds, budget, fixed_trials)
    run_studies(plans, storage_url, jobs=jobs, cache_dir=cache_dir, progress=progress)
    seed_list = list(range(config.seed, config.seed + seeds))
    return collect(config, open_storage(storage_url), names, seed_list, budget, fixed_trials)




__all__ = [
    "CriterionRow", "criteria_table_rows", "criterion_config", "criterion_rows",
    "print_criteria_table", "run_compare_criteria",
    "GRAPH_ID", "NOISE_FACTOR", "ApproachResult", "CompareResult", "Plan", "approach_config",
    "best_so_far_figure", "budget_of", "collect", "compare_approaches", "default_approaches",
    "evaluation_variance", "paired_difference", "within_study_variance", "make_plans", "markdown", "print_table", "publish_to_dashboard",
    "resolve_approaches", "run_compare", "run_studies", "save_outputs", "study_name",
    "table_rows", "unavailable_reason",
]
