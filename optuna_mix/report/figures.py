"""The report's figures (plotly), each titled with what it shows.

| id (optuna-dashboard)     | figure                                                          |
|---------------------------|-----------------------------------------------------------------|
| ``history-by-cluster``    | every trial's value by trial number, coloured by weight cluster |
| ``top-mixtures-by-cluster`` | the good mixtures' weights (parallel coordinates) by cluster  |
| ``per-domain-losses``     | the best mixture's per-domain loss against the references       |
| ``domain-utility``        | the GP's predicted change of the criterion per domain step      |
| ``pareto-front``          | a pareto study: every trial's losses, the front coloured by its |
|                           | distance to the ideal point                                     |
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
from plotly.colors import qualitative

from optuna_mix.report.data import StudyReport
from optuna_mix.utility import CRITERION_WORDS

OTHER_COLOUR = "#7f7f7f"  # good trials outside the headline clusters
REST_COLOUR = "#d0d0d0"  # trials outside the top


def _loss_words(report: StudyReport) -> str:
    return CRITERION_WORDS.get(report.criterion, f"{report.criterion} loss")


def _colour(label: str) -> str:
    if label.startswith("cluster "):
        return qualitative.Plotly[(int(label.split()[1]) - 1) % len(qualitative.Plotly)]
    return OTHER_COLOUR if label == "other" else REST_COLOUR


def _labels(report: StudyReport) -> list[str]:
    n = len(report.clusters.clusters) if report.clusters else 0
    return [f"cluster {i}" for i in range(1, n + 1)] + ["other", "not in the top"]


def history_by_cluster(report: StudyReport) -> go.Figure:
    """The seed's figure: the optimisation history, each trial coloured by its cluster."""
    figure = go.Figure()
    label_of = {r.number: report.cluster_label(r.number) for r in report.history}
    for label in _labels(report):
        rows = [r for r in report.history if label_of[r.number] == label]
        if rows:
            figure.add_trace(go.Scatter(
                x=[r.number for r in rows], y=[r.value for r in rows], mode="markers",
                name=label, marker={"color": _colour(label), "size": 9},
                text=[", ".join(f"{d} {r.weights[d]:.2f}" for d in report.domains) for r in rows],
                hovertemplate="trial %{x}: %{y:.4f}<br>%{text}<extra>" + label + "</extra>",
            ))
    best, running = [], float("inf") if report.minimise else -float("inf")
    for r in report.history:
        running = min(running, r.value) if report.minimise else max(running, r.value)
        best.append(running)
    figure.add_trace(go.Scatter(x=[r.number for r in report.history], y=best, mode="lines",
                                name="best so far", line={"color": "black", "width": 1}))
    figure.update_layout(
        title=f"Optimisation history by weight cluster ({report.criterion} criterion)",
        xaxis_title="trial", yaxis_title=_loss_words(report),
    )
    return figure


def top_mixtures_by_cluster(report: StudyReport) -> go.Figure:
    """The good mixtures as lines across the domains' weights, coloured by their cluster."""
    labels = [label for label in _labels(report)[:-1]  # the good trials' labels in use
              if any(report.cluster_label(r.number) == label for r in report.good)]
    rows = report.good
    ids = [labels.index(report.cluster_label(r.number)) for r in rows]
    n = max(len(labels) - 1, 1)
    scale = [[i / n, _colour(label)] for i, label in enumerate(labels)] if len(labels) > 1 \
        else [[0, _colour(labels[0])], [1, _colour(labels[0])]]
    dimensions = [{"label": d, "values": [r.weights[d] for r in rows], "range": [0, 1]}
                  for d in report.domains]
    dimensions.append({"label": "distance to the ideal point" if report.pareto
                       else report.criterion, "values": [r.value for r in rows]})
    figure = go.Figure(go.Parcoords(
        line={"color": ids, "colorscale": scale, "cmin": 0, "cmax": n},
        dimensions=dimensions,
    ))
    legend = ", ".join(
        f"<span style='color:{_colour(label)}'>{label}</span>" for label in labels)
    figure.update_layout(
        title=f"Top mixtures by weight cluster ({len(rows)} good trials): {legend}",
    )
    return figure


