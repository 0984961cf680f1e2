"""The task: load data, train, validate each epoch, checkpoint, test the model kept, record, and return a
`RunResult`."""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from zenexp.configs import Precision, TrackerConf, TrainerConf
from zenexp.data import loading
from zenexp.data.augment import Augmentation, Transform
from zenexp.data.datasets import ImageData
from zenexp.data.loading import Reader
from zenexp.errors import UserError
from zenexp.parallel import distributed, machine
from zenexp.parallel.distributed import Ranks
from zenexp.run import checkpoint, provenance, rundir
from zenexp.run.checkpoint import BEST, CHECKPOINT_DIR, LAST, Position
from zenexp.run.evaluation import evaluate
from zenexp.run.interrupts import Interrupted, Signals, deferred_signals
from zenexp.run.progress import Progress
from zenexp.sweep import search
from zenexp.tracking.recorder import Recorder

log = logging.getLogger("zenexp")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], LRScheduler]


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


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's CPU thread count for one run, given back after it (jobs in one process do not inherit it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
) -> RunResult:
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    device = machine.resolve_device(trainer.device)
    if resume and (finished := finished_result(output_dir, trainer.epochs, model)) is not None:
        return finished
    recorded = provenance.recorded_threads(output_dir) if resume else None
    # A job's Slurm tasks each choose for themselves, within the CPUs Slurm gave each task, and from those
    # alone (not from a moment's load), so that every rank takes the same count.
    tasks = distributed.slurm_tasks() is not None
    threads = machine.choose_threads(
        trainer.num_threads, 1 if tasks else trainer.devices, recorded, sample=not tasks
    )

    def job() -> tuple[object, ...]:
        """What a spawned rank needs: copies of the model and factories as built here (on the CPU)."""
        built = distributed.pickled((dataset, model, optim, scheduler, augment))
        return (built, trainer, seed, threads.count, device)

    with distributed.start(trainer.devices, trainer.nodes, device, job) as ranks:
        if not ranks.main:  # a Slurm task of the job: it trains its shards, rank 0 records
            follow(ranks, dataset, model, optim, scheduler, augment, trainer, seed, threads.count, device)
            return RunResult({}, output_dir)
        return lead(
            ranks,
            device,
            dataset,
            model,
            optim,
            scheduler,
            augment,
            trainer,
            tracker,
            seed,
            resume,
            zen_cfg,
            threads,
        )


