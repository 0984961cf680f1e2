"""The task's training: start the run's ranks, train on each (`zenexp.run.trainer`), and on rank 0 record the
run (its directory, checkpoints, SwanLab), test the model kept, and return a `RunResult`."""

from __future__ import annotations

import logging
import os
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from torch import nn

from zenexp.configs import TrackerConf, TrainerConf
from zenexp.data.augment import Transform
from zenexp.data.datasets import ImageData
from zenexp.errors import UserError
from zenexp.parallel import distributed, machine
from zenexp.run import checkpoint, provenance, rundir
from zenexp.run.checkpoint import BEST, CHECKPOINT_DIR, LAST, Position
from zenexp.run.evaluation import evaluate
from zenexp.run.interrupts import deferred_signals
from zenexp.run.resume import ResumePlan
from zenexp.run.trainer import OptimizerFactory, Parts, SchedulerFactory, Trainer
from zenexp.sweep import search
from zenexp.tracking.recorder import Recorder

log = logging.getLogger("zenexp")


@dataclass(frozen=True)
class RunResult:
    """What a finished run returns: its final metrics, its run directory, and whether it stopped early (by
    its patience, or pruned by a search)."""

    metrics: dict[str, float]
    output_dir: Path
    stopped_early: bool = False
    pruned: bool = False

    def __float__(self) -> float:
        """The objective of hyper-parameter searches (`hydra/sweeper=lr_model_search`): the validation accuracy of
        the model kept (the test split is never used to choose)."""
        return self.metrics["val_accuracy"]


