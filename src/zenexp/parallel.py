"""One job on several devices: its ranks, started and ended by the job itself, on torch.distributed (gloo on
CPU, NCCL on CUDA), and what the ranks agree on at each step.

Rank 0 is the job's own process: it alone writes the run directory, the checkpoints and the SwanLab run. On
one node it spawns the other ranks (`torch.multiprocessing`), so a job inside any Hydra launcher starts and
ends its own ranks; under Slurm, the job's tasks are its ranks. A rank that dies or raises ends them all:
the others fail in their next collective (its connection closes), and rank 0 names the rank and its error.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch._C._distributed_c10d import TCPStore
from torch.multiprocessing.spawn import (
    ProcessContext,
    ProcessExitedException,
    ProcessRaisedException,
    start_processes,
)
from torch.nn.parallel import DistributedDataParallel

from zenexp.errors import UserError

log = logging.getLogger("zenexp")

# How long a rank waits for the others, to start and at each step, before the job fails: a rank that dies
# is noticed at once (its connections close); this bounds one that hangs.
TIMEOUT = timedelta(minutes=5)
# How long rank 0, failing, waits for a rank that failed first to exit (its error is then the one reported).
FIRST_FAILURE_S = 5.0
PR_SET_PDEATHSIG = 1  # prctl(2)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the job's ranks; one rank (`world == 1`) needs no process group."""

    rank: int = 0
    world: int = 1

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
        """The step's loss over the global batch (the ranks' average), and the first signal any rank has
        received: every rank stops at the same step."""
        if self.world == 1:
            return loss, signum
        mine = torch.stack([loss.float(), torch.tensor(float(signum or 0), device=loss.device)])
        every = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(every, mine)
        gathered = torch.stack(every)
        received = [int(s) for s in gathered[:, 1].tolist() if s]
        return gathered[:, 0].mean(), (received[0] if received else None)

    def share(self, state: dict[str, Any]) -> dict[str, Any]:
        """Rank 0's `state`, on every rank."""
        if self.world == 1:
            return state
        box = [state if self.main else None]
        dist.broadcast_object_list(box, src=0)
        assert box[0] is not None
        return box[0]

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train: DDP over the ranks (it starts every rank from rank 0's parameters)."""
        if self.world == 1:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """Each rank its own CUDA device on a node (`trainer.device=cuda` or `auto`); CPU ranks share the CPU."""
    if device.type != "cuda" or ranks.world == 1:
        return device
    return torch.device("cuda", ranks.rank % torch.cuda.device_count())


def backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def device_problems(devices: int, nodes: int, device: torch.device) -> list[str]:
    """Why `trainer.devices`/`trainer.nodes` cannot run here, if they cannot."""
    problems = []
    if device.type == "cuda" and devices > 1:
        if device.index is not None:
            problems.append(
                f"trainer.devices={devices} with trainer.device={device}: several devices take one each; "
                f"give trainer.device=cuda"
            )
        elif devices > torch.cuda.device_count():
            problems.append(
                f"trainer.devices={devices}: this machine has {torch.cuda.device_count()} CUDA devices"
            )
    if nodes > 1 and slurm_tasks() is None:
        problems.append(
            f"trainer.nodes={nodes}: several nodes are Slurm's to give; run with -m hydra/launcher=slurm"
        )
    return problems


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
    rank_main: Callable[..., None],
    rank_args: tuple[Any, ...],
) -> Iterator[Ranks]:
    """This job's ranks for the duration of the block, rank 0 being this process (or, under Slurm, the task
    this process is). On one node, `rank_main(index, world, port, *rank_args)` runs in each other rank.
    Leaving the block ends them all; when a rank failed first, the block raises one line naming it."""
    world = devices * nodes
    if world == 1:
        yield Ranks()
        return
    slurm = slurm_tasks()
    if slurm is not None:
        rank, tasks = slurm
        if tasks != world:
            raise UserError(
                f"trainer.devices={devices} x trainer.nodes={nodes} ranks, but the Slurm job has {tasks} "
                f"tasks; give hydra.launcher.tasks_per_node={devices} hydra.launcher.nodes={nodes}"
            )
        with _slurm_group(rank, world, device):
            yield Ranks(rank, world)
        return
    store = TCPStore("127.0.0.1", 0, world, True, timeout=TIMEOUT, wait_for_workers=False)
    workers = start_processes(
        rank_main,
        args=(world, store.port, *rank_args),
        nprocs=world - 1,
        join=False,
        start_method="spawn",
    )
    try:
        dist.init_process_group(backend(device), store=store, rank=0, world_size=world, timeout=TIMEOUT)
        yield Ranks(0, world)
    except Exception as error:
        failure = first_failure(workers, FIRST_FAILURE_S)
        if failure is not None:
            raise UserError(failure) from error
        raise UserError(f"rank 0 of {world} failed: {one_line(error)}") from error
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()  # closes the connections: a rank still waiting fails at once
        end(workers)


def join_group(index: int, world: int, port: int, device: torch.device) -> Ranks:
    """In a rank that rank 0 spawned (`index` from 0: rank index + 1): join the job's process group."""
    store = TCPStore("127.0.0.1", port, world, False, timeout=TIMEOUT)
    rank = index + 1
    dist.init_process_group(backend(device), store=store, rank=rank, world_size=world, timeout=TIMEOUT)
    return Ranks(rank, world)


@contextmanager
def _slurm_group(rank: int, world: int, device: torch.device) -> Iterator[None]:
    import submitit  # noqa: PLC0415  (zenexp[sweep]; present in a Slurm job started by submitit)

    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    dist.init_process_group(backend(device), rank=rank, world_size=world, timeout=TIMEOUT)
    try:
        yield
    except Exception as error:
        raise UserError(f"rank {rank} of {world} failed: {one_line(error)}") from error
    finally:
        dist.destroy_process_group()


def first_failure(workers: ProcessContext, wait_s: float) -> str | None:
    """The first spawned rank to have failed, within `wait_s`, as one line."""
    try:
        workers.join(timeout=wait_s, grace_period=1.0)
    except ProcessRaisedException as error:
        last = str(error).strip().splitlines()[-1]
        log.debug("rank %d failed: %s", error.error_index + 1, error)
        return f"rank {error.error_index + 1} of {len(workers.processes) + 1} failed: {last}"
    except ProcessExitedException as error:
        how = f"killed by {error.signal_name}" if error.signal_name else f"exit status {error.exit_code}"
        return f"rank {error.error_index + 1} of {len(workers.processes) + 1} died ({how})"
    return None


def end(workers: ProcessContext) -> None:
    """Wait for the spawned ranks to exit; kill those still there after the wait."""
    deadline = time.monotonic() + FIRST_FAILURE_S
    try:
        while not workers.join(timeout=max(0.0, deadline - time.monotonic()), grace_period=1.0):
            if time.monotonic() >= deadline:
                break
    except (ProcessRaisedException, ProcessExitedException):
        pass  # reported by first_failure, or after rank 0's own error
    for process in workers.processes:
        if process.is_alive():
            process.kill()
        process.join()


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def die_with_parent() -> None:
    """In a spawned rank: end when rank 0's process ends, however it ends (Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
