"""Any torchvision dataset as zenexp data (`dataset=torchvision`): its splits built from the config, its
images kept as stored, read whole when the dataset holds them in one tensor, else one at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from zenexp.data.datasets import ImageData, Images, held_out, labels_of
from zenexp.errors import UserError


def torchvision_dataset(
    train: Dataset[Any] | Mapping[str, Any],
    test: Dataset[Any] | Mapping[str, Any],
    image_shape: Sequence[int],
    num_classes: int,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    in_memory: bool | None = None,
) -> ImageData:
    """A torchvision dataset's training and test splits; validation is a seeded `val_fraction` of `train`.

    `train` and `test` are datasets, or configs of them (`builds(FashionMNIST, ...)`) built here, when the run
    loads its data. A uint8 `.data` array that holds what the items hold is taken whole; other datasets are
    read one item at a time (by the loader's workers). Labels come from `.targets` (else from the items),
    class names from `.classes` (else "0" to `num_classes - 1`).
    """
    train_set, test_set = _built("train", train), _built("test", test)
    train_images, train_labels = _images_and_labels(train_set)
    test_images, test_labels = _images_and_labels(test_set)
    count = len(train_labels)
    val, kept = held_out(count, val_fraction, split_seed)
    if not len(val) or not len(kept):
        raise UserError(
            f"dataset.val_fraction={val_fraction}: leaves {len(val)} of the {count} training images for "
            f"validation and {len(kept)} for training; choose a fraction that leaves some for each"
        )
    names = getattr(train_set, "classes", None)
    classes = tuple(str(name) for name in names) if names else tuple(str(i) for i in range(num_classes))
    highest = int(max(train_labels.max(), test_labels.max()))
    if highest >= len(classes) or min(train_labels.min(), test_labels.min()) < 0:
        raise UserError(
            f"dataset: {type(train_set).__name__} has labels from {int(min(train_labels.min(), test_labels.min()))} "
            f"to {highest}, not 0 to {len(classes) - 1}; set dataset.num_classes to what it holds"
        )
    loaded = ImageData(
        _subset(train_images, kept),
        train_labels[kept],
        _subset(train_images, val),
        train_labels[val],
        test_images,
        test_labels,
        classes,
        in_memory=in_memory,
    )
    held = (loaded.image_shape(), len(classes))
    if held != (tuple(image_shape), num_classes):
        raise UserError(
            f"dataset: {type(train_set).__name__} holds {held[1]} classes of {list(held[0])} images, but the "
            f"config says {num_classes} of {list(image_shape)}; set dataset.image_shape and dataset.num_classes "
            f"to what it holds"
        )
    return loaded


def _built(split: str, dataset: Dataset[Any] | Mapping[str, Any]) -> Dataset[Any]:
    """The dataset, built here when given as a config: torchvision's error for missing files as one line."""
    if not isinstance(dataset, Mapping):
        return dataset
    from hydra.errors import InstantiationException
    from hydra_zen import instantiate

    try:
        built: Dataset[Any] = instantiate(dict(dataset))
    except InstantiationException as error:
        cause = error.__cause__
        if not isinstance(
            cause, (RuntimeError, OSError)
        ):  # "Dataset not found. You can use download=True ..."
            raise
        name = str(dataset.get("_target_", "")).rsplit(".", 1)[-1]
        root = Path(str(dataset.get("root", "."))).expanduser().resolve()
        said = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise UserError(
            f"dataset.{split}: {name} cannot read its files under {root} ({said}); put them there, or set "
            f"dataset.{split}.root to their folder"
        ) from None
    return built


def _images_and_labels(dataset: Dataset[Any]) -> tuple[Images, torch.Tensor]:
    count = len(dataset)  # type: ignore[arg-type]
    targets = getattr(dataset, "targets", None)
    if targets is not None and getattr(dataset, "target_transform", None) is None:
        labels = labels_of(targets)
    else:  # read from the items: each image is decoded once for it
        labels = labels_of([int(dataset[i][1]) for i in range(count)])
    whole = _whole(dataset)
    return (whole if whole is not None else _DatasetImages(dataset, torch.arange(count))), labels


def _whole(dataset: Dataset[Any]) -> torch.Tensor | None:
    """The dataset's `.data` as uint8 N x C x H x W, when it holds exactly the images its items hold (no
    transform, and the first image the same); else None."""
    array = getattr(dataset, "data", None)
    if array is None or getattr(dataset, "transform", None) is not None:
        return None
    pixels = torch.as_tensor(array)
    if pixels.dtype != torch.uint8 or pixels.dim() not in (3, 4) or len(pixels) != len(dataset):  # type: ignore[arg-type]
        return None
    first = _image(dataset[0][0])
    if pixels.dim() == 3:  # N x H x W: one channel, as MNIST holds it
        pixels = pixels.unsqueeze(1)
    elif pixels.shape[1:] != first.shape:  # N x H x W x C, as CIFAR holds it
        pixels = pixels.permute(0, 3, 1, 2)
    return pixels.contiguous() if torch.equal(pixels[0], first) else None


def _image(image: Any) -> torch.Tensor:
    """An item's image (a PIL image, an array or a tensor) as C x H x W."""
    pixels = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.array(image))
    if pixels.dim() == 2:
        return pixels.unsqueeze(0)
    if not isinstance(image, torch.Tensor) and pixels.dim() == 3:  # H x W x C, as PIL and numpy hold it
        return pixels.permute(2, 0, 1).contiguous()
    return pixels


def _subset(images: Images, indices: torch.Tensor) -> Images:
    if isinstance(images, _DatasetImages):
        return _DatasetImages(images.dataset, images.indices[indices])
    assert isinstance(images, torch.Tensor)
    return images[indices]


class _DatasetImages:
    """Some items' images of a dataset, each converted to C x H x W as it is read."""

    def __init__(self, dataset: Dataset[Any], indices: torch.Tensor) -> None:
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> torch.Tensor:
        return _image(self.dataset[int(self.indices[index])][0])
