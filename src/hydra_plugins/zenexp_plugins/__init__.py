"""zenexp's Hydra plugins: Hydra's own sweepers with a ledger (`zenexp.ledger`), so that a sweep interrupted
in any way can be finished with `zenexp resume SWEEP_DIR`, and a failed job never keeps the others from
running; and Hydra's Slurm launcher, requeued jobs continuing from their checkpoints.

- `GridSweeper` (zenexp's default, `hydra/sweeper=grid`): Hydra's basic sweeper, every combination of the
  values given. Finished jobs are left as they are; interrupted ones continue from their checkpoints; the
  others run from the start (an earlier attempt's folder is kept in `.attempts/`).
- `OptunaSearch` (`hydra/sweeper=lr_model_search`, with zenexp[sweep]): Hydra's Optuna sweeper with its study
  in the sweep directory (`optuna.db`), so trials count across resumes.
- `SlurmLauncher` (`hydra/launcher=slurm`, with zenexp[sweep]): Hydra's `submitit_slurm`, whose jobs, when
  Slurm signals a preemption or a time limit, save a checkpoint, are requeued, and continue from it.

Hydra loads plugins only from the `hydra_plugins` package, hence this module's place.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from zenexp import ledger, machine, rundir, usercode
from zenexp.errors import UserError
from zenexp.ledger import Ledger, PlannedJob
from zenexp.provenance import read_run_file
from zenexp.schema import is_group_choice, plain
from zenexp.sweeps import read_run

log = logging.getLogger("zenexp")


class RefusedSweep(UserError, CompactHydraException):
    """A sweep that cannot start or continue: Hydra prints it as one line."""


@contextmanager
def refusing() -> Iterator[None]:
    try:
        yield
    except UserError as error:
        raise RefusedSweep(str(error)) from None


class GridSweeper(BasicSweeper):
    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        """Hydra's, the task importing the user's script first where a job runs in another process."""
        task_function = usercode.script_first(task_function)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        (points,) = self.split_arguments(parser.parse_overrides([*self._parse_config(), *arguments]), None)
        saved = [*hydra_overrides(self.config), *arguments]
        returns: list[Sequence[JobReturn]] = []
        with refusing(), rundir.in_use(sweep_dir, "sweep"):
            folders = job_folders(self.config, len(points))
            plan = Ledger(
                saved,
                "grid",
                [PlannedJob(f, p, h) for f, (p, h) in zip(folders, self._hashes(points), strict=True)],
            )
            if not (sweep_dir / rundir.SWEEP_FILE).is_file():
                OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's basic sweeper does
            todo = continue_or_start(sweep_dir, plan)
            at_once = machine.jobs_at_once(
                self.config.hydra.launcher, min(len(todo), self.max_batch_size or len(todo))
            )
            for first, batch in runs(todo, self.max_batch_size):
                try:
                    with machine.sharing(at_once, sweep_dir):
                        returns.append(self.launcher.launch(batch, initial_job_idx=first))
                except Exception as error:  # noqa: BLE001  (a launcher lost a job: the others have run)
                    log.error("jobs %d to %d: the launcher failed: %s", first, first + len(batch) - 1, error)
        return returns

    def _hashes(self, points: list[list[str]]) -> Iterator[tuple[list[str], str]]:
        """Each job's overrides and config hash, composing once per distinct choice of config groups."""
        assert self.hydra_context is not None and self.config is not None
        parser = OverridesParser.create()
        composed: dict[tuple[str, ...], str] = {}
        for point in points:
            parsed = parser.parse_overrides(point)
            choices = tuple(str(o.input_line) for o in parsed if is_group_choice(o))
            if choices not in composed:
                cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(choices))
                task = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
                composed[choices] = OmegaConf.to_yaml(task)
            values = [str(o.input_line) for o in parsed if not is_group_choice(o)]
            yield point, ledger.config_hash(composed[choices], values)


def hydra_overrides(config: DictConfig) -> list[str]:
    """The Hydra overrides the sweep was started with, as typed (not the `hydra.mode` Hydra adds itself)."""
    lines = OmegaConf.to_container(config.hydra.overrides.hydra, resolve=False)
    assert isinstance(lines, list)
    return [str(line) for line in lines if not str(line).startswith("hydra.mode=")]


