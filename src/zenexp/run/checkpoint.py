"""Checkpoints: everything needed to continue a run exactly where it stopped, written atomically."""

from __future__ import annotations

import pickle
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Union, cast, get_args, get_origin, get_type_hints

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from zenexp.errors import UserError
from zenexp.run import rundir
from zenexp.run.rundir import BEST, CHECKPOINT_DIR, LAST

__all__ = ["BEST", "CHECKPOINT_DIR", "LAST", "Position", "load", "read", "save"]
KEYS = {"model", "optimizer", "scheduler", "position", "rng"}


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
    best_val_accuracy: float = -1.0
    best_epoch: int = 0  # the epoch of `best_val_accuracy`, saved in best.pt
    epochs_without_improvement: int = 0  # for early stopping
    stopped_early: bool = False
    pruned: bool = False  # stopped by a search's pruner
    metrics: dict[str, float] = field(default_factory=dict)  # of the last finished epoch
    experiment_name: str = ""
    tracker_run_id: str | None = None  # the SwanLab run that recorded the first part
    # With several devices, each rank's random state on its device (dropout draws differ by rank).
    rank_rng: list[torch.Tensor] = field(default_factory=list)


def save(
    directory: Path,
    name: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    position: Position,
) -> Path:
    """Write `directory/name` atomically and fsynced: a kill or a full disk never leaves half a file.

    Only tensors, numbers, strings and plain containers go in, so `read` can load it with
    `weights_only=True`: a checkpoint from elsewhere can hold nothing that runs code."""
    path = directory / name
    _, keys, *numpy_position = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "position": asdict(position),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate(),
            "numpy": [torch.from_numpy(keys.astype(np.int64)), *numpy_position],
        },
    }
    rundir.save_torch(path, state)
    return path


