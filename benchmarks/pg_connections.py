"""How many PostgreSQL connections optuna-mix workers hold: measured, for sizing the server.

For each W, makes a scratch database on the server, creates a surface study in it (trials
sleep ``--seconds`` as if training, heartbeats every second), starts W ``optuna-mix study
optimize`` processes on it and samples ``pg_stat_activity`` every ``--interval`` seconds
while they run; then drops the database. Each worker process gets its own
``application_name`` (libpq's ``PGAPPNAME``), so the count is also read per worker. With
``--mode jobs`` (or ``both``) the W workers are one ``optimize --jobs W`` command instead: the
parent process holds connections of its own. ``--dashboard-clients C`` adds a run of one
worker beside ``optuna-mix dashboard``, with C threads polling its API as browser tabs do,
and reports the dashboard's connections. ``--stagger S`` starts the workers S seconds apart.
With ``--via HOST:PORT`` the workers connect
through a pooler there (PgBouncer), and the server's connections are what is counted.

    python benchmarks/pg_connections.py --url postgresql://root@127.0.0.1:5432/test
    python benchmarks/pg_connections.py --via 127.0.0.1:6432 --mode processes

The URL names an existing database to connect to for the sampling and for CREATE/DROP
DATABASE (its own connection is not counted); the user needs the CREATEDB privilege.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

CONFIG = """\
[study]
name = "pgconn"
n_trials = {n_trials}
seed = 0

[sampler]
name = "sobol"

[objective]
kind = "surface"
family = "powerlaw"
noise = 0.01
seconds = {seconds}

[storage]
heartbeat_interval = 1
grace_period = 10

[domains.books]
[domains.web]
[domains.code]
[domains.papers]
[domains.social]
"""


@dataclass
class Run:
    mode: str
    workers: int
    trials: int
    seconds: float = 0.0
    samples: int = 0
    peak: int = 0  # all connections to the scratch database at one sample
    peak_per_app: Counter = field(default_factory=Counter)  # application_name -> its peak
    totals: Counter = field(default_factory=Counter)  # connections at a sample -> samples


def libpq_url(url: str, database: str | None = None, via: str | None = None) -> str:
    """A libpq URL for psycopg (no "+driver"), optionally on another database or host:port."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    if via is not None:
        host, _, port = via.rpartition(":")
        parsed = parsed.set(host=host, port=int(port))
    return parsed.render_as_string(hide_password=False)


def optuna_mix(*args: str) -> list[str]:
    return [sys.executable, "-m", "optuna_mix.cli", *args]


