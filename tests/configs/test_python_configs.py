"""A `MainConfig` built in Python runs exactly as written, through `hydra_zen.launch`, with overrides on top."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hydra_zen import launch
from omegaconf import OmegaConf

import zenexp
from tests.conftest import SwanLabRun, cli, run_dirs
from zenexp import MainConfig, UserError
from zenexp.configs import (
    AdamConf,
    CIFAR10Conf,
    DigitsConf,
    FakeDataConf,
    LargeConf,
    NetConf,
    SGDConf,
    SmallConf,
    TrackerConf,
    TrackerMode,
    TrainerConf,
)
from zenexp.run.train import RunResult


def quick(**fields: Any) -> TrainerConf:
    return TrainerConf(**{"epochs": 1, "max_steps_per_epoch": 2, "batch_size": 8, **fields})


OFF = TrackerConf(mode=TrackerMode.disabled)


def launched(cfg: MainConfig, *overrides: str) -> dict[str, Any]:
    """Run `cfg` through hydra_zen.launch and return the run's saved config.yaml."""
    job = launch(cfg, zenexp.task, overrides=list(overrides), version_base="1.3")
    result = job.return_value
    assert isinstance(result, RunResult)
    saved = OmegaConf.to_container(OmegaConf.load(result.output_dir / "config.yaml"))
    assert isinstance(saved, dict)
    return {str(key): value for key, value in saved.items()}


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every value set in a config, by path: `{"model.hidden": 64, ...}`."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, child in value.items():
            flat |= leaves(child, f"{path}.{key}" if path else str(key))
        return flat
    if isinstance(value, list):
        return {f"{path}[{i}]": v for i, child in enumerate(value) for _, v in leaves(child).items()}
    return {path: value}


def written(cfg: MainConfig) -> dict[str, Any]:
    """What the user wrote: every field of the instance that holds a value (not `???`, not `${...}`)."""
    plain = OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)
    assert isinstance(plain, dict)
    plain.pop("hydra"), plain.pop("defaults")
    return {
        path: value
        for path, value in leaves(plain).items()
        if value != "???" and not (isinstance(value, str) and value.startswith("${"))
    }


