"""One job on several devices: its ranks, started and ended by the job itself, on torch.distributed (gloo on
CPU, NCCL on CUDA), and what the ranks agree on at each step.

Rank 0 is the job's own process: it alone writes the run directory, the checkpoints and the SwanLab run. On
one node it starts the other ranks (`python -m zenexp.parallel.spawned`), so a job inside any Hydra launcher starts and
ends its own ranks; under Slurm, the job's tasks are its ranks. A rank that dies or raises ends them all:
the others fail in their next collective (its connection closes), and rank 0 names the rank and its error.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.spawn import get_preparation_data as spawn_preparation
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed import TCPStore
from torch.nn.parallel import DistributedDataParallel

from zenexp.errors import UserError

# How long a rank waits for the others, to start and at each step, before the job fails: a rank that dies
# is noticed at once (its connections close); this bounds one that hangs.
TIMEOUT = timedelta(minutes=5)
# How long rank 0, failing, waits for a rank that failed first to exit (its error is then the one reported).
FIRST_FAILURE_S = 5.0
PR_SET_PDEATHSIG = 1  # prctl(2)
JOB_FILE = "job.pickle"
# What a spawned rank takes of multiprocessing's preparation data: where to find and how to import `__main__`.
PREPARATION = ("sys_path", "sys_argv", "dir", "orig_dir", "init_main_from_name", "init_main_from_path")
RANK_VARIABLE = "ZENEXP_SPAWNED_RANK"  # set in a spawned rank's environment
log = logging.getLogger("zenexp")
T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place among the job's ranks; one rank (`world == 1`) needs no process group."""

    rank: int = 0
    world: int = 1
    local: int = 0  # the rank on its node

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch (of indices)."""
        return batch if self.world == 1 else batch[self.rank :: self.world]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The loss to back-propagate for this rank's shard of a global batch of `batch_size` images.

        DDP averages the ranks' gradients, so each rank's sum is scaled by world / batch_size: the average
        is then the gradient of the global batch's mean loss, whatever the shards' sizes."""
        if self.world == 1:
            return F.cross_entropy(logits, labels)
        return F.cross_entropy(logits, labels, reduction="sum") * (self.world / batch_size)

    def after_step(self, loss: torch.Tensor, signum: int | None) -> tuple[torch.Tensor, int | None]:
        """The step's loss over the global batch (the ranks' average), and a signal if any rank has
        received one (the lowest such rank's): every rank stops after the same step."""
        if self.world == 1:
            return loss, signum
        mine = torch.stack([loss.float(), torch.tensor(float(signum or 0), device=loss.device)])
        every = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(every, mine)
        gathered = torch.stack(every)
        received = [int(s) for s in gathered[:, 1].tolist() if s]
        return gathered[:, 0].mean(), (received[0] if received else None)

    def from_rank_0(self, make: Callable[[], T]) -> T:
        """`make()` as rank 0 makes it, on every rank (the others do not call it): what every rank must
        agree on, such as the starting state and the validation result each epoch's decisions follow."""
        if self.world == 1:
            return make()
        box = [make() if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return cast(T, box[0])

    def random_states(self, device: torch.device) -> list[torch.Tensor]:
        """Every rank's random state on its device, in rank order (none on one device: rank 0's own
        is in every checkpoint)."""
        if self.world == 1:
            return []
        states: list[torch.Tensor | None] = [None] * self.world
        dist.all_gather_object(states, random_state(device))
        return cast(list[torch.Tensor], states)

    def seed(self, seed: int) -> None:
        """On several devices, each rank its own random stream from the run's seed (dropout masks differ
        by rank), however the rank was started."""
        if self.world > 1:
            torch.manual_seed(hash((seed, self.rank)) % 2**63)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train: DDP over the ranks (it starts every rank from rank 0's parameters)."""
        if self.world == 1:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def on_cpu(value: Any) -> Any:
    """`value` with every tensor in it copied to the CPU (a CUDA tensor sent to another rank would be
    unpickled on rank 0's GPU)."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(item) for item in value)
    return value


def random_state(device: torch.device) -> torch.Tensor:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def set_random_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """Each rank its own CUDA device on a node (`trainer.device=cuda` or `auto`), made the current one (NCCL's
    object collectives use it); CPU ranks share the CPU."""
    if device.type != "cuda" or ranks.world == 1:
        return device
    torch.cuda.set_device(ranks.local)
    return torch.device("cuda", ranks.local)


def backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def started_in_a_rank() -> str | None:
    """Why a job cannot start here: in a spawned rank, importing the user's script (as multiprocessing does)
    ran a job the script starts without a `__main__` guard."""
    if RANK_VARIABLE not in os.environ:
        return None
    return (
        "a rank of a job on several devices imports the script that started it, and the script started a job "
        "again: put the script's launch() or main() under if __name__ == '__main__':"
    )


def device_problems(devices: int, device: torch.device) -> list[str]:
    """Why `trainer.devices` cannot run on this machine's devices, if it cannot."""
    problems = []
    if device.type == "cuda" and devices > 1:
        if device.index is not None:
            problems.append(
                f"trainer.devices={devices} with trainer.device={device}: several devices take one each; "
                f"give trainer.device=cuda"
            )
        elif devices > (present := torch.cuda.device_count()):
            problems.append(
                f"trainer.devices={devices}: this machine has {present} CUDA device{'' if present == 1 else 's'}"
            )
    return problems


def records() -> bool:
    """Whether this process records its job: not a Slurm task other than rank 0."""
    tasks = slurm_tasks()
    return tasks is None or tasks[0] == 0


def slurm_tasks() -> tuple[int, int] | None:
    """This process's rank and the job's task count, in a Slurm job step with more than one task."""
    tasks = os.environ.get("SLURM_NTASKS")
    if tasks is None or int(tasks) < 2 or "SLURM_PROCID" not in os.environ:
        return None
    return int(os.environ["SLURM_PROCID"]), int(tasks)


@contextmanager
def start(
    devices: int,
    nodes: int,
    device: torch.device,
    job: Callable[[], tuple[Any, ...]],
) -> Iterator[Ranks]:
    """This job's ranks for the duration of the block, rank 0 being this process (or, under Slurm, the task
    this process is). On one node, the other ranks run `zenexp.parallel.spawned` on `job()`.
    Leaving the block ends them all; when a rank failed first, the block raises one line naming it."""
    world = devices * nodes
    slurm = slurm_tasks()
    if slurm is not None and slurm[1] != world:  # every task would train, and record, the same run
        raise UserError(
            f"trainer.devices={devices} x trainer.nodes={nodes} ranks, but the Slurm job has {slurm[1]} "
            f"tasks; give hydra.launcher.tasks_per_node={devices} hydra.launcher.nodes={nodes}"
        )
    if world == 1:
        yield Ranks()
        return
    if slurm is None and nodes > 1:
        raise UserError(
            f"trainer.nodes={nodes}: several nodes are Slurm's to give; run the job with -m hydra/launcher=slurm"
        )
    if slurm is not None:
        rank = slurm[0]
        with _slurm_group(rank, world, device):
            yield Ranks(rank, world, int(os.environ.get("SLURM_LOCALID", 0)))
        return
    with tempfile.TemporaryDirectory(prefix="zenexp-ranks-") as folder:
        store = TCPStore("127.0.0.1", 0, world, True, timeout=TIMEOUT, wait_for_workers=False)
        ranks: list[Spawned] = []
        finished = False
        try:
            spawn(Path(folder), world, store.port, job(), ranks)
            wait_until_started(ranks, store)
            (Path(folder) / JOB_FILE).unlink()  # every rank has read it: gone, even if this process is killed
            dist.init_process_group(backend(device), store=store, rank=0, world_size=world, timeout=TIMEOUT)
            yield Ranks(0, world)
            finished = True
        except Exception as error:
            # Another rank's end shows here as a lost connection: wait for it to say why.
            lost = isinstance(error, RankEnded) or lost_connection(one_line(error))
            failure = first_failure(ranks, FIRST_FAILURE_S if lost else 0.0)
            if failure is not None:
                raise UserError(failure) from error
            raise  # rank 0's own error, as on one device
        finally:
            # Stopped or failed: the other ranks have nothing to save, and a second signal should find this
            # process done, not waiting for them. They end before the group does (NCCL's destroy can wait
            # on a rank still in a collective).
            end(ranks, FIRST_FAILURE_S if finished else 0.0)
            if dist.is_initialized():
                dist.destroy_process_group()


@dataclass
class Spawned:
    """A rank that rank 0 started: its process, and the file where it writes why it failed."""

    rank: int
    process: subprocess.Popen[bytes]
    error_file: Path


def pickled(built: object) -> bytes:
    """`built` pickled plainly (torch.multiprocessing's pickler would share its tensors' memory, and the
    ranks would all step the same weights), or one line saying why it cannot be sent to other ranks."""
    try:
        return pickle.dumps(built)
    except Exception as error:  # noqa: BLE001  (pickle raises many kinds)
        raise UserError(
            f"the model, dataset or optimizer cannot be sent to the other ranks ({one_line(error)}); "
            f"several devices need configs whose objects pickle (no lambdas or local classes)"
        ) from error


class RankEnded(RuntimeError):
    """A spawned rank ended before it joined the job's process group."""


def spawn(folder: Path, world: int, port: int, job: tuple[Any, ...], spawned: list[Spawned]) -> None:
    """Start ranks 1.. as fresh Python processes (`python -m zenexp.parallel.spawned`), given the job pickled in a
    private folder. Each imports this process's `__main__` first, as multiprocessing's spawn does, so a
    model defined in the user's script unpickles there; nothing else is inherited (a launcher's own
    multiprocessing context, such as joblib's loky, would fail in a spawned child)."""
    main = spawn_preparation("zenexp-rank")
    preparation = {key: main[key] for key in PREPARATION if key in main}
    (folder / JOB_FILE).write_bytes(pickle.dumps((preparation, world, port, *job)))
    for rank in range(1, world):  # each added as it starts, for the caller to end whatever happens
        command = [sys.executable, "-m", "zenexp.parallel.spawned", str(folder), str(rank), str(os.getpid())]
        spawned.append(
            Spawned(
                rank,
                # Its own session: a Ctrl-C in the terminal reaches rank 0 alone, which stops every rank.
                subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, RANK_VARIABLE: str(rank)},
                    start_new_session=True,
                ),
                folder / f"rank{rank}.error",
            )
        )