def job_folders(config: DictConfig, count: int) -> list[str]:
    """The folder of each job in the sweep directory: `hydra.sweep.subdir` for job number 0, 1, ..."""
    subdir = plain(config.hydra.sweep)["subdir"]  # as written: `${hydra.job.num}` is not known yet
    names = [str(subdir).replace("${hydra.job.num}", str(number)) for number in range(count)]
    if any("${" in name for name in names):
        raise UserError(
            f"hydra.sweep.subdir={subdir}: zenexp's sweeps number their job folders with ${{hydra.job.num}} "
            f"alone (so that a resume finds each job's folder)"
        )
    return names


def continue_or_start(sweep_dir: Path, plan: Ledger) -> list[tuple[int, list[str]]]:
    """Write the ledger of a new sweep, or check that an existing one plans these very jobs; the jobs still to
    run (folder number, overrides), each prepared: continued from its checkpoint, or its folder cleared."""
    path = sweep_dir / rundir.SWEEP_FILE
    if not path.is_file():
        ledger.write(sweep_dir, plan)
        return [(number, job.overrides) for number, job in enumerate(plan.jobs)]
    recorded = ledger.read(sweep_dir)
    if [(j.job, j.overrides) for j in recorded.jobs] != [(j.job, j.overrides) for j in plan.jobs]:
        raise UserError(
            f"{sweep_dir}: its ledger plans other jobs than these overrides give; it is not this sweep"
        )
    changed = [j.job for j, k in zip(recorded.jobs, plan.jobs, strict=True) if j.config_hash != k.config_hash]
    if changed:
        raise UserError(
            f"{sweep_dir}: the config of job {', '.join(changed)} differs from when the sweep started (the code or "
            f"a registered config changed since); finish it with that code, or start a new sweep"
        )
    todo = []
    for number, job in enumerate(plan.jobs):
        folder = own_folder(sweep_dir, job.job)
        if folder.is_dir() and (folder / rundir.RUN_FILE).is_file():
            ran = read_run_file(folder).get("overrides")
            if ran != job.overrides:  # a folder someone put there, or swapped
                raise UserError(f"{folder}: holds a run of other overrides ({ran}) than job {job.job}'s")
            if read_run(folder).status == "finished":
                continue
            if rundir.is_in_use(folder):
                log.warning("job %s is running in another process; left to it", job.job)
                continue
        todo.append((number, prepared(sweep_dir, folder, job.overrides)))
    done = len(plan.jobs) - len(todo)
    log.info("resuming %s: %d of %d jobs finished, %d to run", sweep_dir, done, len(plan.jobs), len(todo))
    return todo


def own_folder(sweep_dir: Path, name: str) -> Path:
    """A folder of the sweep directory itself: a link there (to another run, elsewhere) is refused."""
    folder = sweep_dir / name
    if folder.is_symlink() or not (folder.resolve().parent == sweep_dir.resolve()):
        raise UserError(f"{folder}: a link, or not in {sweep_dir}; a sweep's jobs live in its own directory")
    return folder


def prepared(sweep_dir: Path, folder: Path, overrides: list[str]) -> list[str]:
    """A job that has a checkpoint continues from it; one that has none starts again, its earlier folder
    moved to `.attempts/` (nothing is lost)."""
    if (folder / rundir.CHECKPOINT_DIR / rundir.LAST).is_file() and (folder / rundir.RUN_FILE).is_file():
        return [*overrides, rundir.path_override("resume", folder.resolve())]
    if folder.exists():
        attempts = own_folder(sweep_dir, rundir.ATTEMPTS_DIR)
        attempts.mkdir(exist_ok=True)
        number = sum(1 for _ in attempts.glob(f"{folder.name}-*")) + 1
        shutil.move(folder, attempts / f"{folder.name}-{number}")
    return overrides


def runs(todo: list[tuple[int, list[str]]], size: int | None) -> Iterator[tuple[int, list[list[str]]]]:
    """The jobs in launches of consecutive folder numbers (a launcher numbers its jobs from the first),
    at most `size` at once."""
    batch: list[list[str]] = []
    first = 0
    for number, overrides in todo:
        if batch and (number != first + len(batch) or (size and len(batch) == size)):
            yield first, batch
            batch = []
        if not batch:
            first = number
        batch.append(overrides)
    if batch:
        yield first, batch


