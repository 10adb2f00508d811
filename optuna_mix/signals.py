"""SIGINT and SIGTERM stop a worker within seconds, failing its running trial with the reason.

A cluster scheduler sends SIGTERM before it kills a job. Python's default for it ends the
process at once and leaves the trial RUNNING until another worker's heartbeat check fails it
minutes later; here it raises :class:`Interrupted` in the main thread instead, which Optuna
treats like Ctrl-C: the trial is marked FAIL (the objective records ``fail_reason``), the
finished trials stay, and the command exits 130 (SIGINT) or 143 (SIGTERM).

A signal may only raise where no trial would be left behind RUNNING: inside the objective
(Optuna then tells the trial FAIL) and where no trial is in flight (a worker waiting for the
study's last trials). Those places are marked :func:`interruptible`. Anywhere else (Optuna
creating a trial and running the sampler, or telling the result) the signal is held: the
study is asked to stop, and the signal is raised at the next interruptible place or when
the run ends, whichever comes first.

Inside an interruptible place, a storage call is not: an exception raised halfway through
SQLAlchemy's commit or connection checkin can leave a SQLite write lock held, and then no
worker can write its trial's FAIL (the trial stays RUNNING). :func:`uninterrupted` holds a
signal for the length of such a call and raises it as the call returns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import FrameType

import optuna

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report


class Interrupted(KeyboardInterrupt):
    """A stop asked by a signal; ``signal_name`` is "SIGINT" or "SIGTERM"."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.signal_name]


@dataclass
class _State:
    study: optuna.Study | None = None
    armed: bool = False  # inside an interruptible() block
    held: str | None = None  # a signal that came where it could not raise
    raised: bool = False  # only the first signal raises


_state: _State | None = None  # set by stop_on_signals, in the main thread


def _on_signal(signum: int, frame: FrameType | None) -> None:
    state = _state
    if state is None or state.raised:
        return  # a second SIGTERM (schedulers repeat it) must not interrupt the FAIL write
    name = signal.Signals(signum).name
    if state.armed:
        state.raised = True
        raise Interrupted(name)
    state.held = state.held or name
    if state.study is not None:
        with contextlib.suppress(RuntimeError):  # outside Study.optimize's loop
            state.study.stop()  # no further trial; the held signal raises where it can


@contextlib.contextmanager
def stop_on_signals(study: optuna.Study | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM stop ``study``'s run with :class:`Interrupted` (main thread only)."""
    global _state
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    state = _State(study=study)
    outer, _state = _state, state
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state = outer
    if state.held is not None and not state.raised:
        raise Interrupted(state.held)  # held until the run ended: exit as the signal asked


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """A place where a signal may raise: a held one raises on entry."""
    state = _state
    if state is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    if state.held is not None and not state.raised:
        state.raised = True
        raise Interrupted(state.held)
    state.armed = True
    try:
        yield
    finally:
        state.armed = False


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Inside an interruptible place, a stretch (a storage call) a signal may not cut in two:
    it is held, and raised as soon as the stretch ends. Elsewhere this does nothing."""
    state = _state
    if (state is None or not state.armed
            or threading.current_thread() is not threading.main_thread()):
        yield  # not armed: a signal is held anyway (nested calls land here too)
        return
    state.armed = False
    try:
        yield
    finally:
        state.armed = True
    if state.held is not None and not state.raised:
        state.raised = True
        raise Interrupted(state.held)


@contextlib.contextmanager
def forwarding_signals(children: Callable[[], Iterable[int]]) -> Iterator[list[str]]:
    """SIGINT and SIGTERM to this process go on to the worker processes ``children()`` lists.

    Each worker fails its running trial and exits; the names of the signals received are in
    the yielded list, for the parent to exit as the first one asks once its workers are done.
    """
    received: list[str] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        for pid in children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