def wait_until_started(spawned: list[Spawned], store: TCPStore) -> None:
    """Wait until every rank has started (a rank sets its key before joining the group): a rank that fails
    to start ends the job at once, not after the group's timeout."""
    deadline = time.monotonic() + TIMEOUT.total_seconds()
    waiting = [str(s.rank) for s in spawned]
    while not store.check(waiting):
        if any(s.process.poll() is not None for s in spawned):
            raise RankEnded("a rank ended before joining")
        if time.monotonic() > deadline:
            raise UserError(f"the job's other ranks did not start within {TIMEOUT.total_seconds():.0f} s")
        time.sleep(0.05)


def first_failure(spawned: list[Spawned], wait_s: float) -> str | None:
    """The rank that failed first (within `wait_s`), as one line: one killed, or one that raised an error
    of its own rather than losing its connection to a rank that failed."""
    deadline = time.monotonic() + wait_s
    codes = [s.process.poll() for s in spawned]
    while time.monotonic() < deadline and None in codes and not set(codes) - {None, 0}:
        time.sleep(0.05)
        codes = [s.process.poll() for s in spawned]
    failures = [failure(s, len(spawned) + 1) for s, code in zip(spawned, codes, strict=True) if code]
    failures.sort(key=lambda f: f[0])  # a rank's own failure before a lost connection
    if not failures:
        return None
    _, line, traceback = failures[0]
    log.error("%s\n%s", line, traceback, extra={"console": False})  # in the run's log file only
    return line


