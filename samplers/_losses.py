"""The per-domain losses of trials, as the loss-modelling samplers read them.

optuna-mix's objectives keep each trial's per-domain losses as a user attr (``losses``,
domain -> loss) and make the trial value their criterion. A sampler that models the losses
reads them here: only finite numbers count, and a trial whose losses are missing, not
numeric or not finite has none.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from optuna.trial import FrozenTrial

from optuna_mix.samplers.criteria import (
    CRITERIA,
    Criterion,
    CriterionSpec,
    detect_criterion,
    reproduces,
)


def trial_losses(
    trial: FrozenTrial, attr: str, keys: Sequence[str], *, exact_keys: bool = False
) -> np.ndarray | None:
    """The trial's losses under user attr ``attr`` for ``keys``, in that order, or None.

    None unless the attr is a dict with every key (and no other, with ``exact_keys``) whose
    values are finite numbers.
    """
    losses = trial.user_attrs.get(attr)
    if not isinstance(losses, dict) or not all(key in losses for key in keys):
        return None
    if exact_keys and len(losses) != len(keys):
        return None
    try:
        y = np.array([float(losses[key]) for key in keys])
    except (TypeError, ValueError):
        return None
    return y if np.all(np.isfinite(y)) else None


def per_domain_losses(
    trials: Sequence[FrozenTrial], values: np.ndarray, attr: str | None,
    spec: CriterionSpec | None = None,
) -> tuple[np.ndarray, Criterion, list[str]] | None:
    """The trials' per-domain losses (n x k), the criterion whose values they give, the keys.

    None unless every trial keeps the same k >= 2 finite losses under ``attr`` and the
    criterion reproduces every trial value: the study's stored one (``spec``, bound to the
    keys), else the registered one that does. A composite model is only used where it is
    exact. The keys are in the first trial's order.
    """
    found = _losses_matrix(trials, attr)
    if found is None:
        return None
    Y, keys = found
    if spec is not None:
        try:
            criterion = spec.bind(keys)
        except ValueError:
            return None
        return (Y, criterion, keys) if reproduces(criterion, Y, values) else None
    name = detect_criterion(Y, values)
    return (Y, CRITERIA[name], keys) if name is not None else None


def _losses_matrix(trials: Sequence[FrozenTrial], attr: str | None
                   ) -> tuple[np.ndarray, list[str]] | None:
    if attr is None or not trials:
        return None
    first = trials[0].user_attrs.get(attr)
    if not isinstance(first, dict) or len(first) < 2:
        return None
    keys = list(first)
    rows = []
    for t in trials:
        y = trial_losses(t, attr, keys, exact_keys=True)
        if y is None:
            return None
        rows.append(y)
    return np.array(rows), keys


def losses_problem(
    trials: Sequence[FrozenTrial], values: np.ndarray, attr: str | None,
    spec: CriterionSpec | None = None,
) -> str | None:
    """Why trials that keep losses under ``attr`` cannot make a composite model.

    None where they can, and where no trial keeps any (a values-only study: nothing to say).
    """
    if attr is None or per_domain_losses(trials, values, attr, spec) is not None:
        return None
    holding = [t for t in trials if isinstance(t.user_attrs.get(attr), dict)]
    if not holding:
        return None
    if len(holding) < len(trials):
        return f"{len(trials) - len(holding)} of {len(trials)} completed trials keep no {attr!r}"
    keys = list(holding[0].user_attrs[attr])
    if len(keys) < 2:
        return f"the trials' {attr!r} hold fewer than 2 losses"
    for t in trials:
        if set(t.user_attrs[attr]) != set(keys):
            return (f"trial #{t.number}'s {attr!r} are for other validation sets than trial "
                    f"#{trials[0].number}'s")
        if trial_losses(t, attr, keys) is None:
            return f"trial #{t.number}'s {attr!r} are not all finite numbers"
    if spec is not None:
        try:
            spec.bind(keys)
        except ValueError as e:
            return f"the study's {spec.name} criterion: {e}"
        return (f"the trial values are not the study's {spec.name} criterion of the {attr!r}")
    return (f"the trial values are not the mean, max or median of the {attr!r} (a criterion "
            "the composite model cannot reproduce; a study states its own with "
            "optuna_mix.set_criterion)")
