"""A user's own configs, stored by their own script (`python myexp.py ...`) or by a module their script imports:
run.json records which one registered each option; rerun, resume and eval work through that script, and plain
`zenexp` names it in one line; what the script defines (a model, a dataset loader, a preset) runs on every
launcher, in whatever process the launcher runs the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import in_process, read_metrics, run_dirs
from zenexp.configs.usercode import NOT_GUARDED
from zenexp.errors import UserError
from zenexp.parallel import machine
from zenexp.run.provenance import read_run_file
from zenexp.run.resume import rerun_overrides

# One short epoch on one thread, nothing recorded in SwanLab.
TINY = [
    "trainer.epochs=1",
    "trainer.max_steps_per_epoch=2",
    "trainer.batch_size=8",
    "trainer.num_threads=1",
    "tracker.mode=disabled",
]

# A model as a class (configured with builds()) and as a function (with @hydrated_dataclass), the same in the
# script and in the module below.
MODELS = """class Wide(nn.Sequential):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, width: int = 32) -> None:
        channels, height, width_px = image_shape
        super().__init__(nn.Flatten(), nn.Linear(channels * height * width_px, width), nn.ReLU(), nn.Linear(width, num_classes))


def tiny(image_shape: tuple[int, int, int], num_classes: int, hidden: int = 8) -> nn.Sequential:
    channels, height, width = image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


@hydrated_dataclass(tiny, hydra_convert="all")
class TinyConf:
    image_shape: tuple[int, int, int] = IMAGE_SHAPE
    num_classes: int = NUM_CLASSES
    hidden: int = 8
"""

# A model (a class and a function, in both typed forms), a dataset loader and a preset, all defined in the script
# itself: their targets are `__main__.Wide`, `__main__.tiny`, `__main__.noise`.
SCRIPT = '''
import torch
from hydra_zen import builds, hydrated_dataclass, store
from torch import nn

import zenexp.cli
from zenexp.configs import IMAGE_SHAPE, NUM_CLASSES, preset
from zenexp.data.datasets import ImageData


{MODELS}

def noise(size: int = 64) -> ImageData:
    """Random 8x8 images of 10 classes."""
    generator = torch.Generator().manual_seed(0)

    def split(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.rand(count, 1, 8, 8, generator=generator) * 2 - 1, torch.arange(count) % 10

    return ImageData(*split(size), *split(size // 2), *split(size // 2), classes=tuple("0123456789"))


WideConf = builds(Wide, image_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, populate_full_signature=True, hydra_convert="all")
NoiseConf = builds(noise, zen_partial=True, populate_full_signature=True, zen_meta={"image_shape": (1, 8, 8), "num_classes": 10})
store(WideConf(), group="model", name="script_wide")
store(TinyConf(), group="model", name="script_tiny")
store(NoiseConf(), group="dataset", name="script_noise")
store(preset(dataset="script_noise", model="script_wide", optim="adam"), group="experiment", name="script_preset", package="_global_")

if __name__ == "__main__":
    zenexp.cli.main()
'''.replace("{MODELS}", MODELS)

# The same script, but it starts zenexp whenever it is imported.
UNGUARDED = SCRIPT.replace('if __name__ == "__main__":\n', "if True:\n")

# The README's layout: configs in an importable module, in both typed forms; a script that imports it.
MODULE = """
from hydra_zen import builds, hydrated_dataclass, store
from torch import nn

from zenexp.configs import IMAGE_SHAPE, NUM_CLASSES, preset


{MODELS}

store(TinyConf(), group="model", name="module_tiny")
store(builds(Wide, image_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, populate_full_signature=True, hydra_convert="all"), group="model", name="module_wide")
store(preset(dataset="digits", model="module_wide", optim="adam"), group="experiment", name="module_preset", package="_global_")
""".replace("{MODELS}", MODELS)

# As the README's: no `__main__` guard, which a job needs only to import a script that defines its configs.
ENTRY_POINT = "import my_models\nfrom zenexp.cli import main\n\nmain()\n"


def python(*args: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in the current directory, as the user runs their script."""
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def registered_by(run_dir: Path) -> Any:
    return json.loads((run_dir / "run.json").read_text())["registered_by"]


