"""Nothing from outside runs code or damages a run: overrides, shared run directories, checkpoints, the disk.

Each test is one of the reproductions of issue 10, attacked through every door it has: the command line,
`zenexp check`, `launch()`, `zenexp.resume()` / `rerun()`, and the files of a run directory.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.errors import HydraException
from hydra_zen import launch

import zenexp
from tests.conftest import QUICK, SwanLabRun, cli, hashes, in_process, run, run_dirs, write_cifar10
from zenexp.run import rundir

# Each names code to run: os.makedirs makes the folder `pwned` in the test's directory if it ever runs.
CODE_IN_OVERRIDES = [
    "+hydra.callbacks.x={_target_:os.makedirs,name:pwned}",
    "hydra.callbacks.sweep._target_=os.makedirs",
    "+hydra.job_logging.handlers.x={class:os.makedirs,name:pwned}",
    "+hydra.hydra_logging.handlers.x={class:os.makedirs,name:pwned}",
    "hydra.launcher._target_=os.makedirs",
    "hydra.sweeper._target_=os.makedirs",
    "~hydra.callbacks.guard",
    "hydra.callbacks.guard.verdict=ok",
]


def launch_refusal(*overrides: str) -> str:
    """The one line `launch()` refuses with: zenexp's UserError, raised before Hydra builds anything."""
    with pytest.raises(zenexp.UserError) as caught:
        run(*overrides)
    return str(caught.value)


def entries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".swanlab-home" not in p.parts)


# ---- code from input -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("override", CODE_IN_OVERRIDES)
def test_code_named_in_hydra_overrides_never_runs(override: str, in_tmp_path: Path) -> None:
    check = in_process("check", override)
    assert check.returncode == 1 and "Traceback" not in check.stderr, check.stderr
    assert check.stderr.startswith("zenexp: error: hydra.") and len(check.stderr.splitlines()) == 1

    message = launch_refusal(override, "optim.lr=-1")  # a refused job, too, builds nothing
    assert "hydra." in message and "full_key" not in message
    launch_refusal(override)
    with pytest.raises(Exception):  # noqa: PT011,B017
        launch(
            zenexp.MainConfig, zenexp.task, overrides=[override, *QUICK], multirun=True, version_base="1.3"
        )
    assert entries(in_tmp_path) == []  # no `pwned`, no run directory


@pytest.mark.slow
def test_code_in_the_cli_never_runs_even_with_full_errors(in_tmp_path: Path) -> None:
    done = cli(CODE_IN_OVERRIDES[0], "optim.lr=-1", env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode == 1 and "not named by any registered config" in done.stderr
    done = in_process("-m", CODE_IN_OVERRIDES[0], *QUICK)
    assert done.returncode == 1
    assert entries(in_tmp_path) == []


@pytest.mark.slow
def test_a_shared_run_directory_cannot_run_code_or_move_the_tracker(
    in_tmp_path: Path, quick_run: Path
) -> None:
    shared = quick_run
    record = json.loads((shared / "run.json").read_text())
    planted_overrides = (
        CODE_IN_OVERRIDES[0],
        "+hydra.job.env_set.SWANLAB_API_HOST=http://attacker",
        "+optim@hydra.callbacks.evil=sgd",
    )
    for planted in planted_overrides:
        (shared / "run.json").write_text(json.dumps({**record, "overrides": [*QUICK, planted]}))
        before = hashes(shared)
        for command in ("rerun", "resume"):
            done = in_process(command, str(shared))
            assert done.returncode == 1 and "refused the saved override" in done.stderr, done.stderr
            assert len(done.stderr.splitlines()) == 1
        for call in (zenexp.rerun, zenexp.resume):
            with pytest.raises(zenexp.UserError, match="never Hydra's"):
                call(shared)
        assert hashes(shared) == before
    assert not (in_tmp_path / "pwned").exists() and len(run_dirs(in_tmp_path)) == 1


@pytest.mark.slow
def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(
    in_tmp_path: Path, quick_run: Path
) -> None:
    last = quick_run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    state["position"]["experiment_name"] = Payload()
    torch.save(state, last)
    before = hashes(quick_run)

    done = in_process("resume", str(quick_run))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "last.pt: cannot resume from it: it holds objects other than tensors and numbers" in done.stderr
    assert "best.pt (end of epoch 1) is intact" in done.stderr
    with pytest.raises(zenexp.UserError, match="could run code"):
        zenexp.resume(quick_run)
    assert not (in_tmp_path / "pwned").exists()
    assert hashes(quick_run) == before


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.makedirs, ("pwned",))


