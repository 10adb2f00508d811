"""What a study found, as plain numbers: the good trials, their clusters, the references, the
GP's recommendation and the domain utility. Rendered by :mod:`.render`, drawn by
:mod:`.figures`, published by :mod:`.dashboard`; ``to_dict`` is the JSON form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.attrs import LOSSES_ATTR, MIXTURE_ATTR
from optuna_mix.clusters import ClusterResult, cluster_mixtures
from optuna_mix.report.references import PREDICTED_UNIFORM, Reference, find_references
from optuna_mix.scale import PRESET_ATTR, PresetScales
from optuna_mix.utility import DEFAULT_STEP, domain_utility, improved_over

TOP_ROWS = 10  # rows of the top-mixtures table
MIN_GOOD = 8  # a fraction of a small study still gives the clusters a few points to work on
MIN_MODEL_TRIALS = 5  # fewer complete trials say too little for a GP's recommendation
MIN_DISTINCT = 3  # mixtures a GP must have seen before it says how the criterion changes


def n_good(n: int, top: float | int) -> int:
    """How many of ``n`` ranked trials are good: ``top`` a fraction in (0, 1] (a float; at
    least ``MIN_GOOD`` trials) or a count (an int)."""
    if isinstance(top, float):
        if not 0 < top <= 1:
            raise ValueError(f"--top: a fraction must be in (0, 1], got {top}")
        return min(n, max(math.ceil(top * n), MIN_GOOD))
    if top < 1:
        raise ValueError(f"--top: a count must be >= 1, got {top}")
    return min(n, int(top))


@dataclass(frozen=True)
class TrialRow:
    number: int
    value: float
    weights: dict[str, float]
    losses: dict[str, float]


@dataclass(frozen=True)
class ModelPick:
    """The GP's recommendation: the evaluated mixture with the best posterior mean."""

    trial_number: int | None
    value: float
    std: float
    weights: dict[str, float]
    at: str | None = None  # scale-aware studies: the preset predicted for (the target)


@dataclass
class StudyReport:
    study_name: str
    sampler: str
    criterion: str
    domains: list[str]
    minimise: bool
    n_complete: int
    n_pruned: int
    n_failed: int
    n_running: int
    history: list[TrialRow]  # every complete trial with a mixture, by number
    good: list[TrialRow]  # the good trials (--top), best first
    clusters: ClusterResult | None
    references: list[Reference] = field(default_factory=list)
    pick: ModelPick | None = None
    utility: list[Any] = field(default_factory=list)  # optuna_mix.utility.DomainUtility
    utility_step: float = DEFAULT_STEP
    top_rows: int = TOP_ROWS
    model_of: str = ""  # what the report's GP modelled: "per-domain losses" or "trial values"
    ranked_at: str | None = None  # several scales: the preset whose trials are ranked
    notes: list[str] = field(default_factory=list)  # what could not be computed, and why
    # a pareto study's objectives (validation sets, in the study's order); empty otherwise.
    # Its ``good`` trials are then the front, closest to the ideal point first, each row's
    # value that normalised distance (pareto_front)
    objectives: list[str] = field(default_factory=list)
    ideal: dict[str, float] = field(default_factory=dict)  # the front's lowest loss per set

    @property
    def pareto(self) -> bool:
        return bool(self.objectives)

    @property
    def best(self) -> TrialRow | None:
        return self.good[0] if self.good else None

    @property
    def top(self) -> list[TrialRow]:
        """The rows of the top-mixtures table: every good trial for ``--top N``, else 10."""
        return self.good[: self.top_rows]

    def cluster_label(self, number: int) -> str:
        """'cluster i' for a trial of the i-th headline cluster, 'other' for a good trial
        outside them, 'not in the top' for the rest."""
        if self.clusters is not None:
            index = {row.number: i for i, row in enumerate(self.good)}
            if number in index:
                for c, cluster in enumerate(self.clusters.clusters, 1):
                    if index[number] in cluster.members:
                        return f"cluster {c}"
                return "other"
        return "not in the top"

    def improvement_over(self, reference: Reference) -> dict[str, float]:
        """Per domain, the reference's loss minus the best trial's (> 0: the best is better)."""
        assert self.best is not None
        return improved_over(self.best.losses, reference.losses)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (the same numbers as the text and Markdown forms)."""
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("study_name", "sampler", "criterion", "domains", "n_complete",
                      "n_pruned", "n_failed", "n_running", "utility_step", "notes")
        }
        if self.pareto:
            out["objectives"], out["ideal"] = self.objectives, self.ideal
            out["front"] = [asdict(r) for r in self.good]
        out["best"] = asdict(self.best) if self.best else None
        out["top"] = [asdict(r) for r in self.top]
        out["clusters"] = None
        if self.clusters is not None:
            out["clusters"] = {
                "method": self.clusters.method,
                "headline": [
                    {"centre": dict(zip(self.domains, map(float, c.centre))),
                     "spread_aitchison": c.spread, "spread_tv": c.spread_tv, "size": c.size, "best": c.best, "mean": c.mean,
                     "trials": [self.good[i].number for i in c.members],
                     "best_trial": self.good[c.best_index].number}
                    for c in self.clusters.clusters
                ],
                "other": [self.good[i].number for i in self.clusters.other],
            }
        out["references"] = [
            {**asdict(r), "improvement": self.improvement_over(r) if self.best else {}}
            for r in self.references
        ]
        out["recommendation"] = asdict(self.pick) if self.pick else None
        out["utility"] = [asdict(u) for u in self.utility]
        return _finite(out)


def _finite(x: Any) -> Any:
    """NaN and infinities as None (JSON has neither)."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def trial_row(trial: FrozenTrial, domains: Sequence[str], value: float | None = None
              ) -> TrialRow:
    weights = trial.user_attrs.get(MIXTURE_ATTR, {})
    losses = trial.user_attrs.get(LOSSES_ATTR, {}) or {}
    return TrialRow(
        trial.number,
        float(trial.value) if value is None else value,
        {d: float(weights.get(d, math.nan)) for d in domains},
        {k: float(v) for k, v in losses.items()},
    )


