"""Defaults that fit the machine: torch's thread count for `trainer.num_threads=auto`, and the ranks that fit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import QUICK, in_process, run
from zenexp.configs.schema import compose_config
from zenexp.parallel import machine
from zenexp.parallel.machine import TORCH_DEFAULT_THREADS, choose_threads
from zenexp.run.provenance import read_run_file
from zenexp.run.resume import rerun_overrides


def test_auto_takes_this_job_s_share_of_the_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(machine, "cores", lambda: 16)
    monkeypatch.setattr(machine, "idle_cores", lambda: 15.6)
    assert choose_threads("auto", 1).count == 16  # a run alone: every core
    assert choose_threads("auto", 4).count == 4  # four ranks on this node
    with machine.sharing(3):  # a sweep's launcher runs three jobs at once
        assert choose_threads("auto", 1).count == 5
        assert choose_threads("auto", 2).count == 2
    monkeypatch.setattr(machine, "idle_cores", lambda: 2.4)  # other processes keep the rest busy
    assert choose_threads("auto", 1) == machine.Threads(2, "auto: 16 cores / (1 job x 1 rank), 2.4 idle")
    monkeypatch.setattr(machine, "idle_cores", lambda: 0.0)
    assert choose_threads("auto", 1).count == 1

    assert choose_threads(3, 8).count == 3  # a count is that count
    assert choose_threads(0, 1).count == TORCH_DEFAULT_THREADS
    assert choose_threads("auto", 1, recorded=7).count == 7  # a resumed run keeps its own
    monkeypatch.setattr(machine, "idle_cores", lambda: 15.6)
    monkeypatch.setenv("OMP_NUM_THREADS", "6")  # the usual cap, as torchrun sets it
    assert choose_threads("auto", 1).count == 6
    assert choose_threads("auto", 4).count == 4  # a cap, not more than the ranks' share
    with machine.sharing(2):  # in joblib's workers, joblib's own cores / n_jobs: zenexp's share instead
        assert choose_threads("auto", 1).count == 8
    for not_a_count in ("-2", "0", "²", "1025"):  # not taken
        monkeypatch.setenv("OMP_NUM_THREADS", not_a_count)
        assert choose_threads("auto", 1).count == 16


def test_cores_are_physical_ones_within_the_affinity_and_the_container_s_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files: dict[str, str] = {}
    monkeypatch.setattr(machine, "_read", lambda path: files.get(path.name, ""))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert machine.cores() == 4  # nothing to read: each CPU a core
    files["thread_siblings_list"] = "0-1"  # every CPU a hyperthread of one core
    assert machine.cores() == 1
    del files["thread_siblings_list"]
    files["cpu.max"] = "250000 100000"  # docker run --cpus 2.5
    assert machine.cores() == 2
    files["cpu.max"] = "max 100000"
    assert machine.cores() == 4


def test_idle_cores_sees_a_core_another_process_keeps_busy() -> None:
    (cpu, *_) = sorted(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    own = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(spinner.pid, {cpu})
        os.sched_setaffinity(0, {cpu})  # this thread watches that core alone
        time.sleep(0.2)  # the spinner has started
        assert machine.idle_cores() < 0.5
    finally:
        os.sched_setaffinity(0, own)
        spinner.kill()
        spinner.wait()


def test_a_run_records_the_count_auto_chose_and_a_rerun_takes_it(
    in_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS")
    result = run(*QUICK, "tracker.mode=disabled")
    threads = read_run_file(result.output_dir)["threads"]
    assert 1 <= threads <= machine.cores()
    log = (result.output_dir / "zenexp.log").read_text()
    assert f"torch threads {threads} (auto: {machine.cores()} cores / (1 job x 1 rank)" in log
    assert rerun_overrides(result.output_dir)[-1] == f"trainer.num_threads={threads}"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ["trainer.devices=64", "trainer.batch_size=64"],
            f"trainer.devices=64: 64 CPU processes on {machine.cores()} cores; at most "
            f"trainer.devices={machine.cores()} fits",
        ),
        (  # two jobs at once, each on as many ranks as there are cores
            ["-m", "hydra/launcher=joblib", "seed=0,1", f"trainer.devices={machine.cores()}"],
            f"trainer.devices={machine.cores()}: {2 * machine.cores()} CPU processes (2 jobs at once x "
            f"{machine.cores()} ranks) on {machine.cores()} cores",
        ),
    ],
)
def test_ranks_beyond_the_cores_are_refused_before_any_process_starts(args: list[str], problem: str) -> None:
    done = in_process("check", *args)
    assert done.returncode == 1
    assert problem in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["hydra/launcher=submitit_local", "hydra.sweeper.max_batch_size=1", "seed=0,1"],  # one at a time
        ["hydra/launcher=slurm", "trainer.nodes=2", "seed=0,1"],  # on the cluster's machines, not this one
    ],
)
def test_ranks_that_fit_where_the_jobs_run_are_not_refused(args: list[str]) -> None:
    done = in_process("check", "-m", f"trainer.devices={machine.cores()}", "trainer.batch_size=64", *args)
    assert done.returncode == 0, done.stderr


def test_ranks_beyond_the_memory_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "cores", lambda: 64)
    monkeypatch.setattr(machine, "available_memory", lambda: 3 * 2**30)
    done = in_process("check", "trainer.devices=8", "trainer.batch_size=64")
    assert done.returncode == 1
    assert (
        "trainer.devices=8: 8 CPU processes need about 4.8 GB, and 3.0 GB is available; at most"
        in done.stderr
    )
    assert in_process("check", "trainer.devices=4").returncode == 0


@pytest.mark.parametrize(
    ("launcher", "jobs", "at_once"),
    [
        ([], 5, 1),  # Hydra's basic launcher: one after another
        (["hydra/launcher=joblib"], 5, min(5, machine.cores())),  # n_jobs=-1: a worker per CPU
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"], 2, 2),  # no more than the sweep has
        (["hydra/launcher=submitit_local"], 5, 5),  # every job of a batch at once
        (["hydra/launcher=slurm"], 5, machine.ELSEWHERE),  # each job on machines of its own
    ],
)
def test_jobs_at_once_follow_the_launcher(launcher: list[str], jobs: int, at_once: int) -> None:
    hydra = compose_config(launcher, with_hydra=True).hydra
    assert machine.jobs_at_once(hydra.launcher, jobs) == at_once
