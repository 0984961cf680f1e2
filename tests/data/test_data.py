"""The loaders, on files in each dataset's real on-disk format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from sklearn.datasets import load_digits

from tests.conftest import write_cifar10, write_mnist
from zenexp import UserError
from zenexp.data import datasets
from zenexp.data.datasets import ImageData


def held(loaded: ImageData) -> dict[str, torch.Tensor]:
    """The images of each split, held in memory as one tensor, as the shipped loaders hold them."""
    splits = {name: loaded.split(name)[0] for name in ("train", "val", "test")}
    assert all(isinstance(images, torch.Tensor) for images in splits.values())
    return {name: torch.as_tensor(images) for name, images in splits.items()}


def test_cifar10_reads_the_python_batches(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=20)
    loaded = datasets.cifar10(str(tmp_path))
    assert held(loaded)["train"].shape == (90, 3, 32, 32)
    assert held(loaded)["val"].shape == (
        10,
        3,
        32,
        32,
    )  # the default val_fraction, 0.1, of the training files
    assert held(loaded)["test"].shape == (20, 3, 32, 32)
    assert held(loaded)["train"].dtype == torch.uint8
    assert loaded.test_labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert sorted(loaded.train_labels.tolist() + loaded.val_labels.tolist()) == sorted(list(range(10)) * 10)
    assert loaded.classes[:3] == ("plane", "car", "bird")


@pytest.mark.parametrize("loader", [datasets.cifar10, datasets.mnist])
def test_validation_is_carved_from_the_training_files_by_a_seeded_split(loader: Any, tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=20)
    write_mnist(tmp_path, train=60, test=10)
    first, again = loader(str(tmp_path), val_fraction=0.25), loader(str(tmp_path), val_fraction=0.25)
    other = loader(str(tmp_path), val_fraction=0.25, split_seed=1)
    assert len(first.val_labels) * 3 == len(first.train_labels)
    assert torch.equal(held(first)["val"], held(again)["val"])
    assert not torch.equal(held(first)["val"], held(other)["val"])
    assert torch.equal(held(first)["test"], held(other)["test"])  # the test files are never split
    train_rows = {tuple(row.tolist()) for row in held(first)["train"].flatten(1)}
    assert not any(tuple(row.tolist()) in train_rows for row in held(first)["val"].flatten(1))


def test_mnist_reads_the_idx_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, train=30, test=10)
    loaded = datasets.mnist(str(tmp_path))
    assert held(loaded)["train"].shape == (27, 1, 28, 28) and held(loaded)["val"].shape == (3, 1, 28, 28)
    assert loaded.test_labels.tolist() == list(range(10))


@pytest.mark.parametrize("loader", [datasets.cifar10, datasets.mnist])
def test_missing_files_name_the_path_and_the_offline_default(loader: Any, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="dataset=digits") as caught:
        loader(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_digits_split_three_ways_fixed_disjoint_and_seeded() -> None:
    first, again, other = datasets.digits(), datasets.digits(), datasets.digits(split_seed=1)
    assert len(first.train_labels) + len(first.val_labels) + len(first.test_labels) == 1797
    assert (len(first.test_labels), len(first.val_labels)) == (round(1797 * 0.2), round(1797 * 0.1))
    for split in ("val", "test"):
        assert torch.equal(held(first)[split], held(again)[split])
        assert not torch.equal(held(first)[split], held(other)[split])
    rows = {
        split: [tuple(row.tolist()) for row in held(first)[split].flatten(1)]
        for split in ("train", "val", "test")
    }
    # A few digits images are exact duplicates in the source; the split must not copy rows across.
    for held_out in ("val", "test"):
        assert sum(row in set(rows["train"]) for row in rows[held_out]) < 5
    assert sum(row in set(rows["val"]) for row in rows["test"]) < 5
    # The test images are those of the two-way split before validation existed: old test figures still compare.
    pixels = torch.from_numpy(load_digits(return_X_y=True)[0]).reshape(-1, 1, 8, 8)
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pixels[order[:359]].to(torch.uint8), held(first)["test"])
    assert first.scale == 16.0


def test_fake_has_the_asked_shape_and_classes() -> None:
    loaded = datasets.fake(train_size=12, val_size=5, test_size=4, image_shape=(1, 16, 16), num_classes=3)
    assert held(loaded)["train"].shape == (12, 1, 16, 16)
    assert (len(loaded.val_labels), len(loaded.test_labels)) == (5, 4)
    assert not torch.equal(held(loaded)["val"][:4], held(loaded)["test"])
    assert set(loaded.train_labels.tolist()) <= {0, 1, 2}
    assert torch.equal(
        held(loaded)["train"],
        held(datasets.fake(train_size=12, test_size=4, image_shape=(1, 16, 16), num_classes=3))["train"],
    )
