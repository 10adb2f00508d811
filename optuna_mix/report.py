"""What a finished (or running) study found: best trial, top mixtures, their clusters, plots."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from scipy.cluster.hierarchy import fcluster, linkage

from optuna_mix.attrs import MIXTURE_ATTR


@dataclass
class StudyReport:
    domains: list[str]
    top: list[FrozenTrial]
    clusters: list[list[FrozenTrial]]
    n_complete: int
    n_failed: int
    n_pruned: int
    n_running: int


def trial_weights(trial: FrozenTrial, domains: list[str]) -> np.ndarray:
    weights = trial.user_attrs.get(MIXTURE_ATTR, {})
    return np.array([weights.get(d, np.nan) for d in domains])


def cluster_mixtures(
    trials: list[FrozenTrial], domains: list[str], *, threshold: float = 0.15
) -> list[list[FrozenTrial]]:
    """Group mixtures whose weights lie within ``threshold`` (L1/2, total variation) of a group.

    Complete linkage: every two mixtures of a cluster differ by at most ``threshold`` total
    variation. Clusters come ordered by their best trial.
    """
    if len(trials) < 2:
        return [list(trials)] if trials else []
    points = np.vstack([trial_weights(t, domains) for t in trials])
    labels = fcluster(
        linkage(points, method="complete", metric="cityblock"), 2 * threshold, "distance"
    )
    groups: dict[int, list[FrozenTrial]] = {}
    for label, trial in zip(labels, trials):
        groups.setdefault(int(label), []).append(trial)
    return sorted(groups.values(), key=lambda g: min(t.value for t in g))


def build_report(study: optuna.Study, domains: list[str], *, top_n: int = 10) -> StudyReport:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and MIXTURE_ATTR in t.user_attrs]
    complete.sort(key=lambda t: t.value)
    # clusters over the best quarter (at least the top n): where the good mixtures live
    best_quarter = complete[: max(top_n, len(complete) // 4)]

    def count(state: TrialState) -> int:
        return sum(t.state == state for t in trials)

    return StudyReport(
        domains=domains,
        top=complete[:top_n],
        clusters=cluster_mixtures(best_quarter, domains),
        n_complete=len(complete),
        n_failed=count(TrialState.FAIL),
        n_pruned=count(TrialState.PRUNED),
        n_running=count(TrialState.RUNNING),
    )


def top_mixtures_figure(report: StudyReport):  # -> plotly.graph_objects.Figure
    """Stacked bars of the top mixtures' weights, labelled by trial and value."""
    import plotly.graph_objects as go

    labels = [f"#{t.number} ({t.value:.4f})" for t in report.top]
    figure = go.Figure(
        [
            go.Bar(name=d, x=labels, y=[t.user_attrs[MIXTURE_ATTR][d] for t in report.top])
            for d in report.domains
        ]
    )
    figure.update_layout(
        barmode="stack",
        title="Top mixtures (best first)",
        yaxis_title="weight",
        xaxis_title="trial (value)",
    )
    return figure


def markdown_note(report: StudyReport) -> str:
    """The report as Markdown, for optuna-dashboard's study note."""
    lines = [
        f"**{report.n_complete} complete**, {report.n_pruned} pruned, {report.n_failed} failed, "
        f"{report.n_running} running.",
        "",
        "| trial | value | " + " | ".join(report.domains) + " |",
        "|---|---|" + "---|" * len(report.domains),
    ]
    for t in report.top:
        weights = " | ".join(f"{t.user_attrs[MIXTURE_ATTR][d]:.3f}" for d in report.domains)
        lines.append(f"| {t.number} | {t.value:.4f} | {weights} |")
    lines += ["", f"**{len(report.clusters)} clusters** among the best mixtures:", ""]
    for i, cluster in enumerate(report.clusters, 1):
        centre = np.mean([trial_weights(t, report.domains) for t in cluster], axis=0)
        mix = ", ".join(f"{d} {w:.2f}" for d, w in zip(report.domains, centre))
        lines.append(f"{i}. {len(cluster)} trial{'s' if len(cluster) != 1 else ''}, best {min(t.value for t in cluster):.4f}: {mix}")
    return "\n".join(lines)


def publish_to_dashboard(study: optuna.Study, report: StudyReport) -> None:
    """Show the report in optuna-dashboard: the top-mixtures plot and the Markdown note."""
    from optuna_dashboard import save_note, save_plotly_graph_object

    if report.top:
        save_plotly_graph_object(study, top_mixtures_figure(report), graph_object_id="top-mixtures")
    save_note(study, markdown_note(report))
