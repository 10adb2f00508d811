"""What every benchmark worker process sets first."""

from __future__ import annotations


def quiet_worker() -> None:
    """Torch on one thread (a GP on tens of points is several times slower with two threads
    contending), Optuna's log and Python's warnings silenced (one line per run is printed)."""
    import warnings

    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
