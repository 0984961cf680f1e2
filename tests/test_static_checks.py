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