def make_reproducible(cfg: DictConfig) -> None:
    """Seed everything and use deterministic algorithms; runs before the model is built (a zen pre_call)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
    torch.use_deterministic_algorithms(True, warn_only=True)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)


def train(
    dataset: Callable[[], ImageData],
    model: nn.Module,
    optim: OptimizerFactory,
    scheduler: SchedulerFactory,
    augment: Transform,
    trainer: TrainerConf,
    tracker: TrackerConf,
    seed: int,
    resume: str | None,
    zen_cfg: DictConfig,
    plan: ResumePlan | None = None,
) -> RunResult:
    """The run: its ranks started (one, unless `trainer.devices` or `trainer.nodes` say more), each with a
    `Trainer`; rank 0 records (`record`), the others follow it."""
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    device = machine.resolve_device(trainer.device)
    if plan is not None and (finished := finished_result(output_dir, plan, trainer.epochs, model)):
        plan.release()
        return finished
    recorded = provenance.recorded_threads(output_dir) if plan is not None else None
    # A job's Slurm tasks each choose for themselves, within the CPUs Slurm gave each task, and from those
    # alone (not from a moment's load), so that every rank takes the same count.
    tasks = distributed.slurm_tasks() is not None
    threads = machine.choose_threads(
        trainer.num_threads, 1 if tasks else trainer.devices, recorded, sample=not tasks
    )
    parts = Parts(dataset, model, optim, scheduler, augment)

    def job() -> tuple[object, ...]:
        """What a spawned rank needs: copies of the parts as built here (on the CPU)."""
        return (distributed.pickled(parts), trainer, seed, threads.count, device)

    with distributed.start(trainer.devices, trainer.nodes, device, job) as ranks:
        if not ranks.main:  # a Slurm task of the job: it trains its shards, rank 0 records
            if plan is not None:
                plan.release()  # rank 0 loads the checkpoint; this rank starts from rank 0's state
            Trainer(parts, trainer, ranks, seed, device, threads.count).follow()
            return RunResult({}, output_dir)
        checkpoints = output_dir / CHECKPOINT_DIR
        fitter = Trainer(parts, trainer, ranks, seed, device, threads.count, checkpoints)
        return record(fitter, tracker, plan, zen_cfg, threads)


def record(
    fitter: Trainer,
    tracker: TrackerConf,
    plan: ResumePlan | None,
    zen_cfg: DictConfig,
    threads: machine.Threads,
) -> RunResult:
    """Rank 0, the job's process: trains with every rank, and records everything."""
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    overrides = provenance.job_overrides()
    settings, ranks, reader, model = fitter.settings, fitter.ranks, fitter.reader, fitter.model
    device = fitter.device
    assert fitter.checkpoints is not None
    checkpoints = fitter.checkpoints
    resume = plan is not None
    if plan is not None:
        assert plan.last is not None, "a plan is loaded once"
        try:
            position = checkpoint.load(
                checkpoints / LAST, plan.last, model, fitter.optimizer, fitter.schedule
            )
            checkpoint.check_kept_model(checkpoints / BEST, plan.kept, model)
        finally:
            plan.release()  # loaded (or refused): the model and optimizer hold what they need
    else:
        name = tracker.experiment_name or experiment_name(overrides)
        order = torch.Generator().manual_seed(fitter.seed).get_state()
        position = Position(batch_order=order, experiment_name=name)
    position = fitter.start(position, resumed=resume)
    prune = search.pruning(hydra)  # a search's trial reports each epoch to its study
    # Everything that can fail without training has been tried: from here on this run writes its records
    # (until here, a refused or failed resume has left the run it names as it was), holding its lock.
    with rundir.in_use(output_dir, "run"):
        if plan is not None and not plan.unchanged():  # written by another process since it was checked
            raise UserError(
                f"{output_dir}: its checkpoints changed while this resume prepared (another process wrote "
                f"them); nothing was touched: run zenexp resume {output_dir} again"
            )
        rundir.begun.add(output_dir.resolve())
        if resume:
            rundir.remove_evaluations(output_dir)  # they describe the model before this resume
            (output_dir / rundir.STATUS_FILE).unlink(missing_ok=True)  # aborted, until it ends again
            provenance.note_resume(output_dir, position.step, overrides)
            log.info("resuming %s at epoch %d, step %d", output_dir, position.epoch, position.step)
        else:
            provenance.write_run_file(output_dir, overrides, threads.count)
        # The config that gives this run's result (a resume may have added epochs).
        rundir.write_atomic(output_dir / rundir.CONFIG_FILE, OmegaConf.to_yaml(zen_cfg, resolve=True))
        log.info("%s", reader.placement)  # here: a refused resume leaves the run's log as it was
        log.info(
            "training %s on %d %s images (%d for validation), %d epoch%s, on %s, torch threads %d (%s)%s",
            type(model).__name__,
            reader.count("train"),
            "x".join(map(str, reader.image_shape)),
            reader.count("val"),
            settings.epochs,
            "" if settings.epochs == 1 else "s",
            device,
            threads.count,
            threads.reason,
            f", {ranks.world} ranks ({distributed.backend(device)})" if ranks.world > 1 else "",
        )
        continues = (position.tracker_run_id, position.step) if resume else None
        sweep = str(hydra.sweep.dir) if hydra.mode == RunMode.MULTIRUN else None
        recorder = Recorder(tracker, zen_cfg, output_dir, position.experiment_name, continues, group=sweep)
        position.tracker_run_id = position.tracker_run_id or recorder.run_id
        with recorder, deferred_signals() as interrupted, machine.torch_threads(threads.count):

            def aborted(signum: int) -> None:
                name = signal.Signals(signum).name
                rundir.write_status(
                    output_dir, "aborted", signal=name, epoch=position.epoch, step=position.step
                )
                log.warning(
                    "aborted by %s in epoch %d, at step %d; checkpoint saved: continue with zenexp resume %s",
                    name,
                    position.epoch,
                    position.step,
                    output_dir,
                )
                interrupted.hand_over(signum)  # submitit, preempted: it requeues the job, which resumes

            fitter.fit(position, recorder, interrupted, aborted, prune)
            # The model kept is the one of the best validation accuracy; the test split is evaluated once, on it.
            model.load_state_dict(checkpoint.read(checkpoints / BEST, to_resume=False)["model"])
            test = evaluate(fitter.network, reader.normalised_batches("test"), reader.classes)
            rundir.save_torch(output_dir / "model.pt", model.state_dict())
            metrics = {
                **position.metrics,
                "epochs": position.epoch - 1,
                "best_epoch": position.best_epoch,
                "val_accuracy": position.best_val_accuracy,
                **test.metrics("test"),
            }
            facts = {"stopped_early": position.stopped_early, **({"pruned": True} if position.pruned else {})}
            recorder.summarise(metrics, position.step, facts)
        log.info(
            "test accuracy %.4f, of the model of epoch %d (best validation accuracy %.4f)",
            test.accuracy,
            position.best_epoch,
            position.best_val_accuracy,
        )
        log.info("run recorded in %s", output_dir)
        return RunResult(metrics, output_dir, position.stopped_early, position.pruned)


def experiment_name(overrides: list[str]) -> str:
    """The overrides that make the experiment (not where or how it is recorded): `model=large,optim.lr=0.01`."""
    made = [o for o in overrides if not o.lstrip("+~").startswith(("tracker.", "resume="))]
    return ",".join(sorted(made)) or "defaults"


def finished_result(output_dir: Path, plan: ResumePlan, epochs: int, model: nn.Module) -> RunResult | None:
    """The result a finished run recorded in `summary.json` (numbers only: the file may come from anyone),
    if it has nothing left to train for `epochs` epochs. Its last checkpoint must be this run's model's."""
    position = plan.position
    if not (position["stopped_early"] or position["epoch"] > epochs):
        return None
    assert plan.last is not None, "a plan is loaded once"
    checkpoint.load_model(output_dir / CHECKPOINT_DIR / LAST, plan.last, model)
    path = output_dir / rundir.SUMMARY_FILE
    if not path.is_file():
        return None  # trained to the end, but killed before its test: the resume tests it
    summary = rundir.read_json(path)
    metrics = {
        k: float(v) for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    if "val_accuracy" not in metrics:
        raise UserError(f"{path}: no val_accuracy; the file is damaged")
    log.info(
        "nothing to do: %s has trained its %d epochs; to train longer: zenexp resume %s trainer.epochs=N",
        output_dir,
        position["epoch"] - 1,
        output_dir,
    )
    return RunResult(metrics, output_dir, summary.get("stopped_early") is True, summary.get("pruned") is True)
