"""``optimize --jobs N``: N worker processes on one study, each on its own device.

Each job is the plain one-worker command (``optuna-mix study optimize ... --jobs 1``) in a
process of its own, so a job behaves exactly like a worker started by hand on another machine:
its own storage connections, heartbeats, signal handling and CUDA context. The budget is
shared by the storage (:mod:`optuna_mix.budget`), not by this parent, so jobs of several
commands on several machines share it too. The parent only starts the jobs, forwards SIGINT
and SIGTERM to them, shows the study's progress and prefixes each job's log lines.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from tqdm.auto import tqdm

from optuna_mix.signals import EXIT_CODES, forwarding_signals

POLL_SECONDS = 1.0  # the parent's progress bar reads one count from the storage per poll


@dataclass(frozen=True)
class Job:
    index: int
    device: str | None

    @property
    def label(self) -> str:
        return f"job {self.index}" + (f" {self.device}" if self.device else "")


def assign_devices(jobs: int, devices: Sequence[str]) -> list[Job]:
    """One device per job, round robin over ``devices`` (none: each job the config's own).

    More devices than jobs is refused: a device left idle is more likely a typo in ``--jobs``
    than a wish.
    """
    if len(devices) > jobs:
        raise ValueError(f"--devices lists {len(devices)} devices for --jobs {jobs}; give one "
                         "job per device at least")
    return [Job(i, devices[i % len(devices)] if devices else None) for i in range(jobs)]


def parse_devices(text: str | None) -> list[str]:
    """``"cuda:0, cuda:1"`` -> ``["cuda:0", "cuda:1"]``; an empty item is an error."""
    if text is None:
        return []
    items = [d.strip() for d in text.split(",")]
    if not all(items):
        raise ValueError(f"--devices {text!r} has an empty item; write e.g. cuda:0,cuda:1")
    return items


def job_command(job: Job, worker_args: Sequence[str]) -> list[str]:
    """The one-worker command line of ``job``; ``worker_args`` are the options it shares."""
    command = [sys.executable, "-m", "optuna_mix.cli", "study", "optimize", *worker_args,
               "--jobs", "1", "--no-progress"]
    if job.device is not None:
        command += ["--devices", job.device]
    if job.index > 0:
        command += ["--dashboard-every", "0"]  # one job refreshes the dashboard, not N
    return command


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: a job gets SIGTERM if its parent dies (even by SIGKILL), so no job is orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _relay(stream: TextIO, prefix: str, out: TextIO) -> None:
    for line in stream:
        out.write(f"[{prefix}] {line}")
        out.flush()


@dataclass
class PoolResult:
    exit_codes: list[int]
    signal_name: str | None  # the signal that stopped the pool, if any

    @property
    def exit_code(self) -> int:
        if self.signal_name is not None:
            return EXIT_CODES[self.signal_name]
        return next((c for c in self.exit_codes if c != 0), 0)


def run_jobs(
    jobs: Sequence[Job],
    worker_args: Sequence[str],
    *,
    finished: Callable[[], int] | None = None,
    budget: int | None = None,
    show_progress: bool = True,
    err: TextIO | None = None,
) -> PoolResult:
    """Start every job, relay their stderr, and wait for all of them.

    SIGINT or SIGTERM to this process is forwarded to each job, which fails its running trial
    with the reason and exits; this returns once every job has. With ``finished`` (a count of
    the study's finished trials, every job's and other machines') and ``budget`` a progress
    bar follows it.
    """
    err = err or sys.stderr
    processes = [
        subprocess.Popen(job_command(job, worker_args), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, bufsize=1,
                         preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        for job in jobs
    ]
    relays = [threading.Thread(target=_relay, args=(p.stderr, job.label, err), daemon=True)
              for job, p in zip(jobs, processes)]
    for relay in relays:
        relay.start()
    with forwarding_signals(lambda: [p.pid for p in processes if p.poll() is None]) as received:
        bar = None
        if show_progress and finished is not None and budget is not None:
            bar = tqdm(total=budget, initial=finished(), desc="trials", unit="trial", file=err)
        try:
            while any(p.poll() is None for p in processes):
                time.sleep(POLL_SECONDS)
                if bar is not None:
                    bar.n = finished()
                    bar.refresh()
        finally:
            if bar is not None:
                bar.n = finished()
                bar.close()
            for relay in relays:
                relay.join(timeout=5)
    return PoolResult([p.returncode for p in processes], received[0] if received else None)
