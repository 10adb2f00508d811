"""``optuna-mix study create / optimize / report / list``."""

from __future__ import annotations

from pathlib import Path

import click
import optuna

from optuna_mix.attrs import LOSSES_ATTR, MIXTURE_ATTR
from optuna_mix.catalogue import APPROACHES
from optuna_mix.cli.common import (
    UserError,
    cache_dir_option,
    exit_on_interrupt,
    progress_option,
    storage_option,
    study_name_option,
    user_errors,
)
from optuna_mix.config import load_config
from optuna_mix.storage import open_storage


@click.group()
def study() -> None:
    """Create, run and inspect mixture studies."""


@study.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@storage_option
@click.option("--study-name", default=None, help="Overrides [study] name of the config.")
@click.option(
    "--sampler",
    default=None,
    metavar="NAME",
    help=f"Overrides [sampler] name of the config: {', '.join(APPROACHES)}.",
)
@click.option("--load-if-exists", is_flag=True, help="Join an existing study of that name.")
@user_errors
def create(
    config_path: str,
    storage: str | None,
    study_name: str | None,
    sampler: str | None,
    load_if_exists: bool,
) -> None:
    """Create a study from a TOML config; its config is stored in the study."""
    from optuna_mix.runner import create_mix_study

    config = load_config(config_path).with_sampler(sampler)
    try:
        mix = create_mix_study(
            config,
            open_storage(storage),
            study_name=study_name,
            load_if_exists=load_if_exists,
        )
    except optuna.exceptions.DuplicatedStudyError:
        name = study_name or config.name
        raise UserError(
            f"study {name!r} already exists (use --load-if-exists to join it)"
        ) from None
    click.echo(
        f"study {mix.study.study_name!r}: {len(config.domains)} domains "
        f"({', '.join(config.domain_names)}), sampler {mix.config.sampler}, "
        f"objective {config.objective}, budget {config.n_trials} trials, "
        f"{mix.finished} finished"
    )


@study.command()
@study_name_option
@storage_option
@click.option(
    "--n-trials",
    type=click.IntRange(min=1),
    default=None,
    help="Trials for this worker [default: until the study's budget is reached].",
)
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Seconds.")
@cache_dir_option
@progress_option
@user_errors
def optimize(
    study_name: str,
    storage: str | None,
    n_trials: int | None,
    timeout: float | None,
    cache_dir: str,
    progress: bool,
) -> None:
    """Run trials of a study (any number of workers may run this at once)."""
    from optuna_mix.runner import load_mix_study, optimize as run_optimize

    mix = load_mix_study(study_name, open_storage(storage), worker_seed_offset=True)
    with exit_on_interrupt("the running trial is marked FAIL, finished trials are kept"):
        ran = run_optimize(
            mix, n_trials=n_trials, timeout=timeout, cache_dir=Path(cache_dir),
            show_progress=progress,
        )
    click.echo(f"{ran} trials finished in this run; the study now has {mix.finished}.")
    _print_best(mix.study, mix.config.domain_names)


def _print_best(study: optuna.Study, domains: list[str]) -> None:
    from optuna_mix.report import build_report

    report = build_report(study, domains, top_n=1)
    if not report.top:
        click.echo("no complete trial yet")
        return
    best = report.top[0]
    click.echo(f"best trial #{best.number}: value {best.value:.4f}")
    losses = best.user_attrs.get(LOSSES_ATTR, {})
    for d in domains:
        click.echo(
            f"  {d:<12} weight {best.user_attrs[MIXTURE_ATTR][d]:.4f}   loss {losses.get(d, float('nan')):.4f}"
        )


def _print_recommendation(console, study: optuna.Study, domains: list[str]) -> None:
    """The GP's pick (best posterior mean), where the study's sampler has a model.

    With noisy trials the best observed value is the luckiest draw, biased low; the model's
    posterior mean at the evaluated mixtures is not.
    """
    from optuna_mix.samplers import SimplexGPSampler

    sampler = study.sampler
    if not isinstance(sampler, SimplexGPSampler) or len(study.directions) > 1:
        return
    try:
        rec = sampler.recommend(study)
        weights = rec.weights
    except (ValueError, KeyError):  # no completed trial with the mixture, several mixtures
        return
    mixture = ", ".join(f"{d} {weights.get(d, float('nan')):.3f}" for d in domains)
    console.print(
        f"the GP's recommendation (posterior mean, not biased by the luck of one noisy "
        f"trial): trial #{rec.trial_number}, predicted {rec.value:.4f} +- {rec.std:.4f}: "
        f"{mixture}"
    )


@study.command()
@study_name_option
@storage_option
@click.option("--top", "top_n", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--dashboard/--no-dashboard",
    default=True,
    show_default=True,
    help="Also save the plot and the table into the storage for optuna-dashboard.",
)
@user_errors
def report(study_name: str, storage: str | None, top_n: int, dashboard: bool) -> None:
    """Best trial, top mixtures, per-domain losses and clusters of good mixtures."""
    from rich.console import Console
    from rich.table import Table

    from optuna_mix.report import build_report, publish_to_dashboard, trial_weights
    from optuna_mix.runner import load_mix_study

    mix = load_mix_study(study_name, open_storage(storage))
    domains = mix.config.domain_names
    rep = build_report(mix.study, domains, top_n=top_n)
    console = Console(soft_wrap=True)
    console.print(
        f"study [bold]{study_name}[/]: {rep.n_complete} complete, {rep.n_pruned} pruned, "
        f"{rep.n_failed} failed, {rep.n_running} running; sampler {mix.config.sampler}, "
        f"criterion {mix.config.criterion}"
    )
    if not rep.top:
        console.print("no complete trial yet")
        return
    table = Table(title="top mixtures (weights)")
    for column in ["trial", "value", *domains]:
        table.add_column(column, justify="right")
    for t in rep.top:
        table.add_row(str(t.number), f"{t.value:.4f}", *(f"{w:.3f}" for w in trial_weights(t, domains)))
    console.print(table)

    best = rep.top[0]
    losses = best.user_attrs.get(LOSSES_ATTR, {})
    loss_table = Table(title=f"per-domain validation loss of the best trial (#{best.number})")
    for d in domains:
        loss_table.add_column(d, justify="right")
    loss_table.add_row(*(f"{losses.get(d, float('nan')):.4f}" for d in domains))
    console.print(loss_table)

    _print_recommendation(console, mix.study, domains)
    console.print(f"{len(rep.clusters)} clusters among the best mixtures:")
    for i, cluster in enumerate(rep.clusters, 1):
        centre = sum(trial_weights(t, domains) for t in cluster) / len(cluster)
        mixture = ", ".join(f"{d} {w:.2f}" for d, w in zip(domains, centre))
        console.print(f"  {i}. {len(cluster)} trial{'s' if len(cluster) != 1 else ''}, best {min(t.value for t in cluster):.4f}: {mixture}")
    if dashboard:
        publish_to_dashboard(mix.study, rep)


@study.command(name="list")
@storage_option
@user_errors
def list_studies(storage: str | None) -> None:
    """The studies in a storage, with trial counts and best values."""
    summaries = optuna.get_all_study_summaries(open_storage(storage), include_best_trial=True)
    if not summaries:
        click.echo("no studies")
        return
    for s in summaries:
        best = f"{s.best_trial.value:.4f}" if s.best_trial is not None else "-"
        click.echo(f"{s.study_name}\t{s.n_trials} trials\tbest {best}")
