"""One job on several devices (`trainer.devices`): 2 gloo processes on the CPU, from the CLI, `launch()` and
sweeps; the same numbers as one device; faults that end every rank; a stop and a resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import zenexp as zenexp_api
from tests.conftest import QUICK, read_metrics, run, work_in
from zenexp.checks.points import check_point
from zenexp.cli import main
from zenexp.errors import UserError
from zenexp.parallel import distributed
from zenexp.run.provenance import read_run_file
from zenexp.sweep.records import read_run

# Two epochs of the digits at the lesson's batch of 4: 630 steps, a few seconds on 2 processes.
SETTINGS = ["trainer.epochs=2", "trainer.batch_size=4", "trainer.log_every_n_steps=5"]
# How far a 2-device loss may be from the 1-device loss of the same global batch (relative). The two
# compute the same mean gradient, but in float32 summed in another order (each rank its half, then DDP's
# average), so they differ in the last bits; SGD carries such differences forward without growing them
# much over two epochs: measured at most 2.6e-7 here (a 40x margin, for other CPUs' summation orders).
TOLERANCE = 1e-5
# A dead rank must end the job within this (measured: about 2 s).
DEAD_RANK_ENDS_JOB_S = 15


def private_tmp(folder: Path) -> dict[str, str]:
    """An environment whose temporary folder is `folder/tmp`: where the job puts its ranks' folder."""
    (folder / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(folder / "tmp")}


def zenexp(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zenexp", *args, "tracker.mode=offline"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=private_tmp(folder),
    )


def start(folder: Path, *args: str, script: str = "-m zenexp") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *script.split(), *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal gives a command
        env=private_tmp(folder),
        # Ctrl-C's default action, as a terminal's foreground command has it: a disposition the test worker
        # inherited (a shell's background job ignores SIGINT, and its children with it) is not the user's.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def left_behind(folder: Path) -> list[str]:
    """Rank processes still running, and rank folders still there, of jobs started in `folder`."""
    mine = str(folder / "tmp")
    processes = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "zenexp.parallel.spawned" in command and mine in command:
            processes.append(f"process {proc.name}: {command}")
    return processes + [str(p) for p in (folder / "tmp").glob("zenexp-ranks-*")]


def run_dir(folder: Path) -> Path:
    (found,) = folder.glob("outputs/*/*")
    return found


