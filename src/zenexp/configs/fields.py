"""The field types configs share: what each slot of `MainConfig` accepts (checked by mypy), the bounds
and one-line descriptions of fields (`Annotated`, checked before a run and shown by `--help`), and the
dataset facts the models read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

import torch
from annotated_types import Ge, Gt, Interval
from omegaconf import II
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from typing_extensions import Doc

from zenexp.data import datasets

T = TypeVar("T")

if TYPE_CHECKING:
    from hydra_zen.typing import Builds, HydraPartialBuilds, PartialBuilds
    from torch.utils.data import Dataset

    class Targets(Builds[T]):
        """Marks a config class as building a `T`, so that `instantiate(conf)` is typed `T`."""

        _target_: ClassVar[str] = ""
        # Keep attribute access and assignment checked field by field (Builds types them `Any`).
        __getattribute__ = object.__getattribute__
        __setattr__ = object.__setattr__

    class PartialTargets(HydraPartialBuilds[T]):
        """Marks a config class as a partial `T`: `instantiate(conf)` is a `functools.partial`."""

        _target_: ClassVar[str] = ""
        __getattribute__ = object.__getattribute__
        __setattr__ = object.__setattr__

    # What each slot of `MainConfig` accepts: a config that builds a model, a partial that loads the data, a
    # partial that makes an optimizer from the parameters. A user's own `builds(..., populate_full_signature=True)`
    # fits its slot too; a config in the wrong slot is a mypy error.
    ModelConfig = Builds[Callable[..., nn.Module]]
    DatasetConfig = PartialBuilds[Callable[..., datasets.ImageData]]
    OptimConfig = PartialBuilds[Callable[..., torch.optim.Optimizer]]
    SchedulerConfig = PartialBuilds[Callable[..., LRScheduler]]
    AugmentConfig = Builds[Callable[..., Callable[[torch.Tensor], torch.Tensor]]]
    # A torchvision dataset (`builds(FashionMNIST, root=..., train=True)`, the class or an instance).
    VisionDatasetConfig = type[Builds[Callable[..., Dataset[Any]]]] | Builds[Callable[..., Dataset[Any]]]

else:

    class Targets:
        def __class_getitem__(cls, item: object) -> type:
            return cls

    PartialTargets = Targets
    ModelConfig = DatasetConfig = OptimConfig = SchedulerConfig = AugmentConfig = VisionDatasetConfig = Any


# The dataset's shape and class count, read by the models through interpolation.
IMAGE_SHAPE = II("dataset.image_shape")
NUM_CLASSES = II("dataset.num_classes")


class Fixed:
    """`Annotated` marker of a dataset fact (image shape, class count): set by the data, not by the user."""


@dataclass(frozen=True)
class Words:
    """`Annotated` metadata of a number field that also takes these words (`trainer.num_threads=auto`)."""

    allowed: tuple[str, ...]


if TYPE_CHECKING:
    ThreadCount = int | Literal["auto"]
else:
    ThreadCount = int | str  # OmegaConf takes a union of int and str (not a Literal); the checks allow `auto`


ImageShape = Annotated[
    tuple[int, int, int], Ge(1), Doc("channels, height, width of the images (from the dataset)")
]
# numpy takes seeds below 2**32; torch's generators take the same range here.
Seed = Interval(ge=0, lt=2**32)
NumClasses = Annotated[int, Ge(1), Doc("number of classes (from the dataset)")]
Hidden = Annotated[int, Ge(1), Doc("width of every hidden layer")]
Dropout = Annotated[float, Interval(ge=0, lt=1), Doc("dropout probability after each hidden layer")]
LearningRate = Annotated[float, Gt(0), Doc("learning rate")]
WeightDecay = Annotated[float, Ge(0), Doc("L2 penalty")]
DataRoot = Annotated[str, Doc("folder holding the dataset's files")]
Download = Annotated[bool, Doc("download the files when missing (needs network)")]
ValFraction = Annotated[
    float, Interval(gt=0, lt=1), Doc("share of the images held out for validation (model selection)")
]
SplitSeed = Annotated[int, Seed, Doc("seed of the fixed split into training, validation and test images")]
FixedShape = Annotated[tuple[int, int, int], Fixed, Doc("channels, height, width (what the files hold)")]
FixedClasses = Annotated[int, Fixed, Doc("number of classes (what the files hold)")]
InMemory = Annotated[
    bool | None,
    Doc(
        "true: hold the images in memory (uint8); false: read them per batch (trainer.loader_workers); "
        "null: in memory when they take at most half the memory available"
    ),
]
