"""Every mistake is refused before any work, with one short message: from the CLI and from `launch()`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.errors import HydraException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

from tests.conftest import QUICK, cli, run
from zenexp import UserError
from zenexp.checks.fields import check_config
from zenexp.checks.overrides import sweep_points
from zenexp.checks.points import check_point, check_points
from zenexp.cli import main
from zenexp.configs.schema import compose_config

# (overrides, what the message must name: the field path and value, what is expected)
BAD_INPUTS = [
    # wrong types
    (["optim.lr=abc"], "optim.lr=abc", "could not be converted to Float"),
    (["trainer.epochs=2.5"], "trainer.epochs=2.5", "could not be converted to Integer"),
    (["trainer.batch_size=[1]"], "trainer.batch_size=[1]", "could not be converted to Integer"),
    (["seed=abc"], "seed=abc", "could not be converted to Integer"),
    (["seed=1.5"], "seed=1.5", "could not be converted to Integer"),
    (["dataset=cifar10", "dataset.download=maybe"], "dataset.download=maybe", "not a valid bool"),
    (["tracker.mode=clod"], "tracker.mode=clod", "offline, local, cloud, disabled"),
    (["trainer.precision=fp16"], "trainer.precision=fp16", "fp32, bf16"),
    (["trainer.compile=maybe"], "trainer.compile=maybe", "not a valid bool"),
    (["model=large", "model.hidden=abc"], "model.hidden=abc", "could not be converted to Integer"),
    (["dataset.test_fraction=x"], "dataset.test_fraction=x", "could not be converted to Float"),
    (["trainer.num_threads=a"], "trainer.num_threads='a'", "expected an integer >= 0 and <= 1024 or auto"),
    (["trainer.num_threads='2'"], "trainer.num_threads='2'", "or auto (a number without quotes)"),
    (["dataset.split_seed=1.5"], "dataset.split_seed=1.5", "could not be converted to Integer"),
    (["tracker.setup_timeout_s=abc"], "tracker.setup_timeout_s=abc", "could not be converted to Float"),
    (["model.dropout=[1]"], "model.dropout=[1]", "could not be converted to Float"),
    (["tracker.tags=abc"], "tracker.tags=abc", "tracker.tags"),
    (["optim.lr=null"], "optim.lr=null", "optim.lr"),
    # out of range, non-finite, empty
    (["optim.lr=-1"], "optim.lr=-1", "expected a number > 0"),
    (["optim.lr=0"], "optim.lr=0", "expected a number > 0"),
    (["optim.lr=inf"], "optim.lr=inf", "expected a finite number"),
    (["optim.lr=-inf"], "optim.lr=-inf", "expected a finite number"),
    (["optim.lr=nan"], "optim.lr=nan", "expected a finite number"),
    (["optim=adam", "optim.lr=-1"], "optim.lr=-1", "expected a number > 0"),
    (["optim.momentum=1"], "optim.momentum=1", "expected a number >= 0 and < 1"),
    (["optim.momentum=-0.1"], "optim.momentum=-0.1", ">= 0 and < 1"),
    (["optim.weight_decay=-1"], "optim.weight_decay=-1", ">= 0"),
    (["optim.weight_decay=inf"], "optim.weight_decay=inf", "expected a finite number"),
    (["optim=adam", "optim.weight_decay=inf"], "optim.weight_decay=inf", "expected a finite number"),
    (["trainer.batch_size=0"], "trainer.batch_size=0", "expected an integer >= 1"),
    (["trainer.batch_size=-4"], "trainer.batch_size=-4", "expected an integer >= 1"),
    (["model.dropout=1.5"], "model.dropout=1.5", "expected a number >= 0 and < 1"),
    (["model.dropout=-0.1"], "model.dropout=-0.1", "expected a number >= 0 and < 1"),
    (["trainer.epochs=0"], "trainer.epochs=0", "expected an integer >= 1"),
    (["trainer.epochs=-1"], "trainer.epochs=-1", "expected an integer >= 1"),
    (["model=large", "model.hidden=-8"], "model.hidden=-8", "expected an integer >= 1"),
    (["model.hidden=0"], "model.hidden=0", "expected an integer >= 1"),
    (["trainer.max_steps_per_epoch=0"], "trainer.max_steps_per_epoch=0", "expected an integer >= 1"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0", "expected an integer >= 1"),
    (["trainer.checkpoint_every_n_steps=0"], "trainer.checkpoint_every_n_steps=0", ">= 1"),
    (["trainer.num_threads=-1"], "trainer.num_threads=-1", "expected an integer >= 0"),
    (["dataset.test_fraction=1.0"], "dataset.test_fraction=1.0", "> 0 and < 1"),
    (["dataset.test_fraction=0"], "dataset.test_fraction=0", "> 0 and < 1"),
    (
        ["dataset.test_fraction=0.9999"],
        "dataset.test_fraction=0.9999 and dataset.val_fraction=0.1",
        "hold out 1797 + 180 of the 1797 digits (rounded), leaving none for training",
    ),
    (["dataset.test_fraction=0.0001"], "dataset.test_fraction=0.0001", "test split of the 1797 digits empty"),
    (
        ["dataset.val_fraction=0.0001"],
        "dataset.val_fraction=0.0001",
        "validation split of the 1797 digits empty",
    ),
    (["dataset.val_fraction=1"], "dataset.val_fraction=1.0", "> 0 and < 1"),
    (
        ["dataset.test_fraction=0.6", "dataset.val_fraction=0.4"],
        "dataset.test_fraction=0.6 and dataset.val_fraction=0.4",
        "leaving none for training",
    ),
    (
        ["dataset=cifar10", "dataset.val_fraction=0.00001"],
        "dataset.val_fraction=1e-05",
        "validation split of the 50000 CIFAR-10 training images empty",
    ),
    (["dataset=mnist", "dataset.split_seed=-1"], "dataset.split_seed=-1", ">= 0"),
    (["dataset=fake", "dataset.val_size=0"], "dataset.val_size=0", "expected an integer >= 1"),
    (["scheduler=linear"], "scheduler=linear", "choose one of cosine, none, step"),
    (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size=0", "expected an integer >= 1"),
    (["scheduler=step", "scheduler.gamma=0"], "scheduler.gamma=0", "expected a number > 0"),
    (["scheduler=step", "scheduler.gamma=nan"], "scheduler.gamma=nan", "expected a finite number"),
    (["scheduler=cosine", "scheduler.eta_min=-1"], "scheduler.eta_min=-1", ">= 0"),
    (["scheduler=cosine", "scheduler.T_max=0"], "scheduler.T_max=0", "expected an integer >= 1"),
    (["scheduler.factor=2"], "scheduler.factor=2", "> 0 and <= 1"),
    (["scheduler.step_size=2"], "scheduler.step_size", "no field 'step_size' (fields: factor, total_iters)"),
    (["trainer.early_stop_patience=0"], "trainer.early_stop_patience=0", "expected an integer >= 1"),
    (["trainer.grad_clip_norm=0"], "trainer.grad_clip_norm=0", "expected a number > 0"),
    (["trainer.grad_clip_norm=inf"], "trainer.grad_clip_norm=inf", "expected a finite number"),
    (["trainer.num_threads=100000"], "trainer.num_threads=100000", "<= 1024"),
    (["seed=-1"], "seed=-1", "expected an integer >= 0 and < 4294967296"),
    (["seed=4294967296"], "seed=4294967296", "< 4294967296"),
    (["dataset.split_seed=-1"], "dataset.split_seed=-1", ">= 0"),
    (["dataset.split_seed=99999999999999999999"], "dataset.split_seed=99999999999999999999", "< 4294967296"),
    (["dataset=fake", "dataset.train_size=0"], "dataset.train_size=0", "expected an integer >= 1"),
    (["dataset=fake", "dataset.test_size=0"], "dataset.test_size=0", "expected an integer >= 1"),
    (["dataset=fake", "dataset.num_classes=1"], "dataset.num_classes=1", "expected an integer >= 2"),
    (["dataset=fake", "dataset.image_shape=[1,2]"], "dataset.image_shape=[1, 2]", "expected 3 values, got 2"),
    (
        ["dataset=fake", "dataset.image_shape=[3,32,32,1]"],
        "dataset.image_shape=[3, 32, 32, 1]",
        "expected 3 values",
    ),
    (["dataset=fake", "dataset.image_shape=[0,32,32]"], "dataset.image_shape=[0, 32, 32]", "each value >= 1"),
    (
        ["dataset=fake", "dataset.image_shape=[-3,32,32]"],
        "dataset.image_shape=[-3, 32, 32]",
        "each value >= 1",
    ),
    (["dataset=fake", "dataset.image_shape=[3,32,0]"], "dataset.image_shape=[3, 32, 0]", "each value >= 1"),
    (
        ["dataset.image_shape=[3,8,8]"],
        "dataset.image_shape=[3, 8, 8]",
        "fixed by the data, which holds [1, 8, 8]",
    ),
    (["dataset.num_classes=5"], "dataset.num_classes=5", "fixed by the data"),
    (["tracker.setup_timeout_s=0"], "tracker.setup_timeout_s=0", "expected a number > 0"),
    (["tracker.setup_timeout_s=inf"], "tracker.setup_timeout_s=inf", "expected a finite number"),
    # unknown keys, with a did-you-mean
    (["optim.lrr=0.1"], "optim.lrr=0.1", "did you mean optim.lr?"),
    (["trainer.epoch=3"], "trainer.epoch=3", "did you mean trainer.epochs?"),
    (["model=large", "model.hiden=3"], "model.hiden=3", "did you mean model.hidden?"),
    (["+trainer.foo=1"], "trainer.foo", "no field 'foo' (fields: batch_size, checkpoint_every_n_steps"),
    (["+lr=0.1"], "lr", "fields: augment, dataset, model, optim, resume, scheduler, seed, tracker, trainer"),
    (["tracker.projet=x"], "tracker.projet=x", "did you mean tracker.project?"),
    (["dataset=cifar10", "dataset.rot=x"], "dataset.rot=x", "did you mean dataset.root?"),
    (["+model.extra=1"], "model.extra", "no field 'extra'"),
    (["+trainer.epochs=2"], "trainer.epochs", "trainer.epochs"),
    # unknown group options, listing what exists
    (["model=huge"], "model=huge", "large, net, small"),
    (["~model"], "model is missing (???)", "choose one of large, net, small"),
    (["dataset=cifar100"], "dataset=cifar100", "cifar10, digits, fake, image_folder, mnist"),
    (["optim=sgdd"], "optim=sgdd", "adam, sgd"),
    (["experiment=nope"], "experiment=nope", "lesson, lesson_fake"),
    (["hydra/launcher=nope"], "hydra/launcher=nope", "joblib"),
    (["hydra/sweeper=nope"], "hydra/sweeper=nope", "lr_model_search"),
    # mandatory values left missing, and required fields removed
    (["optim.lr=???"], "optim.lr is missing", "optim.lr=<float>"),
    (["~seed"], "seed: removed (~seed)", "set a value instead"),
    (["~trainer.epochs"], "~trainer.epochs", "does not support deletion"),
    (["~optim.lr"], "~optim.lr", "does not support deletion"),
    (["~tracker"], "tracker: removed", "set a value instead"),
    # combinations that cannot work
    (["resume=outputs/none"], "resume=outputs/none", "no checkpoint there"),
    (["resume="], "resume= is empty", "give the run directory"),
    (["model=net"], "model.image_shape=[1, 8, 8]", "at least 16x16 pixels"),
    (["model=net", "dataset=fake", "dataset.image_shape=[3,8,8]"], "model.image_shape=[3, 8, 8]", "16x16"),
    (["model.hidden=${dataset.nope}"], "model.hidden", "dataset.nope"),
    (["dataset=cifar10"], "dataset=cifar10", "no CIFAR-10 files in"),
    (["dataset=mnist"], "dataset=mnist", "no MNIST files in"),
    (["dataset=cifar10", "dataset.root=elsewhere"], "dataset=cifar10", "elsewhere"),
    (["trainer.device=meta"], "trainer.device=meta", "zenexp trains on cpu or cuda"),
    (["trainer.device=tpu"], "trainer.device=tpu", "not a device"),
    (["trainer.device=xyz"], "trainer.device=xyz", "not a device"),
    (["trainer.device=mps"], "trainer.device=mps", "zenexp trains on cpu or cuda"),
    # tracker names SwanLab would refuse
    (["tracker.project=a b"], "tracker.project=a b", "letters, digits and _ - + . only"),
    (["tracker.project=''"], "tracker.project=", "1 to 100"),
    (["tracker.project=" + "p" * 101], "tracker.project=", "1 to 100"),
    (["tracker.experiment_name=" + "n" * 513], "tracker.experiment_name: 513 characters", "1 to 512"),
    (["tracker.experiment_name=''"], "tracker.experiment_name: 0 characters", "1 to 512"),
    (["tracker.description=" + "d" * 1025], "tracker.description: 1025 characters", "up to 1024"),
    (["tracker.tags=[" + ",".join(f"t{i}" for i in range(31)) + "]"], "tracker.tags", "up to 30 tags"),
    # targets: only registered configs may run
    (["model._target_=os.system"], "model._target_=os.system", "model=<option> (large, net, small)"),
    (["+optim._target_=builtins.eval"], "+optim._target_=builtins.eval", "optim=<option> (adam, sgd)"),
    (["dataset._zen_target=os.system"], "dataset._zen_target", "dataset=<option>"),
    (["optim._partial_=false"], "optim._partial_=false", "cannot be overridden"),
    (["trainer._target_=os.system"], "trainer._target_=os.system", "cannot be overridden"),
    (["tracker._target_=os.system"], "tracker._target_=os.system", "cannot be overridden"),
    (["+model._args_=[1]"], "+model._args_=[1]", "cannot be overridden"),
    (
        ["model={_target_:os.system,command:ls}"],
        "model={_target_:os.system,command:ls}",
        "cannot be overridden",
    ),
    (
        ["+hydra.callbacks.x={_target_:os.makedirs,name:x}"],
        "hydra.callbacks.x._target_=os.makedirs",
        "not named by any registered config",
    ),
    (
        ["+hydra.job_logging.handlers.x={class:os.system}"],
        "hydra.job_logging.handlers.x.class=os.system",
        "registered",
    ),
    (
        ["+hydra.hydra_logging.handlers.x={class:os.system}"],
        "hydra.hydra_logging.handlers.x.class",
        "registered",
    ),
    (["hydra.launcher._target_=os.system"], "hydra.launcher._target_=os.system", "registered"),
    (["hydra.sweeper._target_=os.system"], "hydra.sweeper._target_=os.system", "registered"),
    (["hydra.job_logging.handlers.console.stream=ext://os.environ"], "ext://os.environ", "registered"),
    (["~hydra.callbacks.guard"], "hydra.callbacks.guard", "must stay the first callback"),
    (["hydra.callbacks.guard.verdict=ok"], "hydra.callbacks.guard", "must stay the first callback"),
    (["hydra.callbacks=null"], "hydra.callbacks=null", "not Optional"),
    (["~hydra.hydra_logging.zenexp_guard"], "hydra.hydra_logging.zenexp_guard", "must stay"),
    (["hydra.hydra_logging.zenexp_guard=ok"], "hydra.hydra_logging.zenexp_guard", "must stay"),
    (
        ["+hydra.callbacks.x={_target_:logging.FileHandler,filename:x,mode:w}"],
        "hydra.callbacks.x._target_",
        "hydra.callbacks",
    ),
    (
        ["+hydra.job_logging.handlers.x={class:zenexp.data.datasets.cifar10}"],
        "class=zenexp.data.datasets.cifar10",
        "hydra.job_logging",
    ),
    (["+optim@hydra.callbacks.evil=sgd"], "+optim@hydra.callbacks.evil=sgd", "Hydra's own settings"),
    (["hydra.runtime.output_dir=/tmp"], "hydra.runtime.output_dir=/tmp", "Hydra sets hydra.runtime itself"),
    (["hydra.searchpath=[file:///tmp]"], "hydra.searchpath", "may be overridden"),
    (["trainer='${oc.create:{_target_:builtins.print,epochs:1}}'"], "oc.create", "write the value itself"),
    (["optim.lr='${oc.decode:\"0.1\"}'"], "oc.decode", "write the value itself"),
    (["+hydra.job_logging.handlers.file.mode=w"], "handlers.file.mode=w", "only appended to"),
    (
        ["hydra.run.dir='${zenexp.run_dir:/tmp,x}'"],
        "hydra.run.dir",
        "zenexp's own resolvers are not for overrides",
    ),
    # Hydra's output stays inside a new run directory
    (
        ["hydra.output_subdir=.."],
        "hydra.output_subdir=..",
        "one file or folder name inside the run directory",
    ),
    (["hydra.output_subdir=/tmp"], "hydra.output_subdir=/tmp", "folder name"),
    (["hydra.output_subdir=a/b"], "hydra.output_subdir=a/b", "folder name"),
    (["hydra.output_subdir=."], "hydra.output_subdir=.", "folder name"),
    (
        [
            "hydra.run.dir=dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
        ],
        "hydra.run.dir: a path of 300 characters",
        "choose a shorter one",
    ),
    (["hydra.job.name=../x"], "hydra.job.name=../x", "one file or folder name inside the run directory"),
    (["hydra.sweep.subdir=.."], "hydra.sweep.subdir=..", "folder name inside the run directory"),
    (["hydra.sweep.subdir=x"], "hydra.sweep.subdir=x", "numbered with ${hydra.job.num}"),
    (["hydra.job_logging.handlers.file.filename=/root/x"], "filename=/root/x", "in the run directory"),
    (["hydra.run.dir=/" + "/".join(["d" * 200] * 25)], "hydra.run.dir: a path of", "choose a shorter one"),
    # not an override at all
    (["dataset.root=~/data"], "dataset.root=~/data", "quote"),
    (["=1"], "=1: no key", "key=value"),
    (["optim.lr"], "optim.lr", "optim.lr"),
    (["optim.lr=[1"], "optim.lr=[1", "not a valid override"),
    (["model={"], "model={", "not a valid override"),
]
if not torch.cuda.is_available():
    BAD_INPUTS.append((["trainer.device=cuda"], "trainer.device=cuda", "no CUDA device is present"))
    BAD_INPUTS.append((["trainer.device=cuda:1"], "trainer.device=cuda:1", "no CUDA device is present"))

# The real command line in a subprocess, for a few of each kind; the rest run `zenexp.cli.main` in-process,
# which gives the same answer (it refuses before Hydra starts) in a fraction of the time.
REAL_CLI = [case for i, case in enumerate(BAD_INPUTS) if i % 12 == 0]


def table(cases: list[tuple[list[str], str, str]], fast_every: int, offset: int = 0) -> list[Any]:
    """The cases as test parameters; one in `fast_every` is in the fast loop, the rest are marked slow."""
    return [
        pytest.param(
            *case, id=" ".join(case[0])[:60], marks=[] if i % fast_every == offset else [pytest.mark.slow]
        )
        for i, case in enumerate(cases)
    ]


def refuse_in_process(overrides: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(overrides)
    assert stopped.value.code == 1
    return capsys.readouterr().err


def assert_one_short_message(stderr: str, field: str, expected: str) -> None:
    assert field in stderr and expected in stderr, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("zenexp: error: ") and len(stderr.splitlines()) <= 3, stderr


def nothing_was_recorded(root: Path) -> bool:
    return not [p for p in root.rglob("*") if ".swanlab-home" not in p.parts]


@pytest.mark.parametrize(("overrides", "field", "expected"), table(BAD_INPUTS, fast_every=10))
def test_cli_refuses_with_one_short_message(
    overrides: list[str], field: str, expected: str, in_tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_short_message(refuse_in_process(overrides, capsys), field, expected)
    assert nothing_was_recorded(in_tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "field", "expected"), REAL_CLI, ids=[" ".join(c[0])[:60] for c in REAL_CLI]
)
def test_the_real_cli_refuses_with_one_short_message(
    overrides: list[str], field: str, expected: str, in_tmp_path: Path
) -> None:
    done = cli(*overrides)
    assert done.returncode == 1
    assert_one_short_message(done.stderr, field, expected)
    assert nothing_was_recorded(in_tmp_path)


@pytest.mark.parametrize(("overrides", "field", "expected"), table(BAD_INPUTS, fast_every=10, offset=5))
def test_launch_refuses_before_any_work(
    overrides: list[str], field: str, expected: str, in_tmp_path: Path
) -> None:
    with pytest.raises((UserError, HydraException, OmegaConfBaseException, ValueError)) as caught:
        run(*overrides)
    causes: list[BaseException] = []  # the chain of causes; some of Hydra's and OmegaConf's loop back
    error: BaseException | None = caught.value
    while error is not None and not isinstance(error, UserError) and error not in causes:
        causes.append(error)
        error = error.__cause__
    error = error if isinstance(error, UserError) else None
    if error is not None:  # zenexp's own checks: the same sentence as the CLI
        assert field in str(error) and expected in str(error), str(error)
    elif not isinstance(caught.value, OverrideParseException):  # Hydra refused while composing
        assert field.split("=")[0].lstrip("+~").split(".")[-1] in str(caught.value)
    assert nothing_was_recorded(in_tmp_path)


def test_a_group_set_to_null_is_one_line_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    # (launch() gets Hydra's own ValueError: Hydra composes before zenexp's guard can see the overrides)
    stderr = refuse_in_process(["model=null"], capsys)
    assert_one_short_message(stderr, "model=null", "model needs one of its options: large, net, small")


@pytest.mark.slow
def test_full_traceback_on_request(in_tmp_path: Path) -> None:
    done = cli("optim.lr=-1", env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "optim.lr=-1.0: expected a number > 0" in done.stderr


@pytest.mark.slow
def test_several_mistakes_are_listed_together(in_tmp_path: Path) -> None:
    done = cli("model=large", "optim.lrr=1", "trainer.epoch=2", "model.hiden=3")
    assert done.returncode == 1
    assert "3 problems" in done.stderr
    for hint in ("optim.lr?", "trainer.epochs?", "model.hidden?"):
        assert hint in done.stderr


@pytest.mark.slow
def test_check_lists_every_bad_point_of_a_sweep(in_tmp_path: Path) -> None:
    done = cli("check", "-m", "optim.lr=0.1,abc", "model=small,huge")
    assert done.returncode == 1
    assert "3 of 4 jobs are invalid" in done.stderr
    assert "optim.lr=0.1 model=small" not in done.stderr
    for point in ("optim.lr=0.1 model=huge", "optim.lr=abc model=small", "optim.lr=abc model=huge"):
        assert point in done.stderr
    assert not (in_tmp_path / "multirun").exists()


@pytest.mark.slow
def test_check_passes_a_good_sweep_and_runs_nothing(in_tmp_path: Path) -> None:
    done = cli("check", "-m", "optim.lr=0.1,0.01", "model=small,large,net", "dataset=fake")
    assert done.returncode == 0, done.stderr
    assert "all 6 jobs valid" in done.stdout
    assert not (in_tmp_path / "outputs").exists() and not (in_tmp_path / "multirun").exists()


@pytest.mark.slow
def test_a_sweep_with_one_bad_point_launches_nothing(in_tmp_path: Path) -> None:
    done = cli("-m", "optim.lr=0.1,-1", *QUICK)
    assert done.returncode == 1
    assert "1 of 2 jobs are invalid" in done.stderr and "optim.lr=-1" in done.stderr
    assert not (in_tmp_path / "multirun").exists()


def test_targets_must_come_from_registered_configs() -> None:
    cfg = compose_config(["model=large"])
    assert check_config(cfg) == []
    cfg.model._target_ = "os.system"  # however it got there, it is refused
    (problem,) = check_config(cfg)
    assert problem.startswith("model._target_=os.system: not the target of any registered config")


@pytest.mark.slow
def test_python_module_and_command_share_check() -> None:
    done = cli("check", "model=large", "optim=adam")
    assert done.returncode == 0 and "all 1 job valid" in done.stdout


def test_good_overrides_still_run(in_tmp_path: Path) -> None:
    result = run("model=large", "optim=adam", "optim.lr=0.01", *QUICK)
    assert (result.output_dir / "summary.json").is_file()


def test_sweep_syntax_the_launcher_cannot_run_is_one_line(
    in_tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stderr = refuse_in_process(["-m", "optim.lr=interval(0,1)"], capsys)
    assert_one_short_message(stderr, "optim.lr=interval(0,1)", "add hydra/sweeper=lr_model_search")
    stderr = refuse_in_process(["-m", "seed=0,1,-1", *QUICK], capsys)
    assert "1 of 3 jobs are invalid" in stderr and "seed=-1: expected an integer >= 0" in stderr
    assert nothing_was_recorded(in_tmp_path)


def test_a_large_sweep_is_checked_composing_once_per_choice_of_groups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    composed: list[list[str]] = []

    def counted(overrides: list[str], with_hydra: bool = False) -> Any:
        composed.append(list(overrides))
        return compose_config(overrides, with_hydra)

    monkeypatch.setattr("zenexp.checks.points.compose_config", counted)
    points = sweep_points(["seed=range(0,300)", "model=small,large", "optim.lr=0.1"])
    assert len(points) == 600
    assert check_points(points) == {}
    assert sorted(composed) == [["model=large"], ["model=small"]]


@pytest.mark.slow
def test_a_sweep_checked_value_by_value_finds_what_checking_each_job_whole_finds() -> None:
    points = sweep_points(
        ["model=small,large", "optim.lr=0.1,-1,abc", "trainer.epochs=2,0", "seed=1,${trainer.epochs}"]
    )
    fast = check_points(points)
    assert len(points) - len(fast) == 4  # lr 0.1 and 2 epochs, for each model and seed
    for index, point in enumerate(points):
        assert sorted(fast.get(index, [])) == sorted(check_point(point)), point


@pytest.mark.parametrize(
    "sweep",
    [
        ["resume=nowhere/0", "seed=1,2"],  # shared, but compared with a whole saved config
        ["optim.lr=0.1,${optim.momentum}"],  # escaped by the sweep: the whole check reads it
        pytest.param(["optim.lr=0.1,???"], marks=pytest.mark.slow),
        pytest.param(["seed=1,${oc.env:HOME}"], marks=pytest.mark.slow),
        pytest.param(["optim.lr=0.1,${nowhere}"], marks=pytest.mark.slow),
        pytest.param(["optim.lr=0.1,0.2", "+foo=1,2"], marks=pytest.mark.slow),
        pytest.param(["optim.lr=0.1,-1", "optim.lr=0.5"], marks=pytest.mark.slow),
    ],
)
def test_tricky_sweeps_are_refused_exactly_as_their_jobs_would_be(sweep: list[str]) -> None:
    points = sweep_points(sweep)
    fast = check_points(points)
    for index, point in enumerate(points):
        assert sorted(fast.get(index, [])) == sorted(check_point(point)), point


def test_a_value_the_job_s_environment_changes_is_checked_again_in_the_job(in_tmp_path: Path) -> None:
    # Hydra sets hydra.job.env_set around the task only: the guard saw B unset (8), the job sees 0.
    overrides = ["trainer.batch_size=${oc.env:B,8}", "+hydra.job.env_set.B=0", *QUICK[:2]]
    with pytest.raises(SystemExit) as stopped:  # refused in the job: the command line ends with its line
        main(overrides)
    assert str(stopped.value.code) == "zenexp: error: trainer.batch_size=0: expected an integer >= 1"
    assert nothing_was_recorded(in_tmp_path)
