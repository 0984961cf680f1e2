"""The task: seed, load data, train, evaluate, record, and return a `RunResult`."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch import nn

from zenexp.configs import TrackerConf, TrainerConf
from zenexp.data import ImageData
from zenexp.errors import UserError
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


def resolve_device(name: str) -> torch.device:
    """`auto` is cuda when a GPU is present, else cpu; an explicit cuda device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"trainer.device={name}: not a device; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name}: no CUDA device is present; use trainer.device=auto or cpu")
    return device


def seed_everything(cfg: DictConfig) -> None:
    """Runs before the model is built, so its initial weights follow `seed` too."""
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
    zen_cfg: DictConfig,
) -> RunResult:
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    device = resolve_device(trainer.device)
    if trainer.num_threads:
        torch.set_num_threads(trainer.num_threads)

    data = dataset().to(device)
    model.to(device)
    optimizer = optim(model.parameters())
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(zen_cfg, resolve=True), encoding="utf-8")
    log.info(
        "training %s on %d images (%s), %d epochs, on %s",
        type(model).__name__,
        len(data.train_labels),
        ", ".join(data.classes[:3]) + ", ...",
        trainer.epochs,
        device,
    )

    generator = torch.Generator().manual_seed(seed)
    name = hydra.job.override_dirname or "defaults"
    with Recorder(tracker, zen_cfg, output_dir, experiment_name=name) as recorder:
        step = 0
        for epoch in range(1, trainer.epochs + 1):
            train_loss, step = train_epoch(model, optimizer, data, trainer, generator, recorder, step, epoch)
            accuracy, class_accuracy = evaluate(model, data)
            recorder.log({"train/epoch_loss": train_loss, "test/accuracy": accuracy, "epoch": epoch}, step)
            log.info(
                "epoch %d/%d: train loss %.4f, test accuracy %.4f",
                epoch,
                trainer.epochs,
                train_loss,
                accuracy,
            )
        torch.save(model.state_dict(), output_dir / "model.pt")
        metrics = {"train_loss": train_loss, "test_accuracy": accuracy}
        metrics |= {f"test_accuracy/{c}": a for c, a in zip(data.classes, class_accuracy, strict=True)}
        recorder.summarise(metrics, step)
    log.info("run recorded in %s", output_dir)
    return RunResult(metrics, output_dir)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: ImageData,
    trainer: TrainerConf,
    generator: torch.Generator,
    recorder: Recorder,
    step: int,
    epoch: int,
) -> tuple[float, int]:
    """One pass over a seeded permutation of the training set; returns the mean loss and the last step."""
    model.train()
    order = torch.randperm(len(data.train_labels), generator=generator).to(data.train_labels.device)
    steps = math.ceil(len(order) / trainer.batch_size)
    if trainer.max_steps_per_epoch is not None:
        steps = min(steps, trainer.max_steps_per_epoch)
    # Losses are summed on the device and read back only when logged: no host sync on the other steps.
    epoch_total = window_total = torch.zeros((), device=data.train_labels.device)
    window_steps = 0
    with Progress(f"epoch {epoch}/{trainer.epochs}", steps) as progress:
        for i in range(steps):
            batch = order[i * trainer.batch_size : (i + 1) * trainer.batch_size]
            loss = F.cross_entropy(model(data.train_images[batch]), data.train_labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            epoch_total = epoch_total + loss.detach()
            window_total = window_total + loss.detach()
            window_steps += 1
            if step % trainer.log_every_n_steps == 0:
                window_loss = window_total.item() / window_steps
                recorder.log({"train/loss": window_loss}, step)
                progress.update(i + 1, window_loss)
                window_total, window_steps = torch.zeros_like(window_total), 0
    return epoch_total.item() / steps, step


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