def relative(run_dir: Path) -> str:
    return os.path.relpath(run_dir)


def refused(done: subprocess.CompletedProcess[str], advice: str) -> bool:
    """Whether zenexp refused in one line that ends with `advice`."""
    return (
        done.returncode == 1 and len(done.stderr.splitlines()) == 1 and done.stderr.rstrip().endswith(advice)
    )


@pytest.mark.slow
def test_a_scripts_own_configs_run_on_joblib_and_rerun_and_eval_through_the_script(in_tmp_path: Path) -> None:
    (in_tmp_path / "myexp.py").write_text(SCRIPT)
    done = python(
        "myexp.py",
        "-m",
        "hydra/launcher=joblib",
        "experiment=script_preset",
        "model=script_wide,script_tiny",
        *[setting for setting in TINY if not setting.startswith("trainer.num_threads")],  # auto, below
    )
    assert done.returncode == 0 and "2 of 2 jobs finished" in done.stdout, done.stdout + done.stderr
    wide, tiny = run_dirs(in_tmp_path / "multirun")
    # The two jobs joblib runs at once share the cores (the sweep's setting reached its worker processes).
    assert read_run_file(wide)["threads"] == max(1, machine.cores() // 2)
    assert "cores / (2 jobs x 1 rank)" in (wide / "zenexp.log").read_text()
    script = str(in_tmp_path / "myexp.py")
    assert registered_by(wide) == {
        "experiment=script_preset": script,
        "dataset=script_noise": script,
        "model=script_wide": script,  # builds()
    }
    assert registered_by(tiny)["model=script_tiny"] == script  # @hydrated_dataclass

    # Plain zenexp does not know the script's options: it names the script, and the command to run.
    done = in_process("rerun", relative(wide))
    assert refused(done, f"run it through that script: python myexp.py rerun {relative(wide)}"), done.stderr
    assert "which the script myexp.py registers" in done.stderr
    done = in_process("eval", relative(tiny))
    assert refused(done, f"run it through that script: python myexp.py eval {relative(tiny)}"), done.stderr
    done = in_process("rerun", relative(tiny))
    assert refused(done, f"run it through that script: python myexp.py rerun {relative(tiny)}"), done.stderr

    done = python("myexp.py", "rerun", relative(wide))
    assert done.returncode == 0 and "same metrics" in done.stdout, done.stdout + done.stderr
    done = python("myexp.py", "eval", relative(tiny))
    assert done.returncode == 0 and (tiny / "eval.json").is_file(), done.stdout + done.stderr


@pytest.mark.slow
def test_a_scripts_own_configs_run_on_submitit_and_resume_through_the_script(in_tmp_path: Path) -> None:
    (in_tmp_path / "myexp.py").write_text(SCRIPT)
    done = python(
        "myexp.py",
        "-m",
        "hydra/launcher=submitit_local",
        "experiment=script_preset",
        "model.width=8,16",
        *TINY,
    )
    assert done.returncode == 0 and "2 of 2 jobs finished" in done.stdout, done.stdout + done.stderr
    first, _ = run_dirs(in_tmp_path / "multirun")

    done = in_process("resume", relative(first), "trainer.epochs=2")
    assert refused(done, f"run it through that script: python myexp.py resume {relative(first)}"), done.stderr
    done = python("myexp.py", "resume", relative(first), "trainer.epochs=2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [record["epoch"] for record in read_metrics(first) if "epoch" in record] == [1, 2]


@pytest.mark.slow
def test_a_script_that_starts_zenexp_when_imported_is_refused_in_the_job(in_tmp_path: Path) -> None:
    (in_tmp_path / "unguarded.py").write_text(UNGUARDED)
    done = python("unguarded.py", "-m", "hydra/launcher=joblib", "experiment=script_preset", *TINY)
    assert done.returncode == 1 and "0 of 1 jobs finished (1 failed)" in done.stdout, (
        done.stdout + done.stderr
    )
    assert f"job 0 failed: {in_tmp_path / 'unguarded.py'}: {NOT_GUARDED}" in done.stdout + done.stderr


@pytest.mark.slow
def test_a_modules_configs_are_recorded_by_module_and_rerun_through_a_script_that_imports_it(
    in_tmp_path: Path,
) -> None:
    (in_tmp_path / "my_models.py").write_text(MODULE)
    (in_tmp_path / "run.py").write_text(ENTRY_POINT)
    done = python(
        "run.py",
        "-m",
        "hydra/launcher=joblib",
        "experiment=module_preset",
        "model=module_tiny,module_wide",
        *TINY,
    )
    assert done.returncode == 0 and "2 of 2 jobs finished" in done.stdout, done.stdout + done.stderr
    tiny, wide = run_dirs(in_tmp_path / "multirun")
    # A preset is a plain dict, which names no module: the script that started the sweep registered it (or
    # imported what did), in whichever process the launcher ran the job.
    script = str(in_tmp_path / "run.py")
    assert registered_by(tiny) == {"experiment=module_preset": script, "model=module_tiny": "my_models"}
    assert registered_by(wide) == {"experiment=module_preset": script, "model=module_wide": "my_models"}

    done = in_process("rerun", relative(wide))
    assert refused(done, f"run it through that script: python run.py rerun {relative(wide)}"), done.stderr
    done = python("run.py", "rerun", relative(wide))
    assert done.returncode == 0 and "same metrics" in done.stdout, done.stdout + done.stderr


def recorded(run_dir: Path, registered: Any, command: list[str]) -> None:
    """Make `run_dir`'s run.json say `registered_by: registered` and `command: command`."""
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "registered_by": registered, "command": command}))


