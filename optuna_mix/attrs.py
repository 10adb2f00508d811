"""The study and trial attribute names (defined in :mod:`optuna_mix.samplers.attrs`)."""

from optuna_mix.samplers.attrs import (
    CONFIG_ATTR,
    FAIL_REASON_ATTR,
    LOSSES_ATTR,
    MIXTURE_ATTR,
    REGRET_ATTR,
    RETRY_OF_ATTR,
    TRUE_LOSSES_ATTR,
    TRUE_VALUE_ATTR,
    WORKER_ATTR,
)

__all__ = ["CONFIG_ATTR", "FAIL_REASON_ATTR", "LOSSES_ATTR", "MIXTURE_ATTR", "REGRET_ATTR",
           "RETRY_OF_ATTR", "TRUE_LOSSES_ATTR", "TRUE_VALUE_ATTR", "WORKER_ATTR"]
