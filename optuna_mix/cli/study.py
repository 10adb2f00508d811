"""``optuna-mix study create / optimize / report / list``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import optuna

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
from optuna_mix.storage import DEFAULT_STORAGE, close_storage, open_storage


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
@click.option(
    "--criterion",
    default=None,
    metavar="NAME",
    help="Overrides [study] criterion of the config (e.g. max, or pareto for one objective "
    "per validation set).",
)
@click.option("--load-if-exists", is_flag=True, help="Join an existing study of that name.")
@user_errors
def create(
    config_path: str,
    storage: str | None,
    study_name: str | None,
    sampler: str | None,
    criterion: str | None,
    load_if_exists: bool,
) -> None:
    """Create a study from a TOML config; its config is stored in the study."""
    from optuna_mix.runner import create_mix_study

    config = load_config(config_path).with_sampler(sampler).with_criterion(criterion)
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
@click.option("--heartbeat-interval", type=click.IntRange(min=1), default=None, metavar="S",
              help="Seconds between a running trial's heartbeats [default: the config's "
              "[storage] heartbeat_interval, else 60].")
@click.option("--grace-period", type=click.IntRange(min=1), default=None, metavar="S",
              help="Seconds without a heartbeat before the next worker fails a trial and runs "
              "its mixture again [default: the config's [storage] grace_period, else 180].")
@click.option("--dashboard-every", type=click.IntRange(min=0), default=5, show_default=True,
              metavar="N", help="Refresh the figures and note in optuna-dashboard every N "
              "complete trials (0: never).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Worker processes to start on the study; they share its budget exactly.")
@click.option("--devices", "devices_text", default=None, metavar="LIST",
              help="Comma-separated devices (cpu, cuda, cuda:N), one per job, round robin "
              "[default: the config's [objective] device].")
@user_errors
def optimize(
    study_name: str,
    storage: str | None,
    n_trials: int | None,
    timeout: float | None,
    cache_dir: str,
    progress: bool,
    heartbeat_interval: int | None,
    grace_period: int | None,
    dashboard_every: int,
    jobs: int,
    devices_text: str | None,
) -> None:
    """Run trials of a study (any number of workers, here or on other machines, at once)."""
    from optuna_mix.runner import load_mix_study, optimize as run_optimize
    from optuna_mix.schema import heartbeat_problem
    from optuna_mix.workers import assign_devices, parse_devices

    first = open_storage(storage)
    config = load_mix_study(study_name, first).config
    given = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
    settings = {**config.storage_options, **{k: v for k, v in given.items() if v is not None}}
    if problem := heartbeat_problem(settings, where="--heartbeat-interval/--grace-period:"):
        raise UserError(problem)
    pool = assign_devices(jobs, parse_devices(devices_text))
    for device in {job.device for job in pool if job.device is not None}:
        _check_device(config, device)
    if jobs > 1:
        worker_args = ["--study-name", study_name, "--storage", storage or DEFAULT_STORAGE,
                       "--cache-dir", cache_dir, "--dashboard-every", str(dashboard_every),
                       *(f"--{k.replace('_', '-')}={v}" for k, v in given.items() if v is not None),
                       *([f"--n-trials={n_trials}"] if n_trials is not None else []),
                       *([f"--timeout={timeout}"] if timeout is not None else [])]
        _optimize_jobs(load_mix_study(study_name, first), pool, worker_args,
                       progress=progress and n_trials is None)
        return
    # the storage again, with this study's heartbeat settings (its config lives in it)
    close_storage(first)
    mix = load_mix_study(study_name, open_storage(storage, **settings), worker_seed_offset=True)
    with exit_on_interrupt("the running trial is marked FAIL, finished trials are kept"):
        ran = run_optimize(
            mix, n_trials=n_trials, timeout=timeout, cache_dir=Path(cache_dir),
            show_progress=progress, dashboard_every=dashboard_every, device=pool[0].device,
        )
    click.echo(f"{ran} trials finished in this run; the study now has {mix.finished}.")
    _print_best(mix)


def _check_device(config, device: str) -> None:
    """A device the objective can train on here, or a one-line error before any job starts."""
    config.with_device(device)  # the objective has a device and the name is well-formed
    from optuna_mix.trainers import resolve_device

    resolve_device(device)  # e.g. cuda on a machine without CUDA: ValueError, exit 2


def _optimize_jobs(mix, pool, worker_args: list[str], *, progress: bool) -> None:
    from optuna_mix.workers import run_jobs

    before = mix.finished
    result = run_jobs(pool, worker_args, finished=lambda: mix.finished,
                      budget=mix.config.n_trials, show_progress=progress)
    if result.signal_name is not None:
        click.echo(f"optuna-mix: interrupted by {result.signal_name}; every job marked its "
                   "running trial FAIL, finished trials are kept. Run the same command again "
                   "to carry on.", err=True)
        sys.exit(result.exit_code)
    failed = [(job, code) for job, code in zip(pool, result.exit_codes) if code != 0]
    click.echo(f"{mix.finished - before} trials finished in this run by {len(pool)} jobs; "
               f"the study now has {mix.finished}.")
    _print_best(mix)
    if failed:
        listed = ", ".join(f"{job.label} exited {code}" for job, code in failed)
        click.echo(f"optuna-mix: error: {listed} (see its lines above)", err=True)
        sys.exit(result.exit_code)


def _print_best(mix) -> None:
    from optuna_mix.report import build_report

    report = build_report(mix.study, mix.config.domain_names, top=1, with_model=False,
                          scales=mix.config.scales)
    best = report.best
    if best is None:
        click.echo("no complete trial yet")
        return
    if report.pareto:
        click.echo(f"pareto front: {len(report.good)} of {report.n_complete} complete trials; "
                   f"closest to the ideal point: trial #{best.number} (distance "
                   f"{best.value:.3f}; `study report` shows the front)")
    else:
        click.echo(f"best trial #{best.number}: value {best.value:.4f}")
    if set(best.losses) == set(report.domains):  # the usual case: one loss per domain
        for d in report.domains:
            click.echo(f"  {d:<12} weight {best.weights[d]:.4f}   loss {best.losses[d]:.4f}")
        return
    click.echo("  " + ", ".join(f"{d} {best.weights[d]:.4f}" for d in report.domains))
    if best.losses:  # validation sets that are not the training domains
        click.echo("  losses: " + ", ".join(f"{n} {v:.4f}" for n, v in best.losses.items()))


def _top(value: str) -> float | int:
    """--top: a fraction in (0, 1] of the complete trials ("0.25", "1.0"), or a count ("12")."""
    text = value.strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not 0 < number <= 1:  # NaN fails this too
        raise click.BadParameter(
            f"{value!r} is neither a fraction in (0, 1] nor a count >= 1", param_hint="--top")
    return number


@study.command()
@study_name_option
@storage_option
@click.option("--top", default="0.25", show_default=True, metavar="FRACTION|N",
              help="The good trials the clusters and tables use: a fraction of the complete "
              "trials (at least 8 of them), or a count.")
@click.option("--clusters", "max_clusters", type=click.IntRange(min=1), default=5,
              show_default=True, help="At most this many weight clusters.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Also write report.md, report.json and every figure as HTML and PNG here.")
@click.option("--against", multiple=True, metavar="STUDY",
              help="Another study of the storage whose best trial is a reference (repeatable).")
@click.option(
    "--dashboard/--no-dashboard",
    default=True,
    show_default=True,
    help="Also save the figures and the report (as the study's note) for optuna-dashboard.",
)
@user_errors
def report(study_name: str, storage: str | None, top: str, max_clusters: int, fmt: str,
           out_dir: str | None, against: tuple[str, ...], dashboard: bool) -> None:
    """Best trial, top mixtures, weight clusters, per-domain comparison, domain utility."""
    from optuna_mix import report as reporting
    from optuna_mix.runner import load_mix_study

    opened = open_storage(storage)
    mix = load_mix_study(study_name, opened)
    rep = reporting.build_report(
        mix.study, mix.config.domain_names, storage=opened, sampler=mix.config.sampler,
        criterion=mix.config.criterion, top=_top(top), max_clusters=max_clusters,
        against=against, scales=mix.config.scales,
    )
    if fmt == "json":
        click.echo(reporting.to_json(rep))
    elif fmt == "markdown":
        click.echo(reporting.markdown(rep))
    else:
        reporting.print_text(rep)
    if out_dir is not None:
        try:
            written, no_png = reporting.export(rep, Path(out_dir))
        except OSError as e:
            raise UserError(f"--out {out_dir}: {e.strerror or e}") from None
        click.echo(f"written: {', '.join(str(p) for p in written)}", err=True)
        if no_png:
            click.echo(f"optuna-mix: no PNG figures ({no_png})", err=True)
    if dashboard:
        _, noted = reporting.publish(mix.study, opened, rep)
        if not noted:
            click.echo("optuna-mix: the study's note was written in the dashboard; kept, not "
                       "replaced by the report (the figures are updated)", err=True)


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


@study.command()
@study_name_option
@storage_option
@click.option("--preset", required=True, metavar="LARGER",
              help="The model preset to train the mixtures at (larger than the study's).")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, metavar="K",
              help="The study's K best mixtures (at its smallest trained size) to transfer.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@cache_dir_option
@progress_option
@user_errors
def transfer(study_name: str, storage: str | None, preset: str, top: int, fmt: str,
             cache_dir: str, progress: bool) -> None:
    """Train the study's top mixtures, uniform, its small-scale optimum and the GP's
    recommendation at a larger preset (a sibling study NAME@PRESET; rerun to carry on), then
    report their rank correlation across sizes and whether the recommendation won there."""
    from optuna_mix.runner import load_mix_study
    from optuna_mix.transfer import plan_transfer, print_transfer, run_transfer
    import json

    opened = open_storage(storage)
    mix = load_mix_study(study_name, opened)
    plan = plan_transfer(mix, preset, top)
    with exit_on_interrupt(f"finished trainings are kept in study {plan.sibling!r}"):
        run_transfer(plan, mix, opened, cache_dir=Path(cache_dir), show_progress=progress)
    if fmt == "json":
        click.echo(json.dumps(plan.to_dict(), indent=2))
    else:
        print_transfer(plan)
