"""Your own images in folders, one per class, as torchvision's `ImageFolder` reads them:
`<root>/train/<class>/*` and `<root>/test/<class>/*`; validation is a seeded share of `train`.

The folders are listed (not decoded) before a run starts, so a layout mistake is one line before any run
directory exists (`folder_problems`). Each image is decoded when read and resized to `dataset.image_shape`;
a file that cannot be decoded is one line naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from zenexp.data.datasets import ImageData, held_out
from zenexp.errors import UserError

SPLITS = ("train", "test")
# What torchvision.io.decode_image reads (GIF aside: its frames are a stack).
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
SOURCE_PLACE = re.compile(r"^[\w()]+, \S+:\d+, ")  # where in torchvision's C++ an error was raised
LAYOUT = "<root>/train/<class>/*.jpg and <root>/test/<class>/*.jpg (one folder per class, the same in each)"


def class_count(root: str) -> int:
    """The class folders in `<root>/train`: `dataset.num_classes`' default, read when the config is resolved
    (the models are built from it before any image is read). 1 when there are none: the checks then say what is
    missing, rather than a model's bound on its class count."""
    return max(1, len(_classes(Path(root).expanduser() / "train")))


def _classes(folder: Path) -> list[str]:
    """The sorted names of the visible subfolders (torchvision's `find_classes`, hidden ones left out)."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def _files(folder: str) -> Iterator[str]:
    """Every visible file under `folder`, subfolders included, in sorted order."""
    with os.scandir(folder) as listed:
        entries = sorted(listed, key=lambda entry: entry.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _files(entry.path)
        else:
            yield entry.path


class Listing:
    """The class names and, per split, each image file's path and label; `problems` says what is wrong."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.classes: tuple[str, ...] = ()
        self.paths: dict[str, list[str]] = {}
        self.labels: dict[str, list[int]] = {}
        self.problems: list[str] = []
        missing = [split for split in SPLITS if not (self.root / split).is_dir()]
        if missing:
            folders = " and ".join(f"{split}/" for split in missing)
            self.problems.append(
                f"dataset.root={root}: no {folders} in {self.root}; image_folder reads {LAYOUT}"
            )
            return
        train_classes, test_classes = (_classes(self.root / split) for split in SPLITS)
        if train_classes != test_classes:
            only = [
                f"only in {split}/: {', '.join(sorted(set(mine) - set(other)))}"
                for split, mine, other in (
                    ("train", train_classes, test_classes),
                    ("test", test_classes, train_classes),
                )
                if set(mine) - set(other)
            ]
            self.problems.append(
                f"dataset.root={root}: train/ and test/ hold different class folders ({'; '.join(only)}); "
                f"give both the same classes"
            )
            return
        if len(train_classes) < 2:
            self.problems.append(
                f"dataset.root={root}: {self.root / 'train'} holds {len(train_classes)} class folders; "
                f"image_folder needs at least 2 ({LAYOUT})"
            )
            return
        self.classes = tuple(train_classes)
        others: list[str] = []
        for split in SPLITS:
            self.paths[split], self.labels[split] = [], []
            stray = [
                e.name for e in os.scandir(self.root / split) if not e.is_dir() and not e.name.startswith(".")
            ]
            if stray:
                self.problems.append(
                    f"{self.root / split}: {len(stray)} outside any class folder (first: {min(stray)}); move each "
                    f"into its class's folder"
                )
            for label, name in enumerate(self.classes):
                found = list(_files(str(self.root / split / name)))
                images = [path for path in found if path.lower().endswith(EXTENSIONS)]
                others += [path for path in found if not path.lower().endswith(EXTENSIONS)]
                if not images:
                    self.problems.append(
                        f"{self.root / split / name}: no images in this class folder; add some, or remove the "
                        f"folder from both train/ and test/"
                    )
                self.paths[split] += images
                self.labels[split] += [label] * len(images)
        if others:
            self.problems.append(
                f"dataset.root={root}: {len(others)} file{'s are' if len(others) > 1 else ' is'} not "
                f"{'/'.join(EXTENSIONS)} by name (first: {others[0]}); convert or remove "
                f"{'them' if len(others) > 1 else 'it'}"
            )