def test_an_older_or_hostile_registered_by_is_named_never_imported(
    quick_run: Path, in_tmp_path: Path
) -> None:
    # Files that would say so if zenexp ran them.
    ran = in_tmp_path / "ran"
    for name in ("my_old_models.py", "old_exp.py"):
        (in_tmp_path / name).write_text(f"open({str(ran)!r}, 'a').write({name!r})\n")
    run = relative(quick_run)

    # An older zenexp recorded where builds() made the class (`types`): the run's own script is named.
    recorded(quick_run, {"model=gone": "types"}, ["old_exp.py", "model=gone"])
    with pytest.raises(UserError) as error:
        rerun_overrides(Path(run))
    assert str(error.value) == (
        f"{run} used model=gone, which the script it was started with registers (old_exp.py, as run.json's command "
        f"says); run it through that script: python old_exp.py rerun {run}"
    )
    recorded(quick_run, {"model=gone": "types"}, ["-c"])
    with pytest.raises(UserError, match="which a script or session of yours registered"):
        rerun_overrides(Path(run))

    # A module's name (as this zenexp records a module of the user's, and as older ones did).
    recorded(quick_run, {"model=gone": "my_old_models"}, ["old_exp.py"])
    with pytest.raises(UserError) as error:
        rerun_overrides(Path(run))
    assert str(error.value) == (
        f"{run} used model=gone, which module my_old_models registers; run it through a script that imports "
        f"my_old_models and calls zenexp.cli.main() (python SCRIPT rerun {run}), or import my_old_models before "
        f"calling zenexp from Python"
    )
    recorded(quick_run, {"model=gone": str(in_tmp_path / "old_exp.py")}, ["old_exp.py"])
    with pytest.raises(UserError, match="which the script old_exp.py registers"):
        rerun_overrides(Path(run))
    # A package run with `python -m mypkg`: run it again that way (importing mypkg.__main__ would run it).
    recorded(quick_run, {"model=gone": "-m mypkg"}, ["/site-packages/mypkg/__main__.py"])
    with pytest.raises(UserError) as error:
        rerun_overrides(Path(run))
    assert str(error.value).endswith(f"run it through that: python -m mypkg rerun {run}")
    assert not ran.exists() and "my_old_models" not in sys.modules

    damages = [{"model=gone": 3}, {"model=gone": "\x1b[2J"}, {"model=gone": "a b"}, ["my_old_models"]]
    damages += [
        {"model=gone\nzenexp: all 1 job valid": "my_models"},
        {"tiny": "my_models"},
        {"model=gone": "-m "},
    ]
    for damaged in damages:
        recorded(quick_run, damaged, ["old_exp.py"])
        with pytest.raises(UserError, match="the file is damaged"):
            rerun_overrides(Path(run))