def lead(
    ranks: Ranks,
    device: torch.device,
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
    threads: machine.Threads,
) -> RunResult:
    """Rank 0, the job's process: trains, and records everything."""
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    overrides = provenance.job_overrides()
    device = distributed.rank_device(device, ranks)
    reader, augmentation = prepare(dataset(), model, augment, trainer, ranks, seed, device)
    optimizer = optim(model.parameters())
    schedule = scheduler(optimizer)
    checkpoints = output_dir / CHECKPOINT_DIR
    if resume:
        position = checkpoint.load(checkpoints / LAST, model, optimizer, schedule)
        checkpoint.check_kept_model(checkpoints / BEST, model)
    else:
        name = tracker.experiment_name or experiment_name(overrides)
        position = Position(batch_order=torch.Generator().manual_seed(seed).get_state(), experiment_name=name)
    # The other ranks start where this one does (a resume's state, the batch order).
    ranks.from_rank_0(
        lambda: {
            "optimizer": distributed.on_cpu(optimizer.state_dict()),
            "scheduler": schedule.state_dict(),
            "position": position,
        }
    )
    network, trained = networks(model, trainer, ranks, device)
    position.epoch_loss, position.window_loss = (
        position.epoch_loss.to(device),
        position.window_loss.to(device),
    )
    if not resume:
        ranks.seed(seed)
    prune = search.pruning(hydra)  # a search's trial reports each epoch to its study
    # Everything that can fail without training has been tried: from here on this run writes its records
    # (until here, a refused or failed resume has left the run it names as it was), holding its lock.
    with rundir.in_use(output_dir, "run"):
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

        def save(name: str = LAST) -> None:
            position.rank_rng = ranks.random_states(device)
            checkpoint.save(checkpoints, name, model, optimizer, schedule, position)

        log.info("%s", reader.placement)  # here: a refused resume leaves the run's log as it was
        log.info(
            "training %s on %d %s images (%d for validation), %d epoch%s, on %s, torch threads %d (%s)%s",
            type(model).__name__,
            reader.count("train"),
            "x".join(map(str, reader.image_shape)),
            reader.count("val"),
            trainer.epochs,
            "" if trainer.epochs == 1 else "s",
            device,
            threads.count,
            threads.reason,
            f", {ranks.world} ranks ({distributed.backend(device)})" if ranks.world > 1 else "",
        )
        continues = (position.tracker_run_id, position.step) if resume else None
        sweep = str(hydra.sweep.dir) if hydra.mode == RunMode.MULTIRUN else None
        recorder = Recorder(tracker, zen_cfg, output_dir, position.experiment_name, continues, group=sweep)
        position.tracker_run_id = position.tracker_run_id or recorder.run_id
        with recorder, deferred_signals() as interrupted, torch_threads(threads.count):

            def stop(signum: int) -> None:
                save()
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
                raise Interrupted(signum, output_dir)

            while position.epoch <= trainer.epochs and not position.stopped_early:
                learning_rate = optimizer.param_groups[0]["lr"]
                speed = train_epoch(
                    trained,
                    optimizer,
                    reader,
                    augmentation,
                    trainer,
                    ranks,
                    position,
                    recorder,
                    save,
                    interrupted,
                    stop,
                )
                if end_epoch(
                    network, schedule, reader, trainer, ranks, position, recorder, learning_rate, speed, prune
                ):
                    save(BEST)
                save()
            # The model kept is the one of the best validation accuracy; the test split is evaluated once, on it.
            model.load_state_dict(checkpoint.read(checkpoints / BEST, to_resume=False)["model"])
            test = evaluate(network, reader.normalised_batches("test"), reader.classes)
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


class MetricsLog(Protocol):
    def log(self, metrics: Mapping[str, float], step: int) -> None: ...


class Unrecorded:
    """The records of a rank other than 0: none."""

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        pass