def rank_processes() -> dict[int, int]:
    """The ranks zenexp started that are running: pid -> parent pid."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"zenexp.parallel.spawned" in (proc / "cmdline").read_bytes():
                found[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    return found


def wait_for_training(folder: Path, driver: subprocess.Popen[str]) -> Path:
    """The run directory, once its first loss is recorded (its ranks are training)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        metrics = list(folder.glob("outputs/*/*/metrics.jsonl"))
        if metrics and metrics[0].read_text():
            return metrics[0].parent
        time.sleep(0.01)
    raise AssertionError(f"no training: {driver.communicate()}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same run on 1 and 2 devices from the CLI, and on 2 again through `launch()`."""
    made = {}
    for name in ("one", "two"):
        folder = tmp_path_factory.mktemp(name)
        done = zenexp(folder, f"trainer.devices={name == 'two' and 2 or 1}", *SETTINGS)
        assert done.returncode == 0, done.stderr
        made[name] = run_dir(folder)
    with pytest.MonkeyPatch.context() as patch:
        work_in(tmp_path_factory.mktemp("again"), patch)
        made["again"] = run("trainer.devices=2", *SETTINGS).output_dir
    return made


@pytest.mark.slow
@pytest.mark.xdist_group("two-devices")  # one worker trains `runs`, once
def test_two_devices_train_as_one_device_with_the_same_global_batch(runs: dict[str, Path]) -> None:
    one, two = read_metrics(runs["one"]), read_metrics(runs["two"])
    assert [r["step"] for r in one] == [r["step"] for r in two] and len(one) > 100
    for a, b in zip(one, two, strict=True):
        assert a.keys() == b.keys()
        for key in a.keys() - {"step", "epoch", "train/lr"}:
            assert math.isclose(a[key], b[key], rel_tol=TOLERANCE), (a, b)
    assert "2 ranks (gloo)" in (runs["two"] / "zenexp.log").read_text()
    assert "ranks" not in (runs["one"] / "zenexp.log").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("two-devices")  # one worker trains `runs`, once
def test_a_two_device_run_gives_identical_numbers_again_and_through_launch(runs: dict[str, Path]) -> None:
    assert (runs["two"] / "summary.json").read_bytes() == (runs["again"] / "summary.json").read_bytes()
    assert read_metrics(runs["two"]) == read_metrics(runs["again"])


@pytest.mark.slow
@pytest.mark.xdist_group("two-devices")  # one worker trains `runs`, once
def test_only_rank_0_records(runs: dict[str, Path]) -> None:
    (swanlab_run,) = (runs["two"] / "swanlog").glob("run-*")  # one SwanLab run, not one per rank
    assert read_run(runs["two"]).status == "finished"
    assert sorted(p.name for p in (runs["two"] / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert not left_behind(runs["two"].parent.parent.parent)  # the ranks' folder is removed


@pytest.mark.slow
# joblib runs its jobs at once: one job of two ranks fits two cores (two would be refused, test_machine.py).
@pytest.mark.parametrize(("launcher", "seeds"), [("basic", "0,1"), ("joblib", "0")])
def test_a_sweep_of_two_device_jobs_finishes_and_leaves_no_rank(
    launcher: str, seeds: str, in_tmp_path: Path
) -> None:
    done = zenexp(
        in_tmp_path, "-m", f"hydra/launcher={launcher}", f"seed={seeds}", "trainer.devices=2", *QUICK
    )
    assert done.returncode == 0, done.stderr
    jobs = len(seeds.split(","))
    assert f"{jobs} of {jobs} jobs finished" in done.stdout
    for job in in_tmp_path.glob("multirun/*/*/[01]"):
        assert "2 ranks (gloo)" in (job / "zenexp.log").read_text()
    assert not left_behind(in_tmp_path)


@pytest.mark.slow
def test_a_dead_rank_ends_the_job_in_seconds_with_one_line(in_tmp_path: Path) -> None:
    driver = start(in_tmp_path, "trainer.devices=2", "trainer.epochs=50", "tracker.mode=disabled")
    wait_for_training(in_tmp_path, driver)
    (rank_1,) = [pid for pid, parent in rank_processes().items() if parent == driver.pid]
    os.kill(rank_1, signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = driver.communicate(timeout=60)
    took = time.monotonic() - killed
    assert took < DEAD_RANK_ENDS_JOB_S
    assert driver.returncode == 1
    assert stderr.strip().splitlines()[-1] == "zenexp: error: rank 1 of 2 died (killed by SIGKILL)"
    assert not left_behind(in_tmp_path)


@pytest.mark.slow
def test_early_stopping_and_step_checkpoints_on_two_devices_decide_as_on_one(in_tmp_path: Path) -> None:
    # Every rank must take the same decisions (a kept model, a stop) from rank 0's validation, or the ranks
    # would call different collectives and hang.
    settings = ["trainer.epochs=6", "trainer.early_stop_patience=1", "trainer.checkpoint_every_n_steps=7"]
    summaries = []
    for devices in (1, 2):
        folder = in_tmp_path / str(devices)
        folder.mkdir()
        done = zenexp(
            folder, f"trainer.devices={devices}", *settings, "optim.lr=0.3", "trainer.batch_size=64"
        )
        assert done.returncode == 0, done.stderr
        summaries.append(json.loads((run_dir(folder) / "summary.json").read_text()))
    one, two = summaries
    assert two["epochs"] == one["epochs"] and two["best_epoch"] == one["best_epoch"]
    for key in one:
        assert math.isclose(one[key], two[key], rel_tol=TOLERANCE), key
    assert not left_behind(in_tmp_path)


RAISES_ON_RANK_1 = """
import torch.distributed as dist
from hydra_zen import builds, store
from torch import nn

import zenexp
from zenexp.configs import IMAGE_SHAPE, NUM_CLASSES


class RaisesOnRank1(nn.Linear):  # defined in the script: the spawned rank imports it from there
    def forward(self, x):
        if dist.get_rank() == 1:
            raise ValueError("no such thing as rank 1")
        return super().forward(x.flatten(1))


def raises(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return RaisesOnRank1(image_shape[0] * image_shape[1] * image_shape[2], num_classes)


store(builds(raises, image_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES), group="model", name="raises")
zenexp.add_to_hydra_store()

if __name__ == "__main__":
    from zenexp.cli import main

    main()
"""


@pytest.mark.slow
def test_a_rank_that_raises_ends_the_job_with_one_line_naming_it(in_tmp_path: Path) -> None:
    (in_tmp_path / "run.py").write_text(RAISES_ON_RANK_1)
    driver = start(in_tmp_path, "model=raises", "trainer.devices=2", "tracker.mode=disabled", script="run.py")
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 1
    assert stderr.strip() == "zenexp: error: rank 1 of 2 failed: ValueError: no such thing as rank 1"
    assert not left_behind(in_tmp_path)


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_every_rank_at_one_checkpoint_and_resume_continues_exactly(
    in_tmp_path: Path,
) -> None:
    # With dropout, each rank draws its own masks: a resume must restore every rank's random state.
    settings = ["trainer.devices=2", *SETTINGS, "model.dropout=0.3"]
    uninterrupted = in_tmp_path / "uninterrupted"
    uninterrupted.mkdir()
    assert zenexp(uninterrupted, *settings).returncode == 0
    driver = start(in_tmp_path, *settings, "tracker.mode=offline")
    folder = wait_for_training(in_tmp_path, driver)
    (rank_1,) = [pid for pid, parent in rank_processes().items() if parent == driver.pid]
    os.kill(rank_1, signal.SIGTERM)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 128 + signal.SIGTERM, stderr
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "aborted" and status["signal"] == "SIGTERM" and status["epoch"] in (1, 2)
    assert (folder / "zenexp.log").read_text().count("aborted by SIGTERM") == 1
    assert not left_behind(in_tmp_path)

    done = zenexp(in_tmp_path, "resume", str(folder))
    assert done.returncode == 0, done.stderr
    assert len(read_run_file(folder)["resumed"]) == 1
    reference = run_dir(uninterrupted)
    assert json.loads((folder / "summary.json").read_text()) == json.loads(
        (reference / "summary.json").read_text()
    )
    assert read_metrics(folder) == read_metrics(reference)


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_once(in_tmp_path: Path) -> None:
    driver = start(in_tmp_path, "trainer.devices=2", "trainer.epochs=50", "tracker.mode=disabled")
    folder = wait_for_training(in_tmp_path, driver)
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C sends: every process of the terminal's group
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130, stderr
    assert (folder / "zenexp.log").read_text().count("aborted by SIGINT") == 1
    assert "Traceback" not in stderr
    assert not left_behind(in_tmp_path)


@pytest.mark.slow
def test_ctrl_c_while_the_ranks_start_is_one_line_and_leaves_nothing(in_tmp_path: Path) -> None:
    driver = start(in_tmp_path, "trainer.devices=2", "tracker.mode=disabled")
    deadline = time.monotonic() + 60
    while not [pid for pid, parent in rank_processes().items() if parent == driver.pid]:
        assert time.monotonic() < deadline and driver.poll() is None, driver.communicate()
        time.sleep(0.01)
    os.killpg(driver.pid, signal.SIGINT)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130
    assert stderr.strip() == "zenexp: stopped by SIGINT; no checkpoint was saved"
    assert not left_behind(in_tmp_path)


UNGUARDED = """
import sys
from hydra_zen import launch
import zenexp

launch(zenexp.MainConfig, zenexp.task, overrides=sys.argv[1:], version_base="1.3")
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_is_refused_in_the_rank_that_imports_it(in_tmp_path: Path) -> None:
    (in_tmp_path / "unguarded.py").write_text(UNGUARDED)
    driver = start(in_tmp_path, "trainer.devices=2", *QUICK, "tracker.mode=disabled", script="unguarded.py")
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 1
    assert (
        stderr.strip()
        .splitlines()[-1]
        .endswith(
            "UserError: rank 1 of 2 failed: RefusedJob: a rank of a job on several devices imports the script "
            "that started it, and the script started a job again: put the script's launch() or main() under "
            "if __name__ == '__main__':"
        )
    )
    assert len(list(in_tmp_path.glob("outputs/*/*"))) == 1  # the job itself; the rank started none
    assert not left_behind(in_tmp_path)


# ---- checks (fast) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (["trainer.devices=0"], "trainer.devices=0"),
        (["trainer.devices=65"], "trainer.devices=65"),
        (["trainer.nodes=0"], "trainer.nodes=0"),
        (
            ["trainer.devices=2", "trainer.batch_size=1"],
            "trainer.batch_size=1: less than one image per rank (2 = trainer.devices x trainer.nodes)",
        ),
    ],
)
def test_device_counts_are_checked_before_the_run(overrides: list[str], problem: str) -> None:
    (found,) = check_point(overrides)
    assert found.startswith(problem), found


def test_more_cuda_devices_than_present_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_point(["trainer.devices=2", "trainer.device=cuda"]) == [
        "trainer.devices=2: this machine has 1 CUDA device"
    ]
    (found,) = check_point(["trainer.devices=2", "trainer.device=cuda:0"])
    assert found.startswith("trainer.devices=2 with trainer.device=cuda:0: several devices take one each")


def test_several_nodes_outside_slurm_are_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    with pytest.raises(UserError, match=r"^trainer.nodes=2: several nodes are Slurm's to give"):
        run("trainer.nodes=2", *QUICK)


def test_help_shows_the_device_counts_and_that_the_batch_is_global(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--help"])
    shown = capsys.readouterr().out
    rows = [" ".join(line.split()) for line in shown.splitlines()]  # columns as single spaces
    assert any(row.startswith("trainer.devices int >= 1 and <= 64 1 ") for row in rows)
    assert any(row.startswith("trainer.nodes int >= 1 and <= 1024 1 ") for row in rows)
    assert any(row.startswith("trainer.num_threads int >= 0 and <= 1024 or auto auto ") for row in rows)
    assert "with several devices, over all of them together" in shown


def test_a_slurm_job_whose_task_count_is_not_the_rank_count_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two tasks of one device each would train the same run twice, both recording it.
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "0")
    with pytest.raises(
        UserError, match=r"^trainer.devices=1 x trainer.nodes=1 ranks, but the Slurm job has 2 tasks"
    ):
        run(*QUICK)


def test_a_run_recorded_before_several_devices_still_resumes(in_tmp_path: Path) -> None:
    first = run(*QUICK)
    config = first.output_dir / "config.yaml"
    lines = config.read_text().splitlines()
    config.write_text(
        "".join(f"{line}\n" for line in lines if line.strip().split(":")[0] not in ("devices", "nodes"))
    )
    last = first.output_dir / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["position"]["rank_rng"]
    torch.save(state, last)
    resumed = zenexp_api.resume(first.output_dir, ["trainer.epochs=2"])
    assert resumed.metrics["epochs"] == 2


# ---- the pieces rank 0 uses to end its ranks (fast: real processes, no training) -----------------------


def spawned(folder: Path, code: str, rank: int = 1) -> distributed.Spawned:
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
    return distributed.Spawned(rank, process, folder / f"rank{rank}.error")


def test_the_first_failure_names_a_killed_rank_or_a_rank_s_own_error_before_a_lost_connection(
    in_tmp_path: Path,
) -> None:
    (in_tmp_path / "rank1.error").write_text("Traceback ...\nDistBackendError: Connection closed by peer\n")
    (in_tmp_path / "rank2.error").write_text("Traceback ...\nValueError: no such thing as rank 2\n")
    lost, own = spawned(in_tmp_path, "raise SystemExit(1)", 1), spawned(in_tmp_path, "raise SystemExit(1)", 2)
    assert (
        distributed.first_failure([lost, own], 10.0)
        == "rank 2 of 3 failed: ValueError: no such thing as rank 2"
    )

    killed = spawned(in_tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert distributed.first_failure([killed], 10.0) == "rank 1 of 2 died (killed by SIGKILL)"
    silent = spawned(in_tmp_path, "raise SystemExit(3)", 3)
    assert distributed.first_failure([silent], 10.0) == "rank 3 of 2 died (exit status 3)"


def test_ranks_still_running_are_killed_and_finished_ones_are_not_waited_for(in_tmp_path: Path) -> None:
    running, done = spawned(in_tmp_path, "import time; time.sleep(60)"), spawned(in_tmp_path, "pass", 2)
    assert distributed.first_failure([running, done], 0.0) is None
    started = time.monotonic()
    distributed.end([running, done], 0.5)
    assert time.monotonic() - started < 5
    assert running.process.returncode == -signal.SIGKILL and done.process.returncode == 0


def test_what_cannot_be_sent_to_other_ranks_is_one_line() -> None:
    with pytest.raises(
        UserError, match=r"^the model, dataset or optimizer cannot be sent to the other ranks"
    ):
        distributed.pickled(lambda: None)
    state = {"step": torch.ones(2), "groups": [(torch.zeros(1), 3)]}
    assert distributed.on_cpu(state)["groups"][0][1] == 3
    assert torch.equal(distributed.on_cpu(state)["step"], torch.ones(2))