def sample(admin: psycopg.Connection, database: str, run: Run, stop: threading.Event,
           interval: float) -> None:
    query = ("SELECT application_name, count(*) FROM pg_stat_activity "
             "WHERE datname = %s GROUP BY application_name")
    while not stop.is_set():
        rows = admin.execute(query, (database,)).fetchall()
        total = sum(n for _, n in rows)
        run.samples += 1
        run.totals[total] += 1
        run.peak = max(run.peak, total)
        for app, n in rows:
            run.peak_per_app[app] = max(run.peak_per_app[app], n)
        stop.wait(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dashboard(storage: str, cwd: str, clients: int,
                    stop: threading.Event) -> tuple[subprocess.Popen, list[threading.Thread]]:
    """``optuna-mix dashboard`` on ``storage``, and ``clients`` threads polling its API."""
    port = free_port()
    server = subprocess.Popen(optuna_mix("dashboard", "--storage", storage, "--port", str(port)),
                              cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PGAPPNAME": "dashboard"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/studies", timeout=5).read()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("optuna-mix dashboard did not answer")
            time.sleep(0.2)

    def poll() -> None:
        while not stop.is_set():
            for path in ("/api/studies", "/api/studies/1"):
                try:
                    urllib.request.urlopen(base + path, timeout=30).read()
                except OSError:
                    pass  # the study may have no trial yet: a 4xx/5xx still used the storage
            stop.wait(0.5)

    pollers = [threading.Thread(target=poll) for _ in range(clients)]
    for t in pollers:
        t.start()
    return server, pollers


def measure(url: str, mode: str, workers: int, trials_per_worker: int, seconds: float,
            interval: float, via: str | None = None, dashboard_clients: int = 0,
            stagger: float = 0.0) -> Run:
    database = f"optuna_mix_pgconn_{uuid.uuid4().hex[:8]}"
    run = Run(mode, workers, workers * trials_per_worker)
    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        try:
            with tempfile.TemporaryDirectory() as tmp:
                storage = libpq_url(url, database, via)
                config = Path(tmp) / "pgconn.toml"
                config.write_text(CONFIG.format(n_trials=run.trials, seconds=seconds))
                subprocess.run(optuna_mix("study", "create", "--config", str(config),
                                          "--storage", storage),
                               cwd=tmp, check=True, stdout=subprocess.DEVNULL)
                worker = ["study", "optimize", "--study-name", "pgconn", "--storage", storage,
                          "--no-progress"]
                if mode == "jobs":
                    commands = [(optuna_mix(*worker, "--jobs", str(workers)), "jobs")]
                else:
                    commands = [(optuna_mix(*worker), f"worker-{i}") for i in range(workers)]
                stop = threading.Event()
                sampler = threading.Thread(target=sample,
                                           args=(admin, database, run, stop, interval))
                sampler.start()
                dashboard = (start_dashboard(storage, tmp, dashboard_clients, stop)
                             if dashboard_clients else None)
                started = time.perf_counter()
                logs = [Path(tmp) / f"{app}.log" for _, app in commands]
                processes = []
                for i, ((command, app), log) in enumerate(zip(commands, logs)):
                    if i and stagger:
                        time.sleep(stagger)
                    processes.append(subprocess.Popen(
                        command, cwd=tmp, stdout=subprocess.DEVNULL, stderr=log.open("w"),
                        env={**os.environ, "PGAPPNAME": app}))
                errors = [(p.wait(), log) for p, log in zip(processes, logs)]
                run.seconds = time.perf_counter() - started
                stop.set()
                sampler.join()
                if dashboard is not None:
                    server, pollers = dashboard
                    for t in pollers:
                        t.join()
                    server.terminate()
                    server.wait(timeout=30)
                for code, log in errors:
                    if code != 0:
                        raise SystemExit(f"a worker exited {code}:\n{log.read_text()}")
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(database)))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("--workers", default="1,2,4", help="comma-separated W")
    parser.add_argument("--mode", choices=("processes", "jobs", "both"), default="both")
    parser.add_argument("--trials-per-worker", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=0.5, help="of each trial")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--dashboard-clients", type=int, default=4, metavar="C",
                        help="a last run: one worker and the dashboard polled by C clients "
                        "(0: no such run)")
    parser.add_argument("--stagger", type=float, default=0.0, metavar="S",
                        help="seconds between the starts of the workers (processes mode)")
    parser.add_argument("--via", default=None, metavar="HOST:PORT",
                        help="workers connect through a pooler there (e.g. PgBouncer)")
    args = parser.parse_args()
    modes = ("processes", "jobs") if args.mode == "both" else (args.mode,)
    with psycopg.connect(libpq_url(args.url)) as admin:
        max_connections = admin.execute("SHOW max_connections").fetchone()[0]
        version = admin.execute("SHOW server_version").fetchone()[0]
    print(f"PostgreSQL {version}, max_connections {max_connections}; trials of "
          f"{args.seconds} s, heartbeat every 1 s, {args.trials_per_worker} trials per worker, "
          f"a sample every {args.interval} s"
          + (f"; workers through {args.via}" if args.via else "")
          + (f"; workers started {args.stagger} s apart" if args.stagger else ""))
    print(f"{'mode':<10} {'W':>2} {'trials':>6} {'run s':>6} {'samples':>7} {'peak':>4} "
          f"{'peak/W':>6} {'worst process':>13}  connections at a sample: samples")
    for mode in modes:
        for w in (int(x) for x in args.workers.split(",")):
            run = measure(args.url, mode, w, args.trials_per_worker, args.seconds,
                          args.interval, args.via, stagger=args.stagger)
            worst = (str(max(run.peak_per_app.values(), default=0)) if mode == "processes"
                     else "-")  # --jobs: the parent and its jobs share one application_name
            spread = ", ".join(f"{n}: {c}" for n, c in sorted(run.totals.items()))
            print(f"{mode:<10} {w:>2} {run.trials:>6} {run.seconds:>6.1f} {run.samples:>7} "
                  f"{run.peak:>4} {run.peak / w:>6.2f} {worst:>13}  {spread}", flush=True)
    if args.dashboard_clients:
        run = measure(args.url, "processes", 1, args.trials_per_worker, args.seconds,
                      args.interval, args.via, args.dashboard_clients)
        print(f"one worker beside optuna-mix dashboard polled by {args.dashboard_clients} "
              f"clients ({run.seconds:.1f} s, {run.samples} samples): peak {run.peak} in all, "
              f"worker {run.peak_per_app['worker-0']}, dashboard {run.peak_per_app['dashboard']}")


if __name__ == "__main__":
    main()