def failure(spawned: Spawned, world: int) -> tuple[bool, str, str]:
    """Whether the rank's failure is a lost connection to another rank, the failure as one line, and its
    traceback (if it raised)."""
    code = spawned.process.returncode
    name = f"rank {spawned.rank} of {world}"
    if code < 0:
        return False, f"{name} died (killed by {signal.Signals(-code).name})", ""
    try:
        text = spawned.error_file.read_text(encoding="utf-8")
        error = text.strip().splitlines()[-1]
    except (OSError, IndexError):
        return False, f"{name} died (exit status {code})", ""
    return lost_connection(error), f"{name} failed: {error}", text


def lost_connection(error: str) -> bool:
    """Whether `error` ("Type: message") is a collective that failed because another rank went away: how
    torch.distributed says so, or, from a collective inside DDP's backward pass, gloo's RuntimeError that names
    its TCP transport."""
    return error.startswith("DistBackendError") or "gloo/transport/tcp" in error


def end(spawned: list[Spawned], wait_s: float) -> None:
    """Wait up to `wait_s` for the spawned ranks to exit; kill those still there."""
    deadline = time.monotonic() + wait_s
    for s in spawned:
        try:
            s.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            s.process.kill()
            s.process.wait()


def join_group(rank: int, world: int, port: int, device: torch.device) -> Ranks:
    """In a rank that rank 0 started: say so (`wait_until_started`), and join the job's process group."""
    store = TCPStore("127.0.0.1", port, world, False, timeout=TIMEOUT)
    store.set(str(rank), "started")
    dist.init_process_group(backend(device), store=store, rank=rank, world_size=world, timeout=TIMEOUT)
    return Ranks(rank, world, rank)


@contextmanager
def _slurm_group(rank: int, world: int, device: torch.device) -> Iterator[None]:
    import submitit  # zenexp[sweep]; present in a Slurm job started by submitit

    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    dist.init_process_group(backend(device), rank=rank, world_size=world, timeout=TIMEOUT)
    try:
        yield
    except Exception as error:
        if lost_connection(one_line(error)):  # the task that failed first says why in its own log
            raise UserError(
                f"rank {rank} of {world} lost the other ranks ({one_line(error)}); each task's error is in "
                f"the job's .submitit/<job id>/*_log.err"
            ) from error
        raise
    finally:
        dist.destroy_process_group()


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def die_with_parent(parent: int) -> None:
    """In a spawned rank: end when rank 0's process ends, however it ends (Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before this rank asked
        os._exit(1)