def networks(
    model: nn.Module, trainer: TrainerConf, ranks: Ranks, device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """The module that evaluates, and the one that trains (DDP over several ranks). torch.compile gives a
    module (typed as a callable) wrapping `model`; checkpoints save `model` itself."""
    network = cast(nn.Module, torch.compile(model)) if trainer.compile else model
    return network, ranks.wrap(network, device)


def follow(
    ranks: Ranks,
    dataset: Callable[[], ImageData],
    model: nn.Module,
    optim: OptimizerFactory,
    scheduler: SchedulerFactory,
    augment: Transform,
    trainer: TrainerConf,
    seed: int,
    threads: int,
    device: torch.device,
) -> None:
    """A rank other than 0: from rank 0's state, train this rank's shard of each batch, in step with the
    other ranks, until they stop; record nothing."""
    device = distributed.rank_device(device, ranks)
    reader, augmentation = prepare(dataset(), model, augment, trainer, ranks, seed, device)
    optimizer = optim(model.parameters())
    schedule = scheduler(optimizer)
    start: dict[str, Any] = ranks.from_rank_0(dict)
    optimizer.load_state_dict(start["optimizer"])
    schedule.load_state_dict(start["scheduler"])
    position: Position = start["position"]
    position.epoch_loss, position.window_loss = (
        position.epoch_loss.to(device),
        position.window_loss.to(device),
    )
    network, trained = networks(model, trainer, ranks, device)
    if position.rank_rng:  # resuming: this rank's random state when the checkpoint was saved
        distributed.set_random_state(device, position.rank_rng[ranks.rank])
    else:
        ranks.seed(seed)
    recorder = Unrecorded()

    def save(name: str = LAST) -> None:  # rank 0 saves; each rank gives it its random state
        ranks.random_states(device)

    def stop(signum: int) -> None:
        save()
        raise Interrupted(signum, Path())

    with deferred_signals() as interrupted, torch_threads(threads), suppress(Interrupted):
        while position.epoch <= trainer.epochs and not position.stopped_early:
            learning_rate = optimizer.param_groups[0]["lr"]
            speed = train_epoch(
                trained,
                optimizer,
                reader,
                augmentation,
                trainer,
                ranks,
                position,
                recorder,
                save,
                interrupted,
                stop,
            )
            if end_epoch(
                network,
                schedule,
                reader,
                trainer,
                ranks,
                position,
                recorder,
                learning_rate,
                speed,
                search.never,
            ):
                save(BEST)
            save()


def experiment_name(overrides: list[str]) -> str:
    """The overrides that make the experiment (not where or how it is recorded): `model=large,optim.lr=0.01`."""
    made = [o for o in overrides if not o.lstrip("+~").startswith(("tracker.", "resume="))]
    return ",".join(sorted(made)) or "defaults"


def finished_result(output_dir: Path, epochs: int, model: nn.Module) -> RunResult | None:
    """The result a finished run recorded in `summary.json` (numbers only: the file may come from anyone),
    if it has nothing left to train for `epochs` epochs. Its last checkpoint must be this run's model's."""
    last = output_dir / CHECKPOINT_DIR / LAST
    state = checkpoint.read(last)
    position = state["position"]
    if not (position["stopped_early"] or position["epoch"] > epochs):
        return None
    checkpoint.load_model(last, state, model)
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


def end_epoch(
    model: nn.Module,
    schedule: LRScheduler,
    reader: Reader,
    trainer: TrainerConf,
    ranks: Ranks,
    position: Position,
    recorder: MetricsLog,
    learning_rate: float,
    speed: float,
    prune: search.Prune,
) -> bool:
    """Validate, record, step the scheduler, and decide on stopping early (by patience, or as a search's
    pruner says); whether this epoch's model is the best so far (by validation accuracy). Rank 0 validates
    and asks the pruner; every rank decides from its answers."""
    val = ranks.from_rank_0(lambda: evaluate(model, reader.normalised_batches("val"), reader.classes))
    train_loss = position.epoch_loss.item() / position.step_in_epoch
    epoch_metrics = {
        "train/epoch_loss": train_loss,
        "val/loss": val.loss,
        "val/accuracy": val.accuracy,
        "train/lr": learning_rate,
        "train/images_per_s": speed,
    }
    recorder.log({**epoch_metrics, "epoch": position.epoch}, position.step)
    log.info(
        "epoch %d/%d: train loss %.4f, validation loss %.4f, accuracy %.4f",
        position.epoch,
        trainer.epochs,
        train_loss,
        val.loss,
        val.accuracy,
    )
    position.metrics = {"train_loss": train_loss}
    schedule.step()
    improved = val.accuracy > position.best_val_accuracy
    if improved:
        position.best_val_accuracy, position.best_epoch = val.accuracy, position.epoch
        position.epochs_without_improvement = 0
    else:
        position.epochs_without_improvement += 1
    patience = trainer.early_stop_patience
    waited_enough = patience is not None and position.epochs_without_improvement >= patience
    if waited_enough and position.epoch < trainer.epochs:
        position.stopped_early = True
        log.info(
            "stopping early after epoch %d: validation accuracy has not improved for %d epochs "
            "(best %.4f, epoch %d)",
            position.epoch,
            patience,
            position.best_val_accuracy,
            position.best_epoch,
        )
    if not position.stopped_early and ranks.from_rank_0(lambda: prune(val.accuracy, position.epoch)):
        if position.epoch < trainer.epochs:
            position.stopped_early = position.pruned = True
            log.info(
                "pruned after epoch %d: the search's pruner stops this trial (validation accuracy %.4f)",
                position.epoch,
                val.accuracy,
            )
    position.epoch, position.step_in_epoch = position.epoch + 1, 0
    position.epoch_loss = torch.zeros_like(position.epoch_loss)
    return improved


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    reader: Reader,
    augmentation: Augmentation,
    trainer: TrainerConf,
    ranks: Ranks,
    position: Position,
    recorder: MetricsLog,
    save: Callable[[], None],
    interrupted: Signals,
    stop: Callable[[int], None],
) -> float:
    """Train on `position.epoch` from `position.step_in_epoch` on, in the epoch's seeded batch order (each
    rank its shard of every batch); return the images trained on per second.

    Losses are summed on the device and read back only when logged: no host sync on other steps (on one
    device; several agree at every step on whether to stop).
    """
    model.train()
    mixed = torch.autocast(reader.device.type, torch.bfloat16, enabled=trainer.precision is Precision.bf16)
    started, images_trained = time.perf_counter(), 0
    generator = torch.Generator()
    assert position.batch_order is not None
    generator.set_state(position.batch_order)
    order = torch.randperm(reader.count("train"), generator=generator).to(reader.index_device)
    steps = math.ceil(len(order) / trainer.batch_size)
    if trainer.max_steps_per_epoch is not None:
        steps = min(steps, trainer.max_steps_per_epoch)
    batches = [order[i * trainer.batch_size : (i + 1) * trainer.batch_size] for i in range(steps)]
    shards = reader.batches("train", [ranks.shard(batch) for batch in batches[position.step_in_epoch :]])
    title = f"epoch {position.epoch}/{trainer.epochs}"
    with Progress(title, steps, position.step_in_epoch, shown=ranks.main) as progress:
        for i, (stored, labels) in zip(range(position.step_in_epoch, steps), shards, strict=True):
            images = reader.normalised(augmentation(stored, position.epoch, i))
            with mixed:
                loss = ranks.loss(model(images), labels, len(batches[i]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if trainer.grad_clip_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), trainer.grad_clip_norm)
            optimizer.step()
            loss, signum = ranks.after_step(loss.detach(), interrupted())
            position.step, position.step_in_epoch = position.step + 1, i + 1
            position.epoch_loss += loss
            position.window_loss += loss
            position.window_steps += 1
            if position.step % trainer.log_every_n_steps == 0:
                window_loss = position.window_loss.item() / position.window_steps
                recorder.log({"train/loss": window_loss}, position.step)
                progress.update(i + 1, window_loss)
                position.window_loss, position.window_steps = torch.zeros_like(position.window_loss), 0
            if trainer.checkpoint_every_n_steps and position.step % trainer.checkpoint_every_n_steps == 0:
                save()
            images_trained += len(batches[i])
            if signum is not None:
                stop(signum)
    position.batch_order = generator.get_state()  # the next epoch's order follows from here
    position.epoch_loss.item()  # wait for the device before reading the clock
    return images_trained / (time.perf_counter() - started)


