"""zenexp's Optuna search: the space it samples, where its study is kept, trials kept running without
batches, pruning (fewer epochs, the same best trial), each launcher's jobs reaching the study, and a study
of the earlier sweeper refused. Studies are read back from their real storage files."""

from __future__ import annotations

import gzip
import importlib.util
import json
import threading
from importlib.machinery import ModuleSpec
from pathlib import Path

import matplotlib
import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from PIL import Image

from tests.conftest import SwanLabRun, in_process, read_metrics, zenexp_for
from zenexp.errors import UserError
from zenexp.sweep import search
from zenexp.sweep.records import read_run

FIXTURES = Path(__file__).parent.parent / "fixtures"
# Digits learn in a few steps, so that a bad learning rate is visibly behind after an epoch; the grid
# sampler tries each rate once, in an order given by its seed alone, so two searches try the same trials.
TOY_SEARCH = [
    "-m",
    "hydra/sweeper=lr_model_search",
    "hydra/sweeper/sampler=grid",
    "hydra.sweeper.params.model=small",
    "optim.lr=choice(0.3, 0.1, 0.03, 0.001, 0.0003, 0.0001)",
    "dataset=digits",
    "trainer.epochs=4",
    "trainer.max_steps_per_epoch=8",
    "trainer.batch_size=32",
    "tracker.mode=disabled",
]
MEDIAN = ["hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2"]


def study_of(sweep: Path) -> optuna.Study:
    kind = search.storage_kind("auto", "", sweep)
    return optuna.load_study(study_name="zenexp", storage=search.storage(kind, sweep))


def epochs_trained(sweep: Path) -> int:
    return sum(int(json.loads((job / "summary.json").read_text())["epochs"]) for job in sweep.glob("[0-9]*"))


# ---- without training ---------------------------------------------------------------------------------------


def test_the_space_is_read_from_hydras_override_grammar() -> None:
    space, fixed = search.search_space(
        {"optim.lr": "tag(log, interval(0.0001, 0.3))", "model": "choice(small, large)"},
        ["trainer.batch_size=range(8, 33, 8)", "trainer.epochs=2", "optim.momentum=interval(0, 1)"],
    )
    assert space["optim.lr"] == optuna.distributions.FloatDistribution(0.0001, 0.3, log=True)
    assert space["model"] == optuna.distributions.CategoricalDistribution(["small", "large"])
    # Hydra's range() ends before its stop, as Optuna's high does not: 8, 16, 24, 32.
    assert space["trainer.batch_size"] == optuna.distributions.IntDistribution(8, 32, step=8)
    assert space["optim.momentum"] == optuna.distributions.FloatDistribution(0, 1)  # Hydra's are of floats
    assert fixed == ["trainer.epochs=2"]
    assert search.trial_overrides({"optim.lr": 0.1, "model": "small"}) == ["optim.lr=0.1", "model=small"]

    (grid,) = search.sampler_problems("optuna.samplers.GridSampler", space)
    assert grid.startswith("hydra.sweeper.params.optim.lr: the grid sampler takes choice(...) and range(...)")
    (cmaes,) = search.sampler_problems("optuna.samplers.CmaEsSampler", space)
    assert cmaes.startswith("hydra.sweeper.params.model: CMA-ES samples numbers, not choices")
    assert search.sampler_problems("optuna.samplers.TPESampler", space) == []
    with pytest.raises(UserError, match="nothing to search"):
        search.search_space({}, ["trainer.epochs=2"])
    for bad, said in (
        ("optim.lr=interval(0.3, 0.1)", "an interval needs finite bounds, low < high"),
        ("optim.lr=interval(0, inf)", "an interval needs finite bounds, low < high"),
        ("optim.lr=tag(log, interval(0, 1))", "an interval on a log scale needs low > 0"),
        ("seed=tag(int, interval(0.5, 3))", "an int interval needs whole-number bounds"),
        ("seed=tag(even, interval(0, 3))", "an interval takes the tags log and int only"),
        ("seed=range(0, 10, 0)", "range() arg 3 must not be zero"),
    ):
        with pytest.raises(UserError) as refused:
            search.search_space({}, [bad])
        assert str(refused.value) == f"{bad}: {said}"

    # A key the command line fixes is not searched: the value given is every trial's.
    space, fixed = search.search_space(
        {"optim.lr": "interval(0.01, 0.1)", "seed": "tag(int, interval(0, 3))"}, ["optim.lr=0.05"]
    )
    assert space == {"seed": optuna.distributions.IntDistribution(0, 3)} and fixed == ["optim.lr=0.05"]
    # A sampled name that Hydra would read as a list is quoted.
    (line,) = search.trial_overrides({"tracker.project": "a,b"})
    assert OverridesParser.create().parse_overrides([line])[0].value() == "a,b"


