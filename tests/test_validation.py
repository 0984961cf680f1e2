"""Every mistake is refused before any work, with one short message: from the CLI and from `launch()`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from tests.conftest import QUICK, cli, run
from zenexp import UserError
from zenexp.validation import check_config, compose_config

# (overrides, what the message must name: the field path and value, what is expected)
BAD_INPUTS = [
    # wrong types
    (["optim.lr=abc"], "optim.lr=abc", "could not be converted to Float"),
    (["trainer.epochs=2.5"], "trainer.epochs=2.5", "could not be converted to Integer"),
    (["trainer.batch_size=[1]"], "trainer.batch_size=[1]", "could not be converted to Integer"),
    (["seed=abc"], "seed=abc", "could not be converted to Integer"),
    (["dataset=cifar10", "dataset.download=maybe"], "dataset.download=maybe", "not a valid bool"),
    (["tracker.mode=clod"], "tracker.mode=clod", "offline, local, cloud, disabled"),
    # out of range
    (["optim.lr=-1"], "optim.lr=-1", "expected a number > 0"),
    (["optim.momentum=1"], "optim.momentum=1", "expected a number >= 0 and < 1"),
    (["trainer.batch_size=0"], "trainer.batch_size=0", "expected an integer >= 1"),
    (["model.dropout=1.5"], "model.dropout=1.5", "expected a number >= 0 and < 1"),
    (["trainer.epochs=0"], "trainer.epochs=0", "expected an integer >= 1"),
    (["model=large", "model.hidden=-8"], "model.hidden=-8", "expected an integer >= 1"),
    (["trainer.max_steps_per_epoch=0"], "trainer.max_steps_per_epoch=0", "expected an integer >= 1"),
    (["dataset.test_fraction=1.0"], "dataset.test_fraction=1.0", "> 0 and < 1"),
    # unknown keys, with a did-you-mean
    (["optim.lrr=0.1"], "optim.lrr=0.1", "did you mean optim.lr?"),
    (["trainer.epoch=3"], "trainer.epoch=3", "did you mean trainer.epochs?"),
    (["model=large", "model.hiden=3"], "model.hiden=3", "did you mean model.hidden?"),
    (["+trainer.foo=1"], "trainer.foo", "no field 'foo' (fields: batch_size, checkpoint_every_n_steps"),
    (["+lr=0.1"], "lr", "fields: dataset, model, optim, resume, seed, tracker, trainer"),
    # unknown group options, listing what exists
    (["model=huge"], "model=huge", "large, net, small"),
    (["dataset=cifar100"], "dataset=cifar100", "cifar10, digits, fake, mnist"),
    (["optim=sgdd"], "optim=sgdd", "adam, sgd"),
    # mandatory values left missing
    (["optim.lr=???"], "optim.lr is missing", "optim.lr=<float>"),
    # combinations that cannot work
    (["resume=outputs/none"], "resume=outputs/none", "no checkpoint there"),
    (["model=net"], "model.image_shape=[1, 8, 8]", "at least 16x16 pixels"),
    (["model.num_classes=${dataset.nope}"], "model.num_classes", "dataset.nope"),
    # targets: only registered options can be chosen
    (["model._target_=os.system"], "model._target_=os.system", "model=<option> (large, net, small)"),
    (["+optim._target_=builtins.eval"], "+optim._target_=builtins.eval", "optim=<option> (adam, sgd)"),
    (["dataset._zen_target=os.system"], "dataset._zen_target", "dataset=<option>"),
    (["optim._partial_=false"], "optim._partial_=false", "cannot be overridden"),
    (
        ["model={_target_:os.system,command:ls}"],
        "model={_target_:os.system,command:ls}",
        "cannot be overridden",
    ),
    # not an override at all
    (["dataset.root=~/data"], "dataset.root=~/data", "quote"),
]
if not torch.cuda.is_available():
    BAD_INPUTS.append((["trainer.device=cuda"], "trainer.device=cuda", "no CUDA device is present"))

IDS = [" ".join(overrides) for overrides, _, _ in BAD_INPUTS]


def nothing_was_recorded(root: Path) -> bool:
    return (
        not list(root.glob("**/.hydra"))
        and not list(root.glob("**/swanlog"))
        and not list(root.glob("**/*.log"))
    )


@pytest.mark.parametrize(("overrides", "field", "expected"), BAD_INPUTS, ids=IDS)
def test_cli_refuses_with_one_short_message(
    overrides: list[str], field: str, expected: str, in_tmp_path: Path
) -> None:
    done = cli(*overrides)
    assert done.returncode == 1
    assert field in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("zenexp: error: ") and len(done.stderr.splitlines()) <= 3
    assert nothing_was_recorded(in_tmp_path)


@pytest.mark.parametrize(("overrides", "field", "expected"), BAD_INPUTS, ids=IDS)
def test_launch_refuses_before_any_work(
    overrides: list[str], field: str, expected: str, in_tmp_path: Path
) -> None:
    with pytest.raises((UserError, HydraException, OmegaConfBaseException)) as caught:
        run(*overrides)
    message = str(caught.value)
    if isinstance(caught.value, UserError):  # zenexp's own checks: the same sentence as the CLI
        assert field in message and expected in message
    else:  # Hydra refused while composing: its message names the field
        assert field.split("=")[0].lstrip("+").split(".")[-1] in message
    assert nothing_was_recorded(in_tmp_path)


def test_full_traceback_on_request(in_tmp_path: Path) -> None:
    done = cli("optim.lr=-1", env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "optim.lr=-1.0: expected a number > 0" in done.stderr


def test_several_mistakes_are_listed_together(in_tmp_path: Path) -> None:
    done = cli("model=large", "optim.lrr=1", "trainer.epoch=2", "model.hiden=3")
    assert done.returncode == 1
    assert "3 problems" in done.stderr
    for hint in ("optim.lr?", "trainer.epochs?", "model.hidden?"):
        assert hint in done.stderr


def test_check_lists_every_bad_point_of_a_sweep(in_tmp_path: Path) -> None:
    done = cli("check", "-m", "optim.lr=0.1,abc", "model=small,huge")
    assert done.returncode == 1
    assert "3 of 4 jobs are invalid" in done.stderr
    assert "optim.lr=0.1 model=small" not in done.stderr
    for point in ("optim.lr=0.1 model=huge", "optim.lr=abc model=small", "optim.lr=abc model=huge"):
        assert point in done.stderr
    assert not (in_tmp_path / "multirun").exists()


def test_check_passes_a_good_sweep_and_runs_nothing(in_tmp_path: Path) -> None:
    done = cli("check", "-m", "optim.lr=0.1,0.01", "model=small,large,net", "dataset=fake")
    assert done.returncode == 0, done.stderr
    assert "all 6 jobs valid" in done.stdout
    assert not (in_tmp_path / "outputs").exists() and not (in_tmp_path / "multirun").exists()


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


def test_python_module_and_command_share_check() -> None:
    done = cli("check", "model=large", "optim=adam")
    assert done.returncode == 0 and "all 1 job valid" in done.stdout


def test_good_overrides_still_run(in_tmp_path: Path) -> None:
    result = run("model=large", "optim=adam", "optim.lr=0.01", *QUICK)
    assert (result.output_dir / "summary.json").is_file()
