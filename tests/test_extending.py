"""A user's own model: a typed config in their own module, added to the store, chosen by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import QUICK

USER_MODULE = '''
from typing import Annotated

from annotated_types import Ge
from hydra_zen import hydrated_dataclass, store
from torch import nn

from zenexp.configs import IMAGE_SHAPE, NUM_CLASSES


def tiny(image_shape: tuple[int, int, int], num_classes: int, hidden: int = 16) -> nn.Sequential:
    channels, height, width = image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


@hydrated_dataclass(tiny, hydra_convert="all")
class TinyConf:
    """A tiny MLP of my own."""

    image_shape: tuple[int, int, int] = IMAGE_SHAPE
    num_classes: int = NUM_CLASSES
    hidden: Annotated[int, Ge(1)] = 16


store(TinyConf(), group="model", name="tiny")
'''

ENTRY_POINT = """
import my_models  # registers model=tiny
from zenexp.cli import main

main()
"""


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run.py", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_a_registered_model_of_ones_own_runs_and_is_checked(in_tmp_path: Path) -> None:
    (in_tmp_path / "my_models.py").write_text(USER_MODULE)
    (in_tmp_path / "run.py").write_text(ENTRY_POINT)

    done = run_script("model=tiny", "model.hidden=8", *QUICK)
    assert done.returncode == 0, done.stderr
    assert "run recorded in" in done.stdout

    done = run_script("model=tiny", "model.hidden=0")
    assert done.returncode == 1 and "model.hidden=0: expected an integer >= 1" in done.stderr

    done = run_script("--help")
    assert "model    small | large | net | tiny" in done.stdout
    assert "model=tiny: A tiny MLP of my own." in done.stdout
