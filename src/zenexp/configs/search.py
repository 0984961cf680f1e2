"""Typed configs of zenexp's Optuna search (`hydra/sweeper=lr_model_search`, needs zenexp[sweep]): Optuna's
samplers and pruners by name (Optuna is imported only when a search runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from annotated_types import Ge
from omegaconf import MISSING
from typing_extensions import Doc

# ---- searches: hydra/sweeper=lr_model_search (needs zenexp[sweep]) -------------------------------------------
# Typed configs of Optuna's samplers and pruners, by name (Optuna is imported only when a search runs):
# hydra/sweeper/sampler=tpe|random|cmaes|grid, hydra/sweeper/pruner=none|median|hyperband.

SEARCH_STARTUP_TRIALS, SEARCH_TRIALS = 4, 12


@dataclass
class TPESamplerConf:
    """Optuna's TPE. It samples at random for its first `n_startup_trials`: Optuna's default is 10, more than
    lr_model_search's 12 trials leave room for, so zenexp's is 4 (then 8 are TPE's)."""

    _target_: str = "optuna.samplers.TPESampler"
    _partial_: bool = True
    seed: int | None = 0
    n_startup_trials: Annotated[int, Ge(0), Doc("random trials before TPE chooses")] = SEARCH_STARTUP_TRIALS
    multivariate: bool = False
    constant_liar: Annotated[bool, Doc("count running trials as bad while choosing (parallel trials)")] = True


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    _partial_: bool = True
    seed: int | None = 0


@dataclass
class CmaEsSamplerConf:
    """CMA-ES: numbers only (intervals and ranges), no choices."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    _partial_: bool = True
    seed: int | None = 0
    n_startup_trials: Annotated[int, Ge(0)] = 1


@dataclass
class GridSamplerConf:
    """Every combination of the choices and ranges (no intervals), in an order of its seed."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True
    seed: int | None = 0


@dataclass
class NoPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:
    """Stop a trial whose validation accuracy at an epoch is below the median of earlier trials' there."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: Annotated[int, Ge(0), Doc("trials that are never pruned, to learn the median")] = 5
    # Epochs count from 1: 2 keeps every trial's first epoch from being pruned (0 and 1 do not).
    n_warmup_steps: Annotated[int, Ge(0), Doc("a trial is pruned at no epoch below this")] = 0
    interval_steps: Annotated[int, Ge(1)] = 1
    n_min_trials: Annotated[int, Ge(1)] = 1


@dataclass
class HyperbandPrunerConf:
    """Hyperband: successive halving in brackets, from `min_resource` to `max_resource` epochs."""

    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: Annotated[int, Ge(1)] = 1
    max_resource: Any = "${trainer.epochs}"  # epochs (Optuna's "auto" is the first trial's)
    reduction_factor: Annotated[int, Ge(2)] = 3


@dataclass
class SearchConf:
    """An Optuna search (zenexp's own sweeper): `params` maps override keys to what to sample, in Hydra's
    override grammar (`choice(small, large)`, `range(1, 5)`, `interval(0.1, 0.5)`, `tag(log, interval(...))`);
    each trial is a job whose folder is its trial number, and its value is `float(RunResult)`, the
    validation accuracy of the model kept."""

    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}, "_self_"])
    _target_: str = "hydra_plugins.zenexp_plugins.OptunaSearch"
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: str = "maximize"  # the only one: a trial's value is its validation accuracy
    n_trials: int = SEARCH_TRIALS
    n_jobs: int = 1  # trials running at once (with a launcher that runs jobs in parallel)
    max_failure_rate: float = 0.25
    storage: str = "auto"  # auto (SQLite here, the journal file on Slurm), sqlite or journal
    study_name: str = "zenexp"
    params: dict[str, str] = field(default_factory=dict)
