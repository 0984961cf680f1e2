"""mypy --strict (src, tests and the config edits in tests/annotations) and ruff are part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def check(*command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_strict_passes() -> None:
    check("mypy")  # settings, files and stubs path come from pyproject.toml


def test_ruff_passes() -> None:
    check("ruff", "check", "src", "tests", "stubs", "benchmarks")
    check("ruff", "format", "--check", "src", "tests", "stubs", "benchmarks")


@pytest.mark.xdist_group("suite")
def test_xdist_groups_keep_their_tests_on_one_worker(request: pytest.FixtureRequest) -> None:
    """The Slurm tests share one throwaway cluster and the two-device tests one trained run: each group must
    run on one worker. With pytest 9.2, pytest-xdist 3.8 could not mark a test's group, the groups were split,
    and two Slurm clusters killed each other (pyproject.toml pins pytest below 9.2)."""
    if getattr(request.config.option, "loadgroup", False):  # a worker of `-n N --dist loadgroup`
        assert request.node.nodeid.endswith("@suite"), request.node.nodeid
