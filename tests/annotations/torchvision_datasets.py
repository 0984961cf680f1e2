"""A torchvision dataset of a user's own (`TorchvisionConf`), checked by mypy (never run): its splits take
`builds(...)` of a dataset, as a class or an instance, and nothing else. Each bad line carries the
`# type: ignore[<code>]` mypy must report."""

from __future__ import annotations

from hydra_zen import builds
from torchvision.datasets import CIFAR100, FashionMNIST

from zenexp import MainConfig
from zenexp.configs import NetConf, SmallConf, TorchvisionConf

FASHION_TRAIN = builds(FashionMNIST, root="data", train=True)
FASHION_TEST = builds(FashionMNIST, root="data", train=False)


def good_edits() -> None:
    fashion = TorchvisionConf(train=FASHION_TRAIN, test=FASHION_TEST, image_shape=(1, 28, 28), num_classes=10)
    MainConfig(dataset=fashion, model=NetConf())
    CIFAR100Conf = builds(CIFAR100, root="data", populate_full_signature=True)
    TorchvisionConf(
        train=CIFAR100Conf(train=True),
        test=CIFAR100Conf(train=False),
        image_shape=(3, 32, 32),
        num_classes=100,
        val_fraction=0.2,
        in_memory=False,
    )
    fashion.split_seed = 3


def mistakes(fashion: TorchvisionConf) -> None:
    TorchvisionConf(train=SmallConf(), test=FASHION_TEST, image_shape=(1, 28, 28), num_classes=10)  # type: ignore[arg-type]
    TorchvisionConf(train=FASHION_TRAIN, test=NetConf, image_shape=(1, 28, 28), num_classes=10)  # type: ignore[arg-type]
    TorchvisionConf(train=FashionMNIST, test=FASHION_TEST, image_shape=(1, 28, 28), num_classes=10)  # type: ignore[arg-type]
    TorchvisionConf(train=FASHION_TRAIN, test=FASHION_TEST, image_shape="1,28,28", num_classes=10)  # type: ignore[arg-type]
    TorchvisionConf(train=FASHION_TRAIN, test=FASHION_TEST, image_shape=(1, 28, 28))  # type: ignore[call-arg]
    MainConfig(model=fashion)  # type: ignore[arg-type]
    fashion.num_classes = "10"  # type: ignore[assignment]
