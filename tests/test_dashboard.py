"""optuna-dashboard shows what a study found: through its API and as a browser renders it.

The study: 40 gp trials on an analytic surface, reported with ``study report``'s figures
and note. The browser test serves the real ``optuna-dashboard`` on loopback and has
headless Chromium render the study page and the note page after their scripts ran.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import STUDIES, running_in_ci
from optuna_mix.config import load_config
from optuna_mix.report import build_report, publish
from optuna_mix.runner import create_mix_study, optimize
from optuna_mix.storage import open_storage


OUR_FIGURES = ["history-by-cluster", "top-mixtures-by-cluster", "per-domain-losses",
               "domain-utility"]


@pytest.fixture(scope="module")
def reported_study(tmp_path_factory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'dash.db'}"
    storage = open_storage(url)
    config = load_config(STUDIES / "surface-powerlaw5.toml").with_sampler("gp")
    mix = create_mix_study(config, storage)
    optimize(mix, n_trials=40, show_progress=False)
    publish(mix.study, storage, build_report(mix.study, mix.config.domain_names, storage=storage,
                                             sampler="gp"))
    return url, mix.study.study_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard_server(reported_study):
    """`optuna-mix dashboard` (optuna-dashboard's server) on a free loopback port."""
    url, name = reported_study
    with _serving(url) as base:
        yield base, name


@contextlib.contextmanager
def _serving(url: str):
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "optuna_mix.cli", "dashboard", "--storage", url,
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/meta", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    try:
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_dashboard_api_serves_the_study_its_plot_and_note(dashboard_server):
    base, name = dashboard_server
    studies = _get_json(f"{base}/api/studies")["study_summaries"]
    [summary] = [s for s in studies if s["study_name"] == name]
    detail = _get_json(f"{base}/api/studies/{summary['study_id']}")
    assert len(detail["trials"]) == 40
    assert sorted(g["id"] for g in detail["plotly_graph_objects"]) == sorted(OUR_FIGURES)
    assert "among the best mixtures" in detail["note"]["body"]
    attrs = {a["key"] for a in detail["trials"][0]["user_attrs"]}
    assert {"mix", "losses"} <= attrs


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser() -> str:
    browser = _chromium()
    if browser is None:
        if running_in_ci():
            pytest.fail("CI installs Debian's chromium; it is missing")
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    return browser


def _render(browser: str, page: str, profile: Path, shot: Path) -> str:
    """The DOM after the page's scripts ran, and a screenshot of it."""
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=20000",
    ]
    dom = subprocess.run([browser, *flags, "--dump-dom", page],
                         capture_output=True, text=True, timeout=180).stdout
    subprocess.run([browser, *flags, "--window-size=1400,2400", f"--screenshot={shot}", page],
                   capture_output=True, timeout=180)
    return dom


def test_a_browser_shows_our_figures_on_the_study_page_and_the_clusters_on_the_note_page(
    dashboard_server, tmp_path
):
    browser = _browser()
    base, name = dashboard_server
    studies = _get_json(f"{base}/api/studies")["study_summaries"]
    study_id = [s for s in studies if s["study_name"] == name][0]["study_id"]
    page = f"{base}/dashboard/studies/{study_id}"
    dom = _render(browser, page, tmp_path / "profile", tmp_path / "study.png")
    assert name in dom  # the React app rendered the study, not just the HTML shell
    drawn = [t for t in ("Optimisation history by weight cluster",
                         "Top mixtures by weight cluster", "per-domain loss against",
                         "domain utility: predicted change") if t in dom]
    assert len(drawn) >= 3, drawn  # plotly drew our figures, titles and all
    assert "Optimisation history by weight cluster" in drawn and "per-domain loss against" in drawn
    assert dom.count("js-plotly-plot") >= 3
    note = _render(browser, f"{page}/note", tmp_path / "profile", tmp_path / "note.png")
    assert "among the best mixtures" in note and "spread (TV)" in note
    for shot in ("study.png", "note.png"):
        assert (tmp_path / shot).stat().st_size > 10_000, shot


def test_a_browser_shows_a_pareto_study_s_front_by_validation_set(tmp_path):
    """A criterion = "pareto" study: optuna-dashboard's Pareto-front plot, its axes named by
    the study's validation sets, beside our pareto-front figure."""
    browser = _browser()
    url = f"sqlite:///{tmp_path / 'pareto.db'}"
    storage = open_storage(url)
    config = load_config(STUDIES / "surface-pareto5.toml").with_sampler("sobol")
    mix = create_mix_study(config, storage)
    optimize(mix, n_trials=8, show_progress=False)
    publish(mix.study, storage, build_report(mix.study, config.domain_names, storage=storage))
    with _serving(url) as base:
        [summary] = _get_json(f"{base}/api/studies")["study_summaries"]
        page = f"{base}/dashboard/studies/{summary['study_id']}"
        dom = _render(browser, page, tmp_path / "profile", tmp_path / "pareto.png")
    assert "Pareto Front" in dom and "Objective X:" in dom  # optuna-dashboard's own plot
    assert ">books<" in dom and ">social<" in dom  # its objectives: the validation sets
    assert "Pareto front: 8 of 8 trials no other beats" in dom  # our figure, drawn
