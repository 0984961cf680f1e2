"""A run through `launch()`: what it returns and what it leaves in its run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import QUICK, SwanLabRun, in_process, read_metrics, run, write_cifar10, write_mnist
from zenexp import UserError
from zenexp.run import layout
from zenexp.run.models import Net
from zenexp.run.resume import rerun_overrides
from zenexp.sweep import ledger


@pytest.mark.slow
def test_default_run_learns_digits_and_records_everything() -> None:
    result = run()

    assert result.metrics["test_accuracy"] >= 0.90 and result.metrics["val_accuracy"] >= 0.90
    assert result.metrics["train_loss"] < 1.0
    assert {f"test_accuracy/{d}" for d in "0123456789"} <= result.metrics.keys()
    assert float(result) == result.metrics["val_accuracy"]  # what a search maximises: never the test split

    out = result.output_dir
    config = OmegaConf.load(out / "config.yaml")
    assert config.model._args_[1].in_features == 64  # resolved from the dataset's 1x8x8, not "${...}"
    assert config.optim.lr == 0.001 and config.optim.momentum == 0.9
    state = torch.load(out / "model.pt")
    assert state["1.weight"].shape == (128, 64)

    records = read_metrics(out)
    epochs = [r for r in records if "val/accuracy" in r]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]
    assert all("val/loss" in r and r["train/lr"] == 0.001 for r in epochs)
    assert not any(key.startswith("test") for r in records for key in r)  # test is evaluated once, at the end
    best = max(epochs, key=lambda r: r["val/accuracy"])
    assert (
        result.metrics["val_accuracy"] == best["val/accuracy"]
        and result.metrics["best_epoch"] == best["epoch"]
    )
    assert any("train/loss" in r for r in records)

    swan = SwanLabRun(out)
    # The config as fields a person reads: each group's choice by name, one field per value, no _target_.
    assert swan.config["optim"] == "sgd" and swan.config["optim.lr"] == 0.001
    assert swan.config["model"] == "small" and swan.config["tracker.mode"] == "offline"
    assert not any("_target_" in key or "_target_" in str(value) for key, value in swan.config.items())
    assert swan.start.name == "defaults" and swan.start.project == "zenexp"
    assert swan.finish.state == 1  # RUN_STATE_FINISHED
    assert [v for _, v in swan.scalars["val/accuracy"]] == pytest.approx([r["val/accuracy"] for r in epochs])
    # The final metrics are a summary (one value each), not one-point charts.
    assert swan.config["summary/test_accuracy"] == pytest.approx(result.metrics["test_accuracy"])
    assert swan.config["summary/val_accuracy"] == pytest.approx(result.metrics["val_accuracy"])
    assert swan.config["summary/stopped_early"] is False
    assert not any(key.startswith("final/") for key in swan.scalars)


def test_same_seed_same_metrics_other_seed_differs() -> None:
    first, second = run(*QUICK, "tracker.mode=disabled"), run(*QUICK, "tracker.mode=disabled")
    other = run(*QUICK, "tracker.mode=disabled", "seed=1")
    assert first.metrics == second.metrics
    assert other.metrics != first.metrics


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_cifar10(root)
    write_mnist(root)
    return root


@pytest.mark.parametrize("model", ["small", "large", "net"])
@pytest.mark.parametrize("dataset", ["digits", "cifar10", "mnist", "fake"])
def test_every_model_on_every_dataset(model: str, dataset: str, data_root: Path) -> None:
    overrides = [f"model={model}", f"dataset={dataset}", *QUICK, "tracker.mode=disabled"]
    if dataset in ("cifar10", "mnist"):
        overrides.append(f"dataset.root={data_root}")
    if dataset == "fake":  # generating its default thousand images takes longer than training on them
        overrides += ["dataset.train_size=40", "dataset.val_size=20", "dataset.test_size=20"]
    if (model, dataset) == ("net", "digits"):
        with pytest.raises(UserError, match=r"model.image_shape=\[1, 8, 8\] .* at least 16x16 pixels"):
            run(*overrides)
        return
    result = run(*overrides)
    summary = json.loads((result.output_dir / "summary.json").read_text())
    assert summary["test_accuracy"] == result.metrics["test_accuracy"] and "val_accuracy" in summary
    assert len([k for k in result.metrics if k.startswith("test_accuracy/")]) == 10
    assert (result.output_dir / "model.pt").is_file()


def test_net_is_the_lessons_cnn_and_fits_mnist() -> None:
    cifar = Net()
    assert [m.out_channels for m in cifar.features if isinstance(m, torch.nn.Conv2d)] == [6, 16]
    assert cifar.classifier[0].in_features == 16 * 5 * 5
    assert Net(image_shape=(1, 28, 28)).classifier[0].in_features == 16 * 4 * 4
    assert Net()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_optimizers_and_trainer_settings_apply() -> None:
    result = run("optim=adam", "optim.lr=0.01", "trainer.epochs=2", "trainer.log_every_n_steps=5", *QUICK[1:])
    config = OmegaConf.load(result.output_dir / "config.yaml")
    assert config.optim._target_ == "torch.optim.adam.Adam" and config.optim.lr == 0.01
    steps = [r["step"] for r in read_metrics(result.output_dir) if "train/loss" in r]
    assert steps == [5]  # 2 epochs x 3 steps, logged every 5 steps


def test_bf16_mixed_precision_trains_in_bf16(in_tmp_path: Path) -> None:
    fp32 = run(*QUICK, "tracker.mode=disabled")
    bf16 = run("trainer.precision=bf16", *QUICK, "tracker.mode=disabled")
    # Same seed, same batches: only the precision of the forward pass can make the losses differ.
    assert bf16.metrics["train_loss"] != fp32.metrics["train_loss"]
    assert bf16.metrics["train_loss"] == pytest.approx(fp32.metrics["train_loss"], rel=0.05)


@pytest.mark.slow
def test_compiled_model_trains_and_saves_plain_weights(in_tmp_path: Path) -> None:
    result = run(
        "trainer.compile=true", "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "tracker.mode=disabled"
    )
    state = torch.load(result.output_dir / "model.pt")
    assert "1.weight" in state  # the model's own names, not torch.compile's wrapper's


def test_each_epoch_records_its_training_speed(in_tmp_path: Path) -> None:
    result = run("trainer.epochs=2", "tracker.mode=disabled")
    records = read_metrics(result.output_dir, timings=True)
    speeds = [r["train/images_per_s"] for r in records if "train/images_per_s" in r]
    assert len(speeds) == 2 and all(speed > 0 for speed in speeds)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_a_run_on_the_gpu_learns_what_the_cpu_run_learns(in_tmp_path: Path) -> None:
    cpu = run(*QUICK, "trainer.device=cpu", "tracker.mode=disabled")
    gpu = run(*QUICK, "trainer.device=cuda", "tracker.mode=disabled")
    # The same seeded weights and batches; CUDA's kernels round differently, so close, not equal.
    assert gpu.metrics["train_loss"] == pytest.approx(cpu.metrics["train_loss"], rel=1e-3)


def test_a_run_or_sweep_of_the_older_layout_is_read_in_todays_names(quick_run: Path) -> None:
    """Before the modules moved into rooms, config.yaml stored `zenexp.data.digits`; such a run still evals
    (and so resumes and reruns: one reading of the saved config), and a sweep's ledger hash is unchanged."""
    config = quick_run / "config.yaml"
    today = config.read_text()
    older = today.replace("zenexp.data.datasets.", "zenexp.data.").replace(
        "zenexp.run.models.", "zenexp.models."
    )
    assert older != today and layout.as_older(today) == older
    config.write_text(older)

    done = in_process("eval", str(quick_run), "tracker.mode=disabled")
    assert done.returncode == 0, done.stderr
    assert rerun_overrides(quick_run) is not None
    assert ledger.config_hash(today, ["optim.lr=0.1"]) == ledger.config_hash(older, ["optim.lr=0.1"])

    config.write_text(today.replace("zenexp.data.datasets.digits", "zenexp.data.datasets.mnist"))
    done = in_process("eval", str(quick_run), "tracker.mode=disabled")
    assert done.returncode == 1 and "dataset._target_: zenexp.data.datasets.mnist -> " in done.stderr
