"""Dataset configs: digits, CIFAR-10, MNIST, fake images, any torchvision dataset, an image folder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from annotated_types import Ge, Interval
from hydra_zen import hydrated_dataclass
from omegaconf import II
from typing_extensions import Doc

from zenexp.configs.fields import (
    DataRoot,
    Download,
    FixedClasses,
    FixedShape,
    ImageShape,
    InMemory,
    NumClasses,
    PartialTargets,
    SplitSeed,
    ValFraction,
    VisionDatasetConfig,
)
from zenexp.data import datasets, folders, vision

# ---- dataset --------------------------------------------------------------------------------------------
# Partial: the task loads the data itself, after the model has been built and the config checked.
# `image_shape` and `num_classes` say what the files hold; the models read them, the loaders check them.


@hydrated_dataclass(datasets.digits, zen_partial=True, hydra_convert="all")
class DigitsConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """scikit-learn's bundled 8x8 handwritten digits: real data, works offline (the default)."""

    test_fraction: Annotated[float, Interval(gt=0, lt=1), Doc("share of the images held out for testing")] = (
        0.2
    )
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    image_shape: FixedShape = (1, 8, 8)
    num_classes: FixedClasses = 10
    in_memory: InMemory = None


@hydrated_dataclass(datasets.cifar10, zen_partial=True, hydra_convert="all")
class CIFAR10Conf(PartialTargets[Callable[..., datasets.ImageData]]):
    """CIFAR-10 (torchvision's python version) under `root`."""

    root: DataRoot = "data"
    download: Download = False
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    image_shape: FixedShape = (3, 32, 32)
    num_classes: FixedClasses = 10
    in_memory: InMemory = None


@hydrated_dataclass(datasets.mnist, zen_partial=True, hydra_convert="all")
class MNISTConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """MNIST (torchvision's layout) under `root`."""

    root: DataRoot = "data"
    download: Download = False
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    image_shape: FixedShape = (1, 28, 28)
    num_classes: FixedClasses = 10
    in_memory: InMemory = None


@hydrated_dataclass(datasets.fake, zen_partial=True, hydra_convert="all")
class FakeDataConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """torchvision's FakeData at CIFAR-10 shape: random images, for smoke runs and speed."""

    train_size: Annotated[int, Ge(1), Doc("number of training images")] = 1000
    val_size: Annotated[int, Ge(1), Doc("number of validation images")] = 200
    test_size: Annotated[int, Ge(1), Doc("number of test images")] = 200
    image_shape: Annotated[tuple[int, int, int], Ge(1), Doc("channels, height, width")] = (3, 32, 32)
    num_classes: Annotated[int, Ge(2), Doc("number of classes")] = 10
    in_memory: InMemory = None


@hydrated_dataclass(vision.torchvision_dataset, zen_partial=True, hydra_convert="all", hydra_recursive=False)
class TorchvisionConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """A torchvision dataset of your own, its training and test splits given by `builds(...)`.

    The splits are built when the run loads its data (a missing file is then one line); validation is carved
    from `train`. Not stored: the user stores one per dataset, with its `image_shape` and `num_classes`."""

    train: Annotated[VisionDatasetConfig, Doc("the training split (validation is carved from it)")]
    test: Annotated[VisionDatasetConfig, Doc("the test split")]
    image_shape: ImageShape
    num_classes: NumClasses
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    in_memory: InMemory = None


@hydrated_dataclass(folders.image_folder, zen_partial=True, hydra_convert="all")
class ImageFolderConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """Your own image files, one folder per class: root/train/<class>/* and root/test/<class>/*.

    torchvision's ImageFolder layout; each image is resized to `image_shape`; validation is a seeded
    `val_fraction` of `train`; `num_classes` counts the class folders when the config is resolved."""

    root: Annotated[str, Doc("folder holding train/<class>/ and test/<class>/ with the image files")] = "data"
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    image_shape: Annotated[
        tuple[int, int, int],
        Ge(1),
        Doc("channels (1 grey, 3 RGB), height, width: every image is resized to it"),
    ] = (3, 32, 32)
    num_classes: Annotated[
        int, Ge(1), Doc("number of classes (counted: the class folders in root/train)")
    ] = II("zenexp.class_count:${.root}")
    in_memory: InMemory = None
