"""A `submitit_slurm` sweep on a real single-node Slurm cluster (scripts/slurm-cluster), crash included."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend

from tests.configs.test_user_scripts import SCRIPT, TINY
from tests.conftest import QUICK
from tests.sweep.test_resumable_sweeps import SLOW
from zenexp.run.provenance import read_run_file
from zenexp.sweep.records import read_run, run_dirs

# One cluster per machine (a named network namespace, munged's socket): every test on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

CLUSTER = Path(__file__).resolve().parent.parent.parent / "scripts" / "slurm-cluster"

CRASHERS = '''
import os
import signal

from hydra_zen import hydrated_dataclass, store
from torch import nn

from zenexp.configs import IMAGE_SHAPE, NUM_CLASSES


def hard_crash(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Dies the way a segfault or the OOM killer ends a job: no exception, no clean-up."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


@hydrated_dataclass(hard_crash, hydra_convert="all")
class HardCrashConf:
    image_shape: tuple[int, int, int] = IMAGE_SHAPE
    num_classes: int = NUM_CLASSES


store(HardCrashConf(), group="model", name="hard_crash")
'''


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The command prefix that runs a command inside the cluster; skips, saying why, if it cannot start."""
    env = {**os.environ, "ZENEXP_SLURM_DIR": str(tmp_path_factory.mktemp("slurm-state"))}
    started = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, env=env, timeout=300)
    if started.returncode != 0:
        pytest.skip(f"no Slurm cluster: {(started.stderr or started.stdout).strip().splitlines()[-1]}")
    try:
        yield ["env", f"ZENEXP_SLURM_DIR={env['ZENEXP_SLURM_DIR']}", str(CLUSTER), "run"]
    finally:
        subprocess.run([str(CLUSTER), "stop"], capture_output=True, env=env, timeout=120)