# Each case: the config as built in Python, every group slot and nested field among them.
CASES: dict[str, Callable[[], MainConfig]] = {
    "large-and-adam": lambda: MainConfig(
        model=LargeConf(hidden=64), optim=AdamConf(lr=0.01), trainer=quick(), tracker=OFF
    ),
    "sgd-lr-only": lambda: MainConfig(optim=SGDConf(lr=0.05, momentum=0.5), trainer=quick(), tracker=OFF),
    "net-on-fake": lambda: MainConfig(
        model=NetConf(hidden=32, dropout=0.1),
        dataset=FakeDataConf(train_size=32, test_size=8, num_classes=4),
        trainer=quick(),
        tracker=OFF,
    ),
    "every-field": lambda: MainConfig(
        dataset=DigitsConf(test_fraction=0.3, split_seed=2),
        model=SmallConf(hidden=16, dropout=0.2),
        optim=AdamConf(lr=0.003, weight_decay=0.01),
        trainer=quick(batch_size=16, log_every_n_steps=1, num_threads=1, device="cpu"),
        tracker=TrackerConf(project="python-configs", tags=["a", "b"], description="built in Python"),
        seed=7,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_every_value_written_in_python_reaches_the_run(name: str) -> None:
    cfg = CASES[name]()
    saved = leaves(launched(cfg))
    for path, value in written(cfg).items():
        assert saved[path] == value, path


def test_the_tracker_records_the_config_built_in_python() -> None:
    cfg = CASES["every-field"]()
    job = launch(cfg, zenexp.task, version_base="1.3")
    swan = SwanLabRun(job.return_value.output_dir)
    assert swan.start.project == "python-configs" and list(swan.start.tags) == ["a", "b"]
    assert swan.config["optim.lr"] == 0.003 and swan.config["seed"] == 7
    assert swan.config["optim"] == "Adam"  # a slot filled in Python: named after what it builds


def test_assigned_slots_and_later_edits_run_too() -> None:
    cfg = MainConfig(trainer=quick(), tracker=OFF)
    cfg.model = LargeConf(hidden=48)
    cfg.optim = AdamConf()
    cfg.model.hidden = 40  # an edit after assignment counts as well
    cfg.optim.lr = 0.02
    saved = launched(cfg)
    assert saved["model"]["hidden"] == 40 and saved["model"]["_args_"][4]["in_features"] == 40
    assert saved["optim"]["_target_"] == "torch.optim.adam.Adam" and saved["optim"]["lr"] == 0.02


def test_field_overrides_apply_on_top_of_python_values() -> None:
    cfg = MainConfig(model=LargeConf(hidden=64), optim=AdamConf(lr=0.01), trainer=quick(), tracker=OFF)
    saved = launched(cfg, "model.dropout=0.25", "optim.lr=0.02", "trainer.batch_size=4")
    assert saved["model"]["hidden"] == 64 and saved["model"]["dropout"] == 0.25
    assert saved["optim"]["lr"] == 0.02 and saved["trainer"]["batch_size"] == 4
    assert saved["trainer"]["max_steps_per_epoch"] == 2  # the rest of the Python trainer stays


def test_group_overrides_replace_a_slot_filled_in_python() -> None:
    cfg = MainConfig(model=NetConf(hidden=32), optim=AdamConf(lr=0.01), trainer=quick(), tracker=OFF)
    saved = launched(cfg, "model=large", "optim=sgd", "optim.lr=0.2")
    assert saved["model"]["_zen_target"] == "torch.nn.modules.container.Sequential"
    assert saved["model"]["hidden"] == 256  # large's own, nothing of Net left
    assert "image_shape" not in saved["model"]
    assert saved["optim"] == {**saved["optim"], "_target_": "torch.optim.sgd.SGD", "lr": 0.2, "momentum": 0.9}


@pytest.mark.slow
def test_a_python_slot_and_a_dataset_override_meet() -> None:
    saved = launched(MainConfig(model=NetConf(), trainer=quick(), tracker=OFF), "dataset=fake")
    assert saved["model"]["_target_"] == "zenexp.run.models.Net" and saved["model"]["image_shape"] == [
        3,
        32,
        32,
    ]


REFUSED: dict[str, tuple[Callable[[], MainConfig], list[str], str]] = {
    "epochs": (
        lambda: MainConfig(trainer=TrainerConf(epochs=0)),
        [],
        "trainer.epochs=0: expected an integer >= 1",
    ),
    "hidden": (lambda: MainConfig(model=LargeConf(hidden=0)), [], "model.hidden=0: expected an integer >= 1"),
    "lr": (lambda: MainConfig(optim=SGDConf(lr=-1.0)), [], "optim.lr=-1.0: expected a number > 0"),
    "net-on-digits": (lambda: MainConfig(model=NetConf()), [], "model=net needs images of at least 16x16"),
    "fixed-shape": (
        lambda: MainConfig(dataset=CIFAR10Conf(image_shape=(1, 2, 3))),
        [],
        "dataset.image_shape=[1, 2, 3]: fixed by the data",
    ),
    "preset-over-python": (
        lambda: MainConfig(model=SmallConf(hidden=3)),
        ["experiment=lesson_fake"],
        "model: the config given in Python would be replaced by experiment=lesson_fake's model=net",
    ),
}


@pytest.mark.parametrize("name", REFUSED)
def test_values_set_in_python_are_checked_like_overrides(name: str, in_tmp_path: Path) -> None:
    cfg, overrides, expected = REFUSED[name]
    with pytest.raises(UserError) as refused:
        launch(cfg(), zenexp.task, overrides=overrides, version_base="1.3")
    assert expected in str(refused.value)
    assert not list(in_tmp_path.glob("outputs/**/*.*"))  # nothing recorded


@pytest.mark.slow
def test_a_run_built_in_python_is_not_repeated_from_its_overrides(in_tmp_path: Path) -> None:
    cfg = MainConfig(model=LargeConf(hidden=64), trainer=quick(), tracker=OFF)
    first = launch(cfg, zenexp.task, version_base="1.3").return_value
    done = cli("rerun", str(first.output_dir))
    assert done.returncode == 1 and "built in Python" in done.stderr, done.stderr
    # The same config continues it, as the message says.
    cfg.trainer.epochs = 2
    again = launch(
        cfg, zenexp.task, overrides=[f"resume={first.output_dir}"], version_base="1.3"
    ).return_value
    assert again.output_dir == first.output_dir
    assert len(run_dirs(in_tmp_path / "outputs")) == 1