def test_the_study_is_kept_in_sqlite_here_and_in_the_journal_file_on_slurm(tmp_path: Path) -> None:
    here, slurm = "hydra._internal.core_plugins.basic_launcher.BasicLauncher", "x.SlurmLauncher"
    assert search.storage_kind("auto", here, tmp_path) == "sqlite"
    assert search.storage_kind("auto", "hydra_plugins.zenexp_plugins.SlurmLauncher", tmp_path) == "journal"
    assert search.storage_kind("journal", here, tmp_path) == "journal"  # overridable
    (tmp_path / "optuna.journal").touch()  # a search started on Slurm, resumed here: its own study
    assert search.storage_kind("auto", here, tmp_path) == "journal"
    with pytest.raises(UserError, match="this search keeps its study in .*optuna.journal"):
        search.storage_kind("sqlite", slurm, tmp_path)
    with pytest.raises(UserError, match="hydra.sweeper.storage=postgres: give one of auto, sqlite, journal"):
        search.storage_kind("postgres", here, tmp_path)


def finished(value: float) -> JobReturn:
    job = JobReturn()
    job.status, job._return_value = JobStatus.COMPLETED, value
    return job


def test_parallel_trials_are_asked_for_as_each_ends_not_in_batches() -> None:
    """With 2 at once, trial 2 starts as soon as trial 0 ends, while trial 1 still runs (a batch would wait)."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    events: list[str] = []
    second_started = threading.Event()

    def launch(number: int, overrides: list[str]) -> JobReturn:
        events.append(f"start {number}")
        if number == 2:
            second_started.set()
        if number == 1:
            second_started.wait(timeout=30)
        events.append(f"end {number}")
        return finished(0.1 * number)

    space = {"optim.lr": optuna.distributions.FloatDistribution(0.001, 0.1)}
    search.Trials(study, launch, space, ["trainer.epochs=1"], in_flight=2, failures_allowed=0).run(
        [], to_ask=4
    )
    assert events.index("start 2") < events.index("end 1")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert study.best_trial.number == 3


def test_a_study_of_the_earlier_sweeper_is_refused_in_one_line(in_tmp_path: Path) -> None:
    sweep = in_tmp_path / "old-search"
    sweep.mkdir()
    ledger = {"overrides": ["hydra/sweeper=lr_model_search"], "sweeper": "search", "jobs": [], "trials": 4}
    (sweep / "sweep.json").write_text(json.dumps(ledger))
    (sweep / "optuna.db").write_bytes(gzip.decompress((FIXTURES / "optuna-2.10.db.gz").read_bytes()))
    done = in_process("resume", str(sweep))
    assert done.returncode == 1
    assert (
        f"{sweep}/optuna.db: a study written by an older Optuna (zenexp's earlier sweeper used Optuna 2); "
        f"upgrade it with: optuna storage upgrade --storage sqlite:///{sweep}/optuna.db (then resume), "
        "or start a new search"
    ) in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("present", "absent", "said"),
    [
        (
            "hydra_plugins.hydra_optuna_sweeper",
            "",
            "hydra-optuna-sweeper is installed: its hydra/sweeper/sampler",
        ),
        ("", "optuna", "an Optuna search needs Optuna: pip install 'zenexp[sweep]'"),
    ],
)
def test_a_search_needs_optuna_and_not_hydras_own_optuna_sweeper(
    present: str, absent: str, said: str, in_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        if name in (present, absent):
            return ModuleSpec(name, None) if name == present else None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    done = in_process("-m", "hydra/sweeper=lr_model_search", "trainer.epochs=1")
    assert done.returncode == 1 and said in done.stderr
    assert not (in_tmp_path / "multirun").exists()


def test_a_damaged_or_linked_study_file_is_one_line(in_tmp_path: Path) -> None:
    sweep = in_tmp_path / "search"
    sweep.mkdir()
    ledger = {"overrides": ["hydra/sweeper=lr_model_search"], "sweeper": "search", "jobs": [], "trials": 4}
    (sweep / "sweep.json").write_text(json.dumps(ledger))
    (sweep / "0" / ".hydra").mkdir(parents=True)  # a trial that did not finish, for compare
    journal = search.storage("journal", in_tmp_path)  # a line that is not JSON before a study's
    optuna.create_study(study_name="zenexp", storage=journal, direction="maximize")
    damaged = b'{"bad json\n' + (in_tmp_path / "optuna.journal").read_bytes()
    for name, content in (("optuna.db", b"\x00garbage" * 500), ("optuna.journal", damaged)):
        (sweep / name).write_bytes(content)
        done = in_process("resume", str(sweep))
        assert done.returncode == 1 and f"{sweep}/{name}: not a study Optuna can read" in done.stderr
        compared = in_process("compare", str(sweep))
        assert "the search's plots are not drawn" in compared.stderr and "Traceback" not in compared.stderr
        (sweep / name).unlink()

    elsewhere = in_tmp_path / "elsewhere.db"
    optuna.create_study(study_name="zenexp", storage=f"sqlite:///{elsewhere}")
    (sweep / "optuna.db").symlink_to(elsewhere)
    done = in_process("resume", str(sweep))
    assert done.returncode == 1
    assert (
        f"{sweep}/optuna.db: a link, or not a file; a search keeps its study in its own directory"
        in done.stderr
    )


# ---- searches that train ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_pruner_trains_fewer_epochs_and_finds_the_same_best_trial(in_tmp_path: Path) -> None:
    """The same six trials with and without a median pruner: the pruned search trains fewer epochs and ends
    with the same best trial; pruned trials keep their records, and compare draws the search."""
    whole, pruned = in_tmp_path / "whole", in_tmp_path / "pruned"
    assert in_process(*TOY_SEARCH, f"hydra.sweep.dir={whole}").returncode == 0
    done = in_process(*TOY_SEARCH, *MEDIAN, "tracker.mode=offline", f"hydra.sweep.dir={pruned}")
    assert done.returncode == 0, done.stderr
    assert epochs_trained(pruned) < epochs_trained(whole) == 6 * 4

    without, with_pruner = study_of(whole), study_of(pruned)
    assert [t.params for t in without.trials] == [t.params for t in with_pruner.trials]
    assert with_pruner.best_trial.number == without.best_trial.number
    assert with_pruner.best_value == without.best_value
    stopped = [t for t in with_pruner.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert stopped and all(t.number >= 2 for t in stopped)  # the pruner's 2 start-up trials run whole

    for trial in stopped:
        job = pruned / str(trial.number)
        run = read_run(job)
        assert run.status == "pruned" and "val_accuracy" in run.metrics  # its metrics kept
        summary = json.loads((job / "summary.json").read_text())
        assert summary["pruned"] is True and summary["epochs"] == max(trial.intermediate_values)
        assert (job / "checkpoints" / "last.pt").is_file() and (job / "model.pt").is_file()
        assert SwanLabRun(job).config["summary/pruned"] is True
        assert f"job {trial.number} pruned: val_accuracy" in done.stdout
    assert f"{6 - len(stopped)} of 6 jobs finished ({len(stopped)} pruned)" in done.stdout

    compared = in_process("compare", str(pruned))
    assert compared.returncode == 0, compared.stderr
    assert sum(line.split()[1] == "pruned" for line in compared.stdout.splitlines()[1:7]) == len(stopped)
    for png in ("optimization_history.png", "param_importances.png"):
        assert Image.open(pruned / png).size == (800, 500)
    assert matplotlib.rcParams["axes.facecolor"] == "white"  # Optuna's ggplot style stayed in its plots


def search_on(launcher: list[str], root: Path, *more: str) -> optuna.Study:
    """A 3-trial search with a pruner on `launcher`, run to the end; its study, read back."""
    sweep = root / "search"
    done = zenexp_for("joblib" if "hydra/launcher=joblib" in launcher else "")(
        *TOY_SEARCH, *MEDIAN, *launcher, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}", *more
    )
    assert done.returncode == 0, done.stderr
    return study_of(sweep)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("launcher", "storage"),
    [
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"], "journal"),
        (["hydra/launcher=submitit_local"], "sqlite"),
    ],
)
def test_jobs_in_other_processes_report_to_their_trials(
    launcher: list[str], storage: str, in_tmp_path: Path
) -> None:
    study = search_on(launcher, in_tmp_path, f"hydra.sweeper.storage={storage}")
    assert (in_tmp_path / "search" / search.STORAGE_FILES[storage]).is_file()
    assert len(study.trials) == 3
    for trial in study.trials:  # each epoch's validation accuracy, reported by the job from its own process
        assert trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        epochs = [r for r in read_metrics(in_tmp_path / "search" / str(trial.number)) if "val/accuracy" in r]
        assert trial.intermediate_values == {int(r["epoch"]): r["val/accuracy"] for r in epochs}


def test_a_trial_its_launcher_cannot_start_fails_and_the_search_goes_on() -> None:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))

    def launch(number: int, overrides: list[str]) -> JobReturn:
        if number == 1:
            raise RuntimeError("In 'zenexp': Could not find 'model/nosuch'\n\nAvailable options: ...")
        return finished(0.5)

    space = {"optim.lr": optuna.distributions.FloatDistribution(0.001, 0.1)}
    search.Trials(study, launch, space, [], in_flight=1, failures_allowed=1).run([], to_ask=3)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE"]
