"""zenexp's Hydra plugins: Hydra's own sweepers with a ledger (`zenexp.sweep.ledger`), so that a sweep interrupted
in any way can be finished with `zenexp resume SWEEP_DIR`, and a failed job never keeps the others from
running; and Hydra's Slurm launcher, requeued jobs continuing from their checkpoints.

- `GridSweeper` (zenexp's default, `hydra/sweeper=grid`): Hydra's basic sweeper, every combination of the
  values given. Finished jobs are left as they are; interrupted ones continue from their checkpoints; the
  others run from the start (an earlier attempt's folder is kept in `.attempts/`).
- `OptunaSearch` (`hydra/sweeper=lr_model_search`, with zenexp[sweep]): zenexp's own sweeper on Optuna's
  ask/tell API, its study in the sweep directory (`zenexp.sweep.search`), so trials count across resumes, and its
  jobs report to their trials, which a pruner may stop.
- `SlurmLauncher` (`hydra/launcher=slurm`, with zenexp[sweep]): Hydra's `submitit_slurm`, whose jobs, when
  Slurm signals a preemption or a time limit, save a checkpoint, are requeued, and continue from it.

Hydra loads plugins only from the `hydra_plugins` package, hence this module's place.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Hydra's own grid sweeper, imported here, not through zenexp.compat: see that module's docstring.
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from zenexp.configs import usercode
from zenexp.configs.schema import is_group_choice, plain
from zenexp.errors import UserError
from zenexp.parallel import machine
from zenexp.run import rundir
from zenexp.run.provenance import read_run_file
from zenexp.sweep import ledger, search
from zenexp.sweep.ledger import Ledger, PlannedJob
from zenexp.sweep.records import DONE, read_run

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
        params = [
            f"{key}={value}" for key, value in self.params.items()
        ]  # hydra.sweeper.params, as Hydra reads them
        (points,) = self.split_arguments(parser.parse_overrides([*params, *arguments]), None)
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
    set_aside(sweep_dir, folder)
    return overrides


def set_aside(sweep_dir: Path, folder: Path) -> None:
    """Move a job's earlier attempt to `.attempts/<job>-N`, if it left a folder."""
    if folder.exists():
        attempts = own_folder(sweep_dir, rundir.ATTEMPTS_DIR)
        attempts.mkdir(exist_ok=True)
        number = sum(1 for _ in attempts.glob(f"{folder.name}-*")) + 1
        shutil.move(folder, attempts / f"{folder.name}-{number}")


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


