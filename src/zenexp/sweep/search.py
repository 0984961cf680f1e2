"""Optuna searches (`hydra/sweeper=lr_model_search`): the space a search samples, where its study is kept,
and how a trial's job reports to it and learns that it is pruned.

The sweeper (`hydra_plugins.zenexp_plugins.OptunaSearch`) asks the study for trials and tells it their
results; each trial is a job whose folder is its trial number. A job reaches the study through its storage
in the sweep directory, which it finds as the sweeper did: SQLite (`optuna.db`) where every job runs on this
machine, Optuna's journal file (`optuna.journal`, made for shared filesystems) where they run on other nodes.
Optuna is imported here only when a search runs (it comes with zenexp[sweep]).
"""

from __future__ import annotations

import contextvars
import importlib.util
import logging
import math
import queue
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

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
NO_PRUNER = "optuna.pruners.NopPruner"


# ---- the space ----------------------------------------------------------------------------------------------


def search_space(
    params: Mapping[str, str], arguments: Sequence[str]
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The distributions to sample, by override key (`optim.lr`, `model`), from the search's `params` and the
    command line's sweep overrides (`choice(...)`, `range(...)`, `interval(...)`, `tag(log, interval(...))`);
    and the command line's other overrides, which every trial takes as they are. A key the command line
    gives one value is not searched: the value given is the one every trial takes."""
    parser = OverridesParser.create()
    try:
        searched = parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
        given = parser.parse_overrides(list(arguments))
    except Exception as error:  # noqa: BLE001  (Hydra's parse errors: one line)
        raise UserError(f"hydra.sweeper.params: {str(error).splitlines()[0]}") from None
    given_keys = {o.get_key_element() for o in given}
    fixed_keys = {o.get_key_element() for o in given if not o.is_sweep_override()}
    space: dict[str, BaseDistribution] = {}
    fixed: list[str] = []
    for override in searched:  # the search's own, unless the command line says otherwise
        key = override.get_key_element()
        if key in given_keys:
            continue
        if override.is_sweep_override():
            space[key] = _distribution(override)
        else:  # a param of one value: every trial takes it
            fixed.append(f"{key}={override.get_value_element_as_str()}")
    for override in given:
        key = override.get_key_element()
        if not override.is_sweep_override():
            fixed.append(str(override.input_line))
        elif key not in fixed_keys:
            space[key] = _distribution(override)
    if not space:
        raise UserError(
            "hydra.sweeper.params: nothing to search; give choice(...), range(...) or interval(...) values"
        )
    return space, fixed


def _distribution(override: Override) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    name = str(override.input_line)
    try:
        values = [] if isinstance(value, IntervalSweep) else list(override.sweep_iterator())
    except ValueError as error:  # range(0, 10, 0)
        raise UserError(f"{name}: {error}") from None
    if not isinstance(value, IntervalSweep) and getattr(value, "tags", None):
        raise UserError(f"{name}: tags (log, int) are for interval() only")
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        plain = [v for v in values if isinstance(v, (str, int, float, bool))]
        if len(plain) < len(values):  # a list or a dict: Hydra would write it as text, not what was meant
            raise UserError(f"{name}: a searched choice() takes plain values (numbers, names, true/false)")
        return CategoricalDistribution(plain)
    if isinstance(value, RangeSweep):
        numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        if not numbers or len(numbers) < len(values):
            raise UserError(f"{name}: a searched range() takes whole numbers and holds at least one")
        return IntDistribution(min(numbers), max(numbers), step=abs(int(value.step or 1)))
    if isinstance(value, IntervalSweep):
        low, high, tags = value.start, value.end, set(value.tags)
        if tags - {"log", "int"}:
            raise UserError(f"{name}: an interval takes the tags log and int only")
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise UserError(f"{name}: an interval needs finite bounds, low < high")
        if "log" in tags and low <= 0:
            raise UserError(f"{name}: an interval on a log scale needs low > 0")
        if "int" in tags:  # Hydra reads interval bounds as floats: whole numbers are asked for by a tag
            if not (float(low).is_integer() and float(high).is_integer()):
                raise UserError(f"{name}: an int interval needs whole-number bounds")
            return IntDistribution(int(low), int(high), log="log" in tags)
        return FloatDistribution(float(low), float(high), log="log" in tags)
    raise UserError(f"{name}: a search samples choice(...), range(...) and interval(...) only")


def ends(distribution: BaseDistribution) -> list[Any]:
    """The values that stand for a sampled key when a search is checked: each choice, or the two ends of a
    range or interval."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    assert isinstance(distribution, (FloatDistribution, IntDistribution))
    return [distribution.low, distribution.high]


PLAIN_VALUE = re.compile(r"[\w./:+-]*")


def _read_back(text: str) -> Any:
    """What Hydra reads `key=text` as: `1` is a number, `true` a truth value, `small` a name."""
    return OverridesParser.create().parse_override(f"key={text}").value()


def trial_overrides(params: Mapping[str, Any]) -> list[str]:
    """A trial's sampled values as overrides (`optim.lr=0.0123`, `model=small`); a name that Hydra would read
    as more than one value (`c,d`) is quoted."""
    lines = []
    for key, value in params.items():
        if isinstance(value, float):
            text = repr(value)
        elif isinstance(value, str) and not (PLAIN_VALUE.fullmatch(value) and _read_back(value) == value):
            text = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        else:
            text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"{key}={text}")
    return lines