def per_domain_losses(report: StudyReport) -> go.Figure:
    """Per-domain loss of the best trial beside each reference's (grouped bars)."""
    assert report.best is not None
    figure = go.Figure()
    names = list(report.best.losses)
    figure.add_trace(go.Bar(name=f"best trial #{report.best.number}", x=names,
                            y=[report.best.losses[d] for d in names]))
    for ref in report.references:
        figure.add_trace(go.Bar(name=ref.tag, x=names, y=[ref.losses.get(d) for d in names],
                                error_y={"type": "data", "array": [ref.stds.get(d) for d in names]}
                                if ref.stds else None))
    against = ", ".join(r.label for r in report.references) or "no reference found"
    figure.update_layout(
        barmode="group", yaxis_title="validation loss",
        title=f"The best mixture's per-domain loss against {against}",
    )
    return figure


def domain_utility(report: StudyReport) -> go.Figure:
    """The GP's predicted change of the criterion when each domain's weight moves a step."""
    figure = go.Figure()
    rows = report.utility
    for side, colour in (("up", "#2ca02c"), ("down", "#d62728")):
        kept = [u for u in rows if getattr(u, f"{side}_change") is not None]
        figure.add_trace(go.Bar(
            name=f"{'raise' if side == 'up' else 'lower'} by up to {report.utility_step:g}",
            x=[u.domain for u in kept], y=[getattr(u, f"{side}_change") for u in kept],
            error_y={"type": "data", "array": [getattr(u, f"{side}_std") for u in kept]},
            marker={"color": colour},
        ))
    figure.update_layout(
        barmode="group", yaxis_title=f"predicted change of the {_loss_words(report)}",
        title=f"The GP's domain utility: predicted change of the {_loss_words(report)}<br>"
        f"when one domain's weight moves by up to {report.utility_step:g} from the GP's "
        "recommendation (below 0 is better; bars: +- 1 std)",
    )
    return figure


def pareto_front(report: StudyReport) -> go.Figure:
    """Every complete trial as a line across the validation sets' losses; the front's lines
    coloured by their distance to the ideal point, the dominated trials grey."""
    on_front = {r.number: r.value for r in report.good}
    rows = sorted(report.history, key=lambda r: r.number in on_front)  # the front drawn last
    colour = [on_front.get(r.number, -1.0) for r in rows]
    top = max([*on_front.values(), 1e-9])
    dimensions = [{"label": o, "values": [r.losses.get(o) for r in rows]}
                  for o in report.objectives]
    figure = go.Figure(go.Parcoords(
        line={"color": colour, "cmin": -top / 4, "cmax": top, "showscale": True,
              "colorscale": [[0, REST_COLOUR], [0.19, REST_COLOUR], [0.2, "#1f77b4"],
                             [1, "#d62728"]],
              "colorbar": {"title": "distance to the ideal point"}},
        dimensions=dimensions,
    ))
    figure.update_layout(title=f"Pareto front: {len(on_front)} of {len(rows)} trials no other "
                         "beats on every validation set (grey: dominated)")
    return figure


FIGURES: dict[str, Callable[[StudyReport], go.Figure]] = {
    "history-by-cluster": history_by_cluster,
    "top-mixtures-by-cluster": top_mixtures_by_cluster,
    "per-domain-losses": per_domain_losses,
    "domain-utility": domain_utility,
}


def figures(report: StudyReport) -> dict[str, go.Figure]:
    """The figures this report has data for, by their dashboard id."""
    if report.best is None:
        return {}
    if report.pareto:
        out = {"pareto-front": pareto_front(report),
               "per-domain-losses": per_domain_losses(report)}
        if report.clusters is not None:
            out["top-mixtures-by-cluster"] = top_mixtures_by_cluster(report)
        return out
    skip = {"domain-utility"} | (set() if report.best.losses else {"per-domain-losses"})
    out = {name: make(report) for name, make in FIGURES.items() if name not in skip}
    if report.utility:
        out["domain-utility"] = domain_utility(report)
    return out