def folder_problems(
    root: str, image_shape: Sequence[int], val_fraction: float, num_classes: int
) -> list[str]:
    """What is wrong with `root`'s folders for these settings, found by listing them (no image is decoded):
    checked before a run directory exists."""
    return _problems(Listing(root), image_shape, val_fraction, num_classes)


def _problems(
    listing: Listing, image_shape: Sequence[int], val_fraction: float, num_classes: int
) -> list[str]:
    problems = []
    if image_shape[0] not in (1, 3):
        problems.append(
            f"dataset.image_shape={list(image_shape)}: image_folder makes images of 1 (grey) or 3 (RGB) channels"
        )
    if listing.problems:
        return problems + listing.problems
    count = len(listing.paths["train"])
    n_val = round(count * val_fraction)
    if n_val < 1 or n_val >= count:
        problems.append(
            f"dataset.val_fraction={val_fraction}: holds out {n_val} of the {count} training images in "
            f"{listing.root / 'train'}, leaving {'no validation' if n_val < 1 else 'none for training'}; "
            f"choose a fraction that leaves some for each, or add images"
        )
    if num_classes != len(listing.classes):
        problems.append(
            f"dataset.num_classes={num_classes}: {listing.root / 'train'} holds {len(listing.classes)} class "
            f"folders; leave dataset.num_classes unset (it counts them)"
        )
    return problems


class ImageFiles:
    """Image files read one at a time: `images[i]` is decoded and resized to `image_shape`, uint8 C x H x W."""

    def __init__(self, paths: Sequence[str], image_shape: Sequence[int]) -> None:
        self.paths = list(paths)
        self.image_shape = (image_shape[0], image_shape[1], image_shape[2])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        from torchvision.io import ImageReadMode, decode_image
        from torchvision.transforms.v2.functional import resize

        path = self.paths[index]
        mode = ImageReadMode.RGB if self.image_shape[0] == 3 else ImageReadMode.GRAY
        try:
            image = decode_image(path, mode=mode)
        except (RuntimeError, OSError, ValueError) as error:
            # "decode_png, .../decode_png.cpp:79, Out of bound read in decode_png. Probably, ...": the first part
            said = (str(error).strip().splitlines() or [type(error).__name__])[0]
            said = SOURCE_PLACE.sub("", said).split(". ")[0]
            raise UserError(
                f"{path}: cannot decode this image ({said}); replace or remove the file"
            ) from None
        if image.dtype != torch.uint8:  # a 16-bit PNG: its pixels, scaled to 8 bits
            image = (image.float() * (255 / torch.iinfo(image.dtype).max)).round().to(torch.uint8)
        if tuple(image.shape[1:]) != self.image_shape[1:]:
            image = resize(image, list(self.image_shape[1:]), antialias=True)
        return image.contiguous()


def image_folder(
    root: str = "data",
    val_fraction: float = 0.1,
    split_seed: int = 0,
    image_shape: Sequence[int] = (3, 32, 32),
    num_classes: int | None = None,
    in_memory: bool | None = None,
) -> ImageData:
    """The images under `root` in torchvision's ImageFolder layout, each resized to `image_shape`; the class
    names are the sorted folder names; validation is a seeded `val_fraction` of `train`. `num_classes`: None
    for what the folders hold, else checked against them."""
    listing = Listing(root)
    problems = _problems(
        listing, image_shape, val_fraction, len(listing.classes) if num_classes is None else num_classes
    )
    if problems:
        raise UserError(problems[0])
    train_paths = listing.paths["train"]
    train_labels = torch.tensor(listing.labels["train"], dtype=torch.int64)
    val, kept = held_out(len(train_paths), val_fraction, split_seed)
    return ImageData(
        ImageFiles([train_paths[i] for i in kept.tolist()], image_shape),
        train_labels[kept],
        ImageFiles([train_paths[i] for i in val.tolist()], image_shape),
        train_labels[val],
        ImageFiles(listing.paths["test"], image_shape),
        torch.tensor(listing.labels["test"], dtype=torch.int64),
        listing.classes,
        in_memory=in_memory,
    )
