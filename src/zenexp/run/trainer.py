"""One rank's training: its model, optimizer, schedule and batches, and the loop every rank runs (`fit`):
train an epoch in the seeded batch order (each rank its shard of every batch), validate, step the schedule,
checkpoint, and stop early when patience or a search's pruner says so. Rank 0 records and writes the
checkpoints; the other ranks run the same loop in step, from rank 0's starting state, and record nothing."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from zenexp.configs import Precision, TrainerConf
from zenexp.data import loading
from zenexp.data.augment import Augmentation, Transform
from zenexp.data.datasets import ImageData
from zenexp.data.loading import Reader
from zenexp.errors import UserError
from zenexp.parallel import distributed
from zenexp.parallel.distributed import Ranks
from zenexp.parallel.machine import torch_threads
from zenexp.run import checkpoint
from zenexp.run.checkpoint import BEST, LAST, Position
from zenexp.run.evaluation import evaluate
from zenexp.run.interrupts import Interrupted, Signals, deferred_signals
from zenexp.run.progress import Progress
from zenexp.sweep import search

log = logging.getLogger("zenexp")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], LRScheduler]


@dataclass(frozen=True)
class Parts:
    """What the task builds from its config, the same on every rank (a spawned rank gets pickled copies)."""

    dataset: Callable[[], ImageData]
    model: nn.Module
    optim: OptimizerFactory
    scheduler: SchedulerFactory
    augment: Transform


class MetricsLog(Protocol):
    def log(self, metrics: Mapping[str, float], step: int) -> None: ...


class Unrecorded:
    """The records of a rank other than 0: none."""

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        pass


class Trainer:
    """One rank of a run: what it trains and how. Building it reads the data and checks, before any record
    is written, that the model takes the images and the augmentation fits them."""

    def __init__(
        self,
        parts: Parts,
        settings: TrainerConf,
        ranks: Ranks,
        seed: int,
        device: torch.device,
        threads: int,
        checkpoints: Path | None = None,
    ) -> None:
        self.settings, self.ranks, self.seed, self.threads = settings, ranks, seed, threads
        self.checkpoints = checkpoints  # rank 0's checkpoint folder; None on the other ranks
        self.device = distributed.rank_device(device, ranks)
        self.model = parts.model
        self.reader, self.augmentation = prepare(
            parts.dataset(), parts.model, parts.augment, settings, ranks, seed, self.device
        )
        self.optimizer = parts.optim(self.model.parameters())
        self.schedule = parts.scheduler(self.optimizer)
        self.network, self.trained = self.model, self.model

    def start(self, position: Position | None = None, resumed: bool = False) -> Position:
        """Every rank starts where rank 0 does (`position`: a resume's state, or a new run's batch order),
        with its own random stream; the modules to evaluate and to train (DDP over several ranks) are made
        from the model as loaded."""
        start: dict[str, Any] = self.ranks.from_rank_0(
            lambda: {
                "optimizer": distributed.on_cpu(self.optimizer.state_dict()),
                "scheduler": self.schedule.state_dict(),
                "position": position,
            }
        )
        if not self.ranks.main:  # rank 0's own optimizer and schedule are the ones it sent
            self.optimizer.load_state_dict(start["optimizer"])
            self.schedule.load_state_dict(start["scheduler"])
        position = cast(Position, start["position"])
        position.epoch_loss = position.epoch_loss.to(self.device)
        position.window_loss = position.window_loss.to(self.device)
        self.network, self.trained = networks(self.model, self.settings, self.ranks, self.device)
        if self.ranks.main:
            if not resumed:
                self.ranks.seed(self.seed)
        elif position.rank_rng:  # resuming: this rank's random state when the checkpoint was saved
            distributed.set_random_state(self.device, position.rank_rng[self.ranks.rank])
        else:
            self.ranks.seed(self.seed)
        return position

    def fit(
        self,
        position: Position,
        recorder: MetricsLog,
        interrupted: Signals,
        on_abort: Callable[[int], None],
        prune: search.Prune = search.never,
    ) -> None:
        """Train from `position` until the last epoch or an early stop, checkpointing every epoch (and the
        best model by validation accuracy). A signal saves a checkpoint, calls `on_abort` and raises
        `Interrupted`."""
        while position.epoch <= self.settings.epochs and not position.stopped_early:
            learning_rate = self.optimizer.param_groups[0]["lr"]
            speed = self.train_epoch(position, recorder, interrupted, on_abort)
            if self.end_epoch(position, recorder, learning_rate, speed, prune):
                self.save(position, BEST)
            self.save(position)

    def follow(self) -> None:
        """A rank other than 0: from rank 0's state, train this rank's shard of each batch, in step with the
        other ranks, until they stop."""
        position = self.start()
        with deferred_signals() as interrupted, torch_threads(self.threads), suppress(Interrupted):
            self.fit(position, Unrecorded(), interrupted, on_abort=lambda signum: None)

    def save(self, position: Position, name: str = LAST) -> None:
        """Rank 0 writes the checkpoint `name`; every rank gives it its random state."""
        position.rank_rng = self.ranks.random_states(self.device)
        if self.checkpoints is not None:
            checkpoint.save(self.checkpoints, name, self.model, self.optimizer, self.schedule, position)

    def end_epoch(
        self,
        position: Position,
        recorder: MetricsLog,
        learning_rate: float,
        speed: float,
        prune: search.Prune,
    ) -> bool:
        """Validate, record, step the scheduler, and decide on stopping early (by patience, or as a search's
        pruner says); whether this epoch's model is the best so far (by validation accuracy). Rank 0 validates
        and asks the pruner; every rank decides from its answers."""
        ranks, trainer, reader = self.ranks, self.settings, self.reader
        val = ranks.from_rank_0(
            lambda: evaluate(self.network, reader.normalised_batches("val"), reader.classes)
        )
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
        self.schedule.step()
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
        self, position: Position, recorder: MetricsLog, interrupted: Signals, on_abort: Callable[[int], None]
    ) -> float:
        """Train on `position.epoch` from `position.step_in_epoch` on, in the epoch's seeded batch order (each
        rank its shard of every batch); return the images trained on per second.

        Losses are summed on the device and read back only when logged: no host sync on other steps (on one
        device; several agree at every step on whether to stop).
        """
        model, reader, trainer, ranks = self.trained, self.reader, self.settings, self.ranks
        model.train()
        mixed = torch.autocast(
            reader.device.type, torch.bfloat16, enabled=trainer.precision is Precision.bf16
        )
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
                images = reader.normalised(self.augmentation(stored, position.epoch, i))
                with mixed:
                    loss = ranks.loss(model(images), labels, len(batches[i]))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if trainer.grad_clip_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), trainer.grad_clip_norm)
                self.optimizer.step()
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
                    self.save(position)
                images_trained += len(batches[i])
                if signum is not None:
                    self.save(position)
                    on_abort(signum)
                    raise Interrupted(signum, self.checkpoints.parent if self.checkpoints else Path())
        position.batch_order = generator.get_state()  # the next epoch's order follows from here
        position.epoch_loss.item()  # wait for the device before reading the clock
        return images_trained / (time.perf_counter() - started)


def networks(
    model: nn.Module, trainer: TrainerConf, ranks: Ranks, device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """The module that evaluates, and the one that trains (DDP over several ranks). torch.compile gives a
    module (typed as a callable) wrapping `model`; checkpoints save `model` itself."""
    network = cast(nn.Module, torch.compile(model)) if trainer.compile else model
    return network, ranks.wrap(network, device)


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
