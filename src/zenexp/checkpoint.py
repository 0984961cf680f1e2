"""Checkpoints: everything needed to continue a run exactly where it stopped, written atomically."""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


@dataclass
class Position:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 1  # the epoch in progress
    step: int = 0  # optimizer steps done in the whole run
    step_in_epoch: int = 0  # steps done in `epoch`
    batch_order: torch.Tensor | None = None  # the batch-order generator's state when `epoch` began
    epoch_loss: torch.Tensor = field(default_factory=lambda: torch.zeros(()))  # sum of this epoch's losses
    window_loss: torch.Tensor = field(default_factory=lambda: torch.zeros(()))  # sum since the last log
    window_steps: int = 0
    best_accuracy: float = -1.0
    metrics: dict[str, float] = field(default_factory=dict)  # of the last finished epoch
    experiment_name: str = ""
    tracker_run_id: str | None = None  # the SwanLab run that recorded the first part


def save(
    directory: Path, name: str, model: nn.Module, optimizer: torch.optim.Optimizer, position: Position
) -> Path:
    """Write `directory/name`: write a temporary file, then rename, so a kill never leaves half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    temporary = path.with_suffix(".tmp")
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "position": asdict(position),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate(),
            "numpy": np.random.get_state(),
        },
    }
    torch.save(state, temporary)
    os.replace(temporary, path)
    return path


def load(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> Position:
    """Restore model, optimizer and random states from `path`; return where training stood."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    return Position(**state["position"])
