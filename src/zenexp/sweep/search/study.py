"""Where a search's study is kept (SQLite or Optuna's journal file, in the sweep directory), its settings
checked, and the study loaded, checked to be the same search, and told each trial's end."""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenexp.errors import UserError
from zenexp.parallel import machine
from zenexp.sweep import ledger

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

log = logging.getLogger("zenexp")


SWEEPER = "hydra_plugins.zenexp_plugins.OptunaSearch"


STORAGE_FILES = {"sqlite": "optuna.db", "journal": "optuna.journal"}


STORAGES = ("auto", *STORAGE_FILES)


def installed_problems() -> list[str]:
    """Optuna installed, and not Hydra's own Optuna sweeper, whose hydra/sweeper/sampler configs would
    replace zenexp's."""
    if importlib.util.find_spec("optuna") is None:
        return ["an Optuna search needs Optuna: pip install 'zenexp[sweep]'"]
    if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None:
        return [
            "hydra-optuna-sweeper is installed: its hydra/sweeper/sampler configs replace those of zenexp's "
            "search; remove it with: pip uninstall hydra-optuna-sweeper"
        ]
    return []


def settings_problems(hydra: Mapping[str, Any]) -> list[str]:
    """What is wrong with a search's own settings (`hydra.sweeper`, as written) and its job folders, which
    are its trial numbers: for `zenexp check` and the sweeper alike."""
    sweeper, problems = hydra.get("sweeper") or {}, []

    def counts(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    where = f"one of {', '.join(STORAGES)} (the study is kept in the sweep directory)"
    wanted: dict[str, tuple[Callable[[Any], bool], str]] = {
        "direction": (lambda v: v == "maximize", "maximize: a trial's value is its validation accuracy"),
        "n_trials": (counts, "a whole number, at least 1"),
        "n_jobs": (counts, "a whole number, at least 1"),
        "max_failure_rate": (lambda v: isinstance(v, (int, float)) and 0 <= v <= 1, "from 0 to 1"),
        "storage": (lambda v: v in STORAGES, where),
        "study_name": (lambda v: isinstance(v, str) and v != "" and "${" not in v, "a plain name"),
    }
    for key, (valid, what) in wanted.items():
        if key in sweeper and not valid(sweeper[key]):
            problems.append(f"hydra.sweeper.{key}={sweeper[key]}: give {what}")
    subdir = (hydra.get("sweep") or {}).get("subdir", ledger.JOB_NUMBER)
    if subdir != ledger.JOB_NUMBER:
        problems.append(
            f"hydra.sweep.subdir={subdir}: a search's trial folders are its trial numbers; leave it as it is"
        )
    return problems


def trials_done(study: optuna.Study) -> int:
    """Trials that ended as the search meant: with a value, or pruned."""
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=done))


def storage_kind(choice: str, launcher_target: str, sweep_dir: Path) -> str:
    """Where the study is kept: the one a search already has in its directory; else, with `auto`, the
    journal file where jobs run on other nodes (Slurm) and SQLite where they all run here."""
    if choice not in STORAGES:
        raise UserError(f"hydra.sweeper.storage={choice}: give one of {', '.join(STORAGES)}")
    present = [kind for kind, name in STORAGE_FILES.items() if (sweep_dir / name).exists()]
    if len(present) > 1:
        raise UserError(f"{sweep_dir}: holds both optuna.db and optuna.journal; one study per search")
    if present and choice not in ("auto", present[0]):
        raise UserError(
            f"hydra.sweeper.storage={choice}: this search keeps its study in {sweep_dir / STORAGE_FILES[present[0]]}"
        )
    if present:
        return present[0]
    if choice != "auto":
        return choice
    return "journal" if machine.runs_elsewhere(launcher_target) else "sqlite"


