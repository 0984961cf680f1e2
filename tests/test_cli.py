"""The real command line, in a subprocess, as a user types it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from hydra_zen import instantiate
from omegaconf import OmegaConf

from tests.conftest import QUICK, SwanLabRun, cli, in_process, read_metrics, run_dirs
from zenexp.configs.schema import compose_config

# The real command line, in a subprocess (and main() in this process where a test reads what it prints).
pytestmark = pytest.mark.slow


def test_default_command_trains_and_records(in_tmp_path: Path) -> None:
    done = cli(*QUICK)
    assert done.returncode == 0, done.stderr
    (run_dir,) = run_dirs(in_tmp_path / "outputs")
    assert (run_dir / "zenexp.log").is_file()  # the job is named zenexp, not after a module
    assert "test accuracy" in (run_dir / "zenexp.log").read_text()
    assert (run_dir / "summary.json").is_file() and (run_dir / "model.pt").is_file()
    assert SwanLabRun(run_dir).finish.state == 1


def test_console_script_is_installed() -> None:
    script = shutil.which("zenexp", path=str(Path(sys.executable).parent))
    assert script is not None
    import subprocess

    done = subprocess.run([script, "--cfg", "job"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "_target_: zenexp.data.datasets.digits" in done.stdout


def test_cfg_job_shows_the_config_and_runs_nothing(in_tmp_path: Path) -> None:
    done = cli("--cfg", "job", "model=large", "optim.lr=0.01")
    assert done.returncode == 0, done.stderr
    assert "lr: 0.01" in done.stdout
    assert not (in_tmp_path / "outputs").exists()


def test_large_is_the_lessons_sequential_of_linear_layers_built_from_config() -> None:
    done = in_process("--cfg", "job", "model=large", "model.hidden=32")
    model = OmegaConf.to_container(OmegaConf.create(done.stdout).model)  # as printed, not resolved
    assert isinstance(model, dict) and model["_zen_target"] == "torch.nn.modules.container.Sequential"
    linears = [layer for layer in model["_args_"] if layer["_target_"].endswith(".Linear")]
    assert len(linears) == 3
    assert linears[0]["in_features"] == "${zenexp.size:${dataset.image_shape}}"
    assert linears[1]["in_features"] == "${..[1].out_features}"  # the lesson's interpolation
    assert linears[-1]["out_features"] == "${dataset.num_classes}"

    large = instantiate(compose_config(["model=large", "model.hidden=32"]).model)
    assert isinstance(large, torch.nn.Sequential)
    assert [(m.in_features, m.out_features) for m in large if isinstance(m, torch.nn.Linear)] == [
        (64, 32),
        (32, 32),
        (32, 10),
    ]  # one override changed every hidden width; the input and the classes come from the dataset
    small = instantiate(compose_config(["dataset=fake"]).model)
    assert [m.in_features for m in small if isinstance(m, torch.nn.Linear)] == [3 * 32 * 32, 128]


def test_cfg_job_shows_the_dataset_as_a_person_reads_it() -> None:
    done = in_process("--cfg", "job", "dataset=cifar10")
    dataset = OmegaConf.create(done.stdout).dataset
    assert OmegaConf.to_container(dataset) == {
        "root": "data",
        "download": False,
        "val_fraction": 0.1,
        "split_seed": 0,
        "image_shape": [3, 32, 32],
        "num_classes": 10,
        "in_memory": None,
        "_target_": "zenexp.data.datasets.cifar10",
        "_partial_": True,
        "_convert_": "all",
    }
    assert (
        "zen_processing" not in done.stdout.split("model:")[0]
        and "_zen_" not in done.stdout.split("model:")[0]
    )


def test_experiment_presets_from_the_command_line(in_tmp_path: Path) -> None:
    done = in_process("check", "experiment=lesson", "dataset.root=nowhere")  # the lesson's CIFAR-10, not here
    assert done.returncode == 1 and "dataset=cifar10: no CIFAR-10 files in" in done.stderr, done.stderr
    done = in_process("--cfg", "job", "experiment=lesson")
    lesson = OmegaConf.create(done.stdout)
    assert (
        lesson.model._target_ == "zenexp.run.models.Net"
        and lesson.dataset._target_ == "zenexp.data.datasets.cifar10"
    )
    assert (lesson.optim.lr, lesson.optim.momentum) == (0.001, 0.9)
    assert (lesson.trainer.batch_size, lesson.trainer.epochs) == (4, 2)

    done = cli("experiment=lesson_fake", "trainer.max_steps_per_epoch=2", "dataset.train_size=16")
    assert done.returncode == 0, done.stderr
    (run_dir,) = run_dirs(in_tmp_path / "outputs")
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert (
        saved.model._target_ == "zenexp.run.models.Net"
        and saved.dataset._target_ == "zenexp.data.datasets.fake"
    )
    assert saved.trainer.epochs == 2 and saved.dataset.train_size == 16

    done = in_process("--cfg", "job", "experiment=lesson_fake", "model=large")  # an explicit choice wins
    assert OmegaConf.create(done.stdout).model.hidden == 256
    done = in_process("--help")
    assert "experiment lesson | lesson_fake" in done.stdout
    assert "experiment=lesson: dataset=cifar10 model=net optim=sgd trainer.epochs=2" in done.stdout


def test_help_lists_groups_options_and_documented_fields() -> None:
    done = cli("--help")
    assert done.returncode == 0, done.stderr
    assert "model      small | large | net" in done.stdout
    assert "dataset    digits | cifar10 | fake | image_folder | mnist" in done.stdout
    assert "optim      sgd | adam" in done.stdout
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert lines["optim.lr"].split()[1:5] == ["float", ">", "0", "0.001"]
    assert lines["optim.lr"].endswith("learning rate")
    assert (
        "int >= 1" in lines["trainer.epochs"] and "passes over the training split" in lines["trainer.epochs"]
    )
    assert "offline" in lines["tracker.mode"]


def test_multirun_sweeps_the_learning_rate(in_tmp_path: Path) -> None:
    done = cli("-m", "optim.lr=0.01,0.1", *QUICK)
    assert done.returncode == 0, done.stderr
    dirs = run_dirs(in_tmp_path / "multirun")
    assert len(dirs) == 2
    assert [SwanLabRun(d).config["optim.lr"] for d in dirs] == [0.01, 0.1]
    # Named after the job's overrides, which Hydra sorts.
    assert [SwanLabRun(d).start.name for d in dirs] == [
        f"optim.lr={lr},trainer.batch_size=8,trainer.epochs=1,trainer.max_steps_per_epoch=3"
        for lr in ("0.01", "0.1")
    ]


def test_a_crashing_job_is_recorded_and_the_sweep_goes_on(in_tmp_path: Path) -> None:
    # 5 classes declared for 10: the first training step fails inside the run (labels out of range).
    done = cli("-m", "dataset=fake", "model=net", "model.num_classes=5,10", *QUICK)
    assert done.returncode == 1
    crashed, finished = run_dirs(in_tmp_path / "multirun")
    swan = SwanLabRun(crashed)
    assert swan.finish.state == 2  # RUN_STATE_CRASHED
    assert "IndexError: Target" in swan.finish.error
    assert read_metrics(crashed) == []
    assert SwanLabRun(finished).finish.state == 1
    assert (finished / "summary.json").is_file()
