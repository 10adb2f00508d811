"""The storage contract of optuna-mix studies: the attribute names every part reads or writes.

Objectives write them, samplers read them, ``report`` and ``compare`` read them back; one
module, so a name is changed (or found) in one place. They live with the samplers because a
sampler must read them without importing the glue (DESIGN.md: dependency direction);
``optuna_mix.attrs`` re-exports them.

| name               | where                 | holds                                                |
|--------------------|-----------------------|------------------------------------------------------|
| ``MIXTURE_ATTR``   | trial user attr       | the mixture's weights, domain -> weight (the name    |
|                    |                       | studies built from a config give their mixture)      |
| ``LOSSES_ATTR``    | trial user attr       | per-domain (or per validation set) losses, name ->   |
|                    |                       | loss; the trial value is their criterion             |
| ``FAIL_REASON_ATTR`` | trial user attr     | why a trial failed (a diverged loss, a bad mixture)  |
| ``REGRET_ATTR``    | trial user attr       | analytic surfaces: the noise-free regret of the      |
|                    |                       | trial's mixture (``TRUE_VALUE_ATTR``: its value;     |
|                    |                       | ``TRUE_LOSSES_ATTR``: its noise-free losses)         |
| ``CONFIG_ATTR``    | study user attr       | the study's config as parsed TOML, for every worker  |
| ``WORKER_ATTR``    | trial user attr       | who ran the trial: ``{"host", "pid", "device"}``,    |
|                    |                       | so a failed or stale trial names its machine         |
| ``RETRY_OF_ATTR``  | trial user attr       | the number of the stale trial this one reruns        |
"""

from __future__ import annotations

MIXTURE_ATTR = "mix"
LOSSES_ATTR = "losses"
FAIL_REASON_ATTR = "fail_reason"
REGRET_ATTR = "regret"
TRUE_VALUE_ATTR = "true_value"
TRUE_LOSSES_ATTR = "true_losses"
CONFIG_ATTR = "optuna_mix.config"
WORKER_ATTR = "worker"
RETRY_OF_ATTR = "retry_of"

__all__ = ["CONFIG_ATTR", "FAIL_REASON_ATTR", "LOSSES_ATTR", "MIXTURE_ATTR", "REGRET_ATTR",
           "RETRY_OF_ATTR", "TRUE_LOSSES_ATTR", "TRUE_VALUE_ATTR", "WORKER_ATTR"]
