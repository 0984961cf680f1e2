"""Datasets: what each split holds, as stored (uint8 pixels), in memory or read one image at a time.

Every loader returns an `ImageData` with three splits: training, validation (every choice made during training:
the best checkpoint, early stopping, a search's objective) and test (reported once, at the end). Images stay
as their stored bytes; `zenexp.data.loading` turns each batch into normalised floats on the training device.
torchvision and scikit-learn are imported only by the loader that needs them.
Any torchvision dataset goes through `zenexp.data.vision`.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from zenexp.errors import UserError

DIGIT_NAMES = tuple(str(d) for d in range(10))


DIGITS_COUNT = 1797  # images in scikit-learn's digits


TRAIN_COUNTS = {
    "cifar10": 50_000,
    "mnist": 60_000,
}  # images in the training files, validation carved from them


# The files each loader reads, in torchvision's layouts, by option.
FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]),
    "mnist": (
        "MNIST/raw",
        [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ],
    ),
}


TITLES = {"cifar10": "CIFAR-10", "mnist": "MNIST"}


CIFAR10_NAMES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class Images(Protocol):
    """A split's images one at a time: `images[i]` is C x H x W. A tensor of N images is one (in memory); a
    folder of files read per image is another (`zenexp.data.folders`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> torch.Tensor: ...


@dataclass(frozen=True)
class ImageData:
    """Training, validation and test splits: images and their int64 labels.

    Images are uint8 pixels as stored (normalised per batch: `pixel / scale`, then mean 0.5 and std 0.5, as the
    lesson's transform does), or float images used as they are (a loader that normalises for itself).
    `in_memory` is the dataset's `in_memory` setting: None lets `zenexp.data.loading` choose by size.
    """

    train_images: Images
    train_labels: torch.Tensor
    val_images: Images
    val_labels: torch.Tensor
    test_images: Images
    test_labels: torch.Tensor
    classes: tuple[str, ...]
    scale: float = 255.0
    in_memory: bool | None = None

    def split(self, name: str) -> tuple[Images, torch.Tensor]:
        """`name` is train, val or test: its images and labels."""
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")

    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_images[0].shape)


