"""Every use of Hydra's and OmegaConf's private internals, one shim each. Each has a test
(tests/test_compat.py) that fails when a release changes what the shim relies on: upgrading Hydra or
OmegaConf means reading this file and running those tests.

One internal is imported where it is used: `hydra_plugins.zenexp_plugins.GridSweeper` extends Hydra's
`BasicSweeper`. Hydra executes plugin modules again when it scans them (the core plugins' too), so the
subclass must take the class from Hydra's module as the plugin module is executed, not from here."""

from __future__ import annotations

import argparse
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins import basic_sweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn
from omegaconf import Container, DictConfig, Node

__all__ = [
    "apply_overrides",
    "failure_of",
    "child_node",
    "hydra_argument_parser",
    "is_interpolation",
    "is_missing",
    "is_none",
    "job_root",
    "sweep_jobs",
]


def hydra_argument_parser() -> argparse.ArgumentParser:
    """The parser of Hydra's own command line (`--cfg`, `-m`, `--info`, overrides), as `@hydra.main` uses it."""
    return get_args_parser()


def apply_overrides(overrides: list[Override], cfg: DictConfig) -> None:
    """Apply parsed value overrides to a composed config, in place, exactly as Hydra applies them while it
    composes."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


def sweep_jobs(overrides: list[Override]) -> list[list[str]]:
    """The jobs Hydra's basic sweeper makes of parsed overrides: `a=1,2 b=x,y` gives four."""
    split = basic_sweeper.BasicSweeper.split_arguments  # as Hydra's latest scan executed it
    return [point for batch in split(overrides, None) for point in batch]


def failure_of(job_return: JobReturn) -> Any:
    """What a failed job raised: Hydra keeps it where `JobReturn.return_value` would raise it again."""
    return job_return._return_value


def child_node(container: Container, key: Any) -> Node | None:
    """A child as OmegaConf stores it (a node, its interpolation unresolved), not its value."""
    return container._get_node(key)  # type: ignore[return-value]


def is_interpolation(node: Node) -> bool:
    return node._is_interpolation()


def is_none(node: Node) -> bool:
    return node._is_none()


def is_missing(node: Node) -> bool:
    return node._is_missing()


def job_root(hydra: Any) -> DictConfig | None:
    """The whole config a job was composed as, from `HydraConfig.get()`: Hydra keeps its `hydra` node in a
    masked copy whose parent it sets to that config (`HydraConfig.set_config`)."""
    root = hydra._get_parent()
    return root if isinstance(root, DictConfig) else None
