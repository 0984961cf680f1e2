"""Sweeps that survive anything: a killed driver, a failed job, a stop; `zenexp resume SWEEP_DIR` finishes
them, leaving finished jobs as they were. The drivers that are stopped are real processes, killed for real."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from tests.conftest import SwanLabRun, cli, hashes, in_process, write_cifar10, zenexp_for
from zenexp.run import rundir
from zenexp.sweep.records import read_run

# Every test runs a sweep; a real process where the point is one (a kill, a signal, the console, a pipe), and
# zenexp's main() in this process for the rest (resume, compare: the same answer, without the start-up).
pytestmark = pytest.mark.slow

# Jobs long enough to be killed in the middle (8 epochs of the lesson's CNN on 200 images, ~1 s), each
# checkpointing at every epoch.
SLOW = [
    "dataset=fake",
    "dataset.train_size=200",
    "model=net",
    "trainer.epochs=8",
    "trainer.batch_size=8",
    "tracker.mode=disabled",
]


QUICK_SEARCH = ["trainer.epochs=1", "trainer.max_steps_per_epoch=3", "tracker.mode=disabled"]


def sweep_dir_of(root: Path) -> Path:
    (found,) = [p.parent for p in root.glob("multirun/*/*/sweep.json")]
    return found


def kill_driver_when(args: list[str], ready: str) -> Path:
    """Start `zenexp -m ARGS`, SIGKILL it and every process it started once `ready` (a glob under the sweep
    directory) exists, as when the machine is lost; return the sweep directory."""
    process = subprocess.Popen(
        [sys.executable, "-m", "zenexp", "-m", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        if any(Path.cwd().glob(f"multirun/*/*/{ready}")):
            break
        time.sleep(0.01)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    return sweep_dir_of(Path.cwd())


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_killed_sweep_is_resumed_to_completion_leaving_finished_jobs_untouched(
    launcher: str, in_tmp_path: Path
) -> None:
    args = [f"hydra/launcher={launcher}", "hydra.launcher.n_jobs=1"] if launcher == "joblib" else []
    sweep = kill_driver_when([*args, "seed=0,1,2", *SLOW], "1/checkpoints/last.pt")
    assert read_run(sweep / "0").status == "finished"
    finished_before = hashes(sweep / "0")

    listed = in_process("compare", str(sweep))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in listed.stdout.splitlines()[1:4]}
    assert rows["1"] == ["did", "not"] and rows["2"] == ["not", "started"]  # from the ledger

    done = zenexp_for(launcher)("resume", str(sweep))
    assert done.returncode == 0, done.stderr
    assert "3 of 3 jobs finished" in done.stdout
    assert hashes(sweep / "0") == finished_before  # not run again
    assert json.loads((sweep / "1" / "run.json").read_text())["resumed"]  # continued from its checkpoint
    assert json.loads((sweep / "2" / "run.json").read_text())["resumed"] == []  # never started: ran whole
    uninterrupted = zenexp_for(launcher)("-m", *args, "seed=1", *SLOW, "hydra.sweep.dir=again")
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert (sweep / "1" / "summary.json").read_text() == (Path("again/0/summary.json")).read_text()

    again = zenexp_for(launcher)("resume", str(sweep))  # nothing left to do
    assert again.returncode == 0 and "3 of 3 jobs finished, 0 to run" in again.stdout


def test_a_stopped_sweep_records_the_job_aborted_and_counts_every_job(in_tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "zenexp", "-m", "seed=0,1,2", *SLOW, "tracker.mode=offline"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while not any(Path.cwd().glob("multirun/*/*/0/checkpoints/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)  # Ctrl-C
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr
    sweep = sweep_dir_of(in_tmp_path)
    status = json.loads((sweep / "0" / "status.json").read_text())
    assert status["status"] == "aborted" and status["signal"] == "SIGINT"
    assert "aborted by SIGINT" in (sweep / "0" / "zenexp.log").read_text()
    assert SwanLabRun(sweep / "0").finish.state == 3  # RUN_STATE_ABORTED, with an error (see tracking.py)
    assert SwanLabRun(sweep / "0").finish.error
    assert "0 of 3 jobs finished (1 aborted, 2 not started)" in stdout
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert [job["status"] for job in summary["jobs"]] == ["aborted", "not started", "not started"]

    listed = in_process("compare", str(sweep))
    assert "aborted" in listed.stdout and "not started" in listed.stdout

    done = in_process("resume", str(sweep))
    assert done.returncode == 0, done.stderr
    assert "3 of 3 jobs finished" in done.stdout
    assert json.loads((sweep / "0" / "status.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local"])
def test_a_job_that_fails_never_stops_the_others(launcher: str, in_tmp_path: Path) -> None:
    write_cifar10(in_tmp_path / "data")
    (in_tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"damaged")
    done = zenexp_for(launcher)(
        "-m",
        f"hydra/launcher={launcher}",
        "model=net",
        "dataset=cifar10,fake",
        "trainer.epochs=1",
        "trainer.max_steps_per_epoch=3",
        "tracker.mode=disabled",
    )
    assert done.returncode == 1
    assert "1 of 2 jobs finished (1 failed)" in done.stdout
    sweep = sweep_dir_of(in_tmp_path)
    assert f"finish the sweep with: zenexp resume {sweep.relative_to(in_tmp_path)}" in done.stderr
    failed = json.loads((sweep / "0" / "status.json").read_text())
    assert failed["status"] == "failed"
    assert failed["error"].startswith("dataset=cifar10: data/cifar-10-batches-py/data_batch_3 is not")
    assert "job 0 failed: dataset=cifar10:" in (sweep / "0" / "zenexp.log").read_text()
    assert read_run(sweep / "1").status == "finished"

    write_cifar10(in_tmp_path / "fixed")
    (in_tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3").write_bytes(
        (in_tmp_path / "fixed" / "cifar-10-batches-py" / "data_batch_3").read_bytes()
    )
    done = zenexp_for(launcher)("resume", str(sweep))
    assert done.returncode == 0, done.stderr
    assert "2 of 2 jobs finished" in done.stdout
    assert (sweep / ".attempts" / "0-1" / "status.json").is_file()  # the failed attempt, kept


def test_a_killed_optuna_search_is_resumed_and_counts_its_trials(in_tmp_path: Path) -> None:
    search = [
        "hydra/sweeper=lr_model_search",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        *SLOW,
    ]
    sweep = kill_driver_when(search, "1/checkpoints/last.pt")
    assert (sweep / "optuna.db").is_file()
    finished_before = hashes(sweep / "0")

    done = in_process("resume", str(sweep))
    assert done.returncode == 0, done.stderr
    assert hashes(sweep / "0") == finished_before
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]
    assert all(read_run(sweep / job).status in ("finished", "pruned") for job in ("1", "2", "3"))
    assert json.loads((sweep / "1" / "run.json").read_text())["resumed"]  # the killed trial, continued
    study = optuna.load_study(study_name="zenexp", storage=f"sqlite:///{sweep / 'optuna.db'}")
    for trial in study.trials:  # each told how its job ended, the killed one too; every epoch reported once
        run = read_run(sweep / str(trial.number))
        assert trial.state.name.lower() == {"finished": "complete", "pruned": "pruned"}[run.status]
        assert trial.value == run.metrics["val_accuracy"] or run.status == "pruned"
        assert sorted(trial.intermediate_values) == list(range(1, int(run.metrics["epochs"]) + 1))
    results = (sweep / "optimization_results.yaml").read_text()
    assert f"best_value: {study.best_value}" in results
    assert "\x1b[" not in done.stdout + done.stderr  # no colour codes off a terminal
    assert "alembic" not in done.stdout + done.stderr

    again = in_process("resume", str(sweep))
    assert again.returncode == 0 and "4 of 4 trials run, 0 to go" in again.stdout + again.stderr


def test_a_search_resumed_reruns_a_trial_killed_before_its_checkpoint_and_draws_no_trial_again(
    in_tmp_path: Path,
) -> None:
    search = [
        "hydra/sweeper=lr_model_search",
        "hydra.sweeper.n_trials=4",
        "hydra/sweeper/sampler=random",
        *SLOW,
    ]
    sweep = kill_driver_when(search, "1/run.json")
    assert not (sweep / "1" / "checkpoints" / "last.pt").exists()
    killed = (
        optuna.load_study(study_name="zenexp", storage=f"sqlite:///{sweep / 'optuna.db'}").trials[1].params
    )

    done = in_process("resume", str(sweep))
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="zenexp", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4  # nothing failed
    assert study.trials[1].params == killed  # the same trial, from the start
    assert (sweep / ".attempts" / "1-1" / "run.json").is_file()  # its first attempt, kept
    # The sampler's seed moved on: the trials drawn after the resume are not those drawn before it.
    assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == 4


def damaged_cifar10(root: Path) -> Callable[[], None]:
    """CIFAR-10 files in `root` with a damaged batch, so that every job on them fails; and what repairs it."""
    write_cifar10(root)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    good = batch.read_bytes()
    batch.write_bytes(b"damaged")

    def repair() -> None:
        batch.write_bytes(good)

    return repair


def test_a_search_resumed_replaces_its_failed_trials(in_tmp_path: Path) -> None:
    repair = damaged_cifar10(in_tmp_path / "data")
    search = [
        "-m",
        "hydra/sweeper=lr_model_search",
        "hydra.sweeper.n_trials=2",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.max_failure_rate=1",
        "hydra.sweep.dir=failing",
        "dataset=cifar10",
        "model=net",
        *QUICK_SEARCH,
    ]
    done = in_process(*search)
    assert done.returncode == 1 and "finish the sweep with: zenexp resume failing" in done.stderr
    assert "0 of 2 jobs finished (2 failed)" in done.stdout

    repair()
    done = in_process("resume", "failing")
    assert done.returncode == 0, done.stderr
    assert "0 of 2 trials run, 2 to go" in done.stdout + done.stderr
    assert "2 of 2 jobs finished" in done.stdout
    study = optuna.load_study(study_name="zenexp", storage="sqlite:///failing/optuna.db")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert sorted(p.name for p in Path("failing", ".attempts").iterdir()) == ["0-1", "1-1"]  # kept

    # Another search into its directory is not merged into its study.
    other = in_process(*[o for o in search if not o.startswith("model=")], "model=small")
    assert other.returncode == 1
    assert "this search's study searches optim.lr with dataset=cifar10 model=net" in other.stderr


def test_a_grid_search_resumed_runs_its_failed_points_again_and_no_other(in_tmp_path: Path) -> None:
    repair = damaged_cifar10(in_tmp_path / "data")
    grid = [
        "-m",
        "hydra/sweeper=lr_model_search",
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.max_failure_rate=1",
        "hydra.sweep.dir=grid",
        "optim.lr=0.01",
        "dataset=choice(cifar10, fake)",
        *QUICK_SEARCH,
    ]
    assert in_process(*grid).returncode == 1  # the cifar10 points failed
    repair()
    assert in_process("resume", "grid").returncode == 0
    study = optuna.load_study(study_name="zenexp", storage="sqlite:///grid/optuna.db")
    finished = [t.params for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    points = [{"model": m, "dataset": d} for m in ("small", "large") for d in ("cifar10", "fake")]
    assert sorted(map(str, finished)) == sorted(map(str, points))  # each point once


def test_a_sweep_cannot_be_resumed_twice_at_once_or_with_other_jobs(in_tmp_path: Path) -> None:
    assert in_process("-m", "seed=0,1", "trainer.epochs=1", "tracker.mode=disabled").returncode == 0
    sweep = sweep_dir_of(in_tmp_path)

    with rundir.in_use(sweep, "sweep"):  # as another `zenexp resume` of it would
        done = in_process("resume", str(sweep))
    assert done.returncode == 1 and "another zenexp process is running this sweep" in done.stderr

    done = in_process("resume", str(sweep), "seed=5")
    assert done.returncode == 1 and "seed=5: a sweep's jobs keep their own settings" in done.stderr

    ledger = json.loads((sweep / "sweep.json").read_text())
    ledger["overrides"].insert(0, "hydra.job.env_set.LD_PRELOAD=/tmp/evil.so")
    (sweep / "sweep.json").write_text(json.dumps(ledger))
    done = in_process("resume", str(sweep))
    assert done.returncode == 1
    assert "refused the saved override hydra.job.env_set.LD_PRELOAD=/tmp/evil.so" in done.stderr

    ledger["overrides"].pop(0)
    ledger["jobs"][1]["config_hash"] = "0" * 16  # as if the code had changed since
    (sweep / "sweep.json").write_text(json.dumps(ledger))
    done = in_process("resume", str(sweep))
    assert done.returncode == 1 and "the config of job 1 differs from when the sweep started" in done.stderr


def test_a_sweeps_console_has_a_line_per_job_start_and_end_and_its_logs_the_rest(in_tmp_path: Path) -> None:
    done = cli("-m", "seed=1,2", "trainer.epochs=2", "trainer.max_steps_per_epoch=3", "tracker.project=p")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for job in (0, 1):
        assert sum(f"#{job} : " in line for line in lines) == 1
        assert sum(f"job {job} finished: val_accuracy" in line for line in lines) == 1
    assert not any("swanlab" in line or "epoch 1/2" in line for line in lines)
    assert "\x1b[" not in done.stdout + done.stderr
    sweep = sweep_dir_of(in_tmp_path)
    log = (sweep / "0" / "zenexp.log").read_text()
    assert "epoch 1/2: train loss" in log and "swanlab: Tracking run with swanlab version" in log
    assert SwanLabRun(sweep / "0").start.name == "seed=1,trainer.epochs=2,trainer.max_steps_per_epoch=3"


def test_help_into_a_closed_pipe_ends_quietly(in_tmp_path: Path) -> None:
    # `true` has gone before zenexp writes: the case of `zenexp --help | head` with a longer text.
    done = subprocess.run(
        f"'{sys.executable}' -m zenexp --help | true", shell=True, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stderr == ""


TINY = ["trainer.epochs=1", "trainer.max_steps_per_epoch=3", "tracker.mode=disabled"]


def test_a_shared_sweep_directory_cannot_redirect_a_resume(in_tmp_path: Path) -> None:
    assert in_process("-m", "seed=0,1", *TINY).returncode == 0
    sweep = sweep_dir_of(in_tmp_path)
    (sweep / "1" / "status.json").unlink()  # as if killed: resume would take job 1 up again
    assert in_process("-m", "seed=5", *TINY, "hydra.sweep.dir=victim").returncode == 0

    (sweep / "1").rename(in_tmp_path / "moved")
    (sweep / "1").symlink_to(in_tmp_path / "victim" / "0")  # a link to another run
    done = in_process("resume", str(sweep))
    assert done.returncode == 1 and "a link, or not in" in done.stdout + done.stderr
    (sweep / "1").unlink()

    shutil.copytree(in_tmp_path / "victim" / "0", sweep / "1")  # another run's folder put in its place
    done = in_process("resume", str(sweep))
    assert done.returncode == 1 and "holds a run of other overrides" in done.stdout + done.stderr
    shutil.rmtree(sweep / "1")

    (in_tmp_path / "moved").rename(sweep / "1")
    (sweep / "1" / ".lock").unlink()
    os.mkfifo(sweep / "1" / ".lock")  # would hold an open() forever
    done = in_process("resume", str(sweep))
    assert done.returncode == 1 and "not a lock file" in done.stdout + done.stderr


def test_job_folders_named_otherwise_and_any_job_logging_resume_too(in_tmp_path: Path) -> None:
    args = ["seed=0,1", *TINY, "hydra.sweep.subdir=j${hydra.job.num}", "hydra/job_logging=stdout"]
    assert in_process("-m", *args).returncode == 0
    sweep = sweep_dir_of(in_tmp_path)
    assert (sweep / "j1" / "summary.json").is_file()
    (sweep / "j1" / "status.json").unlink()
    done = in_process("resume", str(sweep))
    assert done.returncode == 0, done.stderr
    assert "2 of 2 jobs finished" in done.stdout


def test_an_early_stopped_job_killed_before_its_status_is_finished_by_resume(in_tmp_path: Path) -> None:
    stops = [
        "scheduler=step",
        "scheduler.step_size=1",
        "scheduler.gamma=1e-12",
        "trainer.early_stop_patience=1",
    ]
    assert (
        in_process("-m", "seed=0,1", "trainer.epochs=4", "trainer.max_steps_per_epoch=30", *stops).returncode
        == 0
    )
    sweep = sweep_dir_of(in_tmp_path)
    assert json.loads((sweep / "1" / "status.json").read_text())["stopped_early"] is True
    (sweep / "1" / "status.json").unlink()
    done = in_process("resume", str(sweep))
    assert done.returncode == 0, done.stderr
    assert json.loads((sweep / "1" / "status.json").read_text())["stopped_early"] is True