if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None:  # with zenexp[sweep]
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

    class OptunaSearch(OptunaSweeper):
        """Hydra's Optuna sweeper, its study kept in the sweep directory (unless `storage` is given), so that a
        resumed search counts the trials already run: a killed trial continues from its checkpoint (or is
        recorded failed, without one), and the search runs the rest of its `n_trials`."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            import optuna

            # One line per trial comes from zenexp (job N finished); Optuna's own lines, coloured even when
            # not on a terminal, only when something is wrong (alembic's: MainConfig's hydra_logging).
            optuna.logging.disable_default_handler()
            optuna.logging.enable_propagation()
            optuna.logging.set_verbosity(logging.WARNING)

        def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
            task_function = usercode.script_first(task_function)  # as GridSweeper's
            super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
            search = self.sweeper
            sweep_dir = Path(config.hydra.sweep.dir)
            search.storage = search.storage or f"sqlite:///{sweep_dir.resolve() / 'optuna.db'}"
            search.study_name = search.study_name or "zenexp"

        def sweep(self, arguments: list[str]) -> None:
            import optuna

            search = self.sweeper
            assert search.config is not None and search.storage is not None
            sweep_dir = Path(search.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            saved = [*hydra_overrides(search.config), *arguments]
            at_once = machine.jobs_at_once(search.config.hydra.launcher, search.n_jobs)
            with refusing(), rundir.in_use(sweep_dir, "sweep"), machine.sharing(at_once, sweep_dir):
                if not (sweep_dir / rundir.SWEEP_FILE).is_file():
                    ledger.write(sweep_dir, Ledger(saved, "search", [], search.n_trials))
                    return super().sweep(arguments)
                ledger.read(sweep_dir)  # a readable ledger of this search
                planned = search.n_trials  # the ledger's, or the one given with the resume
                study = optuna.load_study(study_name=search.study_name, storage=search.storage)
                for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                    self._finish_interrupted(study, trial.number, sweep_dir / str(trial.number))
                search.n_trials = planned - len(study.trials)
                log.info(
                    "resuming %s: %d of %d trials run, %d to go",
                    sweep_dir,
                    len(study.trials),
                    planned,
                    search.n_trials,
                )
                if search.n_trials <= 0:
                    return None
                search.job_idx = len(study.trials)  # job folder = trial number
                return super().sweep(arguments)

        def _finish_interrupted(self, study: Any, number: int, folder: Path) -> None:
            """A trial its driver left running: continued from its checkpoint and its value told to the study;
            one that has none is recorded failed (the search asks for another)."""
            import optuna

            own_folder(folder.parent, folder.name)
            resumable = (folder / rundir.CHECKPOINT_DIR / rundir.LAST).is_file()
            ran = read_run_file(folder).get("overrides") if (folder / rundir.RUN_FILE).is_file() else None
            if not resumable or not _task_overrides(ran) or rundir.is_in_use(folder):
                study.tell(number, state=optuna.trial.TrialState.FAIL)
                log.warning("trial %d was interrupted before its first checkpoint: recorded failed", number)
                return
            assert isinstance(ran, list)
            overrides = prepared(folder.parent, folder, ran)
            assert self.sweeper.launcher is not None
            (result,) = self.sweeper.launcher.launch([overrides], initial_job_idx=number)
            try:
                study.tell(number, values=[float(result.return_value)])
            except Exception:  # noqa: BLE001  (the job failed: Hydra raises its error here)
                study.tell(number, state=optuna.trial.TrialState.FAIL)


def _task_overrides(overrides: Any) -> bool:
    """Whether a trial's recorded overrides are the task's own only (a run directory may be forged: never
    Hydra's settings, which could send the job elsewhere)."""
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        return False
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # noqa: BLE001  (does not parse: not zenexp's)
        return False
    return all(not o.key_or_group.startswith("hydra") and o.package is None for o in parsed)


if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None:  # with zenexp[sweep]
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher  # type: ignore[import-untyped]

    class SlurmLauncher(submitit_launcher.SlurmLauncher):  # type: ignore[misc]
        def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
            """Called by submitit in the job when Slurm preempts it or its time is up (after zenexp saved a
            checkpoint, `zenexp.interrupts`): the requeued job continues this run from its checkpoint."""
            from hydra.core.hydra_config import HydraConfig

            sweep_overrides, *rest = args
            run_dir = HydraConfig.get().runtime.output_dir
            overrides = [o for o in sweep_overrides if not o.startswith("resume=")]
            return super().checkpoint([*overrides, rundir.path_override("resume", run_dir)], *rest, **kwargs)
