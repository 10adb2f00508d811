"""Opening storages and studies: SQLite by default, any SQLAlchemy URL for many workers."""

from __future__ import annotations

import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from optuna_mix.schema import GRACE_PERIOD, HEARTBEAT_INTERVAL

DEFAULT_STORAGE = "sqlite:///optuna-mix.db"


class StorageError(RuntimeError):
    """The storage URL is malformed or its database cannot be reached."""


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats: a killed worker's trial is failed and retried.

    When a worker dies mid-trial, the next worker to start a trial marks it FAIL after the
    grace period and re-enqueues its parameters once (RetryHeartbeatStaleTrialCallback), so a crash
    costs one trial's time and never leaves a RUNNING trial behind for good.
    """
    url = url or DEFAULT_STORAGE
    if "://" not in url:
        raise StorageError(f"storage {url!r} is not a URL (e.g. sqlite:///optuna-mix.db)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats: stable in practice
            return RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
    except ImportError as e:
        raise StorageError(f"storage {url!r} needs a database driver: {e}") from None
    except Exception as e:  # SQLAlchemy: bad URL, refused connection, missing database ...
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open storage {url!r}: {message}") from None
