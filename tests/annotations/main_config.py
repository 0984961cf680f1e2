"""The slots of `MainConfig`, checked by mypy (never run): each takes any config of its kind, a shipped one
or a user's own `builds(..., populate_full_signature=True)`, and refuses a config of another kind, in the
constructor and by assignment. Each bad line carries the `# type: ignore[<code>]` mypy must report."""

from __future__ import annotations

import torch
import torchvision.transforms.v2 as v2
from hydra_zen import builds
from torch import nn

from zenexp import MainConfig
from zenexp.configs import (
    AdamConf,
    CIFAR10Conf,
    CosineConf,
    DigitsConf,
    FakeDataConf,
    FlipCropConf,
    LargeConf,
    MNISTConf,
    NetConf,
    NoAugmentConf,
    NoSchedulerConf,
    SGDConf,
    SmallConf,
    StepConf,
    TrainerConf,
)
from zenexp.data.datasets import ImageData


class MyModel(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.width = width


def my_loader(size: int = 10) -> ImageData:
    raise NotImplementedError


MyModelConf = builds(MyModel, populate_full_signature=True)
MyLoaderConf = builds(my_loader, zen_partial=True, populate_full_signature=True)
MyOptimConf = builds(torch.optim.RMSprop, zen_partial=True, populate_full_signature=True)
MySchedulerConf = builds(
    torch.optim.lr_scheduler.ExponentialLR, zen_partial=True, populate_full_signature=True
)


def every_config_fits_its_slot() -> None:
    MainConfig(model=SmallConf(), dataset=DigitsConf(), optim=SGDConf())
    MainConfig(model=LargeConf(hidden=64), dataset=MNISTConf(), optim=AdamConf(lr=0.01))
    MainConfig(model=NetConf(), dataset=CIFAR10Conf(), trainer=TrainerConf(epochs=2))
    MainConfig(model=MyModelConf(width=3), dataset=MyLoaderConf(size=3), optim=MyOptimConf(lr=0.1))
    cfg = MainConfig()
    cfg.model = NetConf()
    cfg.dataset = FakeDataConf()
    cfg.optim = MyOptimConf()
    MainConfig(scheduler=StepConf(step_size=3, gamma=0.5))
    MainConfig(scheduler=CosineConf(eta_min=1e-5), optim=AdamConf())
    cfg.scheduler = NoSchedulerConf()
    cfg.scheduler = MySchedulerConf(gamma=0.9)
    MainConfig(augment=FlipCropConf(), dataset=CIFAR10Conf())
    cfg.augment = NoAugmentConf()
    cfg.augment = builds(v2.RandomHorizontalFlip, populate_full_signature=True)(p=0.2)


def a_config_in_the_wrong_slot() -> None:
    MainConfig(optim=SmallConf())  # type: ignore[arg-type]
    MainConfig(model=SGDConf())  # type: ignore[arg-type]
    MainConfig(dataset=NetConf())  # type: ignore[arg-type]
    MainConfig(model=DigitsConf())  # type: ignore[arg-type]
    MainConfig(optim=FakeDataConf())  # type: ignore[arg-type]
    MainConfig(dataset=AdamConf())  # type: ignore[arg-type]
    MainConfig(model=MyOptimConf())  # type: ignore[arg-type]
    MainConfig(optim=MyModelConf())  # type: ignore[arg-type]
    MainConfig(dataset=MyModelConf())  # type: ignore[arg-type]
    MainConfig(trainer=SGDConf())  # type: ignore[arg-type]
    MainConfig(seed="0")  # type: ignore[arg-type]
    MainConfig(scheduler=SGDConf())  # type: ignore[arg-type]
    MainConfig(optim=StepConf())  # type: ignore[arg-type]
    MainConfig(scheduler=MyOptimConf())  # type: ignore[arg-type]
    MainConfig(augment=SGDConf())  # type: ignore[arg-type]
    MainConfig(augment=DigitsConf())  # type: ignore[arg-type]


def a_config_assigned_to_the_wrong_slot(cfg: MainConfig) -> None:
    cfg.model = DigitsConf()  # type: ignore[assignment]
    cfg.optim = LargeConf()  # type: ignore[assignment]
    cfg.dataset = SGDConf()  # type: ignore[assignment]
    cfg.model = MyLoaderConf()  # type: ignore[assignment]
    cfg.scheduler = CosineConf  # type: ignore[assignment]
    cfg.scheduler = AdamConf()  # type: ignore[assignment]
    cfg.augment = MyLoaderConf()  # type: ignore[assignment]
