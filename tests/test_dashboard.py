"""optuna-dashboard shows a study's mixtures: through its API and as a browser renders it."""

from __future__ import annotations

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
from optuna_mix.report import build_report, publish_to_dashboard
from optuna_mix.runner import create_mix_study, optimize
from optuna_mix.storage import open_storage


@pytest.fixture
def reported_study(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    mix = create_mix_study(load_config(STUDIES / "surface-powerlaw5.toml"), open_storage(url))
    optimize(mix, n_trials=12, show_progress=False)
    publish_to_dashboard(mix.study, build_report(mix.study, mix.config.domain_names, top_n=5))
    return url, mix.study.study_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard_server(reported_study):
    """The real `optuna-dashboard <url>` command on a free loopback port."""
    url, name = reported_study
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "optuna_dashboard._cli", url, "--host", "127.0.0.1", "--port", str(port)],
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
    yield base, name
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
    assert len(detail["trials"]) == 12
    assert [g["id"] for g in detail["plotly_graph_objects"]] == ["top-mixtures"]
    assert "clusters" in detail["note"]["body"]
    attrs = {a["key"] for a in detail["trials"][0]["user_attrs"]}
    assert {"mix", "losses"} <= attrs


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_a_browser_renders_the_study_page_with_the_mixture_plot(dashboard_server, tmp_path):
    browser = _chromium()
    if browser is None:
        if running_in_ci():
            pytest.fail("CI installs Debian's chromium; it is missing")
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    base, name = dashboard_server
    studies = _get_json(f"{base}/api/studies")["study_summaries"]
    study_id = [s for s in studies if s["study_name"] == name][0]["study_id"]
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", f"{base}/dashboard/studies/{study_id}"],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert name in dom  # the React app rendered the study, not just the HTML shell
    assert "plotly" in dom  # the saved top-mixtures figure was drawn
    shot = tmp_path / "study.png"
    subprocess.run(
        [browser, *flags, "--window-size=1400,1000", f"--screenshot={shot}",
         f"{base}/dashboard/studies/{study_id}"],
        capture_output=True, timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
