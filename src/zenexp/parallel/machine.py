"""What this machine offers a job (the cores it may run on, those idle now, the memory available) and what the
defaults take of it: torch's thread count for `trainer.num_threads=auto`, and the ranks that fit.

Jobs that run side by side on one machine share it: a sweep's sweeper says how many run at once
(`JOBS_AT_ONCE`, set for the sweep's duration, inherited by the launcher's worker processes).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig

from zenexp.errors import UserError
from zenexp.parallel import distributed
from zenexp.run.provenance import MAX_THREADS

JOBS_AT_ONCE = "ZENEXP_JOBS_AT_ONCE"
# What a CPU rank costs before its data: a Python process with torch and zenexp imported (measured here: 0.45
# to 0.55 GB resident), rounded up.
RANK_MEMORY = 0.6 * 2**30
IDLE_SAMPLE_S = 0.1  # how long `idle_cores` watches the cores (/proc/stat counts in 10 ms ticks)
# torch's own default (its count of physical cores), read before a run in this process sets another count.
TORCH_DEFAULT_THREADS = torch.get_num_threads()


def cores() -> int:
    """The physical cores this process may run on: its CPU affinity, each core's hyperthreads counted once
    (as torch counts cores), and no more than a cgroup CPU quota allows (a container's `--cpus`)."""
    cpus = os.sched_getaffinity(0)
    siblings = {
        _read(Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")) or str(cpu)
        for cpu in cpus
    }
    quota = _read(Path("/sys/fs/cgroup/cpu.max")).split()
    if len(quota) == 2 and quota[0].isdigit() and quota[1].isdigit() and int(quota[1]):
        return max(1, min(len(siblings), int(quota[0]) // int(quota[1])))
    return max(1, len(siblings))


def idle_cores(seconds: float = IDLE_SAMPLE_S) -> float:
    """How many of this process's CPUs other processes left idle over the next `seconds` (from /proc/stat;
    every CPU counted idle where it cannot be read)."""
    cpus = os.sched_getaffinity(0)
    before = _cpu_times(cpus)
    time.sleep(seconds)
    after = _cpu_times(cpus)
    idle = 0.0
    for cpu in cpus:
        if cpu not in before or cpu not in after:
            idle += 1
            continue
        (idle_0, total_0), (idle_1, total_1) = before[cpu], after[cpu]
        idle += (idle_1 - idle_0) / (total_1 - total_0) if total_1 > total_0 else 1
    return idle


def _cpu_times(cpus: set[int]) -> dict[int, tuple[int, int]]:
    """(idle, total) clock ticks of each CPU since boot; idle counts waiting for I/O too."""
    times = {}
    for line in _read(Path("/proc/stat")).splitlines():
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus and len(ticks) >= 8:
            counts = [int(tick) for tick in ticks[:8]]  # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (counts[3] + counts[4], sum(counts))
    return times


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def available_memory() -> int | None:
    """Bytes the machine can give without swapping (/proc/meminfo's MemAvailable), if it says."""
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


# ---- jobs side by side -----------------------------------------------------------------------------------


def jobs_at_once(launcher: Mapping[str, Any], jobs: int) -> int:
    """How many of a sweep's `jobs` its launcher runs on this machine at once: joblib's workers, every job
    of a submitit_local batch, one at a time for the basic launcher; 0 for Slurm, whose jobs run on other
    machines, each in an allocation of its own (which its CPU affinity shows there)."""
    target = str(launcher.get("_target_", ""))
    if runs_elsewhere(target):
        return ELSEWHERE
    if target.endswith("JoblibLauncher"):
        import joblib  # type: ignore[import-untyped]

        at_once = int(joblib.effective_n_jobs(launcher.get("n_jobs")))
    elif target.endswith("submitit_launcher.LocalLauncher"):
        at_once = jobs
    else:
        at_once = 1
    return max(1, min(at_once, jobs))


def runs_elsewhere(launcher_target: str) -> bool:
    """Whether a launcher's jobs run on other machines: Slurm's (Hydra's submitit_slurm, zenexp's slurm)."""
    return launcher_target.endswith("SlurmLauncher")


FEWER_AT_ONCE = (
    " (or run fewer jobs at once: hydra.launcher.n_jobs with joblib, hydra.sweeper.max_batch_size with "
    "submitit_local)"
)
ELSEWHERE = 0  # `jobs_at_once` of a launcher whose jobs run on other machines
_sharing: ContextVar[int | None] = ContextVar("jobs_at_once", default=None)


@contextmanager
def sharing(count: int, sweep_dir: Path | None = None) -> Iterator[None]:
    """Jobs checked or started within run `count` at once: the check of a sweep's jobs, or the sweep in
    `sweep_dir` (its jobs in a launcher's worker process read it from the environment, with the sweep's
    directory: a job of another sweep, or a run alone, does not take it)."""
    before = os.environ.get(JOBS_AT_ONCE)
    if sweep_dir is not None:
        os.environ[JOBS_AT_ONCE] = f"{count} {sweep_dir.resolve()}"
    token = _sharing.set(count)
    try:
        yield
    finally:
        _sharing.reset(token)
        if before is None:
            os.environ.pop(JOBS_AT_ONCE, None)
        else:
            os.environ[JOBS_AT_ONCE] = before


def side_by_side() -> int:
    """The jobs sharing this machine with this one, itself included (`ELSEWHERE` when checking jobs that
    will run on other machines): what the sweep said, in this process or (a launcher's worker) in the
    environment of a job of that sweep; else 1."""
    if (count := _sharing.get()) is not None:
        return count
    said, _, sweep_dir = os.environ.get(JOBS_AT_ONCE, "").partition(" ")
    if not HydraConfig.initialized() or not sweep_dir:
        return 1
    hydra = HydraConfig.get()
    if Path(sweep_dir) != (Path(hydra.runtime.cwd) / str(hydra.sweep.dir)).resolve():
        return 1
    return _count(said) or 1


def _count(said: str) -> int | None:
    """`said` as a count from 1 to `MAX_THREADS`, if it is one (ASCII digits: '²' is a digit to Python)."""
    if not (said.isascii() and said.isdigit()) or not 1 <= int(said) <= MAX_THREADS:
        return None
    return int(said)


# ---- what a job takes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threads:
    """torch's thread count for a job, and how it was chosen (for the run's log)."""

    count: int
    reason: str


def choose_threads(
    asked: int | str, ranks_here: int, recorded: int | None = None, sample: bool = True
) -> Threads:
    """`trainer.num_threads` as a count: N is N; a resumed run keeps the count it recorded; 0 is torch's
    default. `auto` is this machine's cores shared among the jobs side by side and the ranks on this node, no
    more than OMP_NUM_THREADS where it is set for a job alone, and no more than are idle now (`sample`): a
    thread waiting for a core another process keeps busy slows every step (docs/performance.md, "Threads")."""
    if isinstance(asked, int) and asked > 0:
        return Threads(asked, "trainer.num_threads")
    if recorded is not None:
        return Threads(recorded, "recorded by the run")
    if asked == 0:
        return Threads(TORCH_DEFAULT_THREADS, "torch's default")
    available, jobs = cores(), max(1, side_by_side())
    share = max(1, available // (jobs * ranks_here))
    reason = f"auto: {available} cores / ({_plural(jobs, 'job')} x {_plural(ranks_here, 'rank')})"
    # The usual cap (torchrun sets it to 1), for a job alone: in a launcher's worker joblib sets it to
    # cores / n_jobs, which does not count how many jobs there are.
    capped = _count(os.environ.get("OMP_NUM_THREADS", "")) if jobs == 1 else None
    if capped is not None and capped <= share:
        return Threads(capped, f"{reason}, OMP_NUM_THREADS={capped}")
    if not sample or share == 1:
        return Threads(share, reason)
    cpus = len(os.sched_getaffinity(0))
    idle = idle_cores() * min(1.0, available / cpus)  # in cores, as `cores()` counts them
    count = max(1, min(share, math.floor(idle + 0.5)))
    return Threads(count, f"{reason}, {idle:.1f} idle")


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number > 1 else ''}"


def rank_problems(devices: int, device: torch.device) -> list[str]:
    """Why `trainer.devices` CPU processes would not fit this machine (with the jobs side by side), if not."""
    if device.type != "cpu" or devices == 1:
        return []
    jobs = side_by_side()
    # Each job on machines of its own, or ranks that are Slurm's tasks: Slurm placed them.
    if jobs == ELSEWHERE or distributed.slurm_tasks() is not None:
        return []
    ranks, available = devices * jobs, cores()
    sharing_note = f" ({jobs} jobs at once x {devices} ranks)" if jobs > 1 else ""
    fits = max(1, available // jobs)
    if ranks > available:
        return [
            f"trainer.devices={devices}: {ranks} CPU processes{sharing_note} on {available} cores; at most "
            f"trainer.devices={fits} fits{FEWER_AT_ONCE if jobs > 1 else ''}"
        ]
    memory = available_memory()
    if memory is not None and ranks * RANK_MEMORY > memory:
        fits = max(1, int(memory // RANK_MEMORY) // jobs)
        return [
            f"trainer.devices={devices}: {ranks} CPU processes{sharing_note} need about "
            f"{ranks * RANK_MEMORY / 2**30:.1f} GB, and {memory / 2**30:.1f} GB is available; at most "
            f"trainer.devices={fits} fits"
        ]
    return []


def resolve_device(name: str) -> torch.device:
    """`auto` is cuda when a GPU is present, else cpu; an explicit cuda device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"trainer.device={name}: not a device; use auto, cpu, cuda or cuda:N") from error
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"trainer.device={name}: zenexp trains on cpu or cuda; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name}: no CUDA device is present; use trainer.device=auto or cpu")
    if device.index is not None and device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise UserError(f"trainer.device={name}: this machine has {torch.cuda.device_count()} CUDA devices")
    return device


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's CPU thread count for one run, given back after it (jobs in one process do not inherit it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
