"""Opening storages: SQLite by default, PostgreSQL, MySQL or MariaDB for many workers.

Every storage is an Optuna ``RDBStorage`` with heartbeats. A worker that dies mid-trial (killed,
its machine lost) stops sending them; the next worker to start a trial after the grace period
marks that trial FAIL, stores why in its ``fail_reason`` attr, and runs its mixture once more
(:class:`RetryStaleTrial`), so a crash costs one trial's time and never leaves a RUNNING trial.

The database drivers are extras, so that a SQLite user installs none:

| URL begins with                    | driver   | install                           |
|------------------------------------|----------|-----------------------------------|
| ``sqlite:///``                     | built in | ``pip install optuna-mix``        |
| ``postgresql://``                  | psycopg  | ``pip install optuna-mix[postgres]`` |
| ``mysql://``, ``mariadb://``       | PyMySQL  | ``pip install optuna-mix[mysql]`` |

A URL without a driver name (``mysql://``) takes SQLAlchemy's default driver where it is
installed (mysqlclient, which needs a C client library to build), else the extra's.
"""

from __future__ import annotations

import functools
import inspect
import random
import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.storages._rdb import models  # Optuna's schema, for counting in SQL
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError

from optuna_mix.attrs import FAIL_REASON_ATTR, RETRY_OF_ATTR, WORKER_ATTR
from optuna_mix.schema import GRACE_PERIOD, HEARTBEAT_INTERVAL
from optuna_mix.signals import uninterrupted

DEFAULT_STORAGE = "sqlite:///optuna-mix.db"


class StorageError(RuntimeError):
    """The storage URL is malformed, its driver is missing or its database cannot be reached."""


@dataclass(frozen=True)
class Driver:
    """The driver an extra of optuna-mix installs for one kind of database."""

    name: str  # as SQLAlchemy spells it after the "+" of a URL
    package: str  # as pip spells it
    extra: str


DRIVERS: dict[str, Driver] = {
    "postgresql": Driver("psycopg", "psycopg", "postgres"),
    "mysql": Driver("pymysql", "PyMySQL", "mysql"),
    "mariadb": Driver("pymysql", "PyMySQL", "mysql"),
}
KNOWN_DATABASES = "sqlite, postgresql, mysql and mariadb"


def resolve_url(url: str) -> URL:
    """The SQLAlchemy URL a storage string names, with the extra's driver where none is named.

    Raises :class:`StorageError` with a one-line reason: not a URL, an unknown database, or a
    driver that is not installed (naming the extra that installs it).
    """
    if "://" not in url:
        raise StorageError(f"storage {url!r} is not a URL (e.g. sqlite:///optuna-mix.db)")
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StorageError(f"storage {url!r} is not a valid URL: {e}") from None
    backend = parsed.get_backend_name()
    driver = DRIVERS.get(backend)
    if driver is not None and "+" not in parsed.drivername and not _imports(parsed):
        parsed = parsed.set(drivername=f"{backend}+{driver.name}")  # the extra's driver
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        named = parsed.drivername
        if driver is not None:  # a known database, a driver SQLAlchemy does not know
            raise StorageError(
                f"storage {shown!r}: SQLAlchemy knows no driver {named!r}; use "
                f"{backend}+{driver.name}:// (pip install 'optuna-mix[{driver.extra}]')"
            ) from None
        if "+" in named and _known_database(backend):
            raise StorageError(f"storage {shown!r}: SQLAlchemy knows no driver {named!r}") from None
        raise StorageError(
            f"storage {shown!r}: unknown database {backend!r} (optuna-mix works with "
            f"{KNOWN_DATABASES})"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        if driver is not None and dialect.driver == driver.name:
            raise StorageError(
                f"storage {shown!r} needs the {driver.package} driver, which is not installed: "
                f"pip install 'optuna-mix[{driver.extra}]'"
            ) from None
        hint = (f"; or use {backend}+{driver.name}:// (pip install 'optuna-mix[{driver.extra}]')"
                if driver is not None else "")
        raise StorageError(
            f"storage {shown!r} needs the driver {dialect.driver!r}, which is not installed "
            f"({e}){hint}"
        ) from None
    return parsed


def _known_database(backend: str) -> bool:
    try:
        make_url(f"{backend}://").get_dialect()
    except NoSuchModuleError:
        return False
    return True


def _imports(url: URL) -> bool:
    """Whether SQLAlchemy's default driver for ``url`` is installed."""
    try:
        url.get_dialect().import_dbapi()
    except ImportError:
        return False
    return True


class MixRDBStorage(RDBStorage):
    """Optuna's RDBStorage that writes why a stale trial is failed, and counts in SQL.

    Optuna's ``fail_stale_trials`` asks the storage for the stale trials, then marks them FAIL;
    a finished trial's attrs can no longer be written, so the reason (and the worker that went
    silent) is stored here, between the two steps, while the trial is still RUNNING.
    ``get_n_trials`` is a ``COUNT`` instead of loading every trial with its attrs: the shared
    budget counts the finished trials before and after every trial.
    """

    def get_n_trials(
        self, study_id: int, state: tuple[TrialState, ...] | TrialState | None = None
    ) -> int:
        states = (state,) if isinstance(state, TrialState) else state
        with _create_scoped_session(self.scoped_session) as session:
            models.StudyModel.find_or_raise_by_id(study_id, session)
            query = session.query(sqlalchemy.func.count(models.TrialModel.trial_id)).filter(
                models.TrialModel.study_id == study_id)
            if states is not None:
                query = query.filter(models.TrialModel.state.in_(tuple(states)))
            return int(query.scalar())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        for trial_id in stale:
            try:
                worker = self.get_trial(trial_id).user_attrs.get(WORKER_ATTR) or {}
                who = f" ({worker['host']}, pid {worker['pid']})" if worker else ""
                reason = (f"no heartbeat for {self.grace_period} s: its worker{who} was killed or "
                          "lost; the mixture is run again")
                self.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)
            except (UpdateFinishedTrialError, KeyError):
                pass  # another worker failed it first, or a foreign attr without host/pid
        return stale