def prepare(
    data: ImageData,
    model: nn.Module,
    augment: Transform,
    trainer: TrainerConf,
    ranks: Ranks,
    seed: int,
    device: torch.device,
) -> tuple[Reader, Augmentation]:
    """The run's batches, in memory or read per batch, and its augmentation; refuse, before training, an
    augmentation or an image shape the model cannot take. Moves the model to `device`."""
    ranks_here = 1 if distributed.slurm_tasks() is not None else trainer.devices
    reader = Reader(data, loading.choose(data, trainer.loader_workers, ranks_here), device)
    augmentation = Augmentation(augment, seed, ranks.rank)
    sample, _ = next(reader.batches("train", [torch.arange(min(2, reader.count("train")))]))
    augmentation.check(sample[0])
    model.to(device)
    check_fits(model, reader.normalised(sample))
    return reader, augmentation


def check_fits(model: nn.Module, images: torch.Tensor) -> None:
    """The model takes the dataset's images (one line if not: a shape its layers were not built for)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)
    except RuntimeError as error:
        shape = list(images.shape[1:])
        first = str(error).strip().splitlines()[0]
        raise UserError(
            f"model {type(model).__name__} cannot take the dataset's {shape} images ({first}); choose a "
            f"dataset.image_shape or a model that fit each other"
        ) from error
    finally:
        model.train(was_training)
