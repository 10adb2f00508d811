"""The report as text (the terminal, through rich), Markdown (the dashboard's note, report.md)
and JSON, from one list of sections so that the three say the same."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from optuna_mix.report.data import StudyReport
from optuna_mix.utility import CRITERION_WORDS

TRADE_LINES = 10  # a pareto front's mixtures whose trades are spelled out, the closest first


@dataclass
class Section:
    """A heading, lines of prose, and at most one table (header, rows)."""

    title: str
    lines: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _mixture(weights: dict[str, float], domains: list[str], digits: int = 3) -> str:
    return ", ".join(f"{d} {weights.get(d, float('nan')):.{digits}f}" for d in domains)


def sections(report: StudyReport) -> list[Section]:
    """What the report says, in order."""
    from optuna_mix.utility import utility_sentence

    d = report.domains
    out = [Section(
        f"study {report.study_name}",
        [f"{report.n_complete} complete, {report.n_pruned} pruned, {report.n_failed} failed, "
         f"{report.n_running} running; sampler {report.sampler}, criterion {report.criterion}"],
    )]
    best = report.best
    if best is None:
        out[0].lines.append("no complete trial yet")
        return out
    if report.pareto:
        out += _front_sections(report)
    else:
        out.append(Section(
            "top mixtures (weights)", header=["trial", "value", *d],
            rows=[[str(r.number), f"{r.value:.4f}", *(f"{r.weights[x]:.3f}" for x in d)]
                  for r in report.top],
        ))
    names = list(best.losses) or d
    which = "closest to the ideal point" if report.pareto else "best trial"
    loss_rows = [[f"{which} #{best.number}", *(f"{best.losses.get(n, float('nan')):.4f}"
                                               for n in names)]]
    for ref in report.references:
        loss_rows.append([ref.tag,
                          *(f"{ref.losses.get(n, float('nan')):.4f}" for n in names)])
    comparison = Section(f"per-domain validation loss of the {which} (#{best.number})",
                         header=["", *names], rows=loss_rows)
    for ref in report.references:
        gain = report.improvement_over(ref)
        better = [n for n, g in gain.items() if g > 0]
        comparison.lines.append(
            f"better than {ref.label} on {len(better)} of {len(gain)} domains"
            + (": " + ", ".join(f"{n} ({-gain[n]:+.4f})" for n in better) if better else "")
            + (f" (uniform's losses as the GP predicts them, std "
               f"{min(ref.stds.values()):.4f} to {max(ref.stds.values()):.4f}: no trial "
               "trained it; enqueue one to measure it)" if ref.stds else "")
        )
    if not report.references:
        comparison.lines.append(
            "no reference found (a uniform trial in this study, sibling studies of a compare "
            "run, or --against STUDY)")
    out.append(comparison)

    if report.pick is not None and report.pick.at is not None:
        p = report.pick
        out.append(Section(f"the GP's recommendation for {p.at}", [
            f"the GP's recommendation for {p.at}: trial #{p.trial_number}'s mixture, "
            f"predicted {p.value:.4f} +- {p.std:.4f} at {p.at}: {_mixture(p.weights, d)}",
            f"(the scale-aware GP of the {report.model_of}, its law prior extrapolating in "
            f"model size; no trial trained at {p.at}, so its +- is unchecked there: `study "
            "transfer` measures it)"]))
    elif report.pick is not None:
        p = report.pick
        out.append(Section("the GP's recommendation", [
            f"the GP's recommendation (posterior mean, not biased by the luck of one noisy "
            f"trial): trial #{p.trial_number}, predicted {p.value:.4f} +- {p.std:.4f}: "
            f"{_mixture(p.weights, d)}",
            f"(a constant-mean GP of the {report.model_of} fitted for this report; how its "
            "+- was checked: docs/report.md)"]))
    if report.utility:
        words = CRITERION_WORDS.get(report.criterion, f"{report.criterion} loss")
        out.append(Section(
            f"domain utility (the GP's predicted change of the {words}, step "
            f"{report.utility_step:g})",
            [utility_sentence(u, report.criterion) for u in report.utility],
        ))
    if report.clusters is not None:
        result = report.clusters
        headline = Section(
            f"{len(result.clusters)} cluster{'s' if len(result.clusters) != 1 else ''} among "
            f"the best mixtures ({len(report.good)} trials)",
            [result.method],
            header=["cluster", "trials", "best", "mean", "spread (TV)", *d],
        )
        for i, c in enumerate(result.clusters, 1):
            headline.rows.append([
                str(i), str(c.size), f"{c.best:.4f}", f"{c.mean:.4f}", f"{c.spread_tv:.3f}",
                *(f"{w:.2f}" for w in c.centre)])
        if result.other:
            headline.lines.append(
                f"other: {len(result.other)} trial{'s' if len(result.other) != 1 else ''} in "
                "no cluster (" + ", ".join(f"#{report.good[i].number}" for i in result.other)
                + ")")
        out.append(headline)
    out += [Section("note", [n]) for n in report.notes]
    return out


def _front_sections(report: StudyReport) -> list[Section]:
    """A pareto study's front: each mixture's losses, what it trades against the compromise
    (the mixture closest to the ideal point), and the front's weights."""
    objectives, front = report.objectives, report.good
    best = front[0]
    losses = Section(
        f"pareto front: {len(front)} mixture{'s' if len(front) != 1 else ''} no other beats on "
        f"every validation set (of {report.n_complete} complete)",
        ["ideal point (each set's lowest loss on the front): "
         + ", ".join(f"{o} {report.ideal[o]:.4f}" for o in objectives),
         f"closest to it: trial #{best.number} (distance {best.value:.3f}, in units of the "
         "front's range per set)"],
        header=["trial", "distance", *objectives, "lowest of the front on"],
    )
    lowest = {o: min(front, key=lambda r: r.losses[o]).number for o in objectives}
    for r in front:
        mine = [o for o in objectives if lowest[o] == r.number]
        losses.rows.append([str(r.number), f"{r.value:.3f}",
                            *(f"{r.losses[o]:.4f}" for o in objectives), ", ".join(mine) or "-"])
        if r is best or len(losses.lines) >= 2 + TRADE_LINES:
            continue
        better = [o for o in objectives if r.losses[o] < best.losses[o]]
        worse = [o for o in objectives if r.losses[o] > best.losses[o]]
        losses.lines.append(
            f"#{r.number} against #{best.number}: better on "
            + (", ".join(f"{o} ({r.losses[o] - best.losses[o]:+.4f})" for o in better) or "none")
            + "; worse on "
            + (", ".join(f"{o} ({r.losses[o] - best.losses[o]:+.4f})" for o in worse) or "none"))
    if len(front) - 1 > TRADE_LINES:
        losses.lines.append(f"(the trades of the {len(front) - 1 - TRADE_LINES} mixtures "
                            "farther from the ideal point: in the table)")
    weights = Section("pareto front (weights)", header=["trial", *report.domains],
                      rows=[[str(r.number), *(f"{r.weights[x]:.3f}" for x in report.domains)]
                            for r in front])
    return [losses, weights]