def build_report(
    study: optuna.Study,
    domains: Sequence[str],
    *,
    storage: optuna.storages.BaseStorage | None = None,
    sampler: str = "",
    criterion: str = "mean",
    top: float | int = 0.25,
    max_clusters: int = 5,
    against: Sequence[str] = (),
    with_model: bool = True,
    scales: PresetScales | None = None,
) -> StudyReport:
    """The report of ``study`` over its mixture ``mix`` of ``domains``.

    ``storage``: the study's, to find the references in (none without it);
    ``top``: the good trials, a fraction of the complete ones (< 1) or a count (>= 1);
    ``against``: names of other studies in the same storage whose best trials are references
    (besides the ones found by themselves: a uniform trial of this study, the sibling studies
    of a ``compare`` run); ``with_model``: the GP's recommendation and the domain utility (a
    constant-mean GP fitted for the report whatever the study's sampler, :func:`_add_model`);
    ``scales``: a study whose trials train at several presets ranks the trials of one of them
    (where most trained: values at other sizes are not comparable) and recommends for the
    target.
    """
    domains = list(domains)
    if len(study.directions) != 1:
        return _pareto_report(study, domains, storage=storage, sampler=sampler,
                              max_clusters=max_clusters, against=against)
    trials = study.get_trials(deepcopy=False)
    minimise = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                and MIXTURE_ATTR in t.user_attrs and math.isfinite(t.value)]
    history = [trial_row(t, domains) for t in sorted(complete, key=lambda t: t.number)]
    ranked_at, notes = _ranked_preset(complete, scales)
    at = {t.number for t in complete if t.user_attrs.get(PRESET_ATTR) == ranked_at}
    ranked = sorted((r for r in history if ranked_at is None or r.number in at),
                    key=lambda r: r.value if minimise else -r.value)
    good = ranked[: n_good(len(ranked), top)]

    def count(state: TrialState) -> int:
        return sum(t.state == state for t in trials)

    report = StudyReport(
        study_name=study.study_name, sampler=sampler, criterion=criterion, domains=domains,
        minimise=minimise, n_complete=len(complete), n_pruned=count(TrialState.PRUNED),
        n_failed=count(TrialState.FAIL), n_running=count(TrialState.RUNNING),
        history=history, good=good, clusters=None,
        top_rows=len(good) if isinstance(top, int) else TOP_ROWS, ranked_at=ranked_at,
        notes=notes,
    )
    if good:
        W = np.array([[r.weights[d] for d in domains] for r in good])
        report.clusters = cluster_mixtures(
            W, np.array([r.value for r in good]), max_clusters=max_clusters, minimise=minimise
        )
        if storage is not None:
            report.references = find_references(study, storage, domains, against)
    if with_model and good:
        _add_model(report, study, scales)
    return report


