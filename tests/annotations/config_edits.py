"""Config edits a user writes, checked by mypy (never run).

Good edits are proven with `assert_type`; each bad edit carries `# type: ignore[<code>]`, and because
`warn_unused_ignores` is on, the suite fails if mypy ever stops reporting that error.
"""

from __future__ import annotations

from typing import assert_type

from hydra_zen import instantiate
from torch import nn

from zenexp.configs import (
    AdamConf,
    CIFAR10Conf,
    CosineConf,
    DigitsConf,
    FakeDataConf,
    LargeConf,
    MNISTConf,
    NetConf,
    SGDConf,
    SmallConf,
    StepConf,
    TrackerConf,
    TrackerMode,
    TrainerConf,
)
from zenexp.run.models import Net


def good_edits() -> None:
    assert_type(instantiate(NetConf()), Net)
    assert_type(instantiate(SmallConf(hidden=64)), nn.Sequential)
    assert_type(instantiate(LargeConf(dropout=0.1)), nn.Sequential)

    fast = SGDConf(lr=0.1, momentum=0.9)
    fast.lr = 0.2
    assert_type(fast.lr, float)
    AdamConf(lr=3e-4, weight_decay=0.01)

    NetConf(image_shape=(3, 32, 32), num_classes=10, hidden=64, dropout=0.5)
    DigitsConf(test_fraction=0.3, val_fraction=0.1, split_seed=1)
    CIFAR10Conf(root="~/data", download=True, val_fraction=0.2)
    StepConf(step_size=2, gamma=0.5)
    CosineConf(T_max=10, eta_min=0.0)
    TrainerConf(early_stop_patience=3, grad_clip_norm=1.0)
    TrainerConf(num_threads="auto")
    TrainerConf(num_threads=4)
    MNISTConf(root="/data")
    FakeDataConf(train_size=64, image_shape=(1, 28, 28), num_classes=3)

    trainer = TrainerConf(epochs=10, batch_size=128, max_steps_per_epoch=None, device="cpu")
    trainer.max_steps_per_epoch = 5
    tracker = TrackerConf(mode=TrackerMode.cloud, project="lesson", tags=["baseline"])
    tracker.experiment_name = "first"


# Each line below is one mistake mypy must catch.


def wrong_field_names() -> None:
    SGDConf(lrr=0.1)  # type: ignore[call-arg]
    AdamConf(momentum=0.9)  # type: ignore[call-arg]
    StepConf(step=2)  # type: ignore[call-arg]
    CosineConf(t_max=2)  # type: ignore[call-arg]
    NetConf(hiden=64)  # type: ignore[call-arg]
    SmallConf(width=64)  # type: ignore[call-arg]
    LargeConf(layers=3)  # type: ignore[call-arg]
    DigitsConf(root="data")  # type: ignore[call-arg]
    CIFAR10Conf(path="data")  # type: ignore[call-arg]
    MNISTConf(dowload=True)  # type: ignore[call-arg]
    FakeDataConf(size=10)  # type: ignore[call-arg]
    TrainerConf(epoch=3)  # type: ignore[call-arg]
    TrackerConf(name="x")  # type: ignore[call-arg]
    TrainerConf(_target_="os.system")  # type: ignore[call-arg]
    conf = SGDConf()
    conf.lrr = 0.1  # type: ignore[attr-defined]


def wrong_types_in_constructors() -> None:
    SGDConf(lr="0.1")  # type: ignore[arg-type]
    AdamConf(weight_decay="none")  # type: ignore[arg-type]
    NetConf(hidden=64.5)  # type: ignore[arg-type]
    SmallConf(dropout="0.5")  # type: ignore[arg-type]
    NetConf(image_shape=[1, 8, 8])  # type: ignore[arg-type]
    DigitsConf(split_seed="0")  # type: ignore[arg-type]
    CIFAR10Conf(download="yes")  # type: ignore[arg-type]
    MNISTConf(root=None)  # type: ignore[arg-type]
    FakeDataConf(num_classes=2.0)  # type: ignore[arg-type]
    TrainerConf(batch_size="4")  # type: ignore[arg-type]
    TrainerConf(num_threads="all")  # type: ignore[arg-type]
    TrackerConf(mode="cloud")  # type: ignore[arg-type]


def wrong_types_in_assignments(
    sgd: SGDConf,
    adam: AdamConf,
    net: NetConf,
    small: SmallConf,
    large: LargeConf,
    digits: DigitsConf,
    cifar: CIFAR10Conf,
    mnist: MNISTConf,
    fake: FakeDataConf,
    trainer: TrainerConf,
    tracker: TrackerConf,
    step: StepConf,
) -> None:
    sgd.momentum = "0.9"  # type: ignore[assignment]
    adam.lr = None  # type: ignore[assignment]
    net.dropout = "0"  # type: ignore[assignment]
    small.hidden = 1.5  # type: ignore[assignment]
    large.dropout = "0.1"  # type: ignore[assignment]
    digits.test_fraction = "0.2"  # type: ignore[assignment]
    cifar.root = 0  # type: ignore[assignment]
    mnist.download = "no"  # type: ignore[assignment]
    fake.train_size = 1.0  # type: ignore[assignment]
    trainer.epochs = 2.5  # type: ignore[assignment]
    trainer.early_stop_patience = "3"  # type: ignore[assignment]
    trainer.grad_clip_norm = "1.0"  # type: ignore[assignment]
    step.gamma = "0.5"  # type: ignore[assignment]
    digits.val_fraction = None  # type: ignore[assignment]
    tracker.tags = "a,b"  # type: ignore[assignment]


def instantiated_models_are_typed() -> None:
    instantiate(NetConf()).forward("not a tensor")  # type: ignore[arg-type]