def markdown(report: StudyReport) -> str:
    lines: list[str] = []
    for i, s in enumerate(sections(report)):
        lines.append(f"{'#' if i == 0 else '###'} {s.title}")
        lines.append("")
        lines += [f"{line}  " for line in s.lines]
        if s.header:
            lines += ["", "| " + " | ".join(s.header) + " |",
                      "|" + "---|" * len(s.header)]
            lines += ["| " + " | ".join(row) + " |" for row in s.rows]
        lines.append("")
    return "\n".join(lines)


def to_json(report: StudyReport) -> str:
    return json.dumps(report.to_dict(), indent=1)


def print_text(report: StudyReport) -> None:
    from rich.console import Console
    from rich.table import Table

    import sys

    # a pipe or a narrow terminal must not squeeze the tables' numbers into ellipses
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    for s in sections(report):
        if s.header:
            table = Table(title=s.title)
            for column in s.header:
                table.add_column(column, justify="right", no_wrap=True)
            for row in s.rows:
                table.add_row(*row)
            console.print(table)
        elif s.title.startswith("study "):
            console.print(f"[bold]{s.title}[/]")
        elif s.title != "note" and not s.title.startswith("the GP"):
            console.print(f"{s.title}:")
        for line in s.lines:
            console.print(("  " if s.header or s.title.startswith("domain") else "") + line,
                          highlight=False)
