"""Checks of a composed config that its field types cannot express, run before anything is built."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from zenexp.configs import TrackerConf
from zenexp.errors import UserError
from zenexp.tracking import check_tracker


def resolve_device(name: str) -> torch.device:
    """`auto` is cuda when a GPU is present, else cpu; an explicit cuda device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"trainer.device={name} is not a device; use auto, cpu or cuda[:N]") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(
            f"trainer.device={name} but no CUDA device is present; use trainer.device=auto or cpu"
        )
    return device


def check_config(cfg: DictConfig) -> None:
    trainer = cfg.trainer
    for name in ("epochs", "batch_size", "log_every_n_steps"):
        if trainer[name] < 1:
            raise UserError(f"trainer.{name}={trainer[name]} must be at least 1")
    if trainer.max_steps_per_epoch is not None and trainer.max_steps_per_epoch < 1:
        raise UserError(
            f"trainer.max_steps_per_epoch={trainer.max_steps_per_epoch} must be at least 1 or null"
        )
    resolve_device(trainer.device)
    check_tracker(TrackerConf(mode=cfg.tracker.mode))
