"""The proposals kept in the trials' storage: written for each suggestion, read as pending.

Each suggestion's point is kept in its trial's system attrs (the mixtures as
``optuna_mix.samplers`` keeps every proposal, the other parameters as chunked JSON), so that
every worker sees a running trial's point before the trial has set its parameters, and
qLogNEI (``X_pending``) lets parallel workers propose different mixtures.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_mix.samplers._base import running_trials
from optuna_mix.samplers._simplex import PROPOSAL_PREFIX
from optuna_mix.samplers.gp.space import EncodedSpace

RELATIVE_PREFIX = "optuna_mix:gp:relative:"
CHUNK = 2000  # RDB storages keep system attr values in 2048-character columns
# A GP proposal takes about 1 s at 64 trials and a few at 200 (docs/benchmarks/gp-timing.md):
# an earlier running trial with no point after this long is not being proposed by a GP.
PROPOSAL_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.1


def pending_points(study: Study, trial: FrozenTrial, space: EncodedSpace) -> np.ndarray:
    """X_pending (p, d): the points of the study's running trials other than ``trial``, as
    they are stored (:func:`store_proposal`) or set so far; those with every parameter."""
    rows = []
    for t in running_trials(study, exclude=trial):
        params = stored_params(t, space)
        if space.has_all(params):
            rows.append(space.encode(params))
    return np.array(rows) if rows else np.zeros((0, space.dim))


def wait_for_earlier_proposals(
    study: Study, trial: FrozenTrial, space: EncodedSpace,
    timeout: float = PROPOSAL_WAIT_SECONDS,
) -> float:
    """Wait until the running trials numbered below ``trial`` have their points; the seconds.

    Workers that ask at the same moment fit the same data, and a point is no pending point
    until it is stored: without this wait they propose (nearly) the same mixture. Only trials
    started within ``timeout`` count (an older one without a point is run by something else,
    an enqueued mixture say), and a study asked to stop (a signal) stops the wait.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout and not getattr(study, "_stop_flag", False):
        now = datetime.datetime.now()
        waiting_on = [
            t for t in running_trials(study, exclude=trial)
            if t.number < trial.number and t.datetime_start is not None
            and (now - t.datetime_start).total_seconds() < timeout
            and not space.has_all(stored_params(t, space))
        ]
        if not waiting_on:
            break
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def store_proposal(
    study: Study, trial: FrozenTrial, space: EncodedSpace, params: dict[str, Any]
) -> None:
    """Keep the proposal in the trial's system attrs: other workers read it as pending."""
    storage, tid = study._storage, trial._trial_id
    stored = storage.get_trial_system_attrs(tid)
    for block in space.mixture_blocks:
        assert block.mixture is not None
        key = PROPOSAL_PREFIX + block.mixture.name
        if key not in stored:
            storage.set_trial_system_attr(tid, key, [float(params[n]) for n in block.names])
    others = {n: v for n, v in params.items() if n not in _mixture_names(space)}
    if others:
        text = json.dumps(others)
        for i in range(0, len(text), CHUNK):
            storage.set_trial_system_attr(tid, f"{RELATIVE_PREFIX}{i // CHUNK}",
                                          text[i : i + CHUNK])


def _mixture_names(space: EncodedSpace) -> set[str]:
    return {n for b in space.mixture_blocks for n in b.names}


def stored_params(trial: FrozenTrial, space: EncodedSpace) -> dict[str, Any]:
    """A trial's parameters as far as they are known: an enqueued trial's pinned ones, the
    proposals kept for it, then those set so far."""
    attrs = trial.system_attrs
    params: dict[str, Any] = dict(attrs.get("fixed_params") or {})  # an enqueued trial's
    chunks, i = [], 0
    while (chunk := attrs.get(f"{RELATIVE_PREFIX}{i}")) is not None:
        chunks.append(chunk)
        i += 1
    if chunks:
        try:
            params.update(json.loads("".join(chunks)))
        except ValueError:
            pass
    for block in space.mixture_blocks:
        assert block.mixture is not None
        value = attrs.get(PROPOSAL_PREFIX + block.mixture.name)
        if isinstance(value, Sequence) and len(value) == len(block.names):
            params.update(zip(block.names, value))
    params.update(trial.params)
    return params
