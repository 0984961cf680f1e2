"""The loaders, on files in each dataset's real on-disk format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import write_cifar10, write_mnist
from zenexp import UserError, data


def test_cifar10_reads_the_python_batches(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=20)
    loaded = data.cifar10(str(tmp_path))
    assert loaded.train_images.shape == (100, 3, 32, 32)
    assert loaded.test_images.shape == (20, 3, 32, 32)
    assert loaded.train_images.dtype == torch.float32
    assert -1.0 <= loaded.train_images.min() and loaded.train_images.max() <= 1.0
    assert loaded.train_labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert loaded.classes[:3] == ("plane", "car", "bird")


def test_mnist_reads_the_idx_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, train=30, test=10)
    loaded = data.mnist(str(tmp_path))
    assert loaded.train_images.shape == (30, 1, 28, 28)
    assert loaded.test_labels.tolist() == list(range(10))


@pytest.mark.parametrize("loader", [data.cifar10, data.mnist])
def test_missing_files_name_the_path_and_the_offline_default(loader: object, tmp_path: Path) -> None:
    assert callable(loader)
    with pytest.raises(UserError, match="dataset=digits") as caught:
        loader(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_digits_split_is_fixed_disjoint_and_seeded() -> None:
    first, again, other = data.digits(), data.digits(), data.digits(split_seed=1)
    assert len(first.train_labels) + len(first.test_labels) == 1797
    assert len(first.test_labels) == round(1797 * 0.2)
    assert torch.equal(first.test_images, again.test_images)
    assert not torch.equal(first.test_images, other.test_images)
    train_rows = {tuple(row.tolist()) for row in first.train_images.flatten(1)}
    test_rows = [tuple(row.tolist()) for row in first.test_images.flatten(1)]
    # A few digits images are exact duplicates in the source; the split must not copy rows across.
    assert sum(row in train_rows for row in test_rows) < 5


def test_fake_has_the_asked_shape_and_classes() -> None:
    loaded = data.fake(train_size=12, test_size=4, image_shape=(1, 16, 16), num_classes=3)
    assert loaded.train_images.shape == (12, 1, 16, 16)
    assert set(loaded.train_labels.tolist()) <= {0, 1, 2}
    assert torch.equal(
        loaded.train_images,
        data.fake(train_size=12, test_size=4, image_shape=(1, 16, 16), num_classes=3).train_images,
    )
