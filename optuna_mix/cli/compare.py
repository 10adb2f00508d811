"""``optuna-mix study compare``: every approach on the same budget, several seeds, one table."""

from __future__ import annotations

import time
from pathlib import Path

import click

from optuna_mix.cli.common import (
    cache_dir_option,
    exit_on_interrupt,
    progress_option,
    storage_option,
    user_errors,
)
from optuna_mix.compare import (
    GRAPH_ID,
    compare_approaches,
    default_approaches,
    criterion_rows,
    print_criteria_table,
    print_table,
    publish_to_dashboard,
    run_compare_criteria,
    save_outputs,
)
from optuna_mix.config import load_config
from optuna_mix.storage import DEFAULT_STORAGE, open_storage


@click.command("compare")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Study config (TOML): objective, domains, per-sampler options.")
@click.option("--approaches", default=None, metavar="A,B,...",
              help="Comma-separated approaches: " + ", ".join(compare_approaches())
              + " [default: every available one of " + ",".join(default_approaches()) + "].")
@click.option("--criteria", default=None, metavar="C1,C2,...",
              help="Run the comparison under each of these criteria (mean, max, median, "
              "weighted, cvar, excess; the config's keys for them apply) and add a table of "
              "every criterion's best mixtures: mean loss, worst-domain loss, domains better "
              "than uniform [default: the config's criterion only].")
@click.option("--n-trials", type=click.IntRange(min=1), default=None,
              help="Budget per approach and seed [default: the config's [study] n_trials].")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Seeds per approach: the config's seed, seed+1, ...")
@click.option("--fixed-trials", type=click.IntRange(min=1), default=None,
              help="Budget of the fixed-mixture approaches (uniform, llama, dolma, fixed) "
              "[default: --n-trials]. 1 suffices for an objective that is deterministic given "
              "its seed (the GPT proxy): the seeds then measure the noise.")
@storage_option
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Studies run at once, in worker processes.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where the plot (HTML, PNG with kaleido) and the Markdown table go.")
@cache_dir_option
@progress_option
@click.option("--dashboard/--no-dashboard", default=True, show_default=True,
              help="Also save the plot into every study for optuna-dashboard.")
@user_errors
def compare(
    config_path: str,
    approaches: str | None,
    criteria: str | None,
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
    config = load_config(config_path)
    url = storage or DEFAULT_STORAGE
    open_storage(url)  # a bad URL is a one-line error before anything runs
    started = time.perf_counter()
    names = [c.strip() for c in criteria.split(",")] if criteria else [config.criterion]
    if "uniform" not in (approaches or "uniform").split(",") and len(names) > 1:
        click.echo("optuna-mix: no uniform approach: the criteria table cannot say on how many "
                   "domains a mixture beats uniform", err=True)
    options = dict(approaches=approaches.split(",") if approaches is not None else None,
                   n_trials=n_trials, seeds=seeds, fixed_trials=fixed_trials, jobs=jobs,
                   cache_dir=cache_dir, progress=progress,
                   on_note=lambda note: click.echo(f"optuna-mix: {note}", err=True))
    with exit_on_interrupt("finished trials are kept"):
        results = run_compare_criteria(config, url, names, **options)
    written = []
    for name, result in results:
        if len(results) > 1:
            click.echo(f"\ncriterion {name}:")
        print_table(result)
        written += save_outputs(result, Path(output_dir))
        if dashboard:
            publish_to_dashboard(result, open_storage(url))
    if len(results) > 1:
        print_criteria_table([row for name, result in results
                              for row in criterion_rows(name, result)])
    click.echo(
        f"plot and table: {', '.join(str(p) for p in written)}"
        + (f"; plot saved in every study (graph {GRAPH_ID!r})" if dashboard else "")
        + f" ({time.perf_counter() - started:.0f} s)"
    )