def grid_space(space: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    """The search space as the grid sampler takes it: every value of each choice and range."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    grid: dict[str, list[Any]] = {}
    for key, distribution in space.items():
        if isinstance(distribution, CategoricalDistribution):
            grid[key] = list(distribution.choices)
        elif isinstance(distribution, IntDistribution) and not distribution.log:
            grid[key] = list(range(distribution.low, distribution.high + 1, distribution.step))
        else:
            raise UserError(
                f"hydra.sweeper.params.{key}: the grid sampler takes choice(...) and range(...) values, not "
                f"intervals; give the values to try"
            )
    return grid


def sampler_problems(target: str, space: Mapping[str, BaseDistribution]) -> list[str]:
    """What a sampler (by its `_target_`) cannot sample in this space: the grid takes choices and ranges,
    CMA-ES numbers only."""
    from optuna.distributions import CategoricalDistribution

    if target == "optuna.samplers.GridSampler":
        try:
            grid_space(space)
        except UserError as error:
            return [str(error)]
    chosen = [key for key, d in space.items() if isinstance(d, CategoricalDistribution)]
    if target == "optuna.samplers.CmaEsSampler" and chosen:
        return [
            f"hydra.sweeper.params.{chosen[0]}: CMA-ES samples numbers, not choices; search it with "
            f"hydra/sweeper/sampler=tpe, or fix it (e.g. {chosen[0]}=... on the command line)"
        ]
    return []


def sampler(make: Callable[..., Any], space: Mapping[str, BaseDistribution], trials_run: int) -> Any:
    """The study's sampler, from its config (a partial). Its seed moves on by the trials a resumed search has
    run, so that it does not draw the same trials again; the grid sampler gets its grid (and keeps its
    seed: it gives trial N the grid's point N in an order of its seed)."""
    import optuna

    if isinstance(make, optuna.samplers.BaseSampler):  # a user's config without `_partial_: true`
        raise UserError(
            f"hydra.sweeper.sampler: {type(make).__name__} is built whole; a search's sampler config is a "
            f"partial (_partial_: true), as zenexp's are"
        )
    target = getattr(make, "func", make)
    problems = sampler_problems(f"optuna.samplers.{target.__name__}", space)
    if problems:
        raise UserError(problems[0])
    if target is optuna.samplers.GridSampler:  # its order is its seed's: the same on resume
        return make(search_space=grid_space(space))
    seed = getattr(make, "keywords", {}).get("seed")
    return make(**({} if seed is None or not trials_run else {"seed": int(seed) + trials_run}))


def grid_points(sampler: Any, space: Mapping[str, BaseDistribution]) -> int | None:
    """How many points the grid sampler's grid has (each is one trial); None for other samplers."""
    import optuna

    if not isinstance(sampler, optuna.samplers.GridSampler):
        return None
    return math.prod(len(values) for values in grid_space(space).values())


# ---- the search's settings -------------------------------------------------------------------------------


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


# ---- the study ----------------------------------------------------------------------------------------------


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


def quiet_optuna() -> None:
    """One line per trial comes from zenexp; Optuna's own lines (coloured, even off a terminal) only when
    something is wrong, through zenexp's log."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(logging.WARNING)


# ---- running the trials ------------------------------------------------------------------------------------


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


class Trials:
    """Runs a search's trials, `in_flight` at once: interrupted ones first, then new ones asked of the
    study, each asked as a slot frees (no waiting for a whole batch). A trial whose job fails, or that its
    launcher cannot start (a point that does not compose), is failed in the study and the search goes on,
    until more than `failures_allowed` have failed in this run."""

    def __init__(
        self,
        study: Any,
        launch: Callable[[int, list[str]], JobReturn],
        space: Mapping[str, Any],
        fixed: list[str],
        in_flight: int,
        failures_allowed: int,
    ) -> None:
        self.study, self.launch, self.space, self.fixed = study, launch, space, fixed
        self.in_flight, self.failures_allowed = in_flight, failures_allowed
        self.failed = 0  # in this run
        self.stopped = False  # asking, until too many trials failed

    def run(self, interrupted: list[tuple[int, list[str]]], to_ask: int) -> None:
        waiting = list(reversed(interrupted))
        left = to_ask

        def next_job() -> tuple[int, list[str]] | None:
            nonlocal left
            if waiting:
                return waiting.pop()
            if left <= 0 or self._too_many_failures():
                return None
            left -= 1
            trial = self.study.ask(dict(self.space))
            return trial.number, [*self.fixed, *trial_overrides(trial.params)]

        if self.in_flight == 1:  # in this thread: the basic launcher runs the job here, signals and all
            while (job := next_job()) is not None:
                self._ended(job[0], self._launched(*job))
            return
        # Each launch waits for its job in a thread of its own; daemon threads, so that a Ctrl-C of the driver
        # is not held up by jobs that run elsewhere (they stay RUNNING in the study, for zenexp resume).
        ended: queue.Queue[tuple[int, JobReturn | None]] = queue.Queue()

        def start(number: int, overrides: list[str]) -> None:
            context = contextvars.copy_context()  # machine.sharing, a context variable, for the launch
            threading.Thread(
                target=lambda: ended.put((number, context.run(self._launched, number, overrides))),
                daemon=True,
            ).start()

        running = 0
        while True:
            while running < self.in_flight and (job := next_job()) is not None:
                start(*job)
                running += 1
            if not running:
                return
            self._ended(*ended.get())
            running -= 1

    def _launched(self, number: int, overrides: list[str]) -> JobReturn | None:
        try:
            return self.launch(number, overrides)
        except Exception as error:  # noqa: BLE001  (Hydra could not make the job: one line, the search goes on)
            log.error("trial %d could not start: %s", number, str(error).strip().splitlines()[0])
            return None

    def _ended(self, number: int, job: JobReturn | None) -> None:
        if job is None or job.status is not JobStatus.COMPLETED:
            self.failed += 1
            tell(self.study, number, "failed", None)
            return
        result = job.return_value
        tell(self.study, number, "pruned" if getattr(result, "pruned", False) else "finished", float(result))

    def _too_many_failures(self) -> bool:
        if self.stopped or self.failed <= self.failures_allowed:
            return self.stopped
        log.error(
            "%d trials failed, more than hydra.sweeper.max_failure_rate allows (%d): the search stops asking "
            "for trials; finish it with zenexp resume once the cause is fixed (failed trials are replaced)",
            self.failed,
            self.failures_allowed,
        )
        self.stopped = True
        return True


# ---- a trial's job ------------------------------------------------------------------------------------------


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