def sweep(slurm: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    # A job that submitit waited on forever would end this with a TimeoutExpired failure.
    command = [
        *slurm,
        sys.executable,
        "run.py",
        "-m",
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.cpus_per_task=1",
    ]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def test_a_sweep_runs_as_slurm_jobs_and_a_hard_crash_is_reported(slurm: list[str], in_tmp_path: Path) -> None:
    (in_tmp_path / "crashers.py").write_text(CRASHERS)
    (in_tmp_path / "run.py").write_text(
        "import crashers  # noqa: F401\nfrom zenexp.cli import main\n\nmain()\n"
    )

    done = sweep(slurm, "optim.lr=0.01,0.1", *QUICK)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 jobs finished" in done.stdout
    accounted = subprocess.run(
        [*slurm, "sacct", "-X", "-n", "-o", "State"], capture_output=True, text=True, timeout=60
    )
    states = accounted.stdout.split()  # they really ran as Slurm jobs (the last may still be finishing)
    assert len(states) == 2 and set(states) <= {"COMPLETED", "COMPLETING", "RUNNING"}

    done = sweep(slurm, "model=small,hard_crash", *QUICK)
    assert done.returncode == 1
    assert (
        "the launcher failed: " in done.stdout
        and "has not produced any output (state: FAILED)" in done.stdout
    )
    assert "1 of 2 jobs finished" in done.stdout
    latest = max((in_tmp_path / "multirun").glob("*/*"))  # the second sweep's directory
    small, crashed = (read_run(job) for job in run_dirs([latest]))
    assert small.status == "finished" and "test_accuracy" in small.metrics
    assert crashed.status == "did not finish" and crashed.overrides[0] == "model=hard_crash"


def test_a_preempted_job_is_requeued_and_resumes_to_the_uninterrupted_result(
    slurm: list[str], in_tmp_path: Path
) -> None:
    (in_tmp_path / "run.py").write_text("from zenexp.cli import main\n\nmain()\n")
    args = ["seed=0", *SLOW, "trainer.epochs=40"]  # a few seconds: Slurm's signal arrives in the middle
    driver = subprocess.Popen(
        [
            *slurm,
            sys.executable,
            "run.py",
            "-m",
            "hydra/launcher=slurm",
            "hydra.launcher.cpus_per_task=1",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not list(in_tmp_path.glob("multirun/*/*/0/checkpoints/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    queued = subprocess.run([*slurm, "squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=60)
    (job_id,) = queued.stdout.split()
    # What Slurm sends before a time limit (submitit asks for --signal=USR2@90) or a preemption.
    subprocess.run([*slurm, "scancel", "--signal=USR2", job_id], check=True, timeout=60)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr
    assert "1 of 1 jobs finished" in stdout

    (job,) = run_dirs(list(in_tmp_path.glob("multirun/*/*")))
    assert "aborted by SIGUSR2" in (job / "zenexp.log").read_text()
    assert len(read_run_file(job)["resumed"]) == 1  # requeued, and continued from its checkpoint
    assert read_run(job).status == "finished"
    plain = subprocess.run(
        [sys.executable, "-m", "zenexp", *args, "hydra.run.dir=uninterrupted"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert plain.returncode == 0, plain.stderr
    assert (job / "summary.json").read_text() == (in_tmp_path / "uninterrupted" / "summary.json").read_text()


def test_a_two_device_job_runs_as_two_slurm_tasks_with_the_numbers_of_a_local_run(
    slurm: list[str], in_tmp_path: Path
) -> None:
    (in_tmp_path / "run.py").write_text("from zenexp.cli import main\n\nmain()\n")
    done = subprocess.run(
        [*slurm, sys.executable, "run.py", "-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1"]
        + ["trainer.devices=2", *QUICK],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "1 of 1 jobs finished" in done.stdout
    (sweep_dir,) = in_tmp_path.glob("multirun/*/*")
    (submission,) = sweep_dir.glob(".submitit/*/*_submission.sh")
    assert "#SBATCH --ntasks-per-node=2" in submission.read_text()  # Slurm placed the ranks: two tasks
    assert len(list(submission.parent.glob("*_[01]_result.pkl"))) == 2
    (job,) = run_dirs([sweep_dir])
    assert "2 ranks (gloo)" in (job / "zenexp.log").read_text()
    assert read_run(job).status == "finished"

    local = subprocess.run(
        [sys.executable, "-m", "zenexp", "trainer.devices=2", *QUICK],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert local.returncode == 0, local.stderr
    (local_run,) = in_tmp_path.glob("outputs/*/*")
    assert (job / "summary.json").read_text() == (local_run / "summary.json").read_text()


def test_a_scripts_own_model_data_and_preset_run_as_slurm_jobs(slurm: list[str], in_tmp_path: Path) -> None:
    (in_tmp_path / "myexp.py").write_text(SCRIPT)  # its targets are __main__.Wide, __main__.noise
    done = subprocess.run(
        [*slurm, sys.executable, "myexp.py", "-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1"]
        + ["experiment=script_preset", "model.width=8,16", *TINY],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0 and "2 of 2 jobs finished" in done.stdout, done.stdout + done.stderr


def test_a_search_on_slurm_keeps_its_study_in_the_journal_file_its_jobs_report_to(
    slurm: list[str], in_tmp_path: Path
) -> None:
    (in_tmp_path / "run.py").write_text("from zenexp.cli import main\n\nmain()\n")
    done = sweep(
        slurm,
        "hydra/sweeper=lr_model_search",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "hydra.sweep.dir=search",
        *QUICK,
        "trainer.epochs=2",
    )
    assert done.returncode == 0, done.stderr
    assert not (in_tmp_path / "search" / "optuna.db").exists()
    storage = optuna.storages.JournalStorage(
        JournalFileBackend(str(in_tmp_path / "search" / "optuna.journal"))
    )
    study = optuna.load_study(study_name="zenexp", storage=storage)
    assert len(study.trials) == 3
    for trial in study.trials:  # told by the driver, each epoch reported by the Slurm job itself
        assert trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        assert sorted(trial.intermediate_values)[0] == 1
