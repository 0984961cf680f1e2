"""Settings, not builders: how to train (`TrainerConf`) and where SwanLab records (`TrackerConf`); each
targets its own public name, so the task receives a typed instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated

from annotated_types import Ge, Gt, Interval
from typing_extensions import Doc

from zenexp.configs.fields import ThreadCount, Words

# ---- trainer and tracker --------------------------------------------------------------------------------
# Settings, not builders: each targets its own class, so the task receives a typed instance.


class Precision(Enum):
    fp32 = "fp32"
    bf16 = "bf16"


@dataclass
class TrainerConf:
    """How to train."""

    epochs: Annotated[int, Ge(1), Doc("passes over the training split")] = 4
    batch_size: Annotated[
        int, Ge(1), Doc("images per step (the lesson's 4); with several devices, over all of them together")
    ] = 4
    max_steps_per_epoch: Annotated[
        int | None, Ge(1), Doc("stop each epoch after this many steps (the lesson's `if i > 5: break`)")
    ] = None
    log_every_n_steps: Annotated[int, Ge(1), Doc("record the training loss every this many steps")] = 50
    checkpoint_every_n_steps: Annotated[
        int | None, Ge(1), Doc("also checkpoint every this many steps (every epoch always)")
    ] = None
    device: Annotated[str, Doc("auto (cuda when present, else cpu), cpu, cuda or cuda:N")] = "auto"
    devices: Annotated[
        int,
        Interval(ge=1, le=64),
        Doc("train on this many devices per node, data-parallel: CUDA devices, or CPU processes (gloo)"),
    ] = 1
    nodes: Annotated[
        int,
        Interval(ge=1, le=1024),
        Doc("nodes, each with trainer.devices ranks (Slurm: hydra/launcher=slurm)"),
    ] = 1
    # auto: the cores this job may use, shared with the jobs and ranks beside it, no more than are idle
    # (zenexp.parallel.machine; docs/performance.md, "Threads"; benchmarks/threads.py).
    num_threads: Annotated[
        ThreadCount,
        Interval(ge=0, le=1024),
        Words(("auto",)),
        Doc(
            "CPU threads for torch; auto: this job's share of the idle cores; 0: torch's default "
            "(the count used is recorded in run.json)"
        ),
    ] = "auto"
    # auto: half this job's share of the cores (zenexp.data.loading.workers_for).
    loader_workers: Annotated[
        ThreadCount,
        Interval(ge=0, le=64),
        Words(("auto",)),
        Doc(
            "processes that read images per batch (a dataset not held in memory), and read a folder into "
            "memory; 0: the training process itself; auto: half this job's share of the cores, at most 8"
        ),
    ] = "auto"
    precision: Annotated[Precision, Doc("fp32, or bf16 mixed precision (autocast)")] = Precision.fp32
    compile: Annotated[bool, Doc("torch.compile the model: slow first steps, faster after")] = False
    early_stop_patience: Annotated[
        int | None, Ge(1), Doc("stop when validation accuracy has not improved for this many epochs")
    ] = None
    grad_clip_norm: Annotated[
        float | None, Gt(0), Doc("clip the gradients' total norm to this (torch.nn.utils.clip_grad_norm_)")
    ] = None
    _target_: str = field(default="zenexp.configs.TrainerConf", init=False, repr=False)


class TrackerMode(Enum):
    offline = "offline"  # record on disk, no account needed
    local = "local"  # on disk, for the local dashboard (pip install 'swanlab[dashboard]')
    cloud = "cloud"  # upload to swanlab.cn; reads SWANLAB_API_KEY
    disabled = "disabled"  # no SwanLab run; the run directory still records everything


@dataclass
class TrackerConf:
    """Where SwanLab records the run."""

    mode: Annotated[TrackerMode, Doc("offline, local, cloud (needs SWANLAB_API_KEY) or disabled")] = (
        TrackerMode.offline
    )
    project: Annotated[str, Doc("SwanLab project")] = "zenexp"
    experiment_name: Annotated[str | None, Doc("null: named after the command-line overrides")] = None
    tags: Annotated[list[str], Doc("SwanLab tags")] = field(default_factory=list)
    description: Annotated[str | None, Doc("SwanLab description")] = None
    logdir: Annotated[str, Doc("SwanLab's folder; a relative path is inside the run directory")] = "swanlog"
    banners: Annotated[
        bool, Doc("show SwanLab's own messages (its banner, the sync hint) on the console; always in the log")
    ] = False
    setup_timeout_s: Annotated[
        float, Gt(0), Doc("cloud: give up reaching the server after this long, and record offline")
    ] = 10.0
    _target_: str = field(default="zenexp.configs.TrackerConf", init=False, repr=False)
