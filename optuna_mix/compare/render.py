"""Rendering a comparison: the table (terminal, Markdown), the best-so-far plot, the files."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np

from optuna_mix.compare.plan import budget_of, study_name
from optuna_mix.compare.stats import LEVEL, MAX_SEEDS, NOISE_FACTOR, CompareResult, CriterionRow

GRAPH_ID = "compare-best-so-far"


def _fmt(x: float | None, digits: int = 4, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def table_rows(result: CompareResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table (shared by the terminal and Markdown renderings)."""
    surfaces = any(a.regrets is not None for a in result.approaches)
    header = ["approach", "best (mean ± std)", "vs sobol (paired: mean ± se [95% CI])",
              "beyond noise", "seeds for it"]
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
        paired = result.paired_to_sobol(a)
        if a.approach == "sobol":
            versus, needed = "-", "-"
        elif paired is None:  # one seed: no pairs to take the spread of
            versus, needed = _fmt(result.delta_to_sobol(a), sign=True), "-"
        else:
            versus = (f"{paired.mean:+.4f} ± {paired.se:.4f} "
                      f"[{paired.low:+.4f}, {paired.high:+.4f}]")
            needed = ("-" if paired.mean == 0 else
                      f"{paired.seeds_needed}" if paired.seeds_needed is not None
                      else f"> {MAX_SEEDS:,}")
        row = [
            a.approach,
            f"{a.mean:.4f} ± {a.std:.4f}",
            versus,
            "-" if beyond is None or a.approach == "sobol" else ("yes" if beyond else "no"),
            needed,
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
        f"re-evaluation noise of one mixture within a study: {_fmt(result.reeval_noise)}"
        + ("" if result.reeval_noise is None or result.noise is None
           or result.reeval_noise >= result.noise - 1e-12 else
           " (the rest of sigma is the spread between seeds, which pairing by seed removes)"),
        "vs sobol: the difference of best values paired by seed (every approach at one seed "
        f"shares its initialisation and noise), mean ± standard error and {LEVEL:.0%} t "
        "interval over the seeds; beyond noise: that interval excludes 0 (with one seed: "
        f"|difference| > {NOISE_FACTOR:g} sigma); seeds for it: how many seeds a difference "
        "of that size and spread needs for its interval to exclude 0",
        f"trials to best: trials until the best-so-far is within {NOISE_FACTOR:g} x the "
        "re-evaluation noise of the best value any approach reached at the same seed",
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
            print(f"optuna-mix: no PNG ({type(e).__name__}: {e})", file=sys.stderr)
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


def criteria_table_rows(rows: list[CriterionRow]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the across-criteria table: per criterion and approach, its best
    trials' mean loss, worst-domain loss and domains better than uniform (means over seeds)."""
    header = ["criterion", "approach", "its value", "mean loss", "worst-domain loss",
              "domains better than uniform"]
    out = [[r.criterion, r.approach, f"{r.value:.4f}", f"{r.mean_loss:.4f}",
            f"{r.worst_loss:.4f}",
            "-" if r.improved is None else f"{r.improved:.1f} of {r.n_domains}"]
           for r in rows]
    return header, out


def print_criteria_table(rows: list[CriterionRow]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    header, out = criteria_table_rows(rows)
    table = Table(title="each criterion's best mixtures, seen every way (means over seeds; "
                        "domains better than uniform: at the same seed)")
    for column in header:
        table.add_column(column, justify="left" if column in ("criterion", "approach")
                         else "right")
    for row in out:
        table.add_row(*row)
    console.print(table)
