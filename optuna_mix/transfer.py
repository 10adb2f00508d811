"""``study transfer``: do a study's mixtures keep their order at a larger model size?

The seed's second limit: its 25M proxy's best mixture lost to uniform at 154M. This trains, at
a larger preset, the study's top K mixtures (ranked at the smallest size the study trained),
uniform, that size's optimum (the study's way: train small, take the best) and, where a GP can
be fitted, its recommendation for the larger size (scale-aware studies: predicted at that
size). The trials go to a sibling study ``NAME@PRESET`` of the same storage, one per distinct
mixture, so a rerun carries on where a killed one stopped and finished trainings are kept.

The answer: the rank correlation of the top K across the two sizes, and whether the
recommendation beat the small-scale optimum and uniform at the larger size. Each mixture is
one run at the larger size; no repeat measures the run-to-run noise there.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from scipy import stats

from optuna_mix.attrs import LOSSES_ATTR, MIXTURE_ATTR, REGRET_ATTR
from optuna_mix.config import ConfigError, parse_config
from optuna_mix.runner import MixStudy, create_mix_study, load_mix_study, optimize, study_names
from optuna_mix.samplers import SimplexGPSampler
from optuna_mix.scale import PRESET_ATTR, SCALE_PARAM, preset_size

TRANSFER_ATTR = "optuna_mix:transfer"  # sibling study user attr: {"source", "preset"}
CANDIDATE_ATTR = "transfer"  # sibling trial user attr: {"labels", "source_trial", ...}
UNIFORM, SMALL_OPTIMUM, RECOMMENDED = "uniform", "small-scale optimum", "recommendation"
SHAPE_KEYS = ("n_layer", "n_head", "n_embd")  # [objective] overrides of a preset's shape


@dataclass
class Candidate:
    """One mixture to train at the larger size, with why (its labels) and where it came from."""

    labels: list[str]
    weights: dict[str, float]
    source_trial: int | None = None  # the study's trial with these weights, if any
    source_value: float | None = None  # its value there (at ``source_preset``)
    predicted: tuple[float, float] | None = None  # the GP's (mean, std) at the larger size
    value: float | None = None  # measured at the larger size (None: not yet trained)
    losses: dict[str, float] = field(default_factory=dict)
    regret: float | None = None  # analytic surfaces: the true regret at the larger size
    trial: int | None = None  # the sibling study's trial

    def key(self) -> tuple[float, ...]:
        return _key(self.weights)


@dataclass
class Transfer:
    """The plan of a transfer and, once trained, what it measured."""

    source: str
    sibling: str
    preset: str
    source_preset: str | None  # the size the top K are ranked at (None: the study's one size)
    candidates: list[Candidate]
    notes: list[str] = field(default_factory=list)

    def labelled(self, label: str) -> Candidate | None:
        return next((c for c in self.candidates if label in c.labels), None)

    @property
    def top(self) -> list[Candidate]:
        return [c for c in self.candidates if any(lab.startswith("top ") for lab in c.labels)]

    def rank_correlation(self) -> tuple[float, int] | None:
        """Spearman's rho of the top K's values at the two sizes, and K (None below 3)."""
        pairs = [(c.source_value, c.value) for c in self.top
                 if c.source_value is not None and c.value is not None]
        if len(pairs) < 3:
            return None
        small, large = np.array(pairs).T
        rho = stats.spearmanr(small, large).statistic
        return float(rho), len(pairs)

    def verdicts(self) -> list[tuple[str, float]]:
        """(against, recommendation's value minus theirs at the larger size): < 0 is better."""
        rec = self.labelled(RECOMMENDED)
        if rec is None or rec.value is None:
            return []
        out = []
        for label in (SMALL_OPTIMUM, UNIFORM):
            other = self.labelled(label)
            if other is not None and other.value is not None:
                out.append((label, rec.value - other.value))
        return out

    def to_dict(self) -> dict[str, Any]:
        rho = self.rank_correlation()
        return {
            "source": self.source, "sibling": self.sibling, "preset": self.preset,
            "source_preset": self.source_preset,
            "candidates": [vars(c) | {"predicted": list(c.predicted) if c.predicted else None}
                           for c in self.candidates],
            "rank_correlation": None if rho is None else {"spearman": rho[0], "n": rho[1]},
            "recommendation_minus": dict(self.verdicts()),
            "notes": self.notes,
        }


def sibling_name(source: str, preset: str) -> str:
    return f"{source}@{preset}"


def plan_transfer(mix: MixStudy, preset: str, top: int) -> Transfer:
    """The mixtures to train at ``preset`` for study ``mix`` (ValueError for a study that
    cannot be transferred, with why)."""
    config = mix.config
    if config.criterion_spec.multi_objective:
        raise ValueError(f"study {mix.study.study_name!r} is a pareto study: transfer ranks "
                         "its mixtures by one value, and it has one per validation set")
    size = _size_of(config, preset)
    trials = mix.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not trials:
        raise ValueError(f"study {mix.study.study_name!r} has no complete trial to transfer")
    scales = config.scales
    source_preset = None
    if scales is not None:
        trained = {t.user_attrs.get(PRESET_ATTR) for t in trials}
        source_preset = next(p for p in scales.presets if p in trained)
        trials = [t for t in trials if t.user_attrs.get(PRESET_ATTR) == source_preset]
    largest = max(scales.sizes) if scales is not None else _size_of(config, None)
    if size <= largest:
        raise ValueError(f"--preset {preset} ({size:,.0f} parameters) is no larger than the "
                         f"study's largest trained size ({largest:,.0f})")
    ranked = _distinct(sorted(trials, key=lambda t: t.value))
    candidates: list[Candidate] = []

    def add(label: str, weights: dict[str, float], trial: optuna.trial.FrozenTrial | None = None,
            predicted: tuple[float, float] | None = None) -> None:
        for c in candidates:
            if c.key() == _key(weights):
                c.labels.append(label)
                c.predicted = c.predicted or predicted
                return
        candidates.append(Candidate(
            [label], dict(weights), None if trial is None else trial.number,
            None if trial is None else float(trial.value), predicted))

    for i, t in enumerate(ranked[:top], 1):
        add(f"top {i}", t.user_attrs[MIXTURE_ATTR], t)
    add(SMALL_OPTIMUM, ranked[0].user_attrs[MIXTURE_ATTR], ranked[0])
    k = len(config.domain_names)
    uniform = {d: 1.0 / k for d in config.domain_names}
    add(UNIFORM, uniform, next((t for t in ranked if _key(t.user_attrs[MIXTURE_ATTR])
                                == _key(uniform)), None))
    transfer = Transfer(mix.study.study_name, sibling_name(mix.study.study_name, preset),
                        preset, source_preset, candidates)
    recommendation = _recommend(mix, size if scales is not None else None, transfer.notes)
    if recommendation is not None:
        weights, predicted = recommendation
        source = next((t for t in ranked if _key(t.user_attrs[MIXTURE_ATTR]) == _key(weights)),
                      None)
        add(RECOMMENDED, weights, source, predicted)
    return transfer


def run_transfer(transfer: Transfer, mix: MixStudy, storage: optuna.storages.BaseStorage, *,
                 cache_dir: Path | str = ".optuna-mix-cache", show_progress: bool = True) -> int:
    """Train every candidate not yet trained in the sibling study; returns how many ran now.

    Fills in each candidate's value from the sibling's complete trials (of earlier runs too).
    """
    sibling = _sibling_study(transfer, mix, storage)
    pending = _collect(transfer, sibling)
    todo = [c for c in transfer.candidates if c.value is None]
    for c in todo:
        if c.key() not in pending:
            params = {f"{MIXTURE_ATTR}.{d}": w for d, w in c.weights.items()}
            if sibling.config.scales is not None:
                params[SCALE_PARAM] = sibling.config.scales.target_size
            sibling.study.enqueue_trial(params, user_attrs={CANDIDATE_ATTR: {
                "labels": c.labels, "source_trial": c.source_trial,
                "source_value": c.source_value}})
    waiting = len(sibling.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    ran = 0
    if waiting:  # every waiting trial is a candidate (of this plan or an earlier one)
        ran = optimize(sibling, n_trials=waiting, cache_dir=cache_dir,
                       show_progress=show_progress)
    _collect(transfer, sibling)
    if missing := [c for c in transfer.candidates if c.value is None]:
        transfer.notes.append(f"{len(missing)} mixture(s) did not finish at {transfer.preset} "
                              "(see the sibling study's failed trials); run again to retry")
    return ran


def _collect(transfer: Transfer, sibling: MixStudy) -> set[tuple[float, ...]]:
    """Copy complete sibling trials into the candidates; the keys of waiting ones."""
    waiting: set[tuple[float, ...]] = set()
    done: dict[tuple[float, ...], optuna.trial.FrozenTrial] = {}
    for t in sibling.study.get_trials(deepcopy=False):
        weights = t.user_attrs.get(MIXTURE_ATTR) or {
            d: t.params[f"{MIXTURE_ATTR}.{d}"] for d in sibling.config.domain_names
            if f"{MIXTURE_ATTR}.{d}" in t.params}
        if t.state == TrialState.WAITING:
            waiting.add(_key(_normalised(t.system_attrs.get("fixed_params", {}), sibling)))
        elif t.state == TrialState.COMPLETE and weights:
            done.setdefault(_key(weights), t)
    for c in transfer.candidates:
        if (t := done.get(c.key())) is not None:
            c.value, c.trial = float(t.value), t.number
            c.losses = dict(t.user_attrs.get(LOSSES_ATTR, {}))
            c.regret = t.user_attrs.get(REGRET_ATTR)
    return waiting


def _normalised(fixed: dict[str, Any], sibling: MixStudy) -> dict[str, float]:
    weights = {d: float(fixed.get(f"{MIXTURE_ATTR}.{d}", 0.0))
               for d in sibling.config.domain_names}
    total = sum(weights.values()) or 1.0
    return {d: w / total for d, w in weights.items()}


def _sibling_study(transfer: Transfer, mix: MixStudy,
                   storage: optuna.storages.BaseStorage) -> MixStudy:
    """The sibling study at the larger preset: created once, loaded on reruns."""
    if transfer.sibling in study_names(storage):
        sibling = load_mix_study(transfer.sibling, storage)
        if sibling.study.user_attrs.get(TRANSFER_ATTR, {}).get("source") != transfer.source:
            raise ValueError(f"study {transfer.sibling!r} exists and is not a transfer of "
                             f"{transfer.source!r}; rename one of them")
        return sibling
    raw = copy.deepcopy(mix.config.raw)
    objective = dict(raw.get("objective", {}))
    objective.pop("target", None)
    if mix.config.scales is not None:
        objective["scales"] = [transfer.preset]
    else:
        if objective.get("tokens") is not None:  # the same tokens per parameter (Chinchilla)
            ratio = _size_of(mix.config, transfer.preset) / _size_of(mix.config, None)
            objective["tokens"] = int(round(objective["tokens"] * ratio))
        for key in SHAPE_KEYS:  # they would reshape the larger preset into the study's model
            objective.pop(key, None)
        objective["preset"] = transfer.preset
    raw["objective"] = objective
    raw["study"] = {**raw.get("study", {}), "name": transfer.sibling,
                    "n_trials": len(transfer.candidates)}
    raw["sampler"] = {"name": "uniform"}  # every trial is enqueued: the sampler never chooses
    try:
        config = parse_config(raw, source=f"study {transfer.sibling!r}")
    except ConfigError as e:
        raise ValueError(f"cannot train study {transfer.source!r} at {transfer.preset}: "
                         f"{e}") from None
    sibling = create_mix_study(config, storage, study_name=transfer.sibling)
    sibling.study.set_user_attr(TRANSFER_ATTR, {"source": transfer.source,
                                                "preset": transfer.preset})
    return sibling


def _recommend(mix: MixStudy, size: float | None,
               notes: list[str]) -> tuple[dict[str, float], tuple[float, float]] | None:
    """The GP's recommended mixture (at ``size`` in a scale-aware study) and its prediction."""
    sampler = mix.study.sampler
    if not isinstance(sampler, SimplexGPSampler):
        sampler = SimplexGPSampler(seed=mix.config.seed)
    try:
        rec = sampler.recommend(mix.study, scale=size)
    except (ValueError, RuntimeError) as e:
        notes.append(f"no recommendation: {e}")
        return None
    if size is None:
        notes.append("the study trains one size: its recommendation is the GP's at that size, "
                     "not a prediction for the larger one")
    elif rec.ranked_at is not None and rec.ranked_at != size:
        notes.append(f"the recommendation is the best mixture at {rec.ranked_at:,.0f} "
                     "parameters, where most trials trained: the size law's move with size "
                     "did not predict the larger trials better than one shift for every "
                     "mixture, so the GP does not extrapolate the best mixture's move")
    return dict(rec.weights), (float(rec.value), float(rec.std))


def _size_of(config, preset: str | None) -> float:
    """A preset's size; ``None``: the size a single-size study trains at (its preset with
    the config's shape overrides, which the sibling study drops)."""
    if config.objective == "surface" and config.scales is None:
        raise ValueError("the study's surface has no model size (family scaled has); nothing "
                         "to transfer")
    if preset is not None:
        return preset_size(preset)
    from optuna_mix.trainers import GPTConfig

    o = config.objective_options
    shape = {k: o[k] for k in SHAPE_KEYS if o.get(k) is not None}
    return float(GPTConfig.preset(o["preset"], **shape).n_params())


def _distinct(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Trials with distinct mixtures, the first of each (a repeated mixture is one)."""
    seen: set[tuple[float, ...]] = set()
    out = []
    for t in trials:
        if MIXTURE_ATTR in t.user_attrs and (key := _key(t.user_attrs[MIXTURE_ATTR])) not in seen:
            seen.add(key)
            out.append(t)
    return out


def _key(weights: dict[str, float]) -> tuple[float, ...]:
    """Weights as a comparable key: sorted by domain, rounded past float noise."""
    return tuple(round(float(w), 9) for _, w in sorted(weights.items()))

def print_transfer(transfer: Transfer) -> None:
    """The transfer's table and verdicts, as text."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    at = transfer.source_preset or "the study's size"
    table = Table(title=f"study {transfer.source!r} at {transfer.preset} "
                        f"(trials in {transfer.sibling!r})")
    has_regret = any(c.regret is not None for c in transfer.candidates)
    for column in ("mixture", "source trial", f"value at {at}", f"value at {transfer.preset}",
                   *(["true regret"] if has_regret else []), "weights"):
        table.add_column(column, justify="left" if column in ("mixture", "weights") else "right")
    for c in transfer.candidates:
        table.add_row(
            ", ".join(c.labels), "-" if c.source_trial is None else f"#{c.source_trial}",
            _number(c.source_value), _number(c.value),
            *([_number(c.regret)] if has_regret else []),
            " ".join(f"{d} {w:.2f}" for d, w in c.weights.items()))
    console.print(table)
    rho = transfer.rank_correlation()
    if rho is None:
        console.print("rank correlation: needs 3 or more of the top mixtures measured at both "
                      "sizes (use --top 3 or more)")
    else:
        console.print(f"rank correlation of the top {rho[1]} across sizes ({at} -> "
                      f"{transfer.preset}): Spearman rho = {rho[0]:+.2f}")
    rec = transfer.labelled(RECOMMENDED)
    if rec is not None and rec.predicted is not None:
        console.print(f"the GP predicted {rec.predicted[0]:.4f} +- {rec.predicted[1]:.4f} for "
                      f"its recommendation and measured {_number(rec.value)}")
    for against, diff in transfer.verdicts():
        word = "beat" if diff < 0 else "did not beat"
        whom = against if against == UNIFORM else f"the {against}"
        console.print(f"recommendation {word} {whom} at {transfer.preset}: "
                      f"{diff:+.4f} (recommendation minus {against})")
    console.print("each value is one training run at the larger size: a difference smaller "
                  "than the run-to-run noise there is no verdict")
    for note in transfer.notes:
        console.print(f"note: {note}")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
