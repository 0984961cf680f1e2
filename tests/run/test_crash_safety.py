"""Runs survive kills and signals, resume exactly, and never lose records to a failing tracker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from hydra_zen import launch

import zenexp
from tests.conftest import (
    QUICK,
    SwanLabRun,
    cli,
    hashes,
    in_process,
    read_metrics,
    run,
    run_dirs,
    swanlab_folders,
    work_in,
)
from zenexp.parallel.machine import TORCH_DEFAULT_THREADS
from zenexp.run.provenance import read_run_file

# About 630 steps of the large model on digits: long enough to be stopped in the middle. The scheduler all but
# stops learning after epoch 1, so epoch 2 does not improve the validation accuracy and the run stops early:
# a resume has to restore the scheduler, the early-stopping count, the clipped optimizer and the augmentation's
# random draws exactly.
LONG = [
    "model=large",
    "augment=flip_crop",
    "augment.transforms.0.padding=1",
    "trainer.epochs=4",
    "scheduler=step",
    "scheduler.step_size=1",
    "scheduler.gamma=1e-12",
    "trainer.early_stop_patience=1",
    "trainer.grad_clip_norm=1.0",
    "trainer.checkpoint_every_n_steps=25",
    "trainer.log_every_n_steps=10",
]


# Read per batch by a DataLoader's workers, which get a signal sent to the process group too (Ctrl-C in a
# terminal, Slurm's SIGTERM): the run still stops where it means to, and resumes exactly.
PER_BATCH = ("dataset.in_memory=false", "trainer.loader_workers=2")


def start_and_stop(run_dir: Path, signum: int, *overrides: str) -> tuple[int, str]:
    """Start a long run in `run_dir`, send `signum` to its process group once it has written a mid-epoch
    checkpoint, and return its exit status and what it wrote on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "zenexp", *LONG, *overrides, f"hydra.run.dir={run_dir}"],
        stdout=subprocess.DEVNULL,  # the job's log is in run_dir
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    checkpoint = run_dir / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be stopped"
    os.killpg(process.pid, signum)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.fixture(scope="session")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """The metrics and records of the LONG run, never stopped: trained once per worker."""
    with pytest.MonkeyPatch.context() as patch:
        work_in(tmp_path_factory.mktemp("uninterrupted"), patch)
        result = run(*LONG, "tracker.mode=disabled")
    return result.metrics, read_metrics(result.output_dir)


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_result(
    in_tmp_path: Path, uninterrupted: tuple[dict[str, float], list[dict[str, float]]]
) -> None:
    """Killed while reading its batches with a DataLoader's workers, resumed there: the result of the
    uninterrupted run, which held its images in memory."""
    run_dir = in_tmp_path / "killed"
    status, _ = start_and_stop(run_dir, signal.SIGKILL, *PER_BATCH)
    assert status == -signal.SIGKILL
    assert not (run_dir / "summary.json").exists()
    stopped_at = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["position"]
    assert stopped_at["epoch"] == 1 and 0 < stopped_at["step_in_epoch"]  # in the middle of the first epoch

    with open(run_dir / "metrics.jsonl", "a") as metrics_file:  # as if killed in the middle of a line
        metrics_file.write('{"step": 9999, "train/lo')

    done = in_process("resume", str(run_dir))
    assert done.returncode == 0, done.stderr

    metrics, records = uninterrupted
    assert json.loads((run_dir / "summary.json").read_text()) == {**metrics, "stopped_early": True}
    assert json.loads((run_dir / "status.json").read_text())["stopped_early"] is True
    log = (run_dir / "zenexp.log").read_text()
    assert "stopping early after epoch 2" in log and "read per batch by 2 loader workers" in log
    assert read_metrics(run_dir) == records  # kept, not duplicated, and the rest written again
    assert [r["train/lr"] for r in records if "train/lr" in r] == pytest.approx([0.001, 1e-15])
    # SwanLab buffers its records: a SIGKILL can leave the first part's record log empty. The second part
    # carries the same experiment name, a "resumed" tag, and the first part's id.
    first_folder, _ = swanlab_folders(run_dir)
    second = SwanLabRun(run_dir, 1)
    assert stopped_at["tracker_run_id"] and first_folder.name.endswith(stopped_at["tracker_run_id"])
    assert second.start.name == stopped_at["experiment_name"] and "resumed" in list(second.start.tags)
    assert stopped_at["tracker_run_id"] in second.start.description
    assert min(step for step, _ in second.scalars["train/loss"]) > stopped_at["step"]
    assert read_run_file(run_dir)["resumed"][0]["at_step"] == stopped_at["step"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_aborts_the_swanlab_run(
    signum: int, in_tmp_path: Path, uninterrupted: tuple[dict[str, float], list[dict[str, float]]]
) -> None:
    run_dir = in_tmp_path / "stopped"
    status, stderr = start_and_stop(run_dir, signum, *PER_BATCH)
    assert status == 128 + signum
    assert f"Continue with: zenexp resume {run_dir}" in stderr
    assert "Traceback" not in stderr
    assert SwanLabRun(run_dir).finish.state == 3  # RUN_STATE_ABORTED
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
    name = signal.Signals(signum).name
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "aborted" and status["signal"] == name
    assert f"aborted by {name} in epoch 1" in (run_dir / "zenexp.log").read_text()
    assert "aborted" in in_process("compare", str(run_dir)).stdout.splitlines()[1].split()

    done = in_process("resume", str(run_dir))
    assert done.returncode == 0, done.stderr
    metrics, _ = uninterrupted
    assert json.loads((run_dir / "summary.json").read_text()) == {**metrics, "stopped_early": True}


@pytest.mark.slow
def test_resume_with_a_changed_learning_rate_is_refused_with_the_diff(in_tmp_path: Path) -> None:
    first = run("trainer.epochs=1", "trainer.max_steps_per_epoch=5")
    saved = (first.output_dir / ".hydra" / "overrides.yaml").read_text()

    done = cli("resume", str(first.output_dir), "optim.lr=0.1")
    assert done.returncode == 1
    assert "optim.lr: 0.001 -> 0.1" in done.stderr and "Traceback" not in done.stderr
    assert (first.output_dir / ".hydra" / "overrides.yaml").read_text() == saved  # nothing touched

    done = in_process("resume", str(first.output_dir), "trainer.epochs=2")  # more epochs are fine
    assert done.returncode == 0, done.stderr
    assert [r["epoch"] for r in read_metrics(first.output_dir) if "epoch" in r] == [1, 2]

    done = in_process("rerun", str(first.output_dir))  # the extended run, repeated in one go
    assert done.returncode == 0, done.stderr
    assert "same metrics as" in done.stdout


def test_a_refused_resume_from_python_leaves_the_run_as_it_was(in_tmp_path: Path) -> None:
    first = run("trainer.epochs=1", "trainer.max_steps_per_epoch=5")
    before = hashes(first.output_dir)
    with pytest.raises(zenexp.UserError, match="optim.lr: 0.001 -> 0.1"):
        run(
            "trainer.epochs=1",
            "trainer.max_steps_per_epoch=5",
            "optim.lr=0.1",
            f"resume='{first.output_dir}'",
        )
    assert hashes(first.output_dir) == before  # byte for byte, its log included


@pytest.mark.slow
def test_a_new_run_cannot_resume_what_has_no_checkpoint(in_tmp_path: Path) -> None:
    done = in_process("resume", str(in_tmp_path / "nowhere"))
    assert done.returncode == 1 and "not a zenexp run directory" in done.stderr


@pytest.mark.slow
def test_rerun_reproduces_a_finished_run_exactly(in_tmp_path: Path) -> None:
    first = run("model=large", "trainer.epochs=2", "seed=7")
    done = cli("rerun", str(first.output_dir))
    assert done.returncode == 0, done.stderr
    assert f"same metrics as {first.output_dir}" in done.stdout
    second = [d for d in run_dirs(in_tmp_path / "outputs") if d != first.output_dir]
    assert len(second) == 1
    assert json.loads((second[0] / "summary.json").read_text()) == {**first.metrics, "stopped_early": False}


def test_the_run_directory_records_versions_overrides_and_commit(in_tmp_path: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], check=True)
    (in_tmp_path / "notes.txt").write_text("my project\n")
    subprocess.run(["git", "add", "notes.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()

    result = run("optim.lr=0.01", "trainer.epochs=1")
    info = read_run_file(result.output_dir)
    assert info["overrides"] == ["optim.lr=0.01", "trainer.epochs=1"]
    assert info["versions"]["torch"] == version("torch")
    assert info["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["git"]["commit"] == head
    assert info["threads"] == 1  # auto, under the tests' OMP_NUM_THREADS=1
    checkpoint = torch.load(result.output_dir / "checkpoints" / "best.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "position", "rng"} <= checkpoint.keys()
    assert checkpoint["position"]["best_val_accuracy"] == result.metrics["val_accuracy"]


@pytest.mark.slow
def test_rerun_and_resume_use_the_thread_count_the_run_recorded(in_tmp_path: Path) -> None:
    first = cli(
        "trainer.num_threads=0",
        "trainer.epochs=1",
        "trainer.max_steps_per_epoch=40",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert first.returncode == 0, first.stderr
    (run_dir,) = run_dirs(in_tmp_path / "outputs")
    assert read_run_file(run_dir)["threads"] == 1

    done = in_process("rerun", str(run_dir))  # trainer.num_threads=0 here would be every core
    assert done.returncode == 0 and "same metrics as" in done.stdout, done.stdout + done.stderr
    rerun_dir = next(d for d in run_dirs(in_tmp_path / "outputs") if d != run_dir)
    assert read_run_file(rerun_dir)["threads"] == 1
    assert read_run_file(rerun_dir)["overrides"][-1] == "trainer.num_threads=1"
    assert "trainer.num_threads=0" not in read_run_file(rerun_dir)["overrides"]

    done = in_process("resume", str(run_dir), "trainer.epochs=2")
    assert done.returncode == 0, done.stderr
    assert "on cpu, torch threads 1" in (run_dir / "zenexp.log").read_text().split("resuming")[1]
    done = in_process("resume", str(run_dir), "trainer.epochs=3", "trainer.num_threads=2")
    assert done.returncode == 1 and "trainer.num_threads: 1 -> 2" in done.stderr


@pytest.mark.slow
def test_cloud_without_a_key_records_offline(in_tmp_path: Path) -> None:
    done = in_process("tracker.mode=cloud", "trainer.epochs=1")
    assert done.returncode == 0, done.stderr
    assert "no API key in SWANLAB_API_KEY; recording offline instead" in done.stdout + done.stderr
    (run_dir,) = run_dirs(in_tmp_path / "outputs")
    assert SwanLabRun(run_dir).finish.state == 1


@pytest.mark.slow
def test_cloud_with_an_unreachable_server_records_offline(in_tmp_path: Path) -> None:
    env = {"SWANLAB_API_KEY": "not-a-real-key", "SWANLAB_API_HOST": "http://127.0.0.1:9"}
    done = in_process("tracker.mode=cloud", "trainer.epochs=1", env=env)
    assert done.returncode == 0, done.stderr
    assert "cannot reach 127.0.0.1:9" in done.stdout + done.stderr
    (run_dir,) = run_dirs(in_tmp_path / "outputs")
    assert SwanLabRun(run_dir).finish.state == 1
    offline = json.loads((run_dir / "summary.json").read_text())
    assert offline == {**run("trainer.epochs=1", "tracker.mode=disabled").metrics, "stopped_early": False}


def test_an_error_inside_swanlab_does_not_stop_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import swanlab

    real_log = swanlab.log
    calls: list[int] = []

    def failing_log(data: dict[str, float], step: int | None = None) -> None:
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("disk full")
        real_log(data, step=step)

    with monkeypatch.context() as patch:  # undone after this run only (the test's other settings stay)
        patch.setattr(swanlab, "log", failing_log)
        result = run("trainer.epochs=2")
    reference = run("trainer.epochs=2", "tracker.mode=disabled")
    assert result.metrics == reference.metrics
    assert read_metrics(result.output_dir) == read_metrics(reference.output_dir)
    assert len(calls) == 4  # SwanLab was left alone after its error


def sweep_in_this_process(seeds: int) -> list[Path]:
    jobs = launch(
        zenexp.MainConfig,
        zenexp.task,
        overrides=[
            f"seed=range({seeds})",
            "dataset=fake",
            "dataset.train_size=8",
            "dataset.val_size=4",
            "dataset.test_size=4",
            "trainer.epochs=1",
            "trainer.batch_size=8",
        ],
        multirun=True,
        version_base="1.3",
    )
    (batch,) = jobs
    return [job.return_value.output_dir for job in batch]


def held_by_this_process() -> tuple[int, int, int]:
    """Threads, open files, and inotify instances (the kernel allows 128 per user by default)."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return threading.active_count(), len(links), links.count("anon_inode:inotify")


@pytest.mark.slow
def test_jobs_in_one_process_leave_nothing_behind_so_any_number_can_run(in_tmp_path: Path) -> None:
    # SwanLab once left a file-watcher thread and an inotify instance behind per run: job 129 of a sweep in one
    # process failed at the kernel's limit. What the first jobs set up once is kept; no job may add to it.
    sweep_in_this_process(2)
    after_two = held_by_this_process()
    dirs = sweep_in_this_process(12)
    assert len(set(dirs)) == 12
    assert SwanLabRun(dirs[-1]).finish.state == 1
    assert held_by_this_process() == after_two


def test_each_job_in_a_process_gets_its_own_thread_count(in_tmp_path: Path) -> None:
    before = torch.get_num_threads()
    one = run(
        "trainer.num_threads=1", "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "tracker.mode=disabled"
    )
    every = run(
        "trainer.num_threads=0", "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "tracker.mode=disabled"
    )
    assert read_run_file(one.output_dir)["threads"] == 1
    assert read_run_file(every.output_dir)["threads"] == TORCH_DEFAULT_THREADS  # not the job before's 1
    assert torch.get_num_threads() == before  # given back to the caller's process


@pytest.mark.slow
def test_resume_says_what_it_does_and_keeps_one_value_per_override(in_tmp_path: Path) -> None:
    run_dir = run(*QUICK, "trainer.epochs=2").output_dir
    kept = {name: text for name, text in hashes(run_dir).items() if name != "zenexp.log"}

    done = in_process("resume", str(run_dir))  # finished: nothing to do, nothing written, no new SwanLab run
    assert done.returncode == 0, done.stderr
    assert f"nothing to do: {run_dir} has trained its 2 epochs" in done.stdout
    assert {name: text for name, text in hashes(run_dir).items() if name != "zenexp.log"} == kept

    done = in_process("resume", str(run_dir), "trainer.epochs=1")
    assert done.returncode == 1
    assert (
        "trainer.epochs=1, but the run has trained 2 epochs already; give trainer.epochs=2 or more"
        in done.stderr
    )

    for epochs in (3, 4):
        assert in_process("resume", str(run_dir), f"trainer.epochs={epochs}").returncode == 0
    latest = read_run_file(run_dir)["resumed"][-1]["overrides"]
    assert [o for o in latest if o.startswith("trainer.epochs")] == ["trainer.epochs=4"]  # not piled up
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 4
    compared = in_process("compare", str(run_dir)).stdout
    assert "trainer.epochs=4" in compared  # the run is what its resume made it
