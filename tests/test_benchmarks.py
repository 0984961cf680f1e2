"""The benchmark scripts keep working (their figures are read by people, not asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each runs a benchmark script

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_check_overhead_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "check_overhead.py")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    for label in (
        "CLI pre-check of one run",
        "the guard Hydra resolves",
        "check inside the job",
        "added to a run",
        "9-job sweep pre-check",
    ):
        assert label in done.stdout
    assert all(" ms" in line for line in done.stdout.splitlines())


def quick(script: str) -> str:
    """What `python benchmarks/SCRIPT --quick` prints; it must succeed."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_main_benchmark_prints_its_table() -> None:
    printed = quick("run.py")
    for label in (
        "lesson: PIL",
        "floor: preloaded",
        "zenexp (tracker offline)",
        "zenexp / floor",
        "--cfg job",
        "evaluation",
    ):
        assert label in printed


def test_the_tracker_setup_bound_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "tracker_setup.py"), "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    trickle, closed, malformed = done.stdout.splitlines()
    assert trickle.startswith("trickling server") and "did not answer within 1 s" in trickle
    assert float(trickle.split()[2]) < 2  # the bound holds against a server that keeps sending bytes
    assert "Connection refused" in closed and "is not a URL" in malformed


def test_the_devices_benchmark_prints_its_figures() -> None:
    printed = quick("devices.py")
    for label in ("batch   4: 1 device", "batch 256: 1 device", "rank 1 killed: the job ended"):
        assert label in printed


def test_the_data_benchmark_prints_every_way_of_reading() -> None:
    printed = quick("data.py")
    for label in (
        "uint8 in memory",
        "per batch, 0 workers",
        "per batch, 2 workers",
        "lesson, DataLoader",
        "PNGs",
    ):
        assert label in printed


def test_the_pruning_benchmark_prints_both_searches() -> None:
    printed = quick("pruning.py")
    assert "no pruner           5      0     10" in printed  # 5 trials of 2 epochs, none pruned
    assert "median pruner       5" in printed and "best val_accuracy" in printed
