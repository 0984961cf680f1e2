"""The task: load data, train, evaluate, checkpoint, record, and return a `RunResult`."""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from torch import nn

from zenexp import checkpoint, provenance, rundir
from zenexp.checkpoint import BEST, CHECKPOINT_DIR, LAST, Position
from zenexp.configs import Precision, TrackerConf, TrainerConf
from zenexp.data import ImageData
from zenexp.errors import UserError
from zenexp.interrupts import Interrupted, deferred_signals
from zenexp.progress import Progress
from zenexp.tracking import Recorder

log = logging.getLogger("zenexp")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
EVAL_BATCH_SIZE = 1024


@dataclass(frozen=True)
class RunResult:
    """What a finished run returns: its final metrics and its run directory."""

    metrics: dict[str, float]
    output_dir: Path

    def __float__(self) -> float:
        """The objective of hyper-parameter searches (`hydra/sweeper=optuna`): the test accuracy."""
        return self.metrics["test_accuracy"]


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
    trainer: TrainerConf,
    tracker: TrackerConf,
    seed: int,
    resume: str | None,
    zen_cfg: DictConfig,
) -> RunResult:
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    overrides = provenance.job_overrides()
    device = resolve_device(trainer.device)
    if trainer.num_threads:
        torch.set_num_threads(trainer.num_threads)

    data = dataset().to(device)  # once: batches are sliced on the device
    model.to(device)
    optimizer = optim(model.parameters())
    # torch.compile gives a module (typed as a callable) wrapping `model`; checkpoints save `model` itself.
    network = cast(nn.Module, torch.compile(model)) if trainer.compile else model
    checkpoints = output_dir / CHECKPOINT_DIR
    if resume:
        position = checkpoint.load(checkpoints / LAST, model, optimizer)
    else:
        name = tracker.experiment_name or hydra.job.override_dirname or "defaults"
        position = Position(batch_order=torch.Generator().manual_seed(seed).get_state(), experiment_name=name)
    position.epoch_loss, position.window_loss = (
        position.epoch_loss.to(device),
        position.window_loss.to(device),
    )
    # Everything that can fail without training has been tried: from here on this run writes its records
    # (until here, a refused or failed resume has left the run it names as it was).
    rundir.begun.add(output_dir.resolve())
    if resume:
        provenance.note_resume(output_dir, position.step, overrides)
        log.info("resuming %s at epoch %d, step %d", output_dir, position.epoch, position.step)
    else:
        provenance.write_run_file(output_dir, overrides)
    # The config that gives this run's result (a resume may have added epochs).
    rundir.write_atomic(output_dir / rundir.CONFIG_FILE, OmegaConf.to_yaml(zen_cfg, resolve=True))

    def save(name: str = LAST) -> None:
        checkpoint.save(checkpoints, name, model, optimizer, position)

    log.info(
        "training %s on %d %s images, %d epochs, on %s",
        type(model).__name__,
        len(data.train_labels),
        "x".join(map(str, data.train_images.shape[1:])),
        trainer.epochs,
        device,
    )
    continues = (position.tracker_run_id, position.step) if resume else None
    sweep = str(hydra.sweep.dir) if hydra.mode == RunMode.MULTIRUN else None
    recorder = Recorder(tracker, zen_cfg, output_dir, position.experiment_name, continues, group=sweep)
    position.tracker_run_id = position.tracker_run_id or recorder.run_id
    with recorder, deferred_signals() as interrupted:

        def stop_if_interrupted() -> None:
            if (signum := interrupted()) is not None:
                save()
                raise Interrupted(signum, output_dir)

        while position.epoch <= trainer.epochs:
            speed = train_epoch(
                network, optimizer, data, trainer, position, recorder, save, stop_if_interrupted
            )
            accuracy, class_accuracy = evaluate(network, data)
            train_loss = position.epoch_loss.item() / position.step_in_epoch
            epoch_metrics = {
                "train/epoch_loss": train_loss,
                "test/accuracy": accuracy,
                "train/images_per_s": speed,
            }
            recorder.log({**epoch_metrics, "epoch": position.epoch}, position.step)
            log.info(
                "epoch %d/%d: train loss %.4f, test accuracy %.4f",
                position.epoch,
                trainer.epochs,
                train_loss,
                accuracy,
            )
            position.metrics = {"train_loss": train_loss, "test_accuracy": accuracy}
            position.metrics |= {
                f"test_accuracy/{c}": a for c, a in zip(data.classes, class_accuracy, strict=True)
            }
            position.epoch, position.step_in_epoch = position.epoch + 1, 0
            position.epoch_loss = torch.zeros_like(position.epoch_loss)
            if accuracy > position.best_accuracy:
                position.best_accuracy = accuracy
                save(BEST)
            save()
        rundir.save_torch(output_dir / "model.pt", model.state_dict())
        recorder.summarise(position.metrics, position.step)
    log.info("run recorded in %s", output_dir)
    return RunResult(dict(position.metrics), output_dir)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: ImageData,
    trainer: TrainerConf,
    position: Position,
    recorder: Recorder,
    save: Callable[[], None],
    stop_if_interrupted: Callable[[], None],
) -> float:
    """Train on `position.epoch` from `position.step_in_epoch` on, in the epoch's seeded batch order;
    return the images trained on per second.

    Losses are summed on the device and read back only when logged: no host sync on other steps.
    """
    model.train()
    mixed = torch.autocast(
        data.train_images.device.type, torch.bfloat16, enabled=trainer.precision is Precision.bf16
    )
    started, images = time.perf_counter(), 0
    generator = torch.Generator()
    assert position.batch_order is not None
    generator.set_state(position.batch_order)
    order = torch.randperm(len(data.train_labels), generator=generator).to(data.train_labels.device)
    steps = math.ceil(len(order) / trainer.batch_size)
    if trainer.max_steps_per_epoch is not None:
        steps = min(steps, trainer.max_steps_per_epoch)
    with Progress(f"epoch {position.epoch}/{trainer.epochs}", steps, position.step_in_epoch) as progress:
        for i in range(position.step_in_epoch, steps):
            batch = order[i * trainer.batch_size : (i + 1) * trainer.batch_size]
            with mixed:
                loss = F.cross_entropy(model(data.train_images[batch]), data.train_labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            position.step, position.step_in_epoch = position.step + 1, i + 1
            position.epoch_loss += loss.detach()
            position.window_loss += loss.detach()
            position.window_steps += 1
            if position.step % trainer.log_every_n_steps == 0:
                window_loss = position.window_loss.item() / position.window_steps
                recorder.log({"train/loss": window_loss}, position.step)
                progress.update(i + 1, window_loss)
                position.window_loss, position.window_steps = torch.zeros_like(position.window_loss), 0
            if trainer.checkpoint_every_n_steps and position.step % trainer.checkpoint_every_n_steps == 0:
                save()
            images += len(batch)
            stop_if_interrupted()
    position.batch_order = generator.get_state()  # the next epoch's order follows from here
    position.epoch_loss.item()  # wait for the device before reading the clock
    return images / (time.perf_counter() - started)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData) -> tuple[float, list[float]]:
    """Accuracy on the test split, overall and per class."""
    model.eval()
    images, labels = data.test_images, data.test_labels
    predictions = torch.cat(
        [model(images[i : i + EVAL_BATCH_SIZE]).argmax(1) for i in range(0, len(labels), EVAL_BATCH_SIZE)]
    )
    correct = predictions == labels
    num_classes = len(data.classes)
    per_class_total = torch.bincount(labels, minlength=num_classes).clamp(min=1)
    per_class_correct = torch.bincount(labels[correct], minlength=num_classes)
    return correct.float().mean().item(), (per_class_correct / per_class_total).tolist()
