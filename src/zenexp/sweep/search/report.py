"""What a search leaves for people: `optimization_results.yaml` (the best trial), and Optuna's history and
importance plots drawn by `zenexp compare`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

if TYPE_CHECKING:
    import optuna
from zenexp.sweep.search.space import trial_overrides
from zenexp.sweep.search.study import STORAGE_FILES, quiet_optuna, storage, storage_kind

log = logging.getLogger("zenexp")


def write_results(study: optuna.Study, sweep_dir: Path) -> None:
    """`optimization_results.yaml` (as Hydra's Optuna sweeper wrote it): the best trial's params and value."""
    import optuna

    from zenexp.run import rundir

    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not finished:
        log.warning("no trial finished: no best trial yet")
        return
    best = study.best_trial
    results = {
        "name": "optuna",
        "best_trial": best.number,
        "best_params": best.params,
        "best_value": best.value,
    }
    rundir.write_atomic(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(results))
    log.info(
        "best trial %d: val_accuracy %.4f, %s",
        best.number,
        best.value,
        " ".join(trial_overrides(best.params)),
    )


def plot_study(sweep_dir: Path, folder: Path) -> list[Path]:
    """A search's optimisation history and each parameter's importance (Optuna's own matplotlib plots), as
    `optimization_history.png` and `param_importances.png` in `folder`; none for a sweep that is no search."""
    if not any((sweep_dir / name).is_file() for name in STORAGE_FILES.values()):
        return []
    import io
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from matplotlib.figure import Figure
    from optuna.visualization import matplotlib as plots

    from zenexp.run import rundir

    quiet_optuna()
    store = storage(storage_kind("auto", "", sweep_dir), sweep_dir)
    names = [s.study_name for s in store.get_all_studies()]
    if len(names) != 1:
        return []
    loaded = optuna.load_study(study_name=names[0], storage=store)
    finished = loaded.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    drawn = []
    for name, plot, needs in (
        ("optimization_history.png", plots.plot_optimization_history, 1),
        ("param_importances.png", plots.plot_param_importances, 2),
    ):
        if len(finished) < needs:
            log.warning("%s: needs %d finished trials; not drawn", name, needs)
            continue
        # Optuna's plots switch matplotlib to its ggplot style for the whole process: only for these plots.
        with warnings.catch_warnings(), matplotlib.rc_context():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = plot(loaded, target_name="val_accuracy")
        figure = axes.figure
        assert isinstance(figure, Figure)
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        picture = io.BytesIO()
        figure.savefig(picture, format="png", dpi=100)
        plt.close(figure)
        rundir.write_atomic(folder / name, picture.getvalue())
        drawn.append(folder / name)
    return drawn
