"""A user's own configs, in both typed forms, stored from their own module and used everywhere zenexp is:
the command line (their script calling zenexp's main), a typed `MainConfig`, rerun and resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import QUICK, cli, run_dirs

pytestmark = pytest.mark.slow  # mypy and the command line, in subprocesses

USER_MODULE = '''
from typing import Annotated

from annotated_types import Ge
from hydra_zen import builds, hydrated_dataclass, store
from torch import nn

from zenexp.configs import IMAGE_SHAPE, NUM_CLASSES


def tiny(image_shape: tuple[int, int, int], num_classes: int, hidden: int = 16) -> nn.Sequential:
    channels, height, width = image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


class Wide(nn.Sequential):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, width: int = 512) -> None:
        channels, height, width_px = image_shape
        super().__init__(nn.Flatten(), nn.Linear(channels * height * width_px, width), nn.ReLU(), nn.Linear(width, num_classes))


@hydrated_dataclass(tiny, hydra_convert="all")
class TinyConf:
    """A tiny MLP of my own."""

    image_shape: tuple[int, int, int] = IMAGE_SHAPE
    num_classes: int = NUM_CLASSES
    hidden: Annotated[int, Ge(1)] = 16


WideConf = builds(Wide, image_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, populate_full_signature=True, hydra_convert="all")

store(TinyConf(), group="model", name="tiny")
store(WideConf(), group="model", name="wide")
'''

ENTRY_POINT = """
import my_models  # registers model=tiny and model=wide
from zenexp.cli import main

main()
"""

TYPED = """
from hydra_zen import launch
import zenexp
from zenexp.configs import TrackerConf, TrackerMode, TrainerConf
from my_models import TinyConf, WideConf

quick = TrainerConf(epochs=1, max_steps_per_epoch=3, batch_size=8)
for name, model in (("tiny", TinyConf(hidden=8)), ("wide", WideConf(width=24))):
    cfg = zenexp.MainConfig(model=model, trainer=quick, tracker=TrackerConf(mode=TrackerMode.disabled))
    launch(cfg, zenexp.task, overrides=[f"hydra.run.dir=runs/{name}"], version_base="1.3")
"""


def run_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def write_user_files(folder: Path) -> None:
    (folder / "my_models.py").write_text(USER_MODULE)
    (folder / "run.py").write_text(ENTRY_POINT)
    (folder / "typed.py").write_text(TYPED)


def test_both_forms_run_from_the_command_line_and_are_checked(in_tmp_path: Path) -> None:
    write_user_files(in_tmp_path)
    done = run_script("run.py", "-m", "model=tiny,wide", "model.hidden=8", *QUICK)
    assert done.returncode == 1 and "model.hidden=8" in done.stderr  # wide has no hidden: refused first

    for overrides in (["model=tiny", "model.hidden=8"], ["model=wide", "model.width=24"]):
        done = run_script("run.py", *overrides, *QUICK, "tracker.mode=disabled")
        assert done.returncode == 0, done.stderr
    tiny, wide = (
        run_dirs(in_tmp_path / "outputs") if len(run_dirs(in_tmp_path / "outputs")) == 2 else (None, None)
    )
    assert tiny is not None and wide is not None
    assert OmegaConf.load(tiny / "config.yaml").model.hidden == 8
    assert OmegaConf.load(wide / "config.yaml").model.width == 24

    done = run_script("run.py", "model=tiny", "model.hidden=0")
    assert done.returncode == 1 and "model.hidden=0: expected an integer >= 1" in done.stderr

    done = run_script("run.py", "--help")
    assert "model      small | large | net | tiny | wide" in done.stdout
    assert "model=tiny: A tiny MLP of my own." in done.stdout


def test_both_forms_fill_a_typed_main_config(in_tmp_path: Path) -> None:
    write_user_files(in_tmp_path)
    done = run_script("typed.py")
    assert done.returncode == 0, done.stderr
    assert OmegaConf.load(in_tmp_path / "runs/tiny/config.yaml").model.hidden == 8
    assert OmegaConf.load(in_tmp_path / "runs/wide/config.yaml").model.width == 24


def test_rerun_and_resume_find_the_users_configs_or_say_what_to_import(in_tmp_path: Path) -> None:
    write_user_files(in_tmp_path)
    done = run_script("run.py", "model=tiny", "model.hidden=8", *QUICK, "tracker.mode=disabled")
    assert done.returncode == 0, done.stderr
    (run_dir,) = run_dirs(in_tmp_path / "outputs")
    assert json.loads((run_dir / "run.json").read_text())["registered_by"] == {"model=tiny": "my_models"}

    done = cli("rerun", str(run_dir))  # plain zenexp does not know model=tiny
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"zenexp: error: {run_dir} used model=tiny, which module my_models registers; run it through a script "
        f"that imports my_models and calls zenexp.cli.main() (python SCRIPT rerun {run_dir}), or import "
        "my_models before calling zenexp from Python"
    )

    done = run_script("run.py", "rerun", str(run_dir))
    assert done.returncode == 0 and "same metrics" in done.stdout, done.stdout + done.stderr
    done = run_script("run.py", "resume", str(run_dir), "trainer.epochs=2")
    assert done.returncode == 0, done.stderr
    epochs = [
        r["epoch"]
        for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        if "epoch" in r
    ]
    assert epochs == [1, 2]