class OptunaSearch(Sweeper):
    """A search on Optuna's ask/tell API: it asks the study for trials, keeps `n_jobs` of them running (a new
    one as each ends), and tells the study each result: the value (validation accuracy), pruned, or failed.
    The study is kept in the sweep directory (`zenexp.sweep.search`), so a resumed search counts the trials already
    run, finishes the interrupted ones from their checkpoints, and runs the rest of its `n_trials`."""

    def __init__(
        self,
        sampler: Callable[..., Any],
        pruner: Any,
        direction: str,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        storage: str,
        study_name: str,
        params: Mapping[str, str] | None,
    ) -> None:
        self.make_sampler, self.pruner = sampler, pruner
        self.direction, self.n_trials, self.n_jobs = str(direction), int(n_trials), int(n_jobs)
        self.max_failure_rate, self.storage, self.study_name = (
            float(max_failure_rate),
            str(storage),
            str(study_name),
        )
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=usercode.script_first(task_function), config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with refusing(), rundir.in_use(sweep_dir, "sweep"):
            problems = search.installed_problems() + search.settings_problems(plain(self.config.hydra))
            if problems:
                raise UserError(problems[0])
            search.quiet_optuna()
            space, fixed = search.search_space(self.params, arguments)
            launcher_target = str(self.config.hydra.launcher.get("_target_", ""))
            kind = search.storage_kind(self.storage, launcher_target, sweep_dir)
            new = not (sweep_dir / rundir.SWEEP_FILE).is_file()
            trials = [p for p in sweep_dir.iterdir() if p.name.isdigit()]
            if new:
                sampler = self._sampler(space, 0)
                # The ledger before the study: a driver killed between them leaves a search to resume.
                saved = [*hydra_overrides(self.config), *arguments]
                ledger.write(sweep_dir, Ledger(saved, "search", [], self.n_trials))
            elif ledger.read(sweep_dir).sweeper != "search":
                raise UserError(
                    f"{sweep_dir}: a grid sweep's directory; finish it with zenexp resume {sweep_dir}"
                )
            elif trials and not (sweep_dir / search.STORAGE_FILES[kind]).is_file():
                raise UserError(
                    f"{sweep_dir}: its study ({search.STORAGE_FILES[kind]}) is missing; start a new search"
                )
            store = search.storage(kind, sweep_dir)
            started = any(s.study_name == self.study_name for s in store.get_all_studies())
            study = search.load_study(
                store,
                self.study_name,
                create=not (started or trials),
                pruner=self.pruner,
                direction=self.direction,
            )
            search.same_search(study, space, fixed, sweep_dir, new=not started)
            run = len(study.get_trials(deepcopy=False))
            study.sampler = sampler if new else self._sampler(space, run)
            resumed, elsewhere = ([], 0) if new else self._resumed(study, sweep_dir, fixed)
            done = search.trials_done(study)
            to_ask = max(0, self.n_trials - done - elsewhere - len(resumed))
            if not new:
                left = max(0, self.n_trials - done - elsewhere)
                log.info("resuming %s: %d of %d trials run, %d to go", sweep_dir, done, self.n_trials, left)
            at_once = machine.jobs_at_once(self.config.hydra.launcher, self.n_jobs)
            # As many trials as the launcher runs at once; on Slurm (elsewhere), the search's own count.
            in_flight = self.n_jobs if at_once == machine.ELSEWHERE else at_once
            with machine.sharing(at_once, sweep_dir):
                search.Trials(study, self._launch, space, fixed, in_flight, self._failures_allowed()).run(
                    resumed, to_ask
                )
            search.write_results(study, sweep_dir)

    def _sampler(self, space: Mapping[str, Any], trials_run: int) -> Any:
        """The study's sampler; a grid's trials are at most its points."""
        sampler = search.sampler(self.make_sampler, space, trials_run)
        if (points := search.grid_points(sampler, space)) and self.n_trials > points:
            log.info("the grid has %d points: %d trials, not %d", points, points, self.n_trials)
            self.n_trials = points
        return sampler

    def _failures_allowed(self) -> int:
        return int(self.max_failure_rate * self.n_trials)

    def _launch(self, number: int, overrides: list[str]) -> JobReturn:
        assert self.launcher is not None
        (result,) = self.launcher.launch([overrides], initial_job_idx=number)
        return result

    def _resumed(
        self, study: Any, sweep_dir: Path, fixed: list[str]
    ) -> tuple[list[tuple[int, list[str]]], int]:
        """What a resume does with the trials its driver left: a trial whose job ended is told its result;
        one with a checkpoint continues from it; one without runs again from the start, its earlier folder
        kept in `.attempts/`; one still running elsewhere is left to it (its result reaches the study at the
        next resume). A failed trial's folder moves to `.attempts/` and the search asks for another trial in
        its place (the grid, for the same point). The trials to run, and how many are left to others."""
        import optuna

        todo, elsewhere = [], 0

        def replace(trial: Any, folder: Path) -> None:
            set_aside(sweep_dir, folder)
            if isinstance(study.sampler, optuna.samplers.GridSampler):  # its point counts as visited
                study.enqueue_trial(trial.params)

        for trial in study.get_trials(deepcopy=False):
            folder = own_folder(sweep_dir, str(trial.number))
            if (
                trial.state == optuna.trial.TrialState.FAIL
                and folder.is_dir()
                and not rundir.is_in_use(folder)
            ):
                replace(trial, folder)
            if trial.state != optuna.trial.TrialState.RUNNING:
                continue
            if rundir.is_in_use(folder):
                log.warning("trial %d is running in another process; left to it", trial.number)
                elsewhere += 1
                continue
            overrides = [*fixed, *search.trial_overrides(trial.params)]
            if (folder / rundir.RUN_FILE).is_file():
                ran = read_run_file(folder).get("overrides")
                if ran != overrides:  # a folder someone put there, or swapped
                    raise UserError(
                        f"{folder}: holds a run of other overrides ({ran}) than trial {trial.number}'s"
                    )
            record = read_run(folder)
            if record.status in DONE and "val_accuracy" in record.metrics:
                search.tell(study, trial.number, record.status, record.metrics["val_accuracy"])
            elif record.status == "failed":
                search.tell(study, trial.number, "failed", None)
                replace(trial, folder)
            else:
                todo.append((trial.number, prepared(sweep_dir, folder, overrides)))
        return todo, elsewhere


if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None:  # with zenexp[sweep]
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher  # type: ignore[import-untyped]

    class SlurmLauncher(submitit_launcher.SlurmLauncher):  # type: ignore[misc]
        def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
            """Called by submitit in the job when Slurm preempts it or its time is up (after zenexp saved a
            checkpoint, `zenexp.run.interrupts`): the requeued job continues this run from its checkpoint."""
            from hydra.core.hydra_config import HydraConfig

            sweep_overrides, *rest = args
            run_dir = HydraConfig.get().runtime.output_dir
            overrides = [o for o in sweep_overrides if not o.startswith("resume=")]
            return super().checkpoint([*overrides, rundir.path_override("resume", run_dir)], *rest, **kwargs)