def pareto_front(losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``losses`` (n, m; lower is better) that no other row dominates, and each
    one's distance to the ideal point (the front's lowest loss per column), in units of the
    front's range per column (0 to nadir is 1), so that no validation set's scale weighs
    more than another's. Two equal rows are both kept."""
    L = np.asarray(losses, float)
    if len(L) == 0:
        return np.zeros(0, int), np.zeros(0)
    dominated = np.array([bool(np.any(np.all(L <= row, axis=1) & np.any(L < row, axis=1)))
                          for row in L])
    front = np.flatnonzero(~dominated)
    F = L[front]
    span = F.max(axis=0) - F.min(axis=0)
    scaled = (F - F.min(axis=0)) / np.where(span > 0, span, 1.0)
    return front, np.linalg.norm(scaled, axis=1)


def _pareto_report(
    study: optuna.Study, domains: list[str], *, storage: optuna.storages.BaseStorage | None,
    sampler: str, max_clusters: int, against: Sequence[str],
) -> StudyReport:
    """The report of a pareto study (one objective per validation set, all minimised): its
    front, closest to the ideal point first, with the references of the closest one."""
    if any(d != optuna.study.StudyDirection.MINIMIZE for d in study.directions):
        raise ValueError(f"study {study.study_name!r} maximises an objective: a pareto report "
                         "reads every objective as a loss, lower is better")
    objectives = list(study.metric_names or [f"objective {i}" for i in
                                               range(len(study.directions))])
    trials = study.get_trials(deepcopy=False)
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and t.values
                       and MIXTURE_ATTR in t.user_attrs
                       and all(math.isfinite(v) for v in t.values)), key=lambda t: t.number)
    L = np.array([t.values for t in complete], float).reshape(len(complete), len(objectives))
    front, distance = pareto_front(L)
    order = np.argsort(distance, kind="stable")
    good = [trial_row(complete[front[i]], domains, float(distance[i])) for i in order]
    history = [trial_row(t, domains, math.nan) for t in complete]
    # the values are the losses: kept by objective where the trial keeps no losses attr (a
    # plain Optuna study's), so that the front's table and figure read them alike
    for row, values in [*zip(good, L[front[order]]), *zip(history, L)]:
        if not row.losses:
            row.losses.update(zip(objectives, map(float, values)))

    def count(state: TrialState) -> int:
        return sum(t.state == state for t in trials)

    report = StudyReport(
        study_name=study.study_name, sampler=sampler, criterion="pareto", domains=domains,
        minimise=True, n_complete=len(complete), n_pruned=count(TrialState.PRUNED),
        n_failed=count(TrialState.FAIL), n_running=count(TrialState.RUNNING),
        history=history, good=good,
        clusters=None, top_rows=len(good), objectives=objectives,
        ideal={o: float(v) for o, v in zip(objectives, L[front].min(axis=0))} if good else {},
        notes=["no model-based recommendation or domain utility: a pareto study has no single "
               "value to rank mixtures by; the front is its answer, and the mixture closest to "
               "the ideal point its compromise"] if good else [],
    )
    if len(good) >= 2:
        W = np.array([[r.weights[d] for d in domains] for r in good])
        report.clusters = cluster_mixtures(W, np.array([r.value for r in good]),
                                           max_clusters=max_clusters, minimise=True)
    if good and storage is not None:
        report.references = find_references(study, storage, domains, against)
    return report