@pytest.mark.slow
def test_a_forged_or_foreign_checkpoint_is_refused_before_the_run_is_touched(
    in_tmp_path: Path, quick_run: Path
) -> None:
    first, other = quick_run, run("model=large", *QUICK).output_dir
    last = first / "checkpoints" / "last.pt"
    forged = torch.load(last, weights_only=True)
    forged["position"]["epoch"] = "x"
    for state, expected in ((forged, "position.epoch is not"), (None, "does not fit this run's model")):
        if state is None:  # another run's checkpoint: another model
            last.write_bytes((other / "checkpoints" / "last.pt").read_bytes())
        else:
            torch.save(state, last)
        before = hashes(first)
        done = in_process("resume", str(first))
        assert done.returncode == 1 and expected in done.stderr and "Traceback" not in done.stderr, (
            done.stderr
        )
        assert hashes(first) == before


@pytest.mark.slow
def test_a_cifar10_batch_carrying_code_is_refused(in_tmp_path: Path) -> None:
    write_cifar10(in_tmp_path / "data")
    import pickle

    (in_tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps(Payload()))
    done = in_process("model=net", "dataset=cifar10", *QUICK)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "data_batch_1 is not a CIFAR-10 batch (refused os.makedirs" in done.stderr, done.stderr
    assert not (in_tmp_path / "pwned").exists()


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04 truncated"])
def test_a_broken_checkpoint_is_one_line_naming_what_else_to_resume_from(
    content: bytes, in_tmp_path: Path, quick_run: Path
) -> None:
    (quick_run / "checkpoints" / "last.pt").write_bytes(content)
    before = hashes(quick_run)
    done = in_process("resume", str(quick_run))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert (
        "last.pt: cannot resume from it" in done.stderr
        and "best.pt (end of epoch 1) is intact" in done.stderr
    )
    assert hashes(quick_run) == before


# ---- runs damaged or lost --------------------------------------------------------------------------------