def storage(kind: str, sweep_dir: Path) -> optuna.storages.BaseStorage:
    """The study's storage in the sweep directory (a plain file there, never a link: a shared sweep directory
    cannot send a search's records elsewhere); a file Optuna cannot read, or one of an Optuna too old to
    read, is one line."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    path = sweep_dir.resolve() / STORAGE_FILES[kind]
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise UserError(f"{path}: a link, or not a file; a search keeps its study in its own directory")
    url = f"sqlite:///{path}"
    try:
        if kind == "journal":
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        # jobs on this machine write to it at once: wait for a lock rather than fail at once
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    except RuntimeError as error:  # the table schema of another Optuna version
        if "no longer compatible" not in str(error):
            raise UserError(f"{path}: not a study Optuna can read ({str(error).splitlines()[0]})") from None
        raise UserError(
            f"{path}: a study written by an older Optuna (zenexp's earlier sweeper used Optuna 2); "
            f"upgrade it with: optuna storage upgrade --storage {url} (then resume), or start a new search"
        ) from None
    except Exception as error:  # noqa: BLE001  (SQLAlchemy's, or a journal line that is not JSON)
        raise UserError(f"{path}: not a study Optuna can read ({type(error).__name__})") from None


def load_study(
    store: optuna.storages.BaseStorage,
    name: str,
    *,
    create: bool = False,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    direction: str = "maximize",
) -> optuna.Study:
    """The search's study: made for a new search (`create`), else the one its storage holds."""
    import optuna

    if create:
        try:
            return optuna.create_study(
                study_name=name,
                storage=store,
                sampler=sampler,
                pruner=pruner,
                direction="maximize" if direction == "maximize" else "minimize",
            )
        except optuna.exceptions.DuplicatedStudyError:
            raise UserError(
                f"hydra.sweeper.study_name={name}: the sweep directory already holds a study of that name, "
                f"but no ledger (sweep.json); start the search in a new directory"
            ) from None
    try:
        study = optuna.load_study(study_name=name, storage=store, sampler=sampler, pruner=pruner)
    except KeyError:
        raise UserError(
            f"hydra.sweeper.study_name={name}: the search's study file holds no study of that name; it is "
            f"not this search's, or it was replaced"
        ) from None
    if study.direction.name.lower() != direction:
        raise UserError(
            f"hydra.sweeper.direction={direction}: this search's study was started to {study.direction.name.lower()}"
        )
    return study


SPACE_ATTR, FIXED_ATTR = "zenexp.space", "zenexp.fixed"


def same_search(
    study: optuna.Study, space: Mapping[str, BaseDistribution], fixed: list[str], sweep_dir: Path, new: bool
) -> None:
    """Record the space and the fixed overrides a new study searches; refuse to resume one with others (a
    different search in its directory, or its space changed with hydra.sweeper.params)."""
    from optuna.distributions import distribution_to_json

    written = {key: distribution_to_json(d) for key, d in space.items()}
    if new:
        study.set_user_attr(SPACE_ATTR, written)
        study.set_user_attr(FIXED_ATTR, list(fixed))
        return
    recorded = study.user_attrs
    if SPACE_ATTR in recorded and (recorded[SPACE_ATTR] != written or recorded.get(FIXED_ATTR) != fixed):
        searched = " ".join(sorted(recorded[SPACE_ATTR]))
        raise UserError(
            f"this search's study searches {searched} with {' '.join(recorded.get(FIXED_ATTR) or []) or 'no other overrides'}; "
            f"these overrides give another search: finish it with zenexp resume {sweep_dir} alone, or start a new search"
        )


def quiet_optuna() -> None:
    """One line per trial comes from zenexp; Optuna's own lines (coloured, even off a terminal) only when
    something is wrong, through zenexp's log."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(logging.WARNING)


def tell(study: Any, number: int, status: str, value: float | None) -> None:
    """Tell the study how a trial ended: its value, pruned (at its last reported value), or failed."""
    import optuna

    try:
        if status == "pruned":
            study.tell(number, state=optuna.trial.TrialState.PRUNED)
        elif status == "finished" and value is not None and math.isfinite(value):
            study.tell(number, value)
        else:
            study.tell(number, state=optuna.trial.TrialState.FAIL)
    except RuntimeError as error:
        # The grid sampler, its grid done, stops `study.optimize`, which this is not; the trial is recorded.
        if "Study.stop" not in str(error):
            raise