def read(path: Path, to_resume: bool = True) -> dict[str, Any]:
    """A checkpoint's contents, loaded with `weights_only=True`; anything else is one line naming the file
    (and, `to_resume`, what else the run can be continued from)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not KEYS <= state.keys():
            raise ValueError("not a zenexp checkpoint")
        _check_position(state["position"])
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error):  # torch names the global it refused to import
            reason = "it holds objects other than tensors and numbers; loading those could run code, so it is refused"
        else:
            reason = "damaged (not a checkpoint torch can read)"
        raise _unreadable(path, reason, to_resume) from error
    except Exception as error:  # noqa: BLE001  (truncated, empty, garbage: torch raises many kinds)
        detail = str(error).splitlines()[0] if str(error) else "damaged"
        raise _unreadable(path, f"{type(error).__name__}: {detail}", to_resume) from error
    return state


def _check_position(position: Any) -> None:
    """Every field of `Position`, with a value of its type (a damaged or forged file fails here, before any
    of the run's records is touched)."""
    hints = get_type_hints(Position)
    if isinstance(position, dict):
        position.setdefault("rank_rng", [])  # written before zenexp trained on several devices
        position.setdefault("pruned", False)  # written before searches pruned
    if not isinstance(position, dict) or position.keys() != hints.keys():
        raise ValueError("its position is not a zenexp position")
    for name, hint in hints.items():
        if not _fits(position[name], hint):
            raise ValueError(f"its position.{name} is not {hint}")
        if hint is int and position[name] < (1 if name == "epoch" else 0):
            raise ValueError(f"its position.{name} is {position[name]}")


def _fits(value: Any, hint: Any) -> bool:
    if get_origin(hint) in (Union, UnionType):
        return any(_fits(value, option) for option in get_args(hint))
    if get_origin(hint) is list:
        (item_type,) = get_args(hint)
        return isinstance(value, list) and all(_fits(item, item_type) for item in value)
    if get_origin(hint) is dict:
        key_type, value_type = get_args(hint)
        return isinstance(value, dict) and all(
            _fits(k, key_type) and _fits(v, value_type) for k, v in value.items()
        )
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return value is None if hint is type(None) else isinstance(value, hint)


# What a scheduler's state holds that changes as it steps; the rest are its settings, from the config.
SCHEDULER_PROGRESS = {"last_epoch": int, "_step_count": int, "_last_lr": list}


def _check_scheduler(saved: Any, scheduler: LRScheduler) -> None:
    """`load_state_dict` of a scheduler takes any dict silently: the saved state must be this scheduler's,
    with the config's settings and progress of the right types."""
    fresh = scheduler.state_dict()
    if not isinstance(saved, dict) or saved.keys() != fresh.keys():
        raise ValueError(f"its scheduler state is not {type(scheduler).__name__}'s")
    for key, value in fresh.items():
        kind = SCHEDULER_PROGRESS.get(key)
        if kind is None and saved[key] != value:
            raise ValueError(f"its scheduler's {key} is {saved[key]!r}, but the run's config gives {value!r}")
        if kind is not None and (not isinstance(saved[key], kind) or isinstance(saved[key], bool)):
            raise ValueError(f"its scheduler's {key} is not {kind.__name__}")
    if saved["last_epoch"] < 0 or not all(_fits(lr, float) for lr in saved["_last_lr"]):
        raise ValueError("its scheduler's progress is damaged")


def kept_model(directory: Path, position: dict[str, Any]) -> dict[str, Any] | None:
    """best.pt, the model a run keeps and tests at its end, read and checked, given the `position` the run
    would continue from (None before an epoch has finished); what is wrong with it is one line."""
    if position["best_epoch"] < 1:
        return None  # no epoch finished yet: no best.pt to keep
    path = directory / BEST
    if not path.is_file():
        raise UserError(
            f"{path} is missing: the run's kept model (best validation accuracy) is gone; start the run afresh"
        )
    try:
        return read(path, to_resume=False)
    except UserError as error:
        raise UserError(f"{error}; it is the run's kept model: start the run afresh") from error


def check_kept_model(path: Path, kept: dict[str, Any] | None, model: nn.Module) -> None:
    """best.pt (`kept`, as `kept_model` read it) holds weights for `model` (a resume checks this before it
    touches the run)."""
    if kept is None:
        return
    weights = kept["model"]
    shapes = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    if {name: tuple(getattr(tensor, "shape", ())) for name, tensor in weights.items()} != shapes:
        raise UserError(
            f"{path} is not this run's model (its weights have other names or shapes); start the run afresh"
        )


def _unreadable(path: Path, reason: str, to_resume: bool = True) -> UserError:
    if not to_resume:
        return UserError(f"{path}: cannot use it: {reason}")
    other = path.with_name(BEST if path.name != BEST else LAST)
    try:
        epoch = int(torch.load(other, map_location="cpu", weights_only=True)["position"]["epoch"]) - 1
        alternative = (
            f"{other} (end of epoch {epoch}) is intact: copy it over {path.name} to continue from there"
        )
    except Exception:  # noqa: BLE001
        alternative = "no other checkpoint of this run is intact: start the run afresh"
    return UserError(f"{path}: cannot resume from it: {reason}; {alternative}")


def load(
    path: Path,
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
) -> Position:
    """Restore model, optimizer, scheduler and random states from the checkpoint `read` from `path`; return
    where training stood."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _check_scheduler(state["scheduler"], scheduler)
        scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        version, internal, gauss_next = rng["python"]
        random.setstate((version, tuple(internal), gauss_next))
        keys, *rest = rng["numpy"]
        np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), *rest))
    except Exception as error:  # noqa: BLE001  (shapes, keys, states: torch and numpy raise many kinds)
        raise _does_not_fit(path, error) from error
    return Position(**state["position"])


def load_model(path: Path, state: dict[str, Any], model: nn.Module) -> None:
    """The weights of a checkpoint `read` from `path` into `model`, refused as `load` refuses them."""
    try:
        model.load_state_dict(state["model"])
    except Exception as error:  # noqa: BLE001
        raise _does_not_fit(path, error) from error


def _does_not_fit(path: Path, error: Exception) -> UserError:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return _unreadable(path, f"it does not fit this run's model and optimizer ({detail})")
