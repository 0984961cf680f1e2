"""The real command line, in a subprocess, as a user types it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.conftest import QUICK, SwanLabRun, cli, read_metrics, run_dirs


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
    assert "_target_: zenexp.data.digits" in done.stdout


def test_cfg_job_shows_the_config_and_runs_nothing(in_tmp_path: Path) -> None:
    done = cli("--cfg", "job", "model=large", "optim.lr=0.01")
    assert done.returncode == 0, done.stderr
    assert "_target_: zenexp.models.large" in done.stdout
    assert "lr: 0.01" in done.stdout
    assert not (in_tmp_path / "outputs").exists()


def test_help_lists_groups_options_and_documented_fields() -> None:
    done = cli("--help")
    assert done.returncode == 0, done.stderr
    assert "model    small | large | net" in done.stdout
    assert "dataset  digits | cifar10 | fake | mnist" in done.stdout
    assert "optim    sgd | adam" in done.stdout
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
    assert [SwanLabRun(d).config["optim"]["lr"] for d in dirs] == [0.01, 0.1]
    # Named after the job's overrides, which Hydra sorts.
    assert [SwanLabRun(d).start.name for d in dirs] == [
        f"optim.lr={lr},trainer.batch_size=8,trainer.epochs=1,trainer.max_steps_per_epoch=3"
        for lr in ("0.01", "0.1")
    ]


def test_a_crashing_job_is_recorded_and_the_sweep_goes_on(in_tmp_path: Path) -> None:
    # 16x16 inputs declared for 32x32 images: the first forward pass fails inside the run.
    done = cli("-m", "dataset=fake", "model=net", "model.image_shape=[3,16,16],[3,32,32]", *QUICK)
    assert done.returncode == 1
    crashed, finished = run_dirs(in_tmp_path / "multirun")
    swan = SwanLabRun(crashed)
    assert swan.finish.state == 2  # RUN_STATE_CRASHED
    assert "RuntimeError" in swan.finish.error
    assert read_metrics(crashed) == []
    assert SwanLabRun(finished).finish.state == 1
    assert (finished / "summary.json").is_file()