def _uninterrupted_call(method: Any) -> Any:
    @functools.wraps(method)
    def call(self: RDBStorage, *args: Any, **kwargs: Any) -> Any:
        with uninterrupted():
            return method(self, *args, **kwargs)

    return call


# Every public storage call of MixRDBStorage is one a SIGINT/SIGTERM may not cut in two: the
# signal raises as the call returns (optuna_mix.signals.uninterrupted).
for _name, _method in inspect.getmembers(MixRDBStorage, inspect.isfunction):
    if not _name.startswith("_"):
        setattr(MixRDBStorage, _name, _uninterrupted_call(_method))


class RetryStaleTrial:
    """Run a stale trial's mixture once more, as a WAITING trial any worker picks up next.

    Optuna's ``RetryFailedTrialCallback`` would copy the failed trial's user attrs, its
    ``fail_reason`` and ``worker`` included, into the retry; this one keeps its record of
    retries (``failed_trial``, ``retry_history`` system attrs, so
    ``RetryFailedTrialCallback.retried_trial_number`` still works) and writes ``retry_of``.
    """

    def __init__(self, max_retry: int = 1) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if len(history) > self.max_retry:
            return
        system_attrs = {**trial.system_attrs, "failed_trial": history[0],
                        "retry_history": history}
        dropped = (FAIL_REASON_ATTR, WORKER_ATTR, RETRY_OF_ATTR)
        user_attrs: dict[str, Any] = {k: v for k, v in trial.user_attrs.items() if k not in dropped}
        study.add_trial(optuna.create_trial(
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
            user_attrs={**user_attrs, RETRY_OF_ATTR: trial.number}, system_attrs=system_attrs,
        ))


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats, where a killed worker's trial is failed and retried."""
    url = url or DEFAULT_STORAGE
    resolved = resolve_url(url)
    shown = resolved.render_as_string(hide_password=True)
    for attempt in range(SCHEMA_RACE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats: stable
                return MixRDBStorage(
                    resolved.render_as_string(hide_password=False),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryStaleTrial(max_retry=1),
                )
        except Exception as e:  # SQLAlchemy: refused connection, missing database ...
            if _lost_schema_race(e) and attempt + 1 < SCHEMA_RACE_ATTEMPTS:
                time.sleep(0.2 * (attempt + 1) + random.random() * 0.2)
                continue  # another worker made the tables meanwhile: they exist now
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StorageError(f"cannot open storage {shown!r}: {message}") from None
    raise AssertionError("unreachable")


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Give back a storage's pooled connections now rather than at garbage collection (each
    idle RDB storage keeps its connections open: docs/benchmarks/pg-connections.md)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


# Workers that open a new database at the same moment race to make Optuna's tables; the
# losers see a duplicate-key or already-exists error, and a second try finds the tables.
SCHEMA_RACE_ATTEMPTS = 5


def _lost_schema_race(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, IntegrityError) or "already exists" in text or "duplicate" in text