def _add_predicted_uniform(report: StudyReport, model: Any, study: optuna.Study) -> None:
    """Where no trial trained the uniform mixture, the GP's prediction of its per-domain
    losses as a reference, so that "better than uniform on N of k domains" is answered for
    every study that keeps its losses (said to be a prediction, with its std)."""
    if any(r.label.startswith("uniform") for r in report.references) or not report.best \
            or not report.best.losses:
        return
    k = len(report.domains)
    uniform = {d: 1.0 / k for d in report.domains}
    try:
        (predicted,) = model.predict_losses(study, [uniform])
    except ValueError:
        return  # the values only: no per-domain losses to predict
    if set(predicted) != set(report.best.losses):
        return
    report.references.append(Reference(
        PREDICTED_UNIFORM, "no uniform trial: the report's GP", -1, math.nan, uniform,
        {o: m for o, (m, _) in predicted.items()}, {o: s for o, (_, s) in predicted.items()}))


def _ranked_preset(complete: Sequence[FrozenTrial],
                   scales: PresetScales | None) -> tuple[str | None, list[str]]:
    """The preset whose trials a scale-aware report ranks (None: one size), with a note."""
    if scales is None or len(scales.presets) < 2:
        return None, []
    counts = {p: sum(t.user_attrs.get(PRESET_ATTR) == p for t in complete)
              for p in scales.presets}
    if not any(counts.values()):
        return None, []
    ranked_at = max(scales.presets, key=lambda p: counts[p])  # ties: the smallest
    spread = ", ".join(f"{p} {n}" for p, n in counts.items() if n)
    return ranked_at, [
        f"trials trained at several sizes ({spread}): the top mixtures and clusters rank the "
        f"trials at {ranked_at}, where the most trained (values at other sizes are not "
        f"comparable); `optuna-mix study transfer --preset {scales.target}` measures them at "
        "the target"]


def _add_model(report: StudyReport, study: optuna.Study,
               scales: PresetScales | None = None) -> None:
    """The GP's recommendation and the domain utility at it, for a single-objective study.

    The model is a constant-mean SimplexGPSampler fitted for the report, whatever sampler
    the study ran: its uncertainty was calibrated on held-out mixtures
    (tests/samplers/gp/test_predict.py), where the law-prior model that gp studies search with
    can be far too sure of itself (docs/gp.md), and a +- that a reader takes at its word must
    not be. Too few distinct mixtures (a fixed-mixture study) give no model: its changes would
    be the prior's, not the data's. A study with several scales gets the scale-aware GP the
    study searched with instead (its law prior is what extrapolates in size), predicting for
    the target.
    """
    from optuna_mix.samplers import SimplexGPSampler

    distinct = {tuple(round(r.weights[d], 6) for d in report.domains) for r in report.history}
    if len(report.history) < MIN_MODEL_TRIALS or len(distinct) < MIN_DISTINCT:
        report.notes.append(
            f"no model-based recommendation or domain utility: {len(report.history)} complete "
            f"trials at {len(distinct)} distinct mixtures (a GP needs {MIN_MODEL_TRIALS} trials "
            f"at {MIN_DISTINCT} or more)")
        return
    aware = scales is not None and report.ranked_at is not None
    model = (SimplexGPSampler(seed=0, target_scale=scales.target_size) if aware
             else SimplexGPSampler(seed=0, prior_mean="constant"))
    try:
        rec = model.recommend(study, scale=scales.target_size if aware else None)
        weights = rec.weights
        report.pick = ModelPick(rec.trial_number, rec.value, rec.std,
                                {d: float(weights.get(d, 0.0)) for d in report.domains},
                                at=scales.target if aware else None)
        if aware and rec.ranked_at is not None and rec.ranked_at != scales.target_size:
            report.notes.append(
                f"the recommendation for {scales.target} is the best mixture at "
                f"{rec.ranked_at:,.0f} parameters, where most trials trained: the size law's "
                "move did not predict the larger trials better than one shift for all "
                "mixtures (docs/gp.md, scale-aware studies)")
        report.model_of = "per-domain losses" if report.best and report.best.losses \
            else "trial values"
        report.utility = domain_utility(model, study, report.pick.weights,
                                        step=report.utility_step)
        if not aware:
            _add_predicted_uniform(report, model, study)
    except Exception as e:  # a model that cannot be fitted never fails the report
        report.notes.append(f"no model-based recommendation or domain utility: "
                            f"{type(e).__name__}: {e}")
