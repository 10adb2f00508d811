"""SIGINT and SIGTERM stop a worker within seconds, failing its running trial with the reason.

A cluster scheduler sends SIGTERM before it kills a job. Python's default for it ends the
process at once and leaves the trial RUNNING until another worker's heartbeat check fails it
minutes later; here it raises :class:`Interrupted` in the main thread instead, which Optuna
treats like Ctrl-C: the trial is marked FAIL (the objective records ``fail_reason``), the
finished trials stay, and the command exits 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report


class Interrupted(KeyboardInterrupt):
    """A stop asked by a signal; ``signal_name`` is "SIGINT" or "SIGTERM"."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.signal_name]


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while inside (main thread only).

    Only the first signal raises: a scheduler that sends SIGTERM twice, or a Ctrl-C that
    reaches a worker both from the terminal and from its ``--jobs`` parent, must not interrupt
    the code that is marking the trial FAIL, or the trial would be left RUNNING.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised: list[str] = []

    def _raise(signum: int, frame: FrameType | None) -> None:
        if raised:
            return
        raised.append(signal.Signals(signum).name)
        raise Interrupted(raised[0])

    previous = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
