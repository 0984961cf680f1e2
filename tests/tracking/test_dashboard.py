"""The local SwanLab dashboard shows a zenexp run and its loss chart, in headless Chromium."""

from __future__ import annotations

import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run
from tests.run.test_crash_safety import start_and_stop

pytestmark = [pytest.mark.slow, pytest.mark.dashboard]

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",  # let the page fetch and draw before the DOM is read
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def dashboard(in_tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local-mode run, and `swanlab watch` serving its folder: (the dashboard's address, the run dir)."""
    result = run("tracker.mode=local", "trainer.epochs=2", "tracker.experiment_name=dashboard-check")
    port = free_port()
    watch = Path(sys.executable).parent / "swanlab"
    server = subprocess.Popen(
        [str(watch), "watch", str(result.output_dir / "swanlog"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{address}/api/v1/project", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("swanlab watch did not start (is swanboard 0.1.10b2 installed?)")
                time.sleep(0.2)
        yield address, result.output_dir
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_the_dashboard_shows_the_run_and_its_loss_chart(
    dashboard: tuple[str, Path], in_tmp_path: Path
) -> None:
    address, _ = dashboard
    assert CHROMIUM is not None

    def page(path: str) -> str:
        done = subprocess.run(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={in_tmp_path / 'chromium'}",
                "--dump-dom",
                address + path,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    project = page("/")
    assert "zenexp" in project and "dashboard-check" in project  # the project and its run
    experiment = page("/experiment/1")
    assert "dashboard-check" in experiment and "Finished" in experiment
    assert "train/loss" in experiment and "val/accuracy" in experiment  # chart titles
    assert experiment.count("<canvas") >= 2  # drawn charts


def test_a_stopped_run_is_not_shown_as_finished_on_the_dashboard(in_tmp_path: Path) -> None:
    run_dir = in_tmp_path / "stopped"
    status, _ = start_and_stop(run_dir, signal.SIGINT, "tracker.mode=local")
    assert status == 128 + signal.SIGINT
    with sqlite3.connect(run_dir / "swanlog" / "runs.swanlab") as dashboard_db:  # what `swanlab watch` reads
        ((state,),) = dashboard_db.execute("SELECT status FROM experiment").fetchall()
    assert state == -1  # the dashboard's "stopped" (it has no aborted); 1 would show it as finished
