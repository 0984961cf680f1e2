"""Datasets, loaded once into memory as normalised float tensors.

Every loader returns an `ImageData` with three splits: training, validation (every choice made during training:
the best checkpoint, early stopping, a search's objective) and test (reported once, at the end). The training
loop slices batches from its tensors, so no image is decoded or transformed per step. torchvision and scikit-learn are imported only by the loader that needs them.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

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


@dataclass(frozen=True)
class ImageData:
    """Training, validation and test splits: images are N x C x H x W float32 in [-1, 1], labels int64."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    def to(self, device: torch.device) -> ImageData:
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self) if f.name != "classes"}
        return ImageData(**moved, classes=self.classes)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """`name` is train, val or test: its images and labels."""
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")


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


def _normalise(pixels: torch.Tensor, max_value: float = 255.0) -> torch.Tensor:
    """Scale to [0, 1] and normalise with mean 0.5 and std 0.5, as the lesson's transform does (the course lesson 《6. 开展和记录实验》)."""
    return (pixels.float() / max_value - 0.5) / 0.5


def _labels(values: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values), dtype=torch.int64)


def _check_facts(option: str, data: ImageData, image_shape: Sequence[int], num_classes: int) -> ImageData:
    """The data is what the config says it is (the models were built from the config's numbers)."""
    held = (tuple(data.train_images.shape[1:]), len(data.classes))
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
) -> ImageData:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), split three ways by one seeded
    permutation: the test images first, then the validation images (each a fraction of all images)."""
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    images = _normalise(torch.from_numpy(pixels).reshape(-1, 1, 8, 8), max_value=16.0)
    test, rest = held_out(len(images), test_fraction, split_seed)
    n_val = round(len(images) * val_fraction)
    val, train = rest[:n_val], rest[n_val:]
    targets = _labels(labels)
    loaded = ImageData(
        images[train], targets[train], images[val], targets[val], images[test], targets[test], DIGIT_NAMES
    )
    return _check_facts("digits", loaded, image_shape, num_classes)


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

    def read(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            with open(folder / name, "rb") as file:
                batch = _ArraysOnly(file, encoding="latin1").load()
            images = torch.from_numpy(np.asarray(batch["data"], dtype=np.uint8)).reshape(-1, 3, 32, 32)
            return _normalise(images), _labels(batch["labels"])
        except Exception as error:  # noqa: BLE001  (a damaged or foreign file: pickle and numpy raise many kinds)
            raise UserError(f"dataset=cifar10: {folder / name} is not a CIFAR-10 batch ({error})") from error

    train = [read(name) for name in names[:-1]]
    test_images, test_labels = read(names[-1])
    train_and_val = carve_validation(
        torch.cat([images for images, _ in train]),
        torch.cat([labels for _, labels in train]),
        val_fraction,
        split_seed,
    )
    loaded = ImageData(*train_and_val, test_images, test_labels, CIFAR10_NAMES)
    return _check_facts("cifar10", loaded, image_shape, num_classes)


def mnist(
    root: str = "data",
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    image_shape: Sequence[int] = (1, 28, 28),
    num_classes: int = 10,
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
        _normalise(train.data.unsqueeze(1)), _labels(train.targets), val_fraction, split_seed
    )
    loaded = ImageData(
        *train_and_val,
        _normalise(test.data.unsqueeze(1)),
        _labels(test.targets),
        DIGIT_NAMES,
    )
    return _check_facts("mnist", loaded, image_shape, num_classes)


def fake(
    train_size: int = 1000,
    val_size: int = 200,
    test_size: int = 200,
    image_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
) -> ImageData:
    """torchvision's FakeData: random images and labels, deterministic per index (test images follow the
    training ones, validation images the test ones)."""
    from torchvision.datasets import FakeData
    from torchvision.transforms import PILToTensor

    shape = (image_shape[0], image_shape[1], image_shape[2])

    def generate(size: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = FakeData(size, shape, num_classes, transform=PILToTensor(), random_offset=offset)
        images, labels = zip(*(samples[i] for i in range(size)), strict=True)
        return _normalise(torch.stack(images)), _labels(labels)

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
    )