@pytest.mark.slow
def test_runs_started_together_never_share_a_directory(in_tmp_path: Path) -> None:
    results = [run(*QUICK, "tracker.mode=disabled") for _ in range(3)]  # within a second or two
    assert len({result.output_dir for result in results}) == 3

    started = [
        subprocess.Popen(
            [sys.executable, "-m", "zenexp", *QUICK, "tracker.mode=disabled"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in started]
    assert all(process.returncode == 0 for process in started), outputs
    recorded = [
        line.rpartition("run recorded in ")[2]
        for out in outputs
        for line in out.splitlines()
        if "run recorded in" in line
    ]
    assert len(set(recorded)) == 2 and len(run_dirs(in_tmp_path)) == 5
    for run_dir in run_dirs(in_tmp_path):
        steps = [record["step"] for record in rundir.read_metrics(run_dir)]
        assert steps == sorted(steps)  # one run's records, not two interleaved


@pytest.mark.slow
def test_a_run_never_writes_into_another_runs_directory(in_tmp_path: Path, quick_run: Path) -> None:
    taken = quick_run
    before = hashes(taken)
    done = in_process(f"hydra.run.dir={taken}", *QUICK)
    assert done.returncode == 1 and "holds files already" in done.stderr
    assert "holds files already" in launch_refusal(f"hydra.run.dir={taken}", *QUICK)
    assert hashes(taken) == before
    with pytest.raises(zenexp.UserError, match="exists already"):
        rundir.write_json(taken / rundir.RUN_FILE, {}, exclusive=True)
    for inside in (taken / "sub", taken / "new" / ".."):
        done = in_process(f"hydra.run.dir={inside}", *QUICK)
        assert done.returncode == 1 and "hydra.run.dir" in done.stderr, done.stderr
    assert hashes(taken) == before


@pytest.mark.slow
def test_a_saved_resume_never_turns_a_rerun_into_a_resume(in_tmp_path: Path, quick_run: Path) -> None:
    # Two finished `run(*QUICK)`: the trained one and a copy of it beside it.
    victim, shared = quick_run, shutil.copytree(quick_run, quick_run.with_name("shared"), symlinks=True)
    before = hashes(victim)
    record = json.loads((shared / "run.json").read_text())
    (shared / "run.json").write_text(json.dumps({**record, "overrides": [*QUICK, f"++resume={victim}"]}))
    rerun = zenexp.rerun(shared)
    assert rerun.output_dir not in (victim, shared) and hashes(victim) == before


@pytest.mark.slow
@pytest.mark.parametrize("subdir", ["..", "../..", "/tmp", "a/b", "."])
def test_clean_up_never_reaches_outside_the_refused_run(subdir: str, in_tmp_path: Path) -> None:
    day = in_tmp_path / "outputs" / "day"
    (day / "earlier-run").mkdir(parents=True)
    (day / "earlier-run" / "metrics.jsonl").write_text("{}\n")
    before = hashes(in_tmp_path)
    # With HYDRA_FULL_ERROR the refusal is not caught: the real CLI exits with status 1 and its traceback.
    with pytest.raises(zenexp.UserError) as refused:
        in_process(f"hydra.output_subdir={subdir}", "optim.lr=-1", env={"HYDRA_FULL_ERROR": "1"})
    assert "hydra.output_subdir" in str(refused.value)
    assert "hydra.output_subdir" in launch_refusal(f"hydra.output_subdir={subdir}", "optim.lr=-1")
    assert hashes(in_tmp_path) == before and (day / "earlier-run").is_dir()


@pytest.mark.slow
def test_an_empty_resume_is_refused(in_tmp_path: Path) -> None:
    (in_tmp_path / "notes.txt").write_text("mine")
    done = in_process("resume=")
    assert done.returncode == 1 and "resume= is empty" in done.stderr
    assert "resume= is empty" in launch_refusal("resume=")
    assert entries(in_tmp_path) == ["notes.txt"]


@pytest.mark.slow
def test_a_refused_or_failed_resume_leaves_the_run_byte_for_byte(in_tmp_path: Path) -> None:
    write_cifar10(in_tmp_path / "data")
    first = run("model=net", "dataset=cifar10", *QUICK).output_dir
    before = hashes(first)

    attempts = [
        ("changed config", ["optim.lr=0.5"], "optim.lr: 0.001 -> 0.5"),
        ("unknown field", ["optim.lrr=1"], "did you mean optim.lr?"),
        ("bad value", ["trainer.epochs=0"], "trainer.epochs=0"),
    ]
    for _, overrides, expected in attempts:
        done = in_process("resume", str(first), *overrides)
        assert done.returncode == 1 and expected in done.stderr, done.stderr
        with pytest.raises(zenexp.UserError, match=expected.replace("?", r"\?")):
            zenexp.resume(first, overrides)
        with pytest.raises((zenexp.UserError, HydraException)):  # Hydra itself refuses optim.lrr
            run("model=net", "dataset=cifar10", *QUICK, *overrides, f"resume={first}")
        assert hashes(first) == before

    (in_tmp_path / "data" / "cifar-10-batches-py" / "test_batch").unlink()  # the data went away
    done = in_process("resume", str(first))
    assert done.returncode == 1 and "no CIFAR-10 files" in done.stderr
    assert "no CIFAR-10 files" in launch_refusal("model=net", "dataset=cifar10", *QUICK, f"resume={first}")
    assert hashes(first) == before


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_half_file(in_tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes past 200 kB fail as a full disk does: the net's checkpoints do not fit."""
    limit = (
        "import resource, signal, runpy, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000)); "
        "sys.argv = ['zenexp', *sys.argv[1:]]; runpy.run_module('zenexp', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", limit, "model=net", "dataset=fake", *QUICK, "tracker.mode=disabled"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot write" in done.stderr and "best.pt: File too large" in done.stderr
    (run_dir,) = run_dirs(in_tmp_path)
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "checkpoints" / "best.pt").exists()
    assert json.loads((run_dir / "run.json").read_text())["overrides"]  # what was recorded before is intact
    assert [record["epoch"] for record in rundir.read_metrics(run_dir) if "epoch" in record] == [1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("status.json", b""),
        ("status.json", b"{half"),
        ("summary.json", b"[1, 2]"),
        ("run.json", b"\xff\xfe garbage"),
        ("config.yaml", b"a: [unclosed"),
        ("metrics.jsonl", b'{"step": 1}\n7\n"text"\n{"no step": 2}\n{"step": 2, "train/loss": 0.5}\n'),
    ],
)
def test_malformed_run_files_are_one_line_in_resume_rerun_and_compare(
    name: str, content: bytes, in_tmp_path: Path, quick_run: Path
) -> None:
    run_dir = quick_run
    (run_dir / name).write_bytes(content)
    compared = in_process("compare", str(run_dir))
    assert compared.returncode == 0 and "Traceback" not in compared.stderr, compared.stderr
    if name in ("status.json", "summary.json"):
        assert "damaged" in compared.stdout and name in compared.stdout
    for command in ("rerun", "resume"):  # a refusal is one line naming the file; or it goes on
        done = in_process(command, str(run_dir))
        assert "Traceback" not in done.stderr, (command, done.stderr)
        if done.returncode != 0:
            assert done.stderr.startswith("zenexp: error: ") and name in done.stderr, (command, done.stderr)


# ---- the tracker -----------------------------------------------------------------------------------------


# The benchmark's server (one byte every 2 s, never a whole answer): the same worst case in both places.
BENCHMARKS = Path(__file__).resolve().parent.parent.parent / "benchmarks"
trickling_server: Callable[[], int] = runpy.run_path(str(BENCHMARKS / "tracker_setup.py"))["trickling_server"]


@pytest.mark.slow
def test_a_trickling_server_costs_at_most_the_setup_timeout(in_tmp_path: Path) -> None:
    env = {"SWANLAB_API_KEY": "a-key", "SWANLAB_API_HOST": f"http://127.0.0.1:{trickling_server()}"}
    started = time.monotonic()
    done = in_process("tracker.mode=cloud", "tracker.setup_timeout_s=2", *QUICK, env=env)
    assert done.returncode == 0, done.stderr
    assert "did not answer within 2 s; recording offline instead" in done.stdout + done.stderr
    assert time.monotonic() - started < 60  # minutes before the bound
    (run_dir,) = run_dirs(in_tmp_path)
    assert SwanLabRun(run_dir).finish.state == 1


@pytest.mark.slow
def test_a_malformed_host_warns_and_records_offline(in_tmp_path: Path) -> None:
    env = {"SWANLAB_API_KEY": "a-key", "SWANLAB_API_HOST": "http://127.0.0.1:abc"}
    done = in_process("tracker.mode=cloud", *QUICK, env=env)
    assert done.returncode == 0, done.stderr
    assert "SWANLAB_API_HOST=http://127.0.0.1:abc is not a URL" in done.stdout + done.stderr
    (run_dir,) = run_dirs(in_tmp_path)
    assert SwanLabRun(run_dir).finish.state == 1


def test_a_long_default_name_is_shortened_and_still_recorded(in_tmp_path: Path) -> None:
    many = [
        f"tracker.tags=[{','.join(f'tag{i}' * 3 for i in range(25))}]",  # not in the name: not the experiment
        "tracker.description=" + "d" * 500,
        "optim.lr=0.001" + "0" * 600,
    ]
    result = run(*QUICK, *many)
    swanlab_run = SwanLabRun(result.output_dir)
    assert swanlab_run.finish.state == 1 and swanlab_run.scalars
    name = swanlab_run.start.name
    assert len(name) == 511 and name.startswith("optim.lr=0.00100") and "..." in name
    assert "tracker." not in name
    assert name.endswith(
        "trainer.max_steps_per_epoch=3"
    )  # start and end kept, so the name still says what ran


def forge(checkpoint: Path, change: Callable[[dict[str, Any]], None]) -> None:
    state = torch.load(checkpoint, weights_only=True)
    change(state)
    torch.save(state, checkpoint)


@pytest.mark.slow
def test_a_resume_the_checkpoints_cannot_honour_is_refused_before_the_run_is_touched(
    in_tmp_path: Path,
) -> None:
    first = run(
        "scheduler=step", "trainer.epochs=2", "trainer.max_steps_per_epoch=5", "tracker.mode=disabled"
    )
    last, best = (first.output_dir / "checkpoints" / name for name in ("last.pt", "best.pt"))
    pristine = {path: path.read_bytes() for path in (last, best)}

    def refused(expected: str) -> None:
        before = hashes(first.output_dir)
        with pytest.raises(zenexp.UserError, match=expected):
            zenexp.resume(first.output_dir, ["trainer.epochs=3"])
        assert hashes(first.output_dir) == before
        for path, content in pristine.items():
            path.write_bytes(content)

    forge(last, lambda state: state["scheduler"].update(gamma=10.0))  # the config says 0.1
    refused("scheduler's gamma is 10.0, but the run's config gives 0.1")
    forge(last, lambda state: state["scheduler"].update(last_epoch="x"))
    refused("scheduler's last_epoch is not int")
    forge(last, lambda state: state["position"].update(epoch=-7))
    refused("position.epoch is -7")
    best.unlink()
    refused("best.pt is missing: the run's kept model")
    large = run("model=large", "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "tracker.mode=disabled")
    best.write_bytes((large.output_dir / "checkpoints" / "best.pt").read_bytes())
    refused("best.pt is not this run's model")


@pytest.mark.slow
def test_a_run_that_stopped_early_is_not_resumed_into_nothing(in_tmp_path: Path) -> None:
    stopped = run(
        "optim.lr=1e-9", "trainer.early_stop_patience=1", "trainer.epochs=4", "trainer.max_steps_per_epoch=5"
    )
    assert stopped.stopped_early and stopped.metrics["epochs"] == 2
    before = hashes(stopped.output_dir)
    done = in_process("resume", str(stopped.output_dir), "trainer.epochs=8")
    assert done.returncode == 1 and "the run stopped early after epoch 2" in done.stderr
    assert hashes(stopped.output_dir) == before


@pytest.mark.slow
def test_a_forged_thread_count_in_a_saved_config_is_one_line(in_tmp_path: Path) -> None:
    first = run(
        "trainer.num_threads=0", "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "tracker.mode=disabled"
    )
    config = first.output_dir / "config.yaml"
    config.write_text(config.read_text().replace("num_threads: 0", "num_threads: ${oc.env:SECRET}"))
    done = in_process("rerun", str(first.output_dir), env={"SECRET": "hunter2"})
    assert done.returncode == 1 and "Traceback" not in done.stderr and "hunter2" not in done.stderr
    assert "trainer.num_threads" in done.stderr


@pytest.mark.slow
def test_eval_never_writes_through_a_link_left_in_a_run_directory(in_tmp_path: Path) -> None:
    first = run("trainer.epochs=1", "trainer.max_steps_per_epoch=3", "tracker.mode=disabled")
    victim = in_tmp_path / "victim.txt"
    victim.write_text("mine\n")
    (first.output_dir / "confusion_matrix.png").symlink_to(victim)
    (first.output_dir / "eval.json").symlink_to(victim)
    assert in_process("eval", str(first.output_dir)).returncode == 0
    assert victim.read_text() == "mine\n"
    assert not (first.output_dir / "confusion_matrix.png").is_symlink()
