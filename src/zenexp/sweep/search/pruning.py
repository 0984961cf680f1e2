"""The job side of pruning: a trial's job reports its validation accuracy after each epoch to its study,
and learns whether the study's pruner stops it."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenexp.errors import UserError

if TYPE_CHECKING:
    pass
from zenexp.sweep.search.study import STORAGE_FILES, SWEEPER, load_study, quiet_optuna, storage, storage_kind

NO_PRUNER = "optuna.pruners.NopPruner"


Prune = Callable[[float, int], bool]


def never(value: float, epoch: int) -> bool:
    return False


def pruning(hydra: Any) -> Prune:
    """For a job that is a trial of a search with a pruner: report each epoch's validation accuracy to the
    trial (its job number), and say whether the pruner stops it. Otherwise, never."""
    from hydra.types import RunMode
    from hydra.utils import instantiate

    sweeper = hydra.sweeper
    if hydra.mode != RunMode.MULTIRUN or sweeper.get("_target_") != SWEEPER:
        return never
    if sweeper.pruner.get("_target_") == NO_PRUNER:
        return never
    import optuna

    quiet_optuna()
    sweep_dir = Path(hydra.sweep.dir)
    kind = storage_kind(str(sweeper.storage), str(hydra.launcher.get("_target_", "")), sweep_dir)
    if not (sweep_dir / STORAGE_FILES[kind]).is_file():
        raise UserError(f"{sweep_dir / STORAGE_FILES[kind]}: this trial's study is missing")
    name = str(sweeper.study_name)
    store = storage(kind, sweep_dir)
    study = load_study(store, name, pruner=instantiate(sweeper.pruner), direction=str(sweeper.direction))
    trial_id = store.get_trial_id_from_study_id_trial_number(
        store.get_study_id_from_name(name), int(hydra.job.num)
    )
    trial = optuna.trial.Trial(study, trial_id)

    def prune(value: float, epoch: int) -> bool:
        if math.isfinite(value):
            trial.report(value, epoch)
        return trial.should_prune()

    return prune