def held_out(count: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded split of `count` indices: `round(count * fraction)` held out, the rest kept."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    n_out = round(count * fraction)
    return order[:n_out], order[n_out:]


def carve_validation(
    images: torch.Tensor, labels: torch.Tensor, val_fraction: float, split_seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training images and labels, then validation ones carved from them by a seeded split."""
    val, train = held_out(len(labels), val_fraction, split_seed)
    return images[train], labels[train], images[val], labels[val]


def normalise(images: torch.Tensor, scale: float) -> torch.Tensor:
    """uint8 pixels scaled to [0, 1], then normalised with mean 0.5 and std 0.5, as the lesson's transform does
    (the course lesson 《6. 开展和记录实验》); float images as they are."""
    if images.dtype != torch.uint8:
        return images
    return (images.float() / scale - 0.5) / 0.5


def labels_of(values: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values), dtype=torch.int64)


def check_facts(option: str, data: ImageData, image_shape: Sequence[int], num_classes: int) -> ImageData:
    """The data is what the config says it is (the models were built from the config's numbers)."""
    held = (data.image_shape(), len(data.classes))
    if held != (tuple(image_shape), num_classes):
        raise UserError(
            f"dataset={option}: the files hold {held[1]} classes of {list(held[0])} images, but the config says "
            f"{num_classes} of {list(image_shape)}; dataset.image_shape and dataset.num_classes are fixed by the data"
        )
    return data


def digits(
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    image_shape: Sequence[int] = (1, 8, 8),
    num_classes: int = 10,
    in_memory: bool | None = None,
) -> ImageData:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), split three ways by one seeded
    permutation: the test images first, then the validation images (each a fraction of all images)."""
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    images = torch.from_numpy(pixels.astype(np.uint8)).reshape(-1, 1, 8, 8)  # values 0 to 16
    test, rest = held_out(len(images), test_fraction, split_seed)
    n_val = round(len(images) * val_fraction)
    val, train = rest[:n_val], rest[n_val:]
    targets = labels_of(labels)
    loaded = ImageData(
        images[train],
        targets[train],
        images[val],
        targets[val],
        images[test],
        targets[test],
        DIGIT_NAMES,
        scale=16.0,
        in_memory=in_memory,
    )
    return check_facts("digits", loaded, image_shape, num_classes)


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's batches are pickles: read only what they hold (dicts, lists, numbers, strings, numpy
    arrays), so a data folder from elsewhere cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)  # type: ignore[no-any-return]


def split_problems(option: str, fractions: dict[str, float]) -> list[str]:
    """Held-out fractions (`{"test": 0.2, "val": 0.1}`) that would leave a split of `option`'s images empty."""
    count = DIGITS_COUNT if option == "digits" else TRAIN_COUNTS[option]
    images = "digits" if option == "digits" else f"{TITLES[option]} training images"
    sizes = {name: round(count * fraction) for name, fraction in fractions.items()}
    given = " and ".join(f"dataset.{name}_fraction={fraction}" for name, fraction in fractions.items())
    problems = [
        f"dataset.{name}_fraction={fractions[name]}: leaves the {'validation' if name == 'val' else name} "
        f"split of the {count} {images} empty; choose more than {0.5 / count:.6f}"
        for name, size in sizes.items()
        if size < 1
    ]
    if not problems and sum(sizes.values()) >= count:
        held = " + ".join(str(size) for size in sizes.values())
        problems.append(
            f"{given}: hold out {held} of the {count} {images} (rounded), leaving none for training; "
            f"choose smaller fractions"
        )
    return problems


def missing_files(option: str, root: str) -> list[str]:
    """What is wrong when `option`'s files are not under `root` (checked before a run directory exists)."""
    if option not in FILES:
        return []
    subfolder, names = FILES[option]
    folder = Path(root).expanduser() / subfolder
    if all((folder / name).is_file() for name in names):
        return []
    return [str(_missing(option, folder))]


def _missing(option: str, path: Path) -> UserError:
    return UserError(
        f"dataset={option}: no {TITLES[option]} files in {path.resolve()}; put them there, set dataset.root to their "
        f"folder, pass dataset.download=true (needs network), or use the offline default dataset=digits"
    )


def cifar10(
    root: str = "data",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    image_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    in_memory: bool | None = None,
) -> ImageData:
    """CIFAR-10 from its python-pickle batches in `<root>/cifar-10-batches-py` (torchvision's layout);
    validation is a seeded `val_fraction` of the training batches."""
    subfolder, names = FILES["cifar10"]
    folder = Path(root).expanduser() / subfolder
    if missing_files("cifar10", root):
        if not download:
            raise _missing("cifar10", folder)
        from torchvision.datasets import CIFAR10

        try:
            CIFAR10(str(folder.parent), download=True)
        except OSError as error:
            raise UserError(f"dataset=cifar10: download to {folder.parent} failed: {error}") from error

    def read(name: str) -> tuple[np.ndarray, list[int]]:
        try:
            with open(folder / name, "rb") as file:
                batch = _ArraysOnly(file, encoding="latin1").load()
            return np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), list(batch["labels"])
        except Exception as error:  # noqa: BLE001  (a damaged or foreign file: pickle and numpy raise many kinds)
            raise UserError(f"dataset=cifar10: {folder / name} is not a CIFAR-10 batch ({error})") from error

    # Each training batch is written straight to its place in the seeded split (validation first, then
    # training), so the two splits are views of one tensor: the pixels are held once, as their stored bytes.
    # The batches are equal (10,000 images each); the first says how many there are in all.
    pixels, batch_labels = read(names[0])
    per_batch = len(pixels)
    count = per_batch * (len(names) - 1)
    val, train = held_out(count, val_fraction, split_seed)
    place = torch.empty(count, dtype=torch.int64)
    place[torch.cat([val, train])] = torch.arange(count)
    images = torch.empty(count, 3, 32, 32, dtype=torch.uint8)
    labels = torch.empty(count, dtype=torch.int64)
    for number, name in enumerate(names[:-1]):
        if number:
            pixels, batch_labels = read(name)
        if len(pixels) != per_batch or len(batch_labels) != per_batch:
            raise UserError(
                f"dataset=cifar10: {folder / name} holds {len(pixels)} images and {len(batch_labels)} labels; "
                f"CIFAR-10's training batches hold {per_batch} of each, as {folder / names[0]} does"
            )
        rows = place[number * per_batch : (number + 1) * per_batch]
        images[rows], labels[rows] = torch.from_numpy(pixels), labels_of(batch_labels)
    test_pixels, test_labels = read(names[-1])
    n_val = len(val)
    loaded = ImageData(
        images[n_val:],
        labels[n_val:],
        images[:n_val],
        labels[:n_val],
        torch.from_numpy(test_pixels),
        labels_of(test_labels),
        CIFAR10_NAMES,
        in_memory=in_memory,
    )
    return check_facts("cifar10", loaded, image_shape, num_classes)


def mnist(
    root: str = "data",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    image_shape: Sequence[int] = (1, 28, 28),
    num_classes: int = 10,
    in_memory: bool | None = None,
) -> ImageData:
    """MNIST from its idx files in `<root>/MNIST/raw`, read by torchvision; validation is a seeded
    `val_fraction` of the training files."""
    from torchvision.datasets import MNIST

    root_path = Path(root).expanduser()
    try:
        train, test = (MNIST(str(root_path), train=split, download=download) for split in (True, False))
    except RuntimeError as error:  # torchvision: "Dataset not found. You can use download=True ..."
        raise _missing("mnist", root_path / FILES["mnist"][0]) from error
    except OSError as error:
        raise UserError(f"dataset=mnist: download to {root_path} failed: {error}") from error
    train_and_val = carve_validation(
        train.data.unsqueeze(1), labels_of(train.targets), val_fraction, split_seed
    )
    loaded = ImageData(
        *train_and_val, test.data.unsqueeze(1), labels_of(test.targets), DIGIT_NAMES, in_memory=in_memory
    )
    return check_facts("mnist", loaded, image_shape, num_classes)


def fake(
    train_size: int = 1000,
    val_size: int = 200,
    test_size: int = 200,
    image_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    in_memory: bool | None = None,
) -> ImageData:
    """torchvision's FakeData: random images and labels, deterministic per index (test images follow the
    training ones, validation images the test ones)."""
    from torchvision.datasets import FakeData
    from torchvision.transforms import PILToTensor

    shape = (image_shape[0], image_shape[1], image_shape[2])

    def generate(size: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = FakeData(size, shape, num_classes, transform=PILToTensor(), random_offset=offset)
        images, labels = zip(*(samples[i] for i in range(size)), strict=True)
        return torch.stack(images), labels_of(labels)

    train_images, train_labels = generate(train_size, 0)
    test_images, test_labels = generate(test_size, train_size)
    val_images, val_labels = generate(val_size, train_size + test_size)
    return ImageData(
        train_images,
        train_labels,
        val_images,
        val_labels,
        test_images,
        test_labels,
        tuple(f"class_{i}" for i in range(num_classes)),
        in_memory=in_memory,
    )
