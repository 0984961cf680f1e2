"""Optuna searches (`hydra/sweeper=lr_model_search`): the space a search samples, where its study is kept,
and how a trial's job reports to it and learns that it is pruned.

The sweeper (`hydra_plugins.zenexp_plugins.OptunaSearch`) asks the study for trials and tells it their
results; each trial is a job whose folder is its trial number. A job reaches the study through its storage
in the sweep directory, which it finds as the sweeper did: SQLite (`optuna.db`) where every job runs on this
machine, Optuna's journal file (`optuna.journal`, made for shared filesystems) where they run on other nodes.
Optuna is imported only when a search runs (it comes with zenexp[sweep]).

`space` reads the space, `study` keeps the study, `trials` runs the trials, `pruning` is the job's side,
`report` what a search leaves for people.
"""

from zenexp.sweep.search.pruning import Prune, never, pruning
from zenexp.sweep.search.report import plot_study, write_results
from zenexp.sweep.search.space import (
    ends,
    grid_points,
    sampler,
    sampler_problems,
    search_space,
    trial_overrides,
)
from zenexp.sweep.search.study import (
    STORAGE_FILES,
    SWEEPER,
    installed_problems,
    load_study,
    quiet_optuna,
    same_search,
    settings_problems,
    storage,
    storage_kind,
    tell,
    trials_done,
)
from zenexp.sweep.search.trials import Trials

__all__ = [
    "Prune",
    "STORAGE_FILES",
    "SWEEPER",
    "Trials",
    "ends",
    "grid_points",
    "installed_problems",
    "load_study",
    "never",
    "plot_study",
    "pruning",
    "quiet_optuna",
    "same_search",
    "sampler",
    "sampler_problems",
    "search_space",
    "settings_problems",
    "storage",
    "storage_kind",
    "tell",
    "trial_overrides",
    "trials_done",
    "write_results",
]
